"""`forexgrid config`: check and show configuration files."""

from __future__ import annotations

from pathlib import Path

import click

from forexgrid.cli._app import CliState, cli


@cli.group("config")
def config_group():
    """Check and show configuration files."""


@config_group.command("check")
@click.argument("path", type=click.Path(path_type=Path))
@click.pass_obj
def config_check(state: CliState, path: Path):
    """Validate the configuration file PATH; print OK or the first error.

    The checks are those of `forexgrid run`: every key and range, then the grid built from
    the `grid` section (hyperparameter values are checked by the model libraries).
    """
    from forexgrid.config import load_config
    from forexgrid.exceptions import ConfigError
    from forexgrid.grid import GridSpec

    settings = load_config(path, workspace=state.workspace)
    try:
        GridSpec.from_settings(settings.grid)
    except ConfigError as err:
        raise ConfigError(f"{path}: {err}") from err
    click.echo(f"OK: {path} is a valid forexgrid configuration")


@config_group.command("show")
@click.pass_obj
def config_show(state: CliState):
    """Print the effective configuration (file values over defaults) as YAML."""
    from forexgrid.config import dump_config

    click.echo(dump_config(state.settings), nl=False)
