"""Tests of forexgrid.core.backtest: returns, costs, trades and metrics."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forexgrid.core.backtest import (
    METRIC_NAMES,
    compute_metrics,
    compute_metrics_batch,
    half_spread_cost,
    strategy_returns,
    trade_table,
)
from forexgrid.core.stats import sharpe_ratio
from forexgrid.exceptions import ConfigError, DataError

BARS_PER_YEAR_1H = 24 * 5 * 52

# --------------------------------------------------------------------------- hand example
# 10 bars. Positions: flat, a long trade (bars 1-2), flipped into a short (bars 3-4), closed
# to flat at bar 5, a flat gap, a long (bars 7-8) still open at the end, closed at the close
# of the last bar (the split ends flat), and a flip decided on the last bar, never held.
CLOSE = np.array([1.00, 1.01, 1.02, 1.00, 0.99, 0.98, 1.03, 1.02, 1.04, 1.05])
POS = np.array([0, 1, 1, -1, -1, 0, 0, 1, 1, -1], dtype=float)
SPREAD = 0.0002  # 2 pips of 0.0001: half-spread 0.0001 in price units
H = 0.0001  # half-spread

EXPECTED_RETURNS = np.array(
    [
        0.0,  # flat, unchanged
        math.log(1.02 / 1.01) - H / 1.01,  # long entry: pays one half-spread
        math.log(1.00 / 1.02),  # long held
        -math.log(0.99 / 1.00) - 2 * H / 1.00,  # flip to short: two half-spreads
        -math.log(0.98 / 0.99),  # short held
        -H / 0.98,  # back to flat: exit half-spread only
        0.0,  # flat gap
        math.log(1.04 / 1.02) - H / 1.02,  # long entry
        math.log(1.05 / 1.04),  # long held
        -H / 1.05,  # last bar: the long is closed at its close (exit half-spread); the
        # position decided there is never held, so its flip charges nothing
    ]
)


def test_hand_example_returns() -> None:
    got = strategy_returns(POS, CLOSE, SPREAD)
    assert got.shape == (10, 1)  # 1-D positions are one combination
    np.testing.assert_allclose(got[:, 0], EXPECTED_RETURNS, rtol=1e-12, atol=1e-15)
    assert np.isfinite(got).all()


def test_hand_example_trades() -> None:
    returns = strategy_returns(POS, CLOSE, SPREAD)
    trades = trade_table(POS, returns)
    r = EXPECTED_RETURNS
    assert len(trades) == 3  # the flip decided on the last bar opens no trade
    assert trades.counts.tolist() == [3]
    assert trades.combination.tolist() == [0, 0, 0]
    assert trades.side.tolist() == [1.0, -1.0, 1.0]
    assert trades.entry_bar.tolist() == [1, 3, 7]
    assert trades.exit_bar.tolist() == [2, 4, 8]
    expected_pnl = [
        r[1] + r[2],  # its exit half-spread is inside bar 3, which belongs to the short
        r[3] + r[4] + r[5],  # includes the flip's two half-spreads and its own exit at bar 5
        r[7] + r[8] + r[9],  # open at the end: closed on the last bar, pays its exit
    ]
    np.testing.assert_allclose(trades.pnl, expected_pnl, rtol=1e-12)
    assert trades.pnl[0] < 0 < trades.pnl[1] and trades.pnl[2] > 0
    frame = trades.to_frame()
    assert frame.columns.tolist() == [
        "combination",
        "side",
        "entry_bar",
        "exit_bar",
        "bars",
        "pnl",
    ]
    assert frame["bars"].tolist() == [2, 2, 2]


def test_hand_example_metrics() -> None:
    returns = strategy_returns(POS, CLOSE, SPREAD)
    m = compute_metrics(returns, POS, None, BARS_PER_YEAR_1H)
    r = EXPECTED_RETURNS
    assert set(m) == set(METRIC_NAMES)
    assert m["trades"].tolist() == [3]
    assert m["win_rate"][0] == pytest.approx(2 / 3)
    assert m["exposure"][0] == pytest.approx(6 / 10)  # bars 1-4, 7, 8; bar 9 is flat
    assert m["total_return"][0] == pytest.approx(math.exp(r.sum()) - 1)
    assert m["sharpe"][0] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(BARS_PER_YEAR_1H))
    gains, losses = r[r > 0].sum(), -r[r < 0].sum()
    assert m["profit_factor"][0] == pytest.approx(gains / losses)
    # Only the long trade (bars 7-8) is opened on these bars.
    regime = np.zeros(10, dtype=bool)
    regime[6:] = True
    mr = compute_metrics(returns, POS, regime, BARS_PER_YEAR_1H)
    assert mr["trades"].tolist() == [1]
    assert mr["win_rate"].tolist() == [1.0]
    assert mr["exposure"][0] == pytest.approx(2 / 4)  # bars 7, 8 of 6-9
    # A regime's Sharpe is annualised by the bars it holds per year (4 of the 10 bars).
    rr = EXPECTED_RETURNS[6:]
    expected = rr.mean() / rr.std(ddof=1) * math.sqrt(BARS_PER_YEAR_1H * 4 / 10)
    assert mr["sharpe"][0] == pytest.approx(expected)


# --------------------------------------------------------------------------- costs


def test_cost_charged_on_every_change() -> None:
    close = np.array([1.0, 1.1, 1.0, 1.2, 1.25, 1.3])
    flips = np.array([1, -1, 1, -1, 1, -1], dtype=float)
    got = strategy_returns(flips, close, 0.01)[:, 0]
    half = 0.005 / close
    gross = flips[:-1] * np.log(close[1:] / close[:-1])
    # First bar: entry from flat (one half-spread); every later bar: a flip (two).
    expected = gross - half[:-1] * np.array([1, 2, 2, 2, 2])
    np.testing.assert_allclose(got[:-1], expected, rtol=1e-12)
    trades = trade_table(flips, strategy_returns(flips, close, 0.01))
    assert len(trades) == 5  # one trade per bar; the last bar's position is never held
    # The last bar closes the short held into it: one exit half-spread.
    assert got[-1] == pytest.approx(-half[-1])


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_zero_spread_is_position_times_log_return(seed: int) -> None:
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 1e-3, 50)))
    pos = rng.choice([-1.0, 0.0, 1.0], size=(50, 4))
    got = strategy_returns(pos, close, 0.0)
    np.testing.assert_array_equal(got[:-1], pos[:-1] * np.log(close[1:] / close[:-1])[:, None])
    assert (got[-1] == 0).all()  # closing costs nothing without a spread


def test_half_spread_cost() -> None:
    np.testing.assert_allclose(half_spread_cost([1.0, 2.0], 0.0002), [0.0001, 0.00005])


@pytest.mark.parametrize(
    ("n_bars", "expected_shape"),
    [(0, (0, 2)), (1, (1, 2))],
    ids=["empty", "one-bar"],
)
def test_too_short_series_earn_nothing(n_bars: int, expected_shape: tuple) -> None:
    # One bar: the position decided on it is never held, so nothing is earned or paid.
    got = strategy_returns(np.ones((n_bars, 2)), np.ones(n_bars), 0.0001)
    assert got.shape == expected_shape
    assert (got == 0).all()


# --------------------------------------------------------------------------- reference


def _random_case(seed: int, n_bars: int = 120, n_comb: int = 5, n_masks: int = 4):
    """Persistent random positions (multi-bar trades, flips, gaps) and random masks."""
    rng = np.random.default_rng(seed)
    close = 1.1 * np.exp(np.cumsum(rng.normal(0, 2e-3, n_bars)))
    draws = rng.choice([-1.0, 0.0, 1.0], size=(n_bars, n_comb))
    keep = rng.random((n_bars, n_comb)) < 0.6
    pos = draws.copy()
    for t in range(1, n_bars):  # test fixture only
        pos[t] = np.where(keep[t], pos[t - 1], draws[t])
    pos[:, 1] = 0.0  # a combination that never trades
    masks = rng.random((n_masks, n_bars)) < 0.4
    masks[0] = True  # the pseudo-regime "all"
    masks[1] = False  # an empty regime
    returns = strategy_returns(pos, close, 0.00015)
    return returns, pos, masks


def _reference_trades(p: list[float], r: list[float]) -> list[tuple[int, float]]:
    """(entry bar, P&L) per trade, by walking the bars one by one."""
    trades: list[list] = []
    prev = 0.0
    for t in range(len(r)):
        if p[t] != 0 and p[t] != prev:
            trades.append([t, r[t]])
        elif p[t] != 0:
            trades[-1][1] += r[t]
        elif prev != 0:  # flat bar closing a trade: its exit half-spread
            trades[-1][1] += r[t]
        prev = p[t]
    return [(entry, pnl) for entry, pnl in trades]


def _reference_metrics(returns: np.ndarray, pos: np.ndarray, mask: np.ndarray, bpy: float):
    """Slow, obvious metrics of one combination; the last bar's decided position is flat."""
    r = [float(x) for x in returns]
    p = [float(x) for x in pos[:-1]] + [0.0]
    m = [bool(x) for x in mask]
    sel = [r[t] for t in range(len(r)) if m[t]]
    out = {}
    if len(sel) >= 2 and np.std(sel, ddof=1) > 0:
        share = len(sel) / len(r)
        out["sharpe"] = np.mean(sel) / np.std(sel, ddof=1) * math.sqrt(bpy * share)
    else:
        out["sharpe"] = math.nan
    equity, peak, worst = 1.0, 1.0, 0.0
    for x in sel:
        equity *= math.exp(x)
        peak = max(peak, equity)
        worst = max(worst, 1 - equity / peak)
    out["max_drawdown"] = worst if sel else math.nan
    opened = [pnl for entry, pnl in _reference_trades(p, r) if m[entry]]
    out["trades"] = len(opened)
    out["win_rate"] = sum(pnl > 0 for pnl in opened) / len(opened) if opened else math.nan
    out["total_return"] = math.exp(sum(sel)) - 1 if sel else math.nan
    gains = sum(x for x in sel if x > 0)
    losses = -sum(x for x in sel if x < 0)
    if losses > 0:
        out["profit_factor"] = gains / losses
    else:
        out["profit_factor"] = math.inf if gains > 0 else math.nan
    held = [p[t] != 0 for t in range(len(r)) if m[t]]
    out["exposure"] = sum(held) / len(held) if held else math.nan
    return out


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4], ids=lambda s: f"seed{s}")
def test_metrics_match_reference(seed: int) -> None:
    returns, pos, masks = _random_case(seed)
    batch = compute_metrics_batch(returns, pos, masks, BARS_PER_YEAR_1H)
    assert set(batch) == set(METRIC_NAMES)
    for name in METRIC_NAMES:
        assert batch[name].shape == (masks.shape[0], pos.shape[1])
    assert batch["trades"].dtype.kind == "i"
    for i, mask in enumerate(masks):
        single = compute_metrics(returns, pos, mask, BARS_PER_YEAR_1H)
        for k in range(pos.shape[1]):
            ref = _reference_metrics(returns[:, k], pos[:, k], mask, BARS_PER_YEAR_1H)
            for name in METRIC_NAMES:
                want = ref[name]
                for got in (batch[name][i, k], single[name][k]):
                    if math.isnan(want):
                        assert math.isnan(got), (name, i, k, got)
                    else:
                        assert got == pytest.approx(want, rel=1e-9, abs=1e-12), (name, i, k)
    # The fixture must exercise the interesting cases, or the loop above proves little.
    assert np.isnan(batch["sharpe"][:, 1]).all()  # never trades: std 0
    assert (batch["trades"][0] > 5).sum() >= 3
    assert np.isnan(batch["total_return"][1]).all() and (batch["trades"][1] == 0).all()


def test_sharpe_matches_stats_sharpe_ratio() -> None:
    returns, pos, masks = _random_case(7)
    m = compute_metrics(returns, pos, masks[2], BARS_PER_YEAR_1H)
    sel = returns[masks[2]]
    share = masks[2].mean()
    np.testing.assert_allclose(
        m["sharpe"], sharpe_ratio(sel, BARS_PER_YEAR_1H * share), rtol=1e-10
    )


@pytest.mark.parametrize(
    ("log_returns", "mask", "expected"),
    [
        ([math.log(1.1), math.log(0.5), math.log(1.2)], [1, 1, 1], 0.5),  # 1.1 -> 0.55
        ([math.log(0.8), math.log(1.1), math.log(1.0)], [1, 1, 1], 0.2),  # from the start
        ([math.log(1.1), math.log(0.5), math.log(1.2)], [1, 0, 1], 0.0),  # fall not masked
        ([math.log(1.2), math.log(1.3), math.log(0.6)], [1, 0, 1], 0.4),  # 1.2 -> 0.72
    ],
    ids=["peak-to-trough", "initial-equity-is-a-peak", "unmasked-bar-skipped", "gap"],
)
def test_max_drawdown_definition(log_returns: list, mask: list, expected: float) -> None:
    r = np.array(log_returns + [math.nan])
    m = np.array(mask + [1], dtype=bool)
    got = compute_metrics(r, np.ones(4), m, 252)["max_drawdown"]
    np.testing.assert_allclose(got, [expected], atol=1e-12)


@pytest.mark.parametrize(
    ("returns", "expected"),
    [([0.01, 0.02, math.nan], math.inf), ([0.0, 0.0, math.nan], math.nan)],
    ids=["no-losses", "neither"],
)
def test_profit_factor_edges(returns: list, expected: float) -> None:
    got = compute_metrics(np.array(returns), np.ones(3), None, 252)["profit_factor"][0]
    assert got == expected or (math.isnan(expected) and math.isnan(got))


def test_no_trades_gives_nan_win_rate() -> None:
    r = strategy_returns(np.zeros(5), np.ones(5), 0.0001)
    m = compute_metrics(r, np.zeros(5), None, 252)
    assert m["trades"].tolist() == [0]
    assert np.isnan(m["win_rate"]).all()
    assert np.isnan(m["sharpe"]).all()  # all returns 0: std 0
    assert m["exposure"].tolist() == [0.0]


def test_break_even_trade_is_not_a_win() -> None:
    pos = np.array([1.0, 1.0, 0.0, -1.0, 0.0, 0.0])
    close = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.9])  # no spread, flat prices: P&L exactly 0
    r = strategy_returns(pos, close, 0.0)
    assert trade_table(pos, r).pnl.tolist() == [0.0, 0.0]
    m = compute_metrics(r, pos, None, 252)
    assert m["trades"].tolist() == [2]
    assert m["win_rate"].tolist() == [0.0]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.sampled_from([-1.0, 0.0, 1.0]), min_size=1, max_size=40),
    st.integers(0, 2**32 - 1),
)
def test_trade_pnls_add_up_to_total(pos_list: list, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pos = np.array(pos_list)
    close = np.exp(rng.normal(0, 0.01, pos.size))
    returns = strategy_returns(pos, close, 0.001)
    trades = trade_table(pos, returns)
    assert trades.pnl.sum() == pytest.approx(np.nansum(returns), abs=1e-12)
    held = pos[:-1]
    entries = (held != 0) & (held != np.concatenate([[0.0], held[:-1]]))
    assert len(trades) == int(entries.sum())
    assert ((trades.exit_bar - trades.entry_bar + 1).sum()) == int((held != 0).sum())


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: strategy_returns([0, 0.5, 1], [1.0, 1.0, 1.0], 0.0),
            ValueError,
            "positions must be -1, 0 or 1; got 0.5 at bar 1, combination 0 "
            "(1 bad value(s) in all)",
        ),
        (
            lambda: strategy_returns([0, 1], [1.0, 1.0, 1.0], 0.0),
            ValueError,
            "positions have 2 bars but close has 3; they must align",
        ),
        (
            lambda: strategy_returns([0, 1], [1.0, 0.0], 0.0),
            DataError,
            "close[1] must be a finite price > 0, got 0.0",
        ),
        (
            lambda: strategy_returns([0, 1], [1.0, 1.0], -0.1),
            ConfigError,
            "spread_price must be a finite number >= 0 (spread pips x pip size, in price "
            "units), got -0.1",
        ),
        (
            lambda: compute_metrics(np.zeros(3), np.zeros(3), np.ones(3), 252),
            ValueError,
            "mask must be a boolean array (T,), got dtype float64",
        ),
        (
            lambda: compute_metrics(np.zeros(3), np.zeros(3), np.ones(2, dtype=bool), 252),
            ValueError,
            "mask must have shape (T,) with T = 3 bars, got shape (2,)",
        ),
        (
            lambda: compute_metrics_batch(np.zeros(3), np.zeros(3), np.ones(3, dtype=bool), 1),
            ValueError,
            "mask must have shape (M, T) with T = 3 bars, got shape (3,)",
        ),
        (
            lambda: compute_metrics(np.zeros((3, 2)), np.zeros((3, 1)), None, 252),
            ValueError,
            "returns must have the shape of positions (3, 1) (T bars x K combinations), "
            "got (3, 2)",
        ),
        (
            lambda: compute_metrics(np.zeros(3), np.zeros(3), None, 0),
            ValueError,
            "bars_per_year must be a finite number > 0 (e.g. 6240 for 1h bars), got 0",
        ),
    ],
    ids=[
        "bad-position",
        "length-mismatch",
        "bad-close",
        "negative-spread",
        "mask-not-bool",
        "mask-length",
        "batch-mask-1d",
        "returns-shape",
        "bars-per-year",
    ],
)
def test_errors(call, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=re.escape(message)):
        call()
