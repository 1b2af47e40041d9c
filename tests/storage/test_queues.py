"""Queues: creation from a grid, claiming (atomic, max_parallel_queues, racing processes),
heartbeats, pause/cancel requests, status changes, counts, finishing, crash marking."""

from __future__ import annotations

import multiprocessing
import os
import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from forexgrid.config import load_config
from forexgrid.exceptions import (
    ConfigError,
    DataError,
    ForexgridError,
    LostOwnershipError,
    StorageError,
)
from forexgrid.grid import GridSpec, config_hash
from forexgrid.storage.database import Database
from forexgrid.storage.queue_control import (
    finish_queue,
    mark_crashed_queues,
    request_action,
    set_queue_status,
    take_requested_action,
)
from forexgrid.storage.queues import (
    claim_queue,
    create_queue,
    default_owner,
    fence,
    get_all_training_queues,
    get_queue,
    heartbeat,
    update_counts,
)
from forexgrid.storage.runs import (
    complete_run,
    fail_run,
    get_run,
    mark_models_deleted,
    queue_runs,
    start_run,
)
from forexgrid.storage.tables import TrainingQueue, TrainingRun, utcnow

FINGERPRINTS = {
    ("EURUSD", "1h"): {
        "first": "2017-01-02T00:00:00+00:00",
        "last": "2017-12-29T00:00:00+00:00",
        "bars": 6225,
    },
    ("EURUSD", "4h"): {
        "first": "2017-01-02T00:00:00+00:00",
        "last": "2017-12-29T00:00:00+00:00",
        "bars": 1560,
    },
}


def _complete(s, run_id, results, chosen, kept=False):
    start_run(s, run_id)
    return complete_run(s, run_id, results=results, chosen=chosen, kept=kept)


# ----------------------------------------------------------------------------- create


def test_create_queue_makes_one_pending_run_per_configuration(session, spec):
    settings = load_config(None)
    q = create_queue(session, spec, settings=settings, fingerprints=FINGERPRINTS)
    assert (q.status, q.total, q.skipped, q.current_index) == ("pending", 4, 0, 0)
    assert q.queue_name == "ridge EURUSD 1h+4h (4 configs)"
    assert q.spec() == spec
    assert set(q.settings) == {
        "features",
        "evaluation",
        "inference_grid",
        "regimes",
        "selection",
        "model_management",
        "execution",
    }
    runs = queue_runs(session, q.id)
    assert [r.queue_index for r in runs] == [0, 1, 2, 3]
    assert all(r.status == "pending" and not r.is_model_kept for r in runs)
    for run, tc in zip(runs, spec.expand(), strict=True):
        assert run.config == tc
        fingerprint = FINGERPRINTS[(tc.symbol, tc.timeframe)]
        assert run.config_hash == config_hash(tc, settings, fingerprint)
        assert run.data_fingerprint == fingerprint
        assert (run.model_type, run.symbol, run.timeframe, run.horizon) == (
            tc.model_type,
            tc.symbol,
            tc.timeframe,
            tc.horizon,
        )


def test_create_queue_without_settings_hashes_the_configuration_alone(session, spec):
    q = create_queue(session, spec, name="plain")
    assert q.settings == {}
    assert [r.config_hash for r in queue_runs(session, q.id)] == [
        config_hash(tc) for tc in spec.expand()
    ]


def test_already_trained_configurations_are_skipped(db, spec, results_frame, make_chosen):
    with db.session_scope() as s:
        first = create_queue(s, spec)
        runs = queue_runs(s, first.id)
        _complete(s, runs[0].id, results_frame, make_chosen())
        _complete(s, runs[2].id, results_frame, make_chosen())
        fail_run(s, runs[1].id, "boom")  # a failed run is not "already trained"
    with db.session_scope() as s:
        second = create_queue(s, spec)
        assert (second.total, second.skipped) == (2, 2)
        assert [r.config for r in queue_runs(s, second.id)] == [
            spec.expand()[1],
            spec.expand()[3],
        ]
        third = create_queue(s, spec, skip_trained=False)
        assert (third.total, third.skipped) == (4, 0)


def test_nothing_left_to_train_raises_the_guide_message(db, spec, results_frame, make_chosen):
    with db.session_scope() as s:
        q = create_queue(s, spec)
        for run in queue_runs(s, q.id):
            _complete(s, run.id, results_frame, make_chosen())
    message = (
        "No configurations to train after filtering: all 4 configurations of the grid "
        "(1 model x 1 symbol x 2 timeframes x 1 day x 2 horizons = 4 configurations) are "
        "already trained; pass skip_trained=False"
    )
    with pytest.raises(ForexgridError, match=re.escape(message)):
        with db.session_scope() as s:
            create_queue(s, spec)
    with db.session_scope() as s:
        assert len(get_all_training_queues(s)) == 1


def test_new_data_means_new_hashes(db, spec, results_frame, make_chosen):
    with db.session_scope() as s:
        q = create_queue(s, spec, fingerprints=FINGERPRINTS)
        for run in queue_runs(s, q.id):
            _complete(s, run.id, results_frame, make_chosen())
    newer = {key: {**fp, "bars": fp["bars"] + 24} for key, fp in FINGERPRINTS.items()}
    with db.session_scope() as s:
        assert create_queue(s, spec, fingerprints=newer).total == 4


def test_missing_fingerprint_is_named(session, spec):
    message = "create_queue: no data fingerprint for EURUSD 4h (fingerprints given for: EURUSD 1h)"
    with pytest.raises(DataError, match=re.escape(message)):
        create_queue(
            session, spec, fingerprints={("EURUSD", "1h"): FINGERPRINTS[("EURUSD", "1h")]}
        )


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("blank", {"name": "  "}, "queue name: expected 1 to 200 characters, got '  '"),
        ("long", {"name": "x" * 201}, "queue name: expected 1 to 200 characters"),
    ],
    ids=lambda v: v if isinstance(v, str) and len(v) < 10 else "",
)
def test_bad_queue_names(session, spec, name, kwargs, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        create_queue(session, spec, **kwargs)


def test_create_queue_needs_a_grid_spec(session):
    with pytest.raises(
        ConfigError, match=re.escape("create_queue: expected a GridSpec, got dict")
    ):
        create_queue(session, {"model_types": ["ridge"]})  # type: ignore[arg-type]


def test_get_queue_and_list(session, spec):
    a = create_queue(session, spec, name="a")
    b = create_queue(session, spec, name="b", skip_trained=False)
    assert get_queue(session, b.id) == b
    assert [q.queue_name for q in get_all_training_queues(session)] == ["a", "b"]
    assert a.id < b.id
    with pytest.raises(StorageError, match=re.escape("no queue with id 999")):
        get_queue(session, 999)
    with pytest.raises(StorageError, match=re.escape("no queue with id '1' (expected an integer")):
        get_queue(session, "1")  # type: ignore[arg-type]


def test_queue_info_summary(session, spec):
    q = create_queue(session, spec, name="<night> grid")
    assert (q.done, q.remaining, q.progress) == (0, 4, 0.0)
    html = q._repr_html_()
    assert "Queue 1: &lt;night&gt; grid" in html and "0/4 (0%)" in html


# ----------------------------------------------------------------------------- claim


def test_claim_moves_a_pending_queue_to_running(session, spec):
    q = create_queue(session, spec)
    before = utcnow()
    claimed = claim_queue(session, q.id, "host-a:1", 1)
    assert (claimed.status, claimed.owner) == ("running", "host-a:1")
    assert claimed.started_at >= before and claimed.heartbeat_at >= before


@pytest.mark.parametrize("status", ["paused", "crashed"])
def test_paused_and_crashed_queues_can_be_claimed_again(session, spec, status):
    q = create_queue(session, spec)
    first = claim_queue(session, q.id, "host-a:1", 1)
    runs = queue_runs(session, q.id)
    start_run(session, runs[0].id)  # in flight when the runner stopped
    set_queue_status(session, q.id, status)
    again = claim_queue(session, q.id, "host-b:2", 1)
    assert (again.status, again.owner) == ("running", "host-b:2")
    assert again.started_at == first.started_at  # the first start is kept
    assert [r.status for r in queue_runs(session, q.id)] == ["pending"] * 4


def test_second_claimant_is_told_who_runs_the_queue(session, spec):
    q = create_queue(session, spec)
    claim_queue(session, q.id, "host-a:1", 3)
    with pytest.raises(
        StorageError, match=re.escape(f"queue {q.id} is already running (owner host-a:1)")
    ):
        claim_queue(session, q.id, "host-b:2", 3)


@pytest.mark.parametrize("status", ["completed", "cancelled", "failed"])
def test_finished_queues_cannot_be_claimed(session, spec, status):
    q = create_queue(session, spec)
    set_queue_status(session, q.id, status)
    message = (
        f"queue {q.id} is {status}; only a pending, paused or crashed queue can be started "
        "or resumed"
    )
    with pytest.raises(StorageError, match=re.escape(message)):
        claim_queue(session, q.id, "host-a:1", 1)


def test_max_parallel_queues_is_enforced(session, spec):
    a = create_queue(session, spec, name="a")
    b = create_queue(session, spec, name="b", skip_trained=False)
    c = create_queue(session, spec, name="c", skip_trained=False)
    claim_queue(session, a.id, "host-a:1", 2)
    claim_queue(session, b.id, "host-b:2", 2)
    message = (
        f"cannot start queue {c.id}: 2 queue(s) already running and queue.max_parallel_queues "
        f"is 2: queue {a.id} 'a' (owner host-a:1), queue {b.id} 'b' (owner host-b:2); wait, "
        "pause one, or raise queue.max_parallel_queues"
    )
    with pytest.raises(StorageError, match=re.escape(message)):
        claim_queue(session, c.id, "host-c:3", 2)
    set_queue_status(session, a.id, "paused")
    assert claim_queue(session, c.id, "host-c:3", 2).status == "running"


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"], ids=repr)
def test_max_parallel_queues_must_be_a_positive_integer(session, spec, bad):
    q = create_queue(session, spec)
    with pytest.raises(
        ConfigError, match=re.escape("queue.max_parallel_queues: must be an integer >= 1")
    ):
        claim_queue(session, q.id, "host-a:1", bad)


def test_owner_must_be_given(session, spec):
    q = create_queue(session, spec)
    with pytest.raises(StorageError, match=re.escape("queue owner: expected 'host:pid'")):
        claim_queue(session, q.id, "", 1)
    assert re.fullmatch(r".+:\d+", default_owner())


def _claim_in_process(url: str, queue_id: int, owner: str, max_parallel: int, barrier, results):
    db = Database(url, busy_timeout=20)
    db.ensure_schema()
    barrier.wait(30)
    try:
        with db.session_scope() as s:
            info = claim_queue(s, queue_id, owner, max_parallel)
        results.put((owner, "won", info.owner))
    except StorageError as exc:
        results.put((owner, "lost", str(exc)))
    finally:
        db.dispose()


def test_two_processes_racing_for_one_queue_exactly_one_wins(db, empty_url, spec):
    with db.session_scope() as s:
        q = create_queue(s, spec)
    ctx = multiprocessing.get_context("spawn")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [
        ctx.Process(
            target=_claim_in_process, args=(empty_url, q.id, f"proc-{i}:{i}", 5, barrier, results)
        )
        for i in range(2)
    ]
    for p in procs:
        p.start()
    outcomes = sorted(results.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(60)
    assert [o[1] for o in outcomes] in (["lost", "won"], ["won", "lost"])
    winner = next(o for o in outcomes if o[1] == "won")[0]
    loser_message = next(o for o in outcomes if o[1] == "lost")[2]
    assert loser_message == f"queue {q.id} is already running (owner {winner})"
    with db.session_scope() as s:
        assert get_queue(s, q.id).owner == winner


def test_threads_racing_for_the_last_parallel_slot_one_wins(db, spec):
    with db.session_scope() as s:
        ids = [create_queue(s, spec, name=f"q{i}", skip_trained=False).id for i in range(2)]
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def claim(queue_id: int) -> None:
        barrier.wait(10)
        try:
            with db.session_scope() as s:
                claim_queue(s, queue_id, f"thread:{queue_id}", 1)
            outcomes[queue_id] = "won"
        except StorageError as exc:
            outcomes[queue_id] = str(exc)

    threads = [threading.Thread(target=claim, args=(i,)) for i in ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(v == "won" for v in outcomes.values()) == [False, True]
    lost = next(v for v in outcomes.values() if v != "won")
    assert "queue(s) already running and queue.max_parallel_queues is 1" in lost
    with db.session_scope() as s:
        assert [q.status for q in get_all_training_queues(s)].count("running") == 1


# ----------------------------------------------------------------------------- heartbeat


def test_heartbeat_of_the_owner(session, spec):
    q = create_queue(session, spec)
    claimed = claim_queue(session, q.id, "host-a:1", 1)
    beat = heartbeat(session, q.id, "host-a:1")
    assert beat >= claimed.heartbeat_at
    assert get_queue(session, q.id).heartbeat_at == beat


def test_heartbeat_of_a_runner_that_lost_its_queue(session, spec):
    q = create_queue(session, spec)
    claim_queue(session, q.id, "host-a:1", 1)
    set_queue_status(session, q.id, "crashed")
    claim_queue(session, q.id, "host-b:2", 1)
    message = (
        f"queue {q.id}: this runner (host-a:1) no longer owns it (it is running under "
        "host-b:2; it was declared crashed or finished by another process meanwhile); "
        "stopping without writing anything more"
    )
    with pytest.raises(LostOwnershipError, match=re.escape(message)):
        heartbeat(session, q.id, "host-a:1")


def test_the_claim_token_fences_a_runner_that_lost_its_queue_even_under_the_same_name(
    session, spec
):
    q = create_queue(session, spec)
    first = claim_queue(session, q.id, "host-a:1", 1)
    assert first.claim_token and first.runner_pid == os.getpid()
    fence(session, q.id, first.claim_token)
    heartbeat(session, q.id, "host-a:1", token=first.claim_token)
    set_queue_status(session, q.id, "crashed")
    second = claim_queue(session, q.id, "host-a:1", 1)
    assert second.claim_token != first.claim_token
    with pytest.raises(LostOwnershipError, match=f"queue {q.id}: this runner"):
        fence(session, q.id, first.claim_token, "host-a:1")
    with pytest.raises(LostOwnershipError):
        heartbeat(session, q.id, "host-a:1", token=first.claim_token)
    fence(session, q.id, second.claim_token)
    set_queue_status(session, q.id, "paused")
    with pytest.raises(LostOwnershipError, match="it is paused"):
        fence(session, q.id, second.claim_token)


# ----------------------------------------------------------------------------- control


@pytest.mark.parametrize(
    ("status", "action", "after_status", "after_request"),
    [
        ("running", "pause", "running", "pause"),
        ("running", "cancel", "running", "cancel"),
        ("pending", "pause", "paused", None),
        ("pending", "cancel", "cancelled", None),
        ("paused", "pause", "paused", None),
        ("paused", "cancel", "cancelled", None),
        ("crashed", "cancel", "cancelled", None),
        ("cancelled", "cancel", "cancelled", None),
    ],
    ids=lambda v: str(v),
)
def test_request_action(session, spec, status, action, after_status, after_request):
    q = create_queue(session, spec)
    if status == "running":
        claim_queue(session, q.id, "host-a:1", 1)
    elif status != "pending":
        set_queue_status(session, q.id, status)
    info = request_action(session, q.id, action)
    assert (info.status, info.requested_action) == (after_status, after_request)
    if after_status == "cancelled":
        assert info.completed_at is not None


@pytest.mark.parametrize(
    ("status", "action", "message"),
    [
        ("completed", "pause", "is completed; only a running or pending queue can be paused"),
        ("crashed", "pause", "is crashed; only a running or pending queue can be paused"),
        (
            "completed",
            "cancel",
            "is completed; only a running, pending, paused or crashed queue can be cancelled",
        ),
        (
            "failed",
            "cancel",
            "is failed; only a running, pending, paused or crashed queue can be cancelled",
        ),
    ],
    ids=lambda v: str(v)[:12],
)
def test_request_action_refused(session, spec, status, action, message):
    q = create_queue(session, spec)
    set_queue_status(session, q.id, status)
    with pytest.raises(StorageError, match=re.escape(f"queue {q.id} {message}")):
        request_action(session, q.id, action)


def test_unknown_action_and_cancel_not_downgraded(session, spec):
    q = create_queue(session, spec)
    with pytest.raises(
        StorageError, match=re.escape("queue action: expected one of pause, cancel, got 'stop'")
    ):
        request_action(session, q.id, "stop")
    claim_queue(session, q.id, "host-a:1", 1)
    request_action(session, q.id, "pause")
    assert request_action(session, q.id, "cancel").requested_action == "cancel"
    with pytest.raises(StorageError, match=re.escape("a cancel request is already pending")):
        request_action(session, q.id, "pause")


def test_request_from_another_connection_reaches_the_runner(db, spec):
    with db.session_scope() as s:
        q = create_queue(s, spec)
        claim_queue(s, q.id, "host-a:1", 1)
    with db.session_scope() as s:  # e.g. the widget or the CLI
        request_action(s, q.id, "pause")
    with db.session_scope() as s:  # the runner, between configurations
        assert take_requested_action(s, q.id) == "pause"
        assert take_requested_action(s, q.id) is None
        paused = set_queue_status(s, q.id, "paused", expected=("running",))
    assert (paused.status, paused.requested_action) == ("paused", None)


def test_set_queue_status(session, spec):
    q = create_queue(session, spec)
    with pytest.raises(
        StorageError, match=re.escape("queue status 'running' is set by claim_queue")
    ):
        set_queue_status(session, q.id, "running")
    with pytest.raises(
        StorageError, match=re.escape("queue status: expected one of pending, paused")
    ):
        set_queue_status(session, q.id, "sleeping")
    message = f"queue {q.id} is pending, expected running; not changed to paused"
    with pytest.raises(StorageError, match=re.escape(message)):
        set_queue_status(session, q.id, "paused", expected=["running"])
    failed = set_queue_status(session, q.id, "failed", error="disk full")
    assert (failed.status, failed.error) == ("failed", "disk full")
    assert failed.completed_at is not None


# ----------------------------------------------------------------------------- counts


def test_update_counts_recomputes_from_the_runs(session, spec, results_frame, make_chosen):
    q = create_queue(session, spec)
    claim_queue(session, q.id, "host-a:1", 1)
    runs = queue_runs(session, q.id)
    _complete(session, runs[0].id, results_frame, make_chosen(), kept=True)
    _complete(session, runs[1].id, results_frame, make_chosen(), kept=False)
    fail_run(session, runs[2].id, "Traceback ...")
    info = update_counts(session, q.id)
    assert (info.completed_count, info.failed_count, info.kept_count, info.deleted_count) == (
        2,
        1,
        1,
        1,
    )
    assert info.current_index == 3
    assert (info.done, info.remaining, info.progress) == (3, 1, 0.75)
    assert update_counts(session, q.id, current_index=2).current_index == 2
    _complete(session, runs[3].id, results_frame, make_chosen())
    assert update_counts(session, q.id).current_index == 4


def test_a_model_pushed_out_by_a_later_queue_is_counted_where_it_came_from(
    session, spec, results_frame, make_chosen
):
    first = create_queue(session, spec)
    claim_queue(session, first.id, "host-a:1", 1)
    (kept, *_) = queue_runs(session, first.id)
    _complete(session, kept.id, results_frame, make_chosen(), kept=True)
    assert update_counts(session, first.id).kept_count == 1
    finish_queue(session, first.id, "cancelled")
    later = create_queue(session, spec)
    claim_queue(session, later.id, "host-b:2", 2)
    (pusher, *_) = queue_runs(session, later.id)
    _complete(session, pusher.id, results_frame, make_chosen(), kept=True)
    assert mark_models_deleted(session, [kept.id], by_run_id=pusher.id) == 1
    # The first queue shows the current truth at once, no recount by hand...
    info = get_queue(session, first.id)
    assert (info.kept_count, info.deleted_count) == (0, 1)
    # ...and the run keeps what was decided when it completed.
    run = get_run(session, kept.id)
    assert (run.is_model_kept, run.kept_when_trained) == (False, True)
    assert run.model_deleted_by_run_id == pusher.id and run.model_deleted_at is not None
    assert get_run(session, pusher.id).kept_when_trained is True
    assert mark_models_deleted(session, [kept.id]) == 0  # already deleted: unchanged
    assert get_run(session, kept.id).model_deleted_by_run_id == pusher.id


def test_finish_queue(session, spec, results_frame, make_chosen):
    q = create_queue(session, spec)
    claim_queue(session, q.id, "host-a:1", 1)
    message = f"queue {q.id} cannot be completed: 4 configuration(s) are still pending or running"
    with pytest.raises(StorageError, match=re.escape(message)):
        finish_queue(session, q.id)
    for run in queue_runs(session, q.id):
        _complete(session, run.id, results_frame, make_chosen())
    done = finish_queue(session, q.id)
    assert (done.status, done.completed_count, done.current_index) == ("completed", 4, 4)
    assert done.completed_at is not None
    with pytest.raises(StorageError, match=re.escape(f"queue {q.id} is already completed")):
        finish_queue(session, q.id, "cancelled")
    with pytest.raises(
        StorageError,
        match=re.escape(
            "final queue status: expected one of completed, cancelled, failed, got 'paused'"
        ),
    ):
        finish_queue(session, q.id, "paused")


def test_cancelled_queue_keeps_its_unfinished_runs_pending(session, spec):
    q = create_queue(session, spec)
    claim_queue(session, q.id, "host-a:1", 1)
    done = finish_queue(session, q.id, "cancelled")
    assert done.status == "cancelled"
    assert {r.status for r in queue_runs(session, q.id)} == {"pending"}


# ----------------------------------------------------------------------------- crashes


def test_stale_running_queues_are_marked_crashed(session, spec):
    stale = create_queue(session, spec, name="stale")
    alive = create_queue(session, spec, name="alive", skip_trained=False)
    claim_queue(session, stale.id, "host-a:1", 2)
    claim_queue(session, alive.id, "host-b:2", 2)
    run = queue_runs(session, stale.id)[0]
    start_run(session, run.id)
    later = utcnow() + timedelta(minutes=10)
    # The live runner heartbeat a minute before "later"; the stale one ten minutes before.
    session.execute(
        update(TrainingQueue)
        .where(TrainingQueue.id == alive.id)
        .values(heartbeat_at=later - timedelta(minutes=1))
    )
    crashed = mark_crashed_queues(session, 5, now=later)
    assert [q.id for q in crashed] == [stale.id]
    info = get_queue(session, stale.id)
    assert info.status == "crashed"
    assert info.error.startswith("no heartbeat since ") and info.error.endswith("(owner host-a:1)")
    assert session.scalar(select(TrainingRun.status).where(TrainingRun.id == run.id)) == "pending"
    assert get_queue(session, alive.id).status == "running"
    assert mark_crashed_queues(session, 5, now=later) == []


@pytest.mark.parametrize("bad", [0, -5, True, "5"], ids=repr)
def test_crash_threshold_must_be_positive(session, bad):
    with pytest.raises(ConfigError, match=re.escape("recovery.detect_crash_after_minutes")):
        mark_crashed_queues(session, bad)


def test_grid_spec_round_trips_with_hyperparameters(session):
    spec = GridSpec(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h"],
        days_history=[30],
        horizons=[1],
        indicator_timeframes=[[], ["4h"]],
        hyperparameters={"ridge": {"alpha": [0.5, 2.0]}},
    )
    q = create_queue(session, spec)
    assert q.total == 4
    assert get_queue(session, q.id).spec() == spec
