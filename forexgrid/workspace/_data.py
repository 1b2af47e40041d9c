"""``ws.data``: the market data of a workspace (``forexgrid data`` calls these)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

    from forexgrid.data.store import DataStore, ImportSummary
    from forexgrid.workspace import Workspace

__all__ = ["WorkspaceData"]


class WorkspaceData:
    """Import, list and read the bars stored in a workspace's data folder."""

    def __init__(self, workspace: Workspace) -> None:
        self._workspace = workspace

    @property
    def store(self) -> DataStore:
        """The underlying data store (``data.data_dir`` of the configuration)."""
        from forexgrid.data.store import DataStore

        return DataStore.from_settings(self._workspace.settings)

    def import_file(
        self,
        path: str | os.PathLike[str],
        symbol: str,
        format: str | None = None,
        *,
        tz: str | None = None,
        replace: bool = False,
        allow_streams: bool = False,
    ) -> ImportSummary:
        """Read a market-data file, validate it and store its bars under ``symbol``.

        Parameters
        ----------
        path
            The file (Dukascopy, HistData, MT4/MT5 exports, a plain OHLCV CSV or Parquet).
        symbol
            The symbol to store the bars under, e.g. ``"EURUSD"``.
        format
            ``dukascopy``, ``histdata``, ``mt4``, ``mt5``, ``csv`` or ``parquet``; None
            guesses from the file.
        tz
            Zone of timestamps that carry none (default: ``data.default_tz``).
        replace
            Replace the stored bars of that timeframe instead of merging.
        allow_streams
            Accept a pipe, FIFO or device, read up to ``data.max_import_mb``.

        Returns
        -------
        ImportSummary
            Bars added and stored, the timeframe, first and last bar, the file written.
        """
        return self.store.import_file(
            path,
            symbol,
            format=format or "auto",
            tz=tz or self._workspace.settings.data.default_tz,
            replace=replace,
            allow_streams=allow_streams,
        )

    def list(self) -> pd.DataFrame:
        """The stored symbols and timeframes, one row each, with their bars and dates."""
        return self.store.list()

    def symbols(self) -> list[str]:
        """The symbols with stored bars."""
        return self.store.symbols()

    def bars(self, symbol: str, timeframe: str) -> pd.DataFrame:
        """The stored bars of ``symbol`` at ``timeframe`` (resampled from the finest stored
        timeframe when that one is not stored)."""
        return self.store.load_bars(symbol, timeframe)

    def __repr__(self) -> str:
        return f"<forexgrid data of {self._workspace.path}>"

    def _repr_html_(self) -> str:
        table = self.list()
        if table.empty:
            return (
                "<p>The data store is empty. Import bars with "
                "<code>ws.data.import_file(path, symbol=...)</code>.</p>"
            )
        return table.to_html(index=False)
