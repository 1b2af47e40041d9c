"""Worker processes that die with the process they work for.

A coordinator killed by SIGKILL, the OOM killer or ``os._exit`` (the CLI's second Ctrl-C)
runs no cleanup, so it cannot stop its process-pool workers: they have to notice. Two
mechanisms, both installed by :func:`die_with` in each worker's initializer:

- **The parent-death signal** (Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)``): the kernel kills
  the worker when the thread that created it ends, whatever the worker is doing. It is set
  only where the worker's parent *is* the coordinator (the ``spawn`` start method); under
  ``forkserver`` the parent is the server process, which outlives any one pool.
- **A watch on the coordinator's sentinel**: multiprocessing gives every child a pipe whose
  other end only the process that started it holds (``multiprocessing.parent_process()``,
  under ``spawn`` and ``forkserver`` alike); it reads end-of-file once that process is gone.
  A daemon thread waits on it and kills the worker. It needs the GIL for a moment, which
  the model libraries release in their fitting loops.

With the workers gone, the forkserver and multiprocessing's resource tracker exit by
themselves: each stops when every holder of its pipe (the coordinator and the workers) has
closed it.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import multiprocessing.process
import os
import signal
import sys
import threading

__all__ = ["die_with"]

_PR_SET_PDEATHSIG = 1


def _set_parent_death_signal() -> bool:
    """Have the kernel SIGKILL this process when its parent's creating thread ends (Linux)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    except (OSError, AttributeError):  # no libc prctl (another C library)
        return False


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def _watch(parent: multiprocessing.process.BaseProcess) -> None:
    parent.join()  # returns when the parent's sentinel reads end-of-file
    _die()


def die_with(coordinator_pid: int) -> None:
    """Make this process (a pool worker) die when the coordinator ``coordinator_pid`` does.

    Call it first thing in the worker (the pool's initializer). If the coordinator is gone
    already, the worker dies at once.
    """
    if os.getppid() == coordinator_pid and _set_parent_death_signal():
        # The coordinator may have died between the fork and the prctl: then the worker
        # was reparented already and no signal will come.
        if os.getppid() != coordinator_pid:
            _die()
    parent = multiprocessing.parent_process()
    if parent is None or parent.pid != coordinator_pid:
        return  # not started by multiprocessing for this coordinator: nothing to watch
    threading.Thread(target=_watch, args=(parent,), name="forexgrid-lifeline", daemon=True).start()
