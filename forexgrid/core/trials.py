"""Trials of a selection scope: their daily returns, additive statistics and deflated Sharpe.

A *trial* is one (configuration, inference combination) scored on a (symbol, regime). All
trials of one *scope* (symbol, regime, validation window, regime-rule version) share one
daily axis, :func:`trading_days` of the validation window, and each keeps its DAILY
validation returns on it (:func:`daily_returns`; a day without a position is 0).

Selection must deflate for the whole grid, and the runner updates the statistics after every
configuration, so they come from :class:`TrialStats`, a summary that is *additive* (adding
trials or merging two summaries is a sum) and whose size does not depend on the number of
trials: the count ``N``, the sum and sum of squares of the trials' daily Sharpe ratios, the
``D x D`` gram matrix and the ``D``-vector sum of the standardised daily series, and the
number of trials active on each day (for the effective number of independent trials, below).

**Effective number of trials.** The deflated Sharpe ratio asks how high the best of ``N``
trials climbs by luck. Trials share a common component (the same market, the same model's
signal at other thresholds), which moves all of them together and does not make the best one
stand out; what the best is selected on is each trial's *deviation* from the others. So
``N_eff`` counts the independent directions of those deviations: one plus the eigenvalue
participation ratio of the correlation matrix ``R`` of the trials' deviations from their
cross-sectional mean::

    N_eff = 1 + (tr R)^2 / tr(R^2), at most N

The deviations of ``K`` independent trials span ``K - 1`` directions (their mean is taken
out), hence the one. ``N_eff`` is ``N`` for uncorrelated trials, and also for trials that
share one common factor and are otherwise independent (their deviations are independent);
``K`` for ``K`` independent groups of copies; 1 for identical trials; 2 for a trial and its
mirror image (choosing the better of ``x`` and ``-x`` is a real choice). ``R`` is never
formed: with ``z_k`` trial k's daily series standardised to mean 0 and sample std 1
(ddof=1), the deviations are ``e_k = z_k - m`` with ``m`` the mean of the ``z_k``; their gram
is ``G - s s^T / N`` with ``G = sum_k z_k z_k^T`` (D x D) and ``s = sum_k z_k``, both additive,
and in correlation units ``tr R = tr(G - s s^T / N) / (D - 1)`` and ``tr(R^2) =
||G - s s^T / N||_F^2 / (D - 1)^2``. (The plain participation ratio of the trials'
correlations, without taking the common component out, counts trials sharing one factor as a
handful: measured on random-walk grids, it deflated too little and called 19% of lists
significant on pure noise.)

*Finite-sample correction.* A sample correlation of two independent series of ``n``
observations has ``E[r^2] = 1 / (n - 1)`` exactly, whatever the distribution (under
exchangeability, i.e. the permutation null: ``r`` is then a random permutation's inner
product of two fixed standardised vectors, whose variance is ``1 / (n - 1)``). With ~43 daily
observations this noise swamps the signal: uncorrected, the ratio stays below ``n - 1`` even
for thousands of independent trials. Each pair's ``r^2`` is therefore replaced by the
adjusted ``((n - 1) r^2 - 1) / (n - 2)`` (Ezekiel's adjusted R^2 with one regressor), whose
null mean is exactly 0 and which is exactly 1 at ``|r| = 1``. ``n`` is the number of days that
carry information: a regime that held on 8 of the window's 42 days leaves every trial at 0 on
the other 34, and two independent trials then correlate like series of 8 observations, not
42. So ``n`` is the participation ratio of the days' activity, ``(sum_t a_t)^2 / sum_t a_t^2``
with ``a_t`` the number of trials with a non-zero return on day ``t`` (``D`` when every trial
trades every day; a day on which a single trial of thousands trades counts for nothing).
(Measured on 30 random-walk grids: with ``n = D`` the sparse regimes' lists were called
significant up to 14% of the time, with the active days 3%.) With ``T = tr R``, the diagonal
taken as ``T^2 / N`` (deviations of equal length) and ``off = tr(R^2) - T^2 / N`` the sum over
the ``N (N - 1)`` off-diagonal pairs::

    off_corrected = max((off - N (N - 1) (T / N)^2 / (n - 1)) * (n - 1) / (n - 2), 0)
    N_eff = min(1 + T^2 / (T^2 / N + off_corrected), N)

``N_eff = N`` when ``N <= 1`` or ``n < 3`` (too few informative days to estimate a
correlation, so never deflate less than the raw count); 1 when every trial is the same
series (``T = 0``).

**Variance at that level.** ``SR* = sqrt(V) E[max of N_eff standard normals]`` needs the
variance ``V`` of the Sharpe ratio of one of the ``N_eff`` independent trials. Under the null
hypothesis the DSR tests (no trial has skill) it is the sampling variance of a Sharpe ratio
estimated from ``D`` returns, ``1 / (D - 1)`` (Lo 2002; the skewness and kurtosis terms of
Mertens 2002 vanish at SR = 0): :attr:`TrialStats.null_sharpe_variance`. The cross-sectional
variance of the correlated trials' Sharpe ratios (:attr:`TrialStats.sharpe_variance`, kept
for reference) is smaller by about the trials' average correlation, which ``N_eff`` already
accounts for: pairing the two deflated twice (measured on 30 random-walk grids of the
issue's 8 configurations, 146 lists: the cross-sectional variance was 0.67 of the null one;
with it 8 to 14% of lists were called significant, with the null variance 2.7%, against
the nominal 5%).

**Deflated Sharpe ratio.** :func:`deflated_sharpe` scores one trial against its scope: the
DSR of :mod:`forexgrid.core.stats` with the daily Sharpe ratio, skewness and kurtosis of the
trial, ``V`` and ``N_eff`` of the scope (which includes the trial itself), and returns the z
statistic as well (rank by z: see :func:`forexgrid.core.stats.deflated_sharpe_z`).
"""

from __future__ import annotations

import datetime
import math
import numbers
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from forexgrid.core.stats import (
    deflated_sharpe_z,
    expected_max_sharpe,
    sharpe_moments,
    sharpe_ratio,
)

__all__ = [
    "TrialStats",
    "daily_returns",
    "deflated_sharpe",
    "effective_number_of_trials",
    "trading_days",
]

_STANDARD_NORMAL = NormalDist()
_DAY = np.dtype("datetime64[D]")


# --------------------------------------------------------------------------- daily axis


def _as_day(value: object, name: str) -> np.datetime64:
    """A calendar day as ``datetime64[D]`` from a date, datetime, Timestamp or datetime64."""
    if isinstance(value, np.datetime64):
        if np.isnat(value):
            raise ValueError(f"{name} must be a date, got NaT")
        return value.astype(_DAY)
    if isinstance(value, datetime.datetime):  # pandas.Timestamp is a datetime subclass
        if value != value:  # pandas.NaT
            raise ValueError(f"{name} must be a date, got NaT")
        return np.datetime64(value.date(), "D")
    if isinstance(value, datetime.date):
        return np.datetime64(value, "D")
    raise ValueError(
        f"{name} must be a datetime.date, numpy.datetime64 or pandas.Timestamp, got {value!r}"
    )


def trading_days(first_day: object, last_day: object) -> np.ndarray:
    """The Monday-Friday dates in ``[first_day, last_day]``: the daily axis of a scope.

    Every trial of a scope shares this axis, so their daily series line up day by day.
    Holidays are not removed: a weekday without bars is a day with return 0.

    Parameters
    ----------
    first_day, last_day : datetime.date, numpy.datetime64 or pandas.Timestamp
        The first and last calendar day of the window, both included; a time of day is
        dropped (a datetime64 is floored to its day).

    Returns
    -------
    numpy.ndarray of datetime64[D], shape (D,)
        The weekdays in the window, increasing (empty if the window holds none).

    Raises
    ------
    ValueError
        If a bound is not a date (or is NaT), or ``last_day`` is before ``first_day``.
    """
    first = _as_day(first_day, "first_day")
    last = _as_day(last_day, "last_day")
    if last < first:
        raise ValueError(f"last_day must not be before first_day, got {first} > {last}")
    days = np.arange(first, last + np.timedelta64(1, "D"), dtype=_DAY)
    return days[np.is_busday(days, weekmask="1111100")]


def _check_day_array(values: np.ndarray, name: str, length: int | None = None) -> np.ndarray:
    a = np.asarray(values)
    if a.dtype != _DAY or a.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D datetime64[D] array (convert with .astype('datetime64[D]') "
            f"after mapping each bar to its trading date), got dtype {a.dtype} and shape "
            f"{a.shape}"
        )
    if length is not None and a.size != length:
        raise ValueError(f"{name} must have {length} entries (one per bar), got {a.size}")
    return a


def daily_returns(
    returns: np.ndarray, masks: np.ndarray, dates: np.ndarray, days: np.ndarray
) -> np.ndarray:
    """Per-regime daily sums of per-bar returns on a daily axis.

    ``out[m, d, k] = sum of returns[t, k] over the bars t with dates[t] == days[d] and
    masks[m, t]``. NaN returns (bars outside the backtest) count as 0; bars whose date is not
    on the axis are ignored; days without bars are 0. Sums are taken in float64.

    Parameters
    ----------
    returns : array_like, shape (T, K)
        Per-bar net log returns of K strategies (NaN = bar outside the backtest).
    masks : numpy.ndarray of bool, shape (M, T)
        One row per regime: the bars in the regime (row 0 is usually all True).
    dates : numpy.ndarray of datetime64[D], shape (T,)
        The trading date of each bar.
    days : numpy.ndarray of datetime64[D], shape (D,)
        The daily axis, strictly increasing (:func:`trading_days`).

    Returns
    -------
    numpy.ndarray of float32, shape (M, D, K)

    Raises
    ------
    ValueError
        If ``returns`` is not a 2-D real array, ``masks`` not a 2-D boolean array with one
        column per bar, ``dates`` / ``days`` not 1-D datetime64[D] arrays (``dates`` with one
        entry per bar), or ``days`` not strictly increasing.
    """
    r = np.asarray(returns)
    if r.ndim != 2 or not (
        np.issubdtype(r.dtype, np.floating) or np.issubdtype(r.dtype, np.integer)
    ):
        raise ValueError(
            f"returns must be a 2-D real array (T bars, K strategies), got dtype {r.dtype} "
            f"and shape {r.shape}"
        )
    n_bars, n_strategies = r.shape
    m = np.asarray(masks)
    if m.dtype != np.bool_ or m.ndim != 2 or m.shape[1] != n_bars:
        raise ValueError(
            f"masks must be a boolean array of shape (M regimes, {n_bars} bars), got dtype "
            f"{m.dtype} and shape {m.shape}"
        )
    dates = _check_day_array(dates, "dates", n_bars)
    days = _check_day_array(days, "days")
    if days.size > 1 and not (days[1:] > days[:-1]).all():
        raise ValueError("days must be strictly increasing (use trading_days())")

    out = np.zeros((m.shape[0], days.size, n_strategies), dtype=np.float32)
    if days.size == 0 or n_bars == 0:
        return out
    position = np.searchsorted(days, dates)
    on_axis = (position < days.size) & (days[np.minimum(position, days.size - 1)] == dates)
    bars = np.flatnonzero(on_axis)
    if bars.size == 0:
        return out
    # Group the bars by day once; each regime then sums its masked returns per group.
    bars = bars[np.argsort(position[bars], kind="stable")]
    day_of_bar = position[bars]
    group_start = np.flatnonzero(np.r_[True, day_of_bar[1:] != day_of_bar[:-1]])
    group_day = day_of_bar[group_start]
    bar_returns = r[bars].astype(np.float64)
    bar_returns[np.isnan(bar_returns)] = 0.0
    for regime, mask in enumerate(m[:, bars]):
        summed = np.add.reduceat(bar_returns * mask[:, None], group_start, axis=0)
        out[regime, group_day] = summed
    return out


# --------------------------------------------------------------------------- statistics


def _check_count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


@dataclass(frozen=True, eq=False)
class TrialStats:
    """Additive summary of a set of trials on a D-day axis.

    Only trials with a finite, non-degenerate daily Sharpe ratio count (the rule of
    :func:`forexgrid.core.stats.sharpe_ratio`: at least 2 days, all finite, non-zero std);
    a strategy that never traded in the window has no Sharpe ratio and is not a trial here.
    Build with :meth:`empty` or :meth:`from_returns`, grow with :meth:`add` and
    :meth:`merge` (both return a new object). Adding K trials costs O(K D^2); every property
    costs O(D^2) at most, whatever the number of trials added.

    Attributes
    ----------
    n_days : int
        ``D``, the length of the daily axis.
    n_trials : int
        ``N``, the number of trials counted.
    sharpe_sum, sharpe_sq_sum : float
        Sum and sum of squares of the trials' daily Sharpe ratios (``mean / std(ddof=1)``).
    gram : numpy.ndarray of float64, shape (D, D), read-only
        ``sum over trials of z z^T``, ``z`` the trial's daily series standardised to mean 0
        and sample std 1 (ddof=1).
    z_sum : numpy.ndarray of float64, shape (D,), read-only
        ``sum over trials of z``.
    active_days : numpy.ndarray of float64, shape (D,), read-only
        Per day, the number of trials with a non-zero return.
    """

    n_days: int
    n_trials: int
    sharpe_sum: float
    sharpe_sq_sum: float
    gram: np.ndarray
    z_sum: np.ndarray
    active_days: np.ndarray

    def __post_init__(self) -> None:
        set_field = object.__setattr__  # the documented way to normalise a frozen field
        set_field(self, "n_days", _check_count(self.n_days, "n_days", 1))
        set_field(self, "n_trials", _check_count(self.n_trials, "n_trials", 0))
        set_field(self, "sharpe_sum", float(self.sharpe_sum))
        set_field(self, "sharpe_sq_sum", float(self.sharpe_sq_sum))
        gram = np.array(self.gram, dtype=np.float64)
        if gram.shape != (self.n_days, self.n_days):
            raise ValueError(
                f"gram must have shape ({self.n_days}, {self.n_days}) (n_days x n_days), "
                f"got {gram.shape}"
            )
        gram.setflags(write=False)
        set_field(self, "gram", gram)
        z_sum = np.array(self.z_sum, dtype=np.float64)
        if z_sum.shape != (self.n_days,):
            raise ValueError(f"z_sum must have shape ({self.n_days},) (n_days), got {z_sum.shape}")
        z_sum.setflags(write=False)
        set_field(self, "z_sum", z_sum)
        active = np.array(self.active_days, dtype=np.float64)
        if active.shape != (self.n_days,):
            raise ValueError(
                f"active_days must have shape ({self.n_days},) (n_days), got {active.shape}"
            )
        active.setflags(write=False)
        set_field(self, "active_days", active)

    @classmethod
    def empty(cls, n_days: int) -> TrialStats:
        """No trials yet on an ``n_days`` axis.

        Raises
        ------
        ValueError
            If ``n_days`` is not an integer >= 1.
        """
        n_days = _check_count(n_days, "n_days", 1)
        zeros = np.zeros(n_days)
        return cls(n_days, 0, 0.0, 0.0, np.zeros((n_days, n_days)), zeros, zeros)

    @classmethod
    def from_returns(cls, daily: np.ndarray) -> TrialStats:
        """The summary of the trials in the columns of ``daily``, shape (D, K).

        Raises
        ------
        ValueError
            If ``daily`` is not a 2-D real array with at least one row.
        """
        d = np.asarray(daily)
        if d.ndim != 2 or d.shape[0] < 1:
            raise ValueError(
                f"daily must be a 2-D array (D days >= 1, K trials), got shape {d.shape}"
            )
        return cls.empty(d.shape[0]).add(d)

    def _check_daily(self, daily: np.ndarray) -> np.ndarray:
        d = np.asarray(daily)
        if (
            d.ndim != 2
            or d.shape[0] != self.n_days
            or not (np.issubdtype(d.dtype, np.floating) or np.issubdtype(d.dtype, np.integer))
        ):
            raise ValueError(
                f"daily must be a real array of shape ({self.n_days} days, K trials) "
                f"(a single trial as daily[:, None]), got dtype {d.dtype} and shape {d.shape}"
            )
        return d.astype(np.float64, copy=False)

    def sharpe_of(self, daily: np.ndarray) -> np.ndarray:
        """Daily Sharpe ratio of each column of ``daily`` (D, K); NaN where degenerate.

        Raises
        ------
        ValueError
            If ``daily`` is not a real array of shape (n_days, K).
        """
        return sharpe_ratio(self._check_daily(daily))

    def counts(self, daily: np.ndarray) -> np.ndarray:
        """Which columns of ``daily`` (D, K) are trials: a finite, non-degenerate Sharpe ratio
        (a combination that never traded in the window is not one).

        Raises
        ------
        ValueError
            If ``daily`` is not a real array of shape (n_days, K).
        """
        return np.isfinite(self.sharpe_of(daily))

    def add(self, daily: np.ndarray) -> TrialStats:
        """A new summary with the trials in the columns of ``daily`` (D, K) added.

        Columns whose Sharpe ratio is NaN (degenerate) are skipped. Cost O(K D^2).

        Raises
        ------
        ValueError
            If ``daily`` is not a real array of shape (n_days, K).
        """
        d = self._check_daily(daily)
        sharpe = sharpe_ratio(d)
        counted = np.isfinite(sharpe)  # as counts()
        if not counted.any():
            return self
        sharpe = sharpe[counted]
        d = d[:, counted]
        z = (d - d.mean(axis=0)) / d.std(axis=0, ddof=1)
        return TrialStats(
            self.n_days,
            self.n_trials + int(counted.sum()),
            self.sharpe_sum + float(sharpe.sum()),
            self.sharpe_sq_sum + float(sharpe @ sharpe),
            self.gram + z @ z.T,
            self.z_sum + z.sum(axis=1),
            self.active_days + (d != 0).sum(axis=1),
        )

    def merge(self, other: TrialStats) -> TrialStats:
        """A new summary of the trials of ``self`` and ``other`` (same axis length).

        Raises
        ------
        ValueError
            If ``other`` is not a TrialStats or has a different ``n_days``.
        """
        if not isinstance(other, TrialStats):
            raise ValueError(f"other must be a TrialStats, got {type(other).__name__}")
        if other.n_days != self.n_days:
            raise ValueError(
                f"cannot merge trial statistics of different daily axes: n_days "
                f"{self.n_days} and {other.n_days}"
            )
        return TrialStats(
            self.n_days,
            self.n_trials + other.n_trials,
            self.sharpe_sum + other.sharpe_sum,
            self.sharpe_sq_sum + other.sharpe_sq_sum,
            self.gram + other.gram,
            self.z_sum + other.z_sum,
            self.active_days + other.active_days,
        )

    @property
    def sharpe_variance(self) -> float:
        """Sample variance (ddof=1) of the trials' daily Sharpe ratios; NaN if N < 2.

        For reference: ``SR*`` uses :attr:`null_sharpe_variance` (module docstring). From
        the sums; floored at 0 (rounding of equal Sharpe ratios can give -1e-18).
        """
        n = self.n_trials
        if n < 2:
            return math.nan
        centred = self.sharpe_sq_sum - self.sharpe_sum * self.sharpe_sum / n
        return max(centred / (n - 1), 0.0)

    @property
    def null_sharpe_variance(self) -> float:
        """``V``: the sampling variance ``1 / (D - 1)`` of a daily Sharpe ratio of a trial
        without skill (module docstring); NaN when ``D < 2``."""
        return 1.0 / (self.n_days - 1) if self.n_days >= 2 else math.nan

    @property
    def observation_days(self) -> float:
        """``n``: the days that carry information, the participation ratio of the days'
        activity (module docstring); ``D`` when every trial trades every day, 0 without
        trials."""
        total = float(self.active_days.sum())
        if total <= 0:
            return 0.0
        return total * total / float(self.active_days @ self.active_days)

    @property
    def effective_trials(self) -> float:
        """``N_eff``: one plus the participation ratio of the correlations of the trials'
        deviations from their mean, corrected for the sample size (module docstring).

        ``N`` when ``N <= 1`` or fewer than 3 informative days; otherwise in ``[1, N]``.
        """
        n = float(self.n_trials)
        days = self.observation_days
        if n <= 1 or days < 3:
            return n
        deviations = self.gram - np.outer(self.z_sum, self.z_sum) / n
        trace = float(np.trace(deviations)) / (self.n_days - 1)
        if trace <= 1e-12 * n:
            return 1.0  # every trial is the same series
        sum_sq = float(np.sum(deviations * deviations)) / (self.n_days - 1) ** 2
        diagonal = trace * trace / n
        null_off = n * (n - 1) * (trace / n) ** 2 / (days - 1)
        off = max((sum_sq - diagonal - null_off) * (days - 1) / (days - 2), 0.0)
        return min(1.0 + trace * trace / (diagonal + off), n)

    @property
    def expected_max_sharpe(self) -> float:
        """``SR*`` of the scope: ``stats.expected_max_sharpe(V, N_eff)`` with the null
        variance ``V``: 0 for a single trial, NaN without trials."""
        if self.n_trials < 1 or math.isnan(self.null_sharpe_variance):
            return math.nan
        return expected_max_sharpe(self.null_sharpe_variance, self.effective_trials)


def effective_number_of_trials(daily: np.ndarray) -> float:
    """Corrected participation ratio of the trials in the columns of ``daily`` (D, N).

    The same as ``TrialStats.from_returns(daily).effective_trials`` (definition and
    finite-sample correction in the module docstring); degenerate columns do not count.

    Raises
    ------
    ValueError
        If ``daily`` is not a 2-D real array with at least one row.
    """
    return TrialStats.from_returns(daily).effective_trials


def deflated_sharpe(daily: np.ndarray, stats: TrialStats) -> tuple[float, float]:
    """Deflated Sharpe ratio and its z of one trial's daily series against its scope.

    ``z = stats.deflated_sharpe_z(SR, D, skew, kurt, SR*)`` with the trial's daily Sharpe
    ratio, skewness and non-excess kurtosis (:func:`forexgrid.core.stats.sharpe_moments`) and
    ``SR* = stats.expected_max_sharpe`` (``V`` and ``N_eff`` of the scope, which should
    include this trial); ``DSR = Phi(z)``. Rank by ``z``: it does not saturate near 1.

    Parameters
    ----------
    daily : array_like, shape (D,)
        The trial's daily returns on the scope's axis.
    stats : TrialStats
        The scope's trials.

    Returns
    -------
    tuple of (float, float)
        ``(dsr, z)``; ``(nan, nan)`` when the trial's series is degenerate or ``stats``
        holds no trial.

    Raises
    ------
    ValueError
        If ``daily`` is not 1-D with ``stats.n_days`` entries.
    """
    d = np.asarray(daily)
    if d.ndim != 1 or d.size != stats.n_days:
        raise ValueError(
            f"daily must be one trial's series of shape ({stats.n_days},) on the scope's "
            f"axis, got shape {d.shape}"
        )
    sr, skew, kurt, n_obs = sharpe_moments(d.astype(np.float64, copy=False))
    sr_star = stats.expected_max_sharpe
    if math.isnan(sr) or math.isnan(sr_star):
        return math.nan, math.nan
    z = deflated_sharpe_z(sr, n_obs, skew, kurt, sr_star)
    if math.isnan(z):
        return math.nan, math.nan
    return _STANDARD_NORMAL.cdf(z), z
