"""Tests of forexgrid.core.pbo: probability of backtest overfitting by CSCV.

No published numeric example is used: the paper's examples are simulations whose data cannot
be reproduced here. The reference is a brute-force CSCV written from the paper's steps, a
4-block case worked out by hand, and properties the definition implies.
"""

from __future__ import annotations

import itertools
import math
import re

import numpy as np
import pytest
from scipy.stats import rankdata

from forexgrid.core import pbo as pbo_module
from forexgrid.core.pbo import PBOResult, probability_of_backtest_overfitting


def _cscv_by_brute_force(daily: np.ndarray, n_blocks: int) -> dict[str, np.ndarray]:
    """CSCV from the paper's steps: explicit loops over splits and trials."""
    n_days, n_trials = daily.shape
    blocks = np.array_split(np.arange(n_days), n_blocks)

    def performance(rows: np.ndarray) -> np.ndarray:
        out = np.zeros(n_trials)
        for k in range(n_trials):
            r = daily[rows, k]
            std = r.std(ddof=1) if r.size > 1 else 0.0
            # No variance (0, or rounding noise of a constant: the stats module's rule): 0.0.
            out[k] = 0.0 if std <= 1e-10 * abs(r.mean()) else r.mean() / std
        return out

    selected, is_perf, oos_perf, logits = [], [], [], []
    for in_sample in itertools.combinations(range(n_blocks), n_blocks // 2):
        is_rows = np.concatenate([blocks[b] for b in in_sample])
        oos_rows = np.concatenate([blocks[b] for b in range(n_blocks) if b not in in_sample])
        r_is, r_oos = performance(is_rows), performance(oos_rows)
        best = int(np.argmax(r_is))
        omega = rankdata(r_oos)[best] / (n_trials + 1)  # average ranks, 1 = worst
        selected.append(best)
        is_perf.append(r_is[best])
        oos_perf.append(r_oos[best])
        logits.append(math.log(omega / (1 - omega)))
    logits = np.array(logits)
    return {
        "selected": np.array(selected),
        "is_performance": np.array(is_perf),
        "oos_performance": np.array(oos_perf),
        "logits": logits,
        "pbo": np.mean(logits <= 0),
        "probability_of_loss": np.mean(np.array(oos_perf) < 0),
    }


def _noise(seed: int, n_days: int, n_trials: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n_days, n_trials))


def _with_special_columns(daily: np.ndarray) -> np.ndarray:
    """Add a never-trading trial, a part-time trial and a duplicate of column 1."""
    part_time = daily[:, 0].copy()
    part_time[: daily.shape[0] // 2] = 0.0
    return np.column_stack([daily, np.zeros(daily.shape[0]), part_time, daily[:, 1]])


# --------------------------------------------------------------------------- reference


@pytest.mark.parametrize(
    ("n_days", "n_trials", "n_blocks", "seed"),
    [(16, 5, 4, 0), (23, 7, 6, 1), (43, 9, 8, 2), (40, 4, 10, 3), (17, 6, 2, 4)],
    ids=["16x5-S4", "23x7-S6-uneven", "43x9-S8-uneven", "40x4-S10", "17x6-S2-uneven"],
)
def test_equals_brute_force_cscv(n_days: int, n_trials: int, n_blocks: int, seed: int) -> None:
    daily = _with_special_columns(_noise(seed, n_days, n_trials) + 0.1)
    got = probability_of_backtest_overfitting(daily, n_blocks)
    expected = _cscv_by_brute_force(daily, n_blocks)
    assert got.n_splits == math.comb(n_blocks, n_blocks // 2) == expected["logits"].size
    assert got.n_blocks == n_blocks and got.n_trials == n_trials + 3
    np.testing.assert_array_equal(got.selected, expected["selected"])
    np.testing.assert_allclose(got.logits, expected["logits"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got.is_performance, expected["is_performance"], rtol=1e-9)
    np.testing.assert_allclose(
        got.oos_performance, expected["oos_performance"], rtol=1e-9, atol=1e-15
    )
    assert got.pbo == expected["pbo"]
    assert got.probability_of_loss == expected["probability_of_loss"]


def test_chunking_does_not_change_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    daily = _with_special_columns(_noise(5, 43, 60))
    whole = probability_of_backtest_overfitting(daily, 10)
    monkeypatch.setattr(pbo_module, "_MEMORY_BUDGET", 1.0)  # one split pair per chunk
    chunked = probability_of_backtest_overfitting(daily, 10)
    np.testing.assert_array_equal(chunked.selected, whole.selected)
    np.testing.assert_array_equal(chunked.logits, whole.logits)
    # BLAS may round a one-row product differently from a many-row one (1 ulp).
    np.testing.assert_allclose(chunked.oos_performance, whole.oos_performance, rtol=1e-13)


# --------------------------------------------------------------------------- by hand


def test_four_blocks_three_trials_by_hand() -> None:
    # Two days per block, block b of a trial holds (m_b + 1, m_b - 1). A half of blocks
    # {i, j} then has mean mu = (m_i + m_j)/2 and, with delta = (m_i - m_j)/2, sample
    # variance 4 (delta^2 + 1) / 3, so SR = mu / sqrt(4 (delta^2 + 1) / 3).
    # A: m = (2, 1, 0, -1); B: m = (0, 1, 2, 1); C never trades (SR 0 in every half).
    means = {"A": [2, 1, 0, -1], "B": [0, 1, 2, 1]}
    daily = np.zeros((8, 3))
    for k, m in enumerate(means.values()):
        daily[:, k] = np.repeat(m, 2) + np.tile([1.0, -1.0], 4)

    a = math.sqrt(3 / 5) / 2  # mu 0.5, delta 0.5: 0.3873
    b = math.sqrt(3 / 8)  # mu 1, delta 1: 0.6124
    c = math.sqrt(3) / 2  # mu 1, delta 0: 0.8660
    d = 3 * math.sqrt(3 / 5) / 2  # mu 1.5, delta 0.5: 1.1619
    e = math.sqrt(3 / 13) / 2  # mu 0.5, delta 1.5: 0.2402
    # IS blocks   SR A, B, C in-sample    n*   OOS SR A, B, C     rank of n*     omega  lambda
    # {0,1}       d,  a,  0               A    -a,  d,  0         1              1/4    ln(1/3)
    # {0,2}       b,  b,  0  (tie: first) A     0,  c,  0         1.5 (tie A,C)  3/8    ln(3/5)
    # {0,3}       e,  a,  0               B     a,  d,  0         3              3/4    ln 3
    # {1,2}       a,  d,  0               B     e,  a,  0         3              3/4    ln 3
    # {1,3}       0,  c,  0               B     b,  b,  0         2.5 (tie A,B)  5/8    ln(5/3)
    # {2,3}      -a,  d,  0               B     d,  a,  0         2              1/2    0
    assert 0 < e < a < b < c < d  # the orderings the table relies on
    expected_selected = [0, 0, 1, 1, 1, 1]
    expected_is = [d, b, a, d, c, d]
    expected_oos = [-a, 0.0, d, a, b, a]
    expected_logits = [math.log(1 / 3), math.log(3 / 5), math.log(3), math.log(3)]
    expected_logits += [math.log(5 / 3), 0.0]

    got = probability_of_backtest_overfitting(daily, n_blocks=4)
    assert got.n_splits == 6 and got.n_blocks == 4 and got.n_trials == 3
    np.testing.assert_array_equal(got.selected, expected_selected)
    np.testing.assert_allclose(got.is_performance, expected_is, rtol=1e-12)
    np.testing.assert_allclose(got.oos_performance, expected_oos, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(got.logits, expected_logits, rtol=1e-12, atol=1e-15)
    assert got.pbo == pytest.approx(3 / 6)  # lambda <= 0 in splits 1, 2 and 6
    assert got.probability_of_loss == pytest.approx(1 / 6)  # only split 1 loses OOS


# --------------------------------------------------------------------------- properties


def test_a_trial_with_an_edge_in_every_block_is_not_overfit() -> None:
    daily = _noise(6, 64, 50)
    daily[:, 17] += 1.0  # daily Sharpe ~1 in every block, far above noise halves (~0.18)
    got = probability_of_backtest_overfitting(daily, 16)
    assert got.n_splits == 12870
    assert (got.selected == 17).all()
    assert got.pbo == 0.0 and got.probability_of_loss == 0.0
    np.testing.assert_allclose(got.logits, math.log(50))  # always ranked best of 50


def test_pure_noise_is_overfit_about_half_the_time() -> None:
    # Selecting the in-sample best of pure noise is a coin flip out-of-sample: the OOS rank
    # is uniform, so P(lambda <= 0) = 1/2 for an even number of trials.
    pbos = [probability_of_backtest_overfitting(_noise(s, 48, 30), 8).pbo for s in range(40)]
    assert np.mean(pbos) == pytest.approx(0.5, abs=0.1)


def test_identical_trials_are_deterministic() -> None:
    series = _noise(7, 32, 1)
    got = probability_of_backtest_overfitting(np.tile(series, (1, 6)), 8)
    # Every split selects the first trial; its OOS rank is the average (6 + 1) / 2,
    # omega = 1/2, lambda = 0, which counts as overfit.
    assert (got.selected == 0).all()
    np.testing.assert_array_equal(got.logits, 0.0)
    assert got.pbo == 1.0


def test_a_duplicated_winner_shares_the_top_rank() -> None:
    daily = _noise(8, 64, 10)
    daily[:, 3] += 1.0
    daily[:, 8] = daily[:, 3]
    got = probability_of_backtest_overfitting(daily, 8)
    assert (got.selected == 3).all()  # first of the tied pair
    # Tied best two of ten: rank 9.5, omega 9.5 / 11.
    np.testing.assert_allclose(got.logits, math.log(9.5 / 1.5))


def test_column_order_does_not_change_the_logits() -> None:
    daily = _noise(9, 40, 12)
    order = np.random.default_rng(0).permutation(12)
    got = probability_of_backtest_overfitting(daily, 8)
    permuted = probability_of_backtest_overfitting(daily[:, order], 8)
    np.testing.assert_allclose(permuted.logits, got.logits, rtol=1e-12)
    np.testing.assert_array_equal(order[permuted.selected], got.selected)


def test_a_half_without_variance_counts_as_zero() -> None:
    # B never trades: Sharpe undefined in every half, counted 0.0. A loses in every block,
    # so B is always selected in-sample and beats A out-of-sample.
    rng = np.random.default_rng(10)
    daily = np.column_stack([-1.0 + 0.1 * rng.standard_normal(24), np.zeros(24)])
    got = probability_of_backtest_overfitting(daily, 6)
    assert (got.selected == 1).all()
    np.testing.assert_array_equal(got.is_performance, 0.0)
    np.testing.assert_array_equal(got.oos_performance, 0.0)
    np.testing.assert_allclose(got.logits, math.log(2.0))  # rank 2 of 2: omega = 2/3
    assert got.pbo == 0.0 and got.probability_of_loss == 0.0


def test_a_constant_nonzero_half_counts_as_zero_not_as_a_huge_sharpe() -> None:
    # Constant 1e-3 on every day: sums give the variance as a rounding residue; it must be
    # read as "no variance" (0.0), not as a Sharpe ratio of ~1e8.
    rng = np.random.default_rng(11)
    daily = np.column_stack([np.full(20, 1e-3), 1e-3 * rng.standard_normal((20, 3))])
    got = probability_of_backtest_overfitting(daily, 4)
    expected = _cscv_by_brute_force(daily, 4)
    np.testing.assert_allclose(got.logits, expected["logits"], rtol=1e-9)
    assert np.abs(got.is_performance).max() < 10


def test_float32_input_is_evaluated_like_its_float64_values() -> None:
    daily = _noise(12, 30, 8).astype(np.float32)
    got = probability_of_backtest_overfitting(daily, 6)
    as_64 = probability_of_backtest_overfitting(daily.astype(np.float64), 6)
    np.testing.assert_array_equal(got.logits, as_64.logits)


# --------------------------------------------------------------------------- edge cases


def test_fewer_days_than_blocks_uses_the_largest_even_number_of_days() -> None:
    daily = _noise(13, 7, 5)
    got = probability_of_backtest_overfitting(daily, 16)
    assert got.n_blocks == 6 and got.n_splits == 20
    expected = _cscv_by_brute_force(daily, 6)
    np.testing.assert_allclose(got.logits, expected["logits"], rtol=1e-9)


@pytest.mark.parametrize(
    ("shape", "n_blocks_used"),
    [((1, 5), 0), ((0, 5), 0), ((30, 1), 16), ((30, 0), 16)],
    ids=["one-day", "no-days", "one-trial", "no-trials"],
)
def test_undefined_pbo_is_nan(shape: tuple[int, int], n_blocks_used: int) -> None:
    got = probability_of_backtest_overfitting(np.zeros(shape), 16)
    assert isinstance(got, PBOResult)
    assert math.isnan(got.pbo) and math.isnan(got.probability_of_loss)
    assert got.n_splits == 0 and got.logits.size == 0 and got.selected.size == 0
    assert got.n_blocks == n_blocks_used and got.n_trials == shape[1]


@pytest.mark.parametrize(
    ("daily", "n_blocks", "message"),
    [
        (np.zeros((20, 3)), 0, "n_blocks must be an even integer >= 2 (16 in the paper), got 0"),
        (np.zeros((20, 3)), 5, "n_blocks must be an even integer >= 2 (16 in the paper), got 5"),
        (np.zeros((20, 3)), -2, "n_blocks must be an even integer >= 2 (16 in the paper), got -2"),
        (
            np.zeros((20, 3)),
            8.0,
            "n_blocks must be an even integer >= 2 (16 in the paper), got 8.0",
        ),
        (
            np.zeros((20, 3)),
            True,
            "n_blocks must be an even integer >= 2 (16 in the paper), got True",
        ),
        (
            np.zeros(20),
            4,
            "daily must be a 2-D real array (D days, N trials), got dtype float64 and shape (20,)",
        ),
        (
            np.r_[np.zeros(19), np.nan].reshape(10, 2),
            4,
            "daily must hold finite returns (a day without a position is 0, not NaN), got 1 "
            "non-finite values",
        ),
        (
            np.r_[np.zeros(18), np.inf, -np.inf].reshape(10, 2),
            4,
            "daily must hold finite returns (a day without a position is 0, not NaN), got 2 "
            "non-finite values",
        ),
    ],
    ids=["zero", "odd", "negative", "float", "bool", "1d", "nan", "inf"],
)
def test_errors(daily: np.ndarray, n_blocks, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        probability_of_backtest_overfitting(daily, n_blocks)


def test_chunks_are_cache_sized_and_never_one_row(monkeypatch: pytest.MonkeyPatch) -> None:
    # 126 split pairs for 10 blocks; 25 per chunk would leave one for a last chunk, which BLAS
    # may round differently from a many-row product.
    daily = _with_special_columns(_noise(5, 43, 60))
    whole = probability_of_backtest_overfitting(daily, 10)
    n_distinct = np.unique(daily, axis=1).shape[1]
    monkeypatch.setattr(pbo_module, "_CACHE_CELLS", 25 * n_distinct)
    rows: list[int] = []
    original = pbo_module._half_performance

    def spy(sums: np.ndarray, n_rows: np.ndarray) -> np.ndarray:
        rows.append(sums.shape[0])
        return original(sums, n_rows)

    monkeypatch.setattr(pbo_module, "_half_performance", spy)
    chunked = probability_of_backtest_overfitting(daily, 10)
    assert rows[::2] == [25, 25, 25, 25, 26]
    np.testing.assert_array_equal(chunked.selected, whole.selected)
    np.testing.assert_array_equal(chunked.logits, whole.logits)
    assert chunked.pbo == whole.pbo


@pytest.mark.parametrize("threads", [2, 3], ids=["2-threads", "3-threads"])
def test_threads_give_the_same_result(monkeypatch: pytest.MonkeyPatch, threads: int) -> None:
    daily = _with_special_columns(_noise(7, 43, 200))
    one = probability_of_backtest_overfitting(daily, 10)
    n_distinct = np.unique(daily, axis=1).shape[1]
    monkeypatch.setattr(pbo_module, "_CACHE_CELLS", 9 * n_distinct)  # 14 chunks
    serial = pbo_module._cscv(daily, 10, threads=1)
    parallel = pbo_module._cscv(daily, 10, threads=threads)
    for got in (serial, parallel):
        np.testing.assert_array_equal(got.selected, one.selected)
        np.testing.assert_array_equal(got.logits, one.logits)
        np.testing.assert_array_equal(got.is_performance, one.is_performance)
        np.testing.assert_array_equal(got.oos_performance, one.oos_performance)
        assert got.pbo == one.pbo and got.probability_of_loss == one.probability_of_loss
