"""Fit time of each model type's defaults on 3,000 rows x 150 features, on one core.

Run from the project root::

    .venv/bin/python benchmarks/bench_models.py

DESIGN.md sizes the defaults "so one fit on ~3,000 rows takes seconds"; the aim is about a
second. Each model is fitted ``REPEATS`` times on the same random data (returns-scale target)
after one untimed warm-up fit; the best and the median are printed and written to
``benchmarks/results/models.json`` with the machine and versions.
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from datetime import datetime, timezone  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from forexgrid.config import MODEL_TYPES  # noqa: E402
from forexgrid.core.models import make_model  # noqa: E402

REPEATS = 3
TARGET_SECONDS = 1.5
OUTPUT = Path(__file__).parent / "results" / "models.json"


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> int:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3000, 150))
    y = 1e-3 * (0.1 * x[:, 0] + rng.normal(size=3000))
    rows = {}
    for model_type in MODEL_TYPES:
        make_model(model_type).fit(x, y)  # warm-up: imports, hyperparameter checks
        times = []
        for _ in range(REPEATS):
            model = make_model(model_type)
            start = time.perf_counter()
            model.fit(x, y)
            times.append(time.perf_counter() - start)
        rows[model_type] = {"best_s": min(times), "median_s": statistics.median(times)}
        best, median = min(times), statistics.median(times)
        flag = "ok" if best <= TARGET_SECONDS else "SLOW"
        print(f"{model_type:<18} best {best:6.3f} s  median {median:6.3f} s  {flag}")
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_text(
        json.dumps(
            {
                "command": "python benchmarks/bench_models.py",
                "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "machine": {"cpu": _cpu(), "cores": os.cpu_count(), "load": os.getloadavg()},
                "python": sys.version.split()[0],
                "rows": 3000,
                "features": 150,
                "repeats": REPEATS,
                "fit_seconds": rows,
            },
            indent=2,
        )
        + "\n"
    )
    return 0 if all(r["best_s"] <= TARGET_SECONDS for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
