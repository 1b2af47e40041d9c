"""Property tests: for ANY file content, read_bars returns valid Bars or raises DataError."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forexgrid.data._formats import FORMATS, read_bars
from forexgrid.data._validate import BAR_COLUMNS
from forexgrid.exceptions import DataError

READ_AS = ("auto", *FORMATS)
# Sized so that the file runs in about 15 s on two shared cores (each example reads the
# file seven times, once per format name).
FUZZ = settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def assert_bars(bars: pd.DataFrame) -> None:
    """The Bars contract of DESIGN.md."""
    assert isinstance(bars, pd.DataFrame)
    assert list(bars.columns) == list(BAR_COLUMNS)
    assert (bars.dtypes == np.float64).all()
    assert isinstance(bars.index, pd.DatetimeIndex)
    assert bars.index.name == "time" and str(bars.index.tz) == "UTC"
    assert len(bars) > 0
    assert bars.index.is_unique and bars.index.is_monotonic_increasing
    values = bars.to_numpy()
    assert np.isfinite(values).all()
    assert (values[:, :4] > 0).all() and (bars["volume"] >= 0).all()
    assert (bars["low"] <= bars[["open", "close"]].min(axis=1)).all()
    assert (bars["high"] >= bars[["open", "close"]].max(axis=1)).all()


def check_every_format(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    for fmt in READ_AS:
        try:
            bars = read_bars(path, format=fmt)
        except DataError as err:
            assert str(err)  # a message, never an empty error
        else:
            assert_bars(bars)


@pytest.fixture(scope="module")
def fuzz_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz") / "fuzz.csv"


PREFIXES = st.sampled_from(
    [
        b"",
        b"PAR1",
        b"\xef\xbb\xbf",
        b"\xff\xfe",
        b"Time,Open,High,Low,Close,Volume\n",
        b"<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>\n",
        b"20170102 020000;",
        b"2017.01.02,02:00,",
        b"01.01.2017 22:00:00.000,",
        b"time,open,high,low,close\n2017-01-02 00:00,",
    ]
)


CHARS = st.sampled_from(list("0123456789.,;:\t -+eE\"'nNaIf<>TZ\r\n\x00é\ufeff"))
# Raw bytes, and text over the characters these formats are made of (so that short
# "almost files" such as a lone separator come up often).
BODIES = st.one_of(
    st.binary(max_size=400), st.text(CHARS, max_size=200).map(lambda t: t.encode("utf-8"))
)


@FUZZ
@given(prefix=PREFIXES, body=BODIES)
def test_random_bytes(fuzz_file: Path, prefix: bytes, body: bytes) -> None:
    check_every_format(fuzz_file, prefix + body)


def _sample_syntaxes(lines: list[str]) -> dict[str, list[str]]:
    """The sample's rows in each text format's syntax (the same bars, more parsers fuzzed)."""
    rows = [line.split(",") for line in lines[1:]]
    out = {"dukascopy": lines}
    out["histdata"] = [
        f"{r[0][6:10]}{r[0][3:5]}{r[0][0:2]} {r[0][11:13]}{r[0][14:16]}00;" + ";".join(r[1:])
        for r in rows
    ]
    out["mt4"] = [
        f"{r[0][6:10]}.{r[0][3:5]}.{r[0][0:2]},{r[0][11:16]}," + ",".join(r[1:]) for r in rows
    ]
    out["mt5"] = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    out["mt5"] += [
        f"{r[0][6:10]}.{r[0][3:5]}.{r[0][0:2]}\t{r[0][11:19]}\t" + "\t".join(r[1:]) + "\t0\t1"
        for r in rows
    ]
    out["csv"] = ["time;open;high;low;close;volume"] + [
        f"{r[0][6:10]}-{r[0][3:5]}-{r[0][0:2]}T{r[0][11:19]}+01:00;" + ";".join(r[1:])
        for r in rows
    ]
    return out


@st.composite
def mutated(draw: st.DrawFn, syntaxes: dict[str, list[str]]) -> bytes:
    lines = list(syntaxes[draw(st.sampled_from(sorted(syntaxes)))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(
            st.sampled_from(
                ["replace", "delete", "insert", "swap", "drop", "duplicate", "shuffle", "remove"]
            )
        )
        i = draw(st.integers(0, len(lines) - 1))
        line = lines[i]
        sep = next((s for s in (",", ";", "\t") if s in line), ",")
        fields = line.split(sep)
        if kind in ("replace", "delete", "insert") and line:
            j = draw(st.integers(0, len(line) - 1))
            new = draw(CHARS) if kind != "delete" else ""
            keep = j + 1 if kind != "insert" else j
            lines[i] = line[:j] + new + line[keep:]
        elif kind == "swap" and len(fields) > 1:
            a, b = draw(st.integers(0, len(fields) - 1)), draw(st.integers(0, len(fields) - 1))
            fields[a], fields[b] = fields[b], fields[a]
            lines[i] = sep.join(fields)
        elif kind == "drop" and len(fields) > 1:
            del fields[draw(st.integers(0, len(fields) - 1))]
            lines[i] = sep.join(fields)
        elif kind == "duplicate":
            lines.insert(draw(st.integers(0, len(lines))), line)
        elif kind == "shuffle":
            lines = draw(st.permutations(lines))
        elif kind == "remove" and len(lines) > 1:
            del lines[i]
    return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture(scope="module")
def syntaxes(sample_lines: list[str]) -> dict[str, list[str]]:
    return _sample_syntaxes(sample_lines)


def test_sample_syntaxes_are_valid(fuzz_file: Path, syntaxes: dict[str, list[str]]) -> None:
    # The unmutated seeds must read to the same 30 bars, or the mutations test nothing.
    expected = None
    for fmt, lines in syntaxes.items():
        fuzz_file.write_text("\n".join(lines) + "\n")
        bars = read_bars(fuzz_file, format=fmt)
        # The same clock readings mean other instants in csv (+01:00) and histdata (UTC-5).
        shift = {"csv": 1, "histdata": -5}.get(fmt, 0)
        bars.index = bars.index + pd.Timedelta(hours=shift)
        assert len(bars) == 30
        expected = bars if expected is None else expected
        pd.testing.assert_frame_equal(bars, expected)


@settings(FUZZ, max_examples=150)
@given(data=st.data())
def test_mutated_sample_rows(
    fuzz_file: Path, syntaxes: dict[str, list[str]], data: st.DataObject
) -> None:
    check_every_format(fuzz_file, data.draw(mutated(syntaxes)))


@pytest.fixture(scope="module")
def parquet_bytes(sample_path: Path) -> bytes:
    buffer = io.BytesIO()
    read_bars(sample_path).iloc[:30].to_parquet(buffer)
    return buffer.getvalue()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_parquet(fuzz_file: Path, parquet_bytes: bytes, data: st.DataObject) -> None:
    content = bytearray(parquet_bytes)
    for _ in range(data.draw(st.integers(1, 8))):
        position = data.draw(st.integers(0, len(content) - 1))
        content[position] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(len(content) // 2, len(content)))
    path = fuzz_file.with_suffix(".parquet")
    path.write_bytes(bytes(content[:cut]))
    for fmt in ("auto", "parquet"):
        try:
            assert_bars(read_bars(path, format=fmt))
        except DataError:
            pass
