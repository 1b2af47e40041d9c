"""The workspace's market-data store: imported bars as Parquet, one folder per symbol.

Layout under the data directory (``settings.data_path``)::

    <root>/<SYMBOL>/<timeframe>.parquet   Bars, one file per stored timeframe
    <root>/<SYMBOL>/manifest.json         source files (sha256, bars, first/last, imported_at)

Files are written under a temporary name in the same folder and renamed with
:func:`os.replace`, so a crash never leaves a half-written file in place. Symbols are
validated (letters and digits only) before they touch a path, and every path is checked to
stay under the root. When nothing is imported for EURUSD, the bundled real 2017 sample
stands in for it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from forexgrid import _limits
from forexgrid._atomic import atomic_path, ensure_directory
from forexgrid._reading import read_limited
from forexgrid.data.sample import SAMPLES, load_sample
from forexgrid.data.timeframes import (
    BAR_COLUMNS,
    TIMEFRAMES,
    infer_timeframe,
    normalize_timeframe,
    resample,
    timeframe_delta,
)
from forexgrid.exceptions import DataError, PathError, quote_input

if TYPE_CHECKING:
    from forexgrid.config import Settings

__all__ = [
    "BUNDLED_SOURCE",
    "DataStore",
    "ImportSummary",
    "import_hint",
    "load_bars",
    "validate_symbol",
]

logger = logging.getLogger(__name__)

BUNDLED_SOURCE = "bundled sample"
"""The ``source`` that :meth:`DataStore.list` shows for the bundled sample."""

_SYMBOL_RE = re.compile(rf"[A-Za-z0-9]{{1,{_limits.MAX_SYMBOL_LENGTH}}}", re.ASCII)
_MANIFEST = "manifest.json"
_MANIFEST_VERSION = 1
_MAX_MANIFEST_BYTES = 64 << 20
# Overlapping bars count as identical within float noise (the same decimal text read by two
# readers or formats gives the same float; this only absorbs conversions such as x*1.0).
_RTOL = 1e-12


def import_hint(symbol: str) -> str:
    """How to import a symbol's data, from the command line and from a notebook."""
    return (
        f"import it with `forexgrid data import FILE --symbol {symbol}` "
        f"(or ws.data.import_file(FILE, symbol='{symbol}') in a notebook)"
    )


def validate_symbol(symbol: str) -> str:
    """Return ``symbol`` upper-cased after checking it is 1 to 20 ASCII letters or digits.

    The check guarantees that a symbol can never name a path outside the store (no ``/``,
    ``..``, NUL or whitespace).

    Parameters
    ----------
    symbol : str
        A symbol such as ``"EURUSD"`` or ``"eurusd"``.

    Returns
    -------
    str
        The upper-cased symbol.

    Raises
    ------
    DataError
        If ``symbol`` is not a string of 1 to 20 letters or digits.
    """
    if not isinstance(symbol, str) or not _SYMBOL_RE.fullmatch(symbol):
        raise DataError(
            f"invalid symbol {quote_input(symbol)}: expected 1 to {_limits.MAX_SYMBOL_LENGTH} "
            "letters or digits, e.g. 'EURUSD'"
        )
    return symbol.upper()


@dataclass(frozen=True)
class ImportSummary:
    """What :meth:`DataStore.import_file` did.

    Attributes
    ----------
    symbol, timeframe : str
        Where the bars were stored.
    bars_added : int
        Bars whose timestamps were not stored before.
    total_bars : int
        Bars stored for (symbol, timeframe) after the import.
    first, last : pandas.Timestamp
        First and last stored bar times (UTC) after the import.
    path : pathlib.Path
        The Parquet file that holds the stored series.
    """

    symbol: str
    timeframe: str
    bars_added: int
    total_bars: int
    first: pd.Timestamp
    last: pd.Timestamp
    path: Path

    def __str__(self) -> str:
        return (
            f"{self.symbol} {self.timeframe}: {self.bars_added} bars added, "
            f"{self.total_bars} stored ({self.first} .. {self.last})"
        )


class DataStore:
    """Imported market data under one data directory.

    Parameters
    ----------
    root : str or pathlib.Path
        The data directory. It need not exist until the first import.
    max_import_mb : int
        The largest file :meth:`import_file` reads, in MB (``data.max_import_mb``).
    """

    def __init__(self, root: str | Path, *, max_import_mb: int = 1024) -> None:
        self.root = Path(root).expanduser()
        self.max_import_mb = max_import_mb

    @classmethod
    def from_settings(cls, settings: Settings) -> DataStore:
        """Return the store at ``settings.data_path`` (the configured ``data.data_dir``),
        importing files up to ``data.max_import_mb``."""
        return cls(settings.data_path, max_import_mb=settings.data.max_import_mb)

    def __repr__(self) -> str:
        return f"DataStore({str(self.root)!r})"

    # ----------------------------------------------------------------------------- paths

    def _symbol_dir(self, symbol: str) -> Path:
        symbol = validate_symbol(symbol)
        root = self.root.resolve()
        folder = (root / symbol).resolve()
        # Symbols are validated already; this also catches a symlinked folder leading out.
        if folder.parent != root:
            raise DataError(
                f"symbol {symbol!r} resolves to {folder}, outside the data directory {root}"
            )
        return folder

    def _bars_path(self, symbol: str, timeframe: str) -> Path:
        return self._symbol_dir(symbol) / f"{timeframe}.parquet"

    def symbols(self) -> list[str]:
        """Return the symbols with at least one stored timeframe, sorted.

        Returns
        -------
        list of str
        """
        if not self.root.is_dir():
            return []
        found = []
        for child in self.root.iterdir():
            if (
                child.is_dir()
                and _SYMBOL_RE.fullmatch(child.name)
                and child.name == child.name.upper()
            ):
                if self.stored_timeframes(child.name):
                    found.append(child.name)
        return sorted(found)

    def stored_timeframes(self, symbol: str) -> list[str]:
        """Return the timeframes stored for ``symbol``, fine to coarse (empty if none).

        Raises
        ------
        DataError
            If ``symbol`` is invalid.
        """
        folder = self._symbol_dir(symbol)
        return [tf for tf in TIMEFRAMES if (folder / f"{tf}.parquet").is_file()]

    # ----------------------------------------------------------------------------- reading

    def _read(self, path: Path) -> pd.DataFrame:
        import pyarrow  # the Parquet engine; its errors are what a corrupt file raises

        try:
            frame = pd.read_parquet(path)
        except (OSError, ValueError, pyarrow.ArrowException) as err:
            raise _corrupt(path, str(err)) from err
        index = frame.index
        if (
            list(frame.columns) != list(BAR_COLUMNS)
            or not isinstance(index, pd.DatetimeIndex)
            or str(index.tz) != "UTC"
            or not index.is_monotonic_increasing
            or not index.is_unique
            or any(str(t) != "float64" for t in frame.dtypes)
        ):
            raise _corrupt(path, "the content is not a Bars frame")
        return frame

    def serves_sample(self, symbol: str) -> bool:
        """Whether :meth:`load_bars` serves ``symbol`` from the bundled sample: nothing is
        imported for it and a sample of it is bundled (EURUSD).

        Raises
        ------
        DataError
            If ``symbol`` is invalid.
        """
        symbol = validate_symbol(symbol)
        return symbol in SAMPLES and not self.stored_timeframes(symbol)

    def load_bars(self, symbol: str, timeframe: str) -> pd.DataFrame:
        """Return stored bars of ``symbol`` at ``timeframe``.

        A stored timeframe is read directly; a coarser one is resampled from the finest
        stored timeframe. EURUSD with nothing imported is served from the bundled sample.

        Parameters
        ----------
        symbol : str
            A stored symbol (case-insensitive).
        timeframe : str
            A timeframe name or alias, at or above the finest stored one.

        Returns
        -------
        pandas.DataFrame
            Bars.

        Raises
        ------
        DataError
            If the symbol is invalid or not stored (the message says how to import it), the
            timeframe is unknown or finer than the finest stored, or a stored file is
            corrupt.
        """
        symbol = validate_symbol(symbol)
        target = normalize_timeframe(timeframe)
        stored = self.stored_timeframes(symbol)
        if not stored:
            if symbol in SAMPLES:
                logger.info(
                    "no %s data imported in %s; using the bundled sample", symbol, self.root
                )
                try:
                    return load_sample(symbol, target)
                except DataError as err:
                    raise DataError(
                        f"no data for {symbol} {target}: nothing is imported and {err}; "
                        f"{import_hint(symbol)}"
                    ) from err
            listed = ", ".join(self.symbols()) or "none"
            raise DataError(
                f"no data for {symbol} {target}: {import_hint(symbol)}; symbols imported in "
                f"{self.root}: {listed}"
            )
        if target in stored:
            return self._read(self._bars_path(symbol, target))
        finest = stored[0]
        if timeframe_delta(target) < timeframe_delta(finest):
            raise DataError(
                f"cannot serve {symbol} {target} bars: the finest stored timeframe is {finest} "
                f"(stored: {', '.join(stored)}); import {target} or finer data"
            )
        logger.debug("resampling stored %s %s bars to %s", symbol, finest, target)
        return resample(self._read(self._bars_path(symbol, finest)), target)

    def list(self) -> pd.DataFrame:
        """Return one row per stored (symbol, timeframe), plus the bundled sample.

        The bundled sample appears as EURUSD 1h with source ``"bundled sample"`` while
        nothing is imported for EURUSD (it is what :meth:`load_bars` then serves).

        Returns
        -------
        pandas.DataFrame
            Columns ``symbol, timeframe, bars, first, last, source``; ``source`` lists the
            imported file names (comma-separated).

        Raises
        ------
        DataError
            If a stored file or manifest is corrupt.
        """
        rows: list[dict[str, Any]] = []
        symbols = self.symbols()
        for symbol in symbols:
            manifest = self._read_manifest(symbol)
            for tf in self.stored_timeframes(symbol):
                index = self._read_index(self._bars_path(symbol, tf))
                sources = manifest["timeframes"].get(tf, {}).get("sources", [])
                rows.append(
                    {
                        "symbol": symbol,
                        "timeframe": tf,
                        "bars": len(index),
                        "first": index[0] if len(index) else pd.NaT,
                        "last": index[-1] if len(index) else pd.NaT,
                        "source": ", ".join(s["name"] for s in sources) or "unknown",
                    }
                )
        for symbol, (_, native) in SAMPLES.items():
            if symbol not in symbols:
                sample = load_sample(symbol, native)
                rows.append(
                    {
                        "symbol": symbol,
                        "timeframe": native,
                        "bars": len(sample),
                        "first": sample.index[0],
                        "last": sample.index[-1],
                        "source": BUNDLED_SOURCE,
                    }
                )
        order = {tf: i for i, tf in enumerate(TIMEFRAMES)}
        rows.sort(key=lambda r: (r["symbol"], order[r["timeframe"]]))
        table = pd.DataFrame(
            rows, columns=["symbol", "timeframe", "bars", "first", "last", "source"]
        )
        table["bars"] = table["bars"].astype("int64")
        for column in ("first", "last"):
            table[column] = pd.to_datetime(table[column], utc=True)
        return table

    def _read_index(self, path: Path) -> pd.DatetimeIndex:
        import pyarrow

        try:
            index = pd.read_parquet(path, columns=[]).index
        except (OSError, ValueError, pyarrow.ArrowException) as err:
            raise _corrupt(path, str(err)) from err
        if not isinstance(index, pd.DatetimeIndex):
            raise _corrupt(path, "the content is not a Bars frame")
        return index

    # ----------------------------------------------------------------------------- manifest

    def _read_manifest(self, symbol: str) -> dict[str, Any]:
        path = self._symbol_dir(symbol) / _MANIFEST
        if not path.exists():
            return {"version": _MANIFEST_VERSION, "symbol": symbol, "timeframes": {}}
        try:
            # The store's own small file; bounded all the same (a FIFO put there must not
            # hang every command, a stray huge file must not fill memory).
            manifest = json.loads(read_limited(path, _MAX_MANIFEST_BYTES).decode("utf-8"))
        except (OSError, PathError, UnicodeDecodeError, json.JSONDecodeError) as err:
            raise DataError(
                f"{path}: unreadable manifest ({err}); delete it and re-import the source files"
            ) from err
        if not isinstance(manifest, dict) or not isinstance(manifest.get("timeframes"), dict):
            raise DataError(
                f"{path}: not a forexgrid manifest (no 'timeframes' mapping); delete it and "
                "re-import the source files"
            )
        return manifest

    # ----------------------------------------------------------------------------- importing

    def import_file(
        self,
        path: str | Path,
        symbol: str,
        format: str = "auto",
        tz: str | None = None,
        replace: bool = False,
        *,
        allow_streams: bool = False,
    ) -> ImportSummary:
        """Read a market-data file and merge its bars into the store.

        The timeframe is inferred from the bars' spacing. Bars at timestamps already stored
        must be identical; new timestamps are added. With ``replace=True`` the file's bars
        replace the stored series of that timeframe instead.

        Parameters
        ----------
        path : str or pathlib.Path
            The file to import (any format :func:`forexgrid.data.read_bars` reads).
        symbol : str
            The symbol the file holds (1 to 20 letters or digits; upper-cased).
        format : str
            A format name for ``read_bars`` or ``"auto"``.
        tz : str or None
            Zone of timestamps that carry none (see ``read_bars``).
        replace : bool
            Replace the stored series at the file's timeframe rather than merge.
        allow_streams : bool
            Also read a pipe, FIFO or device (``/dev/stdin``); refused by default. Either
            way at most :attr:`max_import_mb` MB are read.

        Returns
        -------
        ImportSummary

        Raises
        ------
        DataError
            If the symbol is invalid, the file cannot be read, is not a regular file (unless
            ``allow_streams``), is larger than :attr:`max_import_mb` or breaks the Bars
            contract, its timeframe cannot be inferred, a stored file is corrupt, or
            (without ``replace``) a bar conflicts with a stored bar at the same timestamp.
        """
        from forexgrid.data._formats import bars_from_bytes, read_source

        symbol = validate_symbol(symbol)
        source = Path(path)
        limit = self.max_import_mb << 20
        # Read once: the bars and the manifest's hash come from the same bytes, and a pipe
        # can be imported at all.
        raw = read_source(source, max_bytes=limit, allow_streams=allow_streams)
        bars = bars_from_bytes(raw, source, format=format, tz=tz, max_bytes=limit)
        try:
            timeframe = infer_timeframe(bars)
        except DataError as err:
            raise DataError(f"{source}: {err}") from err
        folder = self._symbol_dir(symbol)
        target = folder / f"{timeframe}.parquet"
        stored = self._read(target) if target.is_file() else None

        if stored is None:
            merged, added = bars, len(bars)
        elif replace:
            merged = bars
            added = int((~bars.index.isin(stored.index)).sum())
        else:
            _check_overlap(stored, bars, source, symbol, timeframe)
            new = bars.loc[~bars.index.isin(stored.index)]
            merged = pd.concat([stored, new]).sort_index() if len(new) else stored
            added = len(new)

        manifest = self._read_manifest(symbol)
        entry = {
            "name": source.name,
            "path": str(source.resolve()),
            "sha256": hashlib.sha256(raw).hexdigest(),
            "format": format,
            "tz": tz,
            "bars": len(bars),
            "first": bars.index[0].isoformat(),
            "last": bars.index[-1].isoformat(),
            "bars_added": added,
            "replace": bool(replace),
            "imported_at": pd.Timestamp.now(tz="UTC").isoformat(),
        }
        tf_entry = manifest["timeframes"].get(timeframe, {})
        # A replaced series no longer holds the earlier files' bars, so they are not its
        # sources any more; re-importing the same content updates its entry, not a duplicate.
        previous = [] if replace else list(tf_entry.get("sources", []))
        sources = [s for s in previous if s.get("sha256") != entry["sha256"]] + [entry]
        manifest["version"] = _MANIFEST_VERSION
        manifest["symbol"] = symbol
        manifest["timeframes"][timeframe] = {
            "bars": len(merged),
            "first": merged.index[0].isoformat(),
            "last": merged.index[-1].isoformat(),
            "sources": sources,
        }

        try:
            ensure_directory(folder)
        except PathError as err:
            raise DataError(f"data store: {err}") from err
        if merged is not stored:
            with atomic_path(target) as tmp:
                merged.to_parquet(tmp)
        with atomic_path(folder / _MANIFEST) as tmp:
            tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", "utf-8")
        summary = ImportSummary(
            symbol=symbol,
            timeframe=timeframe,
            bars_added=added,
            total_bars=len(merged),
            first=merged.index[0],
            last=merged.index[-1],
            path=target,
        )
        logger.info("imported %s into %s: %s", source, self.root, summary)
        return summary


def _check_overlap(
    stored: pd.DataFrame, bars: pd.DataFrame, source: Path, symbol: str, timeframe: str
) -> None:
    common = stored.index.intersection(bars.index)
    if common.empty:
        return
    old = stored.loc[common, list(BAR_COLUMNS)].to_numpy()
    new = bars.loc[common, list(BAR_COLUMNS)].to_numpy()
    differs = ~np.isclose(old, new, rtol=_RTOL, atol=0.0).all(axis=1)
    if not differs.any():
        return
    first = int(np.argmax(differs))
    stamp = common[first]
    was = ", ".join(f"{c}={v:g}" for c, v in zip(BAR_COLUMNS, old[first], strict=True))
    now = ", ".join(f"{c}={v:g}" for c, v in zip(BAR_COLUMNS, new[first], strict=True))
    raise DataError(
        f"{source.name}: bar at {stamp} conflicts with the stored {symbol} {timeframe} bar "
        f"(stored {was}; file {now}); {int(differs.sum())} conflicting bar(s) in all; import "
        "with --replace (replace=True in Python) to replace the stored series with the "
        "file's bars"
    )


def _corrupt(path: Path, reason: str) -> DataError:
    return DataError(
        f"{path}: cannot read stored bars ({reason}); the file is corrupt: delete it and "
        "re-import the source file"
    )


def load_bars(symbol: str, timeframe: str, settings: Settings | None = None) -> pd.DataFrame:
    """Return bars of ``symbol`` at ``timeframe`` from the configured data store.

    Parameters
    ----------
    symbol : str
        A stored symbol, or EURUSD (the bundled sample when nothing is imported).
    timeframe : str
        A timeframe name or alias.
    settings : Settings or None
        The configuration whose ``data_path`` is the store; None loads the defaults.

    Returns
    -------
    pandas.DataFrame
        Bars.

    Raises
    ------
    DataError
        As :meth:`DataStore.load_bars`.
    """
    if settings is None:
        from forexgrid.config import load_config

        settings = load_config(None)
    return DataStore.from_settings(settings).load_bars(symbol, timeframe)
