"""Canaries of the selection statistics: the whole grid, through the real runner, on data
whose truth is known.

A pure random walk holds nothing to find: the best lists must not call noise skill, and the
probability of backtest overfitting (PBO) must be reported for every list. A planted AR(1)
signal is real and tradable: the best model must be found, called significant and earn on
the untouched test period. Both run the real queue runner (``create_queue``, ``run_queue``)
on bars stored in a temporary workspace's data store, and read ``best_models_table``.

The bars are 1h on FX trading hours (New York week, daylight saving included), with
EURUSD-like volatility (1e-3 a bar), wicks beyond open and close and volume that rises with
the size of the move. Prices are not rounded to 5 decimals: rounding would add a tick of
mean-reverting noise, and the random walk must stay an exact martingale.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from forexgrid import load_config, storage
from forexgrid.core.stats import psr_from_moments
from forexgrid.data.store import DataStore
from forexgrid.data.synthetic import bars_from_log_returns
from forexgrid.grid import GridSpec
from forexgrid.runner import create_queue, run_queue

pytestmark = pytest.mark.slow

# 90 days of history + 60 of validation + 60 of test need about 3,630 1h bars with the
# features' warm-up; 4,000 (33 trading weeks from 2021-01-04, across the March switch to
# daylight saving) leave room for the regimes' warm-up.
N_BARS = 4000
START = "2021-01-04"
HOURLY_VOL = 1e-3

# The issue's grid: before the grid-wide DSR, it kept validation Sharpes of 12.2, 11.8 and
# 8.2 on a random walk, whose test Sharpes were -12.5, 5.1 and -11.4.
ISSUE_GRID = dict(
    model_types=["ridge", "lightgbm"],
    timeframes=["1h"],
    days_history=[60, 90],
    horizons=[1, 3],
)
# Independent random walks, one per symbol: each is a replicate of the issue's experiment
# with its own scopes and lists (a scope is per symbol), run in one queue.
RANDOM_WALKS = tuple(f"RW{k}" for k in range(8))
RANDOM_WALK_SEED = 0

PLANTED_SEED = 0
PLANTED_PHI = 0.35


def _fx_bars(log_returns: np.ndarray, seed: int) -> pd.DataFrame:
    """1h bars in FX trading hours whose close-to-close log returns are ``log_returns``."""
    return bars_from_log_returns(log_returns, start=START, seed=seed, volatility=HOURLY_VOL)


def _random_walk(seed: int) -> np.ndarray:
    """Driftless Gaussian log returns: every causal strategy's expected return is 0."""
    return np.random.default_rng([seed, 0]).normal(0.0, HOURLY_VOL, N_BARS)


def _ar1(seed: int, phi: float) -> np.ndarray:
    """AR(1) log returns ``r_t = phi r_{t-1} + e_t``, ``e_t ~ N(0, HOURLY_VOL^2)``."""
    from scipy.signal import lfilter

    shocks = np.random.default_rng([seed, 0]).normal(0.0, HOURLY_VOL, N_BARS)
    return lfilter([1.0], [1.0, -phi], shocks)


def _workspace(root, bars: dict[str, pd.DataFrame], **sections):
    """A workspace under ``root`` (its own database and data store) holding ``bars``."""
    data = {"logging": {"log_to_file": False}, **sections}
    root.mkdir(parents=True)
    (root / "forexgrid.yaml").write_text(yaml.safe_dump(data))
    settings = load_config(root / "forexgrid.yaml", workspace=root)
    store = DataStore(settings.data_path)
    for symbol, frame in bars.items():
        path = root / f"{symbol}.parquet"
        frame.to_parquet(path)
        store.import_file(path, symbol)
    return settings


def _run_grid(settings, grid: dict) -> dict:
    """Run ``grid`` through the queue runner; return what ``forexgrid best`` reads."""
    queue_id = create_queue(GridSpec(**grid), settings, skip_trained=False).id
    final = run_queue(queue_id, settings)
    assert final.status == "completed" and final.failed_count == 0
    with storage.session_scope(settings) as session:
        table = storage.bests.best_models_table(session)
        scopes = storage.trials.scope_table(session)
        lists = {}
        for _, window in storage.bests.best_windows(session):
            lists.update(storage.bests.load_bests(session, window=window))
    return {"table": table, "scopes": scopes, "lists": lists}


@pytest.fixture(scope="module")
def clean_env():
    """No FOREXGRID_* variable of the caller's shell may point the runner elsewhere."""
    with pytest.MonkeyPatch.context() as patch:
        for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def random_walk_grid(tmp_path_factory, clean_env) -> dict:
    """The issue's 8-configuration grid on each of the independent random walks.

    Spread 0: with it every causal strategy on a driftless random walk has expected return
    exactly 0 (a martingale), so any Sharpe ratio seen is luck, not a cost the model failed
    to beat. Two workers: the runner's results are bit-identical to a serial run.
    """
    bars = {
        symbol: _fx_bars(_random_walk(seed), seed)
        for seed, symbol in enumerate(RANDOM_WALKS, start=RANDOM_WALK_SEED)
    }
    settings = _workspace(
        tmp_path_factory.mktemp("canary") / "random_walk",
        bars,
        evaluation={"spread_pips": {"default": 0.0}},
        execution={"workers": 2},
    )
    return _run_grid(settings, {**ISSUE_GRID, "symbols": list(RANDOM_WALKS)})


def _entries(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["has_best"]]


def _undeflated_psr(entry) -> float:
    """The entry's probabilistic Sharpe ratio against 0: its DSR if the grid had 1 trial."""
    m = entry.daily
    return psr_from_moments(m.sharpe, m.n, m.skew, m.kurtosis, 0.0)


def test_random_walk_grid_reports_a_finite_pbo_for_every_list(random_walk_grid) -> None:
    """Every (symbol, regime) scope the grid scored gets its PBO when the queue stops
    (CSCV, 16 blocks by default), a probability in [0, 1], and ``best`` shows that value on
    every entry of the scope's list.

    On noise the in-sample best is a coin flip out of sample, so the PBO averages about
    0.5: over 40 walks (200 scopes) it ranged 0.04 to 0.94, and the mean of each set of 8
    walks' 40 scopes was 0.50 to 0.55. The band 0.35 to 0.65 catches a PBO stuck at 0 or 1
    or inverted (the planted signal's is below 0.25).
    """
    table, scopes = random_walk_grid["table"], random_walk_grid["scopes"]
    assert set(scopes["symbol"]) == set(RANDOM_WALKS)
    assert len(scopes) == len(RANDOM_WALKS) * 5  # "all" and the four default regimes
    assert scopes["pbo"].between(0.0, 1.0).all(), scopes[["symbol", "regime", "pbo"]]
    assert (scopes["pbo_blocks"] == 16).all()
    entries = _entries(table)
    assert len(entries) >= 0.9 * len(scopes)  # a regime may have no eligible model
    shown = entries.merge(scopes, on=["symbol", "regime"], suffixes=("", "_scope"))
    assert len(shown) == len(entries)
    assert np.array_equal(shown["pbo"].to_numpy(), shown["pbo_scope"].to_numpy())
    print(
        f"random walks: PBO mean {scopes['pbo'].mean():.3f}, range {scopes['pbo'].min():.3f}"
        f" to {scopes['pbo'].max():.3f}"
    )
    assert 0.35 < scopes["pbo"].mean() < 0.65


def test_random_walk_grid_large_raw_sharpes_are_called_luck(random_walk_grid) -> None:
    """On pure noise the kept models' raw validation Sharpe ratios are large, and without
    deflation most of them would pass as significant; the grid-wide DSR calls the typical
    one "could be luck".

    Bounds, from 40 random walks (197 lists, these 8 and 32 more) run the same way: the
    entries' median validation Sharpe was 4.0 (a quarter of them above 5.4, as in the
    issue); their probabilistic Sharpe ratio against 0 (the DSR of a 1-trial grid) had a
    median of 0.987 and reached 0.95 on 64% of the lists; the grid-wide DSR had a median of
    0.48 (under the null a calibrated DSR is about uniform) and per set of 8 walks flagged
    0% to 11% as many lists as the undeflated PSR. So: median validation Sharpe above 2.5
    (one 44-day annualised Sharpe has a standard error of about 2.4), the undeflated PSR >=
    0.95 on at least half the lists, the median DSR below 0.75 and at most a quarter as many
    significant lists. A grid scored without deflation fails the last two; the grid-wide
    DSR of the first version of this feature (which paired a participation ratio dominated by
    the trials' common component with their cross-sectional Sharpe variance, 25% of lists
    significant) failed the last one.
    """
    table, lists = random_walk_grid["table"], random_walk_grid["lists"]
    entries = _entries(table)
    undeflated = np.array(
        [_undeflated_psr(lists[(row.symbol, row.regime)][0]) for row in entries.itertuples()]
    )
    dsr = entries["dsr"].to_numpy()
    significant = (entries["verdict"] == "significant").to_numpy()
    print(
        f"random walks: {len(entries)} lists; validation Sharpe median "
        f"{entries['val_sharpe'].median():.2f} (max {entries['val_sharpe'].max():.2f}); "
        f"test Sharpe mean {entries['test_sharpe'].mean():+.2f}; undeflated PSR median "
        f"{np.median(undeflated):.3f}, >= 0.95 on {np.sum(undeflated >= 0.95)}; DSR median "
        f"{np.median(dsr):.3f}, significant {significant.sum()}"
    )
    assert np.array_equal(significant, dsr >= 0.95)
    assert entries["val_sharpe"].median() > 2.5
    assert np.mean(undeflated >= 0.95) >= 0.5
    assert np.median(dsr) < 0.75
    assert significant.sum() <= 0.25 * np.sum(undeflated >= 0.95)


def test_random_walk_grid_calls_nothing_significant(random_walk_grid) -> None:
    """On these seeded random walks no list is "significant" (DSR >= 0.95), and over many
    walks the rate is the nominal one.

    The seed is the first one run, not a chosen one. A calibrated DSR still calls the best
    of a list significant on noise about 5% of the time: over 40 walks (197 lists, these 8
    and 32 more, run the same way) 8 were (4.1%: 0, 2, 3, 1 and 2 per set of 8 walks, this
    set the first), so the bound that would hold for any seed is the rate, at most 12.5% (5
    of 40: exceeded with probability 1.4% at a calibrated 5%); the first version of this
    feature called 25% of the lists significant (10 on these walks) and fails both.
    """
    entries = _entries(random_walk_grid["table"])
    significant = entries[entries["verdict"] == "significant"]
    print(
        "significant on random walks:",
        significant[["symbol", "regime", "config_label", "val_sharpe", "dsr"]].to_string(),
    )
    assert len(significant) <= 0.125 * len(entries)
    assert significant.empty


@pytest.fixture(scope="module")
def planted_signal_grid(tmp_path_factory, clean_env) -> dict:
    """Ridge (90 days) at horizons 1 and 3 on AR(1) returns, net of the default 1-pip spread.

    Two configurations rather than one: a single configuration's 13 combinations are near
    copies of one signal, whose PBO is a coin flip whatever the edge (0.29 to 0.73 measured).
    """
    bars = {"EURUSD": _fx_bars(_ar1(PLANTED_SEED, PLANTED_PHI), PLANTED_SEED)}
    settings = _workspace(tmp_path_factory.mktemp("canary") / "planted", bars)
    grid = {**ISSUE_GRID, "model_types": ["ridge"], "days_history": [90], "symbols": ["EURUSD"]}
    return _run_grid(settings, grid)


def test_planted_signal_is_found_significant_and_earns_on_test(planted_signal_grid) -> None:
    """A real, tradable edge survives the deflation: the ``all`` list's best is significant,
    earns on the untouched test period and its scope's PBO is low.

    phi = 0.35 is far above any autocorrelation of real hourly FX returns (near 0); 44
    validation days are short, and a signal must be strong for them to certify it against
    the ~95 trials of the two configurations net of a realistic 1-pip spread. Measured with
    this set-up over seeds 0 to 9: phi 0.25 was significant on 6 of 10 (DSR down to 0.67),
    phi 0.3 on 9 of 10 (DSR down to 0.942), phi 0.35 on 10 of 10 (DSR 0.994 to 1.0, test
    Sharpe 10.2 and up, PBO at most 0.04). Bounds: DSR >= 0.95 (the verdict); test Sharpe
    above 3 (a 44-day annualised Sharpe has a standard error of about 2.4, so a true ~10
    stays above 3); PBO below 0.25, where the random walks' ``all`` scopes had a median of
    0.50 and 1 of 40 fell below.
    """
    table, scopes = planted_signal_grid["table"], planted_signal_grid["scopes"]
    best = table[(table["regime"] == "all") & (table["rank"] == 1)].iloc[0]
    scope = scopes[scopes["regime"] == "all"].iloc[0]
    print(
        f"planted: {best.config_label} {best.signal} {best.threshold}: validation Sharpe "
        f"{best.val_sharpe:.2f}, test Sharpe {best.test_sharpe:.2f}, DSR {best.dsr:.4f} over "
        f"{best.n_trials} trials (N_eff {best.effective_trials:.1f}), PBO {best.pbo:.3f}"
    )
    assert best.n_trials == scope.n_trials > 13  # deflated over both configurations
    assert best.verdict == "significant" and best.dsr >= 0.95
    assert best.test_sharpe > 3.0
    assert 0.0 <= best.pbo == scope.pbo < 0.25
