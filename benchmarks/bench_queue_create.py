"""Queue-creation benchmark: 100,000 configurations into a queue, time, peak memory, database.

Run from the project root::

    .venv/bin/python benchmarks/bench_queue_create.py   # about 3 min; results/queue_create.json
    .venv/bin/python benchmarks/bench_queue_create.py --repeats 1 --no-large-queue
    .venv/bin/python benchmarks/bench_queue_create.py --old-commit 3d9e227   # also the code before
    .venv/bin/python benchmarks/bench_queue_create.py --checkpoint-only --repeats 2 \
        --old-commit 5b8fbec   # about 3 min; results/queue_checkpoint.json

What is timed, each in a fresh child interpreter of this venv (so that its peak resident
memory, ``ru_maxrss``, is the creation's own) with a fresh workspace (its own SQLite file; no
imported data, so the bundled 2017 EURUSD sample is fingerprinted):

- ``GridSpec(...)`` of ``GRID_100K``: 5 model types (ridge, lasso, elasticnet,
  linear_regression, random_forest) x EURUSD x 1h, 4h x 100 days_history (30..129) x 50
  horizons (1..50) x 2 encoders = 100,000 configurations, and ``runner.create_queue(spec,
  settings)`` with the defaults (``skip_trained`` on, so every chunk is looked up), from the
  call to its return (commit included). Figures: seconds, the child's peak RSS and its RSS
  after the imports, before the grid; the database's bytes per configuration, measured after
  ``PRAGMA wal_checkpoint(TRUNCATE)`` (the write-ahead log folded in) and split per table and
  index (``dbstat``). The same for ``GRID_10K`` (10 days instead of 100) to show the
  database grows in proportion.
- The limit: ``runner.create_queue`` of a 960,000,000-configuration grid, which must raise
  ``GridSizeError`` before anything is built.
- With the 100,000-run queue in place (``--no-large-queue`` skips this; informational, no
  targets): ``forexgrid queues`` and ``forexgrid status`` (in-process ``forexgrid.cli.main``),
  ``storage.runs.pending_runs`` (what the runner reads when it claims the queue),
  and the checkpoint the runner writes every ``queue.auto_checkpoint_interval``
  configurations (``storage.snapshots.queue_snapshot_stream`` streamed by
  ``checkpoints.write_checkpoint``; code without ``queue_snapshot_stream``, from before
  streaming, builds ``queue_snapshot`` whole and then writes it), each in its own child.
- ``--checkpoint-only``: just that checkpoint, ``--repeats`` times with this checkout and
  with ``--old-commit`` (alternated, each in a fresh child: seconds, peak RSS as VmHWM, file
  size), on one 100,000-run queue; writes ``benchmarks/results/queue_checkpoint.json``.

Targets (issue 10, item 7): 100,000 configurations in <= ``TARGET_SECONDS`` s and <=
``TARGET_RSS_MB`` MB peak RSS (best of ``--repeats``), bytes per configuration at 100,000
within ``PROPORTIONAL`` of those at 10,000, and the limit refusing a huge grid in
<= ``TARGET_REFUSE_SECONDS`` s.

``--old-commit REV`` extracts that commit's ``forexgrid`` package with ``git archive`` into a
temporary directory and times its creation of the same grids once, for comparison (the code
before streaming, 3d9e227, builds every configuration up front: about 45 s and 590 MB here).

Writes ``benchmarks/results/queue_create.json`` (machine, load averages, command, code state,
figures); prints PASS/FAIL per target and exits 1 if one fails.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shlex
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "queue_create.json"
CHECKPOINT_RESULTS = ROOT / "benchmarks" / "results" / "queue_checkpoint.json"
CODE_ENV = "FOREXGRID_BENCH_CODE"

MODELS = ["ridge", "lasso", "elasticnet", "linear_regression", "random_forest"]
GRID_100K = dict(
    model_types=MODELS,
    symbols=["EURUSD"],
    timeframes=["1h", "4h"],
    days_history=list(range(30, 130)),
    horizons=list(range(1, 51)),
    encoders=["time_delta", "normalized"],
)
GRID_10K = {**GRID_100K, "days_history": list(range(30, 40))}
# 4 x 10 x 4 x 1,000 x 1,000 x 3 x 2 raw = 960,000,000 configurations.
GRID_HUGE = dict(
    model_types=MODELS[:4],
    symbols=[f"PAIR{i}" for i in range(10)],
    timeframes=["15m", "1h", "4h", "1d"],
    days_history=list(range(1, 1001)),
    horizons=list(range(1, 1001)),
    encoders=["time_delta", "absolute", "normalized"],
    indicator_timeframes=[[], ["1d"]],
)
GRIDS = {"100k": GRID_100K, "10k": GRID_10K, "huge": GRID_HUGE}

TARGET_SECONDS = 30.0
TARGET_RSS_MB = 500.0
TARGET_REFUSE_SECONDS = 1.0
PROPORTIONAL = 0.10  # bytes per configuration at 100k vs 10k: within 10%


# ----------------------------------------------------------------------------- child


def _rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _vmhwm_mb() -> float | None:
    """The process's peak resident memory as the kernel counts it (VmHWM), or None."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return None


def _child(mode: str, workspace: Path, grid: str) -> dict[str, Any]:
    """One measurement in this (fresh) interpreter; the result as a dict."""
    code = Path(os.environ.get(CODE_ENV) or ROOT)
    sys.path.insert(0, str(code))
    import forexgrid
    from forexgrid import runner, storage
    from forexgrid.config import load_config
    from forexgrid.exceptions import ForexgridError
    from forexgrid.grid import GridSpec
    from forexgrid.storage import checkpoints

    settings = load_config({"logging": {"log_to_file": False}}, workspace=workspace)
    out: dict[str, Any] = {"forexgrid_file": forexgrid.__file__, "rss_after_imports_mb": 0.0}
    if mode == "create":
        import forexgrid.cli  # noqa: F401 - the same imports as `forexgrid run`
        import forexgrid.storage.database  # noqa: F401

        out["rss_after_imports_mb"] = _rss_mb()
        started = time.perf_counter()
        try:
            spec = GridSpec(**GRIDS[grid])
            built = time.perf_counter()
            queue = runner.create_queue(spec, settings)
            out.update(total=queue.total_configs, spec_seconds=built - started)
        except ForexgridError as err:
            out.update(error=f"{type(err).__name__}: {err}")
        out["seconds"] = time.perf_counter() - started
    elif mode in ("queues", "status"):
        from forexgrid.cli import main

        out["rss_after_imports_mb"] = _rss_mb()
        started = time.perf_counter()
        with contextlib.redirect_stdout(open(os.devnull, "w")), contextlib.suppress(SystemExit):
            main(["--workspace", str(workspace), mode])
        out["seconds"] = time.perf_counter() - started
    elif mode == "pending":
        out["rss_after_imports_mb"] = _rss_mb()
        started = time.perf_counter()
        with storage.session_scope(settings) as session:
            out["runs"] = len(storage.runs.pending_runs(session, 1))
        out["seconds"] = time.perf_counter() - started
    elif mode == "snapshot":
        # What the runner's checkpoint does: streamed where the code has
        # queue_snapshot_stream, else (before) the whole snapshot built, then dumped.
        stream = getattr(storage.snapshots, "queue_snapshot_stream", None)
        out["streamed"] = stream is not None
        out["rss_after_imports_mb"] = _rss_mb()
        started = time.perf_counter()
        with tempfile.TemporaryDirectory() as folder:
            with storage.session_scope(settings) as session:
                if stream is None:
                    snapshot = storage.snapshots.queue_snapshot(session, 1)
                    out["snapshot_seconds"] = time.perf_counter() - started
                else:
                    path = checkpoints.write_checkpoint(folder, 1, stream(session, 1))
            if stream is None:
                path = checkpoints.write_checkpoint(folder, 1, snapshot)
            out["file_bytes"] = path.stat().st_size
        out["seconds"] = time.perf_counter() - started
    else:
        raise SystemExit(f"unknown child mode {mode!r}")
    out["rss_peak_mb"] = _rss_mb()
    out["vmhwm_mb"] = _vmhwm_mb()
    return out


def _run_child(mode: str, workspace: Path, grid: str = "100k", code: Path | None = None):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    env.pop("PYTHONPATH", None)
    env[CODE_ENV] = str(code or ROOT)
    command = [sys.executable, __file__, "--child", mode, "--workspace", str(workspace)]
    done = subprocess.run(
        [*command, "--grid", grid], env=env, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise RuntimeError(f"child {mode} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- parent


def _database_bytes(path: Path) -> dict[str, Any]:
    """Size of the SQLite file with the write-ahead log folded in, and per table/index."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        parts: dict[str, int] = {}
        with contextlib.suppress(sqlite3.OperationalError):  # dbstat not compiled in
            parts = dict(
                conn.execute(
                    "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
                ).fetchall()
            )
    return {"file_bytes": path.stat().st_size, "by_object": parts}


def _create(grid: str, code: Path | None = None) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench_queue_create_") as tmp:
        result = _run_child("create", Path(tmp), grid, code)
        db = Path(tmp) / "forexgrid.db"
        if db.exists():
            result["database"] = _database_bytes(db)
            if result.get("total"):
                result["bytes_per_configuration"] = (
                    result["database"]["file_bytes"] / result["total"]
                )
    return result


def _large_queue(codes: dict[str, Path]) -> dict[str, Any]:
    """The queue commands and runner reads on one 100,000-run queue, with each code."""
    out: dict[str, Any] = {name: {} for name in codes}
    with tempfile.TemporaryDirectory(prefix="bench_queue_create_") as tmp:
        workspace = Path(tmp)
        _run_child("create", workspace)
        for mode in ("queues", "status", "pending", "snapshot"):
            for name, code in codes.items():
                r = out[name][mode] = _run_child(mode, workspace, code=code)
                extra = f", file {r['file_bytes'] / 1e6:.0f} MB" if "file_bytes" in r else ""
                print(
                    f"  {name:<4} {mode:<9} {r['seconds']:6.1f} s, peak RSS "
                    f"{r['rss_peak_mb']:5.0f} MB (after imports {r['rss_after_imports_mb']:.0f} "
                    f"MB){extra}"
                )
    return out


def _checkpoints(codes: dict[str, Path], repeats: int) -> dict[str, Any]:
    """The checkpoint of one 100,000-run queue (created by this checkout), with each code."""
    out: dict[str, Any] = {name: [] for name in codes}
    with tempfile.TemporaryDirectory(prefix="bench_queue_create_") as tmp:
        workspace = Path(tmp)
        _run_child("create", workspace)
        for i in range(repeats):
            for name, code in codes.items():  # alternated: a change of load hits both
                r = _run_child("snapshot", workspace, code=code)
                out[name].append(r)
                print(
                    f"  #{i + 1} {name:<4} checkpoint {r['seconds']:6.1f} s, peak RSS (VmHWM) "
                    f"{r['vmhwm_mb']:5.0f} MB (after imports {r['rss_after_imports_mb']:.0f} "
                    f"MB), file {r['file_bytes'] / 1e6:.1f} MB, streamed {r['streamed']}"
                )
    return out


def _header(argv: list[str] | None, load_start: list[float], load_end: list[float]) -> dict:
    """What every results file of this script records first: command, date, machine, load."""
    return {
        "command": "python benchmarks/bench_queue_create.py "
        + shlex.join(argv if argv is not None else sys.argv[1:]),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            **_machine(),
            "load_average_at_start": load_start,
            "load_average_at_end": load_end,
        },
    }


def _checkpoint_main(args: argparse.Namespace, argv: list[str] | None) -> int:
    load_start = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {load_start}")
    with tempfile.TemporaryDirectory(prefix="bench_queue_old_") as folder:
        codes = {"new": ROOT}
        if args.old_commit:
            codes["old"] = _old_code(args.old_commit, Path(folder))
        results = _checkpoints(codes, args.repeats)
    load_end = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {load_end}")
    document = {
        **_header(argv, load_start, load_end),
        "code": {
            "checkout_head": _git("rev-parse", "--short", "HEAD"),
            "old_commit": _git("rev-parse", "--short", args.old_commit) if args.old_commit else "",
        },
        "grid": GRID_100K,
        "checkpoint_100k": results,
    }
    CHECKPOINT_RESULTS.parent.mkdir(parents=True, exist_ok=True)
    CHECKPOINT_RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {CHECKPOINT_RESULTS.relative_to(ROOT)}")
    return 0


def _old_code(revision: str, folder: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", revision, "forexgrid"],
        capture_output=True,
        check=True,
    )
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive.stdout, check=True)
    return folder


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    import sqlalchemy

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "sqlalchemy": sqlalchemy.__version__,
        "platform": platform.platform(),
    }


def _git(*args: str) -> str:
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
    return done.stdout.strip()


def _verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="creations of 100,000 timed")
    parser.add_argument("--old-commit", default="", help="also time this commit's code once")
    parser.add_argument("--no-large-queue", action="store_true", help="skip queues/status/...")
    parser.add_argument(
        "--checkpoint-only",
        action="store_true",
        help="only the checkpoint of a 100,000-run queue, --repeats times per code",
    )
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--grid", default="100k", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.workspace, args.grid)))
        return 0
    if args.checkpoint_only:
        return _checkpoint_main(args, argv)

    load_start = [round(x, 2) for x in os.getloadavg()]
    print(f"load average {load_start}")
    runs = []
    for i in range(args.repeats):
        runs.append(_create("100k"))
        r = runs[-1]
        print(
            f"100,000 configurations #{i + 1}: {r['seconds']:.1f} s (GridSpec "
            f"{r['spec_seconds']:.3f} s), peak RSS {r['rss_peak_mb']:.0f} MB (after imports "
            f"{r['rss_after_imports_mb']:.0f} MB), {r['bytes_per_configuration']:.0f} B/config"
        )
    small = _create("10k")
    print(
        f"10,000 configurations: {small['seconds']:.1f} s, peak RSS {small['rss_peak_mb']:.0f} "
        f"MB, {small['bytes_per_configuration']:.0f} B/config"
    )
    huge = _create("huge")
    print(f"960,000,000-configuration grid: {huge['seconds']:.3f} s: {huge.get('error')}")
    old: dict[str, Any] = {}
    large: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench_queue_old_") as folder:
        codes = {"new": ROOT}
        if args.old_commit:
            codes["old"] = _old_code(args.old_commit, Path(folder))
            old = {"commit": args.old_commit, "100k": _create("100k", codes["old"])}
            o = old["100k"]
            print(
                f"old {args.old_commit}: 100,000 configurations {o['seconds']:.1f} s (GridSpec "
                f"{o['spec_seconds']:.1f} s), peak RSS {o['rss_peak_mb']:.0f} MB, "
                f"{o['bytes_per_configuration']:.0f} B/config"
            )
        if not args.no_large_queue:
            print("A 100,000-run queue (created by the new code):")
            large = _large_queue(codes)
    load_end = [round(x, 2) for x in os.getloadavg()]

    best_seconds = min(r["seconds"] for r in runs)
    best_rss = min(r["rss_peak_mb"] for r in runs)
    per_config = statistics.median(r["bytes_per_configuration"] for r in runs)
    drift = abs(per_config / small["bytes_per_configuration"] - 1)
    refused = huge.get("error", "").startswith("GridSizeError") and "total" not in huge
    targets = {
        "seconds": (best_seconds, best_seconds <= TARGET_SECONDS),
        "rss_mb": (best_rss, best_rss <= TARGET_RSS_MB),
        "proportional": (drift, drift <= PROPORTIONAL),
        "refuse_seconds": (huge["seconds"], refused and huge["seconds"] <= TARGET_REFUSE_SECONDS),
    }
    print(
        f"{_verdict(targets['seconds'][1])}: 100,000 configurations in {best_seconds:.1f} s "
        f"(target <= {TARGET_SECONDS:.0f} s; median "
        f"{statistics.median(r['seconds'] for r in runs):.1f} s)"
    )
    print(
        f"{_verdict(targets['rss_mb'][1])}: peak RSS {best_rss:.0f} MB (target <= "
        f"{TARGET_RSS_MB:.0f} MB)"
    )
    print(
        f"{_verdict(targets['proportional'][1])}: {per_config:.0f} B/config at 100,000 vs "
        f"{small['bytes_per_configuration']:.0f} at 10,000 ({drift:.1%}, target <= "
        f"{PROPORTIONAL:.0%})"
    )
    print(
        f"{_verdict(targets['refuse_seconds'][1])}: a 960,000,000-configuration grid refused "
        f"in {huge['seconds']:.3f} s (target <= {TARGET_REFUSE_SECONDS} s)"
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {
        **_header(argv, load_start, load_end),
        "code": {
            "checkout_head": _git("rev-parse", "--short", "HEAD"),
            "uncommitted_forexgrid_files": _git("status", "--porcelain", "forexgrid").split("\n")
            if _git("status", "--porcelain", "forexgrid")
            else [],
        },
        "grids": {name: {k: v for k, v in g.items()} for name, g in GRIDS.items()},
        "create_100k": runs,
        "create_10k": small,
        "refuse_huge": huge,
        "old": old,
        "large_queue": large,
        "targets": {
            name: {"measured": value, "pass": ok} for name, (value, ok) in targets.items()
        },
    }
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if all(ok for _, ok in targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
