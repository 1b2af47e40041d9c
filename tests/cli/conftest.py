"""Fixtures of the CLI command tests: a small finished workspace, built once per module.

The workspace holds a SQLite database, the artifacts of a completed queue (ridge and lasso x
EURUSD x 1h x 30, 60 days x horizons 1, 3 = 8 configurations, about 3 s on the bundled
sample) and the config file the CLI is pointed at with ``--workspace DIR --config FILE``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner, Result

from forexgrid import load_config
from forexgrid.cli import cli
from forexgrid.config import Settings
from forexgrid.grid import GridSpec

SETTINGS = {
    "evaluation": {"validation_days": 30, "test_days": 30},
    "selection": {"min_trades": 5},
    "logging": {"log_to_file": False},
}
GRID = dict(
    model_types=["ridge", "lasso"],
    symbols=["EURUSD"],
    timeframes=["1h"],
    days_history=[30, 60],
    horizons=[1, 3],
)
_ENV = ("FOREXGRID_CONFIG", "FOREXGRID_WORKSPACE", "FOREXGRID_DATABASE_URL")


@dataclass(frozen=True)
class Workspace:
    """A workspace folder, its config file and the settings loaded from it."""

    root: Path
    config: Path
    settings: Settings
    queue_id: int | None = None


def make_workspace(root: Path) -> Workspace:
    """Write the config into ``root`` (a new, empty workspace) and load it."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / "forexgrid.yaml"
    config.write_text(yaml.safe_dump(SETTINGS))
    return Workspace(root, config, load_config(SETTINGS, workspace=root))


@pytest.fixture(scope="module")
def finished_workspace(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """A workspace whose 8-configuration queue has run to completion (shared by a module)."""
    from forexgrid.runner import create_queue, run_queue

    with pytest.MonkeyPatch.context() as mp:
        for name in _ENV:
            mp.delenv(name, raising=False)
        ws = make_workspace(tmp_path_factory.mktemp("finished"))
        queue = create_queue(GridSpec(**GRID), ws.settings, skip_trained=False)
        final = run_queue(queue.id, ws.settings)
    assert final.status == "completed" and final.completed_count == 8, final
    return Workspace(ws.root, ws.config, ws.settings, queue.id)


@pytest.fixture
def empty_workspace(tmp_path: Path) -> Workspace:
    """A fresh workspace with nothing trained (the database is created on first use)."""
    return make_workspace(tmp_path / "empty")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """No user environment leaks in; HOME is a temporary folder; no dangling log handlers."""
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    yield
    # The CLI attaches a stderr handler bound to CliRunner's stream, which closes after
    # each invoke; drop it so later library calls do not log into a closed file.
    logger = logging.getLogger("forexgrid")
    for handler in [h for h in logger.handlers if getattr(h, "_forexgrid_front_handler", 0)]:
        logger.removeHandler(handler)
        handler.close()


def runner_for(ws: Workspace) -> Callable[..., Result]:
    def invoke(*args: str, input: str | None = None, config: Path | None = None) -> Result:
        argv = ["--workspace", str(ws.root), "--config", str(config or ws.config), *args]
        return CliRunner().invoke(cli, argv, input=input)

    return invoke


@pytest.fixture
def run_cli(finished_workspace: Workspace) -> Callable[..., Result]:
    """``run_cli(*args, input=None, config=None)``: invoke the CLI on the finished workspace."""
    return runner_for(finished_workspace)


@pytest.fixture
def run_empty(empty_workspace: Workspace) -> Callable[..., Result]:
    """Like :func:`run_cli`, on a fresh empty workspace."""
    return runner_for(empty_workspace)


@pytest.fixture
def cli_for() -> Callable[[Workspace], Callable[..., Result]]:
    """``cli_for(workspace)``: an invoker like :func:`run_cli` for any workspace."""
    return runner_for
