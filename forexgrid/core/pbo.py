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

Computation: per-block sums, sums of squares and row counts once; then the IS and OOS sums of
every trial for a chunk of splits as a (chunk, S) 0/1 membership matrix times the (S, N) block
sums. In the lexicographic order of ``itertools.combinations`` the complement of split ``i``
is split ``C - 1 - i``, so one pass over the first half of the splits gives both halves of
every split. Identical trials are evaluated once (so they tie exactly); memory stays under
about 200 MB. About ``2 C S N`` multiply-adds: D = 43, N = 10,000, S = 16 takes a few
seconds.
"""

from __future__ import annotations

import concurrent.futures
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


def _score(
    is_perf: np.ndarray, oos_perf: np.ndarray, multiplicity: np.ndarray | None, n_trials: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(distinct column selected, its IS and OOS performance, logit) of each split row.

    ``multiplicity`` is the number of trials behind each distinct column (None: all 1).
    """
    rows = np.arange(is_perf.shape[0])
    chosen = np.argmax(is_perf, axis=1)  # distinct columns are in first-occurrence order
    chosen_oos = oos_perf[rows, chosen]
    worse = oos_perf < chosen_oos[:, None]
    tied = oos_perf == chosen_oos[:, None]  # includes the chosen trial
    if multiplicity is None:
        n_worse = np.count_nonzero(worse, axis=1)
        n_tied = np.count_nonzero(tied, axis=1)
    else:
        n_worse = worse @ multiplicity
        n_tied = tied @ multiplicity
    omega = (n_worse + (n_tied + 1.0) / 2.0) / (n_trials + 1.0)
    return chosen, is_perf[rows, chosen], chosen_oos, np.log(omega / (1.0 - omega))


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
    n_days, n_trials = x.shape
    n_blocks_used = min(requested, n_days - n_days % 2)
    if n_blocks_used < requested:
        logger.debug(
            "PBO: %d days are fewer than the %d blocks asked for; using %d blocks",
            n_days,
            requested,
            n_blocks_used,
        )
    if n_blocks_used < 2 or n_trials < 2:
        return _undefined(max(n_blocks_used, 0), n_trials)

    # Identical trials are scored once and weighted by their multiplicity in the ranks;
    # ordering the distinct columns by first occurrence keeps argmax's "first on ties".
    distinct, first_column, multiplicity = np.unique(
        x, axis=1, return_index=True, return_counts=True
    )
    order = np.argsort(first_column)
    distinct, first_column = distinct[:, order], first_column[order]
    multiplicity = multiplicity[order].astype(np.float64)
    n_distinct = distinct.shape[1]
    weights = None if n_distinct == n_trials else multiplicity

    block_start = np.cumsum(
        [0] + [len(b) for b in np.array_split(np.arange(n_days), n_blocks_used)[:-1]]
    )
    block_sums = np.hstack(
        [
            np.add.reduceat(distinct, block_start, axis=0),
            np.add.reduceat(distinct**2, block_start, axis=0),
        ]
    )  # (S, 2 * distinct)
    block_rows = np.diff(np.r_[block_start, n_days]).astype(np.float64)

    n_splits = math.comb(n_blocks_used, n_blocks_used // 2)
    selected = np.empty(n_splits, dtype=np.int64)
    is_performance = np.empty(n_splits)
    oos_performance = np.empty(n_splits)
    logits = np.empty(n_splits)

    chunk = max(
        1,
        min(
            int(_MEMORY_BUDGET // (_BYTES_PER_CELL * n_distinct)),
            max(2, _CACHE_CELLS // n_distinct),
        ),
    )
    n_pairs = n_splits // 2
    half = n_blocks_used // 2
    in_sample = np.fromiter(
        itertools.chain.from_iterable(
            itertools.islice(itertools.combinations(range(n_blocks_used), half), n_pairs)
        ),
        dtype=np.intp,
        count=n_pairs * half,
    ).reshape(n_pairs, half)
    chunks, first = [], 0
    while first < n_pairs:
        size = min(chunk, n_pairs - first)
        if chunk > 1 and n_pairs - first - size == 1:
            # No one-row chunk at the end: BLAS may round a one-row product differently
            # (1 ulp), and the result would then depend on the chunk size.
            size += 1
        chunks.append((first, size))
        first += size

    def score_chunk(first: int, size: int) -> None:
        # Writes the rows of its own splits only: chunks may run in parallel.
        combos = in_sample[first : first + size]
        split = np.arange(first, first + size)
        member = np.zeros((size, n_blocks_used))
        member[np.arange(size)[:, None], combos] = 1.0
        complement = 1.0 - member  # the IS blocks of split n_splits - 1 - i
        in_rows, out_rows = member @ block_rows, complement @ block_rows
        perf = _half_performance(member @ block_sums, in_rows)
        perf_complement = _half_performance(complement @ block_sums, out_rows)
        # Split i has `member` in-sample; split n_splits - 1 - i has it out-of-sample.
        for index, is_perf, oos_perf, is_rows, oos_rows in (
            (split, perf, perf_complement, in_rows, out_rows),
            (n_splits - 1 - split, perf_complement, perf, out_rows, in_rows),
        ):
            chosen, chosen_is, chosen_oos, logit = _score(is_perf, oos_perf, weights, n_trials)
            selected[index] = first_column[chosen]
            is_performance[index] = chosen_is * _sharpe_factor(is_rows)
            oos_performance[index] = chosen_oos * _sharpe_factor(oos_rows)
            logits[index] = logit

    if threads > 1 and len(chunks) > 1:
        # numpy releases the GIL in the products and passes over a chunk's arrays.
        with concurrent.futures.ThreadPoolExecutor(min(threads, len(chunks))) as pool:
            list(pool.map(lambda bounds: score_chunk(*bounds), chunks))
    else:
        for bounds in chunks:
            score_chunk(*bounds)

    return PBOResult(
        pbo=float(np.mean(logits <= 0.0)),
        logits=logits,
        n_splits=n_splits,
        n_blocks=n_blocks_used,
        n_trials=n_trials,
        selected=selected,
        is_performance=is_performance,
        oos_performance=oos_performance,
        probability_of_loss=float(np.mean(oos_performance < 0.0)),
    )
