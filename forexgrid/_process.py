"""Who runs a queue, precisely enough to tell from the same machine whether it still runs.

A queue's heartbeat tells a live runner from a dead one only after the crash window
(``recovery.detect_crash_after_minutes``): a runner stopped with SIGSTOP or hung in a long
fit looks exactly like a dead one until then. On the runner's own machine there is a faster
and surer test: is its process still there? A process id alone is not enough (ids are
reused), so the runner also records its process start time, and the machine is identified
by host name, kernel boot id and PID namespace (containers on one kernel share the boot id
but not the PID namespace; a PID means nothing outside its namespace).

On Linux all of this comes from ``/proc``. Elsewhere the identity has no start time and
:func:`runner_state` answers ``"unknown"``: the heartbeat timeout alone decides.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

__all__ = ["RunnerIdentity", "runner_state", "this_process"]

_PROC = Path("/proc")


@dataclass(frozen=True)
class RunnerIdentity:
    """The process that runs a queue.

    Attributes
    ----------
    host : str
        The host name, for people.
    host_id : str
        ``host|boot id|pid namespace`` on Linux, the host name elsewhere: two identities
        with the same ``host_id`` see the same processes.
    pid : int
        The process id.
    start : float or None
        The process start time in clock ticks since boot (Linux), None where unknown.
    """

    host: str
    host_id: str
    pid: int
    start: float | None


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> float | None:
    """Field 22 of ``/proc/PID/stat`` (start time in clock ticks since boot), or None."""
    stat = _read(_PROC / str(pid) / "stat")
    if stat is None:
        return None
    # The command name (field 2) is in parentheses and may itself hold spaces or ')'.
    fields = stat[stat.rfind(")") + 2 :].split()
    try:
        return float(fields[19])
    except (IndexError, ValueError):
        return None


@lru_cache(maxsize=1)
def _host_id() -> str:
    host = socket.gethostname()
    boot = _read(_PROC / "sys" / "kernel" / "random" / "boot_id")
    try:
        namespace = os.readlink(_PROC / "self" / "ns" / "pid")
    except OSError:
        namespace = None
    if boot is None or namespace is None:
        return host
    return f"{host}|{boot}|{namespace}"


def this_process() -> RunnerIdentity:
    """The identity of the calling process."""
    pid = os.getpid()
    return RunnerIdentity(
        host=socket.gethostname(), host_id=_host_id(), pid=pid, start=_start_ticks(pid)
    )


def runner_state(
    host_id: str | None, pid: int | None, start: float | None
) -> Literal["alive", "gone", "unknown"]:
    """Whether the recorded runner process still exists, as seen from this process.

    ``"gone"`` only when certain: the runner ran on this machine (same ``host_id``) and no
    process with that id and start time exists now. ``"unknown"`` for another machine, a
    record without a start time, or a platform without ``/proc``.
    """
    if not host_id or pid is None or start is None:
        return "unknown"
    here = this_process()
    if here.start is None or host_id != here.host_id:
        # Another machine (or this one after a reboot: a new boot id). Machines may share
        # a host name ("localhost"), so only the heartbeat can tell.
        return "unknown"
    return "alive" if _start_ticks(pid) == start else "gone"
