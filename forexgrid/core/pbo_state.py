"""Incremental CSCV: a scope's PBO state that absorbs new trials and stays exact.

:func:`forexgrid.core.pbo.probability_of_backtest_overfitting` scores every trial in every
split. A scope's trials only ever grow, by appending columns, so the outcome of each split
can be carried forward instead (:class:`PBOState`):

- per split, the chosen (IS-best) distinct column, its IS and OOS ``t`` (the scaled Sharpe
  ratios the splits are scored with), and the trials (counted with multiplicity) whose OOS
  ``t`` is below / equal to the chosen one's: the logit follows from these and N;
- per distinct column, a digest of its values (to recognise a new trial identical to an
  earlier one: it is scored once and weighted, as the from-scratch function does), the index
  of its first trial and its multiplicity.

Adding a batch of columns (after the existing ones): the batch's distinct new columns are
scored in every split. Where one beats the chosen IS ``t`` strictly (an earlier column wins a
tie: argmax's "first on ties"), it becomes the chosen column and the split's counts are
recounted over every column, for those splits only, from the earlier distinct columns (the
caller supplies them; their digests are checked). Elsewhere the batch's counts are added. A
column's ``t`` in a split is computed by the same fixed-order arithmetic whatever batch it
comes in, and the counts are whole numbers, so :meth:`PBOState.result` equals the
from-scratch function on all the columns bit for bit (``tests/core/test_pbo_state.py``).

Size: 32 bytes per distinct column (16-byte digest, first trial, multiplicity) plus 40 per
split (515 KB for 16 blocks), before compression: 3.7 MB at 100,000 distinct trials. The
columns themselves are not kept: recounting reads them again (reading a scope's trials is
about 1% of scoring them).

Identical columns are recognised by a 128-bit BLAKE2b digest of their float64 values (0.0
and -0.0 alike, as ``numpy.unique`` compares them); a collision (odds about ``n^2 / 2^129``)
would merge two different trials.
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from forexgrid.core.pbo import (
    PBOResult,
    _block_sums,
    _blocks_used,
    _check_daily,
    _check_n_blocks,
    _distinct_columns,
    _Layout,
    _recount,
    _scan,
    _Splits,
    _undefined,
)

__all__ = ["STATE_VERSION", "PBOState", "PBOStateError"]

#: Version of :meth:`PBOState.to_bytes`'s format (and of the arithmetic the state assumes).
STATE_VERSION = 1

_MAGIC = b"FGPBOSTATE"
_DIGEST = 16


class PBOStateError(ValueError):
    """A stored state that cannot be used (damaged, another version), or earlier columns that
    are not the ones the state was built from. The caller recomputes from scratch."""


def column_digests(columns: np.ndarray) -> np.ndarray:
    """``(n, 16)`` uint8 digests of the columns of ``columns`` (D, n), by value (-0.0 as 0.0)."""
    rows = np.ascontiguousarray(np.asarray(columns, dtype=np.float64).T) + 0.0
    out = np.empty((rows.shape[0], _DIGEST), dtype=np.uint8)
    for i, row in enumerate(rows):
        out[i] = np.frombuffer(hashlib.blake2b(row, digest_size=_DIGEST).digest(), np.uint8)
    return out


@dataclass(frozen=True, eq=False)
class PBOState:
    """CSCV over the trials added so far, ready to absorb more (module docstring).

    Attributes
    ----------
    n_days : int
        D, the length of every column.
    n_blocks : int
        The number of blocks asked for (``selection.pbo_blocks``); the number used is
        :attr:`n_blocks_used`.
    n_trials : int
        N, the columns added so far.
    digests, first_column, multiplicity : numpy.ndarray
        Per distinct column in first-occurrence order: its digest (n, 16), its first trial's
        index, the number of trials equal to it.
    splits
        Per split, the chosen column and counts; None when fewer than 2 blocks fit in D.
    covers : numpy.ndarray of int64, shape (k, 2)
        What the columns came from, in order, as the caller labelled the batches (the
        storage layer: run id and columns per run). Not used by the computation.
    """

    n_days: int
    n_blocks: int
    n_trials: int
    digests: np.ndarray
    first_column: np.ndarray
    multiplicity: np.ndarray
    splits: _Splits | None
    covers: np.ndarray

    @property
    def n_blocks_used(self) -> int:
        """``S`` actually used (as :attr:`PBOResult.n_blocks`)."""
        return _blocks_used(self.n_blocks, self.n_days)

    @property
    def n_distinct(self) -> int:
        return int(self.first_column.size)

    @classmethod
    def empty(cls, n_days: int, n_blocks: int = 16) -> PBOState:
        """The state of no trials on a daily axis of ``n_days``."""
        n_blocks = _check_n_blocks(n_blocks)
        used = _blocks_used(n_blocks, int(n_days))
        return cls(
            n_days=int(n_days),
            n_blocks=n_blocks,
            n_trials=0,
            digests=np.empty((0, _DIGEST), dtype=np.uint8),
            first_column=np.empty(0, dtype=np.int64),
            multiplicity=np.empty(0, dtype=np.int64),
            splits=_Splits.empty(math.comb(used, used // 2)) if used >= 2 else None,
            covers=np.empty((0, 2), dtype=np.int64),
        )

    def add(
        self,
        daily: np.ndarray,
        *,
        earlier: Callable[[], np.ndarray] | None = None,
        covers: np.ndarray | None = None,
        threads: int = 1,
    ) -> PBOState:
        """A new state with the columns of ``daily`` (D, k) added after the existing ones.

        Parameters
        ----------
        daily
            The new trials' daily returns.
        earlier
            Returns the distinct columns so far, (D, :attr:`n_distinct`) in their order
            (``all_columns[:, state.first_column]``); called only when a new column becomes
            some split's chosen one. Required when the state holds trials.
        covers
            Rows appended to :attr:`covers`.
        threads
            Threads to score the splits on (the result does not depend on it).

        Raises
        ------
        ValueError
            If ``daily`` is not a finite real (D, k) array.
        PBOStateError
            If ``earlier`` gives other columns than the state was built from.
        """
        x = _check_daily(daily)
        if x.shape[0] != self.n_days:
            raise ValueError(f"daily has {x.shape[0]} days, the state {self.n_days}")
        covers = np.empty((0, 2), np.int64) if covers is None else np.asarray(covers, np.int64)
        covers = np.concatenate([self.covers, covers.reshape(-1, 2)])
        if x.shape[1] == 0:
            return replace(self, covers=covers)
        distinct, first, multiplicity = _distinct_columns(x)
        digests = column_digests(distinct)
        known = {d.tobytes(): i for i, d in enumerate(self.digests)}
        match = np.array([known.get(d.tobytes(), -1) for d in digests], dtype=np.int64)
        new = match < 0
        # New distinct columns first (the candidates), then earlier ones met again (counted).
        columns = np.ascontiguousarray(np.hstack([distinct[:, new], distinct[:, ~new]]))
        weights = np.concatenate([multiplicity[new], multiplicity[~new]])
        added = np.zeros(self.n_distinct, dtype=np.int64)
        np.add.at(added, match[~new], multiplicity[~new])

        splits = self.splits
        if splits is not None:
            layout = _Layout.of(self.n_days, self.n_blocks_used)
            splits = _Splits(*(np.array(a) for a in vars(splits).values()))  # a copy
            changed = _scan(
                layout,
                _block_sums(columns, layout),
                None if (weights == 1).all() else weights.astype(np.float64),
                int(new.sum()),
                splits,
                threads,
                offset=self.n_distinct,
            )
            if changed.size:
                # Splits whose chosen column is new: count the earlier columns against it
                # (with their multiplicities before this batch; the batch counted its own).
                old = self._earlier(earlier)
                _recount(
                    layout,
                    _block_sums(old, layout),
                    None if (self.multiplicity == 1).all() else self.multiplicity.astype(float),
                    splits,
                    changed,
                    threads,
                )
        return PBOState(
            n_days=self.n_days,
            n_blocks=self.n_blocks,
            n_trials=self.n_trials + x.shape[1],
            digests=np.concatenate([self.digests, digests[new]]),
            first_column=np.concatenate([self.first_column, self.n_trials + first[new]]),
            multiplicity=np.concatenate([self.multiplicity + added, multiplicity[new]]),
            splits=splits,
            covers=covers,
        )

    def _earlier(self, earlier: Callable[[], np.ndarray] | None) -> np.ndarray:
        """The earlier distinct columns, checked against their digests."""
        if earlier is None:
            raise ValueError("the state holds trials: adding columns needs `earlier`")
        old = np.ascontiguousarray(np.asarray(earlier(), dtype=np.float64))
        if old.shape != (self.n_days, self.n_distinct):
            raise PBOStateError(
                f"the earlier columns have shape {old.shape}, the state "
                f"{(self.n_days, self.n_distinct)}"
            )
        if not np.array_equal(column_digests(old), self.digests):
            raise PBOStateError("the earlier columns are not the ones the state was built from")
        return old

    def result(self) -> PBOResult:
        """The PBO of the trials so far: equal to ``probability_of_backtest_overfitting``
        on all of them, bit for bit."""
        used = self.n_blocks_used
        if self.splits is None or self.n_trials < 2:
            return _undefined(max(used, 0), self.n_trials)
        layout = _Layout.of(self.n_days, used)
        return self.splits.result(layout, self.first_column, self.n_trials)

    # ------------------------------------------------------------------ serialisation

    def to_bytes(self) -> bytes:
        """The state as compressed bytes with a checksum (:meth:`from_bytes` reads them)."""
        arrays = self._arrays()
        header = json.dumps(
            {
                "version": STATE_VERSION,
                "n_days": self.n_days,
                "n_blocks": self.n_blocks,
                "n_trials": self.n_trials,
                "n_distinct": self.n_distinct,
                "n_splits": 0 if self.splits is None else int(self.splits.chosen.size),
                "n_covers": int(self.covers.shape[0]),
            },
            sort_keys=True,
        ).encode()
        body = len(header).to_bytes(4, "little") + header
        body += b"".join(np.ascontiguousarray(a, dtype=t).tobytes() for t, a in arrays)
        # Level 1: the digests do not compress at any level; the counts do at level 1 already.
        checksum = hashlib.blake2b(body, digest_size=_DIGEST).digest()
        return _MAGIC + checksum + zlib.compress(body, 1)

    def _arrays(self) -> list[tuple[str, np.ndarray]]:
        splits = self.splits or _Splits.empty(0)
        return [
            ("u1", self.digests),
            ("<i8", self.first_column),
            ("<i8", self.multiplicity),
            ("<i8", splits.chosen),
            ("<f8", splits.chosen_is),
            ("<f8", splits.chosen_oos),
            ("<f8", splits.n_worse),
            ("<f8", splits.n_tied),
            ("<i8", self.covers),
        ]

    @classmethod
    def from_bytes(cls, blob: bytes) -> PBOState:
        """Read :meth:`to_bytes`'s output.

        Raises
        ------
        PBOStateError
            If the bytes are damaged, of another version, or not a consistent state.
        """
        try:
            return cls._from_bytes(bytes(blob))
        except PBOStateError:
            raise
        except (ValueError, TypeError, KeyError, zlib.error, OverflowError) as err:
            raise PBOStateError(f"damaged PBO state: {type(err).__name__}: {err}") from err

    @classmethod
    def _from_bytes(cls, blob: bytes) -> PBOState:
        if not blob.startswith(_MAGIC):
            raise PBOStateError("not a PBO state")
        start = len(_MAGIC)
        checksum, body = blob[start : start + _DIGEST], zlib.decompress(blob[start + _DIGEST :])
        if hashlib.blake2b(body, digest_size=_DIGEST).digest() != checksum:
            raise PBOStateError("damaged PBO state: checksum mismatch")
        size = int.from_bytes(body[:4], "little")
        meta = json.loads(body[4 : 4 + size])
        if meta.get("version") != STATE_VERSION:
            raise PBOStateError(f"PBO state version {meta.get('version')}, not {STATE_VERSION}")
        n_distinct, n_splits = int(meta["n_distinct"]), int(meta["n_splits"])
        shapes = [
            (n_distinct, _DIGEST),
            (n_distinct,),
            (n_distinct,),
            *[(n_splits,)] * 5,
            (int(meta["n_covers"]), 2),
        ]
        offset, values = 4 + size, []
        for (dtype, _), shape in zip(cls.empty(2)._arrays(), shapes, strict=True):
            count = math.prod(shape)
            values.append(
                np.frombuffer(body, dtype=dtype, count=count, offset=offset).reshape(shape).copy()
            )
            offset += count * np.dtype(dtype).itemsize
        if offset != len(body):
            raise PBOStateError("damaged PBO state: wrong length")
        digests, first, mult, chosen, c_is, c_oos, worse, tied, covers = values
        state = cls.empty(int(meta["n_days"]), int(meta["n_blocks"]))
        expected_splits = 0 if state.splits is None else state.splits.chosen.size
        state = replace(
            state,
            n_trials=int(meta["n_trials"]),
            digests=digests,
            first_column=first.astype(np.int64),
            multiplicity=mult.astype(np.int64),
            splits=None
            if state.splits is None
            else _Splits(chosen.astype(np.int64), c_is, c_oos, worse, tied),
            covers=covers.astype(np.int64),
        )
        if n_splits != expected_splits:
            raise PBOStateError(f"PBO state with {n_splits} splits, expected {expected_splits}")
        state._check()
        return state

    def _check(self) -> None:
        """Consistency of a state read back (a damaged one is recomputed, never used)."""
        n, mult, first = self.n_trials, self.multiplicity, self.first_column
        problems = []
        if int(mult.sum()) != n or (mult < 1).any():
            problems.append("multiplicities do not add up to the trials")
        if first.size and (first[0] != 0 or (np.diff(first) <= 0).any() or first[-1] >= n):
            problems.append("first columns out of order")
        splits = self.splits
        if splits is not None and n:
            arrays = (splits.chosen_is, splits.chosen_oos, splits.n_worse, splits.n_tied)
            if (splits.chosen < 0).any() or (splits.chosen >= first.size).any():
                problems.append("chosen columns out of range")
            elif not all(np.isfinite(a).all() for a in arrays):
                problems.append("non-finite values")
            elif (
                (splits.n_worse < 0).any()
                or (splits.n_tied < mult[splits.chosen]).any()
                or (splits.n_worse + splits.n_tied > n).any()
                or (np.mod(splits.n_worse, 1) != 0).any()
                or (np.mod(splits.n_tied, 1) != 0).any()
            ):
                problems.append("counts out of range")
        elif splits is not None and (splits.chosen != -1).any():
            problems.append("chosen columns without trials")
        if problems:
            raise PBOStateError("inconsistent PBO state: " + "; ".join(problems))
