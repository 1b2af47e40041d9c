"""Queue creation from a grid: the size limit, and streaming (chunked hashing, lookup and
inserts giving exactly the rows the one-shot creation gave)."""

from __future__ import annotations

import hashlib
import re

import pytest
from sqlalchemy import func, select, update

from forexgrid.config import load_config
from forexgrid.exceptions import ConfigError, ForexgridError, GridSizeError
from forexgrid.grid import DEFAULT_MAX_GRID_SIZE, GridSpec, config_hash
from forexgrid.storage.queues import create_queue
from forexgrid.storage.runs import queue_runs
from forexgrid.storage.tables import TrainingQueue, TrainingRun

FINGERPRINTS = {
    (symbol, timeframe): {
        "first": "2017-01-02T00:00:00+00:00",
        "last": f"2017-12-29T{hour}:00:00+00:00",
        "bars": bars,
    }
    for symbol in ("EURUSD", "GBPUSD", "USDJPY")
    for timeframe, hour, bars in (("1h", "23", 6225), ("4h", "20", 1560))
}

# Grids and the rows commit 3d9e227 (one-shot creation) wrote for them with FINGERPRINTS and
# no settings, skip_trained=False: the number of runs and the SHA-256 of
# "queue_index config_hash" lines in queue_index order.
BEFORE_STREAMING = {
    "duplicates": (
        dict(
            model_types=["ridge", "Ridge", "lasso"],
            symbols=["EURUSD", "eurusd", "GBPUSD"],
            timeframes=["1h", "H1", "4h"],
            days_history=[30, 30, 60],
            horizons=[1, 3, 1],
            encoders=["time_delta", "normalized", "TIME_DELTA"],
            indicator_timeframes=[[], ["4h"], ["1d", "4h"], ["4h", "1d"]],
            hyperparameters={"ridge": {"alpha": [0.5, 2.0, 0.5]}},
        ),
        240,
        "be16dcd91a0a7d2cd424c64734d93ec204a731ff90268609bd7cfcb3f328ba75",
    ),
    "hyperparameters": (
        dict(
            model_types=["elasticnet", "ridge", "linear_regression"],
            symbols=["USDJPY"],
            timeframes=["4h", "1h"],
            days_history=[90, 60],
            horizons=[2],
            hyperparameters={
                "elasticnet": {"alpha": [1e-5, 2e-5], "l1_ratio": [0.2, 0.5], "max_iter": 3000},
                "ridge": {"alpha": [1, 1.0, 2]},
            },
        ),
        32,
        "10c4640c74b55e8cf24eea972f5a726ea9e305c4cbaa52313ecd699ac32e0a78",
    ),
}


def _rows_digest(runs) -> str:
    return hashlib.sha256(
        "\n".join(f"{r.queue_index} {r.config_hash}" for r in runs).encode()
    ).hexdigest()


def _mark_completed(session, run_ids) -> None:
    session.execute(
        update(TrainingRun).where(TrainingRun.id.in_(list(run_ids))).values(status="completed")
    )


def _queue_count(session) -> int:
    return session.scalar(select(func.count()).select_from(TrainingQueue))


# ----------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("chunk_size", [1, 3, 2000], ids=["chunk1", "chunk3", "chunk2000"])
@pytest.mark.parametrize("name", list(BEFORE_STREAMING))
def test_chunked_creation_writes_the_rows_of_the_one_shot_creation(session, name, chunk_size):
    kwargs, size, digest = BEFORE_STREAMING[name]
    spec = GridSpec(**kwargs)
    q = create_queue(
        session, spec, skip_trained=False, fingerprints=FINGERPRINTS, chunk_size=chunk_size
    )
    runs = queue_runs(session, q.id)
    assert (q.total, q.skipped, len(runs)) == (size, 0, size)
    assert _rows_digest(runs) == digest
    for run, tc in zip(runs, spec, strict=True):
        fingerprint = FINGERPRINTS[tc.symbol, tc.timeframe]
        assert run.config == tc and run.config_json == tc.to_dict()
        assert run.config_hash == config_hash(tc, None, fingerprint)
        assert run.data_fingerprint == fingerprint
        assert (run.model_type, run.symbol, run.timeframe, run.encoder) == (
            tc.model_type,
            tc.symbol,
            tc.timeframe,
            tc.encoder,
        )
        assert (run.status, run.is_model_kept, run.best_regimes) == ("pending", False, ())
    assert len({r.run_uuid for r in runs}) == size


def test_settings_are_hashed_as_config_hash_does(session):
    settings = load_config(None)
    spec = GridSpec(**BEFORE_STREAMING["hyperparameters"][0])
    q = create_queue(session, spec, settings=settings, fingerprints=FINGERPRINTS, chunk_size=5)
    assert [r.config_hash for r in queue_runs(session, q.id)] == [
        config_hash(tc, settings, FINGERPRINTS[tc.symbol, tc.timeframe]) for tc in spec
    ]


def test_skip_trained_across_chunk_boundaries(db):
    spec = GridSpec(**BEFORE_STREAMING["hyperparameters"][0])
    # Completed runs at both ends of chunks of 3 (0-2, 3-5, ...), a whole chunk (9-11) and
    # the last configuration; one failed run, which is not "already trained".
    trained = {0, 2, 3, 9, 10, 11, 16, 31}
    with db.session_scope() as s:
        first = queue_runs(s, create_queue(s, spec, fingerprints=FINGERPRINTS).id)
        _mark_completed(s, [r.id for r in first if r.queue_index in trained])
        s.execute(update(TrainingRun).where(TrainingRun.id == first[5].id).values(status="failed"))
    expected = [r.config_hash for r in first if r.queue_index not in trained]
    for chunk_size in (3, 1, 1000):
        with db.session_scope() as s:
            q = create_queue(s, spec, fingerprints=FINGERPRINTS, chunk_size=chunk_size)
            runs = queue_runs(s, q.id)
        assert (q.total, q.skipped) == (32 - len(trained), len(trained)), chunk_size
        assert [r.config_hash for r in runs] == expected
        assert [r.queue_index for r in runs] == list(range(len(expected)))
        assert [r.config for r in runs] == [
            tc for tc, r in zip(spec, first, strict=True) if r.queue_index not in trained
        ]


def test_nothing_left_to_train_writes_nothing(session):
    spec = GridSpec(**BEFORE_STREAMING["hyperparameters"][0])
    first = create_queue(session, spec, chunk_size=7)
    _mark_completed(session, [r.id for r in queue_runs(session, first.id)])
    runs_before = session.scalar(select(func.count()).select_from(TrainingRun))
    message = (
        "No configurations to train after filtering: all 32 configurations of the grid (8 "
        "model variants (elasticnet 4, ridge 3, linear_regression 1) x 1 symbol x 2 "
        "timeframes x 2 days x 1 horizon = 32 configurations) are already trained"
    )
    with pytest.raises(ForexgridError, match=re.escape(message)):
        create_queue(session, spec, chunk_size=7)
    # Raised in the caller's open transaction, which stays usable and unchanged.
    assert _queue_count(session) == 1
    assert session.scalar(select(func.count()).select_from(TrainingRun)) == runs_before


@pytest.mark.parametrize("bad", [0, -3, 2.0, True])
def test_chunk_size_must_be_a_positive_integer(session, bad):
    spec = GridSpec(**BEFORE_STREAMING["hyperparameters"][0])
    with pytest.raises(
        ConfigError, match=re.escape(f"chunk_size must be an integer >= 1, got {bad!r}")
    ):
        create_queue(session, spec, chunk_size=bad)


# ----------------------------------------------------------------------------- the limit


def test_the_limit_comes_from_the_argument_the_settings_or_the_default(session):
    spec = GridSpec(**BEFORE_STREAMING["hyperparameters"][0])  # 32 configurations
    arithmetic = (
        "grid has 8 model variants (elasticnet 4, ridge 3, linear_regression 1) x 1 symbol x "
        "2 timeframes x 2 days x 1 horizon = 32 configurations; execution.max_grid_size is "
        "31: shrink the grid or raise the limit"
    )
    with pytest.raises(GridSizeError, match=f"^{re.escape(arithmetic)}$"):
        create_queue(session, spec, max_grid_size=31)
    small = load_config({"execution": {"max_grid_size": 31}})
    with pytest.raises(GridSizeError, match=f"^{re.escape(arithmetic)}$"):
        create_queue(session, spec, settings=small)
    assert _queue_count(session) == 0
    assert create_queue(session, spec, settings=small, max_grid_size=32).total == 32
    assert create_queue(session, spec, skip_trained=False).total == 32  # default 100,000


def test_the_default_limit_applies_without_settings(session):
    spec = GridSpec(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h"],
        days_history=range(1, 1001),
        horizons=range(1, 102),
    )
    assert len(spec) == 101_000 > DEFAULT_MAX_GRID_SIZE
    with pytest.raises(GridSizeError, match=re.escape("execution.max_grid_size is 100,000")):
        create_queue(session, spec)
    assert _queue_count(session) == 0
