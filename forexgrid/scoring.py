"""Grid-wide scoring that reads many runs: the probability of backtest overfitting.

The per-run part of the grid-wide statistics (a run's trials added to its scopes, the DSR
of the lists) happens in the runner's one transaction per configuration and costs the
same whatever the number of trials stored. The probability of backtest overfitting (PBO)
needs every trial of a scope at once, so it is recomputed here: by the runner when a queue
stops, for the scopes the queue added to, and on demand (``forexgrid trials --recompute``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from forexgrid import storage
from forexgrid.core.pbo import PBOResult, probability_of_backtest_overfitting

if TYPE_CHECKING:
    from forexgrid.config import Settings

__all__ = ["update_pbo"]

logger = logging.getLogger(__name__)


def update_pbo(
    settings: Settings,
    scopes: Iterable[storage.ScopeKey] | None = None,
    *,
    symbol: str | None = None,
) -> dict[storage.ScopeKey, PBOResult]:
    """Recompute and store the PBO of trial scopes, one transaction per scope.

    Parameters
    ----------
    settings
        The configuration (database, ``selection.pbo_blocks``).
    scopes
        The scopes; None for every scope (of ``symbol``, when given).
    symbol
        With ``scopes=None``: only this symbol's scopes.

    Returns
    -------
    dict
        Per scope, the :class:`~forexgrid.core.pbo.PBOResult` stored (NaN PBO where it is
        undefined: fewer than 2 trials or days).
    """
    if scopes is None:
        with storage.session_scope(settings) as session:
            table = storage.scope_table(session, symbol)
        scopes = [
            storage.ScopeKey(
                r.symbol, r.regime, r.rules_version, r.validation_start, r.validation_end
            )
            for r in table.itertuples()
        ]
    out = {}
    for key in scopes:
        with storage.session_scope(settings) as session:
            returns, _ = storage.scope_returns(session, key)
            result = probability_of_backtest_overfitting(
                returns, n_blocks=settings.selection.pbo_blocks
            )
            storage.set_pbo(session, key, result)
        logger.info(
            "PBO %s %s %s..%s: %.3f over %d trials, %d blocks",
            key.symbol,
            key.regime,
            key.validation_start,
            key.validation_end,
            result.pbo,
            result.n_trials,
            result.n_blocks,
        )
        out[key] = result
    return out
