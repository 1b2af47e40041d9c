"""Market data: reading, validating, resampling and storing bars; the bundled real sample;
the synthetic regime-switching generator.

Every function returns or accepts *Bars*: a DataFrame with a tz-aware UTC DatetimeIndex,
strictly increasing, and float64 columns ``open high low close volume``.
"""

from __future__ import annotations

from forexgrid.data._formats import FORMATS, detect_format, read_bars
from forexgrid.data._validate import validate_bars
from forexgrid.data.sample import SAMPLES, load_sample, sample_notice
from forexgrid.data.store import DataStore, ImportSummary, load_bars, validate_symbol
from forexgrid.data.synthetic import bars_from_log_returns, synthetic_bars
from forexgrid.data.timeframes import (
    TIMEFRAMES,
    TRAINABLE_TIMEFRAMES,
    bar_end_times,
    bars_per_year,
    infer_timeframe,
    normalize_timeframe,
    resample,
    timeframe_delta,
    trading_date_open,
    trading_dates,
)

__all__ = [
    "FORMATS",
    "SAMPLES",
    "TIMEFRAMES",
    "TRAINABLE_TIMEFRAMES",
    "DataStore",
    "ImportSummary",
    "bar_end_times",
    "bars_from_log_returns",
    "bars_per_year",
    "detect_format",
    "infer_timeframe",
    "load_bars",
    "load_sample",
    "normalize_timeframe",
    "read_bars",
    "resample",
    "sample_notice",
    "synthetic_bars",
    "timeframe_delta",
    "trading_date_open",
    "trading_dates",
    "validate_bars",
    "validate_symbol",
]
