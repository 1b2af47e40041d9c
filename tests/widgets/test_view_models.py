"""The panels' view-models, without widgets: what Generate creates, which buttons make
sense, the rows of the regime and history tables, rules checks and the export."""

from __future__ import annotations

import re
import subprocess
import sys
import time

import pandas as pd
import pytest

import forexgrid as fg
from forexgrid.exceptions import ForexgridError, RuleError
from forexgrid.widgets import HistoryModel, QueueModel, RegimesModel, button_states


@pytest.mark.parametrize(
    ("status", "requested", "enabled"),
    [
        (None, None, {"generate"}),
        ("pending", None, {"generate", "start", "cancel"}),
        ("running", None, {"pause", "cancel"}),
        ("running", "pause", {"cancel"}),
        ("running", "cancel", set()),
        ("paused", None, {"generate", "cancel", "resume"}),
        ("crashed", None, {"generate", "cancel", "resume"}),
        ("completed", None, {"generate"}),
        ("cancelled", None, {"generate"}),
        ("failed", None, {"generate"}),
    ],
    ids=lambda v: str(v),
)
def test_buttons_are_enabled_only_when_they_make_sense(status, requested, enabled):
    states = button_states(status, requested=requested)
    assert set(states) == {"generate", "start", "pause", "cancel", "resume"}
    assert {name for name, on in states.items() if on} == enabled


def _selection(**over):
    base = {
        "model_types": ["ridge"],
        "symbols": ["EURUSD"],
        "timeframes": ["1h"],
        "days_history": [30, 60, 90],
        "horizons": [1, 3],
        "encoder": "time_delta",
        "skip_trained": True,
    }
    return {**base, **over}


def test_choices_come_from_the_library_and_the_data_store(workspace):
    model = QueueModel(workspace)
    assert "ridge" in model.model_type_choices and "xgboost" in model.model_type_choices
    # Nothing imported: EURUSD is served from the bundled sample, so it is offered.
    assert model.symbol_choices == ("EURUSD",)
    assert model.timeframe_choices == ("15m", "1h", "4h", "1d")
    assert {30, 60, 90, 180} <= set(model.days_choices)
    assert model.encoder_choices == ("time_delta", "absolute", "normalized")
    assert model.defaults["encoder"] == "time_delta"


def test_generate_shows_the_arithmetic_and_the_count_after_skipping(trained):
    model = QueueModel(trained)
    generated = model.generate(**_selection())
    # ridge x 30/60/90 x 1/3: the trained fixture holds ridge at 30 and 60 days.
    assert generated.arithmetic == (
        "1 model x 1 symbol x 1 timeframe x 3 days x 2 horizons = 6 configurations"
    )
    assert (generated.total, generated.skipped, generated.to_train) == (6, 4, 2)
    assert generated.lines()[-1] == f"= 2 new configurations to train (queue {generated.queue.id})"
    info = generated.queue.info()
    assert (info.status, info.total_configs) == ("pending", 2)
    assert list(model.log)[:3] == generated.lines()
    # Cancel the pending queue: the session-wide fixture stays as it was for other tests.
    generated.queue.cancel()


def test_generating_again_cancels_the_unstarted_queue(workspace):
    model = QueueModel(workspace)
    first = model.generate(**_selection(days_history=[30]))
    second = model.generate(**_selection(days_history=[30], horizons=[1]))
    assert first.queue.info().status == "cancelled"
    assert second.queue.info().status == "pending" and second.total == 1
    assert f"Queue {first.queue.id} (generated, never started) cancelled." in model.log


@pytest.mark.parametrize(
    ("over", "message"),
    [
        ({"model_types": []}, "model types: select at least one"),
        ({"days_history": []}, "days history: select at least one"),
        ({"encoder": ""}, "encoder: select one"),
    ],
    ids=["no-models", "no-days", "no-encoder"],
)
def test_generate_names_the_empty_choice(workspace, over, message):
    with pytest.raises(ForexgridError, match=re.escape(message)):
        QueueModel(workspace).generate(**_selection(**over))
    assert workspace.queues().empty


def test_controls_need_a_queue(workspace):
    model = QueueModel(workspace)
    with pytest.raises(ForexgridError, match="start: no queue yet; press Generate first"):
        model.start()
    assert model.read() is None
    assert model.summary(None)["Status"] == "no queue"


def test_a_queue_started_by_another_process_is_followed(workspace):
    """A queue started by another process (here the CLI) is picked up and shown live."""
    model = QueueModel(workspace)
    config = workspace.path / "grid.yaml"
    config.write_text(
        "evaluation: {validation_days: 30, test_days: 30}\nselection: {min_trades: 5}\n"
        "logging: {log_to_file: false}\n"
        "grid: {model_types: [ridge, lasso], symbols: [EURUSD], timeframes: [1h], "
        "days_history: [30, 60], horizons: [1, 3]}\n"
    )
    cli = subprocess.Popen(
        [sys.executable, "-m", "forexgrid", "--workspace", str(workspace.path), "run",
         str(config)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while model.follow_external() is None:
            assert cli.poll() is None, cli.stderr.read().decode()
            assert time.monotonic() < deadline, "the CLI's queue never showed as running"
            time.sleep(0.1)
        statuses = []
        while not statuses or not statuses[-1].stopped:
            statuses.append(model.read())
            time.sleep(0.2)
    finally:
        assert cli.wait(timeout=120) == 0, cli.stderr.read().decode()
    # The runner journals its last lines (PBO, "Training completed!") after the status
    # change; the panel's poller keeps reading, as this read does.
    statuses.append(model.read())
    assert statuses[-1].status == "completed" and statuses[-1].total == 8
    assert "Training completed!" in model.log
    assert any(line.startswith("Training model") for line in model.log)
    assert model.summary(statuses[-1])["Completed"] == 8


# ------------------------------------------------------------------------------ regimes


def test_the_regime_table_has_a_row_per_active_regime_with_ticks(trained):
    rows = RegimesModel(trained).best_rows("EURUSD")
    best = trained.best("EURUSD", entries_only=False)
    assert list(rows.columns[:4]) == ["Regime", "Rank", "Has best model", "Val Sharpe"]
    assert set(rows["Regime"]) == set(best["regime"])
    assert (rows["Has best model"] == "\u2713").sum() == int(best["has_best"].sum()) > 0
    filled = rows[rows["Has best model"] == "\u2713"].iloc[0]
    source = best[best["has_best"]].iloc[0]
    assert filled["Val Sharpe"] == f"{source['val_sharpe']:.2f}"
    assert filled["Max drawdown"] == f"{100 * source['test_max_drawdown']:.1f}%"
    assert filled["Run"] == str(int(source["run_id"]))


def test_rules_are_checked_with_the_parsers_message(workspace):
    model = RegimesModel(workspace)
    assert model.check_rules("calm", '{"volatility": "< 50th percentile"}') is None
    problem = model.check_rules("calm", '{"volatility": "< fifty"}')
    with pytest.raises(RuleError) as err:
        fg.core.regimes.parse_rules("calm", '{"volatility": "< fifty"}')
    assert problem == str(err.value) and "cannot parse" in problem
    bad_json = model.check_rules("calm", "{volatility")
    assert bad_json is not None and "rules are not valid JSON" in bad_json


def test_add_edit_toggle_delete_change_the_database(workspace):
    model = RegimesModel(workspace)
    with pytest.raises(RuleError):
        model.add("strong", '{"trend_strength": "> lots"}')
    assert "strong" not in model.names()
    model.add("strong", '{"trend_strength": "> 0.8"}', "very trendy")
    assert workspace.regimes.get("strong").rules == {"trend_strength": "> 0.8"}
    model.edit("strong", '{"trend_strength": "> 0.9"}', "trendier")
    info = workspace.regimes.get("strong")
    assert (dict(info.rules), info.description) == ({"trend_strength": "> 0.9"}, "trendier")
    assert model.toggle("strong").active is False
    model.delete("strong")
    assert "strong" not in model.names()
    definitions = model.definitions()
    assert list(definitions.columns) == ["Name", "Active", "Default", "Rules", "Description"]
    assert "bull_trending" in set(definitions["Name"])


# ------------------------------------------------------------------------------ history


def test_history_rows_follow_ws_history(trained):
    model = HistoryModel(trained)
    # "All" among the chosen statuses means no status filter.
    everything = model.search(model_types=["ridge"], statuses=["completed", "All"], limit=10)
    frame = model.search(model_types=["ridge"], statuses=["completed"], limit=10)
    assert set(frame["model_type"]) == {"ridge"} and len(frame) == 4
    assert set(everything["id"]) >= set(frame["id"])
    rows = model.rows(frame)
    assert list(rows["ID"]) == list(frame["id"])
    assert (rows["UUID"].str.len() == 8).all()
    assert list(rows["Kept"]) == ["\u2713" if k else "\u2717" for k in frame["kept"]]
    assert rows["Status"].str.contains("completed</span>").all()
    assert model.run_id(0) == int(frame["id"].iloc[0])
    assert model.details(0).run.id == model.run_id(0)
    with pytest.raises(ForexgridError, match=r"row 9 is not in the table \(4 rows\)"):
        model.run_id(9)
    assert model.search(statuses=["failed"]).empty


def test_export_writes_the_rows_as_csv(trained, tmp_path):
    model = HistoryModel(trained)
    with pytest.raises(ForexgridError, match="export: no rows to export"):
        model.export(tmp_path)
    frame = model.search()
    path = model.export(tmp_path / "out")
    assert path.parent == tmp_path / "out" and path.suffix == ".csv"
    written = pd.read_csv(path)
    assert list(written.columns) == list(frame.columns)
    assert list(written["id"]) == list(frame["id"])
