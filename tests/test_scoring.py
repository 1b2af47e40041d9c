"""forexgrid.scoring: PBO per scope, a run's grid-wide scores, and rescoring kept models when
a regime is added or its rules change (from their files, without retraining)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd
import pytest
from runner_support import FAST_GRID, assert_consistent, make_workspace, new_queue, runs

from forexgrid import scoring, storage
from forexgrid.core.regimes import Regime
from forexgrid.core.trials import TrialStats
from forexgrid.data.store import DataStore
from forexgrid.exceptions import StorageError
from forexgrid.pipeline import evaluate_model
from forexgrid.runner import run_queue
from forexgrid.storage.artifacts import ModelFileManager

BREAKOUT = {"trend_strength": "> 0.5", "volatility": "> 75th percentile"}


@pytest.fixture
def trained(tmp_path, monkeypatch):
    """A workspace whose 8-configuration queue has completed: (settings, queue id)."""
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    _, settings = make_workspace(tmp_path / "ws")
    queue_id = new_queue(settings, FAST_GRID)
    run_queue(queue_id, settings)
    return settings, queue_id


def _versions(settings):
    with storage.session_scope(settings) as session:
        return storage.regimes_repo.current_rules_versions(session, dict(settings.regimes))


def _window(settings):
    with storage.session_scope(settings) as session:
        (window,) = {w for _, w in storage.bests.best_windows(session)}
    return window


def test_adding_a_regime_rescores_the_kept_models_from_their_files(trained):
    settings, queue_id = trained
    before = runs(settings, queue_id)
    kept = [r.id for r in before if r.is_model_kept]
    deleted = [r.id for r in before if not r.is_model_kept]
    assert kept and deleted
    with storage.session_scope(settings) as session:
        storage.regimes_repo.add_regime(session, "breakout", BREAKOUT, "custom")
    report = scoring.rescore_regimes(settings, ["breakout"])
    assert report.regimes == ("breakout",)
    assert sorted(report.rescored) == kept
    assert report.not_scored == {run_id: scoring.MODEL_DELETED for run_id in deleted}
    assert report.summary().startswith(
        f"Rescored {len(kept)} kept model(s) under the current rules of 'breakout' from their "
        f"files (no retraining); {len(deleted)} model(s) deleted earlier are marked not scored"
    )
    version = _versions(settings)["breakout"]
    window = _window(settings)
    key = storage.trials.ScopeKey("EURUSD", "breakout", version, *window)

    # The rescored trials are what phase 2 gives the stored model on its own bars.
    run = next(r for r in before if r.id == kept[0])
    model = ModelFileManager.from_settings(settings).load(
        run.model_file_path, run.model_file_sha256
    )
    bars = DataStore(settings.data_path).load_bars("EURUSD", "1h")
    fresh = evaluate_model(model, run.config, bars, settings, [Regime("breakout", BREAKOUT)])
    with storage.session_scope(settings) as session:
        stored = {k: (d, status) for k, d, status in storage.trials.run_trials(session, run.id)}
        np.testing.assert_array_equal(stored[key][0], fresh.trials.of("breakout"))
        # Deleted models are recorded as not scored under the new rules.
        marks = storage.trials.run_trials(session, deleted[0])
        assert (key, None, scoring.MODEL_DELETED) in marks
        (stats,) = storage.trials.load_scope_stats(session, [key], len(fresh.trials.days)).values()
        every, _ = storage.trials.scope_returns(session, key)
        assert stats.n_trials == TrialStats.from_returns(every).n_trials > 0
        scope = storage.trials.scope_statistics(session, key)
        assert scope["n_runs"] == len(kept) and 0.0 <= scope["pbo"] <= 1.0
        breakout = storage.bests.load_bests(session, window=window).get(("EURUSD", "breakout"), [])
        chosen = storage.runs.run_chosen(session, run.id).set_index("regime")
    assert chosen.loc["breakout", "rules_version"] == version
    assert all(e.rules_version == version and e.run_id in kept for e in breakout)
    assert_consistent(settings, queue_id)

    # Once scored, nothing to do.
    again = scoring.rescore_regimes(settings, ["breakout"])
    assert again.rescored == () and sorted(again.already_scored) == sorted(kept + deleted)


def test_editing_rules_rebuilds_the_list_and_drops_a_model_best_nowhere_else(trained):
    settings, queue_id = trained
    window = _window(settings)
    with storage.session_scope(settings) as session:
        lists = storage.bests.load_bests(session, window=window)
        # No combination can trade in a regime that never holds: its list empties.
        storage.regimes_repo.edit_regime(session, "bull_trending", rules={"trend_strength": "> 2"})
    only_bull = [
        e.run_id
        for e in lists.get(("EURUSD", "bull_trending"), [])
        if all(
            e.run_id not in {x.run_id for x in entries}
            for (_, regime), entries in lists.items()
            if regime != "bull_trending"
        )
    ]
    report = scoring.rescore_regimes(settings, ["bull_trending"])
    assert sorted(report.deleted) == sorted(only_bull)
    versions = _versions(settings)
    with storage.session_scope(settings) as session:
        after = storage.bests.load_bests(session, window=window)
        table = storage.bests.best_models_table(session, rules_versions=versions)
    assert after.get(("EURUSD", "bull_trending"), []) == []
    note = table.set_index("regime").loc["bull_trending", "note"]
    assert note.startswith("none of the") and "qualified" in note
    assert_consistent(settings, queue_id)


def test_new_bars_after_the_old_end_do_not_stop_a_rescore(trained, tmp_path):
    settings, queue_id = trained
    sample = DataStore(settings.data_path).load_bars("EURUSD", "1h")
    later = sample.iloc[-500:].copy()
    later.index = later.index + pd.Timedelta(weeks=30)
    path = tmp_path / "more.csv"
    pd.concat([sample, later]).rename_axis("time").to_csv(path)
    DataStore(settings.data_path).import_file(path, "EURUSD")
    with storage.session_scope(settings) as session:
        storage.regimes_repo.add_regime(session, "breakout", BREAKOUT, "custom")
    report = scoring.rescore_regimes(settings, ["breakout"])
    kept = [r.id for r in runs(settings, queue_id) if r.is_model_kept]
    # The runs' own bars (up to their last bar) are unchanged: they are rescored on them.
    assert sorted(report.rescored) == kept


def test_a_run_whose_data_changed_is_not_rescored(trained, tmp_path):
    settings, queue_id = trained
    # The stored history replaced by one that starts later: the runs' bars are gone.
    sample = DataStore(settings.data_path).load_bars("EURUSD", "1h")
    path = tmp_path / "shorter.csv"
    sample.iloc[100:].rename_axis("time").to_csv(path)
    DataStore(settings.data_path).import_file(path, "EURUSD", replace=True)
    with storage.session_scope(settings) as session:
        storage.regimes_repo.add_regime(session, "breakout", BREAKOUT, "custom")
    report = scoring.rescore_regimes(settings, ["breakout"])
    kept = [r.id for r in runs(settings, queue_id) if r.is_model_kept]
    assert report.rescored == ()
    assert all(report.not_scored[r].startswith("DataError") for r in kept)
    assert_consistent(settings, queue_id)


def test_unknown_regimes_are_named(trained):
    settings, _ = trained
    with pytest.raises(StorageError, match=re.escape("no regime named 'nope' (known: ")):
        scoring.rescore_regimes(settings, ["nope"])


def test_grid_scores_of_a_run_are_against_every_trial_stored(trained):
    settings, queue_id = trained
    run = next(r for r in runs(settings, queue_id) if r.is_model_kept)
    window = _window(settings)
    with storage.session_scope(settings) as session:
        grid = scoring.grid_scores(session, run.id)
        scopes = storage.trials.scope_table(session).set_index("regime")
        lists = storage.bests.load_bests(session, window=window)
    assert list(grid.columns) == list(scoring.GRID_SCORE_COLUMNS)
    assert grid["regime"].tolist()[0] == "all"
    for row in grid.itertuples():
        assert row.n_trials == scopes.loc[row.regime, "n_trials"]
        assert row.effective_trials == pytest.approx(scopes.loc[row.regime, "effective_trials"])
        for entry in lists.get(("EURUSD", row.regime), []):
            if entry.run_id == run.id:
                assert row.dsr == pytest.approx(entry.dsr)
                assert row.verdict == ("significant" if entry.dsr >= 0.95 else "could be luck")
        assert math.isnan(row.dsr) or 0.0 <= row.dsr <= 1.0


def test_update_pbo_on_demand_matches_the_queue_end(trained):
    settings, _ = trained
    with storage.session_scope(settings) as session:
        before = storage.trials.scope_table(session)
    results = scoring.update_pbo(settings)
    with storage.session_scope(settings) as session:
        after = storage.trials.scope_table(session)
    assert len(results) == len(before)
    np.testing.assert_allclose(after["pbo"], before["pbo"])
    assert (after["pbo_computed_at"] >= before["pbo_computed_at"]).all()
