"""The panels' wiring: clicking buttons (``Button.click()``) and setting values, asserting
what the widgets show and what changed in the database."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys

import ipywidgets as w
import pandas as pd
import pytest
from sqlalchemy import update

from forexgrid.storage.tables import TrainingQueue
from forexgrid.widgets import GridTrainingManager, QueueModel, QueuePanel
from forexgrid.widgets._base import Poller, handler

CONTROLS = {
    "queue": ["model_types", "symbols", "encoder", "skip_trained", "generate_button",
              "start_button", "pause_button", "cancel_button", "resume_button", "progress",
              "status", "summary"],
    "regimes": ["symbol", "table", "charts_button"],
    "history": ["search_button", "clear_button", "table", "details_button", "export_button"],
}  # fmt: skip


def _classes(widget) -> set[str]:
    return set(widget._dom_classes)


def _enabled(panel) -> set[str]:
    names = ("generate", "start", "pause", "cancel", "resume")
    return {n for n in names if not getattr(panel, f"{n}_button").disabled}


@pytest.fixture
def manager(workspace):
    manager = GridTrainingManager(workspace, poll=False)
    yield manager
    manager.close()


def _choose_small_grid(panel, days=(30,), horizons=(1, 3)):
    panel.model_types.value = ("ridge", "lasso")
    panel.symbols.value = ("EURUSD",)
    panel.timeframes.value = ("1h",)
    panel.days.value = days
    panel.horizons.value = horizons


def test_the_manager_shows_three_tabs_with_stable_names_and_classes(manager):
    assert manager.tabs.titles == ("Training Queue", "Regime Analysis", "Training History")
    assert isinstance(manager.widget, w.VBox) and manager.recovery.widget.layout.display == "none"
    for panel_name, controls in CONTROLS.items():
        panel = getattr(manager, panel_name)
        for control in controls:
            expected = f"forexgrid-{panel_name}-{control.replace('_', '-')}"
            assert expected in _classes(getattr(panel, control)), (panel_name, control)
    for group in ("timeframes", "days", "horizons"):
        box = getattr(manager.queue, group).box
        assert f"forexgrid-queue-{group}" in _classes(box)
        assert all(isinstance(c, w.Checkbox) for c in box.children)
        options = getattr(manager.queue, group).options
        for option, checkbox in zip(options, box.children, strict=True):
            assert f"forexgrid-queue-{group}-{option}" in _classes(checkbox)
    # From a path too, and nothing but Generate before a queue exists.
    other = GridTrainingManager(str(manager.workspace.path), poll=False)
    assert other.workspace.path == manager.workspace.path
    assert _enabled(other.queue) == {"generate"}
    other.close()


def test_generate_start_and_watch_a_queue_to_completion(manager, wait_stopped):
    panel = manager.queue
    _choose_small_grid(panel)
    panel.generate_button.click()
    assert "= 4 configurations; 0 already trained; 4 to train" in panel.message.value
    assert "- 0 already trained" in panel.status.value
    queue = manager.workspace.queue()
    assert (queue.info().status, queue.info().total_configs) == ("pending", 4)
    assert _enabled(panel) == {"generate", "start", "cancel"}

    panel.start_button.click()
    assert "Error" not in panel.message.value, panel.message.value
    seen = wait_stopped(panel)
    assert seen == sorted(seen) and seen[-1] == 4 and panel.progress.max == 4
    assert "<td>Completed</td>" in panel.summary.value
    assert "Training completed!" in panel.model.log
    assert panel.status.value.endswith("Training completed!</pre></div>")  # newest last
    assert panel.progress.bar_style == "success"
    assert _enabled(panel) == {"generate"}
    assert queue.info().status == "completed"
    # A poll after the queue stopped refreshes the other tabs: the runs and the ticks show.
    manager._last_state = (queue.id, "running")
    manager._tick()
    assert len(manager.history.table._df) == 4
    assert (manager.regimes.table._df["Has best model"] == "\u2713").any()


def test_generate_shows_what_is_skipped(trained):
    manager = GridTrainingManager(trained, poll=False)
    panel = manager.queue
    panel.model_types.value = ("ridge",)
    panel.timeframes.value = ("1h",)
    panel.days.value = (30, 60, 90)
    panel.horizons.value = (1,)
    panel.skip_trained.value = True
    panel.generate_button.click()
    assert "3 configurations; 2 already trained; 1 to train" in panel.message.value
    manager.queue.model.queue.cancel()  # the session-wide fixture stays as it was
    manager.close()


def test_pause_then_resume(manager, wait_stopped):
    panel = manager.queue
    _choose_small_grid(panel, days=(30, 60))
    panel.generate_button.click()
    panel.start_button.click()
    panel.pause_button.click()
    assert "Pause requested" in panel.message.value
    wait_stopped(panel)
    info = manager.workspace.queue().info()
    assert info.status == "paused" and info.done < 8
    assert _enabled(panel) == {"generate", "cancel", "resume"}
    assert "<td>Paused</td>" in panel.summary.value
    panel.resume_button.click()
    assert "Error" not in panel.message.value, panel.message.value
    wait_stopped(panel)
    info = manager.workspace.queue().info()
    assert (info.status, info.done) == ("completed", 8)
    assert panel.progress.value == 8


def test_cancel_asks_to_confirm(manager):
    panel = manager.queue
    _choose_small_grid(panel)
    panel.generate_button.click()
    queue = manager.workspace.queue()
    panel.cancel_button.click()
    assert panel.cancel_confirm.layout.display == "flex"
    assert queue.info().status == "pending"  # nothing happens before the confirmation
    panel.keep_button.click()
    assert panel.cancel_confirm.layout.display == "none" and queue.info().status == "pending"
    panel.cancel_button.click()
    panel.confirm_cancel_button.click()
    assert queue.info().status == "cancelled"
    assert "<td>Cancelled</td>" in panel.summary.value
    assert _enabled(panel) == {"generate"}


def test_errors_are_shown_in_the_status_area_and_the_log(manager, caplog):
    panel = manager.queue
    panel.model_types.value = ()
    panel.generate_button.click()
    assert "model types: select at least one" in panel.message.value
    assert "color:#cf222e" in panel.message.value
    assert "Error: model types: select at least one" in panel.status.value
    assert manager.workspace.queues().empty

    # An unexpected error (a bug) says its type and is logged with its traceback.
    def broken(**_):
        raise KeyError("boom")

    panel.model.generate = broken
    with caplog.at_level("ERROR", logger="forexgrid.widgets"):
        panel.generate_button.click()
    assert "KeyError: &#x27;boom&#x27;" in panel.message.value
    assert any(r.exc_info for r in caplog.records if "_on_generate" in r.getMessage())


def test_a_failing_poll_is_shown_once_and_polling_goes_on(manager, monkeypatch):
    def broken():
        raise OSError("database is locked")

    monkeypatch.setattr(manager.queue.model, "read", broken)
    manager._tick()
    manager._tick()
    assert "reading the queue failed: OSError: database is locked" in manager.queue.message.value
    assert (
        list(manager.queue.model.log).count(
            "Error: reading the queue failed: OSError: database is locked"
        )
        == 1
    )
    monkeypatch.undo()
    manager._tick()  # recovered: no error state left behind
    assert manager._poll_error is None


def test_a_runner_that_exits_without_training_is_reported(manager, tmp_path):
    panel = manager.queue
    _choose_small_grid(panel)
    panel.generate_button.click()
    handle = panel.model.queue
    output = tmp_path / "runner.out"
    output.write_text("error: queue 1: 1 queue(s) already running (queue.max_parallel_queues)\n")
    # As if Start had launched a runner that gave up before claiming the queue.
    handle._process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(1)"])
    handle._process.wait()
    handle._output = output
    manager._tick()
    assert "exited with status 1 while the queue is pending: error: queue 1: 1 queue(s)" in (
        panel.message.value
    )
    assert handle.info().status == "pending" and not panel.start_button.disabled
    manager._tick()  # reported once
    assert sum("while the queue is pending" in line for line in panel.model.log) == 1


def test_the_handler_wrapper_keeps_the_return_value_and_catches():
    class Panel:
        shown: list[str] = []

        def show_error(self, text):
            self.shown.append(text)

        @handler
        def _on_ok(self):
            return 3

        @handler
        def _on_bad(self):
            raise ValueError("nope")

    panel = Panel()
    assert panel._on_ok() == 3 and panel._on_bad() is None
    assert Panel.shown == ["ValueError: nope"]


def test_the_poller_runs_on_the_event_loop_and_survives_errors():
    ticks = []

    def tick():
        ticks.append(len(ticks))
        if len(ticks) == 2:
            raise RuntimeError("one bad read")

    async def main():
        poller = Poller(tick, interval=0.01)
        assert poller.start() and poller.running
        await asyncio.sleep(0.2)
        poller.stop()
        return len(ticks)

    assert Poller(tick).start() is False  # no loop running: the caller polls itself
    assert asyncio.run(main()) >= 5  # went on after the error


def test_the_recovery_banner_resumes_a_crashed_queue(workspace, wait_stopped):
    model = QueueModel(workspace)
    model.generate(
        model_types=["ridge"], symbols=["EURUSD"], timeframes=["1h"], days_history=[30],
        horizons=[1, 3], encoder="time_delta", skip_trained=False,
    )  # fmt: skip
    with workspace.session() as session:  # as a killed runner leaves it, once detected
        session.execute(
            update(TrainingQueue)
            .where(TrainingQueue.id == model.queue.id)
            .values(status="crashed")
        )
    manager = GridTrainingManager(workspace, poll=False)
    banner = manager.recovery
    assert banner.widget.layout.display != "none"
    assert len(banner.resume_buttons) == 1
    text = " ".join(c.value for c in banner.widget.children[1].children if hasattr(c, "value"))
    assert "0% done, 2 configurations remaining" in text
    assert re.search(r"Consider restarting from scratch", text)
    banner.resume_buttons[0].click()
    assert banner.widget.layout.display == "none"
    wait_stopped(manager.queue)
    assert workspace.queue(model.queue.id).info().status == "completed"
    manager.close()
    closed = GridTrainingManager(workspace, poll=False)
    closed.recovery.close_button.click()
    assert closed.recovery.widget.layout.display == "none"


# ------------------------------------------------------------------------------ regimes


def test_regime_rules_are_checked_inline_and_changes_reach_the_database(manager):
    panel = manager.regimes
    assert panel.symbol.value == "EURUSD"
    assert set(panel.table._df["Has best model"]) == {"\u2717"}  # nothing trained yet
    panel.name.value = "strong"
    panel.rules.value = '{"trend_strength": "> lots"}'
    assert "cannot parse" in panel.rules_check.value and "#cf222e" in panel.rules_check.value
    panel.add_button.click()
    assert "cannot parse" in panel.message.value
    assert "strong" not in set(manager.workspace.regimes.list()["name"])
    panel.rules.value = '{"trend_strength": "> 0.8"}'
    assert "Rules are valid." in panel.rules_check.value
    panel.add_button.click()
    assert "Regime &#x27;strong&#x27; added." in panel.message.value
    assert "Nothing to rescore" in panel.rescore_status.value  # no kept model yet
    assert panel.rescore_progress.bar_style == "success"
    assert "strong" in set(panel.definitions._df["Name"])
    assert panel.regime_select.value == "strong"
    assert panel.rules.value == '{"trend_strength": "> 0.8"}' and panel.name.disabled
    panel.rules.value = "{trend"
    panel.edit_button.click()
    assert "rules are not valid JSON" in panel.message.value
    panel.rules.value = '{"trend_strength": "> 0.9"}'
    panel.description.value = "stronger"
    panel.edit_button.click()
    info = manager.workspace.regimes.get("strong")
    assert (dict(info.rules), info.description) == ({"trend_strength": "> 0.9"}, "stronger")
    panel.toggle_button.click()
    assert manager.workspace.regimes.get("strong").active is False
    panel.delete_button.click()
    assert "strong" not in set(manager.workspace.regimes.list()["name"])
    panel.delete_button.click()  # "(new regime)" is selected now
    assert "choose the regime to delete" in panel.message.value


def test_rescoring_runs_off_the_loop_and_its_result_is_applied_on_it(manager):
    panel = manager.regimes
    panel.name.value = "calm_trend"
    panel.rules.value = '{"trend_strength": "> 0.6", "volatility": "< 50th percentile"}'

    async def main():
        panel.add_button.click()  # inside a running loop, as in a kernel
        assert panel._rescoring is not None and "Rescoring" in panel.rescore_status.value
        for _ in range(600):
            if panel._rescoring is None:
                return
            await asyncio.sleep(0.05)
        raise AssertionError("rescoring did not finish")

    asyncio.run(main())
    assert "Nothing to rescore" in panel.rescore_status.value
    assert panel.rescore_progress.bar_style == "success"
    assert "calm_trend" in set(panel.definitions._df["Name"])


def test_regime_table_and_charts_of_a_trained_workspace(trained):
    manager = GridTrainingManager(trained, poll=False)
    panel = manager.regimes
    assert (panel.table._df["Has best model"] == "\u2713").any()
    panel.charts_button.click()
    assert "Performance charts of EURUSD" in panel.message.value
    assert panel.charts.value[:8] == b"\x89PNG\r\n\x1a\n" and len(panel.charts.value) > 10_000
    manager.close()


# ------------------------------------------------------------------------------ history


def test_history_search_details_and_export(trained):
    manager = GridTrainingManager(trained, poll=False)
    panel = manager.history
    panel.model_type.value = ("lasso",)
    panel.status.value = ("completed",)
    panel.search_button.click()
    shown = panel.table._df
    assert len(shown) == 4 and set(shown["Model"]) == {"lasso"}
    assert "4 run(s), newest first." in panel.message.value
    assert panel.details_button.disabled
    panel.table.selected_rows = [1]
    assert not panel.details_button.disabled
    panel.details_button.click()
    assert f"Details of run {shown['ID'].iloc[1]}." in panel.message.value
    assert f"Run {shown['ID'].iloc[1]} (" in panel.details.value
    panel.export_button.click()
    match = re.search(r"Exported 4 run\(s\) to (\S+\.csv)", panel.message.value)
    assert match, panel.message.value
    assert list(pd.read_csv(match.group(1))["id"]) == list(shown["ID"])
    panel.clear_button.click()
    assert panel.model_type.value == ("All",) and len(panel.table._df) >= 8
    panel.limit.value = 10
    panel.status.value = ("failed",)
    panel.search_button.click()
    assert panel.table._df.empty and "0 run(s)" in panel.message.value
    manager.close()


def test_a_queue_panel_can_be_used_alone(workspace):
    panel = QueuePanel(QueueModel(workspace))
    assert "forexgrid-queue-panel" in _classes(panel.widget)
    assert "<td>no queue</td>" in panel.summary.value
