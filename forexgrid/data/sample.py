"""The bundled real market-data sample: EURUSD hourly ask bars of 2017 (Dukascopy format).

The file is ``FOREX_EURUSD_1H_ASK.csv`` from the MIT-licensed PyPI package gym-anytrading
2.0.0, shipped unchanged as package data with its licence in ``samples/NOTICE.txt``
(:func:`sample_notice`). It is real data, small enough to ship, and the reference input of
the project's tests and example notebooks.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

import pandas as pd

from forexgrid.data.timeframes import TIMEFRAMES, normalize_timeframe, resample, timeframe_delta
from forexgrid.exceptions import DataError, quote_input

__all__ = ["SAMPLES", "SAMPLE_SOURCE", "load_sample", "sample_notice"]

logger = logging.getLogger(__name__)

SAMPLES: Mapping[str, tuple[str, str]] = MappingProxyType(
    {"EURUSD": ("EURUSD_1h_2017_dukascopy.csv", "1h")}
)
"""Bundled samples: symbol -> (file name in ``forexgrid/data/samples``, native timeframe)."""

SAMPLE_SOURCE = (
    "EURUSD 1h ask bars of 2017 (Dukascopy CSV), from the PyPI package gym-anytrading 2.0.0, "
    "MIT License; see forexgrid.data.sample_notice()"
)
"""One-line attribution of the bundled sample."""

_PACKAGE = "forexgrid.data"
_FOLDER = "samples"


def sample_notice() -> str:
    """Return the text of ``samples/NOTICE.txt``: the sample's origin and its MIT licence.

    Returns
    -------
    str

    Raises
    ------
    DataError
        If the notice is missing from the installation.
    """
    try:
        return resources.files(_PACKAGE).joinpath(_FOLDER, "NOTICE.txt").read_text("utf-8")
    except OSError as err:
        raise DataError(
            f"the bundled sample's NOTICE.txt is missing from the installation ({err}); "
            "reinstall forexgrid"
        ) from err


@functools.lru_cache(maxsize=8)  # one entry per bundled file
def _read_sample(file_name: str) -> pd.DataFrame:
    # Imported here so that a broken reader module cannot break `import forexgrid.data.sample`
    # for code that only wants SAMPLES or the notice.
    from forexgrid.data._formats import read_bars

    resource = resources.files(_PACKAGE).joinpath(_FOLDER, file_name)
    # as_file gives a real path even when the package is installed zipped.
    with resources.as_file(resource) as path:
        if not path.is_file():
            raise DataError(
                f"bundled sample {file_name} is missing from the installation ({path}); "
                "reinstall forexgrid"
            )
        bars = read_bars(path, format="dukascopy")
    logger.debug("read bundled sample %s: %d bars", file_name, len(bars))
    return bars


def load_sample(symbol: str = "EURUSD", timeframe: str = "1h") -> pd.DataFrame:
    """Return the bundled real sample as Bars, resampled to ``timeframe`` if coarser.

    Parameters
    ----------
    symbol : str
        A symbol in :data:`SAMPLES` (case-insensitive); only ``EURUSD`` is bundled.
    timeframe : str
        ``1h`` (native: 6,225 bars from 2017-01-01 22:00 to 2017-12-29 21:00 UTC) or a
        coarser timeframe (``4h``, ``1d``, or an alias).

    Returns
    -------
    pandas.DataFrame
        A fresh copy each call; mutating it does not affect later calls.

    Raises
    ------
    DataError
        If the symbol has no bundled sample, the timeframe is unknown or finer than the
        sample's, or the sample file is missing.
    """
    key = symbol.upper() if isinstance(symbol, str) else symbol
    if key not in SAMPLES:
        raise DataError(
            f"no bundled sample for symbol {quote_input(symbol)}; available samples: "
            f"{', '.join(f'{s} {tf}' for s, (_, tf) in SAMPLES.items())}"
        )
    file_name, native = SAMPLES[key]
    target = normalize_timeframe(timeframe)
    if timeframe_delta(target) < timeframe_delta(native):
        coarser = [tf for tf in TIMEFRAMES if timeframe_delta(tf) >= timeframe_delta(native)]
        raise DataError(
            f"the bundled {key} sample has {native} bars and cannot give {target} bars; "
            f"use one of {', '.join(coarser)}"
        )
    bars = _read_sample(file_name)
    if target == native:
        return bars.copy()
    return resample(bars, target)
