"""The Workspace in a real Jupyter kernel: progress that moves while the queue trains, and
charts that display inline with no magic."""

from __future__ import annotations

import textwrap
from datetime import datetime

import nbformat
import pytest
from jupyter_client.manager import start_new_kernel
from nbclient import NotebookClient

from forexgrid import storage
from forexgrid.config import load_config

pytestmark = pytest.mark.slow

SETTINGS = {
    "evaluation": {"validation_days": 30, "test_days": 30},
    "selection": {"min_trades": 5},
    "logging": {"log_to_file": False},
}
_ENV = ("FOREXGRID_CONFIG", "FOREXGRID_WORKSPACE", "FOREXGRID_DATABASE_URL")


@pytest.fixture
def kernel_env(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def _execute(client, code: str, timeout: float = 240) -> list[dict]:
    """Run ``code`` and return every iopub message of that execution, in order."""
    msg_id = client.execute(code)
    messages = []
    while True:
        msg = client.get_iopub_msg(timeout=timeout)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        messages.append(msg)
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return messages


def _when(msg) -> datetime:
    date = msg["header"]["date"]
    return date if isinstance(date, datetime) else datetime.fromisoformat(date)


def test_ws_run_shows_progress_that_moves_before_the_queue_completes(tmp_path, kernel_env):
    manager, client = start_new_kernel(kernel_name="python3", cwd=str(tmp_path))
    try:
        code = textwrap.dedent(
            f"""
            import forexgrid as fg
            ws = fg.Workspace({str(tmp_path)!r}, config={SETTINGS!r})
            handle = ws.run({{"model_types": ["ridge", "lasso"], "days_history": [30, 60],
                             "timeframes": ["1h"], "horizons": [1, 3]}})
            handle
            """
        )
        messages = _execute(client, code)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    errors = [m["content"] for m in messages if m["msg_type"] == "error"]
    assert not errors, errors
    settings = load_config(SETTINGS, workspace=tmp_path)
    with storage.session_scope(settings) as session:
        runs = storage.runs.queue_runs(session, 1)
    last_done = max(r.completed_at for r in runs)
    assert len(runs) == 8 and all(r.status == "completed" for r in runs)

    # The status lines are the cell's text output, sent while the runs were training.
    lines = [
        (_when(m), m["content"]["text"])
        for m in messages
        if m["msg_type"] == "stream" and m["content"]["name"] == "stdout"
    ]
    early = [text for when, text in lines if when < last_done and "Training model" in text]
    assert len(early) >= 2, lines
    # The bar is a widget whose value grows while the queue trains.
    states = [
        (_when(m), m["content"]["data"].get("state", {}))
        for m in messages
        if m["msg_type"] == "comm_msg"
    ]
    values = [
        (when, state["value"])
        for when, state in states
        if isinstance(state.get("value"), (int, float))  # the bar (its labels are text)
    ]
    before = sorted({value for when, value in values if when < last_done})
    assert len(before) >= 2 and before[0] < before[-1] < 8, values
    # The handle displays as HTML at the end (the cell's result).
    results = [m for m in messages if m["msg_type"] == "execute_result"]
    assert "text/html" in results[-1]["content"]["data"]
    assert "completed" in results[-1]["content"]["data"]["text/html"]


def test_ws_charts_displays_a_png_in_a_fresh_kernel(tmp_path, kernel_env):
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import forexgrid as fg\n"
            f"ws = fg.Workspace({str(tmp_path)!r}, config={SETTINGS!r})\n"
            "ws.run({'model_types': ['ridge'], 'days_history': [30], 'timeframes': ['1h'], "
            "'horizons': [1, 3]}, progress=False);"
        ),
        nbformat.v4.new_code_cell("ws.charts()"),
    ]
    NotebookClient(
        notebook, timeout=240, kernel_name="python3", resources={"metadata": {"path": tmp_path}}
    ).execute()
    outputs = notebook.cells[-1].outputs
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 1, outputs
