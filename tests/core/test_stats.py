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
    expected_max_sharpe,
    probabilistic_sharpe_ratio,
    psr_from_moments,
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


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (
            lambda: expected_max_sharpe(0.1, 0),
            "n_trials must be a whole number >= 1 (the count of distinct combinations "
            "tried), got 0",
        ),
        (
            lambda: expected_max_sharpe(0.1, 2.5),
            "n_trials must be a whole number >= 1 (the count of distinct combinations "
            "tried), got 2.5",
        ),
        (
            lambda: expected_max_sharpe(-0.1, 5),
            "sr_variance must be a finite variance >= 0, got -0.1",
        ),
        (
            lambda: probabilistic_sharpe_ratio(np.zeros((3, 2))),
            "returns must be a 1-D series of per-bar returns, got shape (3, 2)",
        ),
        (
            lambda: sharpe_ratio([0.1, 0.2], bars_per_year=-1),
            "bars_per_year must be a finite number > 0 (e.g. 6240 for 1h bars), got -1",
        ),
    ],
    ids=["zero-trials", "fractional-trials", "negative-variance", "2d-returns", "bad-bpy"],
)
def test_errors(call, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()
