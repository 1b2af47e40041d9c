"""execution.max_grid_size wherever a grid becomes a queue: runner.create_queue and
`forexgrid run` (storage.queues.create_queue and GridSpec are in their own modules' tests)."""

from __future__ import annotations

import re

import pytest
import yaml
from click.testing import CliRunner

from forexgrid import runner
from forexgrid.cli import cli
from forexgrid.config import load_config
from forexgrid.data.store import DataStore
from forexgrid.exceptions import ConfigError, GridSizeError
from forexgrid.grid import GridSpec

GRID = {
    "model_types": ["ridge", "lasso"],
    "symbols": ["EURUSD"],
    "timeframes": ["1h", "4h"],
    "days_history": [30, 60],
    "horizons": [1, 3],
}
ARITHMETIC = (
    "grid has 2 models x 1 symbol x 2 timeframes x 2 days x 2 horizons = 16 configurations; "
    "execution.max_grid_size is 15: shrink the grid or raise the limit"
)


@pytest.fixture(autouse=True)
def _no_user_environment(monkeypatch):
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
        monkeypatch.delenv(name, raising=False)


def _settings(tmp_path, **execution):
    return load_config(
        {"logging": {"log_to_file": False}, "execution": execution}, workspace=tmp_path
    )


def test_max_grid_size_setting():
    assert load_config(None).execution.max_grid_size == 100_000
    assert load_config({"execution": {"max_grid_size": 7}}).execution.max_grid_size == 7
    for bad in (0, 100_000_001, "100", 1.5):
        with pytest.raises(ConfigError, match=re.escape("execution.max_grid_size")):
            load_config({"execution": {"max_grid_size": bad}})


def test_runner_refuses_a_large_grid_before_reading_data(tmp_path):
    # GBPUSD has no data: a grid that is too large must say so, not that the data is missing.
    spec = GridSpec(**{**GRID, "symbols": ["EURUSD", "GBPUSD"]})
    with pytest.raises(GridSizeError, match=re.escape("= 32 configurations; execution.max_")):
        runner.create_queue(spec, _settings(tmp_path, max_grid_size=31))
    assert not (tmp_path / "forexgrid.db").exists()


def test_runner_reads_each_symbol_and_timeframe_once(tmp_path, monkeypatch):
    loaded = []
    original = DataStore.load_bars

    def load_bars(self, symbol, timeframe):
        loaded.append((symbol, timeframe))
        return original(self, symbol, timeframe)

    monkeypatch.setattr(DataStore, "load_bars", load_bars)
    spec = GridSpec(**{**GRID, "timeframes": ["1h", "H1", "4h"]})
    queue = runner.create_queue(spec, _settings(tmp_path, max_grid_size=16))
    assert queue.total == 16
    assert loaded == [("EURUSD", "1h"), ("EURUSD", "4h")]
    with pytest.raises(GridSizeError, match=re.escape("= 24 configurations (8 duplicates re")):
        runner.create_queue(spec, _settings(tmp_path, max_grid_size=15))


def test_run_command_refuses_a_large_grid_in_one_line(tmp_path):
    config = tmp_path / "grid.yaml"
    config.write_text(yaml.safe_dump({"grid": GRID, "execution": {"max_grid_size": 15}}))
    result = CliRunner().invoke(cli, ["--workspace", str(tmp_path), "run", str(config)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == f"error: {ARITHMETIC}\n"
    assert not (tmp_path / "forexgrid.db").exists()
    # Flags that shrink the grid make it fit.
    fits = CliRunner().invoke(
        cli,
        ["--workspace", str(tmp_path), "run", str(config), "--models", "ridge", "--days", "30"],
    )
    assert fits.exit_code == 0, fits.output
    assert fits.stdout.splitlines()[0].endswith("= 4 configurations")
