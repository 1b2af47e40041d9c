"""read_bars and detect_format: every format reads the same bars; files that cannot be read."""

from __future__ import annotations

import logging
import os
import re
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forexgrid.data import _formats
from forexgrid.data._formats import FORMATS, detect_format, read_bars
from forexgrid.data._validate import BAR_COLUMNS, TIME_UNIT
from forexgrid.exceptions import DataError

N_BARS = 50


def make_bars(n: int = N_BARS, freq: str = "h", start: str = "2017-01-02") -> pd.DataFrame:
    """Deterministic valid bars with 5-decimal prices and whole volumes (exact in any format)."""
    rng = np.random.default_rng(7)
    close = np.round(1.05 * np.exp(np.cumsum(rng.normal(0.0, 0.001, n))), 5)
    open_ = np.round(np.concatenate([[1.05], close[:-1]]), 5)
    high = np.round(np.maximum(open_, close) + np.abs(rng.normal(0.0, 0.0005, n)), 5)
    low = np.round(np.minimum(open_, close) - np.abs(rng.normal(0.0, 0.0005, n)), 5)
    volume = rng.integers(100, 5000, n).astype(np.float64)
    index = pd.date_range(start, periods=n, freq=freq, tz="UTC", name="time").as_unit(TIME_UNIT)
    index.freq = None  # read bars carry no frequency
    return pd.DataFrame(
        {"open": open_, "high": high, "low": low, "close": close, "volume": volume}, index=index
    )


def ohlc(row: pd.Series, sep: str, volume: bool = True) -> str:
    fields = [f"{row[c]:.5f}" for c in ("open", "high", "low", "close")]
    if volume:
        fields.append(f"{row['volume']:.0f}")
    return sep.join(fields)


def write(path: Path, lines: list[str], encoding: str = "utf-8", newline: str = "\n") -> Path:
    path.write_bytes((newline.join(lines) + newline).encode(encoding))
    return path


# Each writer puts the same bars into one format's syntax and returns the file and the
# read_bars keyword arguments that file needs (its tz).
Writer = Callable[[pd.DataFrame, Path], tuple[Path, dict]]


def dukascopy(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    lines = ["Time,Open,High,Low,Close,Volume"]
    lines += [
        f"{t:%d.%m.%Y %H:%M:%S}.000,{ohlc(r, ',', False)},{r['volume']:.1f}"
        for t, r in bars.iterrows()
    ]
    return write(folder / "EURUSD_dukascopy.csv", lines), {}


def dukascopy_gmt(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    lines = ["Gmt time,Open,High,Low,Close,Volume"]
    lines += [f"{t:%d.%m.%Y %H:%M:%S}.000,{ohlc(r, ',')}" for t, r in bars.iterrows()]
    return write(folder / "EURUSD_gmt.csv", lines, newline="\r\n"), {}


def dukascopy_local(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    lines = ["Local time,Open,High,Low,Close,Volume"]
    for t, r in bars.iterrows():
        local = t.tz_convert("Europe/Berlin")
        lines.append(f"{local:%d.%m.%Y %H:%M:%S}.000 GMT{local:%z},{ohlc(r, ',')}")
    # The zone is in the text, so a tz argument changes nothing.
    return write(folder / "EURUSD_local.csv", lines), {"tz": "Asia/Tokyo"}


def histdata(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    est = bars.index.tz_convert("Etc/GMT+5")  # EST all year: UTC-5
    lines = [
        f"{t:%Y%m%d %H%M%S};{ohlc(r, ';')}" for t, (_, r) in zip(est, bars.iterrows(), strict=True)
    ]
    return write(folder / "DAT_ASCII_EURUSD_M1_2017.csv", lines, newline="\r\n"), {}


def mt4(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    server = bars.index.tz_convert("Etc/GMT-2")  # broker server time UTC+2
    lines = [
        f"{t:%Y.%m.%d,%H:%M},{ohlc(r, ',')}"
        for t, (_, r) in zip(server, bars.iterrows(), strict=True)
    ]
    return write(folder / "EURUSD60.csv", lines), {"tz": "Etc/GMT-2"}


def mt5(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    # MetaTrader 5 writes UTF-16 with a byte-order mark and CRLF; server time with DST.
    server = bars.index.tz_convert("Europe/Athens")
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    lines += [
        f"{t:%Y.%m.%d}\t{t:%H:%M:%S}\t{ohlc(r, chr(9))}\t0\t3"
        for t, (_, r) in zip(server, bars.iterrows(), strict=True)
    ]
    return write(folder / "EURUSD_H1.csv", lines, "utf-16", "\r\n"), {"tz": "Europe/Athens"}


def csv_comma(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    lines = ["time,open,high,low,close,volume"]
    lines += [f"{t:%Y-%m-%d %H:%M:%S},{ohlc(r, ',')}" for t, r in bars.iterrows()]
    return write(folder / "eurusd.csv", lines), {}


def csv_date_time_pair(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    lines = ["Date;Time;Open;High;Low;Close;Volume"]
    lines += [f"{t:%Y-%m-%d};{t:%H:%M};{ohlc(r, ';')}" for t, r in bars.iterrows()]
    return write(folder / "eurusd_pair.csv", lines), {}


def csv_tab_offsets(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    lines = ["Timestamp\tOpen\tHigh\tLow\tClose\tVolume"]
    for t, r in bars.iterrows():
        stamp = t.tz_convert("Etc/GMT-2").isoformat()  # 2017-01-02T02:00:00+02:00
        lines.append(f"{stamp}\t{ohlc(r, chr(9))}")
    return write(folder / "eurusd.tsv", lines), {}


def csv_pandas_index(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    path = folder / "eurusd_pandas.csv"
    bars.rename_axis(None).to_csv(path)  # header ",open,high,...": the index is unnamed
    return path, {}


def csv_quoted_bom_naive_tz(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    local = bars.index.tz_convert("America/New_York")
    lines = ['"Datetime","Open","High","Low","Close","Volume"']
    lines += [
        f'"{t:%Y-%m-%dT%H:%M:%S}",' + ",".join(f'"{v}"' for v in ohlc(r, ",").split(","))
        for t, (_, r) in zip(local, bars.iterrows(), strict=True)
    ]
    path = write(folder / "eurusd_quoted.csv", ["", *lines, "", ""], "utf-8-sig", "\r\n")
    return path, {"tz": "America/New_York"}


def parquet_index(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    path = folder / "eurusd.parquet"
    bars.to_parquet(path)
    return path, {}


def parquet_naive_column(bars: pd.DataFrame, folder: Path) -> tuple[Path, dict]:
    frame = bars.rename(columns=str.capitalize).reset_index(drop=True)
    frame.insert(0, "Timestamp", bars.index.tz_convert("Etc/GMT-2").tz_localize(None))
    path = folder / "eurusd_column.data"  # no telling suffix: detected by its magic bytes
    frame.to_parquet(path)
    return path, {"tz": "Etc/GMT-2"}


WRITERS: list[tuple[str, Writer]] = [
    ("dukascopy", dukascopy),
    ("dukascopy", dukascopy_gmt),
    ("dukascopy", dukascopy_local),
    ("histdata", histdata),
    ("mt4", mt4),
    ("mt5", mt5),
    ("csv", csv_comma),
    ("csv", csv_date_time_pair),
    ("csv", csv_tab_offsets),
    ("csv", csv_pandas_index),
    ("csv", csv_quoted_bom_naive_tz),
    ("parquet", parquet_index),
    ("parquet", parquet_naive_column),
]


@pytest.mark.parametrize(("fmt", "writer"), WRITERS, ids=[w.__name__ for _, w in WRITERS])
def test_every_format_reads_the_same_bars(tmp_path: Path, fmt: str, writer: Writer) -> None:
    expected = make_bars()
    path, kwargs = writer(expected, tmp_path)

    assert detect_format(path) == fmt
    named = read_bars(path, format=fmt, **kwargs)
    pd.testing.assert_frame_equal(named, expected)
    pd.testing.assert_frame_equal(read_bars(path, **kwargs), expected)
    pd.testing.assert_frame_equal(read_bars(str(path), format=fmt.upper(), **kwargs), expected)


def test_formats_lists_every_reader() -> None:
    assert FORMATS == ("dukascopy", "histdata", "mt4", "mt5", "csv", "parquet")


def test_bundled_sample_reads_cleanly(sample_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="forexgrid"):
        bars = read_bars(sample_path)
    assert caplog.records == []  # nothing repaired, nothing assumed
    assert detect_format(sample_path) == "dukascopy"
    assert len(bars) == 6225
    assert bars.index[0] == pd.Timestamp("2017-01-01 22:00", tz="UTC")
    assert bars.index[-1] == pd.Timestamp("2017-12-29 21:00", tz="UTC")
    assert bars["close"].iloc[0] == 1.05227
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert (bars.dtypes == np.float64).all()
    assert str(bars.index.tz) == "UTC" and bars.index.name == "time"
    assert bars.index.is_monotonic_increasing and bars.index.is_unique


def test_mt5_daily_export_without_time_column(tmp_path: Path) -> None:
    expected = make_bars(10, freq="D")
    lines = ["<DATE>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    lines += [f"{t:%Y.%m.%d}\t{ohlc(r, chr(9))}\t0\t2" for t, r in expected.iterrows()]
    path = write(tmp_path / "EURUSD_Daily.csv", lines)
    assert detect_format(path) == "mt5"
    pd.testing.assert_frame_equal(read_bars(path), expected)


def test_mt5_volume_falls_back_to_vol_without_tickvol(tmp_path: Path) -> None:
    expected = make_bars(3)
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<VOL>"]
    lines += [f"{t:%Y.%m.%d}\t{t:%H:%M}\t{ohlc(r, chr(9))}" for t, r in expected.iterrows()]
    pd.testing.assert_frame_equal(read_bars(write(tmp_path / "m.csv", lines)), expected)


@pytest.mark.parametrize(
    ("fmt", "header", "line"),
    [
        ("csv", "time,open,high,low,close", "{t:%Y-%m-%d %H:%M},{p}"),
        ("mt4", None, "{t:%Y.%m.%d,%H:%M},{p}"),
        ("dukascopy", "Time,Open,High,Low,Close", "{t:%d.%m.%Y %H:%M:%S},{p}"),
    ],
    ids=["csv", "mt4", "dukascopy"],
)
def test_missing_volume_column_is_zero_and_logged(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, fmt: str, header: str | None, line: str
) -> None:
    expected = make_bars(5).assign(volume=0.0)
    lines = [line.format(t=t, p=ohlc(r, ",", volume=False)) for t, r in expected.iterrows()]
    path = write(tmp_path / "novol.csv", ([header] if header else []) + lines)
    with caplog.at_level(logging.INFO, logger="forexgrid"):
        bars = read_bars(path, format=fmt)
    pd.testing.assert_frame_equal(bars, expected)
    assert [r.getMessage() for r in caplog.records] == [
        "novol.csv: no volume column; volume set to 0.0"
    ]
    assert caplog.records[0].levelno == logging.INFO


def test_headerless_dukascopy_export(tmp_path: Path) -> None:
    expected = make_bars(4)
    path, _ = dukascopy(expected, tmp_path)
    path.write_text("\n".join(path.read_text().splitlines()[1:]) + "\n")
    pd.testing.assert_frame_equal(read_bars(path), expected)


def test_histdata_ignores_tz_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    expected = make_bars(6)
    path, _ = histdata(expected, tmp_path)
    with caplog.at_level(logging.WARNING, logger="forexgrid"):
        bars = read_bars(path, tz="Europe/Berlin")
    pd.testing.assert_frame_equal(bars, expected)
    assert [r.getMessage() for r in caplog.records] == [
        "DAT_ASCII_EURUSD_M1_2017.csv: tz='Europe/Berlin' ignored: HistData files are EST "
        "without daylight saving (Etc/GMT+5)"
    ]


def test_histdata_matching_tz_is_silent(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path, _ = histdata(make_bars(3), tmp_path)
    with caplog.at_level(logging.WARNING, logger="forexgrid"):
        read_bars(path, tz="Etc/GMT+5")
    assert caplog.records == []


def test_repeated_autumn_hour_in_a_dst_zone_is_resolved_in_file_order(tmp_path: Path) -> None:
    lines = ["time,open,high,low,close,volume"]
    lines += [f"2017-10-29 {h},1.1,1.2,1.0,1.1,1" for h in ("01:00", "02:00", "02:00", "03:00")]
    bars = read_bars(write(tmp_path / "berlin.csv", lines), tz="Europe/Berlin")
    assert list(bars.index.strftime("%H:%M")) == ["23:00", "00:00", "01:00", "02:00"]


@pytest.mark.parametrize(
    ("stamp", "message"),
    [
        (
            "2017-03-26 02:30",
            "berlin.csv: line 3: time 2017-03-26 02:30:00 does not exist or is ambiguous in "
            "time zone Europe/Berlin (a daylight-saving change); if the file's clock has no "
            "daylight saving, pass a fixed-offset zone such as tz='Etc/GMT-2'",
        ),
        (
            "2017-10-29 02:30",
            "berlin.csv: line 3: time 2017-10-29 02:30:00 does not exist or is ambiguous in",
        ),
    ],
    ids=["spring-gap", "autumn-single"],
)
def test_dst_gap_or_lone_ambiguous_time_is_a_data_error(
    tmp_path: Path, stamp: str, message: str
) -> None:
    lines = ["time,open,high,low,close,volume", "2017-01-01 00:00,1.1,1.2,1.0,1.1,1"]
    lines.append(f"{stamp},1.1,1.2,1.0,1.1,1")
    with pytest.raises(DataError, match=re.escape(message)):
        read_bars(write(tmp_path / "berlin.csv", lines), tz="Europe/Berlin")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"format": "metatrader"},
            "unknown data format 'metatrader'; expected 'auto' or one "
            "of dukascopy, histdata, mt4, mt5, csv, parquet",
        ),
        ({"format": None}, "unknown data format None; expected 'auto' or one of dukascopy"),
        (
            {"tz": "Mars/Olympus"},
            "unknown time zone tz='Mars/Olympus'; expected an IANA name "
            "such as 'UTC', 'Europe/London' or 'Etc/GMT-2' (UTC+2)",
        ),
        ({"tz": ""}, "unknown time zone tz=''"),
        ({"tz": 2}, "tz must be a time-zone name or tzinfo, got int 2"),
    ],
    ids=["format-name", "format-none", "tz-name", "tz-empty", "tz-int"],
)
def test_bad_arguments_are_data_errors(tmp_path: Path, kwargs: dict, message: str) -> None:
    path, _ = csv_comma(make_bars(2), tmp_path)
    with pytest.raises(DataError, match=re.escape(message)):
        read_bars(path, **kwargs)


def test_path_of_wrong_type() -> None:
    with pytest.raises(DataError, match=re.escape("path must be a str or os.PathLike, got int")):
        read_bars(3)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope.csv"
    with pytest.raises(DataError, match=re.escape(f"{missing}: no such file")):
        read_bars(missing)
    with pytest.raises(DataError, match=re.escape(f"{missing}: no such file")):
        detect_format(missing)
    with pytest.raises(
        DataError, match=re.escape(f"{tmp_path}: is a directory; expected a market-data file")
    ):
        read_bars(tmp_path, format="csv")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused(device: str) -> None:
    message = f"{device}: is a character device, not a regular file; expected a file on disk"
    for read in (read_bars, detect_format):
        with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
            read(device)


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    fifo = tmp_path / "bars.csv"
    os.mkfifo(fifo)
    message = f"{fifo}: is a FIFO (named pipe), not a regular file; expected a file on disk"
    for read in (read_bars, detect_format):
        with pytest.raises(DataError, match=f"^{re.escape(message)}$"):
            read(fifo)


def test_a_file_above_the_limit_is_refused_before_reading(tmp_path: Path) -> None:
    path, _ = csv_comma(make_bars(200), tmp_path)
    size = path.stat().st_size
    with pytest.raises(DataError, match=re.escape(f"{path}: the file is {size:,} bytes")):
        read_bars(path, max_bytes=size - 1)
    assert len(read_bars(path, max_bytes=size)) == 200
    sparse = tmp_path / "huge.csv"
    with open(sparse, "wb") as handle:
        handle.truncate(5 << 30)  # 5 GiB of nothing: refused from its size, never read
    with pytest.raises(DataError, match=re.escape("more than the limit of 1,073,741,824")):
        read_bars(sparse)


def test_a_stream_is_read_once_when_allowed(tmp_path: Path) -> None:
    path, _ = csv_comma(make_bars(50), tmp_path)
    expected = read_bars(path)
    fifo = tmp_path / "stream.csv"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as handle:
            handle.write(path.read_bytes())

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    bars = read_bars(fifo, allow_streams=True)  # detection and parsing share one read
    thread.join(5)
    pd.testing.assert_frame_equal(bars, expected)
    with pytest.raises(DataError, match=re.escape("/dev/zero: the file is larger than")):
        read_bars("/dev/zero", allow_streams=True, max_bytes=1 << 16)


def test_parquet_that_decodes_beyond_the_limit_is_refused(tmp_path: Path) -> None:
    bars = make_bars(20_000)
    path = tmp_path / "bars.parquet"
    bars.to_parquet(path, compression="zstd")
    size = path.stat().st_size
    with pytest.raises(DataError, match=re.escape("decodes to")):
        read_bars(path, max_bytes=size + 1)
    assert len(read_bars(path)) == 20_000


def test_permission_denied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = csv_comma(make_bars(2), tmp_path)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied", str(path))

    # Tests run as root here, where chmod cannot deny a read; simulate the OS refusing.
    monkeypatch.setattr(_formats, "read_limited", refuse)
    with pytest.raises(DataError, match=re.escape(f"{path}: permission denied")):
        read_bars(path, format="csv")


@pytest.mark.parametrize(
    ("content", "fmt", "message"),
    [
        (b"", "auto", "empty.csv: file is empty; expected OHLC bars"),
        (b" \r\n\n\t\n", "histdata", "empty.csv: file is empty; expected OHLC bars"),
        (b"\xef\xbb\xbf", "csv", "empty.csv: file is empty; expected OHLC bars"),
        (b",\n , \n", "auto", "empty.csv: no data: every line is empty or only separators"),
        (
            b"time,open,high,low,close\n2017-01-02 00:00,1.1,1.2,1.0,\xe9\n",
            "auto",
            "empty.csv: line 2: not valid text (byte 0xe9 at offset 54); expected a UTF-8 text "
            "file (or UTF-16 with a byte-order mark)",
        ),
        (
            "time,open\n".encode("utf-16-le"),
            "csv",
            "empty.csv: line 1: contains NUL bytes; expected a text file (a binary file, or "
            "UTF-16 without a byte-order mark?)",
        ),
        (b"PAR1\x00\x01garbage", "auto", "empty.csv: not a readable Parquet file: "),
    ],
    ids=[
        "empty",
        "blank-lines",
        "bom-only",
        "separators-only",
        "invalid-utf8",
        "utf16-no-bom",
        "bad-parquet",
    ],
)
def test_unreadable_content(tmp_path: Path, content: bytes, fmt: str, message: str) -> None:
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=re.escape(message)):
        read_bars(path, format=fmt)


def test_truncated_parquet(tmp_path: Path) -> None:
    path, _ = parquet_index(make_bars(), tmp_path)
    path.write_bytes(path.read_bytes()[:-40])
    assert detect_format(path) == "parquet"
    with pytest.raises(DataError, match=re.escape("eurusd.parquet: not a readable Parquet file")):
        read_bars(path)


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"time": [1, 2], "open": 1.0, "high": 1.0, "low": 1.0, "close": 1.0}),
            "p.parquet: column 'time' has type int64; expected timestamps or ISO-like text",
        ),
        (
            pd.DataFrame(
                {
                    "time": ["2017-01-02", "soon"],
                    "open": 1.0,
                    "high": 1.0,
                    "low": 1.0,
                    "close": 1.0,
                }
            ),
            "p.parquet: row 2: unparseable timestamp 'soon'; expected timestamps or ISO-like",
        ),
        (
            pd.DataFrame(
                {
                    "time": pd.to_datetime(["2017-01-02", None]),
                    "open": 1.0,
                    "high": 1.0,
                    "low": 1.0,
                    "close": 1.0,
                }
            ),
            "p.parquet: row 2: missing timestamp",
        ),
        (
            pd.DataFrame({"Open": [1.0], "High": [1.0], "Low": [1.0], "Close": [1.0]}),
            "p.parquet: missing column 'time'; found columns 'Open', 'High', 'Low', 'Close'; "
            "expected a datetime index or time column and open, high, low, close, volume "
            "(optional)",
        ),
        (
            pd.DataFrame(
                {
                    "time": pd.to_datetime(["2017-01-02"]),
                    "open": [1.0],
                    "high": [1.0],
                    "low": [1.0],
                    "close": [-1.0],
                }
            ),
            "p.parquet: row 1: close -1.0 <= 0; prices must be positive at 2017-01-02",
        ),
        (
            pd.DataFrame(
                {"time": pd.to_datetime([]), "open": [], "high": [], "low": [], "close": []}
            ),
            "p.parquet: no data rows; expected at least one bar",
        ),
    ],
    ids=["int-time", "text-time", "null-time", "no-time", "negative", "empty"],
)
def test_parquet_content_errors(tmp_path: Path, frame: pd.DataFrame, message: str) -> None:
    path = tmp_path / "p.parquet"
    frame.to_parquet(path)
    with pytest.raises(DataError, match=re.escape(message)):
        read_bars(path)


def test_parquet_date_objects_and_text_prices(tmp_path: Path) -> None:
    expected = make_bars(3, freq="D")
    frame = pd.DataFrame(
        {
            "date": [t.date() for t in expected.index],
            **{c: [f"{v:.5f}" for v in expected[c]] for c in BAR_COLUMNS},
        }
    )
    frame.to_parquet(tmp_path / "d.parquet")
    pd.testing.assert_frame_equal(read_bars(tmp_path / "d.parquet"), expected)


@pytest.mark.parametrize(
    ("lines", "fmt", "message"),
    [
        (
            ["20170102 020000;1.1;1.2;1.0;1.1;0;7", "20170102 020100;1.1;1.2;1.0;1.1;0;7"],
            "histdata",
            "f.csv: line 1: expected 6 fields (YYYYMMDD HHMMSS;open;high;low;close;volume), "
            "found 7",
        ),
        (
            ["2017.01.02,02:00,1.1,1.2,1.0,1.1,5", "2017.01.02,03:00,1.1,1.2,1.0,1.1,5,9"],
            "mt4",
            "f.csv: line 2: expected 7 fields separated by ',' (as on line 1), found 8",
        ),
        (
            ["2017.01.02,02:00,1.1,1.2,1.0", "2017.01.02,03:00,1.1,1.2,1.0"],
            "mt4",
            "f.csv: line 1: expected 6 or 7 fields (YYYY.MM.DD,HH:MM,open,high,low,close,"
            "volume), found 5",
        ),
        (
            ["", "time,open,high,low,close", "", "2017-01-02,1.1,1.2,1.0,1.1,3"],
            "csv",
            "f.csv: line 4: expected 5 fields separated by ',' (as on line 2), found 6",
        ),
        (
            ["time,Open,high,low,close,open", "2017-01-02,1.1,1.2,1.0,1.1,1.1"],
            "csv",
            "f.csv: columns 2 and 6 are both named 'Open'; expected a header naming",
        ),
        (
            ["2017-01-02 00:00,1.1,1.2,1.0,1.1", "2017-01-02 01:00,1.1,1.2,1.0,1.1"],
            "csv",
            "f.csv: missing columns 'open', 'high', 'low', 'close'; found columns "
            "'2017-01-02 00:00', '1.1', '1.2', '1.0', '1.1'; expected a header naming a time "
            "column",
        ),
        (
            ["Time,Open,High,Low,Close,Volume", "2017-01-02 00:00,1.1,1.2,1.0,1.1,1"],
            "mt5",
            "f.csv: missing column '<DATE>'; found columns 'Time', 'Open', 'High', 'Low', "
            "'Close', 'Volume'; expected <DATE>, <TIME> (optional), <OPEN>",
        ),
    ],
    ids=[
        "histdata-extra",
        "mt4-extra",
        "mt4-short",
        "csv-extra-after-blank",
        "csv-duplicate-name",
        "csv-no-header",
        "mt5-not-mt5",
    ],
)
def test_layout_errors(tmp_path: Path, lines: list[str], fmt: str, message: str) -> None:
    with pytest.raises(DataError, match=re.escape(message)):
        read_bars(write(tmp_path / "f.csv", lines), format=fmt)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"\n\n20170102 020000;1.05155;1.05163;1.05148;1.05163;0\n", "histdata"),
        (b"2017.01.02,02:00,1.05155,1.05163,1.05148,1.05163,10\n", "mt4"),
        ("<DATE>\t<TIME>\t<OPEN>\n".encode("utf-16"), "mt5"),
        (b"<date>,<open>\n", "mt5"),
        (b"Gmt time,Open\n01.01.2017 22:00:00.000,1.05\n", "dukascopy"),
        (b"01.01.2017 22:00:00.000,1.05\n", "dukascopy"),
        (b"time,open\n2017-01-02 02:00,1.05\n", "csv"),
        (b"\xff\xd8\xff\xe0 binary", "csv"),
        (b"PAR1", "parquet"),
    ],
    ids=[
        "histdata",
        "mt4",
        "mt5-utf16",
        "mt5-lower",
        "dukascopy",
        "dukascopy-headerless",
        "csv",
        "binary",
        "parquet-magic",
    ],
)
def test_detect_format(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "data.txt"
    path.write_bytes(content)
    assert detect_format(path) == expected


def test_detect_parquet_by_suffix_without_magic(tmp_path: Path) -> None:
    path = tmp_path / "broken.parquet"
    path.write_bytes(b"not really")
    assert detect_format(path) == "parquet"
    with pytest.raises(DataError, match=re.escape("broken.parquet: not a readable Parquet")):
        read_bars(path)
