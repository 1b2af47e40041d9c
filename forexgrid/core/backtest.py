"""Vectorised backtest: per-bar net strategy returns, trades and metrics.

Everything works on 2-D arrays, T bars x K inference combinations, so phase 2 backtests all
combinations of a model at once with no Python loop over bars or combinations.

Conventions (DESIGN.md "Backtest" and "Metrics")
------------------------------------------------
* ``positions[t, k]`` in {-1, 0, 1} is decided at the close of bar t and held to the close of
  bar t+1. The net log return of bar t is
  ``p_t * log(close[t+1] / close[t]) - cost_t * |p_t - p_{t-1}|`` with
  ``cost_t = (spread_price / 2) / close[t]`` and ``p_{-1} = 0`` (a split starts flat). A flip
  from +1 to -1 therefore pays two half-spreads.
* A split also ends flat: its last bar has no next close, so the position held into it is
  closed at its close and pays the exit half-spread, ``r_{T-1} = -cost_{T-1} * |p_{T-2}|``.
  The position *decided* on the last bar is never held: it counts as flat everywhere (it
  opens no trade and its change costs nothing).
* Bars whose return is not finite (returns made elsewhere may mark excluded bars with NaN)
  are outside the backtest: their position counts as flat and their return as nothing.
* A trade is a run of equal non-zero positions; a flip ends one trade and opens another, and
  a 0 between two runs ends the first.
* Trade P&L: every bar's net return belongs to exactly one trade or to none, so the P&Ls of
  all trades add up to the total net return:

  - a bar where a position is held belongs to that trade. Its entry bar's return holds its
    entry half-spread; when the trade was entered by a flip, the entry bar's return also holds
    the exit half-spread of the trade it replaced (a bar's net return cannot be split between
    two trades without the prices, and the metrics see only returns and positions). So a
    trade closed by a flip does not carry its own exit cost: the trade that replaces it does;
  - a flat bar at which a position is closed (net return = minus the exit half-spread)
    belongs to the trade it closes; the split's last bar is such a bar for a trade still open
    at the end, so every trade pays its exit.
* Metrics over the bars where a mask holds (a regime; all-True is the pseudo-regime ``all``),
  per combination:

  - ``sharpe``: ``mean / std(ddof=1)`` of the masked per-bar returns, annualised as the
    Sharpe ratio of a strategy that trades only in the regime: times
    ``sqrt(bars_per_year * share)``, where ``share`` is the fraction of the split's bars in
    the mask (1 for ``all``), i.e. the bars the regime holds per year. A regime that holds
    20% of the bars is not annualised as if it held all year, so its Sharpe compares with
    that of ``all``. NaN with fewer than 2 bars or zero std.
  - ``max_drawdown``: equity ``E = exp(cumsum(masked log returns))`` in time order, starting
    at 1 before the first masked bar (unmasked bars are skipped); the largest
    ``1 - E_t / max_{s<=t} E_s``, a positive fraction (0.1 = a 10% fall).
  - ``win_rate``: share of the trades opened on masked bars whose P&L (over the whole trade,
    masked or not) is > 0; NaN without trades.
  - ``trades``: number of trades opened on masked bars.
  - ``total_return``: ``exp(sum of masked log returns) - 1``.
  - ``profit_factor``: sum of positive masked bar returns / |sum of negative ones|; inf with
    gains and no losses, NaN with neither.
  - ``exposure``: share of masked bars with a non-zero position.

  With no masked bar, every metric is NaN except ``trades`` (0).
"""

from __future__ import annotations

import logging
import math
import numbers
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from forexgrid.core.stats import _check_bars_per_year, _std_is_degenerate
from forexgrid.exceptions import ConfigError, DataError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "METRIC_NAMES",
    "Trades",
    "compute_metrics",
    "compute_metrics_batch",
    "half_spread_cost",
    "strategy_returns",
    "trade_table",
]

logger = logging.getLogger(__name__)

METRIC_NAMES = (
    "sharpe",
    "max_drawdown",
    "win_rate",
    "trades",
    "total_return",
    "profit_factor",
    "exposure",
)
"""Keys of the dictionaries :func:`compute_metrics` returns, in the order of ``result.results``."""


# --------------------------------------------------------------------------- input checks


def _as_positions(positions: np.ndarray) -> np.ndarray:
    """Return positions as a float (T, K) array; 1-D input is one combination (K = 1)."""
    try:
        p = np.asarray(positions, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"positions must be numeric -1/0/1, got {positions!r:.80}") from exc
    if p.ndim == 1:
        p = p[:, None]
    if p.ndim != 2:
        raise ValueError(f"positions must be 1-D (T,) or 2-D (T, K), got shape {p.shape}")
    bad = (p != -1.0) & (p != 0.0) & (p != 1.0)
    if bad.any():
        t, k = np.argwhere(bad)[0]
        raise ValueError(
            f"positions must be -1, 0 or 1; got {float(p[t, k])!r} at bar {t}, combination {k} "
            f"({int(bad.sum())} bad value(s) in all)"
        )
    return p


def _as_returns(returns: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    r = np.asarray(returns, dtype=float)
    if r.ndim == 1:
        r = r[:, None]
    if r.shape != shape:
        raise ValueError(
            f"returns must have the shape of positions {shape} (T bars x K combinations), "
            f"got {np.shape(returns)}"
        )
    return r


def _as_masks(masks: np.ndarray, n_bars: int, *, batched: bool) -> np.ndarray:
    m = np.asarray(masks)
    expected = "(M, T)" if batched else "(T,)"
    if m.dtype != np.bool_:
        raise ValueError(f"mask must be a boolean array {expected}, got dtype {m.dtype}")
    if m.ndim != (2 if batched else 1) or m.shape[-1] != n_bars:
        raise ValueError(
            f"mask must have shape {expected} with T = {n_bars} bars, got shape {m.shape}"
        )
    return m


# --------------------------------------------------------------------------- returns


def half_spread_cost(close: np.ndarray, spread_price: float) -> np.ndarray:
    """Cost of one unit of position change at each bar, as a fraction of the price.

    Parameters
    ----------
    close : array_like, shape (T,)
        Close prices, finite and > 0.
    spread_price : float
        Full bid-ask spread in price units (pips x pip size), >= 0.

    Returns
    -------
    numpy.ndarray, shape (T,)
        ``(spread_price / 2) / close``: the log-return cost of entering or leaving a position
        at the close of each bar.

    Raises
    ------
    DataError
        If ``close`` is not 1-D or holds a non-finite or non-positive price (names the bar).
    ConfigError
        If ``spread_price`` is not a finite number >= 0.
    """
    c = np.asarray(close, dtype=float)
    if c.ndim != 1:
        raise DataError(f"close must be a 1-D series of prices (T,), got shape {c.shape}")
    bad = ~(np.isfinite(c) & (c > 0))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"close[{i}] must be a finite price > 0, got {float(c[i])!r}")
    if (
        isinstance(spread_price, bool)
        or not isinstance(spread_price, numbers.Real)
        or not math.isfinite(spread_price)
        or spread_price < 0
    ):
        raise ConfigError(
            f"spread_price must be a finite number >= 0 (spread pips x pip size, in price "
            f"units), got {spread_price!r}"
        )
    return (float(spread_price) / 2.0) / c


def strategy_returns(positions: np.ndarray, close: np.ndarray, spread_price: float) -> np.ndarray:
    """Per-bar net log returns of K position series over the same bars.

    Parameters
    ----------
    positions : array_like, shape (T, K) or (T,)
        Positions in {-1, 0, 1} decided at the close of each bar and held to the next close.
        A 1-D array is one combination (K = 1).
    close : array_like, shape (T,)
        Close prices of the same bars.
    spread_price : float
        Full spread in price units (pips x pip size); half of it is paid per unit of position
        change.

    Returns
    -------
    numpy.ndarray, shape (T, K)
        ``p_t * log(close[t+1] / close[t]) - cost_t * |p_t - p_{t-1}|`` with ``p_{-1} = 0``;
        the last row closes the position held into it, ``-cost_{T-1} * |p_{T-2}|`` (the split
        ends flat; the position decided on the last bar is never held). One bar gives 0.

    Raises
    ------
    ValueError
        If positions hold anything but -1, 0, 1 or their length differs from ``close``.
    DataError
        If a close price is not finite and > 0.
    ConfigError
        If ``spread_price`` is not a finite number >= 0.
    """
    p = _as_positions(positions)
    cost = half_spread_cost(close, spread_price)
    n_bars, n_comb = p.shape
    if cost.shape[0] != n_bars:
        raise ValueError(
            f"positions have {n_bars} bars but close has {cost.shape[0]}; they must align"
        )
    out = np.zeros((n_bars, n_comb))
    if n_bars >= 2:
        c = np.asarray(close, dtype=float)
        market = np.log(c[1:] / c[:-1])
        # prepend=0: each split starts flat, so the first bar's position is an entry.
        turnover = np.abs(np.diff(p, axis=0, prepend=0.0))
        out[:-1] = p[:-1] * market[:, None] - cost[:-1, None] * turnover[:-1]
        # ...and ends flat: the position held into the last bar is closed at its close.
        out[-1] = -cost[-1] * np.abs(p[-2])
    return out


# --------------------------------------------------------------------------- trades


@dataclass(frozen=True)
class Trades:
    """All trades of K combinations, as flat arrays ordered by combination, then entry bar.

    Attributes
    ----------
    combination : numpy.ndarray of int, shape (n,)
        Column (combination) index of each trade.
    side : numpy.ndarray of float, shape (n,)
        +1 for a long trade, -1 for a short one.
    entry_bar : numpy.ndarray of int, shape (n,)
        Bar at whose close the trade was opened.
    exit_bar : numpy.ndarray of int, shape (n,)
        Last bar at whose close the position was still held (the trade is closed at the
        close of ``exit_bar + 1``, or still open at the end of the split).
    pnl : numpy.ndarray of float, shape (n,)
        Net log-return P&L (see the module docstring for which costs belong to which trade).
    n_combinations : int
        K, so that combinations without trades still get a count of 0.
    """

    combination: np.ndarray
    side: np.ndarray
    entry_bar: np.ndarray
    exit_bar: np.ndarray
    pnl: np.ndarray
    n_combinations: int

    def __len__(self) -> int:
        return int(self.pnl.shape[0])

    @property
    def counts(self) -> np.ndarray:
        """Number of trades per combination, shape (K,)."""
        return np.bincount(self.combination, minlength=self.n_combinations)

    def to_frame(self) -> pd.DataFrame:
        """The trades as a DataFrame, one row per trade."""
        import pandas as pd

        return pd.DataFrame(
            {
                "combination": self.combination,
                "side": self.side,
                "entry_bar": self.entry_bar,
                "exit_bar": self.exit_bar,
                "bars": self.exit_bar - self.entry_bar + 1,
                "pnl": self.pnl,
            }
        )


def _prepare(returns: np.ndarray, positions: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return (returns with excluded bars as 0, positions with excluded bars flat, valid).

    The position decided on the last bar is never held (the split ends flat), so it counts
    as flat too.
    """
    p = _as_positions(positions)
    r = _as_returns(returns, p.shape)
    valid = np.isfinite(r)
    held = np.where(valid, p, 0.0)
    held[-1:] = 0.0
    return np.where(valid, r, 0.0), held, valid


def _trades(p: np.ndarray, r: np.ndarray) -> tuple[Trades, np.ndarray, np.ndarray]:
    """Find the trades of clean (T, K) positions and returns.

    Returns the trades, a (T, K) bool array marking each trade's entry bar, and a (T, K) bool
    array marking the entry bars of winning trades (P&L > 0).
    """
    n_bars, n_comb = p.shape
    prev = np.empty_like(p)
    prev[:1] = 0.0
    prev[1:] = p[:-1]
    held = p != 0.0
    entry = held & (p != prev)
    # A flat bar right after a held one carries the exit half-spread: it belongs to the
    # trade it closes.
    owned = held | (prev != 0.0)

    # Flatten combination-major (F order) so that a single cumsum numbers the trades of all
    # combinations and each trade's bars are contiguous. A column's first owned bar is always
    # an entry (p_{-1} = 0), so no bar is ever credited to the previous column's last trade.
    entry_f = entry.T.ravel()
    trade_id = np.cumsum(entry_f) - 1
    owned_f = owned.T.ravel()
    n_trades = int(entry_f.sum())
    pnl = np.bincount(trade_id[owned_f], weights=r.T.ravel()[owned_f], minlength=n_trades)
    length = np.bincount(trade_id[held.T.ravel()], minlength=n_trades)

    start = np.flatnonzero(entry_f)
    entry_bar = start % max(n_bars, 1)
    trades = Trades(
        combination=start // max(n_bars, 1),
        side=p.T.ravel()[start],
        entry_bar=entry_bar,
        exit_bar=entry_bar + length - 1,
        pnl=pnl,
        n_combinations=n_comb,
    )
    win_f = np.zeros(n_bars * n_comb, dtype=bool)
    win_f[start] = pnl > 0
    win = win_f.reshape(n_comb, n_bars).T
    return trades, entry, win


def trade_table(positions: np.ndarray, returns: np.ndarray) -> Trades:
    """Split K position series into trades and compute each trade's net P&L.

    Parameters
    ----------
    positions : array_like, shape (T, K) or (T,)
        Positions in {-1, 0, 1}, as given to :func:`strategy_returns`.
    returns : array_like, shape (T, K) or (T,)
        Their net returns from :func:`strategy_returns`; bars with a non-finite return are
        outside the backtest and count as flat, as does the position decided on the last bar.

    Returns
    -------
    Trades
        One entry per trade, ordered by combination, then entry bar; ``.counts`` gives the
        number of trades per combination and ``.to_frame()`` a DataFrame. The P&Ls of all
        trades of a combination add up to the sum of its finite returns.

    Raises
    ------
    ValueError
        If positions hold anything but -1, 0, 1 or the shapes differ.
    """
    r, p, _ = _prepare(returns, positions)
    return _trades(p, r)[0]


# --------------------------------------------------------------------------- metrics


def compute_metrics_batch(
    returns: np.ndarray,
    positions: np.ndarray,
    masks: np.ndarray,
    bars_per_year: float,
) -> dict[str, np.ndarray]:
    """Metrics of K combinations over M bar masks at once (every regime of a split).

    The trades are found once; every per-mask aggregate is a (M, T) @ (T, K) product or a
    reduction over one (M, T, K) array, so the cost is a few passes over M x T x K numbers.

    Parameters
    ----------
    returns : array_like, shape (T, K) or (T,)
        Net per-bar returns from :func:`strategy_returns` (bars with a non-finite return are
        excluded).
    positions : array_like, shape (T, K) or (T,)
        The positions behind ``returns``.
    masks : array_like of bool, shape (M, T)
        One row per regime: the bars the metrics are computed over.
    bars_per_year : float
        Bars per year of the timeframe; a mask's Sharpe ratio is annualised by the bars it
        holds per year (``bars_per_year`` times its share of the bars).

    Returns
    -------
    dict of str to numpy.ndarray
        The keys of :data:`METRIC_NAMES`, each an array of shape (M, K) (``trades`` is int,
        the others float). Definitions in the module docstring.

    Raises
    ------
    ValueError
        If the shapes differ, a mask is not boolean, positions hold anything but -1, 0, 1, or
        ``bars_per_year`` is not a finite number > 0.
    """
    bpy = _check_bars_per_year(bars_per_year)
    r, p, valid = _prepare(returns, positions)
    masks = _as_masks(masks, r.shape[0], batched=True)
    _, entry, win = _trades(p, r)

    mf = masks.astype(float)
    in_regime = masks[:, :, None] & valid[None, :, :]  # (M, T, K)
    n_bars = mf @ valid.astype(float)  # (M, K)
    total = mf @ r
    gains = mf @ np.maximum(r, 0.0)
    losses = mf @ np.maximum(-r, 0.0)
    exposed = mf @ (valid & (p != 0.0)).astype(float)
    # Exact integers: sums of 0/1 products stay far below 2**53.
    n_trades = np.rint(mf @ entry.astype(float)).astype(np.int64)
    n_wins = mf @ win.astype(float)

    none = n_bars == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = total / n_bars
        # Two-pass std: a regime where a combination stays flat has returns of exactly 0 and
        # must get std 0 (NaN Sharpe), which the one-pass sum-of-squares formula does not
        # guarantee.
        dev = np.where(in_regime, r[None, :, :] - mean[:, None, :], 0.0)
        std = np.sqrt(np.einsum("mtk,mtk->mk", dev, dev) / (n_bars - 1.0))
        # The bars the mask holds per year: a strategy trading only in this regime.
        share = n_bars / valid.sum(axis=0)
        sharpe = mean / std * np.sqrt(bpy * share)
        sharpe[(n_bars < 2) | _std_is_degenerate(std, mean)] = np.nan

        if r.shape[0]:
            # Unmasked bars add 0, so the equity curve is that of the masked bars in order;
            # the peak starts at 0 (equity 1) before the first masked bar.
            cum = np.cumsum(np.where(in_regime, r[None, :, :], 0.0), axis=1)
            peak = np.maximum.accumulate(np.maximum(cum, 0.0), axis=1)
            worst_log_fall = (peak - cum).max(axis=1)
        else:
            worst_log_fall = np.zeros_like(n_bars)
        max_drawdown = -np.expm1(-worst_log_fall)
        max_drawdown[none] = np.nan

        total_return = np.expm1(total)
        total_return[none] = np.nan

        profit_factor = gains / losses
        profit_factor[(losses == 0) & (gains > 0)] = np.inf
        profit_factor[(losses == 0) & (gains == 0)] = np.nan

        exposure = exposed / n_bars  # 0/0 -> NaN without masked bars
        win_rate = n_wins / n_trades  # 0/0 -> NaN without trades

    return {
        "sharpe": sharpe,
        "max_drawdown": max_drawdown,
        "win_rate": win_rate,
        "trades": n_trades,
        "total_return": total_return,
        "profit_factor": profit_factor,
        "exposure": exposure,
    }


def compute_metrics(
    returns: np.ndarray,
    positions: np.ndarray,
    mask: np.ndarray | None,
    bars_per_year: float,
) -> dict[str, np.ndarray]:
    """Metrics of K combinations over the bars where ``mask`` holds (one regime).

    Parameters
    ----------
    returns : array_like, shape (T, K) or (T,)
        Net per-bar returns from :func:`strategy_returns`; non-finite bars are excluded.
    positions : array_like, shape (T, K) or (T,)
        The positions behind ``returns``.
    mask : array_like of bool, shape (T,), or None
        The regime's bars; None (or all True) is the pseudo-regime ``all``.
    bars_per_year : float
        Bars per year of the timeframe; a mask's Sharpe ratio is annualised by the bars it
        holds per year (``bars_per_year`` times its share of the bars).

    Returns
    -------
    dict of str to numpy.ndarray
        The keys of :data:`METRIC_NAMES`, each an array of shape (K,). Definitions in the
        module docstring.

    Raises
    ------
    ValueError
        If the shapes differ, the mask is not boolean, positions hold anything but -1, 0, 1,
        or ``bars_per_year`` is not a finite number > 0.
    """
    n_bars = np.shape(returns)[0] if np.ndim(returns) else 0
    if mask is None:
        mask = np.ones(n_bars, dtype=bool)
    masks = _as_masks(mask, n_bars, batched=False)[None, :]
    batch = compute_metrics_batch(returns, positions, masks, bars_per_year)
    return {name: values[0] for name, values in batch.items()}
