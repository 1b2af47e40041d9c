"""`forexgrid demo`: the user guide's example grid on the bundled real EURUSD sample."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from forexgrid.cli._app import CliState, cli


@cli.command("demo")
@click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="New, empty folder for the demo's workspace (default: ./forexgrid_demo_YYYYMMDD_HHMMSS).",
)
@click.pass_obj
def demo_command(state: CliState, directory: Path | None):
    """Train and evaluate 16 configurations on real EURUSD 2017 data, then show the results.

    xgboost, lightgbm x EURUSD x 1h, 4h x 60, 90 days x horizons 1, 3, in a fresh workspace
    folder; prints the best model per regime and the paths of the charts, the history CSV,
    the database and the kept models.
    """
    from forexgrid.cli._queues import run_with_progress
    from forexgrid.cli._selection import best_table_text
    from forexgrid.demo import prepare_demo, write_demo_outputs
    from forexgrid.runner import create_queue

    started = time.perf_counter()
    workspace = prepare_demo(directory)
    state.config_path, state.workspace = workspace.config_path, workspace.directory
    settings = state.settings
    click.echo(f"forexgrid demo in {workspace.directory}")
    click.echo("Data: bundled real EURUSD 1h bars of 2017 (Dukascopy, via gym-anytrading, MIT)")
    click.echo(workspace.spec.describe())
    queue = create_queue(workspace.spec, settings, name="demo", skip_trained=False)
    status = run_with_progress(state, queue.id)
    if status:
        sys.exit(status)

    paths = write_demo_outputs(workspace)
    click.echo("\nBest model per regime (chosen on validation, reported on test):")
    click.echo(best_table_text(settings))
    click.echo("\nWritten:")
    for label, value in paths.items():
        for path in value if isinstance(value, list) else [value]:
            click.echo(f"  {label + ':':<15} {path}")
    click.echo(f"\nDemo finished in {time.perf_counter() - started:.1f} s.")
    click.echo(
        f"Explore it: forexgrid --workspace {workspace.directory} best | history | run-details ID"
    )
