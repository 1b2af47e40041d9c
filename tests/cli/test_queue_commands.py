"""`forexgrid run` and the queue commands, through CliRunner and as real processes."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from forexgrid import load_config, storage
from forexgrid.cli import cli

GRID = {
    "model_types": ["ridge", "lasso"],
    "symbols": ["EURUSD"],
    "timeframes": ["1h"],
    "days_history": [30, 60],
    "horizons": [1, 3],
}
SETTINGS = {
    "evaluation": {"validation_days": 30, "test_days": 30},
    "selection": {"min_trades": 5},
    "queue": {"auto_checkpoint_interval": 4},
}


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({**SETTINGS, "grid": GRID}))
    return tmp_path, config


def invoke(workspace, *args):
    root, _ = workspace
    return CliRunner().invoke(cli, ["--workspace", str(root), *args])


def settings_of(workspace):
    root, config = workspace
    return load_config(config, workspace=root)


def test_run_prints_the_arithmetic_progress_and_summary(workspace):
    _, config = workspace
    result = invoke(workspace, "run", str(config))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert out.splitlines()[0] == (
        "2 models x 1 symbol x 1 timeframe x 2 days x 2 horizons = 8 configurations"
    )
    assert re.search(
        r"^Queue 1 '.*' completed in [\d.]+ s: "
        r"8 total, 8 completed, 0 failed, \d kept, \d deleted( \(\d kept at first, then "
        r"superseded; \d never kept\))?$",
        out,
        re.MULTILINE,
    ), out
    # The multiple-testing statistics of every regime the queue added trials to.
    lines = out.splitlines()
    start = lines.index(
        "Multiple testing, per regime and validation window (forexgrid best for the verdicts):"
    )
    assert re.split(r"\s{2,}", lines[start + 1]) == [
        "Symbol",
        "Validation window",
        "Regime",
        "Trials",
        "Effective",
        "PBO",
    ]
    regimes = [re.split(r"\s{2,}", x)[2] for x in lines[start + 3 :] if x.startswith("EURUSD")]
    assert regimes[0] == "all" and len(regimes) == 5
    # Nothing imported: the bundled sample is said in the summary and on screen.
    assert (
        "Data: EURUSD 1h came from the bundled sample; import your own with: forexgrid data "
        "import FILE --symbol EURUSD"
    ) in lines
    err = result.stderr
    assert "EURUSD: no data imported; training on the bundled EURUSD sample" in err
    assert "Starting training queue..." in err and "Training model 8/8..." in err
    assert "Checkpoint saved" in err and "Training completed!" in err
    assert "Probability of backtest overfitting: EURUSD: all " in err


def test_a_symbol_without_data_names_the_import_command(workspace):
    _, config = workspace
    result = invoke(workspace, "run", str(config), "--symbols", "GBPUSD")
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: no data for GBPUSD 1h: import it with `forexgrid data import FILE --symbol "
        "GBPUSD` (or ws.data.import_file(FILE, symbol='GBPUSD') in a notebook)"
    )
    assert "Traceback" not in result.output


def test_the_summary_splits_deleted_models_into_superseded_and_never_kept():
    from types import SimpleNamespace

    from forexgrid.cli._queues import _summary

    q = SimpleNamespace(
        id=3,
        queue_name="q",
        status="completed",
        total_configs=8,
        completed_count=8,
        failed_count=0,
        kept_count=5,
        deleted_count=3,
    )
    outcomes = {"kept": 5, "kept_then_deleted": 1, "never_kept": 2}
    assert _summary(q, 1.25, outcomes) == (
        "Queue 3 'q' completed in 1.2 s: 8 total, 8 completed, 0 failed, 5 kept, 3 deleted "
        "(1 kept at first, then superseded; 2 never kept)"
    )
    none_superseded = {"kept": 5, "kept_then_deleted": 0, "never_kept": 3}
    assert _summary(q, 1.25, none_superseded).endswith("5 kept, 3 deleted")


def test_flags_override_the_grid_and_already_trained_ones_are_filtered(workspace):
    _, config = workspace
    first = invoke(workspace, "run", str(config), "--models", "ridge", "--horizons", "3")
    assert first.exit_code == 0, first.output
    assert first.stdout.startswith("1 model x 1 symbol x 1 timeframe x 2 days x 1 horizon = 2")
    second = invoke(workspace, "run", str(config), "--models", "ridge", "--horizons", "1,3")
    assert second.exit_code == 0, second.output
    lines = second.stdout.splitlines()
    assert lines[1:3] == ["- 2 already trained", "= 2 new configurations to train"]
    again = invoke(workspace, "run", str(config), "--models", "ridge", "--horizons", "1,3")
    assert again.exit_code == 1
    assert again.stderr.startswith("error: No configurations to train after filtering")


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (("--models", "xgbost"), 1, "did you mean 'xgboost'"),
        (("--timeframes", "7h"), 1, "error: --timeframes: unknown timeframe"),
        (("--days", "sixty"), 2, "expected whole numbers"),
        (("--horizons", "0"), 1, "horizon"),
        (
            ("--days", "99999999999999999999"),
            1,
            "error: --days: must be between 1 and 36500, got 99999999999999999999",
        ),
        (("--horizons", "1,5000"), 1, "error: --horizons: must be between 1 and 1000, got 5000"),
        (
            ("--days", "60", "--days", "60"),
            1,
            "error: --days: duplicate entry 60 (entries must be distinct), got [60, 60]",
        ),
        (("--days", "9" * 5000), 2, "'99999999999999999999999999999999999999"),
        (("--days", "x" * 100_000), 2, "... (100,000 characters)"),
        (("--symbols", "E" * 100_000), 1, "--symbols: symbol must be at most 20 characters"),
        (("--models", "m" * 100_000), 1, "... (100,000 characters)"),
    ],
    ids=[
        "model",
        "timeframe",
        "days-not-int",
        "horizon-zero",
        "days-huge",
        "horizon-too-far",
        "days-twice",
        "days-5000-digits",
        "days-long-text",
        "symbol-long",
        "model-long",
    ],
)
def test_bad_grid_flags_fail_in_one_line_and_write_nothing(workspace, args, code, fragment):
    root, config = workspace
    result = invoke(workspace, "run", str(config), *args)
    assert result.exit_code == code, result.output
    assert fragment in result.stderr
    assert "Traceback" not in result.output
    assert len(result.stderr) < 1000
    if code == 1:
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (root / "forexgrid.db").exists()


def test_a_huge_queue_name_gives_one_bounded_line(workspace):
    root, config = workspace
    result = invoke(workspace, "run", str(config), "--name", "n\n" * 100_000)
    assert result.exit_code == 1, result.output
    assert result.stderr.startswith("error: queue name: expected 1 to 200 characters")
    assert result.stderr.count("\n") == 1 and len(result.stderr) < 2100


@pytest.mark.parametrize("command", ["status", "pause", "cancel", "resume", "run-details"])
@pytest.mark.parametrize("value", ["99999999999999999999", "9" * 5000, "0"], ids=len)
def test_ids_beyond_the_database_range_are_usage_errors(workspace, command, value):
    result = invoke(workspace, command, value)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert "a whole number between 1 and 9223372036854775807" in result.stderr
    assert len(result.stderr) < 1000


def test_run_with_a_missing_or_broken_config(workspace):
    root, _ = workspace
    missing = invoke(workspace, "run", str(root / "nope.yaml"))
    assert missing.exit_code == 1 and "nope.yaml" in missing.stderr
    broken = root / "broken.yaml"
    broken.write_text("grid:\n  horizons: [1, 3\n")
    result = invoke(workspace, "run", str(broken))
    assert result.exit_code == 1 and result.stderr.startswith(f"error: {broken}")
    assert not (root / "forexgrid.db").exists()


def test_queues_status_pause_cancel_and_unknown_ids(workspace):
    _, config = workspace
    assert invoke(workspace, "queues").stdout.startswith("No queues yet")
    assert invoke(workspace, "run", str(config), "--models", "ridge").exit_code == 0
    listed = invoke(workspace, "queues")
    assert re.search(r"^\s+1\s+completed\s+4/4", listed.stdout, re.MULTILINE), listed.stdout
    status = invoke(workspace, "status")
    assert status.exit_code == 0
    assert (
        "status:        completed" in status.stdout
        and "progress:      4/4 (100%)" in status.stdout
    )
    for command in ("status", "pause", "cancel", "resume"):
        result = invoke(workspace, command, "99")
        assert result.exit_code == 1, command
        assert result.stderr.strip() == "error: no queue with id 99", command
    assert invoke(workspace, "pause", "x").exit_code == 2


def test_pause_a_pending_queue_then_resume_it(workspace):
    settings = settings_of(workspace)
    from forexgrid.grid import GridSpec
    from forexgrid.runner import create_queue

    queue = create_queue(GridSpec(**{**GRID, "model_types": ["ridge"]}), settings)
    paused = invoke(workspace, "pause", str(queue.id))
    assert paused.stdout.strip() == f"Queue {queue.id} is now paused"
    resumed = invoke(workspace, "resume", str(queue.id))
    assert resumed.exit_code == 0, resumed.output
    summary = next(x for x in resumed.stdout.splitlines() if x.startswith(f"Queue {queue.id} "))
    assert "completed" in summary
    assert invoke(workspace, "resume", str(queue.id)).exit_code == 1  # finished already


def test_recover_lists_crashed_queues_and_resumes_them(workspace):
    settings = settings_of(workspace)
    from forexgrid.grid import GridSpec
    from forexgrid.runner import create_queue

    assert invoke(workspace, "recover").stdout.strip() == "No crashed queues."
    queue = create_queue(GridSpec(**{**GRID, "model_types": ["ridge"]}), settings)
    with storage.session_scope(settings) as session:
        storage.queues.claim_queue(session, queue.id, "ghost:1", 1)
        storage.queue_control.set_queue_status(session, queue.id, "crashed", expected=("running",))
    listed = invoke(workspace, "recover")
    assert listed.exit_code == 0
    assert f"Queue {queue.id} '" in listed.stdout
    assert "0% done, 4 configurations remaining. Consider restarting from scratch" in listed.stdout
    # The exact command, with the workspace it was given (the current folder is elsewhere).
    root, _ = workspace
    assert f"Resume with: forexgrid --workspace {root} resume {queue.id}\n" in listed.stdout
    resumed = invoke(workspace, "recover", "--resume")
    assert resumed.exit_code == 0, resumed.output
    assert f"Resuming queue {queue.id}..." in resumed.stdout
    with storage.session_scope(settings) as session:
        assert storage.queues.get_queue(session, queue.id).status == "completed"


def test_checkpoint_restore_into_an_empty_database(workspace, tmp_path):
    root, config = workspace
    assert invoke(workspace, "run", str(config)).exit_code == 0
    listed = invoke(workspace, "checkpoint", "list")
    files = listed.stdout.split()
    assert len(files) >= 1 and all("queue_1_checkpoint_" in f for f in files)
    other = tmp_path / "elsewhere"
    other.mkdir()
    result = CliRunner().invoke(
        cli, ["--workspace", str(other), "checkpoint", "restore", files[-1]]
    )
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Restored queue 1 '")
    assert "8/8 done" in result.stdout
    bad = tmp_path / "bad.json"
    bad.write_text('{"version": 99}')
    failed = CliRunner().invoke(
        cli, ["--workspace", str(other), "checkpoint", "restore", str(bad)]
    )
    assert failed.exit_code == 1 and "bad.json" in failed.stderr


def test_db_status_and_upgrade(workspace):
    root, _ = workspace
    status = invoke(workspace, "db", "status")
    assert status.exit_code == 0
    assert status.stdout.startswith(f"sqlite:///{root}/forexgrid.db: schema empty")
    upgraded = invoke(workspace, "db", "upgrade")
    head = storage.database.head_revision()
    assert upgraded.exit_code == 0 and f"upgraded to revision {head}" in upgraded.stdout
    status = invoke(workspace, "db", "status")
    assert status.stdout.startswith(f"sqlite:///{root}/forexgrid.db: schema current")


def test_a_file_that_is_not_a_database_is_one_line(workspace, monkeypatch):
    root, _ = workspace
    junk = root / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    monkeypatch.setenv("FOREXGRID_DATABASE_URL", f"sqlite:///{junk}")
    result = invoke(workspace, "queues")
    assert result.exit_code == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "junk.db" in result.stderr


def _forexgrid(*args, cwd: Path, stderr_to=subprocess.PIPE, new_group=False):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREXGRID_")}
    return subprocess.Popen(
        [sys.executable, "-m", "forexgrid", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr_to,
        text=True,
        # Its own process group, so a test can signal it and its workers like a terminal.
        start_new_session=new_group,
    )


def _wait_for_training(settings, timeout=120):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with storage.session_scope(settings) as session:
                queues = storage.queues.get_all_training_queues(session)
                if queues and storage.queues.get_queue(session, queues[0].id).completed_count >= 1:
                    return queues[0].id
        except Exception:  # noqa: BLE001 - the database may not exist yet
            pass
        time.sleep(0.1)
    raise TimeoutError("no configuration completed")


def _wait_for_run_started(settings, queue_id, index, timeout=120):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with storage.session_scope(settings) as session:
            runs = storage.runs.queue_runs(session, queue_id)
        if any(r.queue_index == index and r.status == "running" for r in runs):
            return
        time.sleep(0.05)
    raise TimeoutError(f"configuration {index} of queue {queue_id} did not start")


SLOW = ["--models", "random_forest", "--days", "60,90", "--horizons", "1,3,6"]


@pytest.mark.slow
@pytest.mark.parametrize("workers", [1, 2], ids=["in-process", "process-pool"])
def test_ctrl_c_pauses_and_the_queue_resumes(workspace, workers):
    root, config = workspace
    # The terminal sends Ctrl-C to the whole process group: pool workers must ignore it.
    config.write_text(
        yaml.safe_dump({**SETTINGS, "grid": GRID, "execution": {"workers": workers}})
    )
    child = _forexgrid("run", str(config), *SLOW, cwd=root, new_group=True)
    try:
        queue_id = _wait_for_training(settings_of(workspace))
        os.killpg(child.pid, signal.SIGINT)  # as a terminal does: the whole group
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 130, err
    assert "Pausing after the configurations in flight finish" in err
    assert f"Resume with: forexgrid --config {config.resolve()} resume {queue_id}" in out
    settings = settings_of(workspace)
    with storage.session_scope(settings) as session:
        queue = storage.queues.get_queue(session, queue_id)
        runs = storage.runs.queue_runs(session, queue_id)
    assert queue.status == "paused"
    assert "running" not in {r.status for r in runs}
    assert "failed" not in {r.status for r in runs}
    resumed = invoke(workspace, "resume", str(queue_id))
    assert resumed.exit_code == 0, resumed.output
    with storage.session_scope(settings) as session:
        assert {r.status for r in storage.runs.queue_runs(session, queue_id)} == {"completed"}


@pytest.mark.slow
def test_a_second_ctrl_c_exits_at_once_and_recover_resumes(workspace):
    import time

    root, config = workspace
    # Two configurations of several seconds each: the Ctrl-Cs come early in the second
    # (right after the first completes), long before it could finish and the queue pause.
    slower = {
        "model_types": ["random_forest"],
        "days_history": [60],
        "horizons": [1, 3],
        "hyperparameters": {"random_forest": {"n_estimators": 4000}},
    }
    config.write_text(yaml.safe_dump({**SETTINGS, "grid": {**GRID, **slower}}))
    log = root / "stderr.txt"
    with log.open("w") as stderr:
        child = _forexgrid("run", str(config), cwd=root, stderr_to=stderr)
        try:
            queue_id = _wait_for_training(settings_of(workspace))
            # Not before the second configuration has started: a Ctrl-C between the first's
            # result and the next start stops the queue at once (nothing in flight), and it
            # would be paused, not left running, by the time the second Ctrl-C comes.
            _wait_for_run_started(settings_of(workspace), queue_id, index=1)
            child.send_signal(signal.SIGINT)
            # Signals that arrive before Python runs the handler merge into one: wait until
            # the first has been handled.
            deadline = time.monotonic() + 60
            while "Pausing after" not in log.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            child.send_signal(signal.SIGINT)
            child.wait(timeout=60)
        finally:
            child.kill()
    err = log.read_text()
    assert child.returncode == 130, err
    assert "Exiting at once" in err
    assert f"continue it with: forexgrid --config {config.resolve()} resume {queue_id}" in err
    settings = settings_of(workspace)
    with storage.session_scope(settings) as session:
        assert storage.queues.get_queue(session, queue_id).status == "running"  # until recovery
    # The runner's process is gone from this machine: a crash at once, no waiting for the
    # heartbeat to go stale (recovery.detect_crash_after_minutes is 5 minutes here).
    recovered = CliRunner().invoke(
        cli, ["--workspace", str(root), "--config", str(config), "recover", "--resume"]
    )
    assert recovered.exit_code == 0, recovered.output
    assert "Resume to" in recovered.stdout or "Consider restarting" in recovered.stdout
    assert "  Why: its runner process is gone (host " in recovered.stdout
    with storage.session_scope(settings) as session:
        assert {r.status for r in storage.runs.queue_runs(session, queue_id)} == {"completed"}


@pytest.mark.slow
def test_the_demo_as_a_real_process(tmp_path):
    demo_dir = tmp_path / "demo"
    child = _forexgrid("demo", "--dir", str(demo_dir), cwd=tmp_path)
    out, err = child.communicate(timeout=300)
    assert child.returncode == 0, err
    assert "2 models x 1 symbol x 2 timeframes x 2 days x 2 horizons = 16 configurations" in out
    assert "16 total, 16 completed, 0 failed" in out
    assert "Best models per regime: EURUSD" in out
    for name in ("sharpe_ratio.png", "max_drawdown.png", "win_rate.png", "performance_radar.png"):
        assert (demo_dir / "charts" / name).stat().st_size > 1000
        assert str(demo_dir / "charts" / name) in out
    history = (demo_dir / "training_history.csv").read_text().splitlines()
    assert len(history) == 17
    assert (demo_dir / "forexgrid.db").exists()
    again = _forexgrid("demo", "--dir", str(demo_dir), cwd=tmp_path)
    _, err = again.communicate(timeout=120)
    assert again.returncode == 1 and "is not empty" in err


def test_a_locked_database_is_one_line_and_exit_1(workspace):
    import sqlite3

    root, _ = workspace
    assert invoke(workspace, "queues").exit_code == 0  # creates the database
    quick = root / "quick.yaml"
    quick.write_text(yaml.safe_dump({"database": {"busy_timeout_seconds": 0.2}}))
    holder = sqlite3.connect(root / "forexgrid.db")
    holder.execute("BEGIN EXCLUSIVE")  # another process holding the write lock
    try:
        result = CliRunner().invoke(
            cli, ["--workspace", str(root), "--config", str(quick), "queues"]
        )
    finally:
        holder.rollback()
        holder.close()
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert "forexgrid.db" in lines[0] and "locked" in lines[0]
