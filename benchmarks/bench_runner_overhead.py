"""The queue runner's own cost per configuration, without the training: what bench_grid.py's
(d) measures, at a fraction of its noise.

Run from the project root::

    .venv/bin/python benchmarks/bench_runner_overhead.py --rounds 3

The demo grid's 16 configurations (bench_grid.py's ``DEMO_GRID``) are trained once with
``train_and_evaluate`` (their RunResults cached in ``--cache``, reused by later runs and by
another checkout's copy of this script: phase 1 and phase 2 are not what it measures). Then
``--rounds`` times, after one untimed round, each in a fresh temporary workspace (its own
SQLite database): ``create_queue`` + ``run_queue`` with 1 worker, the runner's evaluation
replaced by the cached result of the configuration. The wall time of that, divided by 16, is
the runner's overhead per configuration as bench_grid.py's (d) defines it, minus the ~0.1 ms
of ``evaluate`` outside the two phases. The process's CPU time is recorded beside it (other
jobs on a shared machine stretch it much less than the wall time), and the wall time of each
of bench_grid.py's ``OVERHEAD_PARTS``. Each round must keep the same models.

To compare two versions of the code, extract each one's package (``git archive COMMIT
forexgrid | tar -x -C /tmp/fg_COMMIT``) and run this script in turn with
``FOREXGRID_BENCH_CODE=/tmp/fg_COMMIT`` for each: the same cache, the same wrappers
(docs/performance.md, "Grid runner").
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy is imported, as bench_grid.py

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import pickle  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The code measured: this checkout's, or the folder FOREXGRID_BENCH_CODE names (another
# version's forexgrid package extracted with git archive).
CODE = Path(os.environ.get("FOREXGRID_BENCH_CODE") or ROOT).resolve()
sys.path.insert(0, str(CODE))

from forexgrid import runner, storage  # noqa: E402
from forexgrid.data.store import DataStore  # noqa: E402
from forexgrid.grid import GridSpec  # noqa: E402
from forexgrid.pipeline import train_and_evaluate  # noqa: E402

# After forexgrid: bench_grid puts this checkout on sys.path, but forexgrid is imported.
sys.path.insert(1, str(HERE))
import bench_grid  # noqa: E402

CACHE = Path(tempfile.gettempdir()) / "forexgrid_bench_runner_overhead.pkl"


def _results(cache: Path) -> dict[str, Any]:
    """The demo grid's RunResults by configuration label, trained once and cached."""
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    spec = GridSpec(**bench_grid.DEMO_GRID)
    out = {}
    with tempfile.TemporaryDirectory(prefix="bench_overhead_") as tmp:
        settings = bench_grid._settings(Path(tmp))
        store = DataStore(settings.data_path)
        for config in spec.expand():
            bars = store.load_bars(config.symbol, config.timeframe)
            out[config.label] = train_and_evaluate(config, bars, settings)
    cache.write_bytes(pickle.dumps(out))
    return out


def _round(spec: GridSpec) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_overhead_") as tmp:
        settings = bench_grid._settings(Path(tmp))
        with bench_grid._timing_parts() as parts:
            started, cpu = time.perf_counter(), time.process_time()
            queue = runner.create_queue(spec, settings, skip_trained=False)
            final = runner.run_queue(queue.id, settings)
            wall = time.perf_counter() - started
            cpu = time.process_time() - cpu
        with storage.session_scope(settings) as session:
            runs = storage.runs.queue_runs(session, queue.id)
    if final.status != "completed":
        raise RuntimeError(f"the queue ended {final.status}")
    return {
        "wall": wall,
        "cpu": cpu,
        "parts": dict(parts),
        "kept_indices": sorted(r.queue_index for r in runs if r.is_model_kept),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="timed rounds")
    parser.add_argument("--cache", type=Path, default=CACHE, help="the cached RunResults")
    parser.add_argument("--output", type=Path, help="JSON file written (default: none)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be >= 1, got {args.rounds}")
    cached = _results(args.cache)
    runner._evaluate = lambda config, bars, settings, active: cached[config.label]
    spec = GridSpec(**bench_grid.DEMO_GRID)
    n = len(spec)
    load_before = os.getloadavg()
    _round(spec)  # untimed: caches, the first database of the process
    rounds = [_round(spec) for _ in range(args.rounds)]
    kept = {tuple(r["kept_indices"]) for r in rounds}
    if len(kept) != 1:
        raise RuntimeError(f"the rounds kept different models: {sorted(kept)}")
    per_config = [r["wall"] / n * 1000 for r in rounds]
    cpu_per_config = [r["cpu"] / n * 1000 for r in rounds]
    parts = {
        label: statistics.median(r["parts"].get(label, 0.0) / n * 1000 for r in rounds)
        for label, *_ in bench_grid.OVERHEAD_PARTS[:-1]
    }
    commit = subprocess.run(
        ["git", "-C", str(CODE), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    report = {
        "benchmark": "runner_overhead",
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "code": str(Path(runner.__file__).resolve().parents[1]),
        "commit": commit or None,
        "load_average_before": list(load_before),
        "load_average_after": list(os.getloadavg()),
        "configs": n,
        "ms_per_config": {
            "median": statistics.median(per_config),
            "best": min(per_config),
            "runs": [round(v, 2) for v in per_config],
        },
        # This process's CPU time (every thread): what other jobs on the machine stretch
        # least. One thread computes, as with 1 worker.
        "cpu_ms_per_config": {
            "median": statistics.median(cpu_per_config),
            "best": min(cpu_per_config),
            "runs": [round(v, 2) for v in cpu_per_config],
        },
        "parts_ms_per_config_median": parts,
        "kept_indices": rounds[0]["kept_indices"],
    }
    print(
        f"{report['code']}: {report['ms_per_config']['median']:.1f} ms per configuration "
        f"(median; runs {report['ms_per_config']['runs']}); CPU "
        f"{report['cpu_ms_per_config']['median']:.1f} ms (runs "
        f"{report['cpu_ms_per_config']['runs']}); load "
        f"{load_before[0]:.2f} -> {report['load_average_after'][0]:.2f}"
    )
    for label, value in parts.items():
        print(f"  {value:7.2f}  {label}")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
