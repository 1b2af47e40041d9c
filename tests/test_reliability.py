"""What survives what (docs/runner.md, "Failure model"), proven with real processes.

- A runner frozen (SIGSTOP) past crash detection, whose queue another runner recovered and
  finished, writes nothing when continued: it exits with one line, every file the other
  runner committed is untouched, no run is recorded twice.
- Reconciliation, from ``recover`` or from a second queue starting, never removes the files
  of a live runner (SQLite and PostgreSQL).
- Two queues at once on PostgreSQL decide exactly as a serial replay of the same runs.
- Every exit of a runner but a kill records the queue as paused with the error; it resumes
  at once.
- A runner whose process is gone from this machine is a crash at once; a frozen one only
  after the heartbeat timeout.
- A queue resumes with the settings it was created with, whatever the configuration says.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys

import pytest
import yaml
from runner_support import (
    FAST_GRID,
    PG_URL,
    SLOW_GRID,
    assert_consistent,
    file_states,
    is_stopped,
    make_workspace,
    new_queue,
    postgres_url,
    queue,
    runs,
    start_child,
    wait_for,
)

from forexgrid import storage
from forexgrid.exceptions import StorageError
from forexgrid.recovery import recover
from forexgrid.runner import run_queue

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not PG_URL, reason="needs FOREXGRID_TEST_DATABASE_URL (a PostgreSQL server)"
        ),
    ),
]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch):
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def make(tmp_path, request):
    """``make(name, backend, **overrides)``: a workspace on SQLite or a new PostgreSQL schema."""
    with contextlib.ExitStack() as stack:

        def build(name: str, backend: str = "sqlite", **overrides):
            if backend == "postgresql":
                url = stack.enter_context(postgres_url())
                overrides = {**overrides, "database": {"url": url}}
            return make_workspace(tmp_path / name, **overrides)

        yield build


@contextlib.contextmanager
def children(*procs):
    """Kill whatever is still running of ``procs`` on the way out (SIGCONT first)."""
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.communicate()


def _no_duplicate_results(settings, queue_id):
    keys = ["signal", "threshold", "lookback", "regime", "split", "rules_version"]
    with storage.session_scope(settings) as session:
        for run in storage.runs.queue_runs(session, queue_id):
            results = storage.runs.run_results(session, run.id)
            assert not results.empty
            assert not results.duplicated(subset=keys).any(), run.id


# ---------------------------------------------------------------------------- fencing


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_a_runner_that_lost_its_queue_writes_nothing_when_it_continues(make, backend):
    config, settings = make(
        "ws",
        backend,
        recovery={"detect_crash_after_minutes": 0.05},  # a 3 s crash window
        model_management={"delete_non_best_models": False},  # every run writes a file
    )
    queue_id = new_queue(settings, FAST_GRID)
    first = start_child(config, settings.workspace, queue_id, fault="stop:result_ready")
    with children(first):
        # Frozen with a fitted model in hand, about to record it.
        wait_for(lambda: is_stopped(first.pid))
        (crashed,) = wait_for(lambda: recover(settings), timeout=60)
        assert crashed.queue.status == "crashed"
        assert "no heartbeat since" in crashed.queue.error
        # Another runner (this process) resumes the queue and finishes it.
        assert run_queue(queue_id, settings).status == "completed"
        files_after = file_states(settings.artifacts_path)
        runs_after = runs(settings, queue_id)
        os.kill(first.pid, signal.SIGCONT)
        _, err = first.communicate(timeout=120)
    assert first.returncode == 1
    (line,) = err.strip().splitlines()
    assert line.startswith(f"error: queue {queue_id}: this runner (")
    assert "no longer owns it (it is completed;" in line
    assert line.endswith("stopping without writing anything more")
    assert file_states(settings.artifacts_path) == files_after  # not one file rewritten
    assert runs(settings, queue_id) == runs_after
    assert queue(settings, queue_id).status == "completed"
    assert_consistent(settings, queue_id)
    _no_duplicate_results(settings, queue_id)


# ------------------------------------------------------------------------ reconciliation


def _forexgrid(config, workspace, *args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREXGRID_")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "forexgrid",
            "--workspace",
            str(workspace),
            "--config",
            str(config),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.slow
@pytest.mark.parametrize("backend", BACKENDS)
def test_reconciliation_never_touches_the_files_of_a_live_runner(make, backend):
    config, settings = make(
        "ws",
        backend,
        queue={"max_parallel_queues": 2},
        model_management={"delete_non_best_models": False},
    )
    first_queue = new_queue(settings, FAST_GRID)
    second_queue = new_queue(settings, FAST_GRID)
    # PostgreSQL: frozen after writing a model file, before its run is recorded (the
    # transaction open). SQLite holds its write lock through a transaction, so there the
    # runner freezes just after the commit, before the file gets its final name.
    point = "model_file_written" if backend == "postgresql" else "run_committed"
    first = start_child(config, settings.workspace, first_queue, fault=f"stop:{point}")
    with children(first) as procs:
        wait_for(lambda: is_stopped(first.pid))
        in_flight = sorted(p.name for p in settings.artifacts_path.glob(".model_*.pending"))
        assert len(in_flight) == 1
        final_name = in_flight[0][1 : -len(".pending")]

        def still_there() -> bool:
            return (settings.artifacts_path / in_flight[0]).exists() or (
                settings.artifacts_path / final_name
            ).exists()

        recovered = _forexgrid(config, settings.workspace, "recover")
        assert recovered.returncode == 0, recovered.stderr
        assert "No crashed queues." in recovered.stdout
        assert f"Queue {first_queue} " in recovered.stdout and "is running" in recovered.stdout
        assert still_there()
        # A second queue starting reconciles too.
        second = start_child(config, settings.workspace, second_queue)
        procs += (second,)
        wait_for(lambda: any(r.status != "pending" for r in runs(settings, second_queue)))
        assert still_there()
        os.kill(first.pid, signal.SIGCONT)
        outputs = [proc.communicate(timeout=300) for proc in (first, second)]
    for proc, (out, err) in zip((first, second), outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "completed"
    assert_consistent(settings, first_queue, second_queue)
    assert not list(settings.artifacts_path.glob(".*"))


# ------------------------------------------------------------------ concurrent queues


REPLAY_A = dict(
    model_types=["ridge"],
    symbols=["EURUSD"],
    timeframes=["1h"],
    days_history=[30, 45, 60, 75],
    horizons=[1, 2, 3, 6, 12],
    encoders=["time_delta", "normalized"],
)
REPLAY_B = {**REPLAY_A, "model_types": ["lasso"]}


def _replay(settings, order):
    """Apply the runs of ``order`` (queue, queue_index) in that order, one at a time, as the
    runner does (the same functions), in a fresh database."""
    from threadpoolctl import threadpool_limits

    from forexgrid import runner
    from forexgrid.data.store import DataStore
    from forexgrid.pipeline import train_and_evaluate
    from forexgrid.storage.artifacts import ModelFileManager

    claims = {}
    with storage.session_scope(settings) as session:
        for queue_id in sorted({q for q, _ in order}):
            info = storage.queues.claim_queue(session, queue_id, f"replay:{queue_id}", 2)
            claims[queue_id] = runner._Claim(queue_id, info.claim_token, f"replay:{queue_id}")
        pending = {
            (q, r.queue_index): r for q in claims for r in storage.runs.pending_runs(session, q)
        }
        active = tuple(storage.regimes_repo.active_regimes(session))
    bars = DataStore(settings.data_path).load_bars("EURUSD", "1h")
    files = ModelFileManager.from_settings(settings)
    for key in order:
        run, claim = pending[key], claims[key[0]]
        with claim.session(settings) as session:
            storage.runs.start_run(session, run.id)
        with threadpool_limits(limits=1):
            result = train_and_evaluate(run.config, bars, settings, active)
        tally = runner._Tally(claim.queue_id, len(order), 0)
        runner._apply(settings, claim, run, result, files, tally, lambda event: None)
    with storage.session_scope(settings) as session:
        for queue_id, claim in claims.items():
            storage.queue_control.finish_queue(session, queue_id, token=claim.token)


def _decisions(settings, queue_ids):
    """The lists and kept flags, with runs named by (queue position, queue index)."""
    with storage.session_scope(settings) as session:
        all_runs = {
            r.id: (position, r.queue_index)
            for position, q in enumerate(queue_ids)
            for r in storage.runs.queue_runs(session, q)
        }
        kept = {
            all_runs[r.id]: r.is_model_kept
            for q in queue_ids
            for r in storage.runs.queue_runs(session, q)
        }
        lists = {}
        for _, window in storage.bests.best_windows(session):
            for key, entries in storage.bests.load_bests(session, window=window).items():
                # In rank order.
                lists[(key, window)] = [
                    (all_runs[e.run_id], e.signal, e.threshold, e.lookback, e.score, e.dsr)
                    for e in entries
                ]
    return lists, kept


@pytest.mark.slow
@pytest.mark.skipif(not PG_URL, reason="needs FOREXGRID_TEST_DATABASE_URL (a PostgreSQL server)")
def test_two_queues_at_once_on_postgresql_decide_as_a_serial_replay(make):
    config, settings = make("live", "postgresql", queue={"max_parallel_queues": 2})
    queues = [new_queue(settings, REPLAY_A), new_queue(settings, REPLAY_B)]
    with children(*(start_child(config, settings.workspace, q) for q in queues)) as procs:
        outputs = [proc.communicate(timeout=900) for proc in procs]
    for proc, (out, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert out.strip() == "completed"
    assert_consistent(settings, *queues)  # every kept flag matches a list entry
    # The order in which the two runners recorded their runs (one at a time, per symbol).
    by_id = {q: position for position, q in enumerate(queues)}
    done = sorted(
        (r for q in queues for r in runs(settings, q)), key=lambda r: (r.completed_at, r.id)
    )
    interleaved = [by_id[r.queue_id] for r in done]
    switches = sum(a != b for a, b in zip(interleaved, interleaved[1:], strict=False))
    assert switches >= 10  # the two queues truly ran at once
    _, replay = make("replay", "postgresql", queue={"max_parallel_queues": 2})
    replayed = [new_queue(replay, REPLAY_A), new_queue(replay, REPLAY_B)]
    _replay(replay, [(replayed[by_id[r.queue_id]], r.queue_index) for r in done])
    assert _decisions(settings, queues) == _decisions(replay, replayed)


# -------------------------------------------------------------------------- exits


def test_an_error_pauses_the_queue_with_the_error_and_it_resumes_at_once(make):
    config, settings = make("ws", storage={"artifacts_dir": "blocked/models"})
    (settings.workspace / "blocked").write_text("a file where the model folder should be")
    queue_id = new_queue(settings, FAST_GRID)
    with pytest.raises(StorageError, match="cannot be written"):
        run_queue(queue_id, settings)
    stopped = queue(settings, queue_id)
    assert stopped.status == "paused"
    assert stopped.error.startswith("stopped by an error: StorageError: model file ")
    assert "running" not in {r.status for r in runs(settings, queue_id)}
    (settings.workspace / "blocked").unlink()
    assert run_queue(queue_id, settings).status == "completed"
    assert_consistent(settings, queue_id)


@pytest.mark.parametrize(
    ("raised", "reason"),
    [
        (KeyboardInterrupt(), "interrupted (KeyboardInterrupt)"),
        (RuntimeError("a bug"), "stopped by an error: RuntimeError: a bug"),
    ],
    ids=["interrupt", "bug"],
)
def test_an_interrupt_or_a_bug_pauses_the_queue(make, raised, reason):
    _, settings = make("ws")
    queue_id = new_queue(settings, FAST_GRID)

    def progress(event):
        if event.kind in ("kept", "deleted"):
            raise raised

    with pytest.raises(type(raised)):
        run_queue(queue_id, settings, progress=progress)
    stopped = queue(settings, queue_id)
    assert (stopped.status, stopped.error) == ("paused", reason)
    assert stopped.completed_count == 1
    assert run_queue(queue_id, settings).status == "completed"
    assert_consistent(settings, queue_id)


# ------------------------------------------------------------------ crash detection


@pytest.mark.slow
def test_a_runner_gone_from_this_machine_is_a_crash_at_once(make, caplog):
    config, settings = make("ws")  # the default crash window: 5 minutes
    queue_id = new_queue(settings, SLOW_GRID)
    child = start_child(config, settings.workspace, queue_id)
    with children(child):
        wait_for(lambda: any(r.status == "running" for r in runs(settings, queue_id)))
        # Frozen, it is alive: only its heartbeat could tell, after 5 minutes.
        os.kill(child.pid, signal.SIGSTOP)
        wait_for(lambda: is_stopped(child.pid))
        assert recover(settings) == []
        with pytest.raises(StorageError, match=f"queue {queue_id} is already running"):
            run_queue(queue_id, settings)
        child.kill()
        child.communicate()
    with caplog.at_level("WARNING"):
        (crashed,) = recover(settings)
    assert crashed.queue.status == "crashed"
    assert crashed.queue.error.startswith(
        f"its runner process is gone (host {crashed.queue.runner_host}, pid {child.pid}"
    )
    # Logged once, with that reason (not also as a stale heartbeat).
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warnings == [f"queue {queue_id} marked crashed: {crashed.queue.error}"]
    assert run_queue(queue_id, settings).status == "completed"
    assert_consistent(settings, queue_id)


def test_resume_goes_straight_on_when_the_runner_is_gone(make):
    """``resume`` (run_queue) detects a dead runner on this machine itself."""
    config, settings = make("ws")
    queue_id = new_queue(settings, FAST_GRID)
    child = start_child(config, settings.workspace, queue_id, fault="run_committed")
    child.communicate(timeout=300)
    assert child.returncode == -signal.SIGKILL
    assert queue(settings, queue_id).status == "running"
    assert run_queue(queue_id, settings).status == "completed"
    assert_consistent(settings, queue_id)


# ------------------------------------------------------------------- queue settings


def test_a_queue_resumes_with_the_settings_it_was_created_with(make, caplog):
    config, settings = make("ws")
    reference = new_queue(settings, FAST_GRID)
    run_queue(reference, settings)
    resumed = new_queue(settings, FAST_GRID)
    # The configuration file edited since (another evaluation window, another seed).
    data = yaml.safe_load(config.read_text())
    data["evaluation"] = {"validation_days": 20, "test_days": 20}
    data["execution"] = {"seed": 7}
    config.write_text(yaml.safe_dump(data))
    from forexgrid import load_config

    edited = load_config(config, workspace=settings.workspace)
    with caplog.at_level("WARNING", logger="forexgrid.runner"):
        run_queue(resumed, edited)
    assert (
        f"queue {resumed} runs with the settings it was created with; the current "
        "configuration differs in: evaluation, execution" in caplog.text
    )
    with storage.session_scope(settings) as session:
        for a, b in zip(
            storage.runs.queue_runs(session, reference),
            storage.runs.queue_runs(session, resumed),
            strict=True,
        ):
            left = storage.runs.run_results(session, a.id).drop(
                columns=["run_id"], errors="ignore"
            )
            right = storage.runs.run_results(session, b.id).drop(
                columns=["run_id"], errors="ignore"
            )
            assert left.equals(right), a.queue_index
