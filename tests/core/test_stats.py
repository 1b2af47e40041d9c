"""Tests of forexgrid.core.stats: Sharpe, probabilistic and deflated Sharpe ratios."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from scipy import stats as sps

from forexgrid.core.stats import (
    EULER_GAMMA,
    deflated_sharpe_ratio,
    deflated_sharpe_z,
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    sharpe_moments,
    sharpe_ratio,
)


def _returns(seed: int, mean: float = 5e-5, n: int = 500) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Zero-mean skewed (exponential) plus fat-tailed (Student-t) noise: skewness and
    # kurtosis far from the normal's, so the PSR's moment terms matter.
    noise = 5e-4 * rng.standard_t(5, n) + 1e-3 * (rng.exponential(1.0, n) - 1.0)
    return mean + noise - noise.mean()


# --------------------------------------------------------------------------- the paper


def test_published_example_bailey_lopez_de_prado_2014() -> None:
    # "The Deflated Sharpe Ratio" (2014), numerical example: annualised SR 2.5 over 1250 daily
    # observations, skewness -3, kurtosis 10, N = 100 trials whose annualised Sharpe ratios
    # have variance 0.5. The paper reports SR0 ~ 0.1132 (per day) and DSR ~ 0.9004.
    sr = 2.5 / math.sqrt(250)
    v = 0.5 / 250
    sr0 = expected_max_sharpe(v, 100)
    dsr = psr_from_moments(sr, 1250, -3.0, 10.0, sr_benchmark=sr0)
    assert sr0 == pytest.approx(0.1132, abs=1e-4)
    assert dsr == pytest.approx(0.9004, abs=1e-4)

    # The same numbers from the formulas written out independently with scipy.
    z1 = sps.norm.ppf(1 - 1 / 100)
    z2 = sps.norm.ppf(1 - 1 / (100 * math.e))
    sr0_hand = math.sqrt(v) * ((1 - np.euler_gamma) * z1 + np.euler_gamma * z2)
    z = (sr - sr0_hand) * math.sqrt(1249) / math.sqrt(1 + 3 * sr + (10 - 1) / 4 * sr**2)
    assert sr0 == pytest.approx(sr0_hand, rel=1e-12)
    assert dsr == pytest.approx(sps.norm.cdf(z), rel=1e-10)


def test_euler_gamma() -> None:
    assert pytest.approx(np.euler_gamma, rel=1e-15) == EULER_GAMMA


# --------------------------------------------------------------------------- Sharpe


def test_sharpe_ratio_per_bar_and_annualised() -> None:
    r = _returns(0)
    per_bar = r.mean() / r.std(ddof=1)
    assert sharpe_ratio(r) == pytest.approx(per_bar, rel=1e-12)
    assert sharpe_ratio(r, bars_per_year=252) == pytest.approx(per_bar * math.sqrt(252))
    two_d = np.column_stack([r, -r, np.zeros_like(r)])
    got = sharpe_ratio(two_d)
    np.testing.assert_allclose(got[:2], [per_bar, -per_bar], rtol=1e-12)
    assert np.isnan(got[2])


@pytest.mark.parametrize(
    "returns",
    [[], [0.01], [0.01, 0.01, 0.01], [0.0, 0.0], [0.01, math.nan, 0.02], [0.1, math.inf]],
    ids=["empty", "one", "constant", "zeros", "nan", "inf"],
)
def test_sharpe_ratio_degenerate_is_nan(returns: list) -> None:
    assert math.isnan(sharpe_ratio(np.array(returns, dtype=float)))


# --------------------------------------------------------------------------- PSR / DSR


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_psr_uses_per_bar_sharpe_skew_and_nonexcess_kurtosis(seed: int) -> None:
    r = _returns(seed)
    sr = r.mean() / r.std(ddof=1)
    skew = sps.skew(r, bias=True)
    kurt = sps.kurtosis(r, fisher=False, bias=True)
    assert abs(skew) > 0.1 and kurt > 3.5  # non-normal, so the moments matter
    for benchmark in (0.0, 0.05):
        z = (
            (sr - benchmark)
            * math.sqrt(r.size - 1)
            / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
        )
        got = probabilistic_sharpe_ratio(r, sr_benchmark=benchmark)
        assert got == pytest.approx(sps.norm.cdf(z), rel=1e-10)


@pytest.mark.parametrize("seed", [0, 1, 2, 3], ids=lambda s: f"seed{s}")
def test_psr_dsr_orderings(seed: int) -> None:
    r = _returns(seed)
    assert r.mean() > 0
    psr = probabilistic_sharpe_ratio(r)
    assert psr > 0.5
    assert probabilistic_sharpe_ratio(-r) < 0.5
    v = 0.01**2
    dsrs = [deflated_sharpe_ratio(r, v, n) for n in (1, 2, 10, 82, 1000)]
    assert dsrs[0] == pytest.approx(psr, rel=1e-12)  # N = 1: no deflation
    assert all(d <= psr for d in dsrs)
    assert (np.diff(dsrs) < 0).all()  # strictly decreasing in N


def test_psr_at_the_benchmark_is_one_half() -> None:
    assert psr_from_moments(0.1, 100, -1.0, 6.0, sr_benchmark=0.1) == pytest.approx(0.5)


def test_expected_max_sharpe() -> None:
    assert expected_max_sharpe(0.3, 1) == 0.0
    assert expected_max_sharpe(0.0, 82) == 0.0
    assert expected_max_sharpe(4.0, 82) == pytest.approx(2 * expected_max_sharpe(1.0, 82))
    values = [expected_max_sharpe(1.0, n) for n in (2, 5, 82, 1000)]
    assert (np.diff(values) > 0).all()
    assert math.isnan(expected_max_sharpe(math.nan, 10))


@pytest.mark.parametrize(
    "call",
    [
        lambda: probabilistic_sharpe_ratio([0.01]),
        lambda: probabilistic_sharpe_ratio([0.01, 0.01, 0.01]),
        lambda: probabilistic_sharpe_ratio([0.01, math.nan, 0.02, 0.0]),
        lambda: deflated_sharpe_ratio([], 0.1, 5),
        lambda: deflated_sharpe_ratio([0.0, 0.0, 0.0], 0.1, 5),
        lambda: deflated_sharpe_ratio(_returns(0), math.nan, 5),
        lambda: psr_from_moments(0.1, 1, 0.0, 3.0),
        lambda: psr_from_moments(math.nan, 100, 0.0, 3.0),
    ],
    ids=[
        "psr-one-return",
        "psr-zero-std",
        "psr-nan-return",
        "dsr-empty",
        "dsr-zero-std",
        "dsr-nan-variance",
        "moments-one-obs",
        "moments-nan-sr",
    ],
)
def test_edge_cases_are_nan(call) -> None:
    assert math.isnan(call())


_N_TRIALS_MESSAGE = (
    "n_trials must be a finite number >= 1 (the count of distinct combinations tried, or an "
    "effective number of independent trials), got "
)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: expected_max_sharpe(0.1, 0), _N_TRIALS_MESSAGE + "0"),
        (lambda: expected_max_sharpe(0.1, 0.5), _N_TRIALS_MESSAGE + "0.5"),
        (lambda: expected_max_sharpe(0.1, math.nan), _N_TRIALS_MESSAGE + "nan"),
        (lambda: expected_max_sharpe(0.1, math.inf), _N_TRIALS_MESSAGE + "inf"),
        (lambda: expected_max_sharpe(0.1, True), _N_TRIALS_MESSAGE + "True"),
        (lambda: expected_max_sharpe(0.1, "5"), _N_TRIALS_MESSAGE + "'5'"),
        (lambda: deflated_sharpe_ratio(_returns(0), 0.1, 0.99), _N_TRIALS_MESSAGE + "0.99"),
        (
            lambda: expected_max_sharpe(-0.1, 5),
            "sr_variance must be a finite variance >= 0, got -0.1",
        ),
        (
            lambda: probabilistic_sharpe_ratio(np.zeros((3, 2))),
            "returns must be a 1-D series of per-bar returns, got shape (3, 2)",
        ),
        (
            lambda: sharpe_moments(np.zeros((3, 2))),
            "returns must be a 1-D series of per-bar returns, got shape (3, 2)",
        ),
        (
            lambda: deflated_sharpe_z(0.1, "many", 0.0, 3.0, 0.0),
            "n_obs must be a number of returns, got 'many'",
        ),
        (
            lambda: sharpe_ratio([0.1, 0.2], bars_per_year=-1),
            "bars_per_year must be a finite number > 0 (e.g. 6240 for 1h bars), got -1",
        ),
    ],
    ids=[
        "zero-trials",
        "half-trial",
        "nan-trials",
        "inf-trials",
        "bool-trials",
        "str-trials",
        "dsr-below-one-trial",
        "negative-variance",
        "2d-returns",
        "2d-moments",
        "z-bad-n-obs",
        "bad-bpy",
    ],
)
def test_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# --------------------------------------------------------------------------- real N


def _expected_max_z_formula(n: float) -> float:
    """The bracket of SR*, written out with scipy, without the floor at 0."""
    return (1 - np.euler_gamma) * sps.norm.ppf(1 - 1 / n) + np.euler_gamma * sps.norm.ppf(
        1 - 1 / (n * math.e)
    )


@pytest.mark.parametrize("n", [1.5, 2.0, 2.5, 7.3, 82.0, 1234.56], ids=str)
def test_expected_max_sharpe_accepts_a_real_number_of_trials(n: float) -> None:
    v = 0.02
    assert expected_max_sharpe(v, n) == pytest.approx(
        math.sqrt(v) * _expected_max_z_formula(n), rel=1e-10
    )


def test_expected_max_sharpe_is_zero_at_one_and_non_decreasing_in_real_n() -> None:
    # The large-N bracket goes to -inf as N -> 1 and is negative below N ~ 1.2836; SR* is
    # floored at 0 there, so a scope that is effectively one trial is not rewarded.
    assert _expected_max_z_formula(1.2) < 0 < _expected_max_z_formula(1.3)
    assert expected_max_sharpe(0.5, 1.0) == 0.0
    assert expected_max_sharpe(0.5, np.float64(1.0)) == 0.0
    assert expected_max_sharpe(0.5, 1.0000001) == 0.0
    assert expected_max_sharpe(0.5, 1.2) == 0.0
    assert expected_max_sharpe(0.5, 1.3) > 0.0
    grid = np.linspace(1.0, 50.0, 2000)
    values = [expected_max_sharpe(0.5, n) for n in grid]
    assert (np.diff(values) >= 0).all()
    assert (
        expected_max_sharpe(0.5, 2) < expected_max_sharpe(0.5, 2.5) < expected_max_sharpe(0.5, 3)
    )


def test_expected_max_sharpe_for_a_huge_number_of_trials() -> None:
    # 1 - 1/N rounds to 1 from N ~ 1e16 on; the implementation must not need it.
    got = expected_max_sharpe(1.0, 1e20)
    assert got == pytest.approx(
        -(1 - np.euler_gamma) * sps.norm.ppf(1e-20)
        - np.euler_gamma * sps.norm.ppf(1e-20 / math.e),
        rel=1e-9,
    )


@pytest.mark.parametrize("seed", [0, 1], ids=lambda s: f"seed{s}")
def test_dsr_is_continuous_and_decreasing_in_real_n(seed: int) -> None:
    r = _returns(seed)
    v = 0.01**2
    dsrs = [deflated_sharpe_ratio(r, v, n) for n in (2.0, 2.5, 3.0, 10.7, 82.4)]
    assert (np.diff(dsrs) < 0).all()
    assert deflated_sharpe_ratio(r, v, 1.0) == pytest.approx(probabilistic_sharpe_ratio(r))


# --------------------------------------------------------------------------- moments and z


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_sharpe_moments_are_the_documented_estimators(seed: int) -> None:
    r = _returns(seed, n=257)
    sr, skew, kurt, n = sharpe_moments(r)
    assert n == 257 and isinstance(n, int)
    assert sr == pytest.approx(r.mean() / r.std(ddof=1), rel=1e-12)
    assert skew == pytest.approx(sps.skew(r, bias=True), rel=1e-10)
    assert kurt == pytest.approx(sps.kurtosis(r, fisher=False, bias=True), rel=1e-10)
    assert sharpe_moments(r.astype(np.float32))[0] == pytest.approx(sr, rel=1e-5)


@pytest.mark.parametrize(
    ("returns", "n"),
    [([], 0), ([0.01], 1), ([0.01, 0.01, 0.01], 3), ([0.01, math.nan, 0.02], 3)],
    ids=["empty", "one", "constant", "nan"],
)
def test_sharpe_moments_degenerate(returns: list, n: int) -> None:
    sr, skew, kurt, got_n = sharpe_moments(np.array(returns, dtype=float))
    assert math.isnan(sr) and math.isnan(skew) and math.isnan(kurt)
    assert got_n == n


def test_deflated_sharpe_z_is_the_z_inside_the_psr() -> None:
    # The paper's example: z written out, and PSR = Phi(z).
    sr, n, skew, kurt, sr0 = 2.5 / math.sqrt(250), 1250, -3.0, 10.0, 0.1132
    z_hand = (sr - sr0) * math.sqrt(n - 1) / math.sqrt(1 - skew * sr + (kurt - 1) / 4 * sr**2)
    z = deflated_sharpe_z(sr, n, skew, kurt, sr0)
    assert z == pytest.approx(z_hand, rel=1e-12)
    assert psr_from_moments(sr, n, skew, kurt, sr0) == pytest.approx(sps.norm.cdf(z), rel=1e-12)


def test_deflated_sharpe_z_keeps_ranking_where_the_probability_saturates() -> None:
    strong, stronger = (deflated_sharpe_z(sr, 1000, 0.0, 3.0, 0.05) for sr in (0.35, 0.45))
    assert 8.3 < strong < stronger
    assert psr_from_moments(0.35, 1000, 0.0, 3.0, 0.05) == 1.0
    assert psr_from_moments(0.45, 1000, 0.0, 3.0, 0.05) == 1.0


@pytest.mark.parametrize(
    "args",
    [
        (math.nan, 100, 0.0, 3.0, 0.0),
        (0.1, 1, 0.0, 3.0, 0.0),
        (0.1, 100, 0.0, 3.0, math.nan),
        (0.1, 100, math.inf, 3.0, 0.0),
        (1.0, 100, 5.0, 1.0, 0.0),
    ],
    ids=["nan-sr", "one-obs", "nan-benchmark", "inf-skew", "non-positive-variance-term"],
)
def test_deflated_sharpe_z_degenerate_is_nan(args: tuple) -> None:
    assert math.isnan(deflated_sharpe_z(*args))
    assert math.isnan(psr_from_moments(*args))
