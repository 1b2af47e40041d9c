"""Best-model queries: load the per-(symbol, regime) lists, write selection's changes, and
the best-models table the Regime Analysis panel and charts show.

The lists are decided by the pure :func:`forexgrid.core.selection.select`; this module only
stores them. Rank 1 is the best of a list.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from sqlalchemy import and_, delete, insert, select
from sqlalchemy.orm import Session

from forexgrid.core.selection import BestEntry, BestsKey, SelectionDecision
from forexgrid.exceptions import ForexgridError, StorageError
from forexgrid.grid import TrainingConfig
from forexgrid.storage._common import chunks
from forexgrid.storage.tables import (
    ChosenResult,
    RegimeBestModel,
    RegimeDefinition,
    TrainingRun,
    utcnow,
)

__all__ = ["BEST_MODELS_COLUMNS", "apply_bests", "best_models_table", "load_bests"]

logger = logging.getLogger(__name__)

#: Columns of :func:`best_models_table`.
BEST_MODELS_COLUMNS: tuple[str, ...] = (
    "symbol",
    "regime",
    "rank",
    "has_best",
    "run_id",
    "model_type",
    "config_label",
    "signal",
    "threshold",
    "lookback",
    "val_sharpe",
    "test_sharpe",
    "test_max_drawdown",
    "test_win_rate",
    "test_trades",
    "dsr",
    "test_psr",
    "achieved_at",
    "config_hash",
)


def load_bests(session: Session) -> dict[BestsKey, list[BestEntry]]:
    """Return every best list: ``{(symbol, regime): [BestEntry, ...]}``, best first.

    ``BestEntry.run_id`` is the run's database id.
    """
    rows = session.execute(
        select(RegimeBestModel).order_by(
            RegimeBestModel.symbol, RegimeBestModel.regime, RegimeBestModel.rank
        )
    ).scalars()
    out: dict[BestsKey, list[BestEntry]] = {}
    for row in rows:
        out.setdefault((row.symbol, row.regime), []).append(
            BestEntry(
                run_id=row.run_id,
                config_hash=row.config_hash,
                regime=row.regime,
                symbol=row.symbol,
                score=row.score,
                signal=row.signal,
                threshold=row.threshold,
                lookback=0 if row.lookback is None else row.lookback,
                test_sharpe=row.test_sharpe,
                achieved_at=row.achieved_at,
            )
        )
    return out


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


def apply_bests(
    session: Session,
    bests: SelectionDecision | Mapping[BestsKey, Sequence[BestEntry]],
    changed_keys: Iterable[BestsKey] | None = None,
) -> int:
    """Store new best lists, replacing the rows of the changed ``(symbol, regime)`` keys.

    Parameters
    ----------
    bests
        A :class:`~forexgrid.core.selection.SelectionDecision` (its ``new_bests`` and
        ``changed_keys`` are used), or a mapping of key -> entries, best first.
    changed_keys
        With a mapping: the keys to write (default: every key of the mapping). A key whose
        list is empty loses its rows.

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
        keys = list(bests.changed_keys)
    else:
        mapping = bests
        keys = list(mapping) if changed_keys is None else list(changed_keys)
    entries = [e for key in keys for e in mapping.get(key, ())]
    ids = _run_ids(session, entries)
    now = utcnow()
    rows = []
    for key in keys:
        symbol, regime = key
        session.execute(
            delete(RegimeBestModel)
            .where(RegimeBestModel.symbol == symbol, RegimeBestModel.regime == regime)
            .execution_options(synchronize_session=False)
        )
        for rank, entry in enumerate(mapping.get(key, ()), start=1):
            if not math.isfinite(entry.score):
                raise StorageError(
                    f"best entry {symbol} {regime} run {entry.run_id!r}: score must be finite, "
                    f"got {entry.score!r}"
                )
            rows.append(
                {
                    "symbol": symbol,
                    "regime": regime,
                    "rank": rank,
                    "run_id": ids[entry.run_id],
                    "config_hash": entry.config_hash,
                    "score": float(entry.score),
                    "signal": entry.signal,
                    "threshold": float(entry.threshold),
                    "lookback": int(entry.lookback),
                    "test_sharpe": entry.test_sharpe,
                    "achieved_at": entry.achieved_at or now,
                }
            )
    if rows:
        session.execute(insert(RegimeBestModel), rows)
    logger.debug("bests: %d list(s) rewritten, %d row(s)", len(keys), len(rows))
    return len(rows)


def _label(config_json: Mapping[str, Any] | None, model_type: str) -> str:
    try:
        return TrainingConfig.from_dict(config_json or {}).label
    except ForexgridError:
        # A stored configuration that no longer validates (e.g. a removed model type)
        # still deserves a readable label.
        return " ".join(str(v) for v in (config_json or {"model_type": model_type}).values())


def best_models_table(
    session: Session, symbol: str | None = None, *, include_inactive: bool = False
) -> pd.DataFrame:
    """Return the best models per regime, one row per list place, empty regimes included.

    Parameters
    ----------
    symbol
        Only this symbol; by default every symbol that has bests (regimes without any
        best get one row with ``symbol`` missing when no symbol has bests).
    include_inactive
        Also list inactive regimes (by default only active ones, in creation order).

    Returns
    -------
    DataFrame
        :data:`BEST_MODELS_COLUMNS`: ``has_best`` False and NaN metrics for an empty
        regime; ``val_sharpe`` is the list's score; the test figures and ``dsr`` come from
        the run's chosen row for that regime.
    """
    query = select(RegimeDefinition.name).order_by(RegimeDefinition.id)
    if not include_inactive:
        query = query.where(RegimeDefinition.active.is_(True))
    regimes = list(session.scalars(query))
    best = (
        select(
            RegimeBestModel.symbol,
            RegimeBestModel.regime,
            RegimeBestModel.rank,
            RegimeBestModel.run_id,
            TrainingRun.model_type,
            TrainingRun.config_json,
            RegimeBestModel.signal,
            RegimeBestModel.threshold,
            RegimeBestModel.lookback,
            RegimeBestModel.score,
            RegimeBestModel.test_sharpe,
            ChosenResult.test_max_drawdown,
            ChosenResult.test_win_rate,
            ChosenResult.test_trades,
            ChosenResult.dsr,
            ChosenResult.test_psr,
            RegimeBestModel.achieved_at,
            RegimeBestModel.config_hash,
        )
        .join(TrainingRun, TrainingRun.id == RegimeBestModel.run_id)
        .outerjoin(
            ChosenResult,
            and_(
                ChosenResult.run_id == RegimeBestModel.run_id,
                ChosenResult.regime == RegimeBestModel.regime,
            ),
        )
        .order_by(RegimeBestModel.symbol, RegimeBestModel.rank)
    )
    if symbol is not None:
        best = best.where(RegimeBestModel.symbol == symbol.strip().upper())
    found: dict[tuple[str, str], list[Any]] = {}
    for row in session.execute(best):
        found.setdefault((row.symbol, row.regime), []).append(row)
    if symbol is not None:
        symbols: list[str | None] = [symbol.strip().upper()]
    else:
        symbols = sorted({s for s, _ in found}) or [None]
    records = []
    for sym in symbols:
        for regime in regimes:
            rows = found.get((sym, regime), []) if sym is not None else []
            if not rows:
                records.append({"symbol": sym, "regime": regime, "has_best": False})
                continue
            for r in rows:
                records.append(
                    {
                        "symbol": sym,
                        "regime": regime,
                        "rank": r.rank,
                        "has_best": True,
                        "run_id": r.run_id,
                        "model_type": r.model_type,
                        "config_label": _label(r.config_json, r.model_type),
                        "signal": r.signal,
                        "threshold": r.threshold,
                        "lookback": r.lookback,
                        "val_sharpe": r.score,
                        "test_sharpe": r.test_sharpe,
                        "test_max_drawdown": r.test_max_drawdown,
                        "test_win_rate": r.test_win_rate,
                        "test_trades": r.test_trades,
                        "dsr": r.dsr,
                        "test_psr": r.test_psr,
                        "achieved_at": r.achieved_at,
                        "config_hash": r.config_hash,
                    }
                )
    frame = pd.DataFrame.from_records(records, columns=list(BEST_MODELS_COLUMNS))
    for column in ("rank", "run_id", "lookback", "test_trades"):
        frame[column] = frame[column].astype("Int64")
    for column in (
        "threshold",
        "val_sharpe",
        "test_sharpe",
        "test_max_drawdown",
        "test_win_rate",
        "dsr",
        "test_psr",
    ):
        frame[column] = frame[column].astype("float64")
    frame["has_best"] = frame["has_best"].astype(bool)
    frame["achieved_at"] = pd.to_datetime(frame["achieved_at"], utc=True).astype(
        "datetime64[us, UTC]"
    )
    return frame
