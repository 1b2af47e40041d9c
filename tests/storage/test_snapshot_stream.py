"""Streamed checkpoints: the file of the snapshot built whole and dumped, in bounded memory."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import math
import re
import threading
import tracemalloc
from datetime import date
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from forexgrid import runner
from forexgrid.core.selection import BestEntry, DailyMoments
from forexgrid.exceptions import StorageError
from forexgrid.grid import GridSpec
from forexgrid.storage import snapshots
from forexgrid.storage._common import queue_row
from forexgrid.storage._json_stream import write_json
from forexgrid.storage.bests import apply_bests
from forexgrid.storage.checkpoints import _json_default, read_checkpoint, write_checkpoint
from forexgrid.storage.queues import claim_queue, create_queue, get_queue
from forexgrid.storage.regimes_repo import add_regime
from forexgrid.storage.runs import (
    CHOSEN_COLUMNS,
    complete_run,
    fail_run,
    queue_runs,
    run_chosen,
    start_run,
)
from forexgrid.storage.snapshots import (
    queue_snapshot,
    queue_snapshot_stream,
    restore_snapshot,
)
from forexgrid.storage.tables import (
    ChosenResult,
    RegimeBestModel,
    RegimeDefinition,
    RunTrial,
    TrainingRun,
    utcnow,
)
from forexgrid.storage.trials import ScopeKey, load_scope_stats, record_not_scored, record_trials

T0 = dt.datetime(2017, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
WINDOW = (date(2017, 9, 1), date(2017, 10, 30))
TAKEN_AT = re.compile(r'"taken_at": "[^"]*"')


def _old_queue_snapshot(session, queue_id):
    """main's ``queue_snapshot`` before streaming (5b8fbec), kept verbatim as the reference:
    the chosen rows and trials of every run gathered in dicts first, then the runs."""
    _out, _stream = snapshots._out, snapshots._stream
    queue = queue_row(session, queue_id)
    of_queue = TrainingRun.queue_id == queue.id
    chosen = {}
    chosen_columns = (*CHOSEN_COLUMNS, "rules_version")
    for row in _stream(
        session,
        select(ChosenResult.run_id, *(getattr(ChosenResult, c) for c in chosen_columns))
        .join(TrainingRun, TrainingRun.id == ChosenResult.run_id)
        .where(of_queue)
        .order_by(ChosenResult.id),
    ):
        chosen.setdefault(row.run_id, []).append(
            {c: _out(getattr(row, c)) for c in chosen_columns}
        )
    trials = {}
    fields = snapshots._TRIAL_FIELDS
    for row in _stream(
        session,
        select(RunTrial.run_id, RunTrial.returns, *(getattr(RunTrial, f) for f in fields))
        .join(TrainingRun, TrainingRun.id == RunTrial.run_id)
        .where(of_queue)
        .order_by(RunTrial.id),
    ):
        trial = {f: _out(getattr(row, f)) for f in fields}
        trial["returns"] = (
            None if row.returns is None else base64.b64encode(row.returns).decode("ascii")
        )
        trials.setdefault(row.run_id, []).append(trial)
    bests = []
    for row in _stream(
        session,
        select(
            TrainingRun.run_uuid, *(getattr(RegimeBestModel, f) for f in snapshots._BEST_FIELDS)
        )
        .join(TrainingRun, TrainingRun.id == RegimeBestModel.run_id)
        .where(of_queue)
        .order_by(RegimeBestModel.symbol, RegimeBestModel.regime, RegimeBestModel.rank),
    ):
        entry = {f: _out(getattr(row, f)) for f in snapshots._BEST_FIELDS}
        entry["run_uuid"] = row.run_uuid
        bests.append(entry)
    runs = []
    names = ("id", *snapshots._RUN_FIELDS)
    for values in _stream(
        session,
        select(*(getattr(TrainingRun, f) for f in names))
        .where(of_queue)
        .order_by(TrainingRun.queue_index),
    ):
        run = {n: _out(v) for n, v in zip(names, values, strict=True) if v is not None}
        if run["id"] in chosen:
            run["chosen"] = chosen.pop(run["id"])
        if run["id"] in trials:
            run["trials"] = trials.pop(run["id"])
        runs.append(run)
    regimes = [
        {
            "name": r.name,
            "description": r.description,
            "rules": dict(r.rules_json),
            "active": bool(r.active),
            "is_default": bool(r.is_default),
        }
        for r in session.scalars(select(RegimeDefinition).order_by(RegimeDefinition.id))
    ]
    queue_data = {f: _out(getattr(queue, f)) for f in snapshots._QUEUE_FIELDS}
    queue_data.update(id=queue.id, grid=queue.grid_json, settings=queue.settings_json)
    return {
        "format": snapshots.SNAPSHOT_FORMAT,
        "version": snapshots.SNAPSHOT_VERSION,
        "taken_at": utcnow().isoformat(),
        "queue": queue_data,
        "runs": runs,
        "bests": bests,
        "regimes": regimes,
    }


def _old_file_text(queue_id, snapshot):
    """What main's ``write_checkpoint`` wrote: the whole document dumped at once."""
    document = {
        "version": 1,
        "written_at": T0.isoformat(),
        "queue_id": queue_id,
        "snapshot": snapshot,
    }
    return json.dumps(document, indent=2, default=_json_default) + "\n"


def _trial(session, run_id, regime, seed):
    daily = np.random.default_rng(seed).normal(0, 1e-3, (42, 5)).astype(np.float32)
    key = ScopeKey("EURUSD", regime, "v1", *WINDOW)
    (before,) = load_scope_stats(session, [key], 42).values()
    record_trials(session, run_id, {key: daily}, {key: before.add(daily)})


@pytest.fixture
def mixed_queue(db, results_frame, make_chosen):
    """A running queue of 12 runs completed out of queue order (so the chosen rows' and
    trials' ids do not follow the runs'), with failed, running and pending runs, trials,
    not-scored trials, a best list and a custom regime. Returns its id."""
    spec = GridSpec(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h", "4h"],
        days_history=[60, 90, 120],
        horizons=[1, 3],
    )
    with db.session_scope() as s:
        q = create_queue(s, spec, name="mixed")
        claim_queue(s, q.id, "host-a:1", 1)
        runs = queue_runs(s, q.id)
        for n, index in enumerate((7, 0, 4, 9, 2)):
            run = runs[index]
            start_run(s, run.id)
            complete_run(
                s,
                run.id,
                results=results_frame,
                chosen=make_chosen(val_sharpe=1.0 + n),
                kept=index % 2 == 0,
                best_regimes=["bull_trending"] if index == 4 else [],
                n_combinations=82,
                phase1_seconds=1.0 + n,
                phase2_seconds=math.inf if index == 9 else 2.0,
                rules_versions={"all": "all", "bull_trending": "v1"},
            )
            if index != 2:
                _trial(s, run.id, "bull_trending", n)
            if index in (7, 4):
                _trial(s, run.id, "all", 10 + n)
                other = ScopeKey("EURUSD", "calm_ranging", "v0", *WINDOW)
                record_not_scored(s, run.id, other, 42, 5, "model file deleted")
        fail_run(s, runs[1].id, "boom")
        fail_run(s, runs[11].id, "Traceback\n  line 2\n\ttab and ünïcode")
        start_run(s, runs[5].id)
        apply_bests(
            s,
            {
                ("EURUSD", "bull_trending"): [
                    BestEntry(
                        runs[i].id,
                        runs[i].config_hash,
                        "bull_trending",
                        "EURUSD",
                        3.0 - rank,
                        "weighted",
                        0.5,
                        50,
                        test_sharpe=-math.inf if rank else 1.0,
                        dsr=math.nan if rank else 0.8,
                        val_sharpe=2.5,
                        daily=DailyMoments(0.2, 0.1, 3.5, 42),
                        rules_version="v1",
                    )
                    for rank, i in enumerate((4, 7))
                ]
            },
            window=WINDOW,
        )
        add_regime(s, "breakout", {"volatility": "> 90th percentile"}, "custom")
    return q.id


def test_a_streamed_checkpoint_is_the_old_dumped_snapshot(db, mixed_queue, tmp_path):
    with db.session_scope() as s:
        old = _old_queue_snapshot(s, mixed_queue)
        whole = queue_snapshot(s, mixed_queue)
        path = write_checkpoint(
            tmp_path, mixed_queue, queue_snapshot_stream(s, mixed_queue), now=T0
        )
    # The fixture has what the comparison must cover.
    statuses = [r["status"] for r in old["runs"]]
    assert statuses.count("completed") == 5 and statuses.count("failed") == 2
    assert "running" in statuses and "pending" in statuses
    assert sum(len(r.get("chosen", ())) for r in old["runs"]) == 15
    assert sum(len(r.get("trials", ())) for r in old["runs"]) == 8
    assert len(old["bests"]) == 2 and old["regimes"][-1]["name"] == "breakout"
    # Apart from the time of taking, the same document; the same text, byte for byte.
    new_text = path.read_text("utf-8")
    old_text = _old_file_text(mixed_queue, old)
    document = read_checkpoint(path)
    assert document == json.loads(new_text)
    for snapshot in (document["snapshot"], whole):
        snapshot["taken_at"] = old["taken_at"]
    assert document == json.loads(old_text)
    assert whole == old
    assert TAKEN_AT.sub("", new_text) == TAKEN_AT.sub("", old_text)


def test_new_and_old_files_restore_alike(db, make_db, fresh_url, mixed_queue, tmp_path):
    with db.session_scope() as s:
        path = write_checkpoint(
            tmp_path, mixed_queue, queue_snapshot_stream(s, mixed_queue), now=T0
        )
        old_file = tmp_path / "old.json"
        old_file.write_text(_old_file_text(mixed_queue, _old_queue_snapshot(s, mixed_queue)))
        original = [(r.run_uuid, r.status) for r in queue_runs(s, mixed_queue)]
    restored = []
    for file in (path, old_file):
        target = make_db(fresh_url())
        with target.session_scope() as s:
            q = restore_snapshot(s, read_checkpoint(file)["snapshot"])
        with target.session_scope() as s:
            runs = queue_runs(s, q.id)
            restored.append(
                (
                    get_queue(s, q.id).status,
                    [(r.run_uuid, r.status) for r in runs],
                    [len(run_chosen(s, r.id)) for r in runs],
                )
            )
    assert restored[0] == restored[1]
    status, runs, chosen = restored[0]
    assert status == "paused"
    assert runs == [(u, "pending" if st_ == "running" else st_) for u, st_ in original]
    assert sum(chosen) == 15


def test_streaming_memory_does_not_grow_with_the_queue(db, tmp_path):
    """20,000 runs: building the snapshot whole takes tens of MB; streaming it to the file
    takes a small fraction of that (the page of rows read at a time)."""
    spec = GridSpec(
        model_types=["ridge", "lasso"],
        symbols=["EURUSD"],
        timeframes=["1h", "4h"],
        days_history=list(range(30, 80)),
        horizons=list(range(1, 101)),
    )
    with db.session_scope() as s:
        q = create_queue(s, spec, skip_trained=False)
    assert q.total_configs == 20_000

    def peak(step):
        tracemalloc.start()
        try:
            with db.session_scope() as s:
                result = step(s)
            return tracemalloc.get_traced_memory()[1], result
        finally:
            tracemalloc.stop()

    whole, snapshot = peak(lambda s: queue_snapshot(s, q.id))
    assert len(snapshot["runs"]) == 20_000
    del snapshot
    streamed, path = peak(
        lambda s: write_checkpoint(tmp_path, q.id, queue_snapshot_stream(s, q.id), now=T0)
    )
    assert path.stat().st_size > 10_000_000
    # Measured on SQLite: 46 MB whole, 3 MB streamed (pages of 500 runs).
    assert whole > 20e6, whole
    print(f"peak traced memory: {whole / 1e6:.1f} MB whole, {streamed / 1e6:.1f} MB streamed")
    assert streamed < whole / 5, (streamed, whole)


# ------------------------------------------------------------------- the writer itself


def _lists_to_iterators(value):
    if isinstance(value, dict):
        return {
            k: iter(v) if isinstance(v, list) else _lists_to_iterators(v) for k, v in value.items()
        }
    return value


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=25,
)


@settings(max_examples=200, deadline=None)
@given(document=st.dictionaries(st.text(), json_values, max_size=5))
def test_write_json_writes_what_json_dumps_writes(document):
    handle = io.StringIO()
    write_json(handle, _lists_to_iterators(document))
    assert handle.getvalue() == json.dumps(document, indent=2)


def test_an_iterator_that_fails_leaves_no_file(tmp_path):
    def runs():
        yield {"id": 1}
        raise StorageError("database gone")

    with pytest.raises(StorageError, match="^database gone$"):
        write_checkpoint(tmp_path, 1, {"runs": runs(), "bests": []}, now=T0)
    assert list(tmp_path.iterdir()) == []


def test_an_unserialisable_run_leaves_no_file(tmp_path):
    message = (
        "checkpoint of queue 1: snapshot is not JSON-serialisable: "
        "Object of type object is not JSON serializable"
    )
    with pytest.raises(StorageError, match=f"^{re.escape(message)}$"):
        write_checkpoint(tmp_path, 1, {"runs": iter([{"id": 1}, {"x": object()}])}, now=T0)
    assert list(tmp_path.iterdir()) == []


def test_a_runner_that_loses_its_queue_writes_no_checkpoint(tmp_path):
    claim = SimpleNamespace(lost=threading.Event())

    def runs():
        yield {"id": 1}
        claim.lost.set()  # the heartbeat found the queue taken over meanwhile
        yield {"id": 2}

    with pytest.raises(runner._Lost):
        write_checkpoint(tmp_path, 1, {"runs": runner._while_owned(runs(), claim)}, now=T0)
    assert list(tmp_path.iterdir()) == []
    # Lost after the last run: still nothing.
    claim.lost.clear()

    def then_lost():
        yield {"id": 1}
        claim.lost.set()

    with pytest.raises(runner._Lost):
        write_checkpoint(tmp_path, 1, {"runs": runner._while_owned(then_lost(), claim)}, now=T0)
    assert list(tmp_path.iterdir()) == []
