"""The ``forexgrid`` command line: a thin front over the library.

Every command parses its arguments, calls public library functions and prints. A
:class:`~forexgrid.exceptions.ForexgridError` becomes one line on stderr and exit status 1;
click's usage errors exit with 2; a traceback appears only with ``--debug``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import click

from forexgrid import __version__
from forexgrid.exceptions import ForexgridError
from forexgrid.log import FILE_ONLY

__all__ = ["main"]

logger = logging.getLogger("forexgrid.cli")  # also when run as __main__

DEFAULT_CONFIG = Path("configs/training_pipeline/default_config.yaml")


@dataclass
class CliState:
    """What the top-level options decide, with the configuration loaded on first use."""

    config_path: Path | None
    workspace: Path
    debug: bool
    verbose: bool
    _settings: object | None = field(default=None, repr=False)

    @property
    def settings(self):
        """The configuration: ``--config``, else the workspace's default file, else defaults.

        Loading it also starts the file log, so only commands that need it create ``logs/``.
        """
        if self._settings is None:
            from forexgrid.config import load_config
            from forexgrid.log import setup_logging

            path = self.config_path
            if path is None and (self.workspace / DEFAULT_CONFIG).is_file():
                path = self.workspace / DEFAULT_CONFIG
            self._settings = load_config(path, workspace=self.workspace)
            level = logging.DEBUG if self.verbose else logging.WARNING
            setup_logging(self._settings, console_level=level)
        return self._settings


class ForexgridGroup(click.Group):
    """A click group that turns library errors into one line and an exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ForexgridError as err:
            if _debug_requested(ctx):
                raise
            logger.error("%s", err, extra=FILE_ONLY)
            click.echo(f"error: {err}", err=True)
            ctx.exit(1)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as err:  # noqa: BLE001 - a front must not dump a traceback on users
            if _debug_requested(ctx):
                raise
            logger.exception("unexpected error", extra=FILE_ONLY)
            click.echo(
                f"internal error: {type(err).__name__}: {err} (run with --debug for the "
                "traceback; please report it)",
                err=True,
            )
            ctx.exit(1)


def _debug_requested(ctx: click.Context) -> bool:
    state = ctx.find_object(CliState)
    return state is not None and state.debug


@click.group(cls=ForexgridGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="forexgrid")
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="FOREXGRID_CONFIG",
    help="Configuration YAML (default: the workspace's "
    "configs/training_pipeline/default_config.yaml if present, else built-in defaults). "
    "Env: FOREXGRID_CONFIG.",
)
@click.option(
    "--workspace",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="FOREXGRID_WORKSPACE",
    default=None,
    help="Directory that relative paths in the configuration refer to (default: the "
    "current directory). Env: FOREXGRID_WORKSPACE.",
)
@click.option("--debug", is_flag=True, help="Show full tracebacks on errors.")
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
@click.pass_context
def cli(ctx: click.Context, config_path, workspace, debug, verbose):
    """forexgrid: train forex model grids, backtest them per market regime, keep the best."""
    ctx.obj = CliState(
        config_path=config_path,
        workspace=(workspace or Path.cwd()).expanduser().resolve(),
        debug=debug,
        verbose=verbose,
    )


# --------------------------------------------------------------------------- config


@cli.group("config")
def config_group():
    """Check and show configuration files."""


@config_group.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_obj
def config_check(state: CliState, path: Path):
    """Validate the configuration file PATH; print OK or the first error."""
    from forexgrid.config import load_config

    load_config(path, workspace=state.workspace)
    click.echo(f"OK: {path} is a valid forexgrid configuration")


@config_group.command("show")
@click.pass_obj
def config_show(state: CliState):
    """Print the effective configuration (file values over defaults) as YAML."""
    from forexgrid.config import dump_config

    click.echo(dump_config(state.settings), nl=False)


# --------------------------------------------------------------------------- data


@cli.group("data")
def data_group():
    """Import, list and inspect market data in the workspace's data store."""


def _store(state: CliState):
    from forexgrid.data.store import DataStore

    return DataStore(state.settings.data_path)


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
@click.pass_obj
def data_import(state: CliState, file: Path, symbol: str, fmt: str, tz: str | None, replace):
    """Read FILE, validate it and store its bars under SYMBOL."""
    store = _store(state)
    summary = store.import_file(
        file, symbol, format=fmt, tz=tz or state.settings.data.default_tz, replace=replace
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
    table = _store(state).list()
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

    bars = _store(state).load_bars(symbol, timeframe)
    click.echo(
        f"{symbol.upper()} {timeframe}: {len(bars):,} bars from {bars.index[0]} to "
        f"{bars.index[-1]}"
    )
    if rows:
        shown = bars if len(bars) <= 2 * rows else pd.concat([bars.head(rows), bars.tail(rows)])
        click.echo(shown.to_string())


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``forexgrid`` console script."""
    cli.main(args=argv, prog_name="forexgrid")
