"""Grid-runner benchmark: what the queue runner adds, what 2 workers gain, memory, storage.

Run from the project root::

    .venv/bin/python benchmarks/bench_grid.py   # about 9 min; writes benchmarks/results/grid.json
    .venv/bin/python benchmarks/bench_grid.py --repeats 1 --soak 0 --fork-soak 0 --no-memory

The demo's 16-configuration grid (``GridSpec(model_types=["xgboost", "lightgbm"],
symbols=["EURUSD"], timeframes=["1h", "4h"], days_history=[60, 90], horizons=[1, 3])``) on
the bundled 2017 EURUSD sample, which the runner serves when a workspace has no imported
data. Every runner call gets a fresh temporary workspace (its own SQLite database, artifacts
and checkpoints) with ``load_config({"logging": {"log_to_file": False}, ...}, workspace=tmp)``
and is timed from ``create_queue`` to the return of ``run_queue``.

In this process, after an untimed warm-up of every path (imports, caches, the forkserver),
``--repeats`` rounds, each timing in turn:

- ``direct``: ``train_and_evaluate`` called on each of the 16 configurations (the sum);
- ``bare``: per configuration only ``make_features``, the targets, ``make_model(...).fit`` on
  the pipeline's training rows and one ``predict`` on every later row (the sum);
- ``runner_1``: the runner with 1 worker (in process); ``phase1_seconds + phase2_seconds``
  of its runs, read back from the database, are the work inside it;
- ``runner_2``: the runner with 2 workers (a process pool, ``_executor``'s start method).

Figures: (a) runner_1 / direct, (b) runner_1 / bare, (c) runner_1 / runner_2, (d) runner
overhead per configuration = (runner_1 - work inside it) / 16, with its parts (wall time in
the runner's and the store's functions, timed by wrappers during the runner_1 runs), each on
the best round (the least disturbed by other processes; medians are shown beside). (f) kept
bytes / trained bytes: the model files left at the end of a runner_1 run against the pickle
sizes of all 16 models.

In fresh subprocesses: the 16-configuration runner with 1 worker and with 2 workers per
start method (spawn, forkserver, fork), twice each: the first run is what a new process
(``forexgrid run``) sees, the second what a notebook's next queue sees; (c) fresh is the
first runs' speed-up with the runner's default start method. (e) The coordinator's
peak memory (``VmHWM``) for 16 and 128 ridge configurations, 1 and 2 workers. The soak:
``--soak`` runs of the 2-worker runner with the start method ``_executor`` picks, each in a
coordinator made hostile to forking (OpenMP pools used with 2 threads, a thread that logs
without pause, a thread writing SQLite), each under a timeout; ``--fork-soak`` runs the same
with ``fork`` to show why it is not used. One thread per BLAS/OpenMP pool everywhere except
in the soak.
"""

from __future__ import annotations

import os

# Before numpy is imported: one thread everywhere (BLAS, OpenMP, numexpr).
_THREAD_VARS = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
if os.environ.get("FOREXGRID_BENCH_THREADS") != "free":
    for _name in _THREAD_VARS:
        os.environ[_name] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime as dt  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import multiprocessing  # noqa: E402
import pickle  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import shlex  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    # Run as a script from a checkout: import the working tree, not an installed copy.
    sys.path.insert(0, str(ROOT))

from forexgrid import runner, storage  # noqa: E402
from forexgrid.config import load_config  # noqa: E402
from forexgrid.core import features  # noqa: E402
from forexgrid.core.inference import feature_params, make_features  # noqa: E402
from forexgrid.core.models import make_model  # noqa: E402
from forexgrid.data.store import DataStore  # noqa: E402
from forexgrid.grid import GridSpec, TrainingConfig  # noqa: E402
from forexgrid.pipeline import RunResult, train_and_evaluate  # noqa: E402
from forexgrid.storage.artifacts import PICKLE_PROTOCOL  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "grid.json"
DEMO_GRID = dict(
    model_types=["xgboost", "lightgbm"],
    symbols=["EURUSD"],
    timeframes=["1h", "4h"],
    days_history=[60, 90],
    horizons=[1, 3],
)
# A cheap model for the memory runs: 128 = 2 alphas x 2 timeframes x 4 days x 4 horizons
# x 2 encoders; the 16 are a subset of the 128.
RIDGE_GRIDS = {
    16: dict(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h", "4h"],
        days_history=[60, 90],
        horizons=[1, 3],
        hyperparameters={"ridge": {"alpha": [0.5, 2.0]}},
    ),
    128: dict(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h", "4h"],
        days_history=[30, 60, 90, 120],
        horizons=[1, 2, 3, 6],
        encoders=["time_delta", "normalized"],
        hyperparameters={"ridge": {"alpha": [0.5, 2.0]}},
    ),
}
START_METHODS = ("spawn", "forkserver", "fork")
RUNNER_TARGET = 1.10  # (a) runner with 1 worker / train_and_evaluate alone
BARE_TARGET = 2.0  # (b) runner with 1 worker / bare features + fit + predict
SPEEDUP_TARGET = 1.7  # (c) 2 workers over 1, on 2 cores
FRESH_SPEEDUP_TARGET = 1.5  # (c) the same, first queue of a new process (issue 10)
OVERHEAD_TARGET = 10.0  # (d) ms per configuration (issue 10)
MEMORY_FLAT = 1.10  # (e) peak RSS at 128 configurations / at 16
PROMISED_SAVINGS = (0.90, 0.95)  # (f) the user guide's promise


def _settings(workspace: Path, workers: int = 1, **sections: Any) -> Any:
    return load_config(
        {"logging": {"log_to_file": False}, "execution": {"workers": workers}, **sections},
        workspace=workspace,
    )


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "best": min(values),
        "median": statistics.median(values),
        "runs": [round(v, 4) for v in values],
    }


@contextlib.contextmanager
def _start_method(method: str | None) -> Iterator[None]:
    """Make the runner's pool use ``method`` (None: what ``_executor`` picks itself)."""
    original = runner._executor
    if method is not None:
        runner._executor = functools.partial(original, start_method=method)
    try:
        yield
    finally:
        runner._executor = original


# What the runner does per configuration besides phase 1 + phase 2, timed in the runner_1
# runs by wrappers around these functions (a few microseconds a call): name, owner, attribute.
OVERHEAD_PARTS = (
    ("_apply (select, model file, one transaction)", "runner", "_apply"),
    ("  _select", "runner", "_select"),
    ("    storage.trials.load_scope_stats", "storage.trials", "load_scope_stats"),
    ("    selection.score_candidates", "selection", "score_candidates"),
    ("    selection.select", "selection", "select"),
    ("  storage.runs.complete_run", "storage.runs", "complete_run"),
    ("  storage.trials.record_trials", "storage.trials", "record_trials"),
    ("  storage.bests.apply_bests", "storage.bests", "apply_bests"),
    ("  storage.queues.update_counts", "storage.queues", "update_counts"),
    ("  model file written (staged)", "files", "stage"),
    ("  model file moved into place", "files", "promote"),
    ("_update_pbo (the PBO of the queue's scopes, when it stops)", "runner", "_update_pbo"),
    ("create_queue", "runner", "create_queue"),
    ("storage.runs.start_run", "storage.runs", "start_run"),
    ("_checkpoint (every 10 configurations and at the end)", "runner", "_checkpoint"),
    ("evaluate outside train_and_evaluate's two phases", "runner", "_evaluate"),
)


@contextlib.contextmanager
def _timing_parts() -> Iterator[dict[str, float]]:
    """Accumulate the wall seconds spent in each of :data:`OVERHEAD_PARTS`."""
    from forexgrid.core import selection
    from forexgrid.storage.artifacts import ModelFileManager

    owners = {"runner": runner, "selection": selection, "files": ModelFileManager}
    for name in ("runs", "trials", "bests", "queues"):
        owners[f"storage.{name}"] = getattr(storage, name)
    totals: dict[str, float] = {}
    patched = []
    for label, owner_name, attribute in OVERHEAD_PARTS:
        owner = owners[owner_name]
        original = getattr(owner, attribute)

        def timed(*args: Any, _f: Any = original, _label: str = label, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return _f(*args, **kwargs)
            finally:
                totals[_label] = totals.get(_label, 0.0) + time.perf_counter() - started

        setattr(owner, attribute, functools.wraps(original)(timed))
        patched.append((owner, attribute, original))
    try:
        yield totals
    finally:
        for owner, attribute, original in patched:
            setattr(owner, attribute, original)


def _run_grid(spec: GridSpec, workers: int, **sections: Any) -> dict[str, Any]:
    """create_queue + run_queue in a fresh workspace; wall time and what the database says."""
    with tempfile.TemporaryDirectory(prefix="bench_grid_") as tmp:
        settings = _settings(Path(tmp), workers, **sections)
        started = time.perf_counter()
        queue = runner.create_queue(spec, settings, skip_trained=False)
        created = time.perf_counter()
        final = runner.run_queue(queue.id, settings)
        wall = time.perf_counter() - started
        with storage.session_scope(settings) as session:
            runs = storage.runs.queue_runs(session, queue.id)
        artifacts = settings.artifacts_path
        files = sorted(artifacts.iterdir()) if artifacts.exists() else []
        return {
            "wall": wall,
            "create_queue": created - started,
            "status": final.status,
            "completed": sum(r.status == "completed" for r in runs),
            "inside": sum((r.phase1_seconds or 0.0) + (r.phase2_seconds or 0.0) for r in runs),
            "kept_indices": sorted(r.queue_index for r in runs if r.is_model_kept),
            "kept_sizes": {
                r.queue_index: r.model_file_size_bytes for r in runs if r.is_model_kept
            },
            "files": len(files),
            "file_bytes": sum(p.stat().st_size for p in files),
        }


# ----------------------------------------------------------------------------- this process


def _direct(configs: list[TrainingConfig], bars: dict, settings: Any) -> tuple[float, list]:
    """Sum of ``train_and_evaluate`` wall times over the configurations, and the results."""
    total, results = 0.0, []
    with threadpool_limits(limits=1):  # as the runner's _evaluate does
        for config in configs:
            started = time.perf_counter()
            results.append(
                train_and_evaluate(config, bars[config.symbol, config.timeframe], settings)
            )
            total += time.perf_counter() - started
    return total, results


def _bare_inputs(
    config: TrainingConfig, bars: pd.DataFrame, settings: Any, result: RunResult
) -> dict[str, Any]:
    """What the bare script gets for free: the bars from the first row its features need."""
    history = features.history_length(config.encoder, **feature_params(settings))
    first = max(0, result.splits.train.start - history)
    return {
        "bars": bars.iloc[first:],
        "train": (result.splits.train.start - first, result.splits.train.stop - first),
        "n_train_rows": result.n_train_rows,
    }


def _bare(configs: list[TrainingConfig], inputs: list[dict], settings: Any) -> float:
    """Sum over the configurations of: features, targets, fit on the training rows, predict
    on every later row. The features start where the training rows need them, never earlier
    than the pipeline's, so the bare script is not slowed by extra rows."""
    total = 0.0
    seed = settings.execution.seed
    with threadpool_limits(limits=1):
        for config, given in zip(configs, inputs, strict=True):
            started = time.perf_counter()
            bars = given["bars"]
            matrix = make_features(bars, config, settings).to_numpy(dtype=float)
            target = features.build_targets(bars, config.horizon).to_numpy()
            complete = np.isfinite(matrix).all(axis=1)
            start, stop = given["train"]
            rows = np.arange(start, stop)
            rows = rows[complete[rows] & np.isfinite(target[rows])]
            model = make_model(config.model_type, config.hyperparameters, seed)
            model.fit(matrix[rows], target[rows])
            rest = np.arange(stop, len(bars))
            model.predict(matrix[rest[complete[rest]]])
            total += time.perf_counter() - started
            if rows.size != given["n_train_rows"]:
                raise RuntimeError(
                    f"{config.label}: {rows.size} training rows here, "
                    f"{given['n_train_rows']} in the pipeline; the bare script no longer "
                    "mirrors train_and_evaluate"
                )
    return total


def _in_process(repeats: int) -> dict[str, Any]:
    spec = GridSpec(**DEMO_GRID)
    configs = spec.expand()
    with tempfile.TemporaryDirectory(prefix="bench_grid_direct_") as tmp:
        settings = _settings(Path(tmp))
        store = DataStore(settings.data_path)  # empty: the bundled sample, as the runner sees
        bars = {(c.symbol, c.timeframe): store.load_bars(c.symbol, c.timeframe) for c in configs}
        # Warm-up: imports, the hyperparameter-validation cache, the forkserver.
        _, results = _direct(configs, bars, settings)
        inputs = [
            _bare_inputs(c, bars[c.symbol, c.timeframe], settings, r)
            for c, r in zip(configs, results, strict=True)
        ]
        _bare(configs, inputs, settings)
        _run_grid(spec, 1)
        _run_grid(spec, 2)
        rounds: dict[str, list] = {"direct": [], "bare": [], "runner_1": [], "runner_2": []}
        rounds["load_average_1min"] = []
        for _ in range(repeats):
            rounds["load_average_1min"].append(os.getloadavg()[0])
            rounds["direct"].append(_direct(configs, bars, settings)[0])
            rounds["bare"].append(_bare(configs, inputs, settings))
            with _timing_parts() as parts:
                run = _run_grid(spec, 1)
            n = run["completed"]
            evaluate = parts.pop(OVERHEAD_PARTS[-1][0], 0.0)
            parts[OVERHEAD_PARTS[-1][0]] = evaluate - run["inside"]
            run["parts_ms_per_config"] = {k: v / n * 1000 for k, v in parts.items()}
            rounds["runner_1"].append(run)
            rounds["runner_2"].append(_run_grid(spec, 2))
    trained = [len(pickle.dumps(r.model, protocol=PICKLE_PROTOCOL)) for r in results]
    return {"configs": [c.label for c in configs], "rounds": rounds, "trained_bytes": trained}


# ----------------------------------------------------------------------------- subprocesses


def _child_startup(args: dict[str, Any]) -> dict[str, Any]:
    spec = GridSpec(**DEMO_GRID)
    with _start_method(args["method"]):
        runs = [_run_grid(spec, args["workers"]) for _ in range(2)]
    return {"first": runs[0]["wall"], "second": runs[1]["wall"], "status": runs[0]["status"]}


def _peak_rss_kib() -> int | None:
    """This process's peak resident set (``VmHWM``), KiB; None where /proc has no such line."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return None


def _child_memory(args: dict[str, Any]) -> dict[str, Any]:
    """Peak memory of a coordinator running a ridge grid.

    ``VmHWM`` is judged, not ``ru_maxrss``: Linux carries ``ru_maxrss`` over fork and exec,
    so a subprocess of this (larger) benchmark process starts with the parent's figure.
    """
    spec = GridSpec(**RIDGE_GRIDS[args["size"]])
    before = _peak_rss_kib()
    run = _run_grid(spec, args["workers"])
    return {
        "configs": len(spec),
        "peak_rss_kib_before": before,
        "peak_rss_kib": _peak_rss_kib(),
        "ru_maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "wall": run["wall"],
        "inside": run["inside"],
        "overhead_ms_per_config": (run["wall"] - run["inside"]) / len(spec) * 1000,
        "completed": run["completed"],
        "kept": len(run["kept_indices"]),
        "file_bytes": run["file_bytes"],
    }


def _child_soak(args: dict[str, Any]) -> dict[str, Any]:
    """The 2-worker runner in a coordinator with live threads and used OpenMP pools."""
    import logging
    import sqlite3
    import threading

    import lightgbm
    import xgboost

    rng = np.random.default_rng(0)
    x = rng.normal(size=(5000, 20))
    # OpenMP thread pools of both boosting libraries created and left alive.
    xgboost.XGBRegressor(n_estimators=20, n_jobs=2).fit(x, x[:, 0])
    lightgbm.LGBMRegressor(n_estimators=20, n_jobs=2, verbose=-1).fit(x, x[:, 0])
    sink = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process
    logging.basicConfig(level=logging.INFO, stream=sink)  # a notebook's console handler
    stop = threading.Event()

    def chatter() -> None:  # holds the handler's stream lock most of the time
        log = logging.getLogger("bench_grid.chatter")
        while not stop.is_set():
            log.info("tick %s", time.time())

    def writer(path: str) -> None:
        connection = sqlite3.connect(path)
        connection.execute("create table if not exists t (v real)")
        while not stop.is_set():
            connection.execute("insert into t values (?)", (time.time(),))
            connection.commit()
            time.sleep(0.001)

    with tempfile.TemporaryDirectory(prefix="bench_grid_soak_") as tmp:
        threads = [
            threading.Thread(target=chatter, daemon=True),
            threading.Thread(target=writer, args=(str(Path(tmp) / "other.db"),), daemon=True),
        ]
        for thread in threads:
            thread.start()
        with _start_method(args["method"]):
            run = _run_grid(GridSpec(**DEMO_GRID), 2)
        stop.set()
    return {
        "wall": run["wall"],
        "status": run["status"],
        "completed": run["completed"],
        "kept_indices": run["kept_indices"],
    }


_CHILDREN = {"startup": _child_startup, "memory": _child_memory, "soak": _child_soak}


def _subprocess(
    mode: str, args: dict[str, Any], *, timeout: float, free_threads: bool = False
) -> dict[str, Any]:
    """Run this script as ``--child mode`` in a new session; kill its process group on timeout."""
    env = dict(os.environ)
    if free_threads:
        env["FOREXGRID_BENCH_THREADS"] = "free"
        for name in _THREAD_VARS:
            env.pop(name, None)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, json.dumps(args)]
    started = time.perf_counter()
    child = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its pool, forkserver and workers share its process group
    )
    try:
        out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        return {"ok": False, "outcome": f"hung: killed after {timeout:.0f} s", "args": args}
    elapsed = time.perf_counter() - started
    if child.returncode != 0:
        tail = " | ".join(err.strip().splitlines()[-3:])
        return {"ok": False, "outcome": f"exit {child.returncode}: {tail}", "args": args}
    return {"ok": True, "process_seconds": elapsed, **json.loads(out.strip().splitlines()[-1])}


def _startup(repeats: int) -> dict[str, Any]:
    """Fresh processes: 1 worker, and 2 workers per start method; each runs the grid twice."""
    out: dict[str, Any] = {}
    cases = [("inline_1_worker", None, 1)] + [(m, m, 2) for m in START_METHODS]
    for _ in range(repeats):
        for label, method, workers in cases:
            got = _subprocess("startup", {"method": method, "workers": workers}, timeout=300)
            if not got["ok"]:
                raise RuntimeError(f"startup run {label}: {got['outcome']}")
            out.setdefault(label, []).append(got)
    summary = {
        label: {key: _summary([g[key] for g in got]) for key in ("first", "second")}
        for label, got in out.items()
    }
    base = summary["inline_1_worker"]
    for method in START_METHODS:
        for key in ("first", "second"):
            summary[method][f"speedup_{key}"] = base[key]["best"] / summary[method][key]["best"]
    default = summary[_default_start_method()]["speedup_first"]
    summary["c_fresh_speedup_2_workers"] = {
        "value": default,
        "start_method": _default_start_method(),
        "target": f">= {FRESH_SPEEDUP_TARGET}",
        "verdict": _verdict(default >= FRESH_SPEEDUP_TARGET),
    }
    return summary


def _memory() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for workers in (1, 2):
        for size in (16, 128):
            got = _subprocess("memory", {"size": size, "workers": workers}, timeout=900)
            if not got["ok"] or got["completed"] != size:
                raise RuntimeError(f"memory run {size} x {workers} workers: {got}")
            out[f"{size}_configs_{workers}_workers"] = got
        ratio = (
            out[f"128_configs_{workers}_workers"]["peak_rss_kib"]
            / out[f"16_configs_{workers}_workers"]["peak_rss_kib"]
        )
        out[f"ratio_128_over_16_{workers}_workers"] = ratio
    return out


def _soak(runs: int, method: str | None, timeout: float, kept: list[int]) -> dict[str, Any]:
    results = []
    for _ in range(runs):
        got = _subprocess("soak", {"method": method}, timeout=timeout, free_threads=True)
        if got["ok"]:
            fine = got["status"] == "completed" and got["completed"] == 16
            same = got["kept_indices"] == kept
            got["outcome"] = (
                "completed, keeps what the serial run keeps"
                if fine and same
                else f"status {got['status']}, {got['completed']} completed, kept "
                f"{got['kept_indices']} vs serial {kept}"
            )
            got["ok"] = fine and same
        results.append(got)
    return {
        "start_method": method or "runner default",
        "runs": len(results),
        "passed": sum(r["ok"] for r in results),
        "timeout_seconds": timeout,
        "results": results,
    }


# ----------------------------------------------------------------------------- report


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import lightgbm
    import sklearn
    import sqlalchemy
    import xgboost

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": list(os.getloadavg()),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "xgboost": xgboost.__version__,
        "lightgbm": lightgbm.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
    }


def _default_start_method() -> str:
    from forexgrid import executors

    return executors._default_start_method()


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _overhead_parts(run: dict[str, Any], n: int) -> dict[str, float]:
    parts = {label: run["parts_ms_per_config"].get(label, 0.0) for label, *_ in OVERHEAD_PARTS}
    overhead = (run["wall"] - run["inside"]) / n * 1000
    parts["rest (queue status reads, progress, heartbeat, commits outside _apply)"] = (
        overhead - sum(v for k, v in parts.items() if not k.startswith(" "))
    )
    return parts


def _figures(local: dict[str, Any]) -> dict[str, Any]:
    rounds = local["rounds"]
    n = len(local["configs"])
    walls = {k: [r["wall"] for r in rounds[k]] for k in ("runner_1", "runner_2")}
    direct, bare = _summary(rounds["direct"]), _summary(rounds["bare"])
    one, two = _summary(walls["runner_1"]), _summary(walls["runner_2"])
    overhead = [(r["wall"] - r["inside"]) / n * 1000 for r in rounds["runner_1"]]
    best_round = rounds["runner_1"][overhead.index(min(overhead))]
    last = rounds["runner_1"][-1]
    trained = sum(local["trained_bytes"])
    kept_bytes = last["file_bytes"]
    size_check = all(
        size == local["trained_bytes"][index] for index, size in last["kept_sizes"].items()
    )
    return {
        "timings": {"direct": direct, "bare": bare, "runner_1": one, "runner_2": two},
        "runner_1_inside": _summary([r["inside"] for r in rounds["runner_1"]]),
        "runner_1_create_queue": _summary([r["create_queue"] for r in rounds["runner_1"]]),
        "a_runner_over_direct": {
            "value": one["best"] / direct["best"],
            "median_value": one["median"] / direct["median"],
            "target": f"<= {RUNNER_TARGET}",
            "verdict": _verdict(one["best"] / direct["best"] <= RUNNER_TARGET),
        },
        "b_runner_over_bare": {
            "value": one["best"] / bare["best"],
            "median_value": one["median"] / bare["median"],
            "target": f"<= {BARE_TARGET}",
            "verdict": _verdict(one["best"] / bare["best"] <= BARE_TARGET),
        },
        "c_speedup_2_workers": {
            "value": one["best"] / two["best"],
            "median_value": one["median"] / two["median"],
            "target": f">= {SPEEDUP_TARGET}",
            "verdict": _verdict(one["best"] / two["best"] >= SPEEDUP_TARGET),
        },
        "d_overhead_ms_per_config": {
            "value": min(overhead),
            "median_value": statistics.median(overhead),
            "runs": overhead,
            "target": f"<= {OVERHEAD_TARGET}",
            "verdict": _verdict(min(overhead) <= OVERHEAD_TARGET),
            # The parts of the best round (ms per configuration); the top-level ones
            # (no leading spaces) plus "rest" add up to the overhead.
            "parts_best_round": _overhead_parts(best_round, n),
        },
        "f_kept_over_trained": {
            "value": kept_bytes / trained,
            "kept_bytes": kept_bytes,
            "trained_bytes": trained,
            "kept_models": len(last["kept_indices"]),
            "trained_models": n,
            "kept_indices": last["kept_indices"],
            "kept_file_sizes_equal_pickle_sizes": size_check,
            "savings": 1 - kept_bytes / trained,
            "promised_savings": list(PROMISED_SAVINGS),
            "verdict": _verdict(1 - kept_bytes / trained >= PROMISED_SAVINGS[0]),
        },
        "runs_all_completed": all(
            r["status"] == "completed" and r["completed"] == n
            for k in ("runner_1", "runner_2")
            for r in rounds[k]
        ),
        "parallel_keeps_what_serial_keeps": all(
            r["kept_indices"] == last["kept_indices"]
            for k in ("runner_1", "runner_2")
            for r in rounds[k]
        ),
    }


def _print(report: dict[str, Any]) -> None:
    m, f = report["machine"], report["figures"]
    print(f"grid benchmark: demo grid, 16 configurations, {report['repeats']} rounds")
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_average_at_start'][0]:.2f} "
        f"at start, {m['load_average_at_end'][0]:.2f} at end; pool start method "
        f"{report['start_method']}"
    )
    for name, t in f["timings"].items():
        print(f"  {name:<10} best {t['best']:7.3f} s  median {t['median']:7.3f} s")
    for key in ("a_runner_over_direct", "b_runner_over_bare", "c_speedup_2_workers"):
        c = f[key]
        print(
            f"  {key:<24} {c['value']:.3f} (median {c['median_value']:.3f})  "
            f"target {c['target']:<7} {c['verdict']}"
        )
    d = f["d_overhead_ms_per_config"]
    print(
        f"  d_overhead_ms_per_config  {d['value']:.1f} ms (runs {np.round(d['runs'], 1)})  "
        f"target {d['target']} {d['verdict']}; best round's parts (ms per configuration):"
    )
    for label, value in d["parts_best_round"].items():
        print(f"    {value:7.2f}  {label}")
    s = f["f_kept_over_trained"]
    print(
        f"  f_kept_over_trained       {s['value']:.3f}: {s['kept_models']}/{s['trained_models']} "
        f"models, {s['kept_bytes']:,} of {s['trained_bytes']:,} bytes, savings "
        f"{s['savings']:.1%} (promised 90-95%) {s['verdict']}"
    )
    if report.get("startup"):
        print("  fresh processes (best wall s: first run / second run; speed-up over 1 worker):")
        for label, row in report["startup"].items():
            if label == "c_fresh_speedup_2_workers":
                print(
                    f"  c_fresh_speedup_2_workers ({row['start_method']}, first queue) "
                    f"x{row['value']:.2f}  target {row['target']} {row['verdict']}"
                )
                continue
            extra = (
                f"  x{row['speedup_first']:.2f} / x{row['speedup_second']:.2f}"
                if "speedup_first" in row
                else ""
            )
            print(
                f"    {label:<16} {row['first']['best']:6.2f} / {row['second']['best']:6.2f}"
                f"{extra}"
            )
    if report.get("memory"):
        mem = report["memory"]
        for workers in (1, 2):
            a = mem[f"16_configs_{workers}_workers"]["peak_rss_kib"] / 1024
            b = mem[f"128_configs_{workers}_workers"]["peak_rss_kib"] / 1024
            ratio = mem[f"ratio_128_over_16_{workers}_workers"]
            print(
                f"  e_peak_rss {workers} worker(s): 16 -> {a:.0f} MiB, 128 -> {b:.0f} MiB, "
                f"ratio {ratio:.3f} (target <= {MEMORY_FLAT}) {_verdict(ratio <= MEMORY_FLAT)}"
            )
    for key in ("soak", "fork_soak"):
        soak = report.get(key)
        if soak and soak["runs"]:
            walls = [r.get("wall") for r in soak["results"] if r["ok"]]
            print(
                f"  {key}: {soak['start_method']}: {soak['passed']}/{soak['runs']} completed "
                f"(timeout {soak['timeout_seconds']:.0f} s; walls {np.round(walls, 1)}); "
                + "; ".join(sorted({r["outcome"] for r in soak["results"]}))
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="timed rounds in this process")
    parser.add_argument("--startup-repeats", type=int, default=1, help="fresh-process rounds")
    parser.add_argument("--soak", type=int, default=10, help="hostile 2-worker runs")
    parser.add_argument("--soak-timeout", type=float, default=180.0, help="seconds per run")
    parser.add_argument("--fork-soak", type=int, default=2, help="the same runs with fork")
    parser.add_argument("--fork-timeout", type=float, default=60.0, help="seconds per run")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory runs")
    parser.add_argument("--no-startup", action="store_true", help="skip the fresh processes")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file written")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "JSON"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        mode, given = args.child
        print(json.dumps(_CHILDREN[mode](json.loads(given)), default=str))
        return 0
    if args.repeats < 1:
        parser.error(f"--repeats must be >= 1, got {args.repeats}")
    command = shlex.join([".venv/bin/python", "benchmarks/bench_grid.py", *sys.argv[1:]])
    machine = _machine()
    start_method = _default_start_method()
    local = _in_process(args.repeats)
    machine["thread_pools"] = [
        f"{pool['internal_api']} {pool.get('version') or ''} {pool['num_threads']} thread(s)"
        for pool in threadpool_info()
    ]
    figures = _figures(local)
    startup = None if args.no_startup else _startup(args.startup_repeats)
    memory = None if args.no_memory else _memory()
    kept = figures["f_kept_over_trained"]["kept_indices"]
    soak = _soak(args.soak, None, args.soak_timeout, kept)
    fork_soak = _soak(args.fork_soak, "fork", args.fork_timeout, kept)
    machine["load_average_at_end"] = list(os.getloadavg())
    report = {
        "benchmark": "grid",
        "command": command,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine,
        "start_method": start_method,
        "start_methods_available": multiprocessing.get_all_start_methods(),
        "repeats": args.repeats,
        "grid": DEMO_GRID,
        "configs": local["configs"],
        "figures": figures,
        "rounds": local["rounds"],
        "trained_bytes": local["trained_bytes"],
        "startup": startup,
        "memory": memory,
        "memory_grids": {str(k): v for k, v in RIDGE_GRIDS.items()},
        "soak": soak,
        "fork_soak": fork_soak,
    }
    _print(report)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    tmp.replace(args.output)
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"wrote {shown}")
    judged = [figures[k]["verdict"] for k in ("a_runner_over_direct", "b_runner_over_bare")]
    judged.append(figures["c_speedup_2_workers"]["verdict"])
    judged.append(figures["d_overhead_ms_per_config"]["verdict"])
    if startup is not None:
        judged.append(startup["c_fresh_speedup_2_workers"]["verdict"])
    if memory is not None:
        judged += [
            _verdict(memory[f"ratio_128_over_16_{w}_workers"] <= MEMORY_FLAT) for w in (1, 2)
        ]
    healthy = figures["runs_all_completed"] and soak["passed"] == soak["runs"]
    return 0 if healthy and all(v == "PASS" for v in judged) else 1


if __name__ == "__main__":
    sys.exit(main())
