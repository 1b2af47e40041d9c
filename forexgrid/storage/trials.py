"""Trial queries: each run's daily validation returns per regime, and the additive
statistics of every scope.

A *scope* is what a multiple-testing correction is taken over: the trials of one symbol and
regime, scored under one version of the regime's rules, on one validation window
(:class:`ScopeKey`). Each run adds one row per regime to ``run_trials`` (never deleted, so
later statistics keep counting it) and adds its trials to the scope's
:class:`~forexgrid.core.trials.TrialStats` in ``trial_scopes``, in the same transaction as
the run's other rows. Reading a scope's statistics is one row whatever the number of trials;
the probability of backtest overfitting keeps a state in the same row
(:mod:`forexgrid.pbo_update`) and reads the trials its state does not cover (and the earlier
ones again when a new trial becomes some split's in-sample best).
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import pandas as pd
from sqlalchemy import and_, bindparam, insert, or_, select, tuple_, update
from sqlalchemy.orm import Session

from forexgrid.core.pbo import PBOResult
from forexgrid.core.trials import TrialStats
from forexgrid.exceptions import StorageError
from forexgrid.storage.tables import RunTrial, TrialScope, utcnow

__all__ = [
    "SCOPE_COLUMNS",
    "SCORED",
    "ScopeKey",
    "decode_returns",
    "load_scope_stats",
    "lock_scope",
    "pbo_state",
    "record_not_scored",
    "record_trials",
    "run_trials",
    "scope_returns",
    "scope_returns_after",
    "scope_returns_through",
    "scope_runs",
    "scope_statistics",
    "scope_table",
    "scopes_of_runs",
    "scored_windows",
    "set_pbo",
]

logger = logging.getLogger(__name__)

#: ``run_trials.status`` of a run whose trials are stored.
SCORED = "scored"

#: Columns of :func:`scope_table`.
SCOPE_COLUMNS: tuple[str, ...] = (
    "symbol",
    "regime",
    "rules_version",
    "validation_start",
    "validation_end",
    "n_days",
    "n_runs",
    "n_trials",
    "effective_trials",
    "sharpe_variance",
    "null_sharpe_variance",
    "expected_max_sharpe",
    "pbo",
    "pbo_blocks",
    "pbo_trials",
    "pbo_computed_at",
)


@dataclass(frozen=True, order=True)
class ScopeKey:
    """One multiple-testing scope: symbol, regime, rules version and validation window."""

    symbol: str
    regime: str
    rules_version: str
    validation_start: date
    validation_end: date

    @property
    def window(self) -> tuple[date, date]:
        """The validation window, first and last trading date."""
        return (self.validation_start, self.validation_end)

    def _where(self, table: type[RunTrial] | type[TrialScope]) -> tuple:
        return (
            table.symbol == self.symbol,
            table.regime == self.regime,
            table.rules_version == self.rules_version,
            table.validation_start == self.validation_start,
            table.validation_end == self.validation_end,
        )


# ---------------------------------------------------------------------------- encoding


def _encode(array: np.ndarray, dtype: str) -> bytes:
    return zlib.compress(np.ascontiguousarray(array, dtype=dtype).tobytes(), level=6)


def _decode(blob: bytes, dtype: str, shape: tuple[int, ...], what: str) -> np.ndarray:
    try:
        raw = zlib.decompress(blob)
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()
    except (zlib.error, ValueError) as err:
        raise StorageError(
            f"{what}: stored array is damaged (expected {np.dtype(dtype).name} of shape "
            f"{shape}): {err}"
        ) from err


def decode_returns(blob: bytes, n_days: int, n_combinations: int, what: str) -> np.ndarray:
    """A stored ``run_trials.returns`` blob as a float32 ``(days, combinations)`` array.

    Raises
    ------
    StorageError
        If the blob is damaged or of another shape.
    """
    return _decode(blob, "<f4", (n_days, n_combinations), what)


def _stats(row: TrialScope) -> TrialStats:
    what = f"trial scope {row.id}"
    return TrialStats(
        n_days=row.n_days,
        n_trials=row.n_trials,
        sharpe_sum=row.sharpe_sum,
        sharpe_sq_sum=row.sharpe_sq_sum,
        gram=_decode(row.gram, "<f8", (row.n_days, row.n_days), f"{what} gram"),
        z_sum=_decode(row.z_sum, "<f8", (row.n_days,), f"{what} z_sum"),
        active_days=_decode(row.active_days, "<f8", (row.n_days,), f"{what} active_days"),
    )


# ---------------------------------------------------------------------------- queries


def _scope_row(session: Session, key: ScopeKey, *, lock: bool = False) -> TrialScope | None:
    query = select(TrialScope).where(*key._where(TrialScope))
    if lock:
        # Serialises two writers of one scope on PostgreSQL (SQLite holds the database lock).
        query = query.with_for_update()
    return session.execute(query.execution_options(populate_existing=True)).scalar_one_or_none()


def load_scope_stats(
    session: Session, keys: Iterable[ScopeKey], n_days: int, *, lock: bool = False
) -> dict[ScopeKey, TrialStats]:
    """The statistics of each scope (empty statistics for a scope with no trials yet).

    Parameters
    ----------
    keys
        The scopes.
    n_days
        The length of their daily axis (a new scope starts empty on it).
    lock
        Lock the scope rows for the rest of the transaction (the runner, before it adds
        trials).

    Raises
    ------
    StorageError
        If a stored scope has another number of days, or its statistics are damaged.
    """
    keys = list(keys)
    query = select(TrialScope).where(_any_scope(keys))
    if lock:
        # Serialises two writers of one scope on PostgreSQL (SQLite holds the database lock).
        query = query.with_for_update()
    found = {
        _key_of(row): row
        for row in session.scalars(query.execution_options(populate_existing=True))
    }
    out = {}
    for key in keys:
        row = found.get(key)
        if row is None:
            out[key] = TrialStats.empty(n_days)
            continue
        if row.n_days != n_days:
            raise StorageError(
                f"trial scope {key.symbol} {key.regime} {key.validation_start}.."
                f"{key.validation_end}: stored with {row.n_days} days, given {n_days}"
            )
        out[key] = _stats(row)
    return out


def record_trials(
    session: Session,
    run_id: int,
    scored: Mapping[ScopeKey, np.ndarray],
    stats_after: Mapping[ScopeKey, TrialStats],
) -> None:
    """Store a run's trials and the statistics of their scopes with them.

    Parameters
    ----------
    run_id
        The run.
    scored
        Per scope, the run's daily returns ``(days, combinations)``.
    stats_after
        Per scope, its statistics with the run's trials added (what
        :func:`load_scope_stats` returned, ``.add``-ed).
    """
    if not scored:
        return
    now = utcnow()
    trials = []
    for key, daily in scored.items():
        daily = np.asarray(daily, dtype=np.float32)
        trials.append(_trial_values(run_id, key, *daily.shape, SCORED, _encode(daily, "<f4"), now))
    # One statement per kind of row (Core executemany, not the ORM's unit of work): this
    # runs once per configuration (docs/performance.md "Grid runner").
    connection = session.connection()
    connection.execute(insert(RunTrial.__table__), trials)
    ids = _scope_ids(session, list(scored))
    updates, new = [], []
    for key in scored:
        values = _stats_values(stats_after[key], now)
        if key in ids:
            updates.append({"scope_id": ids[key], **{f"new_{c}": v for c, v in values.items()}})
        else:
            new.append({**_key_values(key), "n_runs": 1, **values})
    if updates:
        connection.execute(
            update(TrialScope.__table__)
            .where(TrialScope.id == bindparam("scope_id"))
            .values(
                n_runs=TrialScope.n_runs + 1,
                **{c: bindparam(f"new_{c}") for c in _STATS_VALUES},
            ),
            updates,
        )
    if new:
        connection.execute(insert(TrialScope.__table__), new)


_STATS_VALUES = (
    "n_days",
    "n_trials",
    "sharpe_sum",
    "sharpe_sq_sum",
    "gram",
    "z_sum",
    "active_days",
    "updated_at",
)


def _any_scope(keys: Iterable[ScopeKey]):
    """The WHERE clause of the rows of any of ``keys`` (one query for a run's scopes).

    One (regime, rules version) ``IN`` per symbol and window: a run's scopes share them, and
    an OR of five 5-column conditions took 0.8 ms to build, twice per configuration.
    """
    places: dict[tuple, list[tuple[str, str]]] = {}
    for key in keys:
        place = (key.symbol, key.validation_start, key.validation_end)
        places.setdefault(place, []).append((key.regime, key.rules_version))
    return or_(
        *(
            and_(
                TrialScope.symbol == symbol,
                TrialScope.validation_start == start,
                TrialScope.validation_end == end,
                tuple_(TrialScope.regime, TrialScope.rules_version).in_(pairs),
            )
            for (symbol, start, end), pairs in places.items()
        )
    )


def _key_of(row: TrialScope) -> ScopeKey:
    return ScopeKey(
        row.symbol, row.regime, row.rules_version, row.validation_start, row.validation_end
    )


def _key_values(key: ScopeKey) -> dict:
    return {
        "symbol": key.symbol,
        "regime": key.regime,
        "rules_version": key.rules_version,
        "validation_start": key.validation_start,
        "validation_end": key.validation_end,
    }


def _scope_ids(session: Session, keys: list[ScopeKey]) -> dict[ScopeKey, int]:
    """The ids of the stored scopes among ``keys`` (their statistics blobs not read)."""
    rows = session.execute(
        select(
            TrialScope.id,
            TrialScope.symbol,
            TrialScope.regime,
            TrialScope.rules_version,
            TrialScope.validation_start,
            TrialScope.validation_end,
        ).where(_any_scope(keys))
    )
    return {ScopeKey(*row[1:]): row[0] for row in rows}


def _stats_values(stats: TrialStats, now) -> dict:
    return {
        "n_days": stats.n_days,
        "n_trials": stats.n_trials,
        "sharpe_sum": float(stats.sharpe_sum),
        "sharpe_sq_sum": float(stats.sharpe_sq_sum),
        "gram": _encode(stats.gram, "<f8"),
        "z_sum": _encode(stats.z_sum, "<f8"),
        "active_days": _encode(stats.active_days, "<f8"),
        "updated_at": now,
    }


def _trial_values(run_id, key, n_days, n_combinations, status, returns, now) -> dict:
    return {
        "run_id": run_id,
        **_key_values(key),
        "n_days": int(n_days),
        "n_combinations": int(n_combinations),
        "status": str(status)[:40],
        "returns": returns,
        "created_at": now,
    }


def record_not_scored(
    session: Session, run_id: int, key: ScopeKey, n_days: int, n_combinations: int, status: str
) -> None:
    """Record that a run could not be scored in a scope, and why (e.g. its model file was
    deleted before the regime's rules changed)."""
    session.add(
        RunTrial(**_trial_values(run_id, key, n_days, n_combinations, status, None, utcnow()))
    )
    session.flush()


def scope_returns(session: Session, key: ScopeKey) -> tuple[np.ndarray, list[int]]:
    """Every stored trial of a scope: daily returns ``(days, trials)`` and, per trial, its run.

    Raises
    ------
    StorageError
        If a stored array is damaged.
    """
    return _returns(session, key)


def scope_returns_after(
    session: Session, key: ScopeKey, run_id: int | None
) -> tuple[np.ndarray, list[int]]:
    """The stored trials of a scope's runs after ``run_id`` (all of them for None), as
    :func:`scope_returns`: what a PBO state covering the runs up to ``run_id`` lacks.

    Raises
    ------
    StorageError
        If a stored array is damaged.
    """
    return _returns(session, key, None if run_id is None else RunTrial.run_id > int(run_id))


def scope_returns_through(
    session: Session, key: ScopeKey, run_id: int
) -> tuple[np.ndarray, list[int]]:
    """The stored trials of a scope's runs up to ``run_id`` included, as :func:`scope_returns`.

    Raises
    ------
    StorageError
        If a stored array is damaged.
    """
    return _returns(session, key, RunTrial.run_id <= int(run_id))


def _returns(session: Session, key: ScopeKey, condition=None) -> tuple[np.ndarray, list[int]]:
    query = select(RunTrial).where(*key._where(RunTrial), RunTrial.status == SCORED)
    if condition is not None:
        query = query.where(condition)
    rows = session.execute(query.order_by(RunTrial.run_id)).scalars()
    parts, owners = [], []
    n_days = None
    for row in rows:
        daily = decode_returns(
            row.returns, row.n_days, row.n_combinations, f"run {row.run_id} trials"
        )
        n_days = row.n_days
        parts.append(daily)
        owners.extend([row.run_id] * row.n_combinations)
    if not parts:
        return np.zeros((0, 0), dtype=np.float32), []
    if any(p.shape[0] != n_days for p in parts):
        raise StorageError(f"trials of {key}: runs stored with different numbers of days")
    return np.concatenate(parts, axis=1), owners


def scope_runs(session: Session, key: ScopeKey) -> list[tuple[int, int]]:
    """The runs whose trials a scope holds, in run order: ``(run id, combinations)`` (the
    columns each stored, never-traded ones included). Reads no trial array."""
    rows = session.execute(
        select(RunTrial.run_id, RunTrial.n_combinations)
        .where(*key._where(RunTrial), RunTrial.status == SCORED)
        .order_by(RunTrial.run_id)
    ).all()
    return [(int(run_id), int(n)) for run_id, n in rows]


def run_trials(session: Session, run_id: int) -> list[tuple[ScopeKey, np.ndarray | None, str]]:
    """A run's trials, one entry per scope it was scored in (or marked not scored in):
    ``(scope, daily returns (days, combinations) or None, status)``, in the order stored.

    Raises
    ------
    StorageError
        If a stored array is damaged.
    """
    rows = session.execute(
        select(RunTrial).where(RunTrial.run_id == int(run_id)).order_by(RunTrial.id)
    ).scalars()
    out = []
    for row in rows:
        key = ScopeKey(
            row.symbol, row.regime, row.rules_version, row.validation_start, row.validation_end
        )
        daily = None
        if row.returns is not None:
            daily = decode_returns(
                row.returns, row.n_days, row.n_combinations, f"run {row.run_id} trials"
            )
        out.append((key, daily, row.status))
    return out


def scored_windows(session: Session) -> dict[int, tuple[date, date]]:
    """The validation window of every run that has trials: ``{run id: (first, last day)}``.

    Runs completed before trials were recorded (legacy) are not listed.
    """
    rows = session.execute(
        select(RunTrial.run_id, RunTrial.validation_start, RunTrial.validation_end).distinct()
    ).all()
    return {int(run_id): (start, end) for run_id, start, end in rows}


def lock_scope(session: Session, key: ScopeKey) -> int | None:
    """Lock a scope's statistics row for the rest of the transaction (two runners updating
    its PBO on PostgreSQL take turns; SQLite holds the database lock); its number of days,
    or None when the scope has no row (no trials recorded)."""
    row = _scope_row(session, key, lock=True)
    return None if row is None else int(row.n_days)


def pbo_state(session: Session, key: ScopeKey) -> bytes | None:
    """A scope's stored PBO state (:meth:`forexgrid.core.pbo_state.PBOState.to_bytes`), or
    None when there is none."""
    blob = session.execute(
        select(TrialScope.pbo_state).where(*key._where(TrialScope))
    ).scalar_one_or_none()
    return None if blob is None else bytes(blob)


def set_pbo(
    session: Session, key: ScopeKey, result: PBOResult, *, state: bytes | None = None
) -> None:
    """Store a scope's probability of backtest overfitting, and the state it came from when
    given (otherwise the stored state is left as it is).

    Raises
    ------
    StorageError
        If the scope has no statistics row (no trials were recorded in it).
    """
    row = _scope_row(session, key)
    if row is None:
        raise StorageError(f"no trials recorded for {key}")
    values = {
        "pbo": float(result.pbo),
        "pbo_blocks": int(result.n_blocks),
        "pbo_trials": int(result.n_trials),
        "pbo_computed_at": utcnow(),
    }
    if state is not None:
        values["pbo_state"] = state
    session.execute(
        update(TrialScope)
        .where(TrialScope.id == row.id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def scopes_of_runs(session: Session, run_ids: Iterable[int]) -> list[ScopeKey]:
    """The scopes the given runs added trials to."""
    ids = sorted({int(r) for r in run_ids})
    if not ids:
        return []
    rows = session.execute(
        select(
            RunTrial.symbol,
            RunTrial.regime,
            RunTrial.rules_version,
            RunTrial.validation_start,
            RunTrial.validation_end,
        )
        .where(RunTrial.run_id.in_(ids), RunTrial.status == SCORED)
        .distinct()
    ).all()
    return sorted(ScopeKey(*row) for row in rows)


def _summary(row: TrialScope) -> dict:
    stats = _stats(row)
    return {
        "symbol": row.symbol,
        "regime": row.regime,
        "rules_version": row.rules_version,
        "validation_start": row.validation_start,
        "validation_end": row.validation_end,
        "n_days": row.n_days,
        "n_runs": row.n_runs,
        "n_trials": row.n_trials,
        "effective_trials": stats.effective_trials,
        "sharpe_variance": stats.sharpe_variance,
        "null_sharpe_variance": stats.null_sharpe_variance,
        "expected_max_sharpe": stats.expected_max_sharpe,
        "pbo": row.pbo,
        "pbo_blocks": row.pbo_blocks,
        "pbo_trials": row.pbo_trials,
        "pbo_computed_at": row.pbo_computed_at,
    }


def scope_statistics(session: Session, key: ScopeKey) -> dict:
    """One scope's row of :func:`scope_table` as a dict; empty when it has no trials."""
    row = _scope_row(session, key)
    return {} if row is None else _summary(row)


def scope_table(session: Session, symbol: str | None = None) -> pd.DataFrame:
    """Every scope and its statistics, one row each (:data:`SCOPE_COLUMNS`).

    ``effective_trials`` is the effective number of independent trials,
    ``null_sharpe_variance`` the variance of a daily Sharpe ratio without skill and
    ``expected_max_sharpe`` the daily Sharpe ratio the best of the trials is expected to
    reach by luck (the DSR's benchmark); ``sharpe_variance`` is the cross-sectional variance
    of the trials' daily Sharpe ratios, for reference.
    """
    query = select(TrialScope).order_by(
        TrialScope.symbol, TrialScope.validation_end, TrialScope.regime, TrialScope.id
    )
    if symbol is not None:
        query = query.where(TrialScope.symbol == symbol.strip().upper())
    records = [_summary(row) for row in session.execute(query).scalars()]
    frame = pd.DataFrame.from_records(records, columns=list(SCOPE_COLUMNS))
    for column in ("n_days", "n_runs", "n_trials", "pbo_blocks", "pbo_trials"):
        frame[column] = frame[column].astype("Int64")
    for column in (
        "effective_trials",
        "sharpe_variance",
        "null_sharpe_variance",
        "expected_max_sharpe",
        "pbo",
    ):
        frame[column] = frame[column].astype("float64")
    return frame
