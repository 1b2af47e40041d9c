"""The command reference (docs/cli.md), generated from the commands' own ``--help``.

``make docs`` rewrites docs/cli.md with :func:`command_reference`; a test fails when the file
and the commands disagree, so the reference cannot drift from the CLI.
"""

from __future__ import annotations

import click

from forexgrid.cli._app import cli

__all__ = ["command_reference"]

HEADER = """# Command reference

Generated from `forexgrid --help` by `make docs` (a test keeps this file and the commands
in step). Every command accepts the global options of `forexgrid` before its name, e.g.
`forexgrid --workspace ~/fx --config mine.yaml queues`. Errors print one line on stderr
and exit with 1; wrong usage exits with 2; `--debug` shows the traceback.
"""


def _walk(command: click.Command, path: list[str]):
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _walk(command.commands[name], [*path, name])


def command_reference() -> str:
    """Markdown with the ``--help`` text of every command and subcommand, in tree order."""
    parts = [HEADER]
    for path, command in _walk(cli, ["forexgrid"]):
        # The group's context settings (-h, --help) apply to every command, as on the CLI.
        settings = {"terminal_width": 99, **cli.context_settings}
        with click.Context(command, info_name=" ".join(path), **settings) as ctx:
            text = command.get_help(ctx)
        parts.append(f"## `{' '.join(path)}`\n\n```text\n{text}\n```\n")
    return "\n".join(parts)


if __name__ == "__main__":  # pragma: no cover - make docs
    print(command_reference(), end="")
