"""Fault points: named instants at which tests kill the process to prove crash safety.

``fault_point("model_file_written")`` does nothing unless the environment variable
``FOREXGRID_FAULT`` names that point, in which case the process kills itself with SIGKILL at
once, the way a power cut or the OOM killer would: no ``finally`` block, no atexit handler,
no flush. The fault-injection tests set the variable in a child runner process and then
check that recovery and resume leave every configuration completed exactly once.
"""

from __future__ import annotations

import os
import signal

__all__ = ["FAULT_ENV", "fault_point"]

FAULT_ENV = "FOREXGRID_FAULT"


def fault_point(name: str) -> None:
    """Kill this process with SIGKILL if ``$FOREXGRID_FAULT`` equals ``name``."""
    if os.environ.get(FAULT_ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
