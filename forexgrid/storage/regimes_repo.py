"""Regime definition queries: seed the defaults once, list, add, edit, delete, toggle.

Rules are validated by the rule parser (:func:`forexgrid.core.regimes.parse_rules`, through
:class:`~forexgrid.core.regimes.Regime`) *before* anything is written: an invalid rule raises
:class:`~forexgrid.exceptions.RuleError` and stores nothing.

The default regimes are seeded once per database: a marker row in ``forexgrid_meta``
records that seeding happened, so a default the user deleted is never added back, and a
user regime that took a default's name is left alone.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from forexgrid.core.regimes import DEFAULT_REGIMES, Regime, check_regime_name, rules_version
from forexgrid.core.selection import PSEUDO_REGIMES
from forexgrid.exceptions import RuleError, StorageError, quote_input
from forexgrid.storage._common import lock_for_claims
from forexgrid.storage.records import RegimeInfo
from forexgrid.storage.tables import (
    ChosenResult,
    InferenceResult,
    Meta,
    RegimeBestModel,
    RegimeDefinition,
    RunTrial,
    TrialScope,
    utcnow,
)

__all__ = [
    "SEEDED_MARKER",
    "active_regimes",
    "add_regime",
    "current_rules_versions",
    "delete_regime",
    "edit_regime",
    "get_regime",
    "list_regimes",
    "seed_default_regimes",
    "toggle_regime",
]

logger = logging.getLogger(__name__)

#: ``forexgrid_meta`` key written when the default regimes have been seeded.
SEEDED_MARKER = "default_regimes_seeded"
_MAX_NAME = 100
_MAX_DESCRIPTION = 1000


def seed_default_regimes(session: Session) -> int:
    """Add the four default regimes, once per database; return how many were added.

    Idempotent: after the first call (which :meth:`Database.upgrade` makes when it creates
    the schema) it adds nothing, even when the user has deleted defaults since.
    """
    lock_for_claims(session)  # two processes seeding a new PostgreSQL database at once
    if session.get(Meta, SEEDED_MARKER, populate_existing=True) is not None:
        return 0
    existing = set(session.scalars(select(RegimeDefinition.name)))
    now = utcnow()
    added = 0
    for regime in DEFAULT_REGIMES:
        if regime.name in existing:
            continue
        session.add(
            RegimeDefinition(
                name=regime.name,
                description=regime.description,
                rules_json=dict(regime.rules),
                active=regime.active,
                is_default=True,
                created_at=now,
                updated_at=now,
            )
        )
        added += 1
    session.add(Meta(key=SEEDED_MARKER, value=now.isoformat()))
    session.flush()
    logger.info("seeded %d default regime(s)", added)
    return added


def _row(session: Session, name: Any) -> RegimeDefinition:
    row = session.execute(
        select(RegimeDefinition)
        .where(RegimeDefinition.name == name)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if row is None:
        known = (
            ", ".join(session.scalars(select(RegimeDefinition.name).order_by(RegimeDefinition.id)))
            or "none"
        )
        raise StorageError(f"no regime named {quote_input(name)} (known: {known})")
    return row


def _validated(name: Any, rules: Mapping[str, str] | str, description: Any, active: Any) -> Regime:
    regime = Regime(name, rules, description, active)  # RuleError on any invalid part
    shown = quote_input(regime.name)
    if len(regime.name) > _MAX_NAME:
        raise RuleError(
            f"regime name {shown}: at most {_MAX_NAME} characters, got {len(regime.name):,}"
        )
    # An identifier: no spaces, control characters (PostgreSQL cannot store NUL) or quotes.
    check_regime_name(regime.name)
    if regime.name in PSEUDO_REGIMES:
        raise RuleError(f"regime name {shown} is reserved (the pseudo-regime covering every bar)")
    if len(regime.description) > _MAX_DESCRIPTION:
        raise RuleError(
            f"regime {shown}: description: at most {_MAX_DESCRIPTION} characters, got "
            f"{len(regime.description):,}"
        )
    if "\x00" in regime.description:
        raise RuleError(f"regime {shown}: description must not contain NUL characters")
    return regime


def list_regimes(session: Session, *, active_only: bool = False) -> list[RegimeInfo]:
    """Return the regime definitions in creation order (only active ones if asked)."""
    query = select(RegimeDefinition).order_by(RegimeDefinition.id)
    if active_only:
        query = query.where(RegimeDefinition.active.is_(True))
    rows = session.scalars(query.execution_options(populate_existing=True))
    return [RegimeInfo.from_row(row) for row in rows]


def current_rules_versions(session: Session, regime_windows: Mapping[str, int]) -> dict[str, str]:
    """Per regime (``all`` included), the version of its current rules.

    Parameters
    ----------
    regime_windows
        The indicator windows the masks are computed with (``settings.regimes``: its
        ``trend_window``, ``volatility_window``, ``percentile_window``, ``volume_window``).
    """
    windows = {k: int(v) for k, v in dict(regime_windows).items()}
    versions = {name: rules_version(None) for name in sorted(PSEUDO_REGIMES)}
    for info in list_regimes(session):
        versions[info.name] = rules_version(info.to_regime(), **windows)
    return versions


def get_regime(session: Session, name: str) -> RegimeInfo:
    """Return one regime definition.

    Raises
    ------
    StorageError
        ``"no regime named 'x' (known: ...)"``.
    """
    return RegimeInfo.from_row(_row(session, name))


def active_regimes(session: Session) -> list[Regime]:
    """Return the active regimes as :class:`~forexgrid.core.regimes.Regime` objects.

    Raises
    ------
    RuleError
        If a stored rule no longer parses (written by another tool); the message names it.
    """
    return [info.to_regime() for info in list_regimes(session, active_only=True)]


def add_regime(
    session: Session,
    name: str,
    rules: Mapping[str, str] | str,
    description: str = "",
    active: bool = True,
) -> RegimeInfo:
    """Validate and store a new regime.

    Parameters
    ----------
    name
        Unique name (not ``all``, at most 100 characters).
    rules
        ``{indicator: condition}`` or the same as a JSON object string, e.g.
        ``{"trend_strength": "> 0.5", "volatility": "> 90th percentile"}``.
    description
        Free text.
    active
        Whether the grid scores models in this regime.

    Raises
    ------
    RuleError
        If the name or a rule is invalid (nothing is stored).
    StorageError
        If a regime of that name exists.
    """
    regime = _validated(name, rules, description, active)
    exists = session.scalar(
        select(RegimeDefinition.id).where(RegimeDefinition.name == regime.name)
    )
    if exists is not None:
        raise StorageError(
            f"regime {quote_input(regime.name)} already exists; edit it or choose another name"
        )
    now = utcnow()
    row = RegimeDefinition(
        name=regime.name,
        description=regime.description,
        rules_json=dict(regime.rules),
        active=regime.active,
        is_default=False,
        created_at=now,
        updated_at=now,
    )
    session.add(row)
    session.flush()
    logger.info("regime %r added", regime.name)
    return RegimeInfo.from_row(row)


def edit_regime(
    session: Session,
    name: str,
    *,
    rules: Mapping[str, str] | str | None = None,
    description: str | None = None,
    active: bool | None = None,
    new_name: str | None = None,
) -> RegimeInfo:
    """Change a regime's rules, description, active flag or name (validated first).

    A rename carries the regime's lists, trials, statistics and results along. New rules
    make a new rules version: lists and trials scored under the old rules are no longer
    compared with new runs; :func:`forexgrid.scoring.rescore_regimes` scores the kept
    models under the new rules (the CLI does it after an edit).

    Raises
    ------
    StorageError
        Unknown regime, or ``new_name`` is taken.
    RuleError
        If the result is invalid (nothing is changed).
    """
    row = _row(session, name)
    regime = _validated(
        row.name if new_name is None else new_name,
        dict(row.rules_json) if rules is None else rules,
        row.description if description is None else description,
        row.active if active is None else active,
    )
    if regime.name != row.name:
        taken = session.scalar(
            select(RegimeDefinition.id).where(RegimeDefinition.name == regime.name)
        )
        if taken is not None:
            raise StorageError(
                f"cannot rename regime {quote_input(row.name)}: {quote_input(regime.name)} exists"
            )
        # Everything scored under the regime moves with its name (its rules, and so its
        # rules version, are unchanged).
        for table in (RegimeBestModel, RunTrial, TrialScope, ChosenResult, InferenceResult):
            session.execute(
                update(table)
                .where(table.regime == row.name)
                .values(regime=regime.name)
                .execution_options(synchronize_session=False)
            )
    row.name = regime.name
    row.rules_json = dict(regime.rules)
    row.description = regime.description
    row.active = regime.active
    row.updated_at = utcnow()
    session.flush()
    logger.info("regime %r edited", regime.name)
    return RegimeInfo.from_row(row)


def toggle_regime(session: Session, name: str, active: bool | None = None) -> RegimeInfo:
    """Flip a regime's active flag, or set it to ``active`` when given.

    Raises
    ------
    StorageError
        Unknown regime.
    """
    row = _row(session, name)
    return edit_regime(session, row.name, active=(not row.active) if active is None else active)


def delete_regime(session: Session, name: str) -> None:
    """Delete a regime definition.

    Its best-model rows stay (history; they no longer show in the best-models table), and a
    deleted default is not seeded again.

    Raises
    ------
    StorageError
        Unknown regime.
    """
    row = _row(session, name)
    session.delete(row)
    session.flush()
    logger.info("regime %r deleted", name)
