"""`forexgrid data`: import, list and show market data in the workspace's store."""

from __future__ import annotations

from pathlib import Path

import click

from forexgrid.cli._app import CliState, cli


@cli.group("data")
def data_group():
    """Import, list and inspect market data in the workspace's data store."""


@data_group.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--symbol", required=True, help="Symbol to store the bars under, e.g. EURUSD.")
@click.option(
    "--format",
    "fmt",
    default="auto",
    show_default=True,
    help="File format: auto, dukascopy, histdata, mt4, mt5, csv or parquet.",
)
@click.option(
    "--tz",
    default=None,
    help="Zone of timestamps that carry none (e.g. Etc/GMT-2 for a broker's server time). "
    "Default: data.default_tz of the configuration.",
)
@click.option(
    "--replace", is_flag=True, help="Replace the stored bars instead of merging with them."
)
@click.option(
    "--stream",
    is_flag=True,
    help="FILE may be a pipe, FIFO or device (e.g. /dev/stdin or <(unzip -p x.zip)); it is "
    "read until it ends or data.max_import_mb is reached. Without it FILE must be a file on "
    "disk.",
)
@click.pass_obj
def data_import(
    state: CliState, file: Path, symbol: str, fmt: str, tz: str | None, replace, stream
):
    """Read FILE, validate it and store its bars under SYMBOL.

    FILE may hold at most data.max_import_mb MB (1024 by default); its size is checked
    before it is read.
    """
    summary = state.ws.data.import_file(
        file, symbol, format=fmt, tz=tz, replace=replace, allow_streams=stream
    )
    click.echo(
        f"Imported {summary.bars_added:,} new bars of {summary.symbol} {summary.timeframe} "
        f"from {file}: {summary.total_bars:,} bars stored, {summary.first} to {summary.last} "
        f"({summary.path})"
    )


@data_group.command("list")
@click.pass_obj
def data_list(state: CliState):
    """List the symbols and timeframes in the data store."""
    table = state.ws.data.list()
    if table.empty:
        click.echo(
            "The data store is empty. Import bars with: forexgrid data import FILE --symbol SYMBOL"
        )
        return
    click.echo(table.to_string(index=False))


@data_group.command("show")
@click.argument("symbol")
@click.argument("timeframe")
@click.option(
    "--rows",
    default=5,
    show_default=True,
    type=click.IntRange(0, 10_000),
    help="Rows to show from the start and from the end.",
)
@click.pass_obj
def data_show(state: CliState, symbol: str, timeframe: str, rows: int):
    """Show the bars of SYMBOL at TIMEFRAME (resampled from the finest stored timeframe)."""
    import pandas as pd

    bars = state.ws.data.bars(symbol, timeframe)
    click.echo(
        f"{symbol.upper()} {timeframe}: {len(bars):,} bars from {bars.index[0]} to "
        f"{bars.index[-1]}"
    )
    if rows:
        shown = bars if len(bars) <= 2 * rows else pd.concat([bars.head(rows), bars.tail(rows)])
        click.echo(shown.to_string())
