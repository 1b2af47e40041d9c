"""The PBO at a queue's end, before (every trial scored again) and after (each scope's stored
state absorbs the new runs), on the workspace of ``bench_trials.py``'s runner part.

Run from the project root (about 6 min with 3 rounds)::

    git archive main forexgrid | tar -x -C /tmp/fg_old
    .venv/bin/python benchmarks/bench_pbo_incremental.py --old-code /tmp/fg_old --rounds 3

What is measured, with 1 worker (so ``update_pbo`` scores on one thread) and one BLAS thread:

1. **base**: once, with the old code, a fresh workspace runs ``bench_trials.RUNNER_GRID`` (128
   ridge configurations, 82 combinations each, one validation window): 10,496 trials in each
   of the 5 scopes. Its SQLite file is the starting point of every round.
2. **per round**, old and new in turn (old first in even rounds, new first in odd ones), each
   in a child interpreter with ``PYTHONPATH`` on its code and a copy of the base workspace
   (the new code upgrades the copy to its schema first):

   - ``first``: ``scoring.update_pbo`` over the 5 scopes with no PBO state stored, which is
     what the end of the first queue of a workspace does (new: from scratch, plus digests and
     the state written);
   - ``second``: ``bench_trials.AFTER_GRID`` (16 configurations) run as a second queue; the
     ``scoring.update_pbo`` the runner calls when it stops is timed (new: incremental);
   - ``fresh``: in a new empty workspace, a first queue of the same 16 configurations, its
     ``update_pbo`` timed (1,312 trials per scope).

   The PBO of each scope after the second queue must be the same for both codes.

Writes ``benchmarks/results/pbo_incremental.json`` (machine, load averages, command, every
time) and prints medians and bests.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS"):
    os.environ[_name] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "pbo_incremental.json"


# ----------------------------------------------------------------------------- child


def _child(task: str, workspace: str) -> dict[str, Any]:
    """Run in a child whose ``PYTHONPATH`` is the code measured; returns its figures."""
    # bench_trials imports forexgrid from $FOREXGRID_BENCH_CODE, the code measured.
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_trials import AFTER_GRID, RUNNER_GRID  # grids only: same workspace as there

    import forexgrid
    from forexgrid import runner, scoring, storage
    from forexgrid.config import load_config
    from forexgrid.grid import GridSpec

    timed: list[dict[str, Any]] = []
    original = scoring.update_pbo

    def update_pbo(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        started, cpu = time.perf_counter(), time.process_time()
        results = original(*args, **kwargs)
        timed.append(
            {
                "seconds": time.perf_counter() - started,
                "cpu_seconds": time.process_time() - cpu,
                "load_average_1min": os.getloadavg()[0],
                "scopes": {
                    k.regime: {"pbo": r.pbo, "trials": r.n_trials} for k, r in results.items()
                },
            }
        )
        return results

    scoring.update_pbo = update_pbo  # the runner calls it through the module

    def settings_of(path: str):
        return load_config(
            {"logging": {"log_to_file": False}, "execution": {"workers": 1}}, workspace=path
        )

    def queue(grid: dict, settings) -> None:
        created = runner.create_queue(GridSpec(**grid), settings, skip_trained=False)
        final = runner.run_queue(created.id, settings)
        if final.status != "completed":
            raise RuntimeError(f"queue {created.id}: {final.status}")

    out: dict[str, Any] = {"forexgrid": forexgrid.__file__}
    if task == "base":
        queue(RUNNER_GRID, settings_of(workspace))
        out["base_queue_update_pbo"] = timed[-1]
        return out
    settings = settings_of(workspace)
    storage.database.get_database(settings).upgrade()  # the new code's schema (0004)
    with storage.session_scope(settings) as session:
        table = storage.trials.scope_table(session)
    keys = [
        storage.trials.ScopeKey(
            r.symbol, r.regime, r.rules_version, r.validation_start, r.validation_end
        )
        for r in table.itertuples()
    ]
    scoring.update_pbo(settings, keys)
    out["first"] = timed[-1]
    queue(AFTER_GRID, settings)
    out["second"] = timed[-1]
    if hasattr(storage.trials, "pbo_state"):  # the new code: the stored states' sizes
        with storage.session_scope(settings) as session:
            out["state_bytes"] = {
                key.regime: len(storage.trials.pbo_state(session, key) or b"") for key in keys
            }
    queue(AFTER_GRID, settings_of(workspace + "_fresh"))
    out["fresh"] = timed[-1]
    return out


# ----------------------------------------------------------------------------- parent


def _run_child(code: Path, task: str, workspace: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code), "FOREXGRID_BENCH_CODE": str(code)}
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, __file__, "--child", task, str(workspace)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"{code} {task} failed:\n{done.stderr[-3000:]}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(out["forexgrid"]).resolve().is_relative_to(code.resolve()):
        raise RuntimeError(f"child imported {out['forexgrid']}, not {code}")
    return out


def _summary(values: list[float]) -> dict[str, Any]:
    return {"best": min(values), "median": statistics.median(values), "runs": values}


def _machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "unknown",
    )
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--old-code", type=Path, help="e.g. /tmp/fg_old (required)")
    parser.add_argument("--new-code", type=Path, default=ROOT)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(*args.child)))
        return 0
    if args.old_code is None:
        parser.error("--old-code is required (the code before, extracted with git archive)")

    codes = {"old": args.old_code, "new": args.new_code}
    report: dict[str, Any] = {
        "command": shlex.join([Path(sys.executable).name, *sys.argv]),
        "machine": _machine(),
        "load_average_at_start": os.getloadavg(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "codes": {k: str(v) for k, v in codes.items()},
        "rounds": [],
    }
    with tempfile.TemporaryDirectory(prefix="bench_pbo_incremental_") as tmp:
        base = Path(tmp) / "base"
        report["base"] = _run_child(codes["old"], "base", base)
        seconds = report["base"]["base_queue_update_pbo"]["seconds"]
        print(f"base: 128 configurations, update_pbo {seconds:.2f} s", flush=True)
        for index in range(args.rounds):
            order = ("old", "new") if index % 2 == 0 else ("new", "old")
            got = {}
            for name in order:
                workspace = Path(tmp) / f"r{index}_{name}"
                shutil.copytree(base, workspace)
                got[name] = _run_child(codes[name], "round", workspace)
                shutil.rmtree(workspace)
                shutil.rmtree(str(workspace) + "_fresh", ignore_errors=True)
                print(
                    f"round {index} {name}: first {got[name]['first']['seconds']:.2f} s, "
                    f"second {got[name]['second']['seconds']:.2f} s, "
                    f"fresh {got[name]['fresh']['seconds']:.2f} s "
                    f"(load {got[name]['second']['load_average_1min']:.2f})",
                    flush=True,
                )
            same = {
                regime: got["old"]["second"]["scopes"][regime]["pbo"] == value["pbo"]
                for regime, value in got["new"]["second"]["scopes"].items()
            }
            report["rounds"].append({"order": order, **got, "same_pbo_after_second": same})
    report["load_average_at_end"] = os.getloadavg()
    report["figures"] = {
        f"{step}_{name}": _summary([r[name][step]["seconds"] for r in report["rounds"]])
        for step in ("first", "second", "fresh")
        for name in ("old", "new")
    }
    report["same_pbo"] = all(all(r["same_pbo_after_second"].values()) for r in report["rounds"])
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1, default=str))
    for key, value in report["figures"].items():
        print(f"{key}: best {value['best']:.3f} s, median {value['median']:.3f} s", value["runs"])
    print("same PBO after the second queue, old and new:", report["same_pbo"])
    print("new state bytes per scope:", report["rounds"][-1]["new"].get("state_bytes"))
    print(
        "load average at start / end:",
        report["load_average_at_start"],
        report["load_average_at_end"],
    )
    return 0 if report["same_pbo"] else 1


if __name__ == "__main__":
    sys.exit(main())
