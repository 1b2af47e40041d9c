"""Fixtures shared by the market-data reader tests."""

from __future__ import annotations

from pathlib import Path

import pytest

import forexgrid.data

SAMPLE = Path(forexgrid.data.__file__).parent / "samples" / "EURUSD_1h_2017_dukascopy.csv"


@pytest.fixture(scope="session")
def sample_path() -> Path:
    """The bundled real Dukascopy file (6,225 hourly EURUSD bars of 2017)."""
    return SAMPLE


@pytest.fixture(scope="session")
def sample_lines(sample_path: Path) -> list[str]:
    """The sample's header and first 30 data lines, without line breaks."""
    return sample_path.read_text(encoding="utf-8").splitlines()[:31]
