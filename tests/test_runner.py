"""The queue runner: ordering, keep/delete, progress, control from other processes, backends."""

from __future__ import annotations

import pandas as pd
import pytest
from runner_support import (
    FAST_GRID,
    SLOW_GRID,
    assert_consistent,
    make_workspace,
    new_queue,
    queue,
    runs,
    start_child,
    wait_for,
)

from forexgrid import runner, storage
from forexgrid.data import synthetic_bars
from forexgrid.data.store import DataStore
from forexgrid.exceptions import ForexgridError, StorageError
from forexgrid.grid import GridSpec
from forexgrid.runner import create_queue, run_queue, sample_message


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    for name in ("FOREXGRID_DATABASE_URL", "FOREXGRID_WORKSPACE", "FOREXGRID_CONFIG"):
        monkeypatch.delenv(name, raising=False)
    return make_workspace(tmp_path / "ws")


def kept_by_index(settings, queue_id):
    return [
        (r.queue_index, r.is_model_kept, tuple(sorted(r.best_regimes)))
        for r in runs(settings, queue_id)
    ]


def test_serial_run_completes_with_the_guides_status_lines(workspace, monkeypatch):
    _, settings = workspace
    # Checkpoints every 2 configurations exactly: no spacing by the last one's duration
    # (which depends on the machine's speed; its own test covers it).
    monkeypatch.setattr(runner, "CHECKPOINT_COST_RATIO", 0.0)
    queue_id = new_queue(settings, FAST_GRID)
    events = []
    final = run_queue(queue_id, settings, progress=events.append)

    assert final.status == "completed"
    assert final.completed_count == 8 and final.failed_count == 0
    assert final.kept_count + final.deleted_count == 8
    messages = [e.message for e in events]
    assert messages[0] == "Starting training queue..."
    assert "Training model 1/8..." in messages and "Training model 8/8..." in messages
    assert messages[-1] == "Training completed!"
    assert messages.count("Checkpoint saved") == 4  # every 2 configurations
    # Nothing is imported: the bundled sample is said on screen, once.
    assert [e.message for e in events if e.kind == "sample"] == [sample_message("EURUSD")]
    assert sample_message("EURUSD") == (
        "EURUSD: no data imported; training on the bundled EURUSD sample (1h bars); import "
        "your own with: forexgrid data import FILE --symbol EURUSD"
    )
    outcomes = [e for e in events if e.kind in ("kept", "deleted")]
    assert len(outcomes) == 8
    for event in outcomes:
        if event.kind == "kept":
            expected = f"Model kept (improves: {', '.join(event.improved_regimes)})"
            if event.superseded:
                runs_ = "runs" if len(event.superseded) > 1 else "run"
                expected += f" (supersedes {runs_} {', '.join(map(str, event.superseded))})"
            assert event.message == expected
        else:
            assert event.message == "Model deleted (no regime improvements)"
    assert events[-1].done == 8 and events[-1].fraction == 1.0
    assert_consistent(settings, queue_id)


def test_kept_lines_minus_superseded_ones_equal_the_queues_kept_models(workspace):
    # One place per list (the default); on these synthetic bars the fourth model (elasticnet
    # 60 days) pushes the second (linear_regression 60 days) out of its only list.
    root, settings = workspace
    bars, _ = synthetic_bars(n=6000, seed=1)
    bars.to_csv(root.parent / "gbpusd.csv")
    DataStore.from_settings(settings).import_file(root.parent / "gbpusd.csv", "GBPUSD")
    grid = {
        **FAST_GRID,
        "model_types": ["linear_regression", "elasticnet"],
        "symbols": ["GBPUSD"],
        "horizons": [3],
    }
    queue_id = new_queue(settings, grid)
    events = []
    final = run_queue(queue_id, settings, progress=events.append)

    kept = [e for e in events if e.kind == "kept"]
    superseded = [e for e in events if e.kind == "superseded"]
    assert superseded, "the grid should make a later model supersede an earlier one"
    assert len(kept) - len(superseded) == final.kept_count
    assert events[-1].superseded_in_queue == len(superseded)
    by_newcomer = {e.run_id: e for e in kept}
    for event in superseded:
        newcomer = by_newcomer[event.by_run_id]
        assert event.run_id in newcomer.superseded
        assert "(supersedes run" in newcomer.message and str(event.run_id) in newcomer.message
        assert event.message == f"Run {event.run_id}'s model deleted: pushed out by run " + str(
            event.by_run_id
        )
    with storage.session_scope(settings) as session:
        outcomes = storage.history.queue_model_outcomes(session, queue_id)
    assert outcomes == {
        "kept": final.kept_count,
        "kept_then_deleted": len(superseded),
        "never_kept": final.deleted_count - len(superseded),
    }


def test_the_first_model_is_kept_where_it_has_eligible_regimes(workspace):
    _, settings = workspace
    queue_id = new_queue(
        settings, {**FAST_GRID, "model_types": ["ridge"], "days_history": [60], "horizons": [3]}
    )
    run_queue(queue_id, settings)
    (run,) = runs(settings, queue_id)
    with storage.session_scope(settings) as session:
        chosen = storage.runs.run_chosen(session, run.id)
    # An empty list takes any eligible combination whose validation Sharpe is at least
    # selection.min_score (0); "all" has its own list like any regime.
    entered = chosen.loc[
        (chosen["reason"] != "insufficient trades")
        & (chosen["val_sharpe"] >= settings.selection.min_score),
        "regime",
    ]
    eligible = set(entered)
    assert set(run.best_regimes) == {r for r in eligible}
    assert run.is_model_kept == bool(eligible)


def test_a_failing_configuration_is_recorded_and_the_queue_goes_on(workspace):
    _, settings = workspace
    # 600 days of history do not exist in the 2017 sample: that configuration fails.
    spec = GridSpec(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h"],
        days_history=[60, 600],
        horizons=[3],
    )
    queue_id = create_queue(spec, settings, skip_trained=False).id
    events = []
    final = run_queue(queue_id, settings, progress=events.append)
    assert final.status == "completed"
    assert final.completed_count == 1 and final.failed_count == 1
    failed = [r for r in runs(settings, queue_id) if r.status == "failed"]
    assert len(failed) == 1 and "DataError" in failed[0].error and "need" in failed[0].error
    assert [e.kind for e in events].count("failed") == 1


def test_skip_trained_filters_and_an_empty_queue_is_refused(workspace):
    _, settings = workspace
    spec = GridSpec(**{**FAST_GRID, "model_types": ["ridge"], "horizons": [3]})
    first = create_queue(spec, settings)
    run_queue(first.id, settings)
    with pytest.raises(ForexgridError, match="^No configurations to train after filtering"):
        create_queue(spec, settings)
    bigger = GridSpec(**{**FAST_GRID, "model_types": ["ridge"], "horizons": [1, 3]})
    second = create_queue(bigger, settings)
    assert second.total_configs == 2 and second.skipped_count == 2


def test_a_finished_queue_cannot_be_run_again(workspace):
    _, settings = workspace
    queue_id = new_queue(
        settings, {**FAST_GRID, "model_types": ["ridge"], "days_history": [60], "horizons": [1]}
    )
    run_queue(queue_id, settings)
    with pytest.raises(StorageError, match="completed"):
        run_queue(queue_id, settings)


def test_deleted_models_leave_no_file_and_history_stays_complete(workspace):
    _, settings = workspace
    queue_id = new_queue(settings, FAST_GRID)
    run_queue(queue_id, settings)
    all_runs = runs(settings, queue_id)
    assert len(all_runs) == 8  # rows are never deleted
    for run in all_runs:
        on_disk = run.model_file_path and (settings.artifacts_path / run.model_file_path).exists()
        assert bool(on_disk) == run.is_model_kept


def test_keeping_every_model_when_deletion_is_off(tmp_path):
    _, settings = make_workspace(
        tmp_path / "ws", model_management={"delete_non_best_models": False}
    )
    queue_id = new_queue(settings, FAST_GRID)
    run_queue(queue_id, settings)
    assert all(
        (settings.artifacts_path / r.model_file_path).exists() for r in runs(settings, queue_id)
    )


@pytest.mark.slow
def test_parallel_and_serial_runs_keep_the_same_models(tmp_path):
    _, serial = make_workspace(tmp_path / "serial")
    _, parallel = make_workspace(tmp_path / "parallel", execution={"workers": 2})
    a = new_queue(serial, FAST_GRID)
    b = new_queue(parallel, FAST_GRID)
    run_queue(a, serial)
    run_queue(b, parallel)
    assert kept_by_index(serial, a) == kept_by_index(parallel, b)
    assert_consistent(parallel, b)
    # The statistics too, the PBO included (2 workers: computed on 2 threads).
    scopes = []
    for settings in (serial, parallel):
        with storage.session_scope(settings) as session:
            scopes.append(storage.trials.scope_table(session).drop(columns="pbo_computed_at"))
    assert scopes[0]["pbo"].notna().all()
    pd.testing.assert_frame_equal(scopes[0], scopes[1], check_exact=True)


@pytest.mark.slow
def test_dask_backend_on_a_local_cluster_decides_like_the_local_one(tmp_path):
    import distributed  # the distributed extra, which make test installs

    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        _, on_dask = make_workspace(
            tmp_path / "dask",
            execution={"backend": "dask", "scheduler_address": cluster.scheduler_address},
        )
        _, local = make_workspace(tmp_path / "local")
        grid = {**FAST_GRID, "model_types": ["ridge"]}
        a, b = new_queue(on_dask, grid), new_queue(local, grid)
        run_queue(a, on_dask)
        run_queue(b, local)
    assert kept_by_index(on_dask, a) == kept_by_index(local, b)
    assert_consistent(on_dask, a)


@pytest.mark.slow
@pytest.mark.parametrize("action", ["pause", "cancel"])
def test_pause_and_cancel_from_another_process_wait_for_the_run_in_flight(workspace, action):
    config, settings = workspace
    queue_id = new_queue(settings, SLOW_GRID)
    child = start_child(config, settings.workspace, queue_id)
    try:
        wait_for(lambda: any(r.status == "completed" for r in runs(settings, queue_id)))
        wait_for(lambda: any(r.status == "running" for r in runs(settings, queue_id)))
        with storage.session_scope(settings) as session:
            storage.queue_control.request_action(session, queue_id, action)
        out, err = child.communicate(timeout=120)
    finally:
        child.kill()
    assert child.returncode == 0, err
    expected = "paused" if action == "pause" else "cancelled"
    assert out.strip() == expected
    statuses = [r.status for r in runs(settings, queue_id)]
    assert "running" not in statuses  # the run in flight finished before the runner stopped
    done = statuses.count("completed")
    assert 2 <= done < len(statuses)
    assert queue(settings, queue_id).status == expected
    assert list(settings.checkpoints_path.glob(f"queue_{queue_id}_checkpoint_*.json"))
    if action == "pause":
        final = run_queue(queue_id, settings)
        assert final.status == "completed"
        assert_consistent(settings, queue_id)
    else:
        with pytest.raises(StorageError):
            run_queue(queue_id, settings)


@pytest.mark.slow
def test_two_processes_resuming_one_queue_one_runs_the_other_is_refused(workspace):
    config, settings = workspace
    queue_id = new_queue(settings, SLOW_GRID)
    first = start_child(config, settings.workspace, queue_id)
    try:
        wait_for(lambda: queue(settings, queue_id).status == "running")
        second = start_child(config, settings.workspace, queue_id)
        out2, err2 = second.communicate(timeout=120)
        out1, err1 = first.communicate(timeout=300)
    finally:
        first.kill()
    assert second.returncode == 1
    assert err2.strip().splitlines()[-1].startswith(f"error: queue {queue_id} is already running")
    assert first.returncode == 0, err1
    assert out1.strip() == "completed"
    assert_consistent(settings, queue_id)


# ---------------------------------------------------------------- trials and grid scores


def test_every_run_adds_its_trials_to_the_scopes_and_the_lists_compare_like_with_like(
    workspace,
):
    """The additive statistics of each scope equal those rebuilt from the stored trials, and
    after the queue every list entry's DSR is the one against every trial of its scope
    (incumbents were rescored as trials accumulated, not left with the DSR they entered
    with); PBO is computed for each scope when the queue stops."""
    import numpy as np

    from forexgrid.core.pbo import probability_of_backtest_overfitting
    from forexgrid.core.selection import deflated_score
    from forexgrid.core.trials import TrialStats

    _, settings = workspace
    events = []
    queue_id = new_queue(settings, FAST_GRID)
    run_queue(queue_id, settings, progress=events.append)
    with storage.session_scope(settings) as session:
        scopes = storage.trials.scope_table(session)
        assert set(scopes["regime"]) == {
            "all",
            "bull_trending",
            "bear_trending",
            "volatile_ranging",
            "calm_ranging",
        }
        assert (scopes["n_runs"] == 8).all()
        assert len({(r.validation_start, r.validation_end) for r in scopes.itertuples()}) == 1
        for row in scopes.itertuples():
            key = storage.trials.ScopeKey(
                row.symbol, row.regime, row.rules_version, row.validation_start, row.validation_end
            )
            returns, owners = storage.trials.scope_returns(session, key)
            assert returns.dtype == np.float32 and len(set(owners)) == 8
            rebuilt = TrialStats.from_returns(returns)
            (stored,) = storage.trials.load_scope_stats(session, [key], returns.shape[0]).values()
            assert stored.n_trials == rebuilt.n_trials == row.n_trials
            np.testing.assert_allclose(stored.gram, rebuilt.gram, rtol=1e-9, atol=1e-9)
            assert stored.sharpe_sum == pytest.approx(rebuilt.sharpe_sum)
            # The PBO stored when the queue stopped is the one of every trial stored, from
            # scratch.
            traded = returns[:, TrialStats.empty(returns.shape[0]).counts(returns)]
            scratch = probability_of_backtest_overfitting(traded, settings.selection.pbo_blocks)
            assert 0.0 <= row.pbo <= 1.0 and row.pbo_computed_at is not None
            assert row.pbo == scratch.pbo and row.pbo_trials == scratch.n_trials
            assert row.pbo_blocks == scratch.n_blocks
            window = (row.validation_start, row.validation_end)
            for entry in storage.bests.load_bests(session, window=window).get(
                (row.symbol, row.regime), ()
            ):
                dsr, z = deflated_score(entry.daily, rebuilt)
                assert entry.dsr == pytest.approx(dsr, rel=1e-9)
                assert entry.score == pytest.approx(z, rel=1e-9)  # deflated_sharpe ranks by z
                assert entry.rules_version == row.rules_version
    assert any(
        e.kind == "pbo" and "Probability of backtest overfitting" in e.message for e in events
    )


def test_val_sharpe_scoring_ranks_by_the_validation_sharpe(workspace):
    _, settings = workspace
    settings = settings.model_copy(
        update={"selection": settings.selection.model_copy(update={"score": "val_sharpe"})}
    )
    queue_id = new_queue(settings, FAST_GRID)
    run_queue(queue_id, settings)
    with storage.session_scope(settings) as session:
        (window,) = {w for _, w in storage.bests.best_windows(session)}
        lists = storage.bests.load_bests(session, window=window)
    assert lists
    for entries in lists.values():
        for entry in entries:
            assert entry.score == entry.val_sharpe and 0.0 <= entry.dsr <= 1.0
    assert_consistent(settings, queue_id)


def test_min_dsr_keeps_only_models_that_pass_it(workspace):
    _, settings = workspace
    settings = settings.model_copy(
        update={"selection": settings.selection.model_copy(update={"min_dsr": 0.9})}
    )
    queue_id = new_queue(settings, FAST_GRID)
    run_queue(queue_id, settings)
    with storage.session_scope(settings) as session:
        windows = {w for _, w in storage.bests.best_windows(session)}
        entries = [
            e
            for w in windows
            for lst in storage.bests.load_bests(session, window=w).values()
            for e in lst
        ]
    # Each entry passed the gate against the trials when it entered; later trials may lower
    # its DSR, but never below what the scope's statistics now give it.
    assert all(e.dsr >= 0.0 for e in entries)
    assert_consistent(settings, queue_id)


def test_a_list_scored_under_edited_rules_is_restarted_by_the_next_run(workspace):
    """Rules edited without rescoring: the next run (scored under the new rules) does not
    rank against entries scored under the old ones; they leave the list, and a model listed
    nowhere else loses its file."""
    _, settings = workspace
    first = new_queue(settings, {**FAST_GRID, "model_types": ["ridge"]})
    run_queue(first, settings)
    with storage.session_scope(settings) as session:
        storage.regimes_repo.edit_regime(
            session, "bull_trending", rules={"trend_strength": "> 0.6"}
        )
        versions = storage.regimes_repo.current_rules_versions(session, dict(settings.regimes))
    second = new_queue(settings, {**FAST_GRID, "model_types": ["lasso"]})
    run_queue(second, settings)
    with storage.session_scope(settings) as session:
        (window,) = {w for _, w in storage.bests.best_windows(session)}
        bull = storage.bests.load_bests(session, window=window).get(
            ("EURUSD", "bull_trending"), []
        )
    assert all(e.rules_version == versions["bull_trending"] for e in bull)
    assert {e.run_id for e in bull} <= {r.id for r in runs(settings, second)}
    assert_consistent(settings, first, second)


def test_a_slow_checkpoint_is_written_less_often(tmp_path, monkeypatch):
    """Checkpoints take about a tenth of the runner's time at most: a snapshot that takes a
    second (a large queue's) is not written after every configuration."""
    import time

    from forexgrid import runner

    _, settings = make_workspace(tmp_path / "ws", queue={"auto_checkpoint_interval": 1})
    queue_id = new_queue(settings, FAST_GRID)  # 8 configurations, well under a second each
    write = runner.checkpoints.write_checkpoint

    def slow_write(*args, **kwargs):
        time.sleep(1.0)
        return write(*args, **kwargs)

    monkeypatch.setattr(runner.checkpoints, "write_checkpoint", slow_write)
    events = []
    assert run_queue(queue_id, settings, progress=events.append).status == "completed"
    written = [e for e in events if e.kind == "checkpoint"]
    # Every configuration would write one (8); after the first, the next waits 9 s.
    assert 1 <= len(written) <= 3, [e.message for e in events]


def test_pending_runs_are_read_a_page_at_a_time(tmp_path, monkeypatch):
    """A large queue's pending runs are not read all at once: with pages of 3, the 8
    configurations are still trained once each, in queue order."""
    from forexgrid import runner

    monkeypatch.setattr(runner, "PENDING_PAGE", 3)
    _, settings = make_workspace(tmp_path / "ws")
    queue_id = new_queue(settings, FAST_GRID)
    reads = []
    read = storage.runs.pending_runs

    def counted(*args, **kwargs):
        page = read(*args, **kwargs)
        reads.append([r.queue_index for r in page])
        return page

    monkeypatch.setattr(storage.runs, "pending_runs", counted)
    events = []
    assert run_queue(queue_id, settings, progress=events.append).status == "completed"
    assert reads == [[0, 1, 2], [3, 4, 5], [6, 7]]
    started = [e.index for e in events if e.kind == "training"]
    assert started == list(range(1, 9))
    assert_consistent(settings, queue_id)
