"""Process-pool workers never outlive the runner that started them.

Real processes throughout: a runner in a child process (or in this one) with a pool of two
workers, its process tree read from /proc. Whatever way the coordinator ends (SIGKILL, the
CLI's second Ctrl-C, an exception, KeyboardInterrupt, a normal return), no worker is left
running a few seconds later; when the coordinator process itself is gone, neither are the
forkserver and multiprocessing's resource tracker.
"""

from __future__ import annotations

import concurrent.futures
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from runner_support import SLOW_GRID, make_workspace, new_queue, runs, wait_for

from forexgrid.executors import InlineExecutor, _WarmingPool, executor
from forexgrid.runner import run_queue

pytestmark = pytest.mark.skipif(
    not Path("/proc/self/stat").exists(), reason="reads the process tree from /proc"
)

# A configuration whose fit takes tens of seconds: an error exit that waited for it would
# be seen.
LONG_GRID = dict(
    model_types=["random_forest"],
    symbols=["EURUSD"],
    timeframes=["1h"],
    days_history=[60, 90],
    horizons=[1, 3],
    hyperparameters={"random_forest": {"n_estimators": [4000]}},
)

# About three seconds a fit: the workers are still busy after the first run completes.
KILL_GRID = {**SLOW_GRID, "hyperparameters": {"random_forest": {"n_estimators": [300]}}}

# Runs a queue with the pool's start method given on the command line.
CHILD = textwrap.dedent(
    """
    import functools, sys
    from forexgrid import executors, load_config, runner

    runner._executor = functools.partial(executors.executor, start_method=sys.argv[4])
    settings = load_config(sys.argv[1], workspace=sys.argv[2])
    print(runner.run_queue(int(sys.argv[3]), settings).status)
    """
)


# ----------------------------------------------------------------------------- /proc


def _stat(pid: int) -> tuple[str, int, float] | None:
    """(state, parent pid, CPU seconds) of a process; None once it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (command)", which may hold spaces
    ticks = os.sysconf("SC_CLK_TCK")
    return fields[0], int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks


def _alive(pid: int) -> bool:
    stat = _stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")  # a zombie has ended


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (children, their children, ...)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None and stat[0] not in ("Z", "X"):
                parents[int(entry.name)] = stat[1]
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier}
        found |= frontier
    return found


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def workers(pid: int) -> set[int]:
    """The pool workers below ``pid``: its descendants but the forkserver and the tracker."""
    return {
        p
        for p in descendants(pid)
        if "resource_tracker" not in _command(p)
        and not ("forkserver import main" in _command(p) and (_stat(p) or ("", 0))[1] == pid)
    }


def busy_workers(pid: int, cpu: float = 0.3, ignore: frozenset[int] = frozenset()) -> set[int]:
    """Two workers below ``pid`` (not in ``ignore``) once both have used ``cpu`` seconds."""
    found = {p for p in workers(pid) - ignore if (_stat(p) or ("", 0, 0.0))[2] >= cpu}
    return found if len(found) >= 2 else set()


def assert_all_gone(pids: set[int], within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and any(_alive(p) for p in pids):
        time.sleep(0.05)
    left = {p: _command(p) for p in pids if _alive(p)}
    assert not left, f"still running {within} s later: {left}"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return make_workspace(tmp_path / "ws", execution={"workers": 2})


def _start(config: Path, workspace: Path, queue_id: int, start_method: str):
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREXGRID_")}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(config), str(workspace), str(queue_id), start_method],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_tree(pids: set[int]) -> None:
    """Clean-up after a failed assertion: nothing of a test outlives it."""
    for pid in pids:
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)


# ----------------------------------------------------------------------------- coordinator killed


@pytest.mark.parametrize("start_method", ["forkserver", "spawn"])
def test_workers_forkserver_and_tracker_die_with_a_killed_coordinator(workspace, start_method):
    config, settings = workspace
    queue_id = new_queue(settings, KILL_GRID)
    child = _start(config, settings.workspace, queue_id, start_method)
    tree: set[int] = set()
    try:
        wait_for(lambda: any(r.status == "completed" for r in runs(settings, queue_id)), 90)
        # In a new process the first configuration may be fitted by the coordinator itself
        # while the pool starts (_WarmingPool): the workers take the next ones.
        busy = wait_for(lambda: busy_workers(child.pid), 30)
        tree = descendants(child.pid)
        # The workers, the resource tracker, and under forkserver the server.
        assert len(tree) == len(busy) + (2 if start_method == "forkserver" else 1), {
            p: _command(p) for p in tree
        }
        child.kill()
        # Not communicate(): a surviving worker would hold the child's output pipes open.
        assert child.wait(timeout=30) == -signal.SIGKILL
        assert_all_gone(tree)
    finally:
        child.kill()
        _kill_tree(tree)


def test_a_second_ctrl_c_in_the_cli_leaves_no_worker(workspace):
    """The CLI's second Ctrl-C exits with ``os._exit``: no clean-up runs in the coordinator."""
    config, settings = workspace
    queue_id = new_queue(settings, KILL_GRID)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOREXGRID_")}
    command = [sys.executable, "-m", "forexgrid", "--config", str(config)]
    command += ["--workspace", str(settings.workspace), "resume", str(queue_id)]
    child = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    tree: set[int] = set()
    try:
        wait_for(lambda: any(r.status == "completed" for r in runs(settings, queue_id)), 90)
        wait_for(lambda: busy_workers(child.pid), 30)
        tree = descendants(child.pid)
        child.send_signal(signal.SIGINT)  # pause after the configurations in flight
        time.sleep(0.2)
        child.send_signal(signal.SIGINT)  # exit at once
        assert child.wait(timeout=30) == 130
        assert_all_gone(tree)
        assert "Exiting at once" in child.communicate(timeout=30)[1]
    finally:
        child.kill()
        _kill_tree(tree)


def test_nothing_is_left_after_a_coordinator_process_exits_normally(workspace):
    config, settings = workspace
    # Fits long enough for the workers to take some while the coordinator, in a new process,
    # fits the first ones itself as the pool starts (_WarmingPool).
    queue_id = new_queue(settings, KILL_GRID)
    child = _start(config, settings.workspace, queue_id, "forkserver")
    seen: set[int] = set()
    try:
        while child.poll() is None:
            seen |= descendants(child.pid)
            time.sleep(0.05)
        out, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert out.strip() == "completed"
        assert len(seen) >= 4  # two workers, the forkserver, the resource tracker
        assert_all_gone(seen)
    finally:
        child.kill()
        _kill_tree(seen)


# ----------------------------------------------------------------------------- in this process


def test_the_pool_is_joined_when_the_queue_ends(workspace):
    _, settings = workspace
    queue_id = new_queue(settings, KILL_GRID)  # the workers get some, warm start or not
    before = workers(os.getpid())  # nothing, unless an earlier test leaked
    seen: set[int] = set()

    def watch(event):
        seen.update(workers(os.getpid()) - before)

    final = run_queue(queue_id, settings, progress=watch)
    assert final.status == "completed"
    assert len(seen) == 2
    assert not {p for p in seen if _alive(p)}  # joined before run_queue returned


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_an_error_in_the_coordinator_stops_the_workers_without_waiting_for_their_fits(
    workspace, error
):
    _, settings = workspace
    queue_id = new_queue(settings, LONG_GRID)
    before = frozenset(workers(os.getpid()))
    busy: set[int] = set()
    raised_at: list[float] = []

    def fail_once_both_fit(event):
        if event.kind == "training" and event.index == 3:  # two submitted, the pool started
            fitting = lambda: busy_workers(os.getpid(), cpu=1.0, ignore=before)  # noqa: E731
            busy.update(wait_for(fitting, timeout=120))
            raised_at.append(time.monotonic())
            raise error("the coordinator fails")

    try:
        with pytest.raises(error, match="the coordinator fails"):
            run_queue(queue_id, settings, progress=fail_once_both_fit)
        took = time.monotonic() - raised_at[0]
        # The fits in flight have tens of seconds to go.
        assert took < 5.0, f"run_queue took {took:.1f} s to give up"
        assert_all_gone(busy, within=1.0)
    finally:
        _kill_tree(busy)


def test_one_worker_runs_inline_without_a_pool(tmp_path):
    _, settings = make_workspace(tmp_path / "one")  # execution.workers: 1
    before = descendants(os.getpid())
    with executor(settings) as pool:
        assert isinstance(pool, InlineExecutor)
        assert pool.submit(pow, 2, 10).result() == 1024
        assert descendants(os.getpid()) == before  # no process started


# ----------------------------------------------------------------------------- warm start


def _gated_pool(gate: threading.Event, fail: BaseException | None = None):
    """A pool factory that returns (a thread pool) only once ``gate`` is set."""

    def start():
        gate.wait(10)
        if fail is not None:
            raise fail
        return concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="pool")

    return start


def _where(i: int) -> tuple[int, str]:
    return i, threading.current_thread().name


def test_a_starting_pool_computes_what_is_asked_here_and_forwards_the_rest():
    gate = threading.Event()
    pool = _WarmingPool(_gated_pool(gate))
    try:
        futures = [pool.submit(_where, i) for i in range(3)]  # before the pool is up
        here = threading.current_thread().name
        assert futures[0].result() == (0, here)  # asked for while the pool starts
        gate.set()
        assert pool.started() is not None
        later = pool.submit(_where, 3)
        results = [f.result() for f in [*futures[1:], later]]
    finally:
        gate.set()
        pool.shutdown()
    assert [i for i, _ in results] == [1, 2, 3]  # each task once, in order
    assert all(name.startswith("pool") for _, name in results)


def test_a_pool_that_fails_to_start_fails_the_tasks_not_computed_here():
    gate = threading.Event()
    pool = _WarmingPool(_gated_pool(gate, fail=OSError("no forkserver")))
    first, second = pool.submit(_where, 0), pool.submit(_where, 1)
    assert first.result()[0] == 0  # computed here before the failure
    gate.set()
    assert pool.started() is None
    with pytest.raises(OSError, match="no forkserver"):
        second.result()
    with pytest.raises(OSError, match="no forkserver"):
        pool.submit(_where, 2)
    pool.shutdown()


def test_a_fresh_forkserver_pool_starts_warm(tmp_path):
    """In a new process (no forkserver yet) the first pool starts warm, the next one not
    (the tests that run queues in child processes go through the warm start)."""
    config, _ = make_workspace(tmp_path / "fresh", execution={"workers": 2})
    code = textwrap.dedent(
        """
        import sys
        from forexgrid import executors, load_config, runner

        settings = load_config(sys.argv[1], workspace=sys.argv[2])
        with executors.executor(settings) as pool:
            print(type(pool).__name__)
        with executors.executor(settings) as pool:
            print(type(pool).__name__)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(config), str(config.parent)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.split() == ["_WarmingPool", "ProcessPoolExecutor"]


def test_ctrl_c_while_a_fresh_forkserver_imports_does_not_break_the_pool(tmp_path):
    """The terminal's Ctrl-C reaches the whole process group, the forkserver too, while it
    still imports the model stack (it used to die of it, and every configuration then failed
    with ``EOFError`` instead of the queue pausing)."""
    config, _ = make_workspace(tmp_path / "fresh", execution={"workers": 2})
    code = textwrap.dedent(
        """
        import os, signal, sys, time
        from forexgrid import executors, load_config

        signal.signal(signal.SIGINT, lambda signum, frame: print("handled"))  # as the CLI
        settings = load_config(sys.argv[1], workspace=sys.argv[2])
        with executors.executor(settings) as pool:
            while not executors._forkserver_running():  # started, importing for seconds
                time.sleep(0.001)
            os.killpg(0, signal.SIGINT)
            task = pool.submit(os.getpid)  # deferred: the pool is still starting
            pool.started()
            print(task.result() != os.getpid())  # computed by a worker
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(config), str(config.parent)],
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,  # its own process group, which the Ctrl-C goes to
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["handled", "True"]
