"""Fixtures of the widget tests: small real workspaces (the fast grid of test_workspace.py)."""

from __future__ import annotations

import logging
import time

import pytest

import forexgrid as fg

SETTINGS = {
    "evaluation": {"validation_days": 30, "test_days": 30},
    "selection": {"min_trades": 5},
    "logging": {"log_to_file": False},
}
GRID = {
    "model_types": ["ridge", "lasso"],
    "symbols": ["EURUSD"],
    "timeframes": ["1h"],
    "days_history": [30, 60],
    "horizons": [1, 3],
}
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


@pytest.fixture
def workspace(tmp_path):
    """An empty workspace (EURUSD comes from the bundled sample)."""
    return fg.Workspace(tmp_path / "ws", config=SETTINGS, create=True)


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """A workspace whose 8-configuration queue was trained (read-only for the tests)."""
    with pytest.MonkeyPatch.context() as mp:
        for name in _ENV:
            mp.delenv(name, raising=False)
        ws = fg.Workspace(tmp_path_factory.mktemp("trained") / "ws", config=SETTINGS, create=True)
        ws.run(GRID, name="trained", progress=False)
    return ws


@pytest.fixture
def wait_stopped():
    """``wait_stopped(panel)``: refresh a QueuePanel until its queue stops."""
    return _wait_until_stopped


def _wait_until_stopped(panel, timeout: float = 120.0) -> list[int]:
    """Refresh ``panel`` (a QueuePanel) as the poller would until its queue stops; return
    the progress values seen."""
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        panel.refresh()
        seen.append(panel.progress.value)
        status = panel.model.last
        if status is not None and status.stopped:
            # The background runner's last steps (PBO, checkpoint) follow the status change.
            panel.model.queue._join_background()
            panel.refresh()
            return seen
        time.sleep(0.2)
    raise AssertionError(f"queue did not stop in {timeout} s; progress seen {seen[-5:]}")
