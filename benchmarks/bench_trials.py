"""Trials benchmark: phase 2 before and after the trials, and the runner's cost per run.

Run from the project root::

    .venv/bin/python benchmarks/bench_trials.py   # about 6 min; writes results/trials.json
    .venv/bin/python benchmarks/bench_trials.py --only phase2 --repeats 5
    .venv/bin/python benchmarks/bench_trials.py --only runner --rounds 1
    .venv/bin/python benchmarks/bench_trials.py --profile   # phase 2's stages, old and new

Commit 8489869 made phase 2 forecast from the first out-of-sample bar (``train.stop - 1 +
horizon``, with 20 bars of price history before it) instead of some 430 bars before
validation, and compute each run's trials (daily validation returns of every combination per
regime). The runner, per configuration and in one transaction, adds the run's trials to the
additive statistics of their scopes, rescores the list entries of the run's validation
window, selects, and stores the trials and statistics: a cost designed not to grow with the
trials stored. When a queue stops, ``scoring.update_pbo`` brings the PBO of the scopes it
touched up to date (it read every trial of each before each scope kept its CSCV state:
``bench_pbo_incremental.py``).

**phase2** (old against new). The ``forexgrid`` package of ``--old-commit`` (default 9ad715e,
the commit before) is extracted with ``git archive`` into a temporary directory. Two child
interpreters of this venv serve ``train_and_evaluate`` calls on the bundled 2017 EURUSD 1h
sample, one with ``PYTHONPATH`` set to the old code and one to the new (each reports its
``forexgrid.__file__``, checked and recorded in the JSON). Per configuration in
``PHASE2_CONFIGS``, after one untimed warm-up call in each child, ``--repeats`` rounds
alternate old and new (ABBA: old-new, then new-old) so that both see the same load. Figure:
``result.timings["phase2"]``, best and median; target: new best <= ``PHASE2_TARGET`` x old
best. ``--profile`` runs the same children under cProfile (``PROFILE_REPEATS`` interleaved
calls each) and prints, per stage of phase 2, the least cumulative time.

**runner** (overhead against trials stored). After an untimed 2-configuration warm-up queue
in a throwaway workspace, per round in a fresh workspace (own SQLite database, no imported
data, so the runner serves the bundled sample) and with 1 worker: a 128-configuration ridge
queue (``RUNNER_GRID``: 8 days_history x 2 horizons x 8 alphas), then in the same workspace a
16-configuration queue (``AFTER_GRID``: the days_history and horizons of the first 16 of the
128, new alphas). Every configuration has the same 82 combinations (horizon 1 would have 13),
so every block stores the same rows, and every block of 16 holds horizons 2 and 3 alike, so
its phase 2 is the same work. Per configuration, from wrappers patched into the runner in
this process: the wall and CPU time (this thread's) of ``runner._apply``, with its parts
(``_select``, ``storage.runs.complete_run``, ``storage.trials.record_trials``, ...); the
wall time between two completed configurations minus the run's ``timings`` phase 1 + phase 2
(this adds the bars' fingerprint and hash inside ``_evaluate``, the queue's status reads and
the checkpoint every 10 runs); the CPU time of that interval outside ``runner._evaluate``. Blocks:
configurations 1-16 (empty workspace), 113-128 (112 runs' trials stored) and the 16 of the
second queue (128 stored), pooled over ``--rounds``. Target: flat, a later block's median of
(``_apply`` / the configuration's phase 2) and of ((wall - phases) / phase 2) <=
``OVERHEAD_FLAT`` x the first block's (see ``JUDGED`` and ``OVERHEAD_FLAT`` for why); the raw
medians and bests, wall and CPU, are reported beside. Also: ``scoring.update_pbo`` at the end
of each queue (its time, reading against computing, the trials and distinct trials per
scope), the database size, and the PBO function alone on a (42, 10,000) random matrix.

The "new" code is this checkout's working tree; to measure a commit while the tree is being
edited, extract it and point ``FOREXGRID_BENCH_CODE`` at it::

    mkdir /tmp/fg_new && git archive HEAD forexgrid | tar -x -C /tmp/fg_new
    FOREXGRID_BENCH_CODE=/tmp/fg_new .venv/bin/python benchmarks/bench_trials.py

One thread for BLAS/OpenMP everywhere (set before numpy is imported, and ``threadpoolctl``).
Writes ``benchmarks/results/trials.json`` (machine, load averages, command, code state,
figures and every per-configuration record); exits 1 if a target fails.
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
for _name in _THREAD_VARS:
    os.environ[_name] = "1"

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime as dt  # noqa: E402
import functools  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tarfile  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable, Iterator  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from threadpoolctl import threadpool_info, threadpool_limits  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# The "new" code: this checkout's working tree, or the forexgrid package under
# $FOREXGRID_BENCH_CODE (e.g. a commit extracted with git archive while the tree is edited).
CODE = Path(os.environ.get("FOREXGRID_BENCH_CODE") or ROOT).resolve()
if str(CODE) not in sys.path:
    # Run as a script from a checkout: import that code, not an installed copy.
    sys.path.insert(0, str(CODE))

from forexgrid import runner, scoring, storage  # noqa: E402
from forexgrid.config import load_config  # noqa: E402
from forexgrid.core import selection  # noqa: E402
from forexgrid.core.pbo import probability_of_backtest_overfitting  # noqa: E402
from forexgrid.grid import GridSpec  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "trials.json"
OLD_COMMIT = "9ad715e"
# (model type, days_history, horizon), EURUSD 1h on the bundled sample.
PHASE2_CONFIGS = (("xgboost", 90, 6), ("ridge", 60, 3))
PHASE2_TARGET = 1.10  # new phase 2 <= 1.10 x old phase 2 (best of the repeats)
# A later block's overhead / the first block's. The allowance is for noise on a shared 2-core
# machine; a cost that grew with the trials stored would grow ~16x between the blocks (7.5
# runs stored on average before a configuration of the first block, 119.5 before one of
# 113-128), so a part of 1.7% of the first block's overhead would already break it.
OVERHEAD_FLAT = 1.25
# Judged: the runner's time per configuration relative to the same configuration's phase 2,
# which is the same work in every block and is measured just before it; so the ratio of two
# blocks does not move with the load other jobs put on a shared machine, which stretches wall
# and CPU times alike (the best CPU time of a block of 16 was 44 ms in one run and 76 ms in
# another while this was written).
JUDGED = ("apply_per_phase2", "wall_minus_phases_per_phase2")
ALPHAS = [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0]
ALPHAS_AFTER = [0.3, 0.6, 1.2, 2.4, 4.8, 9.6, 19.2, 38.4]
RUNNER_GRID = dict(
    model_types=["ridge"],
    symbols=["EURUSD"],
    timeframes=["1h"],
    days_history=[30, 45, 60, 75, 90, 105, 120, 135],
    horizons=[2, 3],
    hyperparameters={"ridge": {"alpha": ALPHAS}},
)
# expand() varies days slowest and alphas fastest: each block of 16 is one days_history x
# horizons 2, 3 x 8 alphas, so every block's phase 2 is the same work (days_history changes
# only the training rows). AFTER_GRID is the first block again, with new alphas.
AFTER_GRID = {**RUNNER_GRID, "days_history": [30]}
AFTER_GRID["hyperparameters"] = {"ridge": {"alpha": ALPHAS_AFTER}}
WARMUP_GRID = {**RUNNER_GRID, "days_history": [30], "horizons": [2]}
WARMUP_GRID["hyperparameters"] = {"ridge": {"alpha": [0.1, 0.2]}}
BLOCK = 16
PBO_SHAPE = (42, 10_000)  # (days, trials) for the PBO function alone
PBO_REPEATS = 3
PROFILE_REPEATS = 5  # --profile: per stage, the least of this many profiled calls

# What _apply is made of, timed per call inside it: (label, module, attribute) ...
_PARTS = (
    ("_select", runner, "_select"),
    ("load_scope_stats", storage, "load_scope_stats"),
    ("current_rules_versions", storage, "current_rules_versions"),
    ("load_bests", storage, "load_bests"),
    ("rescore_entries", selection, "rescore_entries"),
    ("score_candidates", selection, "score_candidates"),
    ("select", selection, "select"),
    ("complete_run", storage, "complete_run"),
    ("record_trials", storage, "record_trials"),
    ("apply_bests", storage, "apply_bests"),
    ("update_counts", storage, "update_counts"),
    # ... and what update_pbo is made of.
    ("scope_returns", storage, "scope_returns"),
    ("pbo", scoring, "probability_of_backtest_overfitting"),
    ("set_pbo", storage, "set_pbo"),
)


def _summary(values: list[float]) -> dict[str, Any]:
    return {
        "best": min(values),
        "median": statistics.median(values),
        "runs": [round(v, 6) for v in values],
    }


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


# ----------------------------------------------------------------------------- phase 2

# A child interpreter serving train_and_evaluate calls: one JSON request per stdin line, one
# JSON reply per stdout line. The first line it prints says which forexgrid it imported. With
# "stages" in the request, the call runs under cProfile and the reply adds the cumulative
# seconds and calls of each stage: [label, file suffix, function name].
_CHILD = """
import cProfile, json, os, pstats, sys
import forexgrid
from threadpoolctl import threadpool_limits
from forexgrid.config import load_config
from forexgrid.data.sample import load_sample
from forexgrid.grid import TrainingConfig
from forexgrid.pipeline import train_and_evaluate

def stage_times(profiler, stages):
    stats = pstats.Stats(profiler).stats
    out = {}
    for label, suffix, name in stages:
        hits = [(row[1], row[3]) for (path, _, func), row in stats.items()
                if func == name and path.replace(os.sep, "/").endswith(suffix)]
        if hits:
            out[label] = [sum(h[0] for h in hits), sum(h[1] for h in hits)]
    return out

settings, bars = load_config(None), load_sample("EURUSD", "1h")
print(json.dumps({"forexgrid": forexgrid.__file__}), flush=True)
for line in sys.stdin:
    ask = json.loads(line)
    config = TrainingConfig(model_type=ask["model_type"], symbol="EURUSD", timeframe="1h",
                            days_history=ask["days_history"], horizon=ask["horizon"])
    profiler = cProfile.Profile() if ask.get("stages") else None
    with threadpool_limits(limits=1):
        if profiler is not None:
            profiler.enable()
        result = train_and_evaluate(config, bars, settings)
        if profiler is not None:
            profiler.disable()
    first = getattr(result, "first_forecast", None)
    print(json.dumps({
        "phase1": result.timings["phase1"],
        "phase2": result.timings["phase2"],
        "eval_bars": len(result.predictions),
        "train_rows": result.n_train_rows,
        "n_combinations": result.n_combinations,
        "first_forecast": None if first is None else str(first),
        "has_trials": getattr(result, "trials", None) is not None,
        "stages": None if profiler is None else stage_times(profiler, ask["stages"]),
    }), flush=True)
"""

# Phase 2's stages for --profile: (label, file suffix, function name); the functions both
# versions share, and the trials.
_PROFILE_STAGES = (
    ("predict, all methods", "forexgrid/core/inference.py", "predict"),
    ("  recursive method", "forexgrid/core/inference.py", "_recursive"),
    ("  model.predict calls", "forexgrid/core/inference.py", "_model_predict"),
    ("regime labels", "forexgrid/core/regimes.py", "label_regimes"),
    ("signals and ensembles", "forexgrid/core/signals.py", "compute_signals"),
    ("confidence and positions", "forexgrid/core/signals.py", "compute_positions"),
    ("  trailing_rank", "forexgrid/core/_rolling.py", "trailing_rank"),
    ("strategy returns", "forexgrid/core/backtest.py", "strategy_returns"),
    ("metrics", "forexgrid/core/backtest.py", "compute_metrics_batch"),
    ("selection statistics (_choose)", "forexgrid/pipeline.py", "_choose"),
    ("trials (_trials)", "forexgrid/pipeline.py", "_trials"),
    ("  daily_returns", "forexgrid/core/trials.py", "daily_returns"),
)


class _Child:
    """A child interpreter that imports forexgrid from ``code`` and runs configurations."""

    def __init__(self, code: Path, workdir: Path, label: str) -> None:
        self.label = label
        self._stderr = (workdir / f"{label}.stderr").open("w+")
        # cwd outside the checkout: with -c, sys.path[0] is the current directory.
        self._process = subprocess.Popen(
            [sys.executable, "-c", _CHILD],
            cwd=workdir,
            env={**os.environ, "PYTHONPATH": str(code)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.forexgrid_file = self._read()["forexgrid"]

    def _read(self) -> dict[str, Any]:
        line = self._process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            self._stderr.seek(0)
            raise RuntimeError(f"{self.label} child died:\n{self._stderr.read()[-3000:]}")
        return json.loads(line)

    def run(self, config: tuple[str, int, int], *, profile: bool = False) -> dict[str, Any]:
        model_type, days_history, horizon = config
        ask = {"model_type": model_type, "days_history": days_history, "horizon": horizon}
        if profile:
            ask["stages"] = _PROFILE_STAGES
        self._process.stdin.write(json.dumps(ask) + "\n")  # type: ignore[union-attr]
        self._process.stdin.flush()  # type: ignore[union-attr]
        return self._read()

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.stdin.close()  # type: ignore[union-attr]
            self._process.wait(timeout=60)
        self._stderr.close()


def _extract(commit: str, into: Path) -> Path:
    """The ``forexgrid`` package of ``commit``, extracted under ``into`` (git archive)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", commit, "forexgrid"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


@contextlib.contextmanager
def _old_and_new(old_commit: str) -> Iterator[dict[str, _Child]]:
    """Two warm children: the code of ``old_commit`` and this working tree."""
    with tempfile.TemporaryDirectory(prefix="bench_trials_phase2_") as tmp:
        work = Path(tmp)
        old_code = _extract(old_commit, work / "old")
        children: dict[str, _Child] = {}
        try:
            children["old"] = _Child(old_code, work, "old")
            children["new"] = _Child(CODE, work, "new")
            for label, code in (("old", old_code), ("new", CODE)):
                if not children[label].forexgrid_file.startswith(str(code)):
                    raise RuntimeError(
                        f"the {label} child imported {children[label].forexgrid_file}, not "
                        f"the code under {code}"
                    )
            for config in PHASE2_CONFIGS:
                for child in children.values():
                    child.run(config)  # warm-up: imports, caches
            yield children
        finally:
            for child in children.values():
                child.close()


def _interleaved(
    children: dict[str, _Child], config: tuple[str, int, int], repeats: int, profile: bool
) -> tuple[dict[str, list[dict[str, Any]]], list[float]]:
    """``repeats`` calls of each child, alternating ABBA (old-new, new-old, ...)."""
    runs: dict[str, list[dict[str, Any]]] = {"old": [], "new": []}
    loads = []
    for repeat in range(repeats):
        loads.append(os.getloadavg()[0])
        for name in ("old", "new") if repeat % 2 == 0 else ("new", "old"):
            runs[name].append(children[name].run(config, profile=profile))
    return runs, loads


def _phase2_part(repeats: int, old_commit: str) -> dict[str, Any]:
    with _old_and_new(old_commit) as children:
        out: dict[str, Any] = {
            "forexgrid_file": {label: child.forexgrid_file for label, child in children.items()},
            "configs": {},
        }
        for config in PHASE2_CONFIGS:
            runs, loads = _interleaved(children, config, repeats, profile=False)
            out["configs"][_label(config)] = _phase2_figures(runs, loads)
    return out


def _label(config: tuple[str, int, int]) -> str:
    model_type, days, horizon = config
    return f"{model_type} 1h {days}d h{horizon}"


def _phase2_figures(runs: dict[str, list[dict[str, Any]]], loads: list[float]) -> dict:
    fig: dict[str, Any] = {"load_average_1min": [round(x, 2) for x in loads]}
    for name, got in runs.items():
        first = got[0]
        fig[name] = {
            "phase1": _summary([g["phase1"] for g in got]),
            "phase2": _summary([g["phase2"] for g in got]),
            **{k: first[k] for k in ("eval_bars", "train_rows", "n_combinations")},
            "first_forecast": first["first_forecast"],
            "has_trials": first["has_trials"],
        }
    old, new = fig["old"]["phase2"], fig["new"]["phase2"]
    ratio = new["best"] / old["best"]
    fig["ratio_new_over_old"] = {
        "value": ratio,
        "median_value": new["median"] / old["median"],
        "paired_median_value": statistics.median(
            n["phase2"] / o["phase2"] for n, o in zip(runs["new"], runs["old"], strict=True)
        ),
        "target": f"<= {PHASE2_TARGET}",
        "verdict": _verdict(ratio <= PHASE2_TARGET),
    }
    return fig


def _profile(old_commit: str, repeats: int) -> None:
    """Print phase 2's stages, old and new code, each the least over ``repeats`` profiled
    calls (interleaved like the timings)."""
    with _old_and_new(old_commit) as children:
        files = {label: child.forexgrid_file for label, child in children.items()}
        print(f"old: {files['old']} ({old_commit}); new: {files['new']}")
        for config in PHASE2_CONFIGS:
            runs, _ = _interleaved(children, config, repeats, profile=True)
            best = {name: min(r["phase2"] for r in got) for name, got in runs.items()}
            print(
                f"\n{_label(config)}, least of {repeats} profiled calls each: phase 2 old "
                f"{best['old']:.3f} s, new {best['new']:.3f} s"
            )
            print(f"  {'stage':<32}{'old calls':>10}{'old s':>9}{'new calls':>10}{'new s':>9}")
            for label, _, _ in _PROFILE_STAGES:
                cells = ""
                for name in ("old", "new"):
                    hits = [r["stages"][label] for r in runs[name] if label in r["stages"]]
                    if hits:
                        calls, seconds = hits[0][0], min(h[1] for h in hits)
                        cells += f"{calls:>10}{seconds:>9.4f}"
                    else:
                        cells += f"{'-':>10}{'-':>9}"
                print(f"  {label:<32}{cells}")


# ----------------------------------------------------------------------------- runner


def _settings(workspace: Path) -> Any:
    return load_config(
        {"logging": {"log_to_file": False}, "execution": {"workers": 1}}, workspace=workspace
    )


class _Recorder:
    """Per-configuration timings of the runner, from wrappers patched into its modules."""

    def __init__(self) -> None:
        self.runs: list[dict[str, Any]] = []
        self.current: dict[str, Any] | None = None
        self.sink: dict[str, float] | None = None  # where wrap_part adds its seconds
        # (wall, this thread's CPU) when the queue started and when each run was done.
        self.done_at: list[tuple[float, float]] = []
        self.started_at: tuple[float, float] | None = None
        self.pbo: list[dict[str, Any]] = []
        self.evaluate = (float("nan"), float("nan"))

    def progress(self, event: runner.Progress) -> None:
        now = (time.perf_counter(), time.thread_time())
        if event.kind == "started":
            self.started_at = now
        elif event.kind in ("kept", "deleted", "failed"):
            self.done_at.append(now)

    def wrap_apply(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def timed(settings, queue_id, run, result, *args, **kwargs):  # noqa: ANN001, ANN202
            self.current = {"label": run.config.label, "parts": {}}
            self.sink = self.current["parts"]
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(settings, queue_id, run, result, *args, **kwargs)
            finally:
                self.current["apply"] = time.perf_counter() - started
                self.current["apply_cpu"] = time.thread_time() - cpu
                self.current["phase1"] = result.timings["phase1"]
                self.current["phase2"] = result.timings["phase2"]
                self.current["n_combinations"] = result.n_combinations
                self.current["evaluate"], self.current["evaluate_cpu"] = self.evaluate
                self.current["evaluate_minus_phases"] = (
                    self.evaluate[0] - result.timings["phase1"] - result.timings["phase2"]
                )
                self.runs.append(self.current)
                self.current = self.sink = None

        return timed

    def wrap_evaluate(self, original: Callable[..., Any]) -> Callable[..., Any]:
        # With 1 worker the runner evaluates in this process when it asks for the result,
        # just before that run's _apply.
        @functools.wraps(original)
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started, cpu = time.perf_counter(), time.thread_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.evaluate = (time.perf_counter() - started, time.thread_time() - cpu)

        return timed

    def wrap_part(self, label: str, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                if self.sink is not None:
                    self.sink[label] = self.sink.get(label, 0.0) + time.perf_counter() - started

        return timed

    def wrap_pbo(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def timed(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            self.sink = parts = {}
            started = time.perf_counter()
            try:
                results = original(*args, **kwargs)
            finally:
                self.sink = None
            self.pbo.append(
                {
                    "seconds": time.perf_counter() - started,
                    "parts": parts,
                    "scopes": {
                        key.regime: {"trials": r.n_trials, "pbo": r.pbo, "blocks": r.n_blocks}
                        for key, r in results.items()
                    },
                }
            )
            return results

        return timed


@contextlib.contextmanager
def _instrumented(recorder: _Recorder) -> Iterator[None]:
    """Patch the runner's ``_apply``, its parts and ``scoring.update_pbo`` with timers."""
    patches = [
        (runner, "_apply", recorder.wrap_apply(runner._apply)),
        (runner, "_evaluate", recorder.wrap_evaluate(runner._evaluate)),
    ]
    patches += [
        (module, name, recorder.wrap_part(label, getattr(module, name)))
        for label, module, name in _PARTS
        if hasattr(module, name)  # a part the runner no longer has is left out
    ]
    patches.append((scoring, "update_pbo", recorder.wrap_pbo(scoring.update_pbo)))
    originals = [(module, name, getattr(module, name)) for module, name, _ in patches]
    try:
        for module, name, wrapper in patches:
            setattr(module, name, wrapper)
        yield
    finally:
        for module, name, original in originals:
            setattr(module, name, original)


def _database_bytes(settings: Any) -> int:
    path = Path(settings.database_url.removeprefix("sqlite:///"))
    return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))


def _table_bytes(settings: Any) -> dict[str, int] | None:
    """Bytes of each table and index of the SQLite file (None without SQLite's dbstat)."""
    import sqlite3

    path = settings.database_url.removeprefix("sqlite:///")
    with contextlib.closing(sqlite3.connect(path)) as db:
        try:
            rows = db.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name").fetchall()
        except sqlite3.DatabaseError:
            return None
    return {name: int(size) for name, size in sorted(rows, key=lambda r: -r[1])}


def _timed_queue(spec: GridSpec, settings: Any) -> dict[str, Any]:
    """create_queue + run_queue with 1 worker; per configuration, what the runner added."""
    recorder = _Recorder()
    started = time.perf_counter()
    queue = runner.create_queue(spec, settings, skip_trained=False)
    created = time.perf_counter()
    with _instrumented(recorder):
        final = runner.run_queue(queue.id, settings, progress=recorder.progress)
    wall = time.perf_counter() - started
    if final.status != "completed" or len(recorder.runs) != len(spec):
        raise RuntimeError(f"queue {queue.id}: {final.status}, {len(recorder.runs)} runs")
    ends = recorder.done_at
    begins = [recorder.started_at, *ends[:-1]]
    for run, begin, end in zip(recorder.runs, begins, ends, strict=True):
        run["wall"] = end[0] - begin[0]
        run["wall_minus_phases"] = run["wall"] - run["phase1"] - run["phase2"]
        # CPU time of the runner's thread outside the evaluation (other jobs stretch it less
        # than wall time, but they do: see JUDGED).
        run["cpu_outside_evaluate"] = end[1] - begin[1] - run["evaluate_cpu"]
        run["apply_per_phase2"] = run["apply"] / run["phase2"]
        run["wall_minus_phases_per_phase2"] = run["wall_minus_phases"] / run["phase2"]
    with storage.session_scope(settings) as session:
        scopes = storage.trials.scope_table(session)
        # Identical trials (combinations whose daily returns coincide in a regime) are scored
        # once by the PBO: the distinct columns are what its cost grows with.
        distinct = {
            r.regime: np.unique(
                storage.trials.scope_returns(
                    session,
                    storage.trials.ScopeKey(
                        r.symbol, r.regime, r.rules_version, r.validation_start, r.validation_end
                    ),
                )[0],
                axis=1,
            ).shape[1]
            for r in scopes.itertuples()
        }
    return {
        "configs": len(spec),
        "wall": wall,
        "create_queue": created - started,
        "runs": recorder.runs,
        "update_pbo": recorder.pbo,
        "database_bytes": _database_bytes(settings),
        "table_bytes": _table_bytes(settings),
        "scope_trials": dict(zip(scopes["regime"], scopes["n_trials"].astype(int), strict=True)),
        "scope_runs": dict(zip(scopes["regime"], scopes["n_runs"].astype(int), strict=True)),
        "scope_distinct_trials": distinct,
        "load_average_1min_at_end": os.getloadavg()[0],
    }


def _runner_round(tmp: Path, index: int) -> dict[str, Any]:
    settings = _settings(tmp / f"round{index}")
    load = os.getloadavg()[0]
    big = _timed_queue(GridSpec(**RUNNER_GRID), settings)
    after = _timed_queue(GridSpec(**AFTER_GRID), settings)
    return {"load_average_1min_at_start": load, "queue_128": big, "queue_16_after": after}


def _block(runs: list[dict[str, Any]], key: str) -> dict[str, Any]:
    return _summary([r[key] for r in runs])


def _runner_part(rounds: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_trials_runner_") as tmp, threadpool_limits(1):
        _timed_queue(GridSpec(**WARMUP_GRID), _settings(Path(tmp) / "warmup"))
        got = [_runner_round(Path(tmp), i) for i in range(rounds)]
    blocks = {
        "first_16": [r for g in got for r in g["queue_128"]["runs"][:BLOCK]],
        "last_16": [r for g in got for r in g["queue_128"]["runs"][-BLOCK:]],
        "after_16": [r for g in got for r in g["queue_16_after"]["runs"]],
    }
    keys = (
        "apply",
        "apply_cpu",
        "wall_minus_phases",
        "cpu_outside_evaluate",
        "evaluate_minus_phases",
        "phase1",
        "phase2",
        *JUDGED,
    )
    figures: dict[str, Any] = {
        name: {key: _block(runs, key) for key in keys} for name, runs in blocks.items()
    }
    for name, runs in blocks.items():
        labels = sorted({p for r in runs for p in r["parts"]})
        figures[name]["parts_median"] = {
            p: statistics.median(r["parts"].get(p, 0.0) for r in runs) for p in labels
        }
        figures[name]["n_combinations"] = sorted({r["n_combinations"] for r in runs})
    checks = {}
    for later in ("last_16", "after_16"):
        for key in (*JUDGED, "apply", "wall_minus_phases", "apply_cpu", "cpu_outside_evaluate"):
            ratio = figures[later][key]["median"] / figures["first_16"][key]["median"]
            judged = key in JUDGED
            checks[f"{key}_{later}_over_first_16"] = {
                "value": ratio,
                "best_value": figures[later][key]["best"] / figures["first_16"][key]["best"],
                "target": f"<= {OVERHEAD_FLAT} (flat)" if judged else "(reported)",
                "verdict": _verdict(ratio <= OVERHEAD_FLAT) if judged else "-",
            }
    return {"rounds": got, "blocks": figures, "checks": checks}


def _pbo_alone() -> dict[str, Any]:
    rng = np.random.default_rng(0)
    daily = rng.normal(0.0, 0.003, size=PBO_SHAPE)
    blocks = load_config(None).selection.pbo_blocks
    with threadpool_limits(1):
        probability_of_backtest_overfitting(daily[:, :100], n_blocks=blocks)  # warm-up
        seconds = []
        for _ in range(PBO_REPEATS):
            started = time.perf_counter()
            result = probability_of_backtest_overfitting(daily, n_blocks=blocks)
            seconds.append(time.perf_counter() - started)
    return {
        "shape": list(PBO_SHAPE),
        "n_blocks": blocks,
        "n_splits": result.n_splits,
        "seconds": _summary(seconds),
    }


# ----------------------------------------------------------------------------- report


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import sklearn
    import sqlalchemy
    import xgboost

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "load_average_at_start": _load(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scikit-learn": sklearn.__version__,
        "xgboost": xgboost.__version__,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
    }


def _code_state() -> dict[str, Any]:
    """Which forexgrid this process imported; the checkout's commit and edited files."""
    import forexgrid

    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip()

    if not Path(forexgrid.__file__).resolve().is_relative_to(CODE):
        raise RuntimeError(f"imported {forexgrid.__file__}, not the code under {CODE}")
    return {
        "new_code": str(CODE),
        "new_code_is_working_tree": CODE == ROOT,
        "forexgrid_file": forexgrid.__file__,
        "checkout_head": git("rev-parse", "--short", "HEAD"),
        "checkout_uncommitted_forexgrid_files": git(
            "status", "--porcelain", "--", "forexgrid"
        ).splitlines(),
    }


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def _print_phase2(part: dict[str, Any]) -> None:
    files = part["forexgrid_file"]
    print(f"phase 2, old ({files['old']}) vs new ({files['new']}), {part['repeats']} repeats")
    for label, fig in part["configs"].items():
        old, new, ratio = fig["old"], fig["new"], fig["ratio_new_over_old"]
        print(
            f"  {label:<20} old best {old['phase2']['best']:.3f} median "
            f"{old['phase2']['median']:.3f} s ({old['eval_bars']} bars); new best "
            f"{new['phase2']['best']:.3f} median {new['phase2']['median']:.3f} s "
            f"({new['eval_bars']} bars); new/old {ratio['value']:.3f} (median "
            f"{ratio['median_value']:.3f}, paired {ratio['paired_median_value']:.3f}) "
            f"target {ratio['target']} {ratio['verdict']}"
        )


def _print_runner(part: dict[str, Any], pbo: dict[str, Any]) -> None:
    print("runner per configuration, ms: median (best) over the block's configurations")
    for name, fig in part["blocks"].items():
        ms = {k: (v["median"] * 1e3, v["best"] * 1e3) for k, v in fig.items() if "best" in v}
        print(
            f"  {name:<9} _apply wall {ms['apply'][0]:5.1f} ({ms['apply'][1]:5.1f}) cpu "
            f"{ms['apply_cpu'][0]:5.1f} ({ms['apply_cpu'][1]:5.1f}); wall - phases "
            f"{ms['wall_minus_phases'][0]:5.1f} ({ms['wall_minus_phases'][1]:5.1f}); cpu "
            f"outside _evaluate {ms['cpu_outside_evaluate'][0]:5.1f} "
            f"({ms['cpu_outside_evaluate'][1]:5.1f}); _evaluate - phases "
            f"{ms['evaluate_minus_phases'][0]:4.1f}; phase 2 {ms['phase2'][0]:5.1f} "
            f"({ms['phase2'][1]:5.1f}); _apply / phase 2 {fig['apply_per_phase2']['median']:.3f}, "
            f"(wall - phases) / phase 2 {fig['wall_minus_phases_per_phase2']['median']:.3f}"
        )
        parts = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in fig["parts_median"].items())
        print(f"            parts: {parts}")
    for name, check in part["checks"].items():
        print(
            f"  {name:<52} median {check['value']:.3f} (best {check['best_value']:.3f}) "
            f"target {check['target']} {check['verdict']}"
        )
    for i, got in enumerate(part["rounds"]):
        for queue in ("queue_128", "queue_16_after"):
            q = got[queue]
            (update,) = q["update_pbo"]
            parts = update["parts"]
            trials = {v["trials"] for v in update["scopes"].values()}
            tables = q["table_bytes"] or {}
            biggest = ", ".join(f"{k} {v / 2**20:.1f}" for k, v in list(tables.items())[:4])
            print(
                f"  round {i} {queue:<15} wall {q['wall']:.1f} s, database "
                f"{q['database_bytes'] / 2**20:.1f} MiB ({biggest}); update_pbo "
                f"{update['seconds']:.2f} s "
                f"(read {parts.get('scope_returns', 0.0):.2f} s, PBO "
                f"{parts.get('pbo', 0.0):.2f} s) over {len(update['scopes'])} scopes of "
                f"{'/'.join(map(str, sorted(trials)))} trials (distinct: "
                f"{', '.join(map(str, q['scope_distinct_trials'].values()))})"
            )
    print(
        f"  PBO alone on {tuple(pbo['shape'])}, {pbo['n_blocks']} blocks: best "
        f"{pbo['seconds']['best']:.2f} s, median {pbo['seconds']['median']:.2f} s"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15, help="phase-2 rounds (old and new)")
    parser.add_argument("--rounds", type=int, default=3, help="runner rounds (fresh workspaces)")
    parser.add_argument("--only", choices=("phase2", "runner"), help="run one part only")
    parser.add_argument("--old-commit", default=OLD_COMMIT, help="the code phase 2 is compared to")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON file written")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="only print cProfile stages of phase 2, old and new code; write nothing",
    )
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        parser.error(f"--repeats and --rounds must be >= 1, got {args.repeats}, {args.rounds}")
    if args.profile:
        _profile(args.old_commit, PROFILE_REPEATS)
        return 0
    command = shlex.join([".venv/bin/python", "benchmarks/bench_trials.py", *sys.argv[1:]])
    if os.environ.get("FOREXGRID_BENCH_CODE"):
        command = f"FOREXGRID_BENCH_CODE={shlex.quote(str(CODE))} {command}"
    report: dict[str, Any] = {
        "benchmark": "trials",
        "command": command,
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "code": {**_code_state(), "old_commit": args.old_commit},
        "phase2_configs": [list(c) for c in PHASE2_CONFIGS],
        "runner_grid": RUNNER_GRID,
        "after_grid": AFTER_GRID,
    }
    judged = []
    if args.only in (None, "phase2"):
        report["phase2"] = _phase2_part(args.repeats, args.old_commit)
        report["phase2"]["repeats"] = args.repeats
        _print_phase2(report["phase2"])
        configs = report["phase2"]["configs"].values()
        judged += [c["ratio_new_over_old"]["verdict"] for c in configs]
    if args.only in (None, "runner"):
        report["runner"] = _runner_part(args.rounds)
        report["pbo_alone"] = _pbo_alone()
        _print_runner(report["runner"], report["pbo_alone"])
        judged += [
            c["verdict"] for c in report["runner"]["checks"].values() if c["verdict"] != "-"
        ]
    report["machine"]["load_average_at_end"] = _load()
    report["machine"]["thread_pools"] = [
        f"{pool['internal_api']} {pool.get('version') or ''} {pool['num_threads']} thread(s)"
        for pool in threadpool_info()
    ]
    m = report["machine"]
    print(
        f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_average_at_start']} at start, "
        f"{m['load_average_at_end']} at end"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2, default=str) + "\n")
    tmp.replace(args.output)
    shown = args.output.relative_to(ROOT) if args.output.is_relative_to(ROOT) else args.output
    print(f"wrote {shown}")
    return 0 if all(v == "PASS" for v in judged) else 1


if __name__ == "__main__":
    sys.exit(main())
