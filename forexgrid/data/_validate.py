"""Validation of raw market data into the Bars contract (see DESIGN.md, "Bars").

Readers hand :func:`validate_bars` a raw frame: a ``time`` column (or a DatetimeIndex), the
price and volume columns as numbers or as the text found in the file, and optionally a
``line`` column with each row's line number in the file. The validator converts, checks,
applies the two safe repairs (dropping exact duplicate rows, sorting) and returns Bars.
Anything else it finds is a :class:`~forexgrid.exceptions.DataError` that names the file,
the first offending line (or row, for sources without lines) and the value, e.g.
``EURUSD.csv: line 17: high 1.0512 < low 1.052 at 2017-01-03 04:00:00+00:00``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from forexgrid.exceptions import DataError, quote_input

__all__ = ["BAR_COLUMNS", "PRICE_COLUMNS", "TIME_UNIT", "validate_bars"]

logger = logging.getLogger(__name__)

PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = (*PRICE_COLUMNS, "volume")
# pandas 3 parses text and builds date ranges at microsecond resolution; every reader
# normalises to it so bars from any format compare equal.
TIME_UNIT = "us"
LINE_COLUMN = "line"
_EXPECTED = "time, open, high, low, close (volume optional)"
_MAX_TEXT = 40


def where(lines: np.ndarray | None, i: int) -> str:
    """Name row position ``i``: its file line when known, else its 1-based row number."""
    if lines is None:
        return f"row {i + 1}"
    return f"line {int(lines[i])}"


def raise_for_rows(
    source: str,
    mask: np.ndarray,
    lines: np.ndarray | None,
    describe: Callable[[int], str],
) -> None:
    """Raise a DataError for the first True row of ``mask`` (file order), if any.

    The message is ``"{source}: line N: {describe(i)}"``, followed by
    ``" (and K more rows)"`` when K further rows have the same problem.

    Raises
    ------
    DataError
        When any element of ``mask`` is True.
    """
    bad = np.flatnonzero(np.asarray(mask, dtype=bool))
    if bad.size == 0:
        return
    i = int(bad[0])
    message = f"{source}: {where(lines, i)}: {describe(i)}"
    if bad.size > 1:
        message += f" (and {bad.size - 1} more rows)"
    raise DataError(message)


def missing_columns_error(
    source: str, missing: Sequence[str], found: Sequence[str], expected: str = _EXPECTED
) -> DataError:
    """Build the DataError for required columns that a table lacks."""
    shown = ", ".join(repr(str(name)) for name in found) or "none"
    names = ", ".join(repr(name) for name in missing)
    plural = "s" if len(missing) > 1 else ""
    return DataError(
        f"{source}: missing column{plural} {names}; found columns {shown}; expected {expected}"
    )


def show_text(value: object) -> str:
    """Quote a raw field for a message, shortened so garbage cannot flood it."""
    text = str(value)
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT] + "..."
    return repr(text)


def _num(value: float) -> str:
    return repr(float(value))


def _times(frame: pd.DataFrame, source: str) -> tuple[pd.Series, pd.Series]:
    """The rows' times as a UTC Series on a RangeIndex (NaT where bad), and the raw values."""
    if "time" in frame.columns:
        raw = frame["time"]
    elif isinstance(frame.index, pd.DatetimeIndex):
        raw = frame.index.to_series()
    else:
        raise missing_columns_error(source, ["time"], [str(c) for c in frame.columns])
    raw = pd.Series(raw.array, name="time")  # .array keeps tz-aware values unboxed
    if isinstance(raw.dtype, pd.DatetimeTZDtype):
        times = raw.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(raw.dtype):
        # Naive times given straight to the validator are UTC, as everywhere in forexgrid.
        times = raw.dt.tz_localize("UTC")
    elif pd.api.types.is_string_dtype(raw.dtype) or raw.dtype == object:
        try:
            times = pd.to_datetime(raw.astype("str"), format="ISO8601", utc=True, errors="coerce")
        except (TypeError, ValueError) as err:
            raise DataError(f"{source}: cannot read column 'time' as timestamps: {err}") from err
    else:
        raise DataError(
            f"{source}: column 'time' has dtype {raw.dtype}; expected timestamps "
            "(datetime64 or ISO 8601 text)"
        )
    return times.dt.as_unit(TIME_UNIT), raw


def _numbers(frame: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray, pd.Series | None]:
    """Column as float64, plus a mask of non-numeric text and the text (None if numeric)."""
    raw = frame[column]
    if pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        return values, np.zeros(len(raw), dtype=bool), None
    text = raw.astype("str").str.strip()
    values = pd.to_numeric(text, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    # Empty fields and the literal NaN are *missing* values; any other text that is not a
    # number is reported as non-numeric, with the text.
    present = text.notna() & (text != "") & (text.str.lower() != "nan")
    non_numeric = np.isnan(values) & present.to_numpy(dtype=bool, na_value=False)
    return values, non_numeric, text


def validate_bars(frame: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check a raw OHLCV frame, apply the safe repairs and return Bars.

    Parameters
    ----------
    frame : pandas.DataFrame
        A ``time`` column (or a DatetimeIndex) and ``open high low close`` columns, plus an
        optional ``volume`` column; values may be numbers or the raw text read from a file.
        An optional ``line`` column gives each row's line number in the file, used in
        messages (without it rows are named ``row N``, counted from 1). Naive times are UTC.
        Other columns are ignored. The frame is not modified.
    source : str
        The name used in messages, normally the file name.

    Returns
    -------
    pandas.DataFrame
        Bars: a UTC DatetimeIndex named ``time``, strictly increasing, and float64 columns
        ``open high low close volume`` with prices > 0 and low <= open, close <= high.
        A missing volume column becomes 0.0 (logged at INFO). Exact duplicate rows are
        dropped and unsorted rows sorted by time (both logged at WARNING with counts).

    Raises
    ------
    DataError
        For no rows; a missing column; a missing or unparseable timestamp; a non-numeric,
        missing or infinite price or volume; a price <= 0; high < low; open or close outside
        [low, high]; a negative volume; two different rows with the same timestamp. The
        message names the source, the first offending line in file order and the value,
        with ``(and N more rows)`` when more rows have the same problem.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"{source}: expected a pandas DataFrame, got {type(frame).__name__}")
    if len(frame) == 0:
        raise DataError(f"{source}: no data rows; expected at least one bar")
    columns = [str(c) for c in frame.columns]
    doubled = sorted({c for c in ("time", *BAR_COLUMNS, LINE_COLUMN) if columns.count(c) > 1})
    if doubled:
        raise DataError(
            f"{source}: column {quote_input(doubled[0])} appears "
            f"{columns.count(doubled[0])} times; "
            "expected each column once"
        )
    missing = [c for c in PRICE_COLUMNS if c not in frame.columns]
    has_time = "time" in frame.columns or isinstance(frame.index, pd.DatetimeIndex)
    if missing or not has_time:
        raise missing_columns_error(source, ([] if has_time else ["time"]) + missing, columns)

    lines = None
    if LINE_COLUMN in frame.columns:
        lines = frame[LINE_COLUMN].to_numpy(dtype=np.int64)

    times, raw_times = _times(frame, source)
    given = raw_times.notna().to_numpy()
    raise_for_rows(
        source,
        times.isna().to_numpy(),
        lines,
        lambda i: (
            f"unparseable timestamp {show_text(raw_times.iloc[i])}; expected ISO 8601"
            if given[i]
            else "missing timestamp"
        ),
    )
    stamps = times.array

    names = [*PRICE_COLUMNS] + (["volume"] if "volume" in frame.columns else [])
    converted = {name: _numbers(frame, name) for name in names}
    values = {name: conv[0] for name, conv in converted.items()}
    matrix = np.column_stack([values[name] for name in names])

    def shown(name: str, i: int) -> str:
        # The value as written in the file when it came as text (1.0520, not 1.052).
        text = converted[name][2]
        return str(text.iloc[i]) if text is not None else _num(values[name][i])

    def check(cols: Sequence[str], mask: np.ndarray, describe: Callable[[str, int], str]) -> None:
        raise_for_rows(
            source,
            mask.any(axis=1),
            lines,
            lambda i: f"{describe(cols[int(np.argmax(mask[i]))], i)} at {times.iloc[i]}",
        )

    check(
        names,
        np.column_stack([converted[name][1] for name in names]),
        lambda n, i: f"non-numeric {n} {show_text(converted[n][2].iloc[i])}",
    )
    check(names, np.isnan(matrix), lambda n, i: f"missing {n}")
    check(names, np.isinf(matrix), lambda n, i: f"{n} {shown(n, i)} is not a finite number")
    check(
        PRICE_COLUMNS,
        matrix[:, :4] <= 0,
        lambda n, i: f"{n} {shown(n, i)} <= 0; prices must be positive",
    )
    op, hi, lo, cl = (values[name] for name in PRICE_COLUMNS)
    check(
        ["high"],
        (hi < lo)[:, None],
        lambda n, i: f"high {shown('high', i)} < low {shown('low', i)}",
    )
    check(
        ["open", "close"],
        np.column_stack([(op < lo) | (op > hi), (cl < lo) | (cl > hi)]),
        lambda n, i: f"{n} {shown(n, i)} outside [low {shown('low', i)}, high {shown('high', i)}]",
    )
    if "volume" in values:
        volume = values["volume"]
        check(["volume"], (volume < 0)[:, None], lambda n, i: f"negative volume {shown(n, i)}")
    else:
        logger.info("%s: no volume column; volume set to 0.0", source)
        volume = np.zeros(len(frame), dtype=np.float64)

    bars = pd.DataFrame(
        {"time": stamps, "open": op, "high": hi, "low": lo, "close": cl, "volume": volume}
    )
    if lines is not None:
        bars[LINE_COLUMN] = lines
    bars = _drop_exact_duplicates(bars, source, lines is not None)
    _raise_conflicts(bars, source, lines is not None)
    bars = _sort(bars, source, lines is not None)

    index = pd.DatetimeIndex(bars["time"], name="time")
    out = bars.loc[:, list(BAR_COLUMNS)].astype(np.float64)
    out.index = index
    return out


def _row_names(bars: pd.DataFrame, positions: np.ndarray, has_lines: bool) -> list[str]:
    if has_lines:
        return [str(int(v)) for v in bars[LINE_COLUMN].to_numpy()[positions]]
    return [str(int(p) + 1) for p in positions]


def _drop_exact_duplicates(bars: pd.DataFrame, source: str, has_lines: bool) -> pd.DataFrame:
    exact = bars.duplicated(subset=["time", *BAR_COLUMNS], keep="first").to_numpy()
    if not exact.any():
        return bars
    positions = np.flatnonzero(exact)
    shown = _row_names(bars, positions[:5], has_lines)
    more = ", ..." if positions.size > 5 else ""
    unit = ("line" if has_lines else "row") + ("s" if positions.size > 1 else "")
    logger.warning(
        "%s: dropped %d exact duplicate %s (%s %s%s)",
        source,
        positions.size,
        "rows" if positions.size > 1 else "row",
        unit,
        ", ".join(shown),
        more,
    )
    return bars.loc[~exact].reset_index(drop=True)


def _raise_conflicts(bars: pd.DataFrame, source: str, has_lines: bool) -> None:
    later = bars["time"].duplicated(keep="first").to_numpy()
    if not later.any():
        return
    stamps = bars["time"].dt.tz_localize(None).to_numpy()
    bad = np.flatnonzero(later)
    j = int(bad[0])
    i = int(np.flatnonzero(stamps == stamps[j])[0])
    first, second = _row_names(bars, np.array([i, j]), has_lines)
    unit = "lines" if has_lines else "rows"
    differs = next(c for c in BAR_COLUMNS if bars[c].iloc[i] != bars[c].iloc[j])
    message = (
        f"{source}: {unit} {first} and {second}: two different bars at {bars['time'].iloc[j]} "
        f"({differs} {_num(bars[differs].iloc[i])} vs {_num(bars[differs].iloc[j])})"
    )
    if bad.size > 1:
        message += f" (and {bad.size - 1} more rows)"
    raise DataError(message)


def _sort(bars: pd.DataFrame, source: str, has_lines: bool) -> pd.DataFrame:
    stamps = bars["time"]
    if stamps.is_monotonic_increasing:
        return bars
    # A row is out of order when it is earlier than some row above it.
    behind = (stamps < stamps.cummax().shift(1)).to_numpy()
    first = _row_names(bars, np.flatnonzero(behind)[:1], has_lines)[0]
    count = int(behind.sum())
    logger.warning(
        "%s: %d %s out of time order (first at %s %s); sorted by time",
        source,
        count,
        "rows" if count > 1 else "row",
        "line" if has_lines else "row",
        first,
    )
    return bars.sort_values("time", kind="stable").reset_index(drop=True)
