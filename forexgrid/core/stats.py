"""Sharpe-ratio statistics: Sharpe, probabilistic and deflated Sharpe ratios.

The probabilistic Sharpe ratio (PSR) and the deflated Sharpe ratio (DSR) follow Bailey and
Lopez de Prado, "The Sharpe Ratio Efficient Frontier" (2012) and "The Deflated Sharpe Ratio:
Correcting for Selection Bias, Backtest Overfitting and Non-Normality" (2014):

``PSR(SR*) = Phi( (SR - SR*) * sqrt(n - 1) / sqrt(1 - skew * SR + (kurt - 1) / 4 * SR^2) )``

with the per-bar (not annualised) Sharpe ratio ``SR``, the skewness ``skew`` and the
NON-excess kurtosis ``kurt`` (3 for a normal distribution) of the ``n`` per-bar returns. The
DSR is the PSR against the Sharpe ratio a best-of-``N`` selection is expected to reach by luck:

``SR* = sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e)))``

where ``V`` is the variance of the per-bar Sharpe ratios of the ``N`` trials and ``gamma`` the
Euler-Mascheroni constant. ``N`` may be fractional: an *effective* number of independent trials
(``forexgrid.core.trials``) is a real number >= 1.

Estimators (stated because the papers leave them open): the Sharpe ratio is mean / std with
``ddof=1`` (the same as the backtest metrics); skewness and kurtosis are the biased (population)
moment ratios ``m3 / m2**1.5`` and ``m4 / m2**2``, as ``scipy.stats.skew`` and
``scipy.stats.kurtosis(fisher=False)`` with ``bias=True``.

Degenerate inputs give NaN rather than an error, because a grid evaluates many combinations and
some of them legitimately have no statistic (a strategy that never trades): fewer than 2
returns, any non-finite return, a zero standard deviation, a NaN variance of trials.
"""

from __future__ import annotations

import logging
import math
import numbers
from statistics import NormalDist

import numpy as np

__all__ = [
    "EULER_GAMMA",
    "deflated_sharpe_ratio",
    "deflated_sharpe_z",
    "expected_max_sharpe",
    "probabilistic_sharpe_ratio",
    "psr_from_moments",
    "sharpe_moments",
    "sharpe_ratio",
]

logger = logging.getLogger(__name__)

EULER_GAMMA = 0.5772156649015329
"""The Euler-Mascheroni constant."""

# statistics.NormalDist instead of scipy.stats.norm: same precision for cdf / inv_cdf, and
# importing scipy.stats costs a noticeable fraction of a second at `import forexgrid`.
_STANDARD_NORMAL = NormalDist()

# A standard deviation at or below this fraction of |mean| is rounding noise of a constant
# series (a two-pass std of n equal values is ~1e-15 * |value|, not 0); treating it as zero
# avoids reporting Sharpe ratios of ~1e15 for a series that never varies.
_REL_STD_FLOOR = 1e-10


def _std_is_degenerate(std: np.ndarray | float, mean: np.ndarray | float) -> np.ndarray:
    """Return where ``std`` counts as zero (exactly 0 or rounding noise of a constant series)."""
    std = np.asarray(std, dtype=float)
    return (std == 0.0) | (std <= _REL_STD_FLOOR * np.abs(np.asarray(mean, dtype=float)))


def _check_bars_per_year(bars_per_year: float | None) -> float | None:
    """``bars_per_year`` as a float (None passes through); ValueError unless finite > 0."""
    if bars_per_year is None:
        return None
    if (
        isinstance(bars_per_year, bool)
        or not isinstance(bars_per_year, numbers.Real)
        or not math.isfinite(bars_per_year)
        or bars_per_year <= 0
    ):
        raise ValueError(
            f"bars_per_year must be a finite number > 0 (e.g. 6240 for 1h bars), "
            f"got {bars_per_year!r}"
        )
    return float(bars_per_year)


def sharpe_ratio(returns: np.ndarray, bars_per_year: float | None = None) -> float | np.ndarray:
    """Sharpe ratio of per-bar returns: ``mean / std(ddof=1)``, annualised when asked.

    Parameters
    ----------
    returns : array_like, shape (T,) or (T, K)
        Per-bar returns (log returns in forexgrid). A 2-D array gives one ratio per column.
    bars_per_year : float, optional
        When given, the ratio is multiplied by ``sqrt(bars_per_year)``; when None it is the
        per-bar Sharpe ratio used by the PSR and DSR.

    Returns
    -------
    float or numpy.ndarray
        A float for 1-D input, an array of shape (K,) for 2-D input. NaN where there are fewer
        than 2 returns, any return is non-finite, or the standard deviation is zero.

    Raises
    ------
    ValueError
        If ``returns`` is not 1-D or 2-D, or ``bars_per_year`` is not a finite number > 0.
    """
    _check_bars_per_year(bars_per_year)
    r = np.asarray(returns, dtype=float)
    if r.ndim not in (1, 2):
        raise ValueError(f"returns must be 1-D (T,) or 2-D (T, K), got shape {r.shape}")
    one_d = r.ndim == 1
    if one_d:
        r = r[:, None]
    n = r.shape[0]
    if n < 2:
        out = np.full(r.shape[1], np.nan)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = r.mean(axis=0)
            std = r.std(axis=0, ddof=1)
            out = mean / std
        # NaN/inf returns propagate into mean/std already; the explicit check also catches
        # +inf and -inf together, which would otherwise give a NaN only by accident.
        out[~np.isfinite(r).all(axis=0) | _std_is_degenerate(std, mean)] = np.nan
    if bars_per_year is not None:
        out = out * math.sqrt(bars_per_year)
    return float(out[0]) if one_d else out


def _moments(r: np.ndarray) -> tuple[float, float, float, int]:
    """Return (per-bar Sharpe, skewness, non-excess kurtosis, n) of a clean 1-D series."""
    n = r.size
    mean = r.mean()
    std = r.std(ddof=1)
    if _std_is_degenerate(std, mean):
        return math.nan, math.nan, math.nan, n
    d = r - mean
    m2 = np.mean(d * d)
    skew = float(np.mean(d**3) / m2**1.5)
    kurt = float(np.mean(d**4) / m2**2)
    return float(mean / std), skew, kurt, n


def sharpe_moments(returns: np.ndarray) -> tuple[float, float, float, int]:
    """Per-observation Sharpe ratio, skewness, non-excess kurtosis and length of a series.

    The estimators of the module docstring: Sharpe = ``mean / std(ddof=1)``, skewness
    ``m3 / m2**1.5`` and kurtosis ``m4 / m2**2`` (biased moment ratios, 3 for a normal
    distribution). These are the inputs of :func:`psr_from_moments` and
    :func:`deflated_sharpe_z`.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Returns, one per observation (bar or day).

    Returns
    -------
    tuple of (float, float, float, int)
        ``(sharpe, skew, kurtosis, n)`` with ``n = T``. Sharpe, skewness and kurtosis are NaN
        when the series is degenerate: fewer than 2 returns, any non-finite return, or a zero
        standard deviation.

    Raises
    ------
    ValueError
        If ``returns`` is not 1-D.
    """
    r = _clean_series(returns)
    if r is None:
        return math.nan, math.nan, math.nan, int(np.size(returns))
    return _moments(r)


def _as_n_obs(n_obs: int) -> float:
    try:
        return float(n_obs)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"n_obs must be a number of returns, got {n_obs!r}") from exc


def deflated_sharpe_z(
    sr: float, n_obs: int, skew: float, kurtosis: float, sr_benchmark: float
) -> float:
    """The z statistic inside the probabilistic (and deflated) Sharpe ratio.

    ``z = (sr - sr_benchmark) * sqrt(n_obs - 1) / sqrt(1 - skew*sr + (kurtosis - 1)/4*sr^2)``,
    so that ``PSR = Phi(z)``; with ``sr_benchmark = SR*`` (:func:`expected_max_sharpe`) it is
    the z of the deflated Sharpe ratio.

    Rank and compare candidates by ``z`` rather than by the probability: ``Phi`` is strictly
    increasing, so ranking by ``z`` is ranking by DSR, but the probability saturates near 1
    (``Phi(4) = 0.99997``, ``Phi(8) = 1 - 7e-16``, and from ``z = 8.3`` on it rounds to
    exactly 1.0) while ``z`` does not, so an improvement margin measured on ``z`` stays
    meaningful among strong candidates.

    Parameters
    ----------
    sr : float
        Per-observation (not annualised) Sharpe ratio.
    n_obs : int
        Number of returns the ratio was estimated on.
    skew : float
        Skewness of the returns.
    kurtosis : float
        NON-excess kurtosis of the returns (3 for a normal distribution).
    sr_benchmark : float
        Per-observation Sharpe ratio to beat (0 for the PSR, ``SR*`` for the DSR).

    Returns
    -------
    float
        The z statistic; NaN if any input is NaN or infinite, ``n_obs < 2`` or the variance
        term is not positive.

    Raises
    ------
    ValueError
        If ``n_obs`` is not a number (NaN inputs give NaN, not an error).
    """
    n_obs = _as_n_obs(n_obs)
    values = (sr, skew, kurtosis, sr_benchmark)
    if not all(math.isfinite(v) for v in values) or not n_obs >= 2:
        return math.nan
    var_term = 1.0 - skew * sr + (kurtosis - 1.0) / 4.0 * sr * sr
    if var_term <= 0:
        # Impossible for moments of a real sample (kurt >= 1 + skew^2 makes it a square),
        # so this only happens with inconsistent hand-given moments.
        return math.nan
    return (sr - sr_benchmark) * math.sqrt(n_obs - 1.0) / math.sqrt(var_term)


def psr_from_moments(
    sr: float, n_obs: int, skew: float, kurtosis: float, sr_benchmark: float = 0.0
) -> float:
    """Probabilistic Sharpe ratio from the summary statistics of a return series.

    ``Phi(z)`` with ``z`` from :func:`deflated_sharpe_z`:
    ``Phi( (sr - sr_benchmark) * sqrt(n_obs - 1) / sqrt(1 - skew*sr + (kurtosis - 1)/4*sr^2) )``.

    Parameters
    ----------
    sr : float
        Per-bar (not annualised) Sharpe ratio.
    n_obs : int
        Number of returns the ratio was estimated on.
    skew : float
        Skewness of the returns.
    kurtosis : float
        NON-excess kurtosis of the returns (3 for a normal distribution).
    sr_benchmark : float, default 0.0
        Per-bar Sharpe ratio to beat.

    Returns
    -------
    float
        The probability that the true Sharpe ratio exceeds ``sr_benchmark``; NaN if any input
        is NaN, ``n_obs < 2`` or the variance term is not positive.

    Raises
    ------
    ValueError
        If ``n_obs`` is not a number (NaN inputs give NaN, not an error).
    """
    z = deflated_sharpe_z(sr, n_obs, skew, kurtosis, sr_benchmark)
    return math.nan if math.isnan(z) else _STANDARD_NORMAL.cdf(z)


def _clean_series(returns: np.ndarray) -> np.ndarray | None:
    """Return a 1-D float series, or None if it is too short or holds a non-finite value."""
    r = np.asarray(returns, dtype=float)
    if r.ndim != 1:
        raise ValueError(f"returns must be a 1-D series of per-bar returns, got shape {r.shape}")
    if r.size < 2 or not np.isfinite(r).all():
        return None
    return r


def probabilistic_sharpe_ratio(returns: np.ndarray, sr_benchmark: float = 0.0) -> float:
    """Probabilistic Sharpe ratio (Bailey & Lopez de Prado) of a per-bar return series.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Per-bar returns. Drop the backtest's excluded last bar (NaN) before calling.
    sr_benchmark : float, default 0.0
        Per-bar (not annualised) Sharpe ratio to beat.

    Returns
    -------
    float
        ``P(true SR > sr_benchmark)`` in [0, 1]; NaN if fewer than 2 returns, any return is
        non-finite, or the standard deviation is zero.

    Raises
    ------
    ValueError
        If ``returns`` is not 1-D.
    """
    r = _clean_series(returns)
    if r is None:
        return math.nan
    sr, skew, kurt, n = _moments(r)
    return psr_from_moments(sr, n, skew, kurt, sr_benchmark)


def _check_n_trials(n_trials: float) -> float:
    """``n_trials`` as a float; ValueError unless a finite real number >= 1 (not a bool)."""
    if (
        isinstance(n_trials, bool)
        or not isinstance(n_trials, numbers.Real)
        or not math.isfinite(n_trials)
        or n_trials < 1
    ):
        raise ValueError(
            f"n_trials must be a finite number >= 1 (the count of distinct combinations "
            f"tried, or an effective number of independent trials), got {n_trials!r}"
        )
    return float(n_trials)


def expected_max_sharpe(sr_variance: float, n_trials: float) -> float:
    """Expected maximum of ``n_trials`` Sharpe ratios whose true value is zero.

    ``SR* = max(0, sqrt(V) * ((1 - gamma) * Phi^-1(1 - 1/N) + gamma * Phi^-1(1 - 1/(N e))))``.

    ``N`` may be fractional (an effective number of independent trials). The bracket is an
    approximation for large ``N`` of the expected maximum of ``N`` standard normals; it
    tends to ``-inf`` as ``N -> 1`` and is negative below ``N ~ 1.2836``, whereas the true
    expected maximum of ``N >= 1`` draws is never below that of one draw, 0. Hence the floor
    at 0: ``SR*`` is 0 at ``N = 1`` (no selection) and non-decreasing in ``N``, so a scope
    that is effectively one trial is never rewarded for it. Whole ``N >= 2`` are unaffected.

    Parameters
    ----------
    sr_variance : float
        ``V``, the variance across trials of their (per-bar) Sharpe ratios.
    n_trials : float
        ``N``, the number of independent trials: a count, or an effective (real) number
        >= 1. ``N = 1`` gives 0 (no selection).

    Returns
    -------
    float
        The benchmark Sharpe ratio ``SR*``, in the units of the Sharpe ratios behind ``V``;
        NaN if ``sr_variance`` is NaN.

    Raises
    ------
    ValueError
        If ``n_trials`` is not a finite number >= 1 (NaN, infinite, below 1 or a bool), or
        ``sr_variance`` is negative or infinite.
    """
    n = _check_n_trials(n_trials)
    v = float(sr_variance)
    if math.isnan(v):
        return math.nan
    if not math.isfinite(v) or v < 0:
        raise ValueError(f"sr_variance must be a finite variance >= 0, got {sr_variance!r}")
    if n == 1.0:
        # Phi^-1(0) = -inf: with a single trial there is no selection to deflate for.
        return 0.0
    # Phi^-1(1 - p) = -Phi^-1(p): exact for any N, where 1 - 1/N would round to 1 (and
    # Phi^-1(1) fail) from N ~ 1e16 on.
    inv = _STANDARD_NORMAL.inv_cdf
    expected_z = -(1.0 - EULER_GAMMA) * inv(1.0 / n) - EULER_GAMMA * inv(1.0 / (n * math.e))
    return math.sqrt(v) * max(expected_z, 0.0)


def deflated_sharpe_ratio(returns: np.ndarray, sr_variance: float, n_trials: float) -> float:
    """Deflated Sharpe ratio: the PSR against the expected best-of-``n_trials`` Sharpe ratio.

    Parameters
    ----------
    returns : array_like, shape (T,)
        Per-bar returns of the selected strategy (drop the NaN last bar first).
    sr_variance : float
        Variance of the per-bar (not annualised) Sharpe ratios of all ``n_trials`` trials.
    n_trials : float
        Number of distinct trials the strategy was selected from (N), or an effective
        number of independent trials (real, >= 1).

    Returns
    -------
    float
        ``probabilistic_sharpe_ratio(returns, expected_max_sharpe(sr_variance, n_trials))``;
        NaN in the PSR's edge cases or when ``sr_variance`` is NaN.

    Raises
    ------
    ValueError
        If ``returns`` is not 1-D, ``n_trials`` is not a finite number >= 1, or
        ``sr_variance`` is negative or infinite.
    """
    sr_star = expected_max_sharpe(sr_variance, n_trials)
    return probabilistic_sharpe_ratio(returns, sr_benchmark=sr_star)
