"""Tests of forexgrid.data.store: importing, merging, listing and serving stored bars."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from pathlib import Path

import pandas as pd
import pytest

from forexgrid.data.sample import load_sample
from forexgrid.data.store import (
    BUNDLED_SOURCE,
    DataStore,
    ImportSummary,
    load_bars,
    validate_symbol,
)
from forexgrid.data.timeframes import resample
from forexgrid.exceptions import DataError


@pytest.fixture(scope="module")
def hourly() -> pd.DataFrame:
    return load_sample("EURUSD", "1h")


@pytest.fixture
def store(tmp_path: Path) -> DataStore:
    return DataStore(tmp_path / "data")


def write_dukascopy(path: Path, bars: pd.DataFrame) -> Path:
    """Write bars as a Dukascopy CSV (repr keeps every float exact)."""
    stamps = bars.index.strftime("%d.%m.%Y %H:%M:%S.000")
    lines = ["Time,Open,High,Low,Close,Volume"]
    for stamp, row in zip(stamps, bars.itertuples(index=False), strict=True):
        lines.append(",".join([stamp, *(repr(float(v)) for v in row)]))
    path.write_text("\n".join(lines) + "\n", "utf-8")
    return path


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------ import


def test_import_two_files_and_merge(store, hourly, tmp_path) -> None:
    jan = write_dukascopy(tmp_path / "jan.csv", hourly.iloc[:1000])
    feb = tmp_path / "feb.parquet"
    hourly.iloc[900:2000].to_parquet(feb)  # overlaps 100 identical bars

    first = store.import_file(jan, "eurusd")
    folder = store.root / "EURUSD"
    assert first == ImportSummary(
        symbol="EURUSD",
        timeframe="1h",
        bars_added=1000,
        total_bars=1000,
        first=hourly.index[0],
        last=hourly.index[999],
        path=folder.resolve() / "1h.parquet",
    )
    second = store.import_file(feb, "EURUSD", format="parquet")
    assert (second.bars_added, second.total_bars) == (1000, 2000)
    assert second.last == hourly.index[1999]
    pd.testing.assert_frame_equal(store.load_bars("EURUSD", "1h"), hourly.iloc[:2000])
    # Only the final files remain: the temporary ones were renamed or removed.
    assert files_in(folder) == ["1h.parquet", "manifest.json"]

    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    entry = manifest["timeframes"]["1h"]
    assert (entry["bars"], entry["first"], entry["last"]) == (
        2000,
        "2017-01-01T22:00:00+00:00",
        hourly.index[1999].isoformat(),
    )
    assert [s["name"] for s in entry["sources"]] == ["jan.csv", "feb.parquet"]
    assert entry["sources"][0]["sha256"] == hashlib.sha256(jan.read_bytes()).hexdigest()
    assert entry["sources"][1]["sha256"] == hashlib.sha256(feb.read_bytes()).hexdigest()
    assert [s["bars"] for s in entry["sources"]] == [1000, 1100]
    assert [s["bars_added"] for s in entry["sources"]] == [1000, 1000]
    for source in entry["sources"]:
        assert pd.Timestamp(source["imported_at"]).tz is not None

    # Importing the same file again adds nothing and does not duplicate its manifest entry.
    again = store.import_file(jan, "EURUSD")
    assert (again.bars_added, again.total_bars) == (0, 2000)
    manifest = json.loads((folder / "manifest.json").read_text("utf-8"))
    assert sorted(s["name"] for s in manifest["timeframes"]["1h"]["sources"]) == [
        "feb.parquet",
        "jan.csv",
    ]


def test_conflicting_bars_are_an_error_unless_replace(store, hourly, tmp_path) -> None:
    store.import_file(write_dukascopy(tmp_path / "a.csv", hourly.iloc[:500]), "EURUSD")
    changed = hourly.iloc[400:600].copy()
    changed.loc[changed.index[50:], "volume"] *= 2  # bars 450.. conflict with stored ones
    bad = write_dukascopy(tmp_path / "bad.csv", changed)
    stamp = hourly.index[450]
    row = hourly.iloc[450]
    was = (
        f"open={row.open:g}, high={row.high:g}, low={row.low:g}, close={row.close:g}, "
        f"volume={row.volume:g}"
    )
    with pytest.raises(
        DataError,
        match=re.escape(
            f"bad.csv: bar at {stamp} conflicts with the stored EURUSD 1h bar (stored {was}; "
            f"file open={row.open:g}"
        ),
    ) as info:
        store.import_file(bad, "EURUSD")
    assert (
        "; 50 conflicting bar(s) in all; import with --replace (replace=True in Python) to "
        "replace the stored series"
    ) in str(info.value)
    # Nothing changed.
    pd.testing.assert_frame_equal(store.load_bars("EURUSD", "1h"), hourly.iloc[:500])

    summary = store.import_file(bad, "EURUSD", replace=True)
    assert (summary.bars_added, summary.total_bars) == (100, 200)
    pd.testing.assert_frame_equal(store.load_bars("EURUSD", "1h"), changed)
    manifest = json.loads((store.root / "EURUSD" / "manifest.json").read_text("utf-8"))
    assert [s["name"] for s in manifest["timeframes"]["1h"]["sources"]] == ["bad.csv"]
    assert manifest["timeframes"]["1h"]["sources"][0]["replace"] is True


def test_failed_write_leaves_store_intact(store, hourly, tmp_path, monkeypatch) -> None:
    store.import_file(write_dukascopy(tmp_path / "a.csv", hourly.iloc[:100]), "EURUSD")
    folder = store.root / "EURUSD"
    before = (folder / "1h.parquet").read_bytes()

    def crash(self, path, *args, **kwargs):
        Path(path).write_bytes(b"PAR1 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_parquet", crash)
    with pytest.raises(OSError, match="disk full"):
        store.import_file(write_dukascopy(tmp_path / "b.csv", hourly.iloc[100:200]), "EURUSD")
    assert (folder / "1h.parquet").read_bytes() == before
    assert files_in(folder) == ["1h.parquet", "manifest.json"]


def test_import_unreadable_or_untimed_file(store, hourly, tmp_path) -> None:
    garbage = tmp_path / "garbage.csv"
    garbage.write_bytes(b"\x00\x01 not market data")
    with pytest.raises(DataError):
        store.import_file(garbage, "EURUSD")
    one = write_dukascopy(tmp_path / "one.csv", hourly.iloc[:1])
    with pytest.raises(
        DataError,
        match=re.escape(f"{one}: cannot infer the timeframe from 1 bar(s); at least 2 are needed"),
    ):
        store.import_file(one, "EURUSD")
    assert not store.root.exists() or store.symbols() == []


# ------------------------------------------------------------------------------ serving


def test_load_coarser_exact_and_finer(store, hourly, tmp_path) -> None:
    store.import_file(write_dukascopy(tmp_path / "h.csv", hourly.iloc[:3000]), "EURUSD")
    stored = hourly.iloc[:3000]
    pd.testing.assert_frame_equal(store.load_bars("EURUSD", "4H"), resample(stored, "4h"))
    pd.testing.assert_frame_equal(store.load_bars("eurusd", "D1"), resample(stored, "1d"))
    # A stored 4h series is read directly, not resampled from the finer 1h one.
    partial_4h = resample(stored, "4h").iloc[:100]
    store.import_file(write_dukascopy(tmp_path / "four.csv", partial_4h), "EURUSD")
    assert store.stored_timeframes("EURUSD") == ["1h", "4h"]
    pd.testing.assert_frame_equal(store.load_bars("EURUSD", "4h"), partial_4h)
    # 1d still comes from the finest stored (1h).
    assert len(store.load_bars("EURUSD", "1d")) == len(resample(stored, "1d"))
    with pytest.raises(
        DataError,
        match=re.escape(
            "cannot serve EURUSD 15m bars: the finest stored timeframe is 1h (stored: 1h, 4h); "
            "import 15m or finer data"
        ),
    ):
        store.load_bars("EURUSD", "15m")


def test_finer_than_stored_and_unknown_symbol(store, hourly, tmp_path) -> None:
    four = write_dukascopy(tmp_path / "gbp4h.csv", resample(hourly.iloc[:600], "4h"))
    assert store.import_file(four, "GBPUSD").timeframe == "4h"
    with pytest.raises(
        DataError,
        match=re.escape(
            "cannot serve GBPUSD 1h bars: the finest stored timeframe is 4h (stored: 4h); "
            "import 1h or finer data"
        ),
    ):
        store.load_bars("GBPUSD", "H1")
    with pytest.raises(
        DataError,
        match=re.escape(
            "no data for USDJPY 1h: import it with `forexgrid data import FILE --symbol USDJPY` "
            "(or ws.data.import_file(FILE, symbol='USDJPY') in a notebook); symbols imported "
            f"in {store.root}: GBPUSD"
        ),
    ):
        store.load_bars("USDJPY", "1h")
    empty = tmp_path / "empty"
    with pytest.raises(DataError, match=re.escape(f"symbols imported in {empty}: none")):
        DataStore(tmp_path / "empty").load_bars("USDJPY", "1h")


def test_the_bundled_sample_at_a_finer_timeframe_says_how_to_import(store) -> None:
    assert store.serves_sample("eurusd") and not store.serves_sample("GBPUSD")
    with pytest.raises(
        DataError,
        match=re.escape(
            "no data for EURUSD 15m: nothing is imported and the bundled EURUSD sample has 1h "
            "bars and cannot give 15m bars; use one of 1h, 4h, 1d; import it with "
            "`forexgrid data import FILE --symbol EURUSD` (or ws.data.import_file(FILE, "
            "symbol='EURUSD') in a notebook)"
        ),
    ):
        store.load_bars("EURUSD", "15m")


def test_no_message_names_an_internal_class() -> None:
    # Messages speak of commands and of ws.data, never of classes and methods behind them
    # ("import a file first (DataStore.import_file)" was one). Docstrings may.
    import ast

    import forexgrid

    package = Path(forexgrid.__file__).parent
    class_method = re.compile(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)+\.[a-z_]+")
    offenders = []
    for path in sorted(package.rglob("*.py")):
        tree = ast.parse(path.read_text("utf-8"))
        docs = {
            id(node.value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                if id(node) not in docs and class_method.search(node.value):
                    offenders.append(f"{path.relative_to(package)}:{node.lineno}")
    assert offenders == []


def test_bundled_sample_fallback(store, hourly, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="forexgrid.data.store"):
        bars = store.load_bars("eurusd", "1h")
    pd.testing.assert_frame_equal(bars, hourly)
    assert "no EURUSD data imported" in caplog.text and "using the bundled sample" in caplog.text
    pd.testing.assert_frame_equal(store.load_bars("EURUSD", "4h"), resample(hourly, "4h"))
    with pytest.raises(DataError, match=re.escape("the bundled EURUSD sample has 1h bars")):
        store.load_bars("EURUSD", "15m")
    assert not store.root.exists()  # reading never creates the store


def test_list(store, hourly, tmp_path) -> None:
    columns = ["symbol", "timeframe", "bars", "first", "last", "source"]
    empty = store.list()
    assert list(empty.columns) == columns
    assert empty.to_dict("records") == [
        {
            "symbol": "EURUSD",
            "timeframe": "1h",
            "bars": 6225,
            "first": pd.Timestamp("2017-01-01 22:00", tz="UTC"),
            "last": pd.Timestamp("2017-12-29 21:00", tz="UTC"),
            "source": BUNDLED_SOURCE,
        }
    ]
    store.import_file(
        write_dukascopy(tmp_path / "g.csv", resample(hourly.iloc[:600], "4h")), "GBPUSD"
    )
    with_gbp = store.list()
    assert with_gbp[["symbol", "timeframe", "source"]].values.tolist() == [
        ["EURUSD", "1h", BUNDLED_SOURCE],
        ["GBPUSD", "4h", "g.csv"],
    ]
    store.import_file(write_dukascopy(tmp_path / "e1.csv", hourly.iloc[:50]), "EURUSD")
    store.import_file(write_dukascopy(tmp_path / "e2.csv", hourly.iloc[50:80]), "EURUSD")
    table = store.list()
    assert table[["symbol", "timeframe", "bars", "source"]].values.tolist() == [
        ["EURUSD", "1h", 80, "e1.csv, e2.csv"],
        ["GBPUSD", "4h", len(resample(hourly.iloc[:600], "4h")), "g.csv"],
    ]
    assert table.loc[0, "first"] == hourly.index[0]
    assert table.loc[0, "last"] == hourly.index[79]
    assert str(table["bars"].dtype) == "int64"
    assert str(table["first"].dtype).startswith("datetime64") and "UTC" in str(
        table["first"].dtype
    )
    assert store.symbols() == ["EURUSD", "GBPUSD"]


# ------------------------------------------------------------------------------ hostile input


HOSTILE = [
    "..",
    "../etc",
    "EUR/USD",
    "",
    "EUR\x00USD",
    "a b",
    "EURUSD\n",
    "/tmp",
    "~",
    "X" * 21,
    "ÉURUSD",
    "EUR\\USD",
    "EUR-USD",
]


@pytest.mark.parametrize("symbol", HOSTILE, ids=[repr(s) for s in HOSTILE])
def test_hostile_symbols_rejected(store, hourly, tmp_path, symbol) -> None:
    message = f"invalid symbol {symbol!r}: expected 1 to 20 letters or digits, e.g. 'EURUSD'"
    source = write_dukascopy(tmp_path / "src.csv", hourly.iloc[:20])
    with pytest.raises(DataError, match=re.escape(message)):
        validate_symbol(symbol)
    with pytest.raises(DataError, match=re.escape(message)):
        store.import_file(source, symbol)
    with pytest.raises(DataError, match=re.escape(message)):
        store.load_bars(symbol, "1h")
    with pytest.raises(DataError, match=re.escape(message)):
        store.stored_timeframes(symbol)
    assert files_in(tmp_path) == ["src.csv"]  # nothing written anywhere


@pytest.mark.parametrize("value", [None, 7, b"EURUSD"], ids=["none", "int", "bytes"])
def test_non_string_symbol(value) -> None:
    with pytest.raises(DataError, match=re.escape(f"invalid symbol {value!r}")):
        validate_symbol(value)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("given", "expected"),
    [("eurusd", "EURUSD"), ("Us30", "US30"), ("X", "X"), ("A" * 20, "A" * 20), ("123", "123")],
    ids=["lower", "mixed", "one", "twenty", "digits"],
)
def test_valid_symbols(given: str, expected: str) -> None:
    assert validate_symbol(given) == expected


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_symlink_out_of_the_store_is_refused(store, tmp_path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    store.root.mkdir()
    (store.root / "EVIL").symlink_to(outside, target_is_directory=True)
    with pytest.raises(DataError, match=re.escape("symbol 'EVIL' resolves to")) as info:
        store.load_bars("EVIL", "1h")
    assert "outside the data directory" in str(info.value)


# ------------------------------------------------------------------------------ corruption


def test_corrupt_parquet(store, hourly, tmp_path) -> None:
    source = write_dukascopy(tmp_path / "a.csv", hourly.iloc[:100])
    store.import_file(source, "EURUSD")
    target = (store.root / "EURUSD" / "1h.parquet").resolve()
    target.write_bytes(b"this is not parquet at all")
    expected = f"{target}: cannot read stored bars ("
    advice = "the file is corrupt: delete it and re-import the source file"
    for call in (
        lambda: store.load_bars("EURUSD", "1h"),
        lambda: store.load_bars("EURUSD", "1d"),
        lambda: store.list(),
        lambda: store.import_file(source, "EURUSD"),
    ):
        with pytest.raises(DataError, match=re.escape(expected)) as info:
            call()
        assert advice in str(info.value)


def test_parquet_that_is_not_bars(store, hourly, tmp_path) -> None:
    store.import_file(write_dukascopy(tmp_path / "a.csv", hourly.iloc[:100]), "EURUSD")
    target = (store.root / "EURUSD" / "1h.parquet").resolve()
    pd.DataFrame({"x": [1, 2]}).to_parquet(target)
    with pytest.raises(
        DataError,
        match=re.escape(f"{target}: cannot read stored bars (the content is not a Bars frame)"),
    ):
        store.load_bars("EURUSD", "1h")


def test_corrupt_manifest(store, hourly, tmp_path) -> None:
    store.import_file(write_dukascopy(tmp_path / "a.csv", hourly.iloc[:100]), "EURUSD")
    manifest = (store.root / "EURUSD" / "manifest.json").resolve()
    manifest.write_text("{not json", "utf-8")
    with pytest.raises(DataError, match=re.escape(f"{manifest}: unreadable manifest (")):
        store.list()
    manifest.write_text("[]", "utf-8")
    with pytest.raises(DataError, match=re.escape(f"{manifest}: not a forexgrid manifest")):
        store.list()


# ------------------------------------------------------------------------------ settings


def test_module_load_bars_uses_settings(hourly, tmp_path, monkeypatch) -> None:
    from forexgrid.config import load_config

    settings = load_config({"data": {"data_dir": "market"}}, workspace=tmp_path)
    store = DataStore.from_settings(settings)
    assert store.root == tmp_path / "market"
    store.import_file(write_dukascopy(tmp_path / "g.csv", hourly.iloc[:48]), "GBPUSD")
    pd.testing.assert_frame_equal(load_bars("GBPUSD", "1h", settings), hourly.iloc[:48])
    # Without settings: the defaults, with the workspace from the environment.
    monkeypatch.setenv("FOREXGRID_WORKSPACE", str(tmp_path))
    with pytest.raises(
        DataError, match=re.escape(f"symbols imported in {tmp_path / 'data'}: none")
    ):
        load_bars("GBPUSD", "1h")
    pd.testing.assert_frame_equal(load_bars("EURUSD", "4h"), resample(hourly, "4h"))
