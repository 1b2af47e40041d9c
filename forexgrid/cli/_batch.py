"""`forexgrid batch`: a grid run as one papermill notebook per configuration (docs/batch.md)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from forexgrid.cli._app import CliState, cli
from forexgrid.cli._queues import grid_from_options, grid_options, run_with_progress


@cli.command("batch")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--notebook",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Template notebook each configuration runs as (default: execution.notebook, else "
    "the template installed with forexgrid, notebooks/templates/train_config.ipynb in a "
    "source checkout). It receives the parameters workspace, "
    "queue_id, index, config and result_path.",
)
@click.option(
    "--output-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Folder of the output notebooks: <output-dir>/<queue>/<index>_<hash8>.ipynb and "
    "summary.ipynb (default: execution.output_dir, ./runs).",
)
@grid_options
@click.pass_obj
def batch_command(
    state: CliState, config: Path, notebook: Path | None, output_dir: Path | None, **options
):
    """Train the grid of CONFIG as papermill notebooks, one per configuration.

    Like `forexgrid run` (same grid flags, progress bar and status lines), with
    execution.backend papermill: each configuration is executed from the template into
    <output-dir>/<queue>/<index>_<hash8>.ipynb, up to execution.workers kernels at a time,
    and a completed batch gets an executed summary.ipynb. Running the same command again
    resumes the batch if it did not finish (so does `forexgrid resume ID`): configurations
    whose notebook and result match (configuration and template hash) are not executed
    again; a failed notebook is kept as <index>_<hash8>.failed.ipynb.
    """
    from forexgrid import batch
    from forexgrid.workspace import Workspace

    state.config_path = config
    settings = batch.batch_settings(state.settings, notebook=notebook, output_dir=output_dir)
    # Every later step (the runner, messages) works on the batch's settings.
    state._ws = Workspace(state.workspace, config=settings)
    spec = grid_from_options(settings, options)
    click.echo(spec.describe())
    queue = batch.find_unfinished(settings, spec, name=options["name"])
    if queue is not None:
        click.echo(
            f"Resuming batch queue {queue.id} '{queue.queue_name}' ({queue.status}, "
            f"{queue.completed_count + queue.failed_count}/{queue.total_configs} done)"
        )
    else:
        queue = state.ws.create_queue(
            spec, name=options["name"], skip_trained=options["skip_trained"]
        ).info()
        if queue.skipped_count:
            click.echo(f"- {queue.skipped_count} already trained")
            click.echo(f"= {queue.total_configs} new configurations to train")
        click.echo(f"Queue {queue.id} '{queue.queue_name}' created")
    click.echo(f"Notebooks: {batch.batch_folder(settings, queue.id)}")
    sys.exit(run_with_progress(state, queue.id))
