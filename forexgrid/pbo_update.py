"""One scope's PBO brought up to date from its stored state (:mod:`forexgrid.core.pbo_state`).

A scope's trials are append-only, so its PBO state (in ``trial_scopes.pbo_state``) absorbs
the runs added since it was stored instead of scoring every trial again. The state lists the
runs it covers, ``(run id, combinations stored)`` in run order; it is used only when those
are exactly the first of the scope's runs now (no covered run gone or changed in size, no
new run older than a covered one: its trials would come before covered ones in the
from-scratch column order). Anything else, a damaged state, another ``pbo_blocks`` or
number of days, or earlier trials that no longer match the state's digests, means a
computation from scratch, logged with the reason. Either way the result equals
:func:`~forexgrid.core.pbo.probability_of_backtest_overfitting` over every trial of the
scope (tests/test_pbo_update.py).
"""

from __future__ import annotations

import logging

import numpy as np

from forexgrid import storage
from forexgrid.core.pbo import PBOResult
from forexgrid.core.pbo_state import PBOState, PBOStateError
from forexgrid.core.trials import TrialStats

__all__ = ["scope_pbo"]

logger = logging.getLogger(__name__)


def scope_pbo(
    session, key: storage.trials.ScopeKey, n_blocks: int, threads: int = 1
) -> PBOResult | None:
    """Bring a scope's PBO and state up to date and store both, in ``session``'s transaction
    with the scope row locked. None when the scope has no trials recorded."""
    n_days = storage.trials.lock_scope(session, key)
    if n_days is None:
        return None
    runs = storage.trials.scope_runs(session, key)
    stored, why = _stored_state(session, key, n_days, n_blocks, runs)
    state = stored
    if stored is not None and len(runs) > stored.covers.shape[0]:
        last = int(stored.covers[-1, 0]) if stored.covers.size else None
        returns, _ = storage.trials.scope_returns_after(session, key, last)
        try:
            state = stored.add(
                _traded(returns, n_days),
                earlier=lambda: _earlier(session, key, last, stored),
                covers=runs[stored.covers.shape[0] :],
                threads=threads,
            )
        except PBOStateError as err:
            state, why = None, str(err)
    if state is None:
        logger.info("PBO %s: computed from scratch: %s", _name(key), why)
        returns, _ = storage.trials.scope_returns(session, key)
        state = PBOState.empty(n_days, n_blocks).add(
            _traded(returns, n_days), covers=runs, threads=threads
        )
    result = state.result()
    # An unchanged state is not written again (it is some 0.5 MB at 10,000 trials).
    blob = None if state is stored else state.to_bytes()
    storage.trials.set_pbo(session, key, result, state=blob)
    return result


def _stored_state(
    session, key, n_days: int, n_blocks: int, runs: list[tuple[int, int]]
) -> tuple[PBOState | None, str]:
    """The scope's stored state if it can be brought up to date, else None and why not."""
    blob = storage.trials.pbo_state(session, key)
    if blob is None:
        return None, "no state stored"
    try:
        state = PBOState.from_bytes(blob)
    except PBOStateError as err:
        return None, str(err)
    if state.n_blocks != n_blocks:
        return None, f"the state has {state.n_blocks} blocks, pbo_blocks is {n_blocks}"
    if state.n_days != n_days:
        return None, f"the state has {state.n_days} days, the scope {n_days}"
    covered = [tuple(row) for row in state.covers.tolist()]
    if covered != runs[: len(covered)]:
        gone = sorted(set(covered) - set(runs))
        if gone:
            return None, f"the state covers run {gone[0][0]} ({gone[0][1]} trials), gone"
        return None, "a run older than the state's last one was added"
    return state, ""


def _earlier(session, key, last: int | None, state: PBOState) -> np.ndarray:
    """The state's distinct columns, read again from the runs it covers."""
    if last is None:
        return np.zeros((state.n_days, 0))
    returns, _ = storage.trials.scope_returns_through(session, key, last)
    traded = _traded(returns, state.n_days)
    if traded.shape[1] != state.n_trials:
        raise PBOStateError(
            f"the state covers {state.n_trials} trials, its runs hold {traded.shape[1]}"
        )
    return traded[:, state.first_column]


def _traded(returns: np.ndarray, n_days: int) -> np.ndarray:
    """The trials the DSR counts: a combination that never traded in the window has no
    Sharpe ratio and is not a trial (as ``update_pbo`` always did)."""
    if not returns.size:
        return np.zeros((n_days, 0), dtype=np.float32)
    return returns[:, TrialStats.empty(returns.shape[0]).counts(returns)]


def _name(key: storage.trials.ScopeKey) -> str:
    return f"{key.symbol} {key.regime} {key.validation_start}..{key.validation_end}"
