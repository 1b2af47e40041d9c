"""Shared set-up of the runner, recovery and fault-injection tests: a small real workspace.

Each workspace is a temporary folder with its own SQLite database, artifacts and checkpoints,
a config file the child runner processes load too, and the bundled EURUSD sample as data.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import yaml

from forexgrid import load_config, storage
from forexgrid.grid import GridSpec
from forexgrid.storage.artifacts import ModelFileManager

# Small windows keep each configuration well under a second on the sample.
# Small evaluation windows keep each fit to a second or so; no log file in the workspace.
FRONT_SETTINGS = {
    "evaluation": {"validation_days": 30, "test_days": 30},
    "selection": {"min_trades": 5},
    "logging": {"log_to_file": False},
}
SETTINGS = {**FRONT_SETTINGS, "queue": {"auto_checkpoint_interval": 2}}

FAST_GRID = dict(
    model_types=["ridge", "lasso"],
    symbols=["EURUSD"],
    timeframes=["1h"],
    days_history=[30, 60],
    horizons=[1, 3],
)
# Slow enough (about a second a fit) that a test can act while a configuration is in flight.
SLOW_GRID = dict(
    model_types=["random_forest"],
    symbols=["EURUSD"],
    timeframes=["1h"],
    days_history=[60, 90],
    horizons=[1, 3, 6],
)

CHILD = textwrap.dedent(
    """
    import sys
    from forexgrid import load_config
    from forexgrid.runner import run_queue
    from forexgrid.exceptions import ForexgridError

    settings = load_config(sys.argv[1], workspace=sys.argv[2])
    try:
        queue = run_queue(int(sys.argv[3]), settings)
    except ForexgridError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(1)
    print(queue.status)
    """
)


def make_workspace(root: Path, **overrides) -> tuple[Path, object]:
    """Write a config into ``root`` and return (config path, settings)."""
    data = {**SETTINGS}
    for section, values in overrides.items():
        data[section] = {**data.get(section, {}), **values}
    root.mkdir(parents=True, exist_ok=True)
    config = root / "forexgrid.yaml"
    config.write_text(yaml.safe_dump(data))
    return config, load_config(config, workspace=root)


def new_queue(settings, grid: dict) -> int:
    from forexgrid.runner import create_queue

    return create_queue(GridSpec(**grid), settings, skip_trained=False).id


def start_child(config: Path, workspace: Path, queue_id: int, fault: str | None = None):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREXGRID_")}
    if fault:
        env["FOREXGRID_FAULT"] = fault
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config), str(workspace), str(queue_id)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout: float = 60.0, every: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned) or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise TimeoutError(f"condition not met within {timeout} s")


def runs(settings, queue_id: int) -> list:
    with storage.session_scope(settings) as session:
        return storage.runs.queue_runs(session, queue_id)


def queue(settings, queue_id: int):
    with storage.session_scope(settings) as session:
        return storage.queues.get_queue(session, queue_id)


def assert_consistent(settings, *queue_ids: int) -> None:
    """Every configuration of the queues completed once, no orphan model file (nor a
    temporary one), every kept file verifies, and the kept models are exactly those in a
    best list. With ``model_management.delete_non_best_models`` off, every run's file
    stays."""
    all_runs = [r for queue_id in queue_ids for r in runs(settings, queue_id)]
    assert [r.status for r in all_runs] == ["completed"] * len(all_runs)
    for queue_id in queue_ids:
        indexes = sorted(r.queue_index for r in runs(settings, queue_id))
        assert indexes == list(range(len(indexes)))
    files = ModelFileManager(settings.artifacts_path)
    kept = {r.model_file_path: r.model_file_sha256 for r in all_runs if r.is_model_kept}
    every = {r.model_file_path: r.model_file_sha256 for r in all_runs if r.model_file_path}
    on_disk = (
        {p.name for p in settings.artifacts_path.iterdir()}
        if settings.artifacts_path.exists()
        else set()
    )
    expected = kept if settings.model_management.delete_non_best_models else every
    assert on_disk == set(expected), f"files {sorted(on_disk)} vs expected {sorted(expected)}"
    for path, sha in expected.items():
        assert files.verify(path, sha), path
    with storage.session_scope(settings) as session:
        windows = {window for _, window in storage.bests.best_windows(session)}
        bests = [storage.bests.load_bests(session, window=window) for window in windows]
    in_lists = {entry.run_id for lists in bests for entries in lists.values() for entry in entries}
    assert in_lists == {r.id for r in all_runs if r.is_model_kept}


# ----------------------------------------------------------------------------- processes


def is_stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP: state T in /proc/PID/stat)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 2] in "Tt"


def file_states(folder: Path) -> dict[str, tuple[int, int]]:
    """Every file in ``folder``: name -> (inode, mtime in ns): any rewrite changes it."""
    if not folder.exists():
        return {}
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.iterdir()}


# ----------------------------------------------------------------------------- PostgreSQL

PG_URL = os.environ.get("FOREXGRID_TEST_DATABASE_URL", "").strip()


@contextlib.contextmanager
def postgres_url():
    """The URL of a new, empty schema on the test PostgreSQL server, dropped afterwards."""
    from urllib.parse import quote

    from sqlalchemy import create_engine, text

    from forexgrid.storage.database import get_database

    admin = create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    schema = f"fgtest_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    separator = "&" if "?" in PG_URL else "?"
    url = f"{PG_URL}{separator}options={quote(f'-csearch_path={schema}')}"
    try:
        yield url
    finally:
        get_database(url).dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()
