"""Best-model queries: load the per-(symbol, regime) lists of a validation window, write
selection's changes, and the best-models table ``forexgrid best``, the Regime Analysis panel
and the charts show.

The lists are decided by the pure :func:`forexgrid.core.selection.select`; this module only
stores them. Rank 1 is the best of a list. Lists are per validation window: entries scored
on different windows are never ranked against each other. Rows written before windows were
recorded (legacy) have no window; they are listed only when every window is asked for.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import pandas as pd
from sqlalchemy import and_, delete, insert, select, text
from sqlalchemy.orm import Session

from forexgrid.core.selection import (
    PSEUDO_REGIMES,
    BestEntry,
    BestsKey,
    DailyMoments,
    SelectionDecision,
    verdict,
)
from forexgrid.exceptions import ForexgridError, StorageError, quote_input
from forexgrid.grid import TrainingConfig
from forexgrid.storage._common import BEST_LISTS_LOCK_SPACE, chunks, lock_key
from forexgrid.storage.tables import (
    ChosenResult,
    RegimeBestModel,
    RegimeDefinition,
    TrainingRun,
    TrialScope,
    utcnow,
)
from forexgrid.storage.trials import ScopeKey, scope_statistics

__all__ = [
    "BEST_MODELS_COLUMNS",
    "Window",
    "apply_bests",
    "best_models_table",
    "best_windows",
    "load_bests",
    "lock_best_lists",
]

logger = logging.getLogger(__name__)

#: A validation window: its first and last trading date (None: a legacy list).
Window = tuple[date, date] | None

#: Columns of :func:`best_models_table`.
BEST_MODELS_COLUMNS: tuple[str, ...] = (
    "symbol",
    "regime",
    "rank",
    "has_best",
    "run_id",
    "model_type",
    "timeframe",
    "days_history",
    "horizon",
    "encoder",
    "config_label",
    "signal",
    "threshold",
    "lookback",
    "score",
    "val_sharpe",
    "test_sharpe",
    "test_max_drawdown",
    "test_win_rate",
    "test_trades",
    "dsr",
    "pbo",
    "verdict",
    "test_psr",
    "run_dsr",
    "n_trials",
    "effective_trials",
    "validation_start",
    "validation_end",
    "rules_version",
    "achieved_at",
    "config_hash",
    "note",
)


def lock_best_lists(session: Session, symbol: str) -> None:
    """Serialise, until the transaction ends, every change to ``symbol``'s best lists.

    A run's selection reads a symbol's lists and trial statistics and rewrites them; two
    queues doing that at once would each rank against lists the other is changing.
    PostgreSQL takes a transaction-level advisory lock per symbol (queues of other symbols
    go on in parallel); SQLite transactions hold the database's write lock from their start
    (BEGIN IMMEDIATE), which already serialises them.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(:space, :key)"),
            {"space": BEST_LISTS_LOCK_SPACE, "key": lock_key(symbol)},
        )


def _window_of(row: Any) -> Window:
    if row.validation_start is None or row.validation_end is None:
        return None
    return (row.validation_start, row.validation_end)


def _where_window(window: Window) -> tuple:
    if window is None:
        return (
            RegimeBestModel.validation_start.is_(None),
            RegimeBestModel.validation_end.is_(None),
        )
    return (
        RegimeBestModel.validation_start == window[0],
        RegimeBestModel.validation_end == window[1],
    )


def load_bests(
    session: Session, *, window: Window = None, symbol: str | None = None
) -> dict[BestsKey, list[BestEntry]]:
    """Return the best lists of one validation window: ``{(symbol, regime): [BestEntry]}``.

    Parameters
    ----------
    window
        The validation window (first, last trading date); None for the legacy lists.
    symbol
        Only this symbol's lists.

    ``BestEntry.run_id`` is the run's database id.
    """
    query = select(RegimeBestModel).where(*_where_window(window))
    if symbol is not None:
        query = query.where(RegimeBestModel.symbol == symbol.strip().upper())
    rows = session.execute(
        query.order_by(RegimeBestModel.symbol, RegimeBestModel.regime, RegimeBestModel.rank)
    ).scalars()
    out: dict[BestsKey, list[BestEntry]] = {}
    for row in rows:
        daily = None
        if row.daily_n is not None:
            daily = DailyMoments(
                row.daily_sharpe, row.daily_skew, row.daily_kurtosis, int(row.daily_n)
            )
        out.setdefault((row.symbol, row.regime), []).append(
            BestEntry(
                run_id=row.run_id,
                config_hash=row.config_hash,
                regime=row.regime,
                symbol=row.symbol,
                score=row.score,
                signal=row.signal,
                threshold=row.threshold,
                lookback=row.lookback or None,
                test_sharpe=row.test_sharpe,
                achieved_at=row.achieved_at,
                dsr=row.dsr,
                val_sharpe=row.val_sharpe,
                daily=daily,
                validation_window=_window_of(row),
                rules_version=row.rules_version,
            )
        )
    return out


def best_windows(session: Session, symbol: str | None = None) -> list[tuple[str, Window]]:
    """The ``(symbol, window)`` pairs that have best lists or scored trials, newest window
    first per symbol (legacy lists, without a window, last)."""
    lists = select(
        RegimeBestModel.symbol, RegimeBestModel.validation_start, RegimeBestModel.validation_end
    ).distinct()
    # A window whose runs all failed to qualify has scopes but no list: it is shown too.
    scoped = select(
        TrialScope.symbol, TrialScope.validation_start, TrialScope.validation_end
    ).distinct()
    if symbol is not None:
        lists = lists.where(RegimeBestModel.symbol == symbol.strip().upper())
        scoped = scoped.where(TrialScope.symbol == symbol.strip().upper())
    pairs = {
        (sym, None if start is None or end is None else (start, end))
        for query in (lists, scoped)
        for sym, start, end in session.execute(query)
    }
    return sorted(pairs, key=lambda p: (p[0], p[1] is None, _descending(p[1])))


def _descending(window: Window) -> tuple[int, int]:
    if window is None:
        return (0, 0)
    return (-window[1].toordinal(), -window[0].toordinal())


def _run_ids(session: Session, entries: Iterable[BestEntry]) -> dict[Any, int]:
    """Map each entry's run_id (database id or run uuid) to the database id."""
    wanted = {e.run_id for e in entries}
    ints = sorted(r for r in wanted if isinstance(r, int) and not isinstance(r, bool))
    uuids = sorted(str(r) for r in wanted if isinstance(r, str))
    others = [r for r in wanted if not isinstance(r, (int, str)) or isinstance(r, bool)]
    if others:
        raise StorageError(f"best entry run_id: expected a run id or uuid, got {others[0]!r}")
    found: dict[Any, int] = {}
    for part in chunks(ints):
        found.update(
            {i: i for i in session.scalars(select(TrainingRun.id).where(TrainingRun.id.in_(part)))}
        )
    for part in chunks(uuids):
        found.update(
            dict(
                session.execute(
                    select(TrainingRun.run_uuid, TrainingRun.id).where(
                        TrainingRun.run_uuid.in_(part)
                    )
                ).all()
            )
        )
    missing = [r for r in sorted(wanted, key=str) if r not in found]
    if missing:
        raise StorageError(f"best entry refers to no stored run: no run with id {missing[0]!r}")
    return found


def _row_values(entry: BestEntry, rank: int, run_id: int, window: Window, now) -> dict:
    if not math.isfinite(entry.score):
        raise StorageError(
            f"best entry {entry.symbol} {entry.regime} run {entry.run_id!r}: score must be "
            f"finite, got {entry.score!r}"
        )
    daily = entry.daily
    return {
        "symbol": entry.symbol,
        "regime": entry.regime,
        "rank": rank,
        "run_id": run_id,
        "config_hash": entry.config_hash,
        "score": float(entry.score),
        "signal": entry.signal,
        "threshold": float(entry.threshold),
        "lookback": None if not entry.lookback else int(entry.lookback),
        "test_sharpe": entry.test_sharpe,
        "achieved_at": entry.achieved_at or now,
        "validation_start": None if window is None else window[0],
        "validation_end": None if window is None else window[1],
        "rules_version": entry.rules_version,
        "dsr": entry.dsr,
        "val_sharpe": entry.val_sharpe,
        "daily_sharpe": daily.sharpe if daily else math.nan,
        "daily_skew": daily.skew if daily else math.nan,
        "daily_kurtosis": daily.kurtosis if daily else math.nan,
        "daily_n": daily.n if daily else None,
    }


def apply_bests(
    session: Session,
    bests: SelectionDecision | Mapping[BestsKey, Sequence[BestEntry]],
    changed_keys: Iterable[BestsKey] | None = None,
    *,
    window: Window = None,
) -> int:
    """Store new best lists of one validation window, replacing the changed lists' rows.

    Parameters
    ----------
    bests
        A :class:`~forexgrid.core.selection.SelectionDecision` (its ``new_bests`` and, unless
        ``changed_keys`` is given, its ``changed_keys`` are used), or a mapping of key ->
        entries, best first.
    changed_keys
        The keys to write (default: the decision's changed keys, or every key of the
        mapping). A key whose list is empty loses its rows.
    window
        The lists' validation window (None: legacy lists).

    Returns
    -------
    int
        Rows written.

    Raises
    ------
    StorageError
        If an entry's ``run_id`` names no stored run (database id or run uuid), or an
        entry's score is not finite.
    """
    if isinstance(bests, SelectionDecision):
        mapping: Mapping[BestsKey, Sequence[BestEntry]] = bests.new_bests
        default_keys = list(bests.changed_keys)
    else:
        mapping = bests
        default_keys = list(mapping)
    keys = default_keys if changed_keys is None else list(dict.fromkeys(changed_keys))
    entries = [e for key in keys for e in mapping.get(key, ())]
    ids = _run_ids(session, entries)
    now = utcnow()
    rows = []
    for key in keys:
        symbol, regime = key
        session.execute(
            delete(RegimeBestModel)
            .where(
                RegimeBestModel.symbol == symbol,
                RegimeBestModel.regime == regime,
                *_where_window(window),
            )
            .execution_options(synchronize_session=False)
        )
        for rank, entry in enumerate(mapping.get(key, ()), start=1):
            rows.append(_row_values(entry, rank, ids[entry.run_id], window, now))
    if rows:
        session.execute(insert(RegimeBestModel), rows)
    logger.debug("bests: %d list(s) rewritten, %d row(s)", len(keys), len(rows))
    return len(rows)


# ------------------------------------------------------------------------ the table


def _label(config_json: Mapping[str, Any] | None, model_type: str) -> str:
    try:
        return TrainingConfig.from_dict(config_json or {}).label
    except ForexgridError:
        # A stored configuration that no longer validates (e.g. a removed model type)
        # still deserves a readable label.
        return " ".join(str(v) for v in (config_json or {"model_type": model_type}).values())


def _choose_windows(
    session: Session, symbol: str | None, window: str | date | None
) -> list[tuple[str | None, Window]]:
    """The (symbol, window) pairs to show: the newest window per symbol by default."""
    pairs = best_windows(session, symbol)
    if window in (None, "newest"):
        newest: dict[str, Window] = {}
        for sym, win in pairs:
            newest.setdefault(sym, win)
        chosen = list(newest.items())
    elif window == "all":
        chosen = pairs
    else:
        try:
            wanted = window if isinstance(window, date) else date.fromisoformat(str(window))
        except ValueError as err:
            raise StorageError(
                "window: expected 'newest', 'all' or a date like 2017-10-30, got "
                f"{quote_input(window)}"
            ) from err
        chosen = [(s, w) for s, w in pairs if w is not None and w[1] == wanted]
        if not chosen:
            ends = sorted({str(w[1]) for _, w in pairs if w is not None}) or ["none"]
            raise StorageError(
                f"no validation window ends on {wanted}; windows end on: {', '.join(ends)}"
            )
    if not chosen:
        # Nothing scored yet: one block of empty regimes (for this symbol, if given).
        chosen = [(None if symbol is None else symbol.strip().upper(), None)]
    return chosen


def best_models_table(
    session: Session,
    symbol: str | None = None,
    *,
    include_inactive: bool = False,
    window: str | date | None = "newest",
    rules_versions: Mapping[str, str] | None = None,
) -> pd.DataFrame:
    """Return the best models per regime, one row per list place, empty regimes included.

    Parameters
    ----------
    symbol
        Only this symbol; by default every symbol that has bests (regimes without any
        best get one row with ``symbol`` missing when no symbol has bests).
    include_inactive
        Also list inactive regimes (by default only active ones, in creation order; the
        pseudo-regime ``all`` comes first).
    window
        ``"newest"`` (default): each symbol's newest validation window; ``"all"``: every
        window, legacy lists included; a date: the window whose validation ends that day.
    rules_versions
        Per regime, the version of its current rules
        (:func:`forexgrid.storage.regimes_repo.current_rules_versions`), so that an empty
        regime can say whether it was scored under them.

    Returns
    -------
    DataFrame
        :data:`BEST_MODELS_COLUMNS`. ``score`` is what the list ranks by, ``dsr`` the
        grid-wide deflated Sharpe ratio against every trial of the scope (``n_trials``,
        ``effective_trials``), ``pbo`` the scope's probability of backtest overfitting,
        ``verdict`` "significant" (DSR >= 0.95) or "could be luck"; ``run_dsr`` is the run's
        own DSR against its own combinations; ``note`` explains an empty regime.
        ``has_best`` is False and the metrics NaN for an empty regime.
    """
    query = select(RegimeDefinition.name).order_by(RegimeDefinition.id)
    if not include_inactive:
        query = query.where(RegimeDefinition.active.is_(True))
    regimes = [*sorted(PSEUDO_REGIMES), *session.scalars(query)]
    records = []
    for sym, win in _choose_windows(session, symbol, window):
        found = _entries(session, sym, win) if sym is not None else {}
        for regime in regimes:
            rows = found.get(regime, [])
            if not rows:
                records.append(_empty_row(session, sym, regime, win, rules_versions))
            for r in rows:
                records.append(_entry_row(session, r, win, rules_versions))
    return _typed(pd.DataFrame.from_records(records, columns=list(BEST_MODELS_COLUMNS)))


def _entries(session: Session, symbol: str, window: Window) -> dict[str, list[Any]]:
    best = (
        select(
            RegimeBestModel,
            TrainingRun.model_type,
            TrainingRun.config_json,
            TrainingRun.timeframe,
            TrainingRun.days_history,
            TrainingRun.horizon,
            TrainingRun.encoder,
            ChosenResult.val_sharpe.label("chosen_val_sharpe"),
            ChosenResult.test_max_drawdown,
            ChosenResult.test_win_rate,
            ChosenResult.test_trades,
            ChosenResult.dsr.label("run_dsr"),
            ChosenResult.test_psr,
        )
        .join(TrainingRun, TrainingRun.id == RegimeBestModel.run_id)
        .outerjoin(
            ChosenResult,
            and_(
                ChosenResult.run_id == RegimeBestModel.run_id,
                ChosenResult.regime == RegimeBestModel.regime,
                # The chosen row of the rules the entry was scored under (legacy: any).
                (ChosenResult.rules_version == RegimeBestModel.rules_version)
                | RegimeBestModel.rules_version.is_(None),
            ),
        )
        .where(RegimeBestModel.symbol == symbol, *_where_window(window))
        .order_by(RegimeBestModel.regime, RegimeBestModel.rank)
    )
    found: dict[str, list[Any]] = {}
    for row in session.execute(best):
        found.setdefault(row.RegimeBestModel.regime, []).append(row)
    return found


def _entry_row(
    session: Session, r: Any, window: Window, rules_versions: Mapping[str, str] | None
) -> dict[str, Any]:
    entry = r.RegimeBestModel
    current = (rules_versions or {}).get(entry.regime)
    if window is None:
        note = "legacy: scored before trials were recorded"
    elif current is not None and entry.rules_version not in (None, current):
        note = f"scored under earlier rules: forexgrid regimes rescore {entry.regime}"
    else:
        note = ""
    stats = {}
    if window is not None and entry.rules_version is not None:
        key = ScopeKey(entry.symbol, entry.regime, entry.rules_version, *window)
        stats = scope_statistics(session, key)
    val_sharpe = entry.val_sharpe if math.isfinite(entry.val_sharpe) else r.chosen_val_sharpe
    return {
        "symbol": entry.symbol,
        "regime": entry.regime,
        "rank": entry.rank,
        "has_best": True,
        "run_id": entry.run_id,
        "model_type": r.model_type,
        "timeframe": r.timeframe,
        "days_history": r.days_history,
        "horizon": r.horizon,
        "encoder": r.encoder,
        "config_label": _label(r.config_json, r.model_type),
        "signal": entry.signal,
        "threshold": entry.threshold,
        "lookback": entry.lookback,
        "score": entry.score,
        "val_sharpe": val_sharpe,
        "test_sharpe": entry.test_sharpe,
        "test_max_drawdown": r.test_max_drawdown,
        "test_win_rate": r.test_win_rate,
        "test_trades": r.test_trades,
        "dsr": entry.dsr,
        "pbo": stats.get("pbo", math.nan),
        "verdict": verdict(entry.dsr),
        "test_psr": r.test_psr,
        "run_dsr": r.run_dsr,
        "n_trials": stats.get("n_trials"),
        "effective_trials": stats.get("effective_trials", math.nan),
        "validation_start": None if window is None else window[0],
        "validation_end": None if window is None else window[1],
        "rules_version": entry.rules_version,
        "achieved_at": entry.achieved_at,
        "config_hash": entry.config_hash,
        "note": note,
    }


def _empty_row(
    session: Session,
    symbol: str | None,
    regime: str,
    window: Window,
    rules_versions: Mapping[str, str] | None,
) -> dict[str, Any]:
    note = ""
    if symbol is not None and window is not None:
        note = _why_empty(session, symbol, regime, window, rules_versions)
    return {
        "symbol": symbol,
        "regime": regime,
        "has_best": False,
        "verdict": "",
        "validation_start": None if window is None else window[0],
        "validation_end": None if window is None else window[1],
        "note": note,
    }


def _why_empty(
    session: Session,
    symbol: str,
    regime: str,
    window: tuple[date, date],
    rules_versions: Mapping[str, str] | None,
) -> str:
    scopes = session.execute(
        select(TrialScope.rules_version, TrialScope.n_runs).where(
            TrialScope.symbol == symbol,
            TrialScope.regime == regime,
            TrialScope.validation_start == window[0],
            TrialScope.validation_end == window[1],
        )
    ).all()
    runs = {version: n for version, n in scopes}
    if not runs:
        return "not scored in this window yet"
    if rules_versions is None:  # the current rules are not known here
        return (
            f"none of the {sum(runs.values())} run(s) scored in this window qualified "
            "(min_trades, min_score, min_dsr)"
        )
    current = rules_versions.get(regime)
    if current in runs:
        return (
            f"none of the {runs[current]} run(s) scored under the current rules qualified "
            "(min_trades, min_score, min_dsr)"
        )
    return (
        f"not scored under the current rules: forexgrid regimes rescore {regime}, or train a "
        "new queue"
    )


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in ("rank", "run_id", "days_history", "horizon", "lookback", "test_trades"):
        frame[column] = frame[column].astype("Int64")
    frame["n_trials"] = frame["n_trials"].astype("Int64")
    for column in (
        "threshold",
        "score",
        "val_sharpe",
        "test_sharpe",
        "test_max_drawdown",
        "test_win_rate",
        "dsr",
        "pbo",
        "test_psr",
        "run_dsr",
        "effective_trials",
    ):
        frame[column] = frame[column].astype("float64")
    frame["has_best"] = frame["has_best"].astype(bool)
    for column in ("note", "verdict"):
        frame[column] = frame[column].astype(object)
    frame["achieved_at"] = pd.to_datetime(frame["achieved_at"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    return frame
