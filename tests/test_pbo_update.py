"""The PBO a queue's end stores, brought up to date from each scope's stored state
(forexgrid.pbo_update), equals a from-scratch CSCV over every trial of the scope; a missing,
stale or damaged state is recomputed from scratch, with the reason logged."""

from __future__ import annotations

import contextlib
import logging

import numpy as np
import pytest
from runner_support import FAST_GRID, PG_URL, make_workspace, new_queue, postgres_url
from sqlalchemy import delete, update

from forexgrid import scoring, storage
from forexgrid.core import pbo_state as pbo_state_module
from forexgrid.core.pbo import probability_of_backtest_overfitting
from forexgrid.core.pbo_state import PBOState
from forexgrid.core.trials import TrialStats
from forexgrid.runner import run_queue
from forexgrid.storage.tables import RunTrial, TrialScope
from forexgrid.storage.trials import _encode

# Two more configurations on the same window (the same scopes): other ridge penalties.
SECOND_GRID = dict(
    model_types=["ridge"],
    symbols=["EURUSD"],
    timeframes=["1h"],
    days_history=[45],
    horizons=[3],
    hyperparameters={"ridge": {"alpha": [0.3, 3.0]}},
)

BACKENDS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(
            not PG_URL, reason="needs FOREXGRID_TEST_DATABASE_URL (a PostgreSQL server)"
        ),
    ),
]


@pytest.fixture
def make(tmp_path, monkeypatch):
    """``make(backend)``: a workspace on SQLite or a new PostgreSQL schema."""
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    with contextlib.ExitStack() as stack:

        def build(backend: str = "sqlite"):
            overrides = {}
            if backend == "postgresql":
                overrides = {"database": {"url": stack.enter_context(postgres_url())}}
            return make_workspace(tmp_path / backend, **overrides)[1]

        yield build


@pytest.fixture
def trained(make):
    settings = make()
    run_queue(new_queue(settings, FAST_GRID), settings)
    return settings


def _keys(settings):
    with storage.session_scope(settings) as session:
        table = storage.trials.scope_table(session)
    return [
        storage.trials.ScopeKey(
            r.symbol, r.regime, r.rules_version, r.validation_start, r.validation_end
        )
        for r in table.itertuples()
    ]


def _traded(returns):
    return returns[:, TrialStats.empty(returns.shape[0]).counts(returns)]


def _assert_identical(got, expected):
    assert (got.n_trials, got.n_blocks, got.n_splits) == (
        expected.n_trials,
        expected.n_blocks,
        expected.n_splits,
    )
    for name in ("logits", "selected", "is_performance", "oos_performance"):
        np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), err_msg=name)
    assert got.pbo == expected.pbo or (np.isnan(got.pbo) and np.isnan(expected.pbo))


def assert_stored_equals_from_scratch(settings, n_blocks=None):
    """Every scope's stored PBO and state equal a from-scratch CSCV of its stored trials."""
    n_blocks = n_blocks or settings.selection.pbo_blocks
    keys = _keys(settings)
    assert keys
    with storage.session_scope(settings) as session:
        for key in keys:
            returns, _ = storage.trials.scope_returns(session, key)
            scratch = probability_of_backtest_overfitting(_traded(returns), n_blocks)
            row = storage.trials.scope_statistics(session, key)
            assert row["pbo_trials"] == scratch.n_trials and row["pbo_blocks"] == scratch.n_blocks
            assert row["pbo"] == scratch.pbo or (np.isnan(row["pbo"]) and np.isnan(scratch.pbo))
            state = PBOState.from_bytes(storage.trials.pbo_state(session, key))
            _assert_identical(state.result(), scratch)
            assert [tuple(r) for r in state.covers.tolist()] == storage.trials.scope_runs(
                session, key
            )


def _from_scratch_reasons(caplog):
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == "forexgrid.pbo_update" and "computed from scratch" in r.getMessage()
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_second_queue_updates_the_pbo_incrementally_and_equals_from_scratch(
    make, backend, caplog, monkeypatch
):
    settings = make(backend)
    caplog.set_level(logging.INFO, logger="forexgrid.pbo_update")
    run_queue(new_queue(settings, FAST_GRID), settings)
    first = _from_scratch_reasons(caplog)
    assert len(first) == len(_keys(settings)) and all("no state stored" in m for m in first)
    assert_stored_equals_from_scratch(settings)

    caplog.clear()
    recounts = []
    original = pbo_state_module._recount

    def counting(layout, block_sums, weights, splits, which, threads):
        recounts.append(which.size)
        return original(layout, block_sums, weights, splits, which, threads)

    monkeypatch.setattr(pbo_state_module, "_recount", counting)
    run_queue(new_queue(settings, SECOND_GRID), settings)
    assert _from_scratch_reasons(caplog) == []  # every scope brought up to date
    assert recounts and sum(recounts) > 0  # some splits got a new in-sample best
    assert_stored_equals_from_scratch(settings)
    with storage.session_scope(settings) as session:
        assert {len(storage.trials.scope_runs(session, k)) for k in _keys(settings)} == {10}

    # Nothing new: the stored state is used as it is.
    caplog.clear()
    scoring.update_pbo(settings)
    assert _from_scratch_reasons(caplog) == []
    assert_stored_equals_from_scratch(settings)


def _set_state(settings, key, blob):
    with storage.session_scope(settings) as session:
        session.execute(update(TrialScope).where(*key._where(TrialScope)).values(pbo_state=blob))


def _state_of(settings, key):
    with storage.session_scope(settings) as session:
        return storage.trials.pbo_state(session, key)


def _recompute(settings, key, caplog):
    caplog.clear()
    scoring.update_pbo(settings, [key])
    (reason,) = _from_scratch_reasons(caplog)
    return reason


def test_a_missing_or_damaged_state_is_recomputed_from_scratch(trained, caplog):
    settings = trained
    caplog.set_level(logging.INFO, logger="forexgrid.pbo_update")
    key = _keys(settings)[0]
    _set_state(settings, key, None)
    assert "no state stored" in _recompute(settings, key, caplog)
    assert_stored_equals_from_scratch(settings)

    blob = bytearray(_state_of(settings, key))
    blob[len(blob) // 2] ^= 0xFF
    _set_state(settings, key, bytes(blob))
    assert "damaged PBO state" in _recompute(settings, key, caplog)
    assert_stored_equals_from_scratch(settings)

    _set_state(settings, key, b"not a state at all")
    assert "not a PBO state" in _recompute(settings, key, caplog)
    assert_stored_equals_from_scratch(settings)


def test_a_state_of_other_blocks_or_runs_is_recomputed_from_scratch(trained, caplog):
    settings = trained
    caplog.set_level(logging.INFO, logger="forexgrid.pbo_update")
    keys = _keys(settings)

    # Another pbo_blocks: every scope from scratch with the new number.
    eight = settings.model_copy(
        update={"selection": settings.selection.model_copy(update={"pbo_blocks": 8})}
    )
    caplog.clear()
    scoring.update_pbo(eight)
    reasons = _from_scratch_reasons(caplog)
    assert len(reasons) == len(keys) and all("pbo_blocks is 8" in m for m in reasons)
    assert_stored_equals_from_scratch(eight, n_blocks=8)
    scoring.update_pbo(settings)  # back to 16, from scratch again
    assert_stored_equals_from_scratch(settings)

    key = keys[0]
    with storage.session_scope(settings) as session:
        runs = storage.trials.scope_runs(session, key)
        returns, owners = storage.trials.scope_returns(session, key)
    owners = np.array(owners)

    # A state that lacks the first run (it would come before the covered ones).
    later = _traded(returns[:, owners != runs[0][0]])
    stale = PBOState.empty(returns.shape[0], 16).add(later, covers=runs[1:])
    _set_state(settings, key, stale.to_bytes())
    assert "older than the state's last one" in _recompute(settings, key, caplog)
    assert_stored_equals_from_scratch(settings)

    # A covered run whose trials are gone from the scope.
    with storage.session_scope(settings) as session:
        session.execute(
            delete(RunTrial).where(*key._where(RunTrial), RunTrial.run_id == runs[-1][0])
        )
    assert f"covers run {runs[-1][0]}" in _recompute(settings, key, caplog)
    assert_stored_equals_from_scratch(settings)


def test_covered_trials_that_changed_are_detected_when_read_again(trained, caplog):
    settings = trained
    caplog.set_level(logging.INFO, logger="forexgrid.pbo_update")
    key = _keys(settings)[0]
    with storage.session_scope(settings) as session:
        runs = storage.trials.scope_runs(session, key)
        returns, owners = storage.trials.scope_returns(session, key)
    owners = np.array(owners)
    n_days = returns.shape[0]
    # A valid state of every run but the last, from the trials as they were...
    state = PBOState.empty(n_days, 16).add(
        _traded(returns[:, owners != runs[-1][0]]), covers=runs[:-1]
    )
    _set_state(settings, key, state.to_bytes())

    # ... then the first run's trials rewritten in place (same shape), and the last run's made
    # to win every split in-sample, so that adding it reads the covered trials again.
    def rewrite(run_id, daily):
        with storage.session_scope(settings) as session:
            session.execute(
                update(RunTrial)
                .where(*key._where(RunTrial), RunTrial.run_id == run_id)
                .values(returns=_encode(daily.astype(np.float32), "<f4"))
            )

    rewrite(runs[0][0], returns[:, owners == runs[0][0]] * 3.0)
    rewrite(runs[-1][0], returns[:, owners == runs[-1][0]] + 0.05)
    assert "not the ones the state was built from" in _recompute(settings, key, caplog)
    assert_stored_equals_from_scratch(settings)


@pytest.mark.parametrize("backend", BACKENDS)
def test_migration_0004_adds_an_empty_state_that_the_next_update_fills(make, backend, caplog):
    from alembic import command
    from sqlalchemy import inspect

    from forexgrid.storage.database import alembic_config, get_database

    settings = make(backend)
    run_queue(new_queue(settings, FAST_GRID), settings)
    db = get_database(settings)
    with db.engine.begin() as conn:
        cfg = alembic_config(db.migrations_dir)
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0003")
        assert "pbo_state" not in {c["name"] for c in inspect(conn).get_columns("trial_scopes")}
    assert db.upgrade() == "0004"
    keys = _keys(settings)
    assert all(_state_of(settings, key) is None for key in keys)
    caplog.set_level(logging.INFO, logger="forexgrid.pbo_update")
    # Only this update's lines: in a whole-suite run the package logger may already log at
    # INFO (an earlier test's CLI logging), and the first queue's end logged its own.
    caplog.clear()
    scoring.update_pbo(settings)
    reasons = _from_scratch_reasons(caplog)
    assert len(reasons) == len(keys) and all("no state stored" in m for m in reasons)
    assert_stored_equals_from_scratch(settings)
