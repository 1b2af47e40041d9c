"""validate_bars: one corrupt file per error class, with its message; the two safe repairs."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forexgrid.data._formats import read_bars
from forexgrid.data._validate import BAR_COLUMNS, validate_bars
from forexgrid.exceptions import DataError

HEADER = "Time,Open,High,Low,Close,Volume"
START = pd.Timestamp("2017-01-02 13:00", tz="UTC")
# Line 17 of the file (header = line 1) is 2017-01-03 04:00 UTC.
N_ROWS = 20


def good_rows() -> list[str]:
    """Valid Dukascopy rows, hourly from START; row k sits on file line k + 2."""
    rows = []
    for k in range(N_ROWS):
        t = START + pd.Timedelta(hours=k)
        base = 1.05 + k / 10_000
        rows.append(
            f"{t:%d.%m.%Y %H:%M:%S}.000,{base:.5f},{base + 0.0004:.5f},"
            f"{base - 0.0003:.5f},{base + 0.0001:.5f},{100 + k}"
        )
    return rows


def write_file(folder: Path, replace: dict[int, str] | None = None, rows=None) -> Path:
    """EURUSD.csv with the good rows, file lines in ``replace`` swapped for other text."""
    lines = [HEADER, *(good_rows() if rows is None else rows)]
    for line, text in (replace or {}).items():
        lines[line - 1] = text
    path = folder / "EURUSD.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def at(line: int) -> str:
    return str(START + pd.Timedelta(hours=line - 2))


CORRUPT = [
    (
        "unparseable-timestamp",
        {4: "32.01.2017 15:00:00.000,1.05020,1.05060,1.04990,1.05030,102"},
        "EURUSD.csv: line 4: unparseable timestamp '32.01.2017 15:00:00.000'; expected "
        "DD.MM.YYYY HH:MM:SS.fff (day first), optionally followed by GMT+hhmm",
    ),
    (
        "missing-timestamp",
        {5: ",1.05020,1.05060,1.04990,1.05030,102"},
        "EURUSD.csv: line 5: missing timestamp",
    ),
    (
        "non-numeric-price",
        {4: "02.01.2017 15:00:00.000,1.05020,1.05O60,1.04990,1.05030,102"},
        f"EURUSD.csv: line 4: non-numeric high '1.05O60' at {at(4)}",
    ),
    (
        "missing-price",
        {6: "02.01.2017 17:00:00.000,1.05040,1.05080,1.05010,,104"},
        f"EURUSD.csv: line 6: missing close at {at(6)}",
    ),
    (
        "nan-price",
        {6: "02.01.2017 17:00:00.000,NaN,1.05080,1.05010,1.05050,104"},
        f"EURUSD.csv: line 6: missing open at {at(6)}",
    ),
    (
        "short-row",
        {6: "02.01.2017 17:00:00.000,1.05040,1.05080"},
        f"EURUSD.csv: line 6: missing low at {at(6)}",
    ),
    (
        "infinite-price",
        {3: "02.01.2017 14:00:00.000,1.05010,1e400,1.04980,1.05020,101"},
        f"EURUSD.csv: line 3: high 1e400 is not a finite number at {at(3)}",
    ),
    (
        "zero-price",
        {7: "02.01.2017 18:00:00.000,1.05050,1.05090,0.0,1.05060,105"},
        f"EURUSD.csv: line 7: low 0.0 <= 0; prices must be positive at {at(7)}",
    ),
    (
        "high-below-low",
        {17: "03.01.2017 04:00:00.000,1.05150,1.0512,1.0520,1.05160,115"},
        "EURUSD.csv: line 17: high 1.0512 < low 1.0520 at 2017-01-03 04:00:00+00:00",
    ),
    (
        "open-outside-range",
        {9: "02.01.2017 20:00:00.000,1.05200,1.05110,1.05040,1.05080,107"},
        f"EURUSD.csv: line 9: open 1.05200 outside [low 1.05040, high 1.05110] at {at(9)}",
    ),
    (
        "close-outside-range",
        {9: "02.01.2017 20:00:00.000,1.05070,1.05110,1.05040,1.05030,107"},
        f"EURUSD.csv: line 9: close 1.05030 outside [low 1.05040, high 1.05110] at {at(9)}",
    ),
    (
        "negative-volume",
        {12: "02.01.2017 23:00:00.000,1.05100,1.05140,1.05070,1.05110,-5"},
        f"EURUSD.csv: line 12: negative volume -5 at {at(12)}",
    ),
    (
        "conflicting-duplicates",
        {8: "02.01.2017 15:00:00.000,1.05020,1.05060,1.04990,1.05040,102"},
        "EURUSD.csv: lines 4 and 8: two different bars at 2017-01-02 15:00:00+00:00 "
        "(close 1.0503 vs 1.0504)",
    ),
    (
        "several-rows",
        {
            5: "02.01.2017 16:00:00.000,1.05030,1.05070,1.05000,1.05040,-1",
            3: "02.01.2017 14:00:00.000,1.05010,1.05050,1.04980,1.05020,-2",
            20: "03.01.2017 07:00:00.000,1.05180,1.05220,1.05150,1.05190,-3",
        },
        f"EURUSD.csv: line 3: negative volume -2 at {at(3)} (and 2 more rows)",
    ),
]


@pytest.mark.parametrize(
    ("replace", "message"), [c[1:] for c in CORRUPT], ids=[c[0] for c in CORRUPT]
)
def test_corrupt_file_names_file_and_line(
    tmp_path: Path, replace: dict[int, str], message: str
) -> None:
    path = write_file(tmp_path, replace)
    # Named, the format is not repeated; guessed, the message says so and how to choose.
    with pytest.raises(DataError, match=re.escape(message) + "$"):
        read_bars(path, format="dukascopy")
    guessed = (
        " (read as dukascopy CSV, guessed from the header and first row; pass --format, or "
        "format= in Python, to choose)"
    )
    with pytest.raises(DataError, match=re.escape(message + guessed) + "$"):
        read_bars(path)


def test_the_uncorrupted_file_reads(tmp_path: Path) -> None:
    bars = read_bars(write_file(tmp_path))
    assert len(bars) == N_ROWS
    assert bars.index[15] == pd.Timestamp("2017-01-03 04:00", tz="UTC")  # file line 17


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "EURUSD.csv: file is empty; expected OHLC bars"),
        (HEADER + "\n", "EURUSD.csv: header only (line 1), no data rows"),
        (
            "Time,Open,High,Low,Volume\n02.01.2017 13:00:00.000,1.1,1.2,1.0,5\n",
            "EURUSD.csv: missing column 'close'; found columns 'Time', 'Open', 'High', 'Low', "
            "'Volume'; expected Time (or Gmt time, Local time), Open, High, Low, Close, Volume",
        ),
    ],
    ids=["empty-file", "header-only", "missing-column"],
)
def test_file_level_errors(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "EURUSD.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=re.escape(message) + "$"):
        read_bars(path, format="dukascopy")


def test_exact_duplicates_are_dropped_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = good_rows()
    # Line 6 repeats line 3 exactly; line 9 repeats line 4 with other number spellings.
    rows.insert(4, rows[1])
    rows.insert(7, rows[2].replace(",102", ",102.0").replace("1.05020,", "1.0502,"))
    path = write_file(tmp_path, rows=rows)
    with caplog.at_level(logging.WARNING, logger="forexgrid"):
        bars = read_bars(path)
    pd.testing.assert_frame_equal(bars, read_bars(write_file(tmp_path)))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "EURUSD.csv: dropped 2 exact duplicate rows (lines 6, 9)")
    ]


def test_unsorted_rows_are_sorted_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rows = good_rows()
    rows[5], rows[8] = rows[8], rows[5]
    rows.append(rows.pop(0))  # the first bar moved to the end
    # File lines 6..9 now hold bars 8, 6, 7, 5: lines 7, 8, 9 and the last are behind.
    path = write_file(tmp_path, rows=rows)
    with caplog.at_level(logging.WARNING, logger="forexgrid"):
        bars = read_bars(path)
    pd.testing.assert_frame_equal(bars, read_bars(write_file(tmp_path)))
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.WARNING, "EURUSD.csv: 4 rows out of time order (first at line 7); sorted by time")
    ]


# --- validate_bars on frames --------------------------------------------------------------


def frame(**overrides: object) -> pd.DataFrame:
    data = {
        "time": pd.date_range("2017-01-02", periods=4, freq="h"),
        "open": [1.1, 1.2, 1.3, 1.4],
        "high": [1.2, 1.3, 1.4, 1.5],
        "low": [1.0, 1.1, 1.2, 1.3],
        "close": [1.15, 1.25, 1.35, 1.45],
        "volume": [1, 2, 3, 4],
    }
    data.update(overrides)
    return pd.DataFrame(data)


def test_frame_without_lines_names_rows() -> None:
    with pytest.raises(
        DataError,
        match=re.escape("mine: row 3: high 1.1 < low 1.2 at 2017-01-02 02:00:00+00:00") + "$",
    ):
        validate_bars(frame(high=[1.2, 1.3, 1.1, 1.5]), "mine")


def test_valid_frame_becomes_bars_without_touching_the_input() -> None:
    raw = frame(extra=["a", "b", "c", "d"]).iloc[::-1].reset_index(drop=True)
    before = raw.copy()
    bars = validate_bars(raw, "mine")
    pd.testing.assert_frame_equal(raw, before)
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert (bars.dtypes == np.float64).all()
    assert bars.index.name == "time" and str(bars.index.tz) == "UTC"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique
    assert bars["volume"].tolist() == [1.0, 2.0, 3.0, 4.0]  # naive times taken as UTC, sorted
    assert bars.index[0] == pd.Timestamp("2017-01-02", tz="UTC")


@pytest.mark.parametrize(
    ("raw", "expected_first"),
    [
        (frame().set_index("time").tz_localize("Etc/GMT-2"), "2017-01-01 22:00"),
        (
            frame(
                time=[
                    "2017-01-02T00:00:00+01:00",
                    "2017-01-02 01:00",
                    "2017-01-02 02:00",
                    "2017-01-02 03:00",
                ]
            ),
            "2017-01-01 23:00",
        ),
    ],
    ids=["aware-index", "iso-text"],
)
def test_time_from_index_or_text(raw: pd.DataFrame, expected_first: str) -> None:
    bars = validate_bars(raw, "mine")
    assert bars.index[0] == pd.Timestamp(expected_first, tz="UTC")


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([1, 2], "mine: expected a pandas DataFrame, got list"),
        (frame().iloc[:0], "mine: no data rows; expected at least one bar"),
        (
            frame().drop(columns=["time", "low"]),
            "mine: missing columns 'time', 'low'; found columns 'open', 'high', 'close', "
            "'volume'; expected time, open, high, low, close (volume optional)",
        ),
        (frame(time=[1, 2, 3, 4]), "mine: column 'time' has dtype int64; expected timestamps"),
        (
            frame(time=["2017-01-02", None, "x", "2017-01-03"]),
            "mine: row 2: missing timestamp (and 1 more rows)",
        ),
        (
            frame(time=["2017-01-02", "2017-01-02 01:00", "x", "2017-01-03"]),
            "mine: row 3: unparseable timestamp 'x'; expected ISO 8601",
        ),
        (
            pd.concat([frame(), frame()[["open"]]], axis=1),
            "mine: column 'open' appears 2 times; expected each column once",
        ),
        (frame(volume=[1.0, np.nan, 3.0, 4.0]), "mine: row 2: missing volume at"),
        (frame(open=[1.1, 1.2, -np.inf, 1.4]), "mine: row 3: open -inf is not a finite number"),
    ],
    ids=[
        "not-frame",
        "empty",
        "missing-columns",
        "int-time",
        "missing-text-time",
        "bad-text-time",
        "doubled-column",
        "nan-volume",
        "minus-inf",
    ],
)
def test_frame_errors(raw: object, message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        validate_bars(raw, "mine")


def test_missing_volume_is_zero_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="forexgrid"):
        bars = validate_bars(frame().drop(columns="volume"), "mine")
    assert (bars["volume"] == 0.0).all()
    assert [r.getMessage() for r in caplog.records] == [
        "mine: no volume column; volume set to 0.0"
    ]


def test_row_names_in_repair_logs(caplog: pytest.LogCaptureFixture) -> None:
    raw = pd.concat([frame(), frame().iloc[[1]]], ignore_index=True)
    with caplog.at_level(logging.WARNING, logger="forexgrid"):
        validate_bars(raw, "mine")
    assert [r.getMessage() for r in caplog.records] == [
        "mine: dropped 1 exact duplicate row (row 5)"
    ]
