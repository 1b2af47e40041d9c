"""The queue runner: train a queue's configurations and keep only the best models.

:func:`run_queue` claims a queue (an atomic status transition, so two runners never share
one), dispatches its pending configurations to an executor backend, and applies each
result in queue-index order: select against the current bests, write the model file if it
is kept, record the run and the new bests in one transaction, then delete the files of
models that dropped out of every best list. Because results are applied in order, a
parallel run keeps and deletes exactly what a serial run would.

Backends (``execution.backend``): ``local`` runs in this process with one worker and in a
process pool with more; ``dask`` uses a ``distributed.Client`` on
``execution.scheduler_address``. Workers compute and return a RunResult (with the fitted
model); only this coordinating process writes files and the database.

Pause and cancel are requests stored on the queue row (from any process); they take effect
once the configurations in flight have finished. A heartbeat thread keeps the queue's
``heartbeat_at`` fresh so that crash detection (:mod:`forexgrid.recovery`) can tell a
running queue from a dead one.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import secrets
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from forexgrid import scoring, storage
from forexgrid._faults import fault_point
from forexgrid.core import regimes, selection
from forexgrid.data.sample import SAMPLES
from forexgrid.data.store import DataStore
from forexgrid.exceptions import (
    ConfigError,
    ForexgridError,
    LostOwnershipError,
    TransientStorageError,
)
from forexgrid.executors import InlineExecutor as _InlineExecutor
from forexgrid.executors import evaluate as _evaluate
from forexgrid.executors import executor as _executor
from forexgrid.grid import GridSpec, data_fingerprint
from forexgrid.journal import JournalWriter, journal_path
from forexgrid.pipeline import RunResult
from forexgrid.recovery import detect_crashed_queues, reconcile_model_files
from forexgrid.storage import checkpoints
from forexgrid.storage.artifacts import ModelFileManager, StagedModel

if TYPE_CHECKING:
    import pandas as pd

    from forexgrid.config import Settings

__all__ = ["Progress", "create_queue", "run_queue", "sample_message", "settings_for_queue"]

logger = logging.getLogger(__name__)

#: After an automatic checkpoint that took d seconds, the next one waits at least this many
#: times d (and ``queue.auto_checkpoint_interval`` configurations): checkpoints then take at
#: most about a tenth of a run, however large the queue's snapshot.
CHECKPOINT_COST_RATIO = 9.0
#: Pending runs the runner reads from the database at a time.
PENDING_PAGE = 1_000


@dataclass(frozen=True)
class Progress:
    """One progress event of a running queue, as the CLI, widgets and notebooks show it.

    ``kind`` is one of ``started, training, sample, kept, deleted, superseded, failed,
    checkpoint, pbo, summary, paused, cancelled, completed``; ``message`` is the user guide's
    status line (``pbo``: the probability of backtest overfitting of each regime the queue
    added trials to; ``sample``: a symbol with no imported data is trained on the bundled
    sample; ``summary``: the summary notebook of a completed papermill batch). A ``kept``
    event names in ``superseded`` the earlier runs whose models the kept one pushed out of
    every best list; each of them then has a ``superseded`` event (its ``run_id`` the deleted
    run, ``by_run_id`` the newcomer), so the "Model kept" lines minus the superseded ones of
    the same queue (``superseded_in_queue``) equal the queue's kept models.
    """

    kind: str
    message: str
    queue_id: int
    total: int
    done: int
    kept: int = 0
    deleted: int = 0
    failed: int = 0
    index: int | None = None
    config: str | None = None
    run_id: int | None = None
    improved_regimes: tuple[str, ...] = ()
    elapsed: float = 0.0
    superseded: tuple[int, ...] = ()
    by_run_id: int | None = None
    superseded_in_queue: int = 0

    @property
    def fraction(self) -> float:
        """Share of the queue's configurations finished, 0..1."""
        return self.done / self.total if self.total else 1.0


ProgressCallback = Callable[[Progress], None]


@dataclass
class _Tally:
    """What the runner has seen so far, for the progress events."""

    queue_id: int
    total: int
    done: int
    kept: int = 0
    deleted: int = 0
    failed: int = 0
    # Models this runner kept and a later run of the same queue pushed out again.
    superseded: int = 0
    started: float = field(default_factory=time.perf_counter)
    # The trial scopes this runner added to: their PBO is recomputed when it stops.
    scopes: set = field(default_factory=set)

    def event(self, kind: str, message: str, **extra: Any) -> Progress:
        return Progress(
            kind=kind,
            message=message,
            queue_id=self.queue_id,
            total=self.total,
            done=self.done,
            kept=self.kept,
            deleted=self.deleted,
            failed=self.failed,
            superseded_in_queue=self.superseded,
            elapsed=time.perf_counter() - self.started,
            **extra,
        )


class _Notify:
    """The runner's progress callback: the queue's journal, then the caller's callback."""

    def __init__(self, journal: ProgressCallback, progress: ProgressCallback | None) -> None:
        self.journal = journal
        self.progress = progress

    def __call__(self, event: Progress) -> None:
        self.journal(event)
        if self.progress is not None:
            self.progress(event)


# ----------------------------------------------------------------------------- queues


def _bars_loader(settings: Settings) -> Callable[[str, str], pd.DataFrame]:
    store = DataStore(settings.data_path)
    cache: dict[tuple[str, str], pd.DataFrame] = {}

    def load(symbol: str, timeframe: str) -> pd.DataFrame:
        key = (symbol, timeframe)
        if key not in cache:
            cache[key] = store.load_bars(symbol, timeframe)
        return cache[key]

    return load


def sample_message(symbol: str) -> str:
    """The status line of a symbol trained on the bundled sample (nothing imported)."""
    native = SAMPLES[symbol][1]
    return (
        f"{symbol}: no data imported; training on the bundled {symbol} sample ({native} bars); "
        f"import your own with: forexgrid data import FILE --symbol {symbol}"
    )


def create_queue(
    spec: GridSpec,
    settings: Settings | None = None,
    *,
    name: str | None = None,
    skip_trained: bool | None = None,
) -> storage.records.QueueInfo:
    """Create a pending queue for a grid, with each configuration's identity hash.

    The grid's size is checked against ``execution.max_grid_size`` before anything is read or
    built. The hashes include the fingerprint of the data each configuration will train on
    (read from the workspace's data store once per symbol and timeframe), so a configuration
    already trained on the same data is skipped when ``skip_trained`` (default
    ``grid.skip_trained``).

    Raises
    ------
    GridSizeError
        When the grid has more than ``execution.max_grid_size`` configurations.
    ForexgridError
        ``No configurations to train after filtering`` when every configuration is
        already trained; DataError when a symbol has no data.
    """
    settings = _settings(settings)
    if not isinstance(spec, GridSpec):
        raise ConfigError(f"create_queue: expected a GridSpec, got {type(spec).__name__}")
    spec.check_size(settings.execution.max_grid_size)
    store = DataStore(settings.data_path)
    # One pair's bars at a time: only the fingerprints are kept.
    fingerprints = {
        (symbol, timeframe): data_fingerprint(store.load_bars(symbol, timeframe))
        for symbol, timeframe in spec.symbol_timeframes()
    }
    if skip_trained is None:
        skip_trained = settings.grid.skip_trained
    with storage.session_scope(settings) as session:
        return storage.queues.create_queue(
            session,
            spec,
            name=name,
            skip_trained=skip_trained,
            settings=settings,
            fingerprints=fingerprints,
        )


def settings_for_queue(settings: Settings, queue: storage.records.QueueInfo) -> Settings:
    """``settings`` with the sections that change results taken from the queue itself.

    A queue stores the settings it was created with (features, evaluation windows, the
    inference grid, regimes, selection, model management and the seed); resuming it from
    another folder, or after the configuration file was edited, trains its remaining
    configurations exactly as its first ones. Where and how to run (workers, backend,
    paths) comes from ``settings``.

    Raises
    ------
    ConfigError
        The stored settings are no longer valid (written by an older forexgrid).
    """
    try:
        merged, differ = storage.queues.settings_of_queue(settings, queue.settings)
    except ConfigError as err:
        raise ConfigError(f"queue {queue.id}: {err}") from err
    if differ:
        logger.warning(
            "queue %s runs with the settings it was created with; the current configuration "
            "differs in: %s",
            queue.id,
            ", ".join(differ),
        )
    return merged


def _settings(settings: Settings | None) -> Settings:
    if settings is None:
        from forexgrid.config import load_config

        settings = load_config(None)
    return settings


@dataclass
class _Claim:
    """This runner's hold on its queue: the fencing token every write checks."""

    queue_id: int
    token: str
    owner: str
    # Set by the heartbeat when it finds the queue taken over; the runner then stops.
    lost: threading.Event = field(default_factory=threading.Event)

    @contextlib.contextmanager
    def session(self, settings: Settings) -> Iterator[Any]:
        """A transaction in which this runner provably still owns the queue.

        Raises
        ------
        LostOwnershipError
            The queue was taken over: nothing of the transaction is committed.
        """
        with storage.session_scope(settings) as session:
            storage.queues.fence(session, self.queue_id, self.token, self.owner)
            yield session


class _Heartbeat(threading.Thread):
    """Refreshes the queue's heartbeat until stopped (a daemon: it dies with the process)."""

    def __init__(self, settings: Settings, claim: _Claim) -> None:
        super().__init__(name=f"forexgrid-heartbeat-{claim.queue_id}", daemon=True)
        self._settings, self._claim = settings, claim
        # Several beats per crash-detection window, never slower than every 30 s.
        self.interval = min(30.0, settings.recovery.detect_crash_after_minutes * 60 / 4)
        self._stop_event = threading.Event()

    def run(self) -> None:
        claim = self._claim
        while not self._stop_event.wait(self.interval):
            try:
                with storage.session_scope(self._settings) as session:
                    storage.queues.heartbeat(
                        session, claim.queue_id, claim.owner, token=claim.token
                    )
            except LostOwnershipError as err:
                # The runner stops at its next step and raises this; no second message.
                logger.info("%s", err)
                claim.lost.set()
                return
            except ForexgridError as err:  # the next beat may succeed (a locked database)
                logger.warning("queue %s: heartbeat failed: %s", claim.queue_id, err)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(timeout=5)


# ----------------------------------------------------------------------------- the runner


def run_queue(
    queue_id: int,
    settings: Settings | None = None,
    *,
    progress: ProgressCallback | None = None,
    owner: str | None = None,
    pause_event: threading.Event | None = None,
) -> storage.records.QueueInfo:
    """Run (or resume) a queue until it completes, is paused or is cancelled.

    Parameters
    ----------
    queue_id
        The queue to run; it must be pending, paused or crashed.
    settings
        The configuration; None uses the defaults.
    progress
        Called with a :class:`Progress` event for every status line.
    owner
        Who runs the queue (``host:pid`` by default); stored on the queue row.
    pause_event
        Setting it asks this runner to pause, like a pause request stored on the queue row
        (the CLI sets it on Ctrl-C; a signal handler must not touch the database).

    Returns
    -------
    QueueInfo
        The queue as it stands when the runner stops.

    Raises
    ------
    StorageError
        When the queue is unknown, finished, or already running (another runner holds it),
        or ``queue.max_parallel_queues`` queues are running.
    """
    settings = _settings(settings)
    owner = owner or storage.queues.default_owner()
    # A queue whose runner on this machine is gone is crashed now, not after the window.
    detect_crashed_queues(settings)
    with storage.session_scope(settings) as session:
        queue = storage.queues.claim_queue(
            session, queue_id, owner, settings.queue.max_parallel_queues
        )
        to_train = storage.runs.count_pending(session, queue_id)
        active = tuple(storage.regimes_repo.active_regimes(session))
    claim = _Claim(queue_id, queue.claim_token, owner)
    # Every status line also goes to the queue's journal, for other processes to show.
    notify = _Notify(JournalWriter(journal_path(settings, queue_id, queue.queue_uuid)), progress)
    tally = _Tally(queue_id, queue.total_configs, queue.total_configs - to_train)
    tally.kept, tally.failed = queue.kept_count, queue.failed_count
    tally.deleted = queue.deleted_count
    heartbeat = _Heartbeat(settings, claim)
    heartbeat.start()
    logger.info(
        "queue %s: %d of %d configurations to train", queue_id, to_train, queue.total_configs
    )
    # From the claim on, every way out but a kill leaves the queue paused or finished.
    try:
        settings = settings_for_queue(settings, queue)
        files = ModelFileManager.from_settings(settings)
        reconcile_model_files(settings, own_queue=queue_id)
        notify(tally.event("started", "Starting training queue..."))
        pending = _PendingRuns(settings, queue_id)
        stopped = _work(settings, claim, pending, active, files, tally, notify, pause_event)
        with claim.session(settings) as session:
            if stopped in ("pause", "cancel"):
                status = "paused" if stopped == "pause" else "cancelled"
                storage.queue_control.set_queue_status(
                    session, queue_id, status, expected=("running",)
                )
                storage.queues.update_counts(session, queue_id)
            else:
                storage.queue_control.finish_queue(session, queue_id, "completed")
            final = storage.queues.get_queue(session, queue_id)
    except LostOwnershipError:
        # Someone else holds the queue now: write nothing; the caller says so once.
        raise
    except BaseException as err:
        _stop_on_error(settings, claim, err)
        raise
    finally:
        heartbeat.stop()
    # The end of this queue's work for now: the scopes it added trials to get their PBO.
    _update_pbo(settings, tally.scopes, notify, tally)
    if stopped:
        _checkpoint(settings, claim, tally, notify)
        kind = "paused" if stopped == "pause" else "cancelled"
        notify(tally.event(kind, f"Training {kind} after {tally.done}/{tally.total} models"))
    else:
        if settings.storage.compress_old_models:
            files.compress_old_models()
        if settings.execution.backend == "papermill":
            _batch_summary(settings, queue_id, notify, tally)
        notify(tally.event("completed", "Training completed!"))
    return final


def _batch_summary(
    settings: Settings, queue_id: int, notify: ProgressCallback, tally: _Tally
) -> None:
    """Execute a completed batch's summary notebook; its failure is reported, not raised
    (every run is recorded already)."""
    from forexgrid.batch import write_summary

    try:
        path = write_summary(settings, queue_id)
    except ForexgridError as err:
        logger.error("queue %s: %s", queue_id, err)
        notify(tally.event("summary", f"Summary notebook failed: {err}"))
    else:
        notify(tally.event("summary", f"Summary notebook: {path}"))


def _stop_on_error(settings: Settings, claim: _Claim, err: BaseException) -> None:
    """Record why the runner stops: the queue is paused with the error, resumable once the
    cause is fixed (a full disk, an unwritable folder), its in-flight runs back to pending.

    Only a killed process leaves a queue "running" (recovery then finds it).
    """
    if isinstance(err, KeyboardInterrupt):
        reason = "interrupted (KeyboardInterrupt)"
    elif isinstance(err, SystemExit):
        reason = f"the program exited (SystemExit {err.code})"
    else:
        reason = f"stopped by an error: {type(err).__name__}: {err}"
    try:
        with claim.session(settings) as session:
            storage.queue_control.set_queue_status(session, claim.queue_id, "paused", error=reason)
            storage.runs.reset_running_runs(session, claim.queue_id)
            storage.queues.update_counts(session, claim.queue_id)
    except ForexgridError as record_err:
        # The database itself fails: once this process is gone, recovery on this machine
        # sees the queue as crashed at once.
        logger.error(
            "queue %s: could not record that it stopped (%s): %s",
            claim.queue_id,
            reason,
            record_err,
        )
        return
    logger.info(
        "queue %s paused: %s; resume with: forexgrid resume %s",
        claim.queue_id,
        reason,
        claim.queue_id,
    )


class _PendingRuns:
    """The queue's pending runs in ``queue_index`` order, read a page at a time.

    A queue may hold 100,000 runs: reading them all at the claim took 15.7 s and 561 MB
    (docs/performance.md, "Queue creation"). Only this runner starts the queue's runs, so the
    next page is simply the pending runs after the last one read.
    """

    def __init__(self, settings: Settings, queue_id: int, page: int | None = None) -> None:
        self._settings, self._queue_id = settings, queue_id
        self._page = page or PENDING_PAGE
        self._buffer: deque[storage.records.RunInfo] = deque()
        self._after = -1
        self._exhausted = False

    def __bool__(self) -> bool:
        self._fill()
        return bool(self._buffer)

    def popleft(self) -> storage.records.RunInfo:
        self._fill()
        return self._buffer.popleft()

    def _fill(self) -> None:
        if self._buffer or self._exhausted:
            return
        with storage.session_scope(self._settings) as session:
            page = storage.runs.pending_runs(
                session, self._queue_id, after_index=self._after, limit=self._page
            )
        self._exhausted = len(page) < self._page
        if page:
            self._after = page[-1].queue_index
        self._buffer.extend(page)


def _work(
    settings: Settings,
    claim: _Claim,
    todo: _PendingRuns,
    active: tuple[regimes.Regime, ...],
    files: ModelFileManager,
    tally: _Tally,
    notify: ProgressCallback,
    pause_event: threading.Event | None = None,
) -> str | None:
    """Dispatch and apply the pending runs; return "pause"/"cancel" if asked to stop.

    Raises
    ------
    LostOwnershipError
        The queue was taken over by another runner: nothing more is written.
    """
    queue_id = claim.queue_id
    load = _bars_loader(settings)
    store = DataStore(settings.data_path)
    # Each symbol served from the bundled sample is said once, on screen.
    told: set[str] = set()
    in_flight: deque[tuple[storage.records.RunInfo, concurrent.futures.Future]] = deque()
    interval = settings.queue.auto_checkpoint_interval
    since_checkpoint = 0
    not_before = 0.0  # monotonic time before which no automatic checkpoint is written
    stop: str | None = None
    with _executor(settings) as executor:
        depth = 1 if isinstance(executor, _InlineExecutor) else settings.execution.workers + 1

        def submit() -> None:
            run = todo.popleft()
            config = run.config
            with claim.session(settings) as session:
                storage.runs.start_run(session, run.id)
            notify(
                tally.event(
                    "training",
                    f"Training model {run.queue_index + 1}/{tally.total}...",
                    index=run.queue_index + 1,
                    config=config.label,
                    run_id=run.id,
                )
            )
            try:
                bars = load(config.symbol, config.timeframe)
            except ForexgridError as err:
                future: concurrent.futures.Future = concurrent.futures.Future()
                future.set_exception(err)
            else:
                if config.symbol not in told:
                    told.add(config.symbol)
                    if store.serves_sample(config.symbol):
                        notify(tally.event("sample", sample_message(config.symbol)))
                submit_run = getattr(executor, "submit_run", None)
                if submit_run is not None:
                    # papermill: a notebook named after the run's queue index and hash.
                    future = submit_run(run, settings, active)
                else:
                    future = executor.submit(_evaluate, config, bars, settings, active)
            in_flight.append((run, future))

        while todo or in_flight:
            while todo and not stop and len(in_flight) < depth:
                submit()
            if not in_flight:
                break
            run, future = in_flight.popleft()
            try:
                result = future.result()
            except ForexgridError as err:
                _fail(settings, claim, run, f"{type(err).__name__}: {err}", tally, notify)
            except Exception as err:  # noqa: BLE001 - one failing configuration does not sink the grid
                text = "".join(traceback.format_exception(err)).strip()
                _fail(settings, claim, run, text, tally, notify)
            else:
                _apply(settings, claim, run, result, files, tally, notify)
            if claim.lost.is_set():
                with claim.session(settings):  # raises LostOwnershipError with the reason
                    pass
            since_checkpoint += 1
            if since_checkpoint >= interval and time.monotonic() >= not_before:
                began = time.monotonic()
                _checkpoint(settings, claim, tally, notify)
                ended = time.monotonic()
                # A checkpoint's time grows with the queue (8 s for 100,000 runs; its
                # memory does not, it is streamed): keep checkpoints to about a tenth of
                # the runner's time.
                not_before = ended + CHECKPOINT_COST_RATIO * (ended - began)
                since_checkpoint = 0
            if stop is None:
                with storage.session_scope(settings) as session:
                    stop = storage.queues.get_queue(session, queue_id).requested_action
                if stop is None and pause_event is not None and pause_event.is_set():
                    stop = "pause"
                if stop:
                    logger.info(
                        "queue %s: %s requested; finishing %d in flight",
                        queue_id,
                        stop,
                        len(in_flight),
                    )
    return stop


def _fail(
    settings: Settings,
    claim: _Claim,
    run: storage.records.RunInfo,
    error: str,
    tally: _Tally,
    notify: ProgressCallback,
) -> None:
    logger.error("queue %s: %s failed: %s", claim.queue_id, run.config.label, error)
    with claim.session(settings) as session:
        storage.runs.fail_run(session, run.id, error)
        storage.queues.update_counts(session, claim.queue_id)
    tally.done += 1
    tally.failed += 1
    first_line = error.strip().splitlines()[-1] if error.strip() else "error"
    notify(
        tally.event(
            "failed", f"Model failed: {first_line}", run_id=run.id, config=run.config.label
        )
    )


@dataclass(frozen=True)
class _Selected:
    """The selection of one run: the decision, the lists it rewrites and its trials."""

    decision: selection.SelectionDecision
    list_keys: tuple[selection.BestsKey, ...]
    window: tuple
    scored: dict[storage.trials.ScopeKey, Any]
    stats_after: dict[storage.trials.ScopeKey, Any]
    dropped: tuple[int, ...]


def _select(
    session: Any, settings: Settings, run: storage.records.RunInfo, result: RunResult
) -> _Selected:
    """Score the run's candidates against every trial of their scopes and decide.

    The run's trials are added to each scope's statistics first; the list entries of the
    run's validation window are rescored against the same statistics, so the newcomer and
    the incumbents are compared like with like. Lists hold the models of one version of a
    regime's rules: entries scored under earlier rules (edited without rescoring) leave the
    list, and a run scored under rules edited while its queue ran does not compete in that
    regime.
    """
    sel = settings.selection
    trials = result.trials
    window = trials.validation_window
    keys = {
        regime: storage.trials.ScopeKey(run.symbol, regime, version, *window)
        for regime, version in zip(trials.regimes, trials.rules_versions, strict=True)
    }
    before = storage.trials.load_scope_stats(session, keys.values(), len(trials.days), lock=True)
    after = {regime: before[key].add(trials.of(regime)) for regime, key in keys.items()}
    current = storage.regimes_repo.current_rules_versions(session, dict(settings.regimes))
    changed = {
        r for r, key in keys.items() if current.get(r, key.rules_version) != key.rules_version
    }
    lists = storage.bests.load_bests(session, window=window, symbol=run.symbol)
    outdated = {
        e.run_id
        for (_, regime), entries in lists.items()
        if regime in keys and regime not in changed
        for e in entries
        if e.rules_version != keys[regime].rules_version
    }
    rescored = {
        (symbol, regime): selection.rescore_entries(
            [e for e in entries if e.rules_version == keys[regime].rules_version],
            after[regime],
            sel.score,
        )
        for (symbol, regime), entries in lists.items()
        if regime in keys and regime not in changed
    }
    candidates = selection.score_candidates(
        result.chosen, {r: trials.of(r) for r in keys}, after, sel.score
    )
    decision = selection.select(
        run.id,
        run.symbol,
        candidates[~candidates["regime"].isin(changed)],
        rescored,
        **selection.rule_settings(settings),
        config_hash=result.config_hash,
        validation_window=window,
        rules_versions=dict(zip(trials.regimes, trials.rules_versions, strict=True)),
    )
    for regime in sorted(changed):
        logger.warning(
            "run %s: the rules of %r changed while its queue ran; it does not compete in it",
            run.id,
            regime,
        )
    listed = {e.run_id for entries in decision.new_bests.values() for e in entries}
    unlisted = {e.run_id for entries in lists.values() for e in entries} - listed
    return _Selected(
        decision=decision,
        # Every list the run was scored against is rewritten: its entries' DSRs moved.
        list_keys=tuple(sorted({*rescored, *decision.changed_keys})),
        window=window,
        scored={keys[r]: trials.of(r) for r in keys},
        stats_after={keys[r]: after[r] for r in keys},
        # Runs left in no list: pushed out, or listed only under outdated rules.
        dropped=tuple(sorted(set(decision.dropped_run_ids) | (outdated & unlisted))),
    )


def _apply(
    settings: Settings,
    claim: _Claim,
    run: storage.records.RunInfo,
    result: RunResult,
    files: ModelFileManager,
    tally: _Tally,
    notify: ProgressCallback,
) -> None:
    """Select, stage the model file if kept, record everything in one fenced transaction,
    then give the file its final name and delete the files of models pushed out.

    A conflict the database resolves by aborting the transaction (PostgreSQL: a
    serialisation failure or deadlock with another queue) runs it again.
    """
    fault_point("result_ready")
    for attempt in range(1, _TRANSACTION_ATTEMPTS + 1):
        try:
            recorded = _record(settings, claim, run, result, files)
            break
        except TransientStorageError as err:
            if attempt == _TRANSACTION_ATTEMPTS:
                raise
            logger.warning("run %s: %s; trying again (%d)", run.id, err, attempt)
            time.sleep(0.05 * attempt)
    fault_point("run_committed")
    if recorded.staged is not None:
        files.promote(recorded.staged)
        fault_point("model_file_promoted")
    tally.scopes.update(recorded.scopes)
    for old in recorded.dropped:
        if old.model_file_path:
            files.delete(old.model_file_path)
    decision, queue = recorded.decision, recorded.queue
    tally.done += 1
    tally.kept, tally.deleted = queue.kept_count, queue.deleted_count
    pushed_out = set(decision.dropped_run_ids)
    superseded = tuple(old.id for old in recorded.dropped if old.id in pushed_out)
    if decision.keep:
        message = f"Model kept (improves: {', '.join(decision.improved_regimes)})"
        if superseded:
            runs = "runs" if len(superseded) > 1 else "run"
            message += f" (supersedes {runs} {', '.join(str(i) for i in superseded)})"
        kind = "kept"
    else:
        message = "Model deleted (no regime improvements)"
        kind = "deleted"
    notify(
        tally.event(
            kind,
            message,
            index=run.queue_index + 1,
            config=run.config.label,
            run_id=run.id,
            improved_regimes=tuple(decision.improved_regimes),
            superseded=superseded,
        )
    )
    for old in recorded.dropped:
        if old.queue_id == claim.queue_id:
            tally.superseded += 1
            where = ""
        else:
            where = f" (queue {old.queue_id})"
        why = (
            f"pushed out by run {run.id}"
            if old.id in pushed_out
            # Listed only under rules its regimes no longer have: run.id's lists left it out.
            else f"left out of the lists rewritten by run {run.id} (scored under earlier rules)"
        )
        notify(
            tally.event(
                "superseded",
                f"Run {old.id}'s model deleted{where}: {why}",
                config=old.config.label,
                run_id=old.id,
                by_run_id=run.id,
            )
        )


# How often a transaction the database aborted for a conflict is run again.
_TRANSACTION_ATTEMPTS = 5


class _Recorded(NamedTuple):
    """What one run's transaction decided and wrote."""

    decision: selection.SelectionDecision
    staged: StagedModel | None
    dropped: list[storage.records.RunInfo]
    queue: storage.records.QueueInfo
    scopes: dict[storage.trials.ScopeKey, Any]


def _record(
    settings: Settings,
    claim: _Claim,
    run: storage.records.RunInfo,
    result: RunResult,
    files: ModelFileManager,
) -> _Recorded:
    """The transaction of :func:`_apply`; a staged file is discarded if it does not commit."""
    delete_losers = settings.model_management.delete_non_best_models
    staged = None
    try:
        with claim.session(settings) as session:
            storage.bests.lock_best_lists(session, run.symbol)
            selected = _select(session, settings, run, result)
            decision = selected.decision
            if decision.keep or not delete_losers:
                # Under a name unique to this attempt, renamed into place only after the
                # commit: a runner that lost its queue can never touch a recorded file.
                staged = files.stage(result.model, run.run_uuid, secrets.token_hex(8))
                fault_point("model_file_written")
            storage.runs.complete_run(
                session,
                run.id,
                results=result.results,
                chosen=result.chosen,
                kept=decision.keep,
                best_regimes=decision.improved_regimes,
                n_combinations=result.n_combinations,
                phase1_seconds=result.timings.get("phase1"),
                phase2_seconds=result.timings.get("phase2"),
                data_fingerprint=result.data_fingerprint,
                config_hash=result.config_hash,
                model_file_path=staged.file.path if staged else None,
                model_file_sha256=staged.file.sha256 if staged else None,
                model_file_size_bytes=staged.file.size_bytes if staged else None,
                rules_versions=dict(
                    zip(result.trials.regimes, result.trials.rules_versions, strict=True)
                ),
            )
            storage.trials.record_trials(session, run.id, selected.scored, selected.stats_after)
            storage.bests.apply_bests(
                session, decision.new_bests, selected.list_keys, window=selected.window
            )
            dropped = (
                [storage.runs.get_run(session, run_id) for run_id in selected.dropped]
                if delete_losers
                else []
            )
            storage.runs.mark_models_deleted(session, [r.id for r in dropped], by_run_id=run.id)
            queue = storage.queues.update_counts(session, claim.queue_id)
    except BaseException:
        if staged is not None:
            files.discard(staged)
        raise
    return _Recorded(decision, staged, dropped, queue, selected.scored)


def _update_pbo(
    settings: Settings,
    scopes: set[storage.trials.ScopeKey],
    notify: ProgressCallback,
    tally: _Tally,
) -> None:
    """Recompute the probability of backtest overfitting of the scopes a queue added to."""
    if not scopes:
        return
    results = scoring.update_pbo(settings, sorted(scopes))
    by_symbol: dict[str, list[str]] = {}
    for key, pbo in results.items():
        if np.isfinite(pbo.pbo):
            by_symbol.setdefault(key.symbol, []).append(f"{key.regime} {pbo.pbo:.2f}")
    if by_symbol:
        shown = "; ".join(f"{symbol}: {', '.join(parts)}" for symbol, parts in by_symbol.items())
        notify(tally.event("pbo", f"Probability of backtest overfitting: {shown}"))


class _Lost(Exception):
    """The queue was taken over while its checkpoint was being written."""


def _while_owned(runs: Iterator[Any], claim: _Claim) -> Iterator[Any]:
    """``runs`` while this runner owns the queue; :class:`_Lost` once it does not."""
    for run in runs:
        if claim.lost.is_set():
            raise _Lost
        yield run
    if claim.lost.is_set():
        raise _Lost


def _checkpoint(
    settings: Settings, claim: _Claim, tally: _Tally, notify: ProgressCallback
) -> None:
    queue_id = claim.queue_id
    # Read-only: on SQLite a checkpoint of a large queue (8 s at 100,000 runs) then holds no
    # write lock, so the heartbeat and other processes write meanwhile.
    with storage.session_scope(settings, read_only=True) as session:
        # The runs are written as they are read: memory does not grow with the queue.
        snapshot = storage.snapshots.queue_snapshot_stream(session, queue_id)
        snapshot["runs"] = _while_owned(snapshot["runs"], claim)
        try:
            path = checkpoints.write_checkpoint(settings.checkpoints_path, queue_id, snapshot)
        except _Lost:
            return  # taken over meanwhile: no checkpoint (the temporary file is removed)
    checkpoints.cleanup_checkpoints(
        settings.checkpoints_path, settings.storage.checkpoint_retention_days
    )
    logger.info("queue %s: checkpoint %s", queue_id, path)
    notify(tally.event("checkpoint", "Checkpoint saved"))
