"""The charts in a real Jupyter kernel: shown inline once, with or without ``%matplotlib inline``.

A fresh ``python3`` kernel is started with nbclient on a tiny notebook. Its environment is the
test's, with this checkout first on PYTHONPATH (so the kernel imports the code under test),
without MPLBACKEND (ipykernel then picks the inline backend itself, as for a user) and with an
empty IPYTHONDIR (no profile or startup file of this machine changes what a cell shows).
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"

# A hand-made best-models table: two symbols, a negative Sharpe, an empty regime.
SETUP = """\
import pandas as pd
import forexgrid.charts

def entry(symbol, regime, sharpe, win_rate, trades):
    return dict(symbol=symbol, regime=regime, rank=1, has_best=True, val_sharpe=1.5,
                test_sharpe=sharpe, test_max_drawdown=0.08, test_win_rate=win_rate,
                test_trades=trades, dsr=0.7)

table = pd.DataFrame([
    entry("EURUSD", "bull_trending", 1.4, 0.61, 37),
    entry("EURUSD", "bear_trending", -0.6, 0.42, 12),
    dict(symbol="EURUSD", regime="calm_ranging", has_best=False),
    entry("GBPUSD", "bull_trending", 0.8, 0.55, 20),
])"""

CELLS = {
    "fresh": "forexgrid.charts.performance_figure(table)",
    "single": "forexgrid.charts.sharpe_chart(table)",
    "assigned": "fig = forexgrid.charts.performance_figure(table)\nfig",
    "savefig": "fig.savefig(OUT)",
    "inline": "%matplotlib inline\nforexgrid.charts.radar_chart(table)",
    "pyplot": "import matplotlib.pyplot as plt\nforexgrid.charts.performance_figure(table)",
    "registry": "len(plt.get_fignums())",
}


def run_notebook(tmp_path: Path) -> dict[str, list]:
    out = tmp_path / "x.png"
    cells = [SETUP, f"OUT = {str(out)!r}", *CELLS.values()]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("MPLBACKEND", None)
    env["IPYTHONDIR"] = str(tmp_path / "ipython")
    client = NotebookClient(
        nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute(env=env)
    return {name: cell.outputs for name, cell in zip(CELLS, nb.cells[2:], strict=True)}


def count(outputs: list, mime: str) -> int:
    return sum(mime in o.get("data", {}) for o in outputs)


def test_charts_display_inline_once_in_a_fresh_kernel(tmp_path):
    outputs = run_notebook(tmp_path)
    for name in ("fresh", "single", "assigned", "inline", "pyplot"):
        assert count(outputs[name], "image/png") == 1, (name, outputs[name])
        assert not [o for o in outputs[name] if o.output_type in ("error", "stream")], name
    assert outputs["savefig"] == []
    assert (tmp_path / "x.png").read_bytes().startswith(PNG)
    # No figure was created through pyplot, so nothing accumulates in its registry.
    (registry,) = outputs["registry"]
    assert registry["data"]["text/plain"] == "0"
