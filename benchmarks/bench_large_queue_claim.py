"""What a runner costs to start on a 100,000-run queue: time and peak memory.

Run from the project root (about 1 minute)::

    .venv/bin/python benchmarks/bench_large_queue_claim.py SRC_DIR WORKDIR

``SRC_DIR`` is the folder holding the ``forexgrid`` package to measure (``.`` for this
checkout; ``git archive REV forexgrid | tar -x -C DIR`` for an older one) and ``WORKDIR`` a
new folder for the workspace. The script creates the 100,000-configuration queue of
``bench_queue_create.py`` (``GRID_100K``), then runs it with the pause already asked for,
so the runner claims the queue, trains one configuration, computes the PBO, writes the
pause checkpoint and stops. It prints the package used, the queue's size and final status,
the process's peak resident memory after the creation and after the run (``ru_maxrss``),
and the run's seconds. The figures are in docs/performance.md ("Queue creation").
"""

from __future__ import annotations

import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, sys.argv[1])

import forexgrid  # noqa: E402
from forexgrid import load_config  # noqa: E402
from forexgrid.grid import GridSpec  # noqa: E402
from forexgrid.runner import create_queue, run_queue  # noqa: E402

GRID_100K = dict(
    model_types=["ridge", "lasso", "elasticnet", "linear_regression", "random_forest"],
    symbols=["EURUSD"],
    timeframes=["1h", "4h"],
    days_history=list(range(30, 130)),
    horizons=list(range(1, 51)),
    encoders=["time_delta", "normalized"],
)


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    root = Path(sys.argv[2])
    root.mkdir(parents=True, exist_ok=False)
    settings = load_config(None, workspace=root)
    queue = create_queue(GridSpec(**GRID_100K), settings, skip_trained=False)
    after_create = _peak_mb()
    pause = threading.Event()
    pause.set()  # pause after the first configuration
    started = time.perf_counter()
    final = run_queue(queue.id, settings, pause_event=pause)
    seconds = time.perf_counter() - started
    print(
        f"{forexgrid.__file__}: {queue.total_configs:,} runs, {final.status}; peak RSS "
        f"{after_create:.0f} MB after creating, {_peak_mb():.0f} MB after the run; "
        f"run {seconds:.1f} s"
    )


if __name__ == "__main__":
    main()
