"""fg.Workspace, the notebook's front door: data, queues (here and in the background),
results, models, regimes, and agreement with the CLI that calls it."""

from __future__ import annotations

import io
import logging

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from runner_support import FAST_GRID, FRONT_SETTINGS

import forexgrid as fg
from forexgrid.cli import cli
from forexgrid.exceptions import ConfigError, ForexgridError, RuleError, StorageError
from forexgrid.journal import JournalReader, JournalWriter, read_tail
from forexgrid.runner import Progress

SETTINGS = FRONT_SETTINGS
GRID = FAST_GRID
_ENV = ("FOREXGRID_CONFIG", "FOREXGRID_WORKSPACE", "FOREXGRID_DATABASE_URL")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    yield
    logger = logging.getLogger("forexgrid")
    for handler in [h for h in logger.handlers if getattr(h, "_forexgrid_front_handler", 0)]:
        logger.removeHandler(handler)
        handler.close()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A workspace whose 8-configuration queue ran through ws.run (with its events)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _ENV:
            mp.delenv(name, raising=False)
        ws = fg.Workspace(tmp_path_factory.mktemp("ws") / "research", config=SETTINGS, create=True)
        events: list[Progress] = []
        handle = ws.run(GRID, name="four", progress=False, on_progress=events.append)
    return ws, handle, events


def test_a_missing_folder_is_an_error_that_says_how_to_create_it(tmp_path):
    with pytest.raises(ForexgridError, match="does not exist: create it with `mkdir -p"):
        fg.Workspace(tmp_path / "nope")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ForexgridError, match="is a file; expected a folder"):
        fg.Workspace(tmp_path / "file")
    ws = fg.Workspace(tmp_path / "new" / "ws", create=True)
    assert ws.path.is_dir() and ws.config_path is None


def test_the_cli_refuses_a_missing_workspace_with_the_same_advice(tmp_path):
    result = CliRunner().invoke(cli, ["--workspace", str(tmp_path / "nope"), "queues"])
    assert result.exit_code == 1
    assert "does not exist: create it with `mkdir -p" in result.stderr


def test_a_workspace_reads_its_default_config_file(tmp_path):
    config = tmp_path / "configs" / "training_pipeline" / "default_config.yaml"
    config.parent.mkdir(parents=True)
    config.write_text("selection:\n  min_trades: 7\n")
    ws = fg.Workspace(tmp_path)
    assert ws.config_path == config and ws.settings.selection.min_trades == 7
    assert "default_config.yaml" in ws._repr_html_()


def test_run_trains_the_queue_and_reports_every_event(trained):
    ws, handle, events = trained
    status = handle.status()
    assert (status.status, status.total, status.completed, status.failed) == (
        "completed",
        8,
        8,
        0,
    )
    assert status.kept == int(handle.results()["kept"].sum())
    kinds = [e.kind for e in events]
    assert kinds[0] == "started" and kinds[-1] == "completed"
    assert kinds.count("training") == 8
    # The journal holds the same lines, for any other process to show.
    assert status.messages[-1] == "Training completed!"
    assert [e["message"] for e in read_tail(handle.journal, 100)] == [e.message for e in events]
    assert "Queue" in handle._repr_html_() and "completed" in handle._repr_html_()


def test_results_lists_the_queue_runs_in_order(trained):
    _, handle, _ = trained
    results = handle.results()
    assert list(results["queue_index"]) == list(range(8))
    assert set(results["model_type"]) == {"ridge", "lasso"}
    assert (results["status"] == "completed").all()


def test_queues_and_queue_find_queues_by_id(trained):
    ws, handle, _ = trained
    queues = ws.queues()
    assert list(queues["id"]) == [handle.id] and queues.loc[0, "name"] == "four"
    assert ws.queue().id == handle.id and ws.queue(handle.id).info().status == "completed"
    with pytest.raises(StorageError, match="no queue with id 99"):
        ws.queue(99)


def test_best_gives_the_rows_of_best_format_csv(trained):
    ws, _, _ = trained
    best = ws.best()
    assert isinstance(best, pd.DataFrame) and not best.empty
    result = CliRunner().invoke(cli, ["--workspace", str(ws.path), "best", "--format", "csv"])
    assert result.exit_code == 0, result.output
    csv = pd.read_csv(io.StringIO(result.stdout))
    assert list(csv.columns) == list(best.columns)
    assert list(zip(csv["regime"], csv["rank"], csv["run_id"], strict=True)) == list(
        zip(best["regime"], best["rank"], best["run_id"], strict=True)
    )
    np.testing.assert_allclose(csv["dsr"], best["dsr"].astype(float))
    # Filters by symbol and regime; derived frames are plain DataFrames.
    one = ws.best("EURUSD", regime=["all"])
    assert set(one["regime"]) == {"all"} and type(one.head()) is pd.DataFrame
    assert "<table" in best._repr_html_()
    with pytest.raises(ForexgridError, match="regime 'nope' has no best list here"):
        ws.best(regime="nope")


def test_history_filters_take_one_or_several_values(trained):
    ws, _, _ = trained
    assert len(ws.history()) == 8
    assert set(ws.history(model_type="ridge")["model_type"]) == {"ridge"}
    assert len(ws.history(model_type=["ridge", "lasso"], status="completed")) == 8
    assert ws.history(symbol="GBPUSD").empty
    with pytest.raises(ForexgridError, match="limit must be an integer between 10 and 1000"):
        ws.history(limit=5)


def test_run_details_states_the_rule_and_the_file_state(trained):
    ws, _, _ = trained
    kept = int(ws.best()["run_id"].iloc[0])
    details = ws.run_details(kept)
    assert details.run.id == kept and details.file_check.ok
    assert not details.chosen.empty and not details.results.empty
    assert "at least 5 trades" in details.rule
    page = details._repr_html_()
    assert "at least 5 trades" in page and f"Run {kept}" in page


def test_a_kept_model_loads_verified_and_predicts_causally(trained):
    ws, _, _ = trained
    row = ws.best().iloc[0]
    model = ws.load_model(int(row["run_id"]))
    assert model.config.horizon == row["horizon"]
    bars = fg.data.load_sample("EURUSD", "1h").iloc[-600:]
    forecasts = model.predict(bars)
    assert list(forecasts.index) == list(bars.index)
    assert forecasts.iloc[-100:].notna().all().all()
    # No look-ahead: changing later bars leaves earlier forecasts as they were.
    changed = bars.copy()
    prices = changed.columns.get_indexer(["open", "high", "low", "close"])
    changed.iloc[-50:, prices] *= np.linspace(1.0, 1.05, 50)[:, None]  # a new trend
    again = model.predict(changed)
    pd.testing.assert_frame_equal(forecasts.iloc[:-50], again.iloc[:-50])
    assert not np.allclose(forecasts.iloc[-1], again.iloc[-1])


def test_load_model_refuses_a_run_without_a_file_and_a_tampered_file(trained, tmp_path):
    ws, handle, _ = trained
    results = handle.results()
    dropped = int(results.loc[~results["kept"], "run_id"].iloc[0])
    with pytest.raises(ForexgridError, match=f"run {dropped} has no model file to load"):
        ws.load_model(dropped)
    kept = ws.run_details(int(ws.best()["run_id"].iloc[-1]))
    path = kept.model_path
    original = path.read_bytes()
    try:
        path.write_bytes(original[:-1] + bytes([original[-1] ^ 1]))
        with pytest.raises(StorageError, match="SHA-256"):
            ws.load_model(kept.run.id)
        assert set(ws.verify()["state"]) == {"ok", "sha_mismatch"}
    finally:
        path.write_bytes(original)
    assert set(ws.verify()["state"]) == {"ok"}


def test_charts_is_a_figure_that_saves(trained, tmp_path):
    ws, _, _ = trained
    figure = ws.charts()
    figure.savefig(tmp_path / "charts.png")
    assert (tmp_path / "charts.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(ws.save_charts(tmp_path / "four")) >= 4


def test_trials_and_scopes_show_the_multiple_testing_statistics(trained):
    ws, handle, _ = trained
    scopes = ws.trials()
    assert {"n_trials", "effective_trials", "pbo"} <= set(scopes.columns)
    assert (scopes["n_trials"] > 0).all()
    assert len(handle.scopes()) == len(scopes)


def test_regimes_add_validate_label_and_delete(trained):
    ws, _, _ = trained
    with pytest.raises(RuleError):
        ws.regimes.add("broken", {"trend_strength": "> banana"}, rescore=False)
    assert "broken" not in set(ws.regimes.list()["name"])
    change = ws.regimes.add("steep", {"trend_strength": "> 0.8"}, "Very strong trend")
    assert change.regime.active and change.rescore is not None
    bars = fg.data.load_sample("EURUSD", "1h")
    labels = ws.regimes.label(bars)
    assert "steep" in labels.columns and labels["steep"].dtype == bool
    # Causal: the labels of the first bars do not change when later bars are cut off.
    cut = ws.regimes.label(bars.iloc[:3000])
    pd.testing.assert_frame_equal(cut, labels.iloc[:3000])
    assert not ws.regimes.toggle("steep").regime.active
    ws.regimes.delete("steep")
    assert "steep" not in set(ws.regimes.list()["name"])


def test_a_grid_is_checked_like_the_config_file(tmp_path):
    ws = fg.Workspace(tmp_path, config=SETTINGS)
    with pytest.raises(ForexgridError, match="unknown key\\(s\\) 'model'"):
        ws.grid({"model": ["ridge"]})
    with pytest.raises(ConfigError, match="grid.days_history"):
        ws.grid({"days_history": [0]})
    with pytest.raises(ForexgridError, match="expected a GridSpec, a mapping"):
        ws.run(42)
    spec = ws.grid(GRID, horizons=[5])
    assert spec.horizons == (5,) and spec.model_types == ("ridge", "lasso")
    assert ws.queues().empty  # nothing was written


def test_data_import_list_and_bars(tmp_path):
    ws = fg.Workspace(tmp_path, config=SETTINGS)
    sample = fg.data.load_sample("EURUSD", "1h").iloc[:500]
    source = tmp_path / "gbp.csv"
    sample.reset_index().to_csv(source, index=False)
    summary = ws.data.import_file(source, symbol="GBPUSD")
    assert summary.total_bars == 500 and ws.data.symbols() == ["GBPUSD"]
    listed = ws.data.list()
    assert "GBPUSD" in set(listed["symbol"])
    bars = ws.data.bars("gbpusd", "4h")
    assert len(bars) < 500 and bars.index.is_monotonic_increasing


def test_an_interrupt_pauses_the_queue_and_resume_finishes_it(tmp_path, capsys):
    ws = fg.Workspace(tmp_path, config=SETTINGS)

    def interrupt(event):
        if event.kind in ("kept", "deleted"):
            raise KeyboardInterrupt

    handle = ws.run(GRID, progress=False, on_progress=interrupt)
    status = handle.status()
    assert status.status == "paused" and 1 <= status.done < 8
    assert f"ws.resume({handle.id})" in capsys.readouterr().err
    assert ws.resume(handle.id, progress=False).status().status == "completed"


def test_progress_false_prints_nothing_and_true_prints_the_status_lines(tmp_path, capsys):
    ws = fg.Workspace(tmp_path, config=SETTINGS)
    one = {**GRID, "model_types": ["ridge"], "days_history": [30], "horizons": [1]}
    ws.run(one, progress=False, skip_trained=False)
    assert capsys.readouterr() == ("", "")
    ws.run(one, progress=True, skip_trained=False)
    err = capsys.readouterr().err
    assert "Training model 1/1" in err and "Training completed!" in err


@pytest.mark.slow
def test_a_background_run_returns_at_once_and_can_be_paused_and_resumed(tmp_path):
    ws = fg.Workspace(tmp_path, config=SETTINGS)
    slow = {
        **GRID,
        "model_types": ["random_forest"],
        "days_history": [60, 90],
        "horizons": [1, 3, 6],
    }
    handle = ws.run(slow, wait=False)
    assert handle.background and handle.status().status in ("pending", "running")
    # Another handle (as another kernel would have) pauses it once one configuration is done.
    other = fg.Workspace(tmp_path, config=SETTINGS).queue(handle.id)
    for _ in range(600):
        if other.status().done >= 1:
            break
        import time

        time.sleep(0.1)
    other.pause()
    paused = handle.wait(timeout=120, progress=False)
    assert paused.status == "paused" and 1 <= paused.done < 6
    final = handle.resume(wait=False).wait(timeout=180, progress=False)
    assert final.status == "completed" and final.completed == 6
    assert not handle.background


def test_waiting_on_a_queue_nobody_runs_is_an_error(tmp_path):
    ws = fg.Workspace(tmp_path, config=SETTINGS)
    handle = ws.create_queue(GRID)
    with pytest.raises(ForexgridError, match="is pending and nobody runs it"):
        handle.wait(progress=False)
    with pytest.raises(ForexgridError, match="on_progress needs wait=True"):
        handle.start(wait=False, on_progress=print)


def test_the_journal_skips_torn_lines_and_follows_new_events(tmp_path):
    path = tmp_path / "queue.jsonl"
    write = JournalWriter(path)
    event = Progress("training", "Training model 1/2...", 1, 2, 0)
    write(event)
    with open(path, "a") as handle:
        handle.write('{"kind": "tra')  # a crash in the middle of a line
        handle.write("\n")
    reader = JournalReader(path)
    assert [e.message for e in reader.new_events()] == ["Training model 1/2..."]
    assert reader.new_events() == []
    write(Progress("kept", "Model kept (improves: all)", 1, 2, 1, improved_regimes=("all",)))
    (kept,) = reader.new_events()
    assert kept.kind == "kept" and kept.improved_regimes == ("all",)
    assert [e["kind"] for e in read_tail(path)] == ["training", "kept"]
