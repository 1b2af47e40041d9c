"""The top-level ``forexgrid`` group: global options, lazy settings, and error handling.

A :class:`~forexgrid.exceptions.ForexgridError` raised by any command becomes one line on
stderr and exit status 1; click's usage errors exit with 2; ``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path

import click

from forexgrid import __version__
from forexgrid.exceptions import ForexgridError
from forexgrid.log import FILE_ONLY

__all__ = ["CliState", "cli", "main", "one_line"]

logger = logging.getLogger("forexgrid.cli")  # also when run as __main__


@dataclass
class CliState:
    """What the top-level options decide, with the workspace opened on first use.

    ``config_path`` and ``workspace`` may be changed (``run CONFIG``, ``demo``) until
    :attr:`ws` is first read.
    """

    config_path: Path | None
    workspace: Path
    debug: bool
    verbose: bool
    _ws: object | None = field(default=None, repr=False)

    @property
    def ws(self):
        """The :class:`~forexgrid.workspace.Workspace` every command calls: the folder of
        ``--workspace``, with ``--config`` (else the folder's default file, else defaults).

        Opening it also starts the file log, so only commands that need it create ``logs/``.
        """
        if self._ws is None:
            from forexgrid.log import setup_logging
            from forexgrid.workspace import Workspace

            self._ws = Workspace(self.workspace, config=self.config_path)
            level = logging.DEBUG if self.verbose else logging.WARNING
            setup_logging(self._ws.settings, console_level=level)
        return self._ws

    @property
    def settings(self):
        """The workspace's configuration."""
        return self.ws.settings

    def command(self, *args: str) -> str:
        """The exact command line that runs ``forexgrid ARGS`` on this workspace and
        configuration, for messages that tell the user what to run next."""
        parts = ["forexgrid"]
        if self.workspace != Path.cwd().resolve():
            parts += ["--workspace", str(self.workspace)]
        if self.config_path is not None:
            parts += ["--config", str(self.config_path.expanduser().resolve())]
        return shlex.join([*parts, *map(str, args)])


# Characters of an error line at most. Messages quote user input through quote_input (200
# characters each), so a longer line means something was echoed whole: cut it here too.
_MAX_ERROR_LINE = 2000


def one_line(text: str, limit: int = _MAX_ERROR_LINE) -> str:
    """``text`` as one line of at most ``limit`` characters (line breaks become spaces)."""
    text = " ".join(text.splitlines())
    if len(text) > limit:
        text = f"{text[:limit]}... ({len(text):,} characters)"
    return text


class ForexgridGroup(click.Group):
    """A click group that turns library errors into one line and an exit status."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ForexgridError as err:
            if _debug_requested(ctx):
                raise
            line = one_line(str(err))
            logger.error("%s", line, extra=FILE_ONLY)
            click.echo(f"error: {line}", err=True)
            ctx.exit(1)
        except click.ClickException as err:
            # click quotes the bad value whole ("'999...' is not a valid integer").
            err.message = one_line(err.message, 500)
            raise
        except (click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader of our output went away (`forexgrid history | head`): not an error
            # to report. Point stdout at /dev/null so that the flush at exit does not fail
            # again (the signal module's "Note on SIGPIPE"), and exit with the status of a
            # tool killed by SIGPIPE (128 + 13), as shells report for one.
            with contextlib.suppress(OSError, ValueError):  # stdout may not be a file
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            ctx.exit(141)
        except Exception as err:  # noqa: BLE001 - a front must not dump a traceback on users
            if _debug_requested(ctx):
                raise
            logger.exception("unexpected error", extra=FILE_ONLY)
            click.echo(
                f"internal error: {type(err).__name__}: {one_line(str(err), 500)} (run with "
                "--debug for the traceback; please report it)",
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


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``forexgrid`` console script."""
    cli.main(args=argv, prog_name="forexgrid")
