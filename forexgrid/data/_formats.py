"""Readers for the market-data file formats forexgrid accepts (see docs/data-formats.md).

Every reader turns a file into a raw frame (a UTC ``time`` column, the price and volume
fields as text, each row's file ``line``) and hands it to
:func:`forexgrid.data._validate.validate_bars`, which returns Bars. Text is split by the
pandas C parser with every field kept as a string, so the validator can tell a missing
price from a non-numeric one, and timestamps are parsed with explicit ``format=`` strings:
no per-row Python on the way.

Any problem with a file surfaces as a :class:`~forexgrid.exceptions.DataError` naming the
file (and the line where there is one); the specific exceptions of the I/O, decoding,
CSV and Parquet layers are caught at this boundary and chained with ``from err``.
"""

from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import re
from collections.abc import Sequence
from datetime import tzinfo
from pathlib import Path

import numpy as np
import pandas as pd

from forexgrid._reading import read_limited
from forexgrid.data._validate import (
    LINE_COLUMN,
    PRICE_COLUMNS,
    TIME_UNIT,
    missing_columns_error,
    raise_for_rows,
    show_text,
    validate_bars,
)
from forexgrid.exceptions import DataError, PathError, quote_input

__all__ = [
    "DEFAULT_MAX_BYTES",
    "FORMATS",
    "HISTDATA_TZ",
    "bars_from_bytes",
    "detect_format",
    "read_bars",
    "read_source",
]

logger = logging.getLogger(__name__)

FORMATS = ("dukascopy", "histdata", "mt4", "mt5", "csv", "parquet")
# HistData.com quotes Eastern Standard Time all year, without daylight saving: UTC-5.
# (POSIX sign convention: "Etc/GMT+5" is five hours *behind* UTC.)
HISTDATA_TZ = "Etc/GMT+5"

_HEAD_BYTES = 64 * 1024
DEFAULT_MAX_BYTES = 1024 << 20
"""Bytes :func:`read_bars` reads at most by default: ``data.max_import_mb``'s default."""
_LIMIT_HINT = "raise data.max_import_mb (or max_bytes=) to read it"
_PARQUET_MAGIC = b"PAR1"
_PARQUET_SUFFIXES = (".parquet", ".pq")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_LEADING_BLANK = re.compile(r"(?:[ \t]*(?:\r\n|\r|\n))*")
_FIRST_LINE = re.compile(r"[^\r\n]*")
_HISTDATA_LINE = re.compile(r"\s*\d{8} \d{6};")
_MT4_LINE = re.compile(r"\s*\d{4}\.\d{2}\.\d{2},\d{2}:\d{2},")
_DUKASCOPY_STAMP = re.compile(r"\s*\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}(?::\d{2})?")
_PARSER_FIELDS = re.compile(r"Expected (\d+) fields in line (\d+), saw (\d+)")
_ZONE_SUFFIX = re.compile(
    r"(?:\d:\d{2}(?::\d{2}(?:[.,]\d+)?)?|T\d{4}(?:\d{2})?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$",
    re.IGNORECASE,
)
_UTC_WORD = re.compile(r"\s*(?:UTC|GMT)$", re.IGNORECASE)
_DOTTED_DATE = re.compile(r"^(\d{4})[./](\d{1,2})[./](\d{1,2})")
_DUKASCOPY_ZONE = re.compile(r"GMT[+-]\d{4}$")

# Header names are compared after _norm(): lower case, quotes, <> and _ removed.
_TIME_NAMES = ("datetime", "timestamp", "time", "gmt time", "local time", "date")
_VOLUME_NAMES = ("volume", "tickvol", "tick volume", "vol", "real volume")
_OHLCV_NAMES = frozenset((*PRICE_COLUMNS, *_VOLUME_NAMES))

_DUKASCOPY_FORMATS = ("%d.%m.%Y %H:%M:%S.%f", "%d.%m.%Y %H:%M:%S", "%d.%m.%Y %H:%M")
_MT_FORMATS = ("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M", "%Y.%m.%d")
_EXPECTED_TIME = {
    "dukascopy": "DD.MM.YYYY HH:MM:SS.fff (day first), optionally followed by GMT+hhmm",
    "histdata": "YYYYMMDD HHMMSS",
    "mt4": "YYYY.MM.DD,HH:MM",
    "mt5": "YYYY.MM.DD with HH:MM:SS",
    "csv": "an ISO-like date and time such as 2017-01-02 02:00:00 or 2017-01-02T02:00+02:00",
    "parquet": "timestamps or ISO-like text",
}


def read_bars(
    path: str | os.PathLike[str],
    format: str = "auto",
    tz: str | tzinfo | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_streams: bool = False,
) -> pd.DataFrame:
    """Read a market-data file into Bars (UTC OHLCV, validated).

    Parameters
    ----------
    path : str or os.PathLike
        The file to read.
    format : str
        One of :data:`FORMATS` (case-insensitive), or ``"auto"`` (default) to detect it from
        the file's first bytes with :func:`detect_format`.
    tz : str, tzinfo or None
        The time zone of timestamps that carry no zone in the file, e.g. a MetaTrader
        broker's server time (``"Etc/GMT-2"`` is UTC+2). None means UTC. Ignored, with a
        warning, for HistData files, which are always EST without daylight saving
        (UTC-5). Timestamps with a zone offset in the text keep their own offset.
    max_bytes : int
        The largest file read (1 GiB by default, ``data.max_import_mb``); a larger one is
        refused from its size, before reading. A Parquet file must also decode to at most
        this many bytes.
    allow_streams : bool
        Also read a pipe, FIFO or device (``/dev/stdin``, ``<(unzip -p x.zip)``) up to
        ``max_bytes``; refused by default, since a FIFO nobody writes to or ``/dev/zero``
        never ends.

    Returns
    -------
    pandas.DataFrame
        Bars: a tz-aware UTC DatetimeIndex named ``time``, strictly increasing, and float64
        columns ``open high low close volume``.

    Raises
    ------
    DataError
        For an unknown format name or time zone, a missing or unreadable file, a file that is
        not a regular file (unless ``allow_streams``) or larger than ``max_bytes``, a file
        that is not text (or not Parquet), and every Bars-contract violation reported by
        :func:`~forexgrid.data._validate.validate_bars` (the message names the file and line).
        No other exception escapes for any file content.
    """
    file = _as_path(path)
    _format_name(format)
    _resolve_tz(tz)  # argument errors before any reading
    raw = read_source(file, max_bytes=max_bytes, allow_streams=allow_streams)
    return bars_from_bytes(raw, file, format, tz, max_bytes=max_bytes)


def read_source(
    path: str | os.PathLike[str],
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    allow_streams: bool = False,
) -> bytes:
    """The bytes of a market-data file, read once and bounded (see :func:`read_bars`).

    Raises
    ------
    DataError
        The file is missing, a directory, unreadable, not a regular file (unless
        ``allow_streams``) or larger than ``max_bytes``.
    """
    file = _as_path(path)
    return _read_bytes(file, str(file), max_bytes=max_bytes, allow_streams=allow_streams)


def bars_from_bytes(
    raw: bytes,
    path: str | os.PathLike[str],
    format: str = "auto",
    tz: str | tzinfo | None = None,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> pd.DataFrame:
    """Bars from the content ``raw`` of the file ``path`` (named in messages), as
    :func:`read_bars` reads them; ``format="auto"`` detects from ``raw`` and the suffix.
    """
    file = _as_path(path)
    fmt = _format_name(format)
    zone = _resolve_tz(tz)
    if fmt != "auto":
        return _parse(raw, file, fmt, tz, zone, max_bytes)
    fmt, why = _detect_why(raw[:_HEAD_BYTES], file)
    try:
        return _parse(raw, file, fmt, tz, zone, max_bytes)
    except DataError as err:
        # The guess may be what went wrong: say what it was and how to overrule it.
        raise DataError(
            f"{err} (read as {_FORMAT_LABELS[fmt]}, {why}; pass --format, or format= in "
            "Python, to choose)"
        ) from err


# How a detected format is named in messages: the name --format takes, and what it is.
_FORMAT_LABELS = {
    "dukascopy": "dukascopy CSV",
    "histdata": "histdata ASCII",
    "mt4": "mt4 (MetaTrader 4 export)",
    "mt5": "mt5 (MetaTrader 5 export)",
    "csv": "csv (generic OHLCV)",
    "parquet": "parquet",
}


def _parse(
    raw: bytes, file: Path, fmt: str, tz: object, zone: tzinfo, max_bytes: int
) -> pd.DataFrame:
    source = file.name or str(file)
    if fmt == "histdata":
        if tz is not None and str(zone) != HISTDATA_TZ:
            logger.warning(
                "%s: tz=%r ignored: HistData files are EST without daylight saving (%s)",
                source,
                str(zone),
                HISTDATA_TZ,
            )
        zone = _resolve_tz(HISTDATA_TZ)
    if fmt == "parquet":
        frame = _read_parquet(raw, source, zone, max_bytes)
    else:
        frame = _TEXT_READERS[fmt](_text(raw, source), source, zone)
    bars = validate_bars(frame, source)
    logger.debug("%s: read %d bars as %s", source, len(bars), fmt)
    return bars


def detect_format(path: str | os.PathLike[str]) -> str:
    """Name the format of a market-data file from its first bytes.

    Parquet by its ``PAR1`` magic; ``mt5`` by a ``<DATE>`` header; ``histdata`` by a first
    line ``YYYYMMDD HHMMSS;``; ``mt4`` by ``YYYY.MM.DD,HH:MM,``; ``dukascopy`` by a
    ``DD.MM.YYYY HH:MM:SS`` timestamp opening the first or second line; a ``.parquet`` or
    ``.pq`` name otherwise means Parquet; anything else is the generic ``csv``.

    Parameters
    ----------
    path : str or os.PathLike
        The file to inspect.

    Returns
    -------
    str
        One of :data:`FORMATS`.

    Raises
    ------
    DataError
        When the file is missing, a directory, not a regular file or unreadable.
    """
    file = _as_path(path)
    return _detect(_read_bytes(file, str(file), max_bytes=_HEAD_BYTES, head=True), file)


def _detect(head: bytes, file: Path) -> str:
    return _detect_why(head, file)[0]


def _detect_why(head: bytes, file: Path) -> tuple[str, str]:
    """The format of a file from its first bytes, and what gave it away (for messages)."""
    if head.startswith(_PARQUET_MAGIC):
        return "parquet", "found by its PAR1 magic bytes"
    text = _decode(head, strict=False)
    body = text[_LEADING_BLANK.match(text).end() :]
    first, second = ([*_LINE_BREAK.split(body, maxsplit=2), "", ""])[:2]
    if "<date>" in first.lower():
        return "mt5", "guessed from the <DATE> header"
    if _HISTDATA_LINE.match(first):
        return "histdata", "guessed from the first line"
    if _MT4_LINE.match(first):
        return "mt4", "guessed from the first line"
    if _DUKASCOPY_STAMP.match(first):
        return "dukascopy", "guessed from the first line"
    if _DUKASCOPY_STAMP.match(second):
        return "dukascopy", "guessed from the header and first row"
    if file.suffix.lower() in _PARQUET_SUFFIXES:
        return "parquet", f"guessed from the {file.suffix} name"
    return "csv", "no other format matched the first lines"


# --- arguments and files ------------------------------------------------------------------


def _as_path(path: object) -> Path:
    if isinstance(path, (str, os.PathLike)):
        try:
            return Path(path)
        except TypeError as err:  # a PathLike whose __fspath__ returns bytes
            raise DataError(f"path {quote_input(path)}: expected a str path: {err}") from err
    raise DataError(f"path must be a str or os.PathLike, got {type(path).__name__}")


def _format_name(format: object) -> str:
    name = format.strip().lower() if isinstance(format, str) else None
    if name == "auto" or name in FORMATS:
        return name
    raise DataError(
        f"unknown data format {quote_input(format)}; expected 'auto' or one of "
        f"{', '.join(FORMATS)}"
    )


def _resolve_tz(tz: object) -> tzinfo:
    if tz is None:
        tz = "UTC"
    if not isinstance(tz, (str, tzinfo)):
        raise DataError(
            f"tz must be a time-zone name or tzinfo, got {type(tz).__name__} {quote_input(tz)}"
        )
    try:
        zone = pd.Timestamp("2000-01-01").tz_localize(tz).tz
    except (LookupError, ValueError, TypeError, OSError) as err:
        raise DataError(
            f"unknown time zone tz={quote_input(tz)}; expected an IANA name such as 'UTC', "
            "'Europe/London' or 'Etc/GMT-2' (UTC+2)"
        ) from err
    return zone


def _read_bytes(
    file: Path, source: str, *, max_bytes: int, allow_streams: bool = False, head: bool = False
) -> bytes:
    try:
        return read_limited(
            file, max_bytes, hint=_LIMIT_HINT, allow_streams=allow_streams, head=head
        )
    except PathError as err:
        raise DataError(str(err)) from err
    except FileNotFoundError as err:
        raise DataError(f"{file}: no such file") from err
    except IsADirectoryError as err:
        raise DataError(f"{file}: is a directory; expected a market-data file") from err
    except PermissionError as err:
        raise DataError(f"{file}: permission denied") from err
    except (OSError, ValueError) as err:  # ValueError: e.g. a NUL byte in the path
        raise DataError(f"{file}: cannot read the file: {err}") from err


def _decode(raw: bytes, strict: bool = True) -> str:
    """Text of a file: UTF-8 (BOM optional), or UTF-16 when it starts with a UTF-16 BOM.

    MetaTrader 5 writes its exports as UTF-16 with a BOM, hence the second case.
    """
    errors = "strict" if strict else "replace"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return raw.decode("utf-16", errors=errors)
    return raw.decode("utf-8-sig", errors=errors)


def _text(raw: bytes, source: str) -> str:
    try:
        text = _decode(raw)
    except UnicodeDecodeError as err:
        # The utf-8-sig codec reports positions after the BOM it removed.
        start = err.start + len(raw) - len(err.object)
        line = raw[:start].count(b"\n") + 1
        raise DataError(
            f"{source}: line {line}: not valid text (byte 0x{raw[start]:02x} at offset "
            f"{start}); expected a UTF-8 text file (or UTF-16 with a byte-order mark)"
        ) from err
    nul = text.find("\x00")
    if nul >= 0:
        line = len(_LINE_BREAK.findall(text, 0, nul)) + 1
        raise DataError(
            f"{source}: line {line}: contains NUL bytes; expected a text file "
            "(a binary file, or UTF-16 without a byte-order mark?)"
        )
    if not text.strip():
        raise DataError(f"{source}: file is empty; expected OHLC bars")
    return text


# --- splitting text into fields -----------------------------------------------------------


def _split(text: str, source: str, seps: Sequence[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """All non-blank rows as string fields (columns 0..k-1) and their 1-based file lines."""
    start = _LEADING_BLANK.match(text).end()
    # Leading blank lines would make the parser expect one field per row; skip them but
    # keep counting lines from the top of the file.
    offset = len(_LINE_BREAK.findall(text, 0, start))
    body = text[start:]
    first = _FIRST_LINE.match(body).group()
    sep = max(seps, key=first.count)
    try:
        rows = pd.read_csv(
            io.StringIO(body),
            sep=sep,
            header=None,
            dtype=str,
            engine="c",
            quoting=csv.QUOTE_NONE,
            skip_blank_lines=False,  # one row per physical line: row i is line offset+i+1
            keep_default_na=False,
            na_filter=False,
        )
    except pd.errors.ParserError as err:
        found = _PARSER_FIELDS.search(str(err))
        if found is None:
            raise DataError(f"{source}: cannot split the file into fields: {err}") from err
        expected, line, saw = (int(g) for g in found.groups())
        raise DataError(
            f"{source}: line {line + offset}: expected {expected} fields separated by "
            f"{sep!r} (as on line {offset + 1}), found {saw}"
        ) from err
    except (pd.errors.EmptyDataError, ValueError, OverflowError) as err:
        raise DataError(f"{source}: cannot split the file into fields: {err}") from err
    lines = np.arange(len(rows), dtype=np.int64) + offset + 1
    rows = rows.apply(lambda col: col.str.strip().str.strip("\"'").str.strip())
    filled = (rows != "").any(axis=1).to_numpy()
    if not filled.any():
        raise DataError(f"{source}: no data: every line is empty or only separators")
    rows = rows.loc[filled].reset_index(drop=True)
    return rows, lines[filled]


def _norm(name: object) -> str:
    text = str(name).strip().strip("\"'<>").lower().replace("_", " ")
    return " ".join(text.split())


def _columns(
    names: Sequence[str],
    source: str,
    time_names: Sequence[str],
    expected: str,
    pair: bool = False,
    fallback: int | None = None,
    time_label: str = "time",
) -> dict[str, int]:
    """Map header names to field positions.

    Keys: ``time`` (or ``date`` + ``clock`` when ``pair`` and both a date and a time column
    exist), the price names and ``volume`` (the first of the volume aliases found).
    ``fallback`` is the time column's position when no name in ``time_names`` is present.
    """
    normed = [_norm(n) for n in names]
    positions: dict[str, list[int]] = {}
    for i, name in enumerate(normed):
        positions.setdefault(name, []).append(i)

    def one(name: str) -> int | None:
        found = positions.get(name, [])
        if len(found) > 1:
            raise DataError(
                f"{source}: columns {found[0] + 1} and {found[1] + 1} are both named "
                f"{quote_input(names[found[0]])}; expected {expected}, each once"
            )
        return found[0] if found else None

    mapping: dict[str, int] = {}
    date, clock = one("date"), one("time")
    if pair and date is not None and clock is not None:
        mapping["date"], mapping["clock"] = date, clock
    else:
        chosen = next((one(n) for n in time_names if one(n) is not None), fallback)
        if chosen is not None:
            mapping["time"] = chosen
    for name in PRICE_COLUMNS:
        if one(name) is not None:
            mapping[name] = one(name)
    volume = next((one(n) for n in _VOLUME_NAMES if one(n) is not None), None)
    if volume is not None:
        mapping["volume"] = volume
    has_time = "time" in mapping or "date" in mapping
    missing = [] if has_time else [time_label]
    missing += [c for c in PRICE_COLUMNS if c not in mapping]
    if missing:
        raise missing_columns_error(source, missing, names, expected)
    return mapping


# --- timestamps ---------------------------------------------------------------------------


def _localize(naive: pd.Series, zone: tzinfo, source: str, lines: np.ndarray | None) -> pd.Series:
    """Naive wall-clock times in ``zone`` -> UTC; DST gaps and repeats are data errors."""
    try:
        return naive.dt.tz_localize(zone, ambiguous="raise", nonexistent="raise").dt.tz_convert(
            "UTC"
        )
    except ValueError:
        pass
    try:
        # A repeated autumn hour, in file order, can be resolved from the sequence.
        local = naive.dt.tz_localize(zone, ambiguous="infer", nonexistent="raise")
    except ValueError as err:
        probe = naive.dt.tz_localize(zone, ambiguous="NaT", nonexistent="NaT")
        bad = (probe.isna() & naive.notna()).to_numpy()
        raise_for_rows(
            source,
            bad,
            None if lines is None else lines[naive.index.to_numpy()],
            lambda i: (
                f"time {naive.iloc[i]} does not exist or is ambiguous in time zone {zone} "
                "(a daylight-saving change); if the file's clock has no daylight saving, "
                "pass a fixed-offset zone such as tz='Etc/GMT-2'"
            ),
        )
        raise DataError(f"{source}: cannot place the times in time zone {zone}: {err}") from err
    return local.dt.tz_convert("UTC")


def _parse_times(
    text: pd.Series,
    formats: Sequence[tuple[str, bool]],
    zone: tzinfo,
    source: str,
    lines: np.ndarray | None,
    expected: str,
    zoned: np.ndarray | None = None,
) -> pd.Series:
    """Parse timestamps; each row takes the first format of its kind that fits.

    ``formats`` holds ``(format, with_zone)`` pairs; a pair applies to the rows whose
    ``zoned`` flag equals ``with_zone``. Zoned text keeps its own offset; naive text is
    wall-clock time in ``zone``. A row no format fits is a DataError naming its line.
    """
    text = text.reset_index(drop=True).astype("str").str.strip()
    if zoned is None:
        zoned = np.zeros(len(text), dtype=bool)
    out = np.full(len(text), np.datetime64("NaT"), dtype=f"datetime64[{TIME_UNIT}]")
    todo = (text != "").to_numpy(dtype=bool, na_value=False, copy=True)
    for fmt, with_zone in formats:
        rows = todo & (zoned == with_zone)
        if not rows.any():
            continue
        part = text[rows]
        try:
            parsed = pd.to_datetime(part, format=fmt, errors="coerce", utc=with_zone)
        except (ValueError, OverflowError):
            continue  # e.g. mixed offsets in text taken for naive: reported as unparseable
        if not with_zone:
            if isinstance(parsed.dtype, pd.DatetimeTZDtype):
                continue  # the text named a zone after all: not a naive format
            parsed = _localize(parsed, zone, source, lines)
        ok = parsed.notna().to_numpy()
        positions = np.flatnonzero(rows)[ok]
        out[positions] = parsed[ok].dt.tz_localize(None).dt.as_unit(TIME_UNIT).to_numpy()
        todo[positions] = False
    raise_for_rows(
        source,
        np.isnat(out),
        lines,
        lambda i: (
            f"unparseable timestamp {show_text(text.iloc[i])}; expected {expected}"
            if text.iloc[i]
            else "missing timestamp"
        ),
    )
    return pd.Series(out).dt.tz_localize("UTC")


def _iso_times(
    text: pd.Series, zone: tzinfo, source: str, lines: np.ndarray | None, expected: str
) -> pd.Series:
    """ISO-like text (``YYYY.MM.DD`` and ``YYYY/MM/DD`` dates too), offsets honoured."""
    text = text.reset_index(drop=True).astype("str").str.strip()
    text = text.str.replace(_UTC_WORD, "+00:00", regex=True)
    text = text.str.replace(_DOTTED_DATE, r"\1-\2-\3", regex=True)
    zoned = text.str.contains(_ZONE_SUFFIX, regex=True).to_numpy(dtype=bool, na_value=False)
    formats = (("ISO8601", True), ("ISO8601", False))
    return _parse_times(text, formats, zone, source, lines, expected, zoned)


# --- the readers --------------------------------------------------------------------------


def _header(
    rows: pd.DataFrame, lines: np.ndarray, source: str
) -> tuple[list[str], pd.DataFrame, np.ndarray]:
    names = [str(v) for v in rows.iloc[0]]
    if len(rows) == 1:
        raise DataError(f"{source}: header only (line {lines[0]}), no data rows")
    return names, rows.iloc[1:].reset_index(drop=True), lines[1:]


def _fixed(
    rows: pd.DataFrame, lines: np.ndarray, source: str, sizes: Sequence[int], layout: str
) -> pd.DataFrame:
    """Check a header-less format's field count (a trailing empty field is tolerated)."""
    while rows.shape[1] > min(sizes) and (rows.iloc[:, -1] == "").all():
        rows = rows.iloc[:, :-1]
    if rows.shape[1] not in sizes:
        raise DataError(
            f"{source}: line {lines[0]}: expected {' or '.join(map(str, sorted(sizes)))} fields "
            f"({layout}), found {rows.shape[1]}"
        )
    return rows


def _frame(
    data: pd.DataFrame, lines: np.ndarray | None, mapping: dict[str, int], times: pd.Series
) -> pd.DataFrame:
    """The raw frame validate_bars expects; the prices stay text or numbers as found."""
    # .array, not .to_numpy(): no per-element boxing of times or strings.
    columns: dict[str, object] = {"time": times.array}
    for name in (*PRICE_COLUMNS, "volume"):
        if name in mapping:
            columns[name] = data.iloc[:, mapping[name]].array
    if lines is not None:
        columns[LINE_COLUMN] = lines
    return pd.DataFrame(columns)


def _time_text(data: pd.DataFrame, mapping: dict[str, int]) -> pd.Series:
    if "date" in mapping:
        date = data.iloc[:, mapping["date"]].str.strip()
        return date + " " + data.iloc[:, mapping["clock"]].str.strip()
    return data.iloc[:, mapping["time"]]


def _read_dukascopy(text: str, source: str, zone: tzinfo) -> pd.DataFrame:
    rows, lines = _split(text, source, (",", ";", "\t"))
    if _DUKASCOPY_STAMP.match(str(rows.iloc[0, 0])):
        # An export saved without its header line: the columns are in the usual order.
        names = ["time", "open", "high", "low", "close", "volume"][: rows.shape[1]]
        names += [""] * (rows.shape[1] - len(names))
        data, data_lines = rows, lines
    else:
        names, data, data_lines = _header(rows, lines, source)
    expected = "Time (or Gmt time, Local time), Open, High, Low, Close, Volume"
    mapping = _columns(names, source, ("time", "gmt time", "local time"), expected)
    stamps = data.iloc[:, mapping["time"]].str.strip()
    zoned = stamps.str.contains(_DUKASCOPY_ZONE, regex=True).to_numpy(bool, na_value=False)
    formats = [(f, False) for f in _DUKASCOPY_FORMATS]
    formats += [(f + " GMT%z", True) for f in _DUKASCOPY_FORMATS]
    times = _parse_times(
        stamps, formats, zone, source, data_lines, _EXPECTED_TIME["dukascopy"], zoned
    )
    return _frame(data, data_lines, mapping, times)


def _read_histdata(text: str, source: str, zone: tzinfo) -> pd.DataFrame:
    rows, lines = _split(text, source, (";",))
    rows = _fixed(rows, lines, source, (6,), "YYYYMMDD HHMMSS;open;high;low;close;volume")
    mapping = {"time": 0, "open": 1, "high": 2, "low": 3, "close": 4, "volume": 5}
    times = _parse_times(
        rows.iloc[:, 0],
        [("%Y%m%d %H%M%S", False)],
        zone,
        source,
        lines,
        _EXPECTED_TIME["histdata"],
    )
    return _frame(rows, lines, mapping, times)


def _read_mt4(text: str, source: str, zone: tzinfo) -> pd.DataFrame:
    rows, lines = _split(text, source, (",",))
    rows = _fixed(rows, lines, source, (7, 6), "YYYY.MM.DD,HH:MM,open,high,low,close,volume")
    mapping = {"date": 0, "clock": 1, "open": 2, "high": 3, "low": 4, "close": 5}
    if rows.shape[1] == 7:
        mapping["volume"] = 6
    times = _parse_times(
        _time_text(rows, mapping),
        [(f, False) for f in _MT_FORMATS[:2]],
        zone,
        source,
        lines,
        _EXPECTED_TIME["mt4"],
    )
    return _frame(rows, lines, mapping, times)


def _read_mt5(text: str, source: str, zone: tzinfo) -> pd.DataFrame:
    rows, lines = _split(text, source, ("\t", ",", ";"))
    names, data, data_lines = _header(rows, lines, source)
    expected = "<DATE>, <TIME> (optional), <OPEN>, <HIGH>, <LOW>, <CLOSE>, <TICKVOL>"
    mapping = _columns(names, source, ("date",), expected, pair=True, time_label="<DATE>")
    times = _parse_times(
        _time_text(data, mapping),
        [(f, False) for f in _MT_FORMATS],
        zone,
        source,
        data_lines,
        _EXPECTED_TIME["mt5"],
    )
    return _frame(data, data_lines, mapping, times)


def _read_csv(text: str, source: str, zone: tzinfo) -> pd.DataFrame:
    rows, lines = _split(text, source, (",", ";", "\t"))
    names, data, data_lines = _header(rows, lines, source)
    expected = (
        "a header naming a time column (time, datetime, date, timestamp, gmt time, "
        "local time, or date + time, or the first column) and open, high, low, close, "
        "volume (optional)"
    )
    first = 0 if names and _norm(names[0]) not in _OHLCV_NAMES else None
    mapping = _columns(names, source, _TIME_NAMES, expected, pair=True, fallback=first)
    times = _iso_times(_time_text(data, mapping), zone, source, data_lines, _EXPECTED_TIME["csv"])
    return _frame(data, data_lines, mapping, times)


def _read_parquet(raw: bytes, source: str, zone: tzinfo, max_bytes: int) -> pd.DataFrame:
    import pyarrow as pa
    import pyarrow.parquet as pq

    decoded = 0
    try:
        # ParquetFile, not read_table: no dataset layer (which rejects repeated names).
        parquet = pq.ParquetFile(pa.BufferReader(raw))
        # Compressed columns can decode to far more than the file: bound what the footer
        # says before decoding anything.
        decoded = sum(
            parquet.metadata.row_group(i).total_byte_size
            for i in range(parquet.metadata.num_row_groups)
        )
        if decoded <= max_bytes:
            # The pandas metadata is ignored on purpose: an index is then an ordinary column
            # (named, or __index_level_0__), and a damaged metadata block cannot break it.
            frame = parquet.read().to_pandas(ignore_metadata=True)
    except (pa.ArrowException, OSError, ValueError, TypeError, OverflowError) as err:
        # Arrow messages can run over many lines (schemas); the first one says what failed.
        reason = show_text(str(err).strip().splitlines()[0] if str(err).strip() else err)
        raise DataError(f"{source}: not a readable Parquet file: {reason}") from err
    if decoded > max_bytes:
        raise DataError(
            f"{source}: the Parquet data decodes to {decoded:,} bytes, more than the limit "
            f"of {max_bytes:,} bytes; {_LIMIT_HINT}"
        )
    if len(frame) == 0:
        raise DataError(f"{source}: no data rows; expected at least one bar")
    names = [str(c) for c in frame.columns]
    dated = [
        i
        for i in range(frame.shape[1])
        if pd.api.types.is_datetime64_any_dtype(frame.iloc[:, i].dtype)
    ]
    mapping = _columns(
        names,
        source,
        (*_TIME_NAMES, "index level 0"),
        "a datetime index or time column and open, high, low, close, volume (optional)",
        fallback=dated[0] if dated else None,
    )
    times = _parquet_times(frame.iloc[:, mapping["time"]], zone, source)
    return _frame(frame, None, mapping, times)


def _parquet_times(column: pd.Series, zone: tzinfo, source: str) -> pd.Series:
    column = column.reset_index(drop=True)
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        times = column.dt.tz_convert("UTC")
    elif pd.api.types.is_datetime64_dtype(column.dtype):
        times = _localize(column, zone, source, None)
    elif pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty"):
        return _iso_times(column, zone, source, None, _EXPECTED_TIME["parquet"])
    elif column.dtype == object:
        # Python date/datetime objects (e.g. a Parquet date32 column).
        try:
            times = pd.to_datetime(column, errors="coerce")
        except (ValueError, TypeError, OverflowError) as err:
            raise DataError(
                f"{source}: cannot read column {quote_input(column.name)} as times: {err}"
            ) from err
        if isinstance(times.dtype, pd.DatetimeTZDtype):
            times = times.dt.tz_convert("UTC")
        else:
            times = _localize(times, zone, source, None)
    else:
        raise DataError(
            f"{source}: column {quote_input(column.name)} has type {column.dtype}; expected "
            "timestamps or ISO-like text"
        )
    missing = column.isna().to_numpy()
    raise_for_rows(
        source,
        times.isna().to_numpy(),
        None,
        lambda i: (
            "missing timestamp"
            if missing[i]
            else f"unparseable timestamp {show_text(column.iloc[i])}; expected timestamps"
        ),
    )
    return times.dt.as_unit(TIME_UNIT)


_TEXT_READERS = {
    "dukascopy": _read_dukascopy,
    "histdata": _read_histdata,
    "mt4": _read_mt4,
    "mt5": _read_mt5,
    "csv": _read_csv,
}
