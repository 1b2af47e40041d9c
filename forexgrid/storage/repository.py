"""Every storage query, in one place: import from here (or from ``forexgrid.storage``).

The queries live in modules by subject; each takes an open session first (see
:func:`forexgrid.storage.database.session_scope`) and returns frozen dataclasses
(:class:`QueueInfo`, :class:`RunInfo`, :class:`RegimeInfo`), DataFrames or plain values:
rows never leave the storage package.

- :mod:`~forexgrid.storage.queues`: create, read, claim, heartbeat, recount.
- :mod:`~forexgrid.storage.queue_control`: pause/cancel requests, status, finish, crashes.
- :mod:`~forexgrid.storage.runs`: start, complete with results, fail, reset, read.
- :mod:`~forexgrid.storage.bests`: per-(symbol, regime) best lists and their table.
- :mod:`~forexgrid.storage.trials`: runs' trials and the statistics of each scope.
- :mod:`~forexgrid.storage.regimes_repo`: regime definitions.
- :mod:`~forexgrid.storage.history`: the training history, the runs a queue trains now.
- :mod:`~forexgrid.storage.snapshots`: checkpoint snapshots and their restore.
"""

from __future__ import annotations

from forexgrid.storage.bests import (
    BEST_MODELS_COLUMNS,
    apply_bests,
    best_models_table,
    best_windows,
    load_bests,
    lock_best_lists,
)
from forexgrid.storage.history import (
    HISTORY_COLUMNS,
    HISTORY_STATUSES,
    queue_model_outcomes,
    training_history,
)
from forexgrid.storage.queue_control import (
    finish_queue,
    mark_crashed_queues,
    request_action,
    set_queue_status,
    take_requested_action,
)
from forexgrid.storage.queues import (
    CLAIMABLE_STATUSES,
    FINAL_STATUSES,
    NOTHING_TO_TRAIN,
    claim_queue,
    create_queue,
    default_owner,
    fence,
    get_all_training_queues,
    get_queue,
    heartbeat,
    settings_of_queue,
    update_counts,
)
from forexgrid.storage.records import QueueInfo, RegimeInfo, RunInfo
from forexgrid.storage.regimes_repo import (
    active_regimes,
    add_regime,
    current_rules_versions,
    delete_regime,
    edit_regime,
    get_regime,
    list_regimes,
    seed_default_regimes,
    toggle_regime,
)
from forexgrid.storage.runs import (
    CHOSEN_COLUMNS,
    RESULT_COLUMNS,
    add_rescored_results,
    complete_run,
    completed_hashes,
    count_pending,
    fail_run,
    get_run,
    kept_model_files,
    live_run_uuids,
    mark_models_deleted,
    pending_runs,
    queue_run_uuids,
    queue_runs,
    referenced_model_files,
    reset_running_runs,
    run_chosen,
    run_results,
    running_runs,
    start_run,
)
from forexgrid.storage.snapshots import (
    SNAPSHOT_FORMAT,
    SNAPSHOT_VERSION,
    queue_snapshot,
    restore_snapshot,
)
from forexgrid.storage.trials import (
    SCOPE_COLUMNS,
    ScopeKey,
    load_scope_stats,
    record_not_scored,
    record_trials,
    run_trials,
    scope_returns,
    scope_statistics,
    scope_table,
    scopes_of_runs,
    scored_windows,
    set_pbo,
)

__all__ = [
    "BEST_MODELS_COLUMNS",
    "CHOSEN_COLUMNS",
    "CLAIMABLE_STATUSES",
    "FINAL_STATUSES",
    "HISTORY_COLUMNS",
    "HISTORY_STATUSES",
    "NOTHING_TO_TRAIN",
    "RESULT_COLUMNS",
    "SCOPE_COLUMNS",
    "SNAPSHOT_FORMAT",
    "SNAPSHOT_VERSION",
    "QueueInfo",
    "RegimeInfo",
    "RunInfo",
    "ScopeKey",
    "active_regimes",
    "add_rescored_results",
    "add_regime",
    "apply_bests",
    "best_models_table",
    "best_windows",
    "claim_queue",
    "complete_run",
    "completed_hashes",
    "create_queue",
    "current_rules_versions",
    "default_owner",
    "delete_regime",
    "edit_regime",
    "fail_run",
    "finish_queue",
    "get_all_training_queues",
    "get_queue",
    "get_regime",
    "get_run",
    "fence",
    "heartbeat",
    "settings_of_queue",
    "list_regimes",
    "load_bests",
    "lock_best_lists",
    "load_scope_stats",
    "mark_crashed_queues",
    "mark_models_deleted",
    "count_pending",
    "pending_runs",
    "queue_runs",
    "queue_snapshot",
    "record_not_scored",
    "record_trials",
    "kept_model_files",
    "live_run_uuids",
    "queue_run_uuids",
    "referenced_model_files",
    "running_runs",
    "request_action",
    "reset_running_runs",
    "restore_snapshot",
    "run_chosen",
    "run_results",
    "run_trials",
    "scope_returns",
    "scope_statistics",
    "scope_table",
    "scopes_of_runs",
    "scored_windows",
    "seed_default_regimes",
    "set_pbo",
    "set_queue_status",
    "start_run",
    "take_requested_action",
    "toggle_regime",
    "queue_model_outcomes",
    "training_history",
    "update_counts",
]
