"""`forexgrid regimes`: list, add, edit, delete, toggle and rescore regime definitions.

Rules are a JSON object of indicator -> condition, e.g.
``'{"trend_strength": "> 0.5", "volatility": "> 90th percentile"}'``. The storage layer
parses them before writing, so an invalid rule prints the parser's message, exits 1 and
stores nothing. Adding a regime, editing its rules or activating it rescores the kept models
in it from their files (:func:`forexgrid.scoring.rescore_regimes`) and says how many.
"""

from __future__ import annotations

import json

import click

from forexgrid.cli._app import CliState, cli
from forexgrid.cli._format import render_table
from forexgrid.core.regimes import REGIME_NAME_RULE

_RULES_HELP = (
    'Rules as a JSON object of indicator -> condition, e.g. \'{"trend_strength": "> 0.5", '
    '"volatility": "> 90th percentile", "volume": "> 2x average"}\'.'
)


def _rules_text(rules: dict[str, str]) -> str:
    # Compact JSON: what `regimes add --rules` takes back, copy-pasteable.
    return json.dumps(rules, ensure_ascii=False)


def _describe(info) -> str:
    state = "active" if info.active else "inactive"
    return f"{info.name!r} ({state}): {_rules_text(info.rules)}"


@cli.group("regimes")
def regimes_group():
    """List, add, edit, delete and toggle the market regimes models are scored in."""


@regimes_group.command("list")
@click.pass_obj
def regimes_list(state: CliState):
    """List the regime definitions in creation order."""
    regimes = state.ws.regimes.infos()
    if not regimes:
        click.echo(
            "No regimes defined. Add one with: forexgrid regimes add NAME --rules JSON "
            "--description TEXT"
        )
        return
    rows = [
        {
            "Name": r.name,
            "Active": "yes" if r.active else "no",
            "Default": "yes" if r.is_default else "no",
            "Rules": _rules_text(r.rules),
            "Description": r.description,
        }
        for r in regimes
    ]
    click.echo(render_table(rows, ("Name", "Active", "Default", "Rules", "Description")))


_NO_RESCORE_HELP = (
    "Do not rescore the kept models under the new rules now (run forexgrid regimes rescore "
    "NAME later; until then the regime's list is empty)."
)


def _rescore(state: CliState, names: list[str] | None) -> None:
    click.echo(state.ws.regimes.rescore(names).summary())


@regimes_group.command(
    "add",
    help=f"""Add the regime NAME (validated first; nothing is stored if a rule is invalid).

    NAME: {REGIME_NAME_RULE}.

    The kept models are then scored in it from their files (no retraining), and its best
    list is built from them.
    """,
)
@click.argument("name")
@click.option("--rules", required=True, metavar="JSON", help=_RULES_HELP)
@click.option("--description", required=True, help="What the regime describes.")
@click.option("--inactive", is_flag=True, help="Store it inactive (not scored until toggled).")
@click.option("--no-rescore", is_flag=True, help=_NO_RESCORE_HELP)
@click.pass_obj
def regimes_add(
    state: CliState, name: str, rules: str, description: str, inactive: bool, no_rescore: bool
):
    # The help text is the command's help= above (it quotes REGIME_NAME_RULE).
    info = state.ws.regimes.add(
        name, rules, description, active=not inactive, rescore=False
    ).regime
    click.echo(f"Added regime {_describe(info)}")
    if info.active and not no_rescore:
        _rescore(state, [info.name])


@regimes_group.command("edit")
@click.argument("name")
@click.option("--rules", default=None, metavar="JSON", help=_RULES_HELP)
@click.option("--description", default=None, help="New description.")
@click.option(
    "--rename", "new_name", default=None, metavar="NEW", help=f"New name ({REGIME_NAME_RULE})."
)
@click.option("--no-rescore", is_flag=True, help=_NO_RESCORE_HELP)
@click.pass_obj
def regimes_edit(
    state: CliState,
    name: str,
    rules: str | None,
    description: str | None,
    new_name: str | None,
    no_rescore: bool,
):
    """Change the rules, description or name of the regime NAME.

    New rules are a new version of the regime: models scored under the old rules are never
    ranked against models scored under the new ones. The kept models are rescored under the
    new rules from their files (no retraining) and the regime's list is rebuilt from them;
    models deleted earlier cannot be rescored and are marked as not scored under the new
    rules. A rename or a new description keeps everything as it is.
    """
    if rules is None and description is None and new_name is None:
        raise click.UsageError("nothing to change: give --rules, --description or --rename")
    info = state.ws.regimes.edit(
        name, rules=rules, description=description, new_name=new_name, rescore=False
    ).regime
    renamed = f" (was {name!r})" if info.name != name else ""
    click.echo(f"Updated regime {_describe(info)}{renamed}")
    if rules is not None and info.active and not no_rescore:
        _rescore(state, [info.name])


@regimes_group.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def regimes_delete(state: CliState, name: str, yes: bool):
    """Delete the regime NAME (asks first unless --yes).

    Its best-model rows stay in the database as history; a deleted default regime is not
    added back.
    """
    info = state.ws.regimes.get(name)  # an unknown name fails before the prompt
    if not yes:
        default = " It is a default regime and will not be added back." if info.is_default else ""
        click.confirm(f"Delete regime {info.name!r}?{default}", default=False, abort=True)
    state.ws.regimes.delete(name)
    click.echo(f"Deleted regime {info.name!r}")


@regimes_group.command("toggle")
@click.argument("name")
@click.pass_obj
def regimes_toggle(state: CliState, name: str):
    """Switch the regime NAME between active and inactive."""
    info = state.ws.regimes.toggle(name, rescore=False).regime
    click.echo(f"Regime {info.name!r} is now {'active' if info.active else 'inactive'}")
    if info.active:
        # Runs trained while it was inactive were not scored in it.
        _rescore(state, [info.name])


@regimes_group.command("rescore")
@click.argument("names", nargs=-1, metavar="[NAME]...")
@click.pass_obj
def regimes_rescore(state: CliState, names: tuple[str, ...]):
    """Score the kept models under the current rules of the regimes NAME (default: every
    active regime) from their files, without retraining, and rebuild those lists.

    Models already scored under the current rules are left as they are, so this is safe to
    repeat.
    """
    _rescore(state, list(names) or None)
