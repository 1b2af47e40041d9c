"""Grid-wide scoring that reads many runs: the probability of backtest overfitting, the
grid-wide DSR of one run, and the summary of the scopes a queue added to.

The per-run part of the grid-wide statistics (a run's trials added to its scopes, the DSR
of the lists) happens in the runner's one transaction per configuration and costs the
same whatever the number of trials stored. The probability of backtest overfitting (PBO)
is brought up to date here: by the runner when a queue stops, for the scopes the queue added
to, and on demand (``forexgrid trials --recompute``); each scope's stored CSCV state absorbs
the trials added since (:mod:`forexgrid.pbo_update`).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pandas as pd

from forexgrid import storage
from forexgrid.core.pbo import PBOResult
from forexgrid.core.selection import (
    BestEntry,
    DailyMoments,
    deflated_score,
    rescore_entries,
    rule_settings,
    score_candidates,
    select,
    verdict,
)
from forexgrid.core.trials import trading_days
from forexgrid.exceptions import DataError, ForexgridError
from forexgrid.pbo_update import scope_pbo
from forexgrid.storage.artifacts import ModelFileManager

if TYPE_CHECKING:
    from forexgrid.config import Settings

__all__ = [
    "GRID_SCORE_COLUMNS",
    "MODEL_DELETED",
    "RescoreReport",
    "grid_scores",
    "queue_scopes",
    "rescore_regimes",
    "update_pbo",
]

#: Columns of :func:`grid_scores`.
GRID_SCORE_COLUMNS = (
    "regime",
    "rules_version",
    "validation_start",
    "validation_end",
    "n_trials",
    "effective_trials",
    "expected_max_sharpe",
    "dsr",
    "verdict",
    "pbo",
)

logger = logging.getLogger(__name__)


def update_pbo(
    settings: Settings,
    scopes: Iterable[storage.trials.ScopeKey] | None = None,
    *,
    symbol: str | None = None,
) -> dict[storage.trials.ScopeKey, PBOResult]:
    """Bring the PBO of trial scopes up to date and store it, one transaction per scope.

    Each scope's stored PBO state absorbs only the runs added since it was stored
    (:mod:`forexgrid.pbo_update`); a missing, stale or damaged state is recomputed from
    scratch over every trial. The result equals a from-scratch computation either way.
    With the local backend the splits are scored on up to ``execution.workers`` threads (the
    pool's cores, idle when a queue stops); the result is the same on any number.

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
            table = storage.trials.scope_table(session, symbol)
        scopes = [
            storage.trials.ScopeKey(
                r.symbol, r.regime, r.rules_version, r.validation_start, r.validation_end
            )
            for r in table.itertuples()
        ]
    # The local workers' cores are free when a queue stops: the PBO's splits use them (the
    # result does not depend on it). One thread for other backends, whose workers are not
    # this machine's cores.
    execution = settings.execution
    threads = min(execution.workers, os.cpu_count() or 1) if execution.backend == "local" else 1
    out = {}
    for key in scopes:
        with storage.session_scope(settings) as session:
            # One transaction with the scope row locked: load the state, add the runs it
            # does not cover (or compute from scratch), store the state and the PBO.
            result = scope_pbo(session, key, settings.selection.pbo_blocks, threads)
        if result is None:
            continue  # no trials recorded in this scope
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


def grid_scores(session, run_id: int) -> pd.DataFrame:
    """The grid-wide scores of one run's chosen combinations, against every trial now stored.

    Parameters
    ----------
    session
        An open :func:`forexgrid.storage.session_scope` transaction.
    run_id
        The run.

    Returns
    -------
    DataFrame
        :data:`GRID_SCORE_COLUMNS`, one row per regime the run was scored in: the scope's
        trials and effective number of independent trials, the Sharpe ratio the best of
        them reaches by luck, the chosen combination's grid-wide DSR and verdict, and the
        scope's PBO. Empty for a run without trials (not completed, or completed before
        trials were recorded).

    Raises
    ------
    StorageError
        For an unknown run.
    """
    chosen = storage.runs.run_chosen(session, run_id)
    combination = dict(zip(chosen["regime"], chosen["combination"], strict=True))
    records = []
    for key, daily, _status in storage.trials.run_trials(session, run_id):
        if daily is None:
            continue
        (stats,) = storage.trials.load_scope_stats(session, [key], daily.shape[0]).values()
        k = combination.get(key.regime)
        moments = None if k is None or pd.isna(k) else DailyMoments.of(daily[:, int(k)])
        dsr, _ = deflated_score(moments, stats)
        summary = storage.trials.scope_statistics(session, key)
        records.append(
            {
                "regime": key.regime,
                "rules_version": key.rules_version,
                "validation_start": key.validation_start,
                "validation_end": key.validation_end,
                "n_trials": stats.n_trials,
                "effective_trials": stats.effective_trials,
                "expected_max_sharpe": stats.expected_max_sharpe,
                "dsr": dsr,
                "verdict": verdict(dsr) if moments is not None else "",
                "pbo": summary.get("pbo", math.nan),
            }
        )
    return pd.DataFrame.from_records(records, columns=list(GRID_SCORE_COLUMNS))


def queue_scopes(session, queue_id: int) -> pd.DataFrame:
    """The statistics of the scopes a queue's runs added trials to
    (:func:`storage.trials.scope_table` rows), for the run summary."""
    ids = [run.id for run in storage.runs.queue_runs(session, queue_id)]
    keys = set(storage.trials.scopes_of_runs(session, ids))
    table = storage.trials.scope_table(session)
    if table.empty:
        return table
    mine = [
        storage.trials.ScopeKey(
            r.symbol, r.regime, r.rules_version, r.validation_start, r.validation_end
        )
        in keys
        for r in table.itertuples()
    ]
    return table[mine].reset_index(drop=True)


# ------------------------------------------------------------------------- rescoring


@dataclass(frozen=True)
class RescoreReport:
    """What :func:`rescore_regimes` did.

    Attributes
    ----------
    regimes : tuple of str
        The regimes rescored (active ones only).
    rescored : tuple of int
        Kept runs whose phase 2 was recomputed from their model file under the current rules.
    already_scored : tuple of int
        Kept runs that had been scored under these rules already (nothing to do).
    not_scored : Mapping[int, str]
        Runs that could not be scored, and why (``model deleted`` for runs whose model file
        was deleted before the rules changed; ``file missing``, ``data changed`` or the error
        otherwise). They are recorded as not scored under these rules.
    deleted : tuple of int
        Runs whose model left every best list with the new lists, so their file was deleted
        (``model_management.delete_non_best_models``).
    """

    regimes: tuple[str, ...]
    rescored: tuple[int, ...] = ()
    already_scored: tuple[int, ...] = ()
    not_scored: Mapping[int, str] = field(default_factory=dict)
    deleted: tuple[int, ...] = ()

    def summary(self) -> str:
        """One line for people."""
        names = ", ".join(repr(r) for r in self.regimes) or "no active regime"
        if not (self.rescored or self.not_scored or self.deleted):
            return (
                f"Nothing to rescore: every run is already scored (or marked not scored) under "
                f"the current rules of {names}"
            )
        deleted = sum(reason == MODEL_DELETED for reason in self.not_scored.values())
        failed = len(self.not_scored) - deleted
        parts = [
            f"Rescored {len(self.rescored)} kept model(s) under the current rules of {names} "
            f"from their files (no retraining)"
        ]
        if self.already_scored:
            parts.append(
                f"nothing to do for {len(self.already_scored)} run(s) already scored (or "
                "marked not scored) under them"
            )
        if deleted:
            parts.append(
                f"{deleted} model(s) deleted earlier are marked not scored under these rules"
            )
        if failed:
            parts.append(f"{failed} could not be scored (see the log)")
        if self.deleted:
            parts.append(f"{len(self.deleted)} model file(s) deleted: no longer best anywhere")
        return "; ".join(parts)


MODEL_DELETED = "model deleted"


def rescore_regimes(settings: Settings, names: Iterable[str] | None = None) -> RescoreReport:
    """Score the kept models under the current rules of some regimes and rebuild their lists.

    Called after a regime is added or its rules are edited (``forexgrid regimes add/edit``
    do it; ``forexgrid regimes rescore`` on demand). Every kept model is loaded from its file
    (hash verified), phase 2 is recomputed on the bars it was trained on with the settings
    of its queue and the regimes' current rules, and its trials are added to the new rules'
    scopes. Each regime's list of each validation window is then rebuilt from the rescored
    models, in run order, under the selection rule. Runs whose model file was already
    deleted cannot be rescored: they are recorded as not scored under the new rules, and the
    DSR's trial count covers the trials scored under them.

    Parameters
    ----------
    settings
        The workspace's settings.
    names
        The regimes (default: every active one). Inactive or unknown names are an error.

    Returns
    -------
    RescoreReport

    Raises
    ------
    StorageError
        For an unknown regime name.
    """
    from forexgrid.core.regimes import rules_version

    with storage.session_scope(settings) as session:
        active = {r.name: r for r in storage.regimes_repo.active_regimes(session)}
        wanted = list(active) if names is None else list(dict.fromkeys(names))
        for name in wanted:
            if name not in active:
                storage.regimes_repo.get_regime(session, name)  # unknown: a StorageError naming it
        regimes = [active[n] for n in wanted if n in active]
        windows = storage.trials.scored_windows(session)
        runs = [storage.runs.get_run(session, run_id) for run_id in sorted(windows)]
    versions = {r.name: rules_version(r, **dict(settings.regimes)) for r in regimes}
    report = RescoreReport(regimes=tuple(versions))
    if not regimes:
        return report
    done, skipped, failed = [], [], {}
    for run in runs:
        outcome = _rescore_run(settings, run, windows[run.id], regimes, versions)
        if outcome is None:
            done.append(run.id)
        elif outcome == "":
            skipped.append(run.id)
        else:
            failed[run.id] = outcome
    kept: dict[tuple, list] = {}
    for run in runs:
        if run.is_model_kept and run.id not in failed:
            kept.setdefault(windows[run.id], []).append(run)
    deleted = _rebuild_lists(settings, versions, kept)
    update_pbo(
        settings,
        [
            storage.trials.ScopeKey(symbol, regime, version, *window)
            for window, window_runs in kept.items()
            for symbol in sorted({run.symbol for run in window_runs})
            for regime, version in versions.items()
        ],
    )
    return RescoreReport(
        regimes=report.regimes,
        rescored=tuple(done),
        already_scored=tuple(skipped),
        not_scored=failed,
        deleted=tuple(deleted),
    )


def _stored_bars(settings: Settings, run: storage.records.RunInfo) -> pd.DataFrame:
    """The bars a run was trained on: the data store's, cut at its fingerprint's last bar."""
    from forexgrid.data.store import DataStore
    from forexgrid.grid import data_fingerprint

    bars = DataStore(settings.data_path).load_bars(run.symbol, run.timeframe)
    fingerprint = dict(run.data_fingerprint or {})
    if "last" in fingerprint:
        bars = bars.loc[: pd.Timestamp(fingerprint["last"])]
    if data_fingerprint(bars) != fingerprint:
        raise DataError(
            f"run {run.id}: the stored {run.symbol} {run.timeframe} data no longer holds the "
            f"bars it was trained on ({fingerprint})"
        )
    return bars


def _rescore_run(
    settings: Settings,
    run: storage.records.RunInfo,
    window: tuple,
    regimes: list,
    versions: Mapping[str, str],
) -> str | None:
    """Score one run in the regimes it lacks under their current rules.

    Returns None when it was scored, "" when there was nothing to do, else why not.
    """
    keys = {
        r.name: storage.trials.ScopeKey(run.symbol, r.name, versions[r.name], *window)
        for r in regimes
    }
    with storage.session_scope(settings) as session:
        stored = storage.trials.run_trials(session, run.id)
        have = {(key.regime, key.rules_version) for key, _, _ in stored}
        todo = [r for r in regimes if (r.name, versions[r.name]) not in have]
        queue = storage.queues.get_queue(session, run.queue_id)
    if not todo:
        return ""
    try:
        if not (run.is_model_kept and run.model_file_path and run.model_file_sha256):
            raise _NotScored(MODEL_DELETED)
        from forexgrid.pipeline import evaluate_model

        model = ModelFileManager.from_settings(settings).load(
            run.model_file_path, run.model_file_sha256, run.model_file_size_bytes
        )
        evaluation = evaluate_model(
            model,
            run.config,
            _stored_bars(settings, run),
            # The queue's own settings, but the current regime windows (the rules' versions
            # are the current ones).
            storage.queues.settings_of_queue(
                settings, queue.settings, except_sections=("regimes",)
            )[0],
            todo,
        )
        if evaluation.trials.validation_window != tuple(window):
            raise _NotScored("data changed")
    except (_NotScored, ForexgridError) as err:
        reason = str(err) if isinstance(err, _NotScored) else f"{type(err).__name__}: {err}"
        # A deleted model is the usual case (only the bests keep their files); the rest is
        # worth a warning.
        level = logging.INFO if reason == MODEL_DELETED else logging.WARNING
        logger.log(level, "run %s: not scored under the new rules: %s", run.id, reason)
        days = _days_of(stored) or len(trading_days(*window))
        with storage.session_scope(settings) as session:
            for regime in todo:
                storage.trials.record_not_scored(
                    session, run.id, keys[regime.name], days, run.n_combinations or 0, reason
                )
        return reason
    trials = evaluation.trials
    with storage.session_scope(settings) as session:
        rescored = {keys[r.name]: trials.of(r.name) for r in todo}
        before = storage.trials.load_scope_stats(session, rescored, len(trials.days), lock=True)
        after = {key: before[key].add(daily) for key, daily in rescored.items()}
        storage.trials.record_trials(session, run.id, rescored, after)
        storage.runs.add_rescored_results(
            session,
            run.id,
            results=evaluation.results,
            chosen=evaluation.chosen,
            rules_versions={r.name: versions[r.name] for r in todo},
        )
    return None


class _NotScored(Exception):
    """Why a run cannot be rescored (its model file is gone, its data changed)."""


def _days_of(stored: list) -> int:
    """The days of a run's stored trials (0 when it has none)."""
    return next((daily.shape[0] for _, daily, _ in stored if daily is not None), 0)


def _rebuild_lists(
    settings: Settings, versions: Mapping[str, str], kept: Mapping[tuple, list]
) -> list[int]:
    """Rebuild each rescored regime's list of each window from the kept runs scored under
    its current rules, in run order; delete the files of runs left in no list.

    Returns the runs whose file was deleted.
    """
    delete_losers = settings.model_management.delete_non_best_models
    dropped: list[int] = []
    for window, runs in kept.items():
        with storage.session_scope(settings) as session:
            for symbol in sorted({run.symbol for run in runs}):
                storage.bests.lock_best_lists(session, symbol)
            before = storage.bests.load_bests(session, window=window)
            after = {key: list(entries) for key, entries in before.items()}
            for symbol in sorted({run.symbol for run in runs}):
                mine = [run for run in runs if run.symbol == symbol]
                for regime, version in versions.items():
                    key = storage.trials.ScopeKey(symbol, regime, version, *window)
                    after[(symbol, regime)] = _rebuilt_list(session, settings, key, mine)
            storage.bests.apply_bests(session, after, sorted({*before, *after}), window=window)
            listed = {e.run_id for entries in after.values() for e in entries}
            gone = sorted({e.run_id for entries in before.values() for e in entries} - listed)
            gone_runs = [storage.runs.get_run(session, run_id) for run_id in gone]
            if delete_losers:
                storage.runs.mark_models_deleted(session, gone)
        if delete_losers and gone_runs:
            files = ModelFileManager.from_settings(settings)
            for run in gone_runs:
                if run.model_file_path:
                    files.delete(run.model_file_path)
            dropped.extend(gone)
    return dropped


def _rebuilt_list(
    session, settings: Settings, key: storage.trials.ScopeKey, runs: list
) -> list[BestEntry]:
    """A regime's list rebuilt from scratch: each run's candidate in run order, scored
    against the scope's final statistics."""
    sel = settings.selection
    entries: list[BestEntry] = []
    for run in sorted(runs, key=lambda r: r.id):
        daily = next(
            (
                d
                for k, d, _ in storage.trials.run_trials(session, run.id)
                if k == key and d is not None
            ),
            None,
        )
        if daily is None:
            continue
        (stats,) = storage.trials.load_scope_stats(session, [key], daily.shape[0]).values()
        chosen = storage.runs.run_chosen(session, run.id)
        chosen = chosen[chosen["regime"] == key.regime]
        candidates = score_candidates(chosen, {key.regime: daily}, {key.regime: stats}, sel.score)
        decision = select(
            run.id,
            run.symbol,
            candidates,
            {(run.symbol, key.regime): rescore_entries(entries, stats, sel.score)},
            **rule_settings(settings),
            config_hash=run.config_hash,
            validation_window=key.window,
            rules_versions={key.regime: key.rules_version},
        )
        entries = list(decision.new_bests.get((run.symbol, key.regime), ()))
    return entries
