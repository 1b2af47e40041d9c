"""Fault points: named instants at which tests kill or stop the process to prove safety.

``fault_point("model_file_written")`` does nothing unless the environment variable
``FOREXGRID_FAULT`` names that point:

- ``FOREXGRID_FAULT=model_file_written``: the process kills itself with SIGKILL at once, the
  way a power cut or the OOM killer would: no ``finally`` block, no atexit handler, no flush.
- ``FOREXGRID_FAULT=stop:model_file_written``: the process stops itself with SIGSTOP (as a
  debugger, a suspended laptop or an overloaded machine would), once; the test then acts
  while it is frozen and continues it with SIGCONT.

The fault-injection tests set the variable in a child runner process and then check that
recovery and resume leave every configuration completed exactly once, and that a runner
frozen at any point cannot damage what others did meanwhile.
"""

from __future__ import annotations

import os
import signal

__all__ = ["FAULT_ENV", "fault_point"]

FAULT_ENV = "FOREXGRID_FAULT"
_stopped: set[str] = set()


def fault_point(name: str) -> None:
    """Kill (or stop, once) this process if ``$FOREXGRID_FAULT`` names ``name``."""
    fault = os.environ.get(FAULT_ENV)
    if fault == name:
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault == f"stop:{name}" and name not in _stopped:
        _stopped.add(name)
        os.kill(os.getpid(), signal.SIGSTOP)
