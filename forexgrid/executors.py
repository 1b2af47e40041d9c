"""Where the runner's configurations are computed: in process, in a process pool, or on Dask.

:func:`executor` is a context manager yielding a :class:`concurrent.futures.Executor` for
``settings.execution``; the runner submits :func:`evaluate` to it. Workers only compute and
return a RunResult; the coordinating process alone writes files and the database.

Worker lifetime (docs/runner.md "Worker processes"): pool workers die with the coordinator,
even when it is killed (:mod:`forexgrid._lifeline`); when the ``with`` block ends normally
the pool is shut down and joined, and when it ends with an exception (KeyboardInterrupt
included) the configurations not started are cancelled and the workers are terminated at
once instead of finishing the fits in flight.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from forexgrid import _lifeline
from forexgrid.exceptions import ConfigError
from forexgrid.pipeline import RunResult, train_and_evaluate

if TYPE_CHECKING:
    import pandas as pd

    from forexgrid.config import Settings
    from forexgrid.core import regimes
    from forexgrid.grid import TrainingConfig

__all__ = ["InlineExecutor", "evaluate", "executor"]

logger = logging.getLogger(__name__)

# What the forkserver imports once, so that each worker forked from it starts ready: the
# pipeline and everything a configuration imports while it runs, and the model libraries.
# A module that is not installed is skipped. This module, not the runner: a worker runs
# ``evaluate`` and never the database code, whose imports (SQLAlchemy, Alembic, the storage
# and scoring modules: some 330 modules, about 1 s) the first pool used to wait for.
FORKSERVER_PRELOAD = (
    "forexgrid.executors",
    "threadpoolctl",
    "sklearn.pipeline",
    "sklearn.preprocessing",
    "sklearn.linear_model",
    "sklearn.ensemble",
    "xgboost",
    "lightgbm",
)

# Seconds a terminated worker gets before it is killed (error exits only).
_TERMINATE_GRACE = 2.0


def evaluate(
    config: TrainingConfig,
    bars: pd.DataFrame,
    settings: Settings,
    regime_definitions: tuple[regimes.Regime, ...],
) -> RunResult:
    """Phase 1 + phase 2 of one configuration, in whatever process the backend chose.

    BLAS runs on one thread, as the models do (``n_jobs=1``): parallelism belongs to the
    grid, and a fixed thread count keeps results bit-identical between a serial and a
    parallel run (multithreaded BLAS sums in a different order).
    """
    with _thread_pools().limit(limits=1):
        return train_and_evaluate(config, bars, settings, regime_definitions)


_controller: tuple[Any, int] | None = None


def _thread_pools() -> Any:
    """threadpoolctl's view of this process's BLAS and OpenMP pools, kept while no module
    was imported since (a library that brings a pool comes with an import): scanning the
    loaded libraries, as each ``threadpool_limits`` call does, took 2 to 6 ms a
    configuration."""
    global _controller
    if _controller is None or _controller[1] != len(sys.modules):
        from threadpoolctl import ThreadpoolController

        _controller = (ThreadpoolController(), len(sys.modules))
    return _controller[0]


class InlineExecutor(concurrent.futures.Executor):
    """Runs each task in this process when its result is asked for (one worker, no pool).

    With one worker a process pool only adds start-up and pickling; evaluating lazily at
    ``result()`` keeps the runner's loop the same for every backend.
    """

    class _Lazy(concurrent.futures.Future):
        def __init__(self, fn: Callable, args: tuple) -> None:
            super().__init__()
            self._call = (fn, args)

        def result(self, timeout: float | None = None) -> Any:
            if self._call is not None:
                fn, args = self._call
                self._call = None
                try:
                    self.set_result(fn(*args))
                except BaseException as err:  # noqa: BLE001 - handed to the caller as is
                    self.set_exception(err)
            return super().result(timeout)

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        return self._Lazy(fn, args)


class _WarmingPool(concurrent.futures.Executor):
    """A process pool whose first tasks run in this process while its workers start.

    A fresh forkserver imports the model stack (:data:`FORKSERVER_PRELOAD`, 1.8 s and more)
    before it forks a worker, and ``ProcessPoolExecutor.submit`` blocks until the workers
    are forked: the coordinator, which imported that stack already, would wait with nothing
    to do. Here the pool starts in a thread; a task submitted before it is up is deferred.
    The first deferred task whose result is asked for is computed in this process, at
    ``result()`` like :class:`InlineExecutor`; those not asked for yet go to the pool once it
    is up. Each task runs exactly once, and ``result()`` is still asked in submission order,
    so the runner applies results as with any executor.
    """

    class _Deferred(concurrent.futures.Future):
        def __init__(self, owner: _WarmingPool, fn: Callable, args: tuple) -> None:
            super().__init__()
            self._owner, self.call = owner, (fn, args)

        def result(self, timeout: float | None = None) -> Any:
            if self._owner._claim(self):
                fn, args = self.call
                try:
                    self.set_result(fn(*args))
                except BaseException as err:  # noqa: BLE001 - handed to the caller as is
                    self.set_exception(err)
            return super().result(timeout)

        def forward(self, pool: concurrent.futures.Executor) -> None:
            fn, args = self.call
            pool.submit(fn, *args).add_done_callback(self._copy)

        def _copy(self, done: concurrent.futures.Future) -> None:
            if done.cancelled():
                self.cancel()
            elif done.exception() is not None:
                self.set_exception(done.exception())
            else:
                self.set_result(done.result())

    def __init__(self, start: Callable[[], concurrent.futures.ProcessPoolExecutor]) -> None:
        self._lock = threading.Lock()
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._error: BaseException | None = None
        self._waiting: list[_WarmingPool._Deferred] = []
        self._thread = threading.Thread(
            target=self._start, args=(start,), name="forexgrid-pool-start", daemon=True
        )
        self._thread.start()

    def _start(self, start: Callable[[], concurrent.futures.ProcessPoolExecutor]) -> None:
        pool = None
        try:
            pool = start()
            pool.submit(os.getpid).result()  # the first submit forks every worker
        except BaseException as err:  # noqa: BLE001 - the deferred tasks report it
            with self._lock:
                self._pool, self._error = pool, err
                waiting, self._waiting = self._waiting, []
            for task in waiting:
                task.set_exception(err)
            return
        with self._lock:
            self._pool = pool
            waiting, self._waiting = self._waiting, []
        for task in waiting:
            task.forward(pool)

    def _claim(self, task: _Deferred) -> bool:
        """Whether ``task`` is this caller's to compute (deferred and not yet forwarded)."""
        with self._lock:
            if task in self._waiting:
                self._waiting.remove(task)
                return True
            return False

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        with self._lock:
            pool, error = self._pool, self._error
            if pool is None and error is None:
                task = self._Deferred(self, fn, args)
                self._waiting.append(task)
                return task
        if error is not None:
            raise error
        return pool.submit(fn, *args)

    def started(self) -> concurrent.futures.ProcessPoolExecutor | None:
        """The pool, once its start has finished (None if it failed before creating it)."""
        self._thread.join()
        return self._pool

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pool = self.started()
        if pool is not None:
            pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _forkserver_running() -> bool:
    """Whether this process's forkserver was started already (its imports done or under way).

    Reads multiprocessing's private state (the same in 3.8 to 3.14); when it is not there,
    answers True: the pool then starts as before, only without the warm start.
    """
    import multiprocessing.forkserver

    server = getattr(multiprocessing.forkserver, "_forkserver", None)
    return getattr(server, "_forkserver_pid", 0) is not None


def _start_forkserver_deaf_to_ctrl_c() -> None:
    """Start this process's forkserver (if it is not running) with SIGINT ignored.

    The terminal sends Ctrl-C to the whole process group. The forkserver ignores SIGINT only
    once its imports (:data:`FORKSERVER_PRELOAD`, seconds) are done; a Ctrl-C meanwhile
    killed it, and every configuration then failed with ``EOFError`` instead of the queue
    pausing. A process started with SIGINT ignored keeps it ignored (Python installs its
    KeyboardInterrupt handler only over the default disposition), and so do the workers it
    forks. Signal dispositions can only be changed from the main thread: elsewhere the server
    starts with the pool, as before.
    """
    if threading.current_thread() is not threading.main_thread():
        return
    import multiprocessing.forkserver

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        multiprocessing.forkserver.ensure_running()
    finally:
        signal.signal(signal.SIGINT, previous)


def _init_worker(coordinator_pid: int) -> None:
    """A pool worker's start: die with the coordinator, and ignore Ctrl-C (the terminal sends
    it to the whole process group, and the coordinator alone decides what it means: pause
    after the configurations in flight)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _lifeline.die_with(coordinator_pid)


def _default_start_method() -> str:
    # forkserver, measured against spawn and fork (benchmarks/bench_grid.py,
    # docs/performance.md "Grid runner"):
    # - fork copies this process with the locks its other threads hold at that instant
    #   (heartbeat, a notebook kernel's and the widgets' threads): a worker that needs one
    #   waits forever. With a thread logging in the coordinator, every forked run hung (a
    #   worker stuck in StreamHandler.flush); Python 3.12+ warns about fork in a threaded
    #   process.
    # - spawn starts every worker of every run as a new interpreter that imports pandas,
    #   scikit-learn, xgboost and lightgbm: about 2 s a run.
    # - forkserver forks workers from a single-threaded server that imported those modules
    #   once (FORKSERVER_PRELOAD). The server lives as long as this process: its first pool
    #   waits for the imports (the coordinator computes meanwhile: _WarmingPool), later pools
    #   (the next queue in a notebook, tests) start at once.
    # No forkserver on Windows: spawn there.
    available = multiprocessing.get_all_start_methods()
    return "forkserver" if "forkserver" in available else "spawn"


def _stop_now(pool: concurrent.futures.ProcessPoolExecutor) -> None:
    """Cancel the tasks not started and terminate the workers, without waiting for the fits
    in flight.

    Python 3.14 has ``ProcessPoolExecutor.terminate_workers``; 3.11 has not, hence the private
    ``_processes`` (read before ``shutdown`` drops it). The pool's manager thread alone joins
    the workers: it sees them gone, fails their futures and closes the pool's queues.
    """
    processes = list((pool._processes or {}).values())
    manager = pool._executor_manager_thread
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.terminate()
    if manager is None:
        return
    manager.join(_TERMINATE_GRACE)
    if manager.is_alive():  # a worker that outlived SIGTERM
        for process in processes:
            process.kill()
        manager.join(_TERMINATE_GRACE)
        if manager.is_alive():
            logger.warning("the process pool's manager thread did not stop")


@contextlib.contextmanager
def executor(
    settings: Settings, *, start_method: str | None = None
) -> Iterator[concurrent.futures.Executor]:
    """The executor of ``settings.execution``.

    Parameters
    ----------
    settings
        ``execution.backend``, ``execution.workers`` and ``execution.scheduler_address``
        are read.
    start_method
        The process pool's start method; None picks forkserver (spawn where there is none).
        Tests and benchmarks/bench_grid.py override it.

    Yields
    ------
    concurrent.futures.Executor
        :class:`InlineExecutor` for one local worker, a ``ProcessPoolExecutor`` for more, the
        Dask client's executor for ``dask``, a :class:`forexgrid.batch.NotebookExecutor` for
        ``papermill``.

    Raises
    ------
    ConfigError
        An unknown backend, the distributed extra missing, no Dask scheduler at the
        address, or a papermill template that is missing or not a notebook.
    """
    execution = settings.execution
    if execution.backend == "local":
        if execution.workers == 1:
            yield InlineExecutor()
            return
        method = start_method or _default_start_method()
        context = multiprocessing.get_context(method)

        def start() -> concurrent.futures.ProcessPoolExecutor:
            return concurrent.futures.ProcessPoolExecutor(
                execution.workers,
                mp_context=context,
                initializer=_init_worker,
                initargs=(os.getpid(),),
            )

        fresh_server = False
        if method == "forkserver":
            context.set_forkserver_preload(list(FORKSERVER_PRELOAD))
            fresh_server = not _forkserver_running()
            _start_forkserver_deaf_to_ctrl_c()
        # The warm start only under forkserver: a worker's parent is then the server, so the
        # thread that starts the pool may end (spawn's parent-death signal is tied to it).
        pool: concurrent.futures.Executor = _WarmingPool(start) if fresh_server else start()
        try:
            yield pool
        except BaseException:
            started = pool.started() if isinstance(pool, _WarmingPool) else pool
            if started is not None:
                _stop_now(started)
            raise
        pool.shutdown(wait=True)
    elif execution.backend == "dask":
        try:
            from distributed import Client
        except ImportError as err:
            raise ConfigError(
                "execution.backend: 'dask' needs the distributed extra: "
                "pip install 'forexgrid[distributed]'"
            ) from err
        try:
            client = Client(execution.scheduler_address, timeout=30, set_as_default=False)
        except OSError as err:
            raise ConfigError(
                f"execution.scheduler_address: cannot reach the Dask scheduler at "
                f"{execution.scheduler_address!r}: {err}"
            ) from err
        try:
            yield client.get_executor(pure=False)
        finally:
            client.close()
    elif execution.backend == "papermill":
        # One notebook per configuration (forexgrid/batch.py); the runner calls submit_run.
        from forexgrid.batch import NotebookExecutor

        notebooks = NotebookExecutor(settings)
        try:
            yield notebooks
        except BaseException:
            notebooks.shutdown(wait=False, cancel_futures=True)
            raise
        notebooks.shutdown(wait=True)
    else:
        raise ConfigError(
            f"execution.backend: the queue runner runs 'local', 'dask' and 'papermill', got "
            f"{execution.backend!r}"
        )
