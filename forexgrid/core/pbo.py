"""Probability of backtest overfitting (PBO) by combinatorially symmetric cross-validation.

Bailey, Borwein, Lopez de Prado and Zhu, "The Probability of Backtest Overfitting", Journal of
Computational Finance 20(4), 2017. The trials of a scope are the columns of a (D, N) matrix of
daily returns (:func:`forexgrid.core.trials.daily_returns`). CSCV:

1. Split the D rows into ``S`` contiguous blocks (``numpy.array_split``: as equal as
   possible, the first ``D mod S`` blocks one row longer; the paper assumes ``S`` divides
   ``D``).
2. For each of the ``C(S, S/2)`` ways to choose ``S/2`` blocks as in-sample (IS), the other
   blocks being out-of-sample (OOS), compute every trial's performance on both halves: the
   Sharpe ratio ``mean / std(ddof=1)`` of its returns on those rows. A half without variance
   (a strategy that did not trade there) has no Sharpe ratio; it counts as 0.0, the
   performance of not trading, in both halves. (From sums, "no variance" means a variance
   below rounding: a half whose |mean| / std would exceed 1e6 counts as constant.)
3. Select ``n* = argmax`` of the IS performances (the first trial on ties), and take the
   relative rank of its OOS performance among all N: ``omega = rank / (N + 1)``, ``rank``
   ascending from 1 (worst) with ties given their average rank, and the logit
   ``lambda = ln(omega / (1 - omega))``.
4. ``PBO`` is the share of splits with ``lambda <= 0``: the IS-best trial did no better than
   the OOS median.

Computation: per-block sums, sums of squares and row counts once; then, for a chunk of
splits, the sums of every trial over each half, its blocks added one by one in ascending
block order (halves sharing their first blocks share that partial sum). Fixed-order
element-wise sums, not a matrix product: a trial's performance in a split is then
the same number whatever other trials, batch or chunk it is computed with, which the
incremental state (:mod:`forexgrid.core.pbo_state`) needs to equal this function bit for bit.
In the lexicographic order of ``itertools.combinations`` the complement of split ``i`` is
split ``C - 1 - i``, so one pass over the first half of the splits gives both halves of
every split. Identical trials are evaluated once (so they tie exactly); memory stays under
about 200 MB. D = 42, N = 10,000, S = 16 takes a few seconds.
"""

from __future__ import annotations

import concurrent.futures
import functools
import itertools
import logging
import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = ["PBOResult", "probability_of_backtest_overfitting"]

logger = logging.getLogger(__name__)

# A half counts as constant when ``n q - s^2`` (n (n-1) times its variance) is below this
# fraction of ``n q`` (q the sum of squares): the sums give the variance as a difference whose
# rounding error is ~1e-15 of ``n q``, so a constant nonzero series would otherwise get a
# Sharpe ratio of ~1e8. Real returns never come near (it means |mean| / std > 1e6).
_CONSTANT_FLOOR = 1e-12

# Bytes per (split pair, distinct trial) cell while scoring a chunk: a conservative 16 float64
# arrays (products, performances, comparisons); the measured peak at N = 10,000 is ~90 MB.
_BYTES_PER_CELL = 16 * 8
_MEMORY_BUDGET = 200e6
# Cells per chunk for speed: a chunk's (split pairs, distinct trials) float64 arrays of 256 KB
# stay in a core's L2 cache through the dozen passes scoring makes over them. The whole
# budget at once (arrays of up to 200 MB) ran from main memory: 0.66 s against 0.46 s for
# the demo grid's 5 scopes of 363 to 755 trials, 3.0 s against 1.8 s at 10,000 trials
# (docs/performance.md "Grid runner").
_CACHE_CELLS = 32_768


@dataclass(frozen=True, eq=False)
class PBOResult:
    """Outcome of CSCV over one scope's trials.

    Attributes
    ----------
    pbo : float
        Share of the splits with logit ``<= 0``; NaN with fewer than 2 trials or 2 days.
    logits : numpy.ndarray, shape (n_splits,)
        ``lambda`` of each split, in the order of ``itertools.combinations(range(S), S/2)``
        over the IS blocks.
    n_splits : int
        ``C(S, S/2)``; 0 when PBO is undefined.
    n_blocks : int
        ``S`` actually used: the requested number, or the largest even number <= D when the
        series is shorter (0 when D < 2).
    n_trials : int
        ``N``, the number of columns (trials).
    selected : numpy.ndarray of int, shape (n_splits,)
        ``n*``, the column selected in-sample in each split.
    is_performance, oos_performance : numpy.ndarray, shape (n_splits,)
        The IS and OOS Sharpe ratios of the selected trial in each split (0.0 for a half
        without variance).
    probability_of_loss : float
        Share of the splits where the selected trial's OOS Sharpe ratio is below 0.
    """

    pbo: float
    logits: np.ndarray
    n_splits: int
    n_blocks: int
    n_trials: int
    selected: np.ndarray
    is_performance: np.ndarray
    oos_performance: np.ndarray
    probability_of_loss: float


def _check_n_blocks(n_blocks: int) -> int:
    if (
        isinstance(n_blocks, bool)
        or not isinstance(n_blocks, numbers.Integral)
        or n_blocks < 2
        or n_blocks % 2
    ):
        raise ValueError(
            f"n_blocks must be an even integer >= 2 (16 in the paper), got {n_blocks!r}"
        )
    return int(n_blocks)


def _half_performance(sums: np.ndarray, n_rows: np.ndarray) -> np.ndarray:
    """Row-scaled Sharpe ratios of halves (rows) of trials (columns); overwrites ``sums``.

    ``sums`` is ``[sum | sum of squares]`` (halves, 2 x trials) and ``n_rows`` the rows of
    each half. Returns ``t = s / sqrt(n q - s^2)``, which is the Sharpe ratio divided by
    ``sqrt((n - 1) / n)``: a positive factor per half, so ``t`` orders the trials of a half
    exactly as the Sharpe ratio does, at fewer passes over the (halves, trials) arrays.
    0.0 where the half has fewer than 2 rows or no variance.
    """
    n_distinct = sums.shape[1] // 2
    total = sums[:, :n_distinct]
    scaled_sq = sums[:, n_distinct:]
    scaled_sq *= n_rows[:, None]  # n q
    spread = total * total
    np.subtract(scaled_sq, spread, out=spread)  # n q - s^2 = n (n - 1) var
    scaled_sq *= _CONSTANT_FLOOR
    constant = spread <= scaled_sq
    if n_rows.min() < 2:
        constant |= (n_rows < 2)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        np.sqrt(spread, out=spread)
        np.divide(total, spread, out=spread)
    np.copyto(spread, 0.0, where=constant)
    return spread


def _sharpe_factor(n_rows: np.ndarray) -> np.ndarray:
    """``sqrt((n - 1) / n)``: turns :func:`_half_performance`'s ``t`` into the Sharpe ratio."""
    return np.sqrt(np.maximum(n_rows - 1.0, 0.0) / n_rows)


def _undefined(n_blocks: int, n_trials: int) -> PBOResult:
    empty = np.empty(0)
    return PBOResult(
        pbo=math.nan,
        logits=empty,
        n_splits=0,
        n_blocks=n_blocks,
        n_trials=n_trials,
        selected=np.empty(0, dtype=np.int64),
        is_performance=empty,
        oos_performance=empty,
        probability_of_loss=math.nan,
    )


def probability_of_backtest_overfitting(daily: np.ndarray, n_blocks: int = 16) -> PBOResult:
    """Probability of backtest overfitting of selecting the best of the columns of ``daily``.

    CSCV as in the module docstring, with the Sharpe ratio as performance.

    Parameters
    ----------
    daily : array_like, shape (D, N)
        Daily returns of N trials on the scope's daily axis (0 on days without a position).
    n_blocks : int, default 16
        ``S``, the number of contiguous blocks; ``C(S, S/2)`` splits are evaluated (12,870
        for 16). When ``D < S`` the largest even number <= D is used instead (reported as
        ``PBOResult.n_blocks``).

    Returns
    -------
    PBOResult
        With ``pbo`` NaN (and no splits) when there are fewer than 2 trials or 2 days.

    Raises
    ------
    ValueError
        If ``daily`` is not a 2-D real array of finite values, or ``n_blocks`` is not an even
        integer >= 2.
    """
    return _cscv(daily, n_blocks, threads=1)


def _cscv(daily: np.ndarray, n_blocks: int, threads: int) -> PBOResult:
    """:func:`probability_of_backtest_overfitting`, its chunks of splits scored on up to
    ``threads`` threads (the same result: each chunk writes its own splits)."""
    requested = _check_n_blocks(n_blocks)
    x = _check_daily(daily)
    n_days, n_trials = x.shape
    n_blocks_used = _blocks_used(requested, n_days)
    if n_blocks_used < 2 or n_trials < 2:
        return _undefined(max(n_blocks_used, 0), n_trials)

    # Identical trials are scored once and weighted by their multiplicity in the ranks;
    # ordering the distinct columns by first occurrence keeps argmax's "first on ties".
    distinct, first_column, multiplicity = _distinct_columns(x)
    layout = _Layout.of(n_days, n_blocks_used)
    splits = _Splits.empty(layout.n_splits)
    weights = None if distinct.shape[1] == n_trials else multiplicity.astype(np.float64)
    _scan(layout, _block_sums(distinct, layout), weights, distinct.shape[1], splits, threads)
    return splits.result(layout, first_column, n_trials)


def _check_daily(daily: np.ndarray) -> np.ndarray:
    """``daily`` as a float64 (D, N) array of finite values, or a ValueError saying why."""
    x = np.asarray(daily)
    if x.ndim != 2 or not (
        np.issubdtype(x.dtype, np.floating) or np.issubdtype(x.dtype, np.integer)
    ):
        raise ValueError(
            f"daily must be a 2-D real array (D days, N trials), got dtype {x.dtype} and "
            f"shape {x.shape}"
        )
    x = x.astype(np.float64, copy=False)
    if not np.isfinite(x).all():
        raise ValueError(
            "daily must hold finite returns (a day without a position is 0, not NaN), got "
            f"{int(np.count_nonzero(~np.isfinite(x)))} non-finite values"
        )
    return x


def _blocks_used(requested: int, n_days: int) -> int:
    """``S`` actually used: the requested number, or the largest even number <= D."""
    used = min(requested, n_days - n_days % 2)
    if used < requested:
        logger.debug(
            "PBO: %d days are fewer than the %d blocks asked for; using %d blocks",
            n_days,
            requested,
            used,
        )
    return used


def _distinct_columns(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(distinct columns in first-occurrence order, the index of each one's first occurrence,
    its multiplicity). Columns are equal when their values are (0.0 equals -0.0)."""
    distinct, first_column, multiplicity = np.unique(
        x, axis=1, return_index=True, return_counts=True
    )
    order = np.argsort(first_column)
    return np.ascontiguousarray(distinct[:, order]), first_column[order], multiplicity[order]


@dataclass(frozen=True, eq=False)
class _Layout:
    """The blocks and splits of CSCV over ``n_days`` rows in ``n_blocks`` blocks.

    ``combos`` are the ``C(S, S/2)`` sets of ``S/2`` blocks (ascending) in the
    lexicographic order of ``itertools.combinations``: the IS blocks of split ``j`` are
    ``combos[j]`` and its OOS blocks ``combos[n_splits - 1 - j]`` (the complement). The
    first half of the splits, the "pairs", give both halves of every split.
    """

    n_days: int
    n_blocks: int
    block_start: np.ndarray
    block_rows: np.ndarray
    combos: np.ndarray
    combo_rows: np.ndarray
    combo_tuples: list[tuple[int, ...]]
    prefix_ids: np.ndarray
    prefix_first: list[np.ndarray]
    n_splits: int

    @classmethod
    @functools.lru_cache(maxsize=8)
    def of(cls, n_days: int, n_blocks: int) -> _Layout:
        block_start = np.cumsum(
            [0] + [len(b) for b in np.array_split(np.arange(n_days), n_blocks)[:-1]]
        )
        block_rows = np.diff(np.r_[block_start, n_days]).astype(np.float64)
        n_splits, half = math.comb(n_blocks, n_blocks // 2), n_blocks // 2
        combos = np.fromiter(
            itertools.chain.from_iterable(itertools.combinations(range(n_blocks), half)),
            dtype=np.intp,
            count=n_splits * half,
        ).reshape(n_splits, half)
        # prefix_ids[j, k]: the number of combination j's first k + 1 blocks among the
        # distinct such prefixes (contiguous runs in lexicographic order); prefix_first[k]:
        # the first combination of each (for _PrefixTable).
        changes = np.ones((n_splits, half), dtype=bool)
        changes[1:] = np.logical_or.accumulate(combos[1:] != combos[:-1], axis=1)
        prefix_ids = np.cumsum(changes, axis=0) - 1
        prefix_first = [np.flatnonzero(changes[:, k]) for k in range(half)]
        return cls(
            n_days=n_days,
            n_blocks=n_blocks,
            block_start=block_start,
            block_rows=block_rows,
            combos=combos,
            combo_rows=block_rows[combos].sum(axis=1),  # whole numbers: exact
            combo_tuples=[tuple(c) for c in combos.tolist()],
            prefix_ids=prefix_ids,
            prefix_first=prefix_first,
            n_splits=n_splits,
        )

    @property
    def n_pairs(self) -> int:
        return self.n_splits // 2

    def split_rows(self) -> tuple[np.ndarray, np.ndarray]:
        """The IS and OOS rows of every split."""
        return self.combo_rows, self.combo_rows[::-1]


def _block_sums(x: np.ndarray, layout: _Layout) -> np.ndarray:
    """``[sums | sums of squares]`` of each block (S, 2 n) of the columns of ``x`` (D, n).

    The rows of a block are added one after the other: a column's sums do not depend on
    which other columns are in ``x`` (so a batch of columns gets the same sums alone as
    among all the others; the incremental state relies on it).
    """
    n = x.shape[1]
    out = np.empty((layout.n_blocks, 2 * n))
    bounds = np.r_[layout.block_start, layout.n_days]
    for b in range(layout.n_blocks):
        rows = x[bounds[b] : bounds[b + 1]]
        total, squares = out[b, :n], out[b, n:]
        total[:] = rows[0]
        np.multiply(rows[0], rows[0], out=squares)
        for row in rows[1:]:
            total += row
            squares += row * row
    return out


class _Prefixes:
    """Per thread and direction: the partial sums of the last combination's prefixes (its
    first 1, 2, ... S/2 - 1 blocks), kept from one combination to the next and from one chunk
    to the next (consecutive chunks continue the same run of combinations)."""

    def __init__(self, half: int, width: int) -> None:
        self.combo: tuple[int, ...] | None = None
        self.stack = np.empty((max(half - 1, 1), width))


class _PrefixTable:
    """For short rows (few trials), where a per-combination loop costs more in numpy calls
    than in additions: the partial sums of every distinct prefix of ``length`` blocks, built
    level by level (``table[k] = table[k - 1][parent] + block``, the ascending order), so
    that a chunk's halves are one gather plus ``S/2 - length`` additions. Shared read-only
    by the threads."""

    # Bytes the table may take; and rows (columns x 2) up to which it is used.
    BUDGET = 4e6
    WIDTH = 1600

    def __init__(self, block_sums: np.ndarray, layout: _Layout) -> None:
        half = layout.combos.shape[1]
        counts = [first.size for first in layout.prefix_first]
        fits = [k for k in range(half - 1) if counts[k] * block_sums.shape[1] * 8 <= self.BUDGET]
        self.length = max(fits) + 1 if fits else 0  # blocks summed in the table
        table = None
        for k in range(self.length):
            first = layout.prefix_first[k]
            step = block_sums[layout.combos[first, k]]
            if table is not None:
                step += table[layout.prefix_ids[first, k - 1]]
            table = step
        self.table = table

    @classmethod
    def suits(cls, block_sums: np.ndarray) -> bool:
        return block_sums.shape[1] <= cls.WIDTH


def _half_sums(
    block_sums: np.ndarray,
    layout: _Layout,
    combos: np.ndarray,
    kept: _Prefixes | _PrefixTable | None = None,
) -> np.ndarray:
    """Sums (len(combos), 2 n) over the blocks of ``layout.combos[combos]``: ``block_sums``
    rows added one after the other in ascending block order, element by element.

    Fixed-order sums instead of a matrix product: a BLAS product's rounding may depend on
    the shape of the operands (a one-row product, the number of columns), and a column's
    performance must not depend on the batch it came in or the chunk it was scored in.
    One combination at a time: a combination shares its first blocks with the previous one
    (lexicographic order, either direction), whose partial sums ``kept`` holds, so a half
    costs about 2 row additions instead of S/2 - 1 (the same additions in the same order).
    ``combos`` should be runs of consecutive combinations (any order is correct). The loop
    is at Python level, with rows and functions bound to locals: it runs about 13,000 times
    a scan, and a matrix product over the chunk was no faster.
    """
    if isinstance(kept, _PrefixTable) and kept.length:
        blocks = layout.combos[combos]
        out = kept.table[layout.prefix_ids[combos, kept.length - 1]]
        for k in range(kept.length, blocks.shape[1]):
            out += block_sums[blocks[:, k]]
        return out
    last = layout.combos.shape[1] - 1
    if not isinstance(kept, _Prefixes):
        kept = _Prefixes(last + 1, block_sums.shape[1])
    out = np.empty((combos.size, block_sums.shape[1]))
    add, rows, stack, previous = np.add, list(block_sums), list(kept.stack), kept.combo
    tuples = layout.combo_tuples
    for target, j in zip(out, combos.tolist(), strict=True):
        combo = tuples[j]
        if last == 0:
            np.copyto(target, rows[combo[0]])
            continue
        level = 0
        if previous is not None:
            while level < last and combo[level] == previous[level]:
                level += 1  # blocks 0..level-1 summed already
        if level == 0:
            np.copyto(stack[0], rows[combo[0]])
            level = 1
        for k in range(level, last):
            add(stack[k - 1], rows[combo[k]], out=stack[k])
        add(stack[last - 1], rows[combo[last]], out=target)
        previous = combo
    kept.combo = previous
    return out


def _chunks(n_items: int, n_columns: int) -> list[tuple[int, int]]:
    """``(first, size)`` chunks of ``n_items`` split rows for ``n_columns`` columns: about
    :data:`_CACHE_CELLS` cells each, within :data:`_MEMORY_BUDGET`, no one-row last chunk."""
    n_columns = max(n_columns, 1)
    chunk = max(
        1,
        min(
            int(_MEMORY_BUDGET // (_BYTES_PER_CELL * n_columns)),
            max(2, _CACHE_CELLS // n_columns),
        ),
    )
    chunks, first = [], 0
    while first < n_items:
        size = min(chunk, n_items - first)
        if chunk > 1 and n_items - first - size == 1:
            size += 1  # a one-row chunk costs a call for one row; the result is the same
        chunks.append((first, size))
        first += size
    return chunks


def _run_chunks(make_work, chunks: list[tuple[int, int]], threads: int) -> None:
    """``work(first, size)`` for each chunk, ``work = make_work()`` once per thread, on up
    to ``threads`` threads, each taking a contiguous run of chunks in order (so that its
    :class:`_Prefixes` carry over). Each chunk writes its own rows only; numpy releases the
    GIL in the passes over a chunk's arrays."""

    def run(segment: list[tuple[int, int]]) -> None:
        work = make_work()
        for first, size in segment:
            work(first, size)

    n = min(max(threads, 1), len(chunks))
    if n > 1:
        bounds = np.linspace(0, len(chunks), n + 1).round().astype(int)
        segments = [chunks[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        with concurrent.futures.ThreadPoolExecutor(n) as pool:
            list(pool.map(run, segments))
    else:
        run(chunks)


@dataclass(eq=False)
class _Splits:
    """Per split: the chosen distinct column (-1: none yet), its IS and OOS ``t`` (the
    scaled Sharpe ratios of :func:`_half_performance`), and the trials (weighted by
    multiplicity) whose OOS ``t`` is below / equal to the chosen one's."""

    chosen: np.ndarray
    chosen_is: np.ndarray
    chosen_oos: np.ndarray
    n_worse: np.ndarray
    n_tied: np.ndarray

    @classmethod
    def empty(cls, n_splits: int) -> _Splits:
        return cls(
            chosen=np.full(n_splits, -1, dtype=np.int64),
            chosen_is=np.zeros(n_splits),
            chosen_oos=np.zeros(n_splits),
            n_worse=np.zeros(n_splits),
            n_tied=np.zeros(n_splits),
        )

    def result(self, layout: _Layout, first_column: np.ndarray, n_trials: int) -> PBOResult:
        """The :class:`PBOResult` of these splits (``first_column``: each distinct column's
        first trial)."""
        omega = (self.n_worse + (self.n_tied + 1.0) / 2.0) / (n_trials + 1.0)
        logits = np.log(omega / (1.0 - omega))
        is_rows, oos_rows = layout.split_rows()
        oos_performance = self.chosen_oos * _sharpe_factor(oos_rows)
        return PBOResult(
            pbo=float(np.mean(logits <= 0.0)),
            logits=logits,
            n_splits=layout.n_splits,
            n_blocks=layout.n_blocks,
            n_trials=n_trials,
            selected=np.asarray(first_column, dtype=np.int64)[self.chosen],
            is_performance=self.chosen_is * _sharpe_factor(is_rows),
            oos_performance=oos_performance,
            probability_of_loss=float(np.mean(oos_performance < 0.0)),
        )


def _counts(
    oos_perf: np.ndarray, threshold: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray]:
    """The (weighted) columns whose OOS ``t`` is below / equal to each row's threshold."""
    worse = oos_perf < threshold[:, None]
    tied = oos_perf == threshold[:, None]
    if weights is None:
        return (
            np.count_nonzero(worse, axis=1).astype(np.float64),
            np.count_nonzero(tied, axis=1).astype(np.float64),
        )
    # Sums of whole numbers (below 2**53): exact in any order.
    return worse @ weights, tied @ weights


def _scan(
    layout: _Layout,
    block_sums: np.ndarray,
    weights: np.ndarray | None,
    n_new: int,
    splits: _Splits,
    threads: int,
    offset: int = 0,
) -> np.ndarray:
    """Absorb a batch of columns into ``splits`` (in place); return the splits whose chosen
    column changed while ``splits`` already had one (their counts cover the batch only).

    ``block_sums`` (S, 2 n) are the batch's columns: the first ``n_new`` are new distinct
    columns (candidates, numbered from ``offset``), the rest earlier distinct columns met
    again (counted with their ``weights``, never chosen: the earlier copy wins ties). A new
    column is chosen where it beats the chosen IS ``t`` strictly (earlier columns win ties),
    which is argmax's "first on ties" over all columns.
    """
    n_splits, n_pairs = layout.n_splits, layout.n_pairs
    changed = np.zeros(n_splits, dtype=bool)

    table = _PrefixTable(block_sums, layout) if _PrefixTable.suits(block_sums) else None

    def make_work():
        width = block_sums.shape[1]
        member_prefixes, complement_prefixes = (
            (table, table) if table else (_Prefixes(half, width), _Prefixes(half, width))
        )

        def score_chunk(first: int, size: int) -> None:
            _score_chunk(first, size, member_prefixes, complement_prefixes)

        return score_chunk

    def _score_chunk(first: int, size: int, member_prefixes, complement_prefixes) -> None:
        # Writes the rows of its own splits only: chunks may run in parallel.
        pair = np.arange(first, first + size)
        complement = n_splits - 1 - pair
        perf = _half_performance(
            _half_sums(block_sums, layout, pair, member_prefixes), layout.combo_rows[pair]
        )
        perf_complement = _half_performance(
            _half_sums(block_sums, layout, complement, complement_prefixes),
            layout.combo_rows[complement],
        )
        rows = np.arange(size)
        # Split i has `member` in-sample; split n_splits - 1 - i has it out-of-sample.
        for index, is_perf, oos_perf in (
            (pair, perf, perf_complement),
            (complement, perf_complement, perf),
        ):
            before = splits.chosen[index]
            if n_new:
                best = np.argmax(is_perf[:, :n_new], axis=1)
                best_is = is_perf[rows, best]
                beat = (before < 0) | (best_is > splits.chosen_is[index])
                threshold = np.where(beat, oos_perf[rows, best], splits.chosen_oos[index])
            else:
                best = best_is = None
                beat = np.zeros(size, dtype=bool)
                threshold = splits.chosen_oos[index]
            n_worse, n_tied = _counts(oos_perf, threshold, weights)
            if beat.any():
                changed[index] = beat & (before >= 0)
                splits.chosen[index] = np.where(beat, offset + best, before)
                splits.chosen_is[index] = np.where(beat, best_is, splits.chosen_is[index])
                splits.chosen_oos[index] = threshold
            splits.n_worse[index] = np.where(beat, n_worse, splits.n_worse[index] + n_worse)
            splits.n_tied[index] = np.where(beat, n_tied, splits.n_tied[index] + n_tied)

    half = layout.n_blocks // 2
    _run_chunks(make_work, _chunks(n_pairs, block_sums.shape[1] // 2), threads)
    return np.flatnonzero(changed)


def _recount(
    layout: _Layout,
    block_sums: np.ndarray,
    weights: np.ndarray | None,
    splits: _Splits,
    which: np.ndarray,
    threads: int,
) -> None:
    """Add to the counts of the splits ``which`` the columns of ``block_sums`` (weighted):
    the earlier columns, for splits whose chosen column a batch replaced.

    Only the OOS half of those splits is evaluated, by the same arithmetic as in
    :func:`_scan` (same blocks, same order), so the ``t`` compared are the same numbers.
    """

    table = _PrefixTable(block_sums, layout) if _PrefixTable.suits(block_sums) else None

    def make_work():
        prefixes = table or _Prefixes(layout.n_blocks // 2, block_sums.shape[1])

        def count_chunk(first: int, size: int) -> None:
            _count_chunk(first, size, prefixes)

        return count_chunk

    def _count_chunk(first: int, size: int, prefixes: _Prefixes) -> None:
        index = which[first : first + size]
        oos = layout.n_splits - 1 - index  # split j's OOS blocks are combination C - 1 - j
        oos_perf = _half_performance(
            _half_sums(block_sums, layout, oos, prefixes), layout.combo_rows[oos]
        )
        n_worse, n_tied = _counts(oos_perf, splits.chosen_oos[index], weights)
        splits.n_worse[index] += n_worse
        splits.n_tied[index] += n_tied

    # One half per split here against two per pair in _scan: chunks of twice the rows.
    _run_chunks(make_work, _chunks(which.size, max(1, block_sums.shape[1] // 4)), threads)
