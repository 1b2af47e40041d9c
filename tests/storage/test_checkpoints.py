"""Tests of forexgrid.storage.checkpoints: versioned, atomic queue checkpoints."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forexgrid.exceptions import ConfigError, StorageError
from forexgrid.storage import checkpoints
from forexgrid.storage.checkpoints import (
    CHECKPOINT_VERSION,
    checkpoint_name,
    cleanup_checkpoints,
    latest_checkpoint,
    list_checkpoints,
    read_checkpoint,
    write_checkpoint,
)

UTC = dt.timezone.utc
T0 = dt.datetime(2017, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
SNAPSHOT = {"queue": {"name": "night", "current_index": 7}, "runs": [{"id": 1, "kept": True}]}


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------- write


def test_write_names_and_content(tmp_path) -> None:
    path = write_checkpoint(tmp_path / "cp", 3, SNAPSHOT, now=T0)
    assert path == tmp_path / "cp" / "queue_3_checkpoint_20170102_030405.json"
    text = path.read_text("utf-8")
    assert text.endswith("}\n")
    assert json.loads(text) == {
        "version": 1,
        "written_at": "2017-01-02T03:04:05.678901+00:00",
        "queue_id": 3,
        "snapshot": SNAPSHOT,
    }
    assert read_checkpoint(path) == json.loads(text)
    assert names(tmp_path / "cp") == [path.name]  # no temporary file left
    assert CHECKPOINT_VERSION == 1


@pytest.mark.parametrize(
    "now",
    [
        dt.datetime(2017, 1, 2, 5, 4, 5, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        dt.datetime(2017, 1, 2, 3, 4, 5),
    ],
    ids=["plus-2h", "naive-is-utc"],
)
def test_name_uses_utc(tmp_path, now) -> None:
    path = write_checkpoint(tmp_path, 1, {}, now=now)
    assert path.name == "queue_1_checkpoint_20170102_030405.json"
    assert read_checkpoint(path)["written_at"] == "2017-01-02T03:04:05+00:00"


def test_same_second_gets_a_suffix_and_latest_follows_it(tmp_path) -> None:
    paths = [write_checkpoint(tmp_path, 4, {"n": n}, now=T0) for n in range(11)]
    stem = "queue_4_checkpoint_20170102_030405"
    assert [p.name for p in paths[:3]] == [f"{stem}.json", f"{stem}_2.json", f"{stem}_3.json"]
    assert paths[-1].name == f"{stem}_11.json"
    assert list_checkpoints(tmp_path, 4) == paths  # _11 after _9: numeric order
    assert latest_checkpoint(tmp_path, 4) == paths[-1]
    assert read_checkpoint(paths[-1])["snapshot"] == {"n": 10}


def test_checkpoint_name() -> None:
    assert checkpoint_name(12, T0) == "queue_12_checkpoint_20170102_030405.json"
    assert checkpoint_name(12, T0, seq=2) == "queue_12_checkpoint_20170102_030405_2.json"


def test_numpy_datetime_path_and_nan_values_round_trip(tmp_path) -> None:
    snapshot = {
        "sharpe": np.float64(1.5),
        "trades": np.int64(3),
        "weights": np.array([0.25, 0.75]),
        "started": dt.datetime(2017, 1, 1, tzinfo=UTC),
        "file": Path("model_x.pkl"),
        "dsr": math.nan,
    }
    back = read_checkpoint(write_checkpoint(tmp_path, 1, snapshot, now=T0))["snapshot"]
    assert back["sharpe"] == 1.5 and back["trades"] == 3 and back["weights"] == [0.25, 0.75]
    assert back["started"] == "2017-01-01T00:00:00+00:00" and back["file"] == "model_x.pkl"
    assert math.isnan(back["dsr"])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=40, deadline=None)
@given(snapshot=st.dictionaries(st.text(), json_values, max_size=5))
def test_json_snapshots_round_trip(tmp_path_factory, snapshot) -> None:
    folder = tmp_path_factory.mktemp("cp")
    path = write_checkpoint(folder, 0, snapshot, now=T0)
    assert read_checkpoint(path)["snapshot"] == snapshot


@pytest.mark.parametrize(
    ("queue_id", "snapshot", "message"),
    [
        (-1, {}, "checkpoint queue_id must be an integer >= 0, got -1"),
        ("3", {}, "checkpoint queue_id must be an integer >= 0, got '3'"),
        (True, {}, "checkpoint queue_id must be an integer >= 0, got True"),
        (3, [1], "checkpoint of queue 3: snapshot must be a dict, got list"),
        (
            3,
            {"x": object()},
            "checkpoint of queue 3: snapshot is not JSON-serialisable: "
            "Object of type object is not JSON serializable",
        ),
    ],
    ids=["negative-id", "str-id", "bool-id", "list", "object"],
)
def test_write_refuses_bad_input(tmp_path, queue_id, snapshot, message) -> None:
    with pytest.raises(StorageError, match=re.escape(message)):
        write_checkpoint(tmp_path, queue_id, snapshot, now=T0)
    assert names(tmp_path) == []


def test_unwritable_folder(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    message = f"checkpoint of queue 1: {blocker}: is a regular file, not a directory"
    with pytest.raises(StorageError, match=f"^{re.escape(message)}$"):
        write_checkpoint(blocker, 1, {}, now=T0)


def test_interrupted_write_leaves_the_previous_checkpoint(tmp_path, monkeypatch) -> None:
    first = write_checkpoint(tmp_path, 2, {"n": 1}, now=T0)

    def crash(src, dst):
        raise OSError("simulated crash before the rename")

    monkeypatch.setattr(os, "replace", crash)
    later = T0 + dt.timedelta(minutes=5)
    with pytest.raises(StorageError, match="simulated crash before the rename"):
        write_checkpoint(tmp_path, 2, {"n": 2}, now=later)
    assert names(tmp_path) == [first.name]  # neither a partial file nor a temporary one
    assert latest_checkpoint(tmp_path, 2) == first
    assert read_checkpoint(first)["snapshot"] == {"n": 1}


# -------------------------------------------------------------------------------- read


def _write_raw(folder: Path, content: str | bytes) -> Path:
    path = folder / "queue_1_checkpoint_20170102_030405.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, "utf-8")
    return path


def _doc(**changes) -> str:
    document = {"version": 1, "written_at": T0.isoformat(), "queue_id": 1, "snapshot": {}}
    document.update(changes)
    return json.dumps({k: v for k, v in document.items() if v is not ...})


EXPECTED = "this forexgrid reads checkpoint version 1"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (
            '{"version": 1,',
            "not valid JSON: Expecting property name enclosed in double quotes "
            "at line 1 column 15",
        ),
        ("[1, 2]", "expected a JSON object, got list"),
        (_doc(version=...), f"no 'version' key; {EXPECTED}"),
        (
            _doc(version=2),
            f"version 2 is not supported (written by a newer forexgrid; "
            f"upgrade forexgrid to read it); {EXPECTED}",
        ),
        (
            _doc(version=0),
            f"version 0 is not supported (written by an older forexgrid); {EXPECTED}",
        ),
        (_doc(version="1"), f"version must be an integer, got '1'; {EXPECTED}"),
        (_doc(version=True), f"version must be an integer, got True; {EXPECTED}"),
        (_doc(snapshot=...), "missing key 'snapshot'"),
        (_doc(queue_id=...), "missing key 'queue_id'"),
        (_doc(snapshot=[]), "'snapshot' must be an object, got list"),
        (b"\xff\xfe{}", "cannot be read: 'utf-8' codec can't decode byte 0xff"),
    ],
    ids=[
        "truncated",
        "list",
        "no-version",
        "newer",
        "older",
        "str-version",
        "bool-version",
        "no-snapshot",
        "no-queue-id",
        "snapshot-list",
        "not-utf8",
    ],
)
def test_read_refuses_bad_files(tmp_path, content, problem) -> None:
    path = _write_raw(tmp_path, content)
    with pytest.raises(StorageError, match=re.escape(f"checkpoint {path}: {problem}")):
        read_checkpoint(path)


def test_a_checkpoints_folder_that_is_a_device_or_fifo_is_refused(tmp_path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for folder, kind in ((fifo, "a FIFO (named pipe)"), (Path("/dev/null"), "a character device")):
        message = f"checkpoint of queue 1: {folder}: is {kind}, not a directory"
        with pytest.raises(StorageError, match=f"^{re.escape(message)}$"):
            write_checkpoint(folder, 1, {}, now=T0)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode) and stat.S_ISCHR(os.lstat("/dev/null").st_mode)


def test_a_checkpoint_file_that_is_a_fifo_is_refused_on_write_and_read(tmp_path) -> None:
    target = tmp_path / checkpoint_name(1, T0, 1)
    os.mkfifo(target)
    # The name is taken: the writer moves on to the next free one, the FIFO stays as it was.
    assert write_checkpoint(tmp_path, 1, {}, now=T0).name == checkpoint_name(1, T0, 2)
    with pytest.raises(StorageError, match=re.escape("is a FIFO (named pipe), not a regular")):
        read_checkpoint(target)  # never waits for a writer
    for device in ("/dev/zero", "/dev/null"):
        with pytest.raises(StorageError, match=re.escape("is a character device")):
            read_checkpoint(device)
    assert stat.S_ISFIFO(os.lstat(target).st_mode)


def test_read_missing_file(tmp_path) -> None:
    path = tmp_path / "queue_1_checkpoint_20170102_030405.json"
    with pytest.raises(StorageError, match=re.escape(f"checkpoint {path}: file not found")):
        read_checkpoint(path)


# --------------------------------------------------------------------- list and latest


def test_list_and_latest_ignore_other_files(tmp_path) -> None:
    a = write_checkpoint(tmp_path, 1, {}, now=T0)
    b = write_checkpoint(tmp_path, 2, {}, now=T0 + dt.timedelta(hours=1))
    c = write_checkpoint(tmp_path, 1, {}, now=T0 + dt.timedelta(days=1))
    for other in [
        "notes.txt",
        "queue_1_checkpoint_20171399_000000.json",  # not a date
        "queue_1_checkpoint_20170102_030405_1.json",  # seq 1 has no suffix
        "queue_01_checkpoint_20170102_030405.json",
        "queue_x_checkpoint_20170102_030405.json",
        ".queue_1_checkpoint_20180102_030405.json.0123abcd.tmp",
    ]:
        (tmp_path / other).write_text("{}")
    (tmp_path / "queue_1_checkpoint_20190102_030405.json").mkdir()  # a folder, not a file
    assert list_checkpoints(tmp_path) == [a, b, c]  # oldest first across queues
    assert list_checkpoints(tmp_path, 1) == [a, c]
    assert list_checkpoints(tmp_path, 2) == [b]
    assert latest_checkpoint(tmp_path, 1) == c
    assert latest_checkpoint(tmp_path, 2) == b
    assert latest_checkpoint(tmp_path, 3) is None
    assert latest_checkpoint(tmp_path / "missing", 1) is None
    assert list_checkpoints(tmp_path / "missing") == []


def test_latest_orders_by_name_not_mtime(tmp_path) -> None:
    old = write_checkpoint(tmp_path, 1, {}, now=T0)
    new = write_checkpoint(tmp_path, 1, {}, now=T0 + dt.timedelta(seconds=1))
    os.utime(old, (2e9, 2e9))  # touched later, e.g. restored from a backup
    assert latest_checkpoint(tmp_path, 1) == new


def test_latest_refuses_bad_queue_id(tmp_path) -> None:
    with pytest.raises(StorageError, match=re.escape("got 'a'")):
        latest_checkpoint(tmp_path, "a")


# ------------------------------------------------------------------------------ cleanup


def test_cleanup_by_name_age_keeps_each_queues_latest(tmp_path) -> None:
    now = dt.datetime(2017, 6, 1, tzinfo=UTC)

    def at(queue: int, days: float) -> Path:
        return write_checkpoint(tmp_path, queue, {}, now=now - dt.timedelta(days=days))

    q1_old, q1_older, q1_recent = at(1, 35), at(1, 40), at(1, 10)
    q2_only = at(2, 50)  # the latest of its queue: kept however old
    q3_old, q3_latest = at(3, 45), at(3, 31)
    os.utime(q1_recent, (0, 0))  # an ancient mtime changes nothing: the name's time counts
    assert cleanup_checkpoints(tmp_path, 30, now=now) == 3
    assert sorted(list_checkpoints(tmp_path)) == sorted([q1_recent, q2_only, q3_latest])
    assert not any(p.exists() for p in (q1_old, q1_older, q3_old))
    assert cleanup_checkpoints(tmp_path, 30, now=now) == 0
    assert cleanup_checkpoints(tmp_path / "missing", 30) == 0


def test_cleanup_zero_days_keeps_only_latest(tmp_path) -> None:
    paths = [write_checkpoint(tmp_path, 1, {}, now=T0) for _ in range(3)]
    assert cleanup_checkpoints(tmp_path, 0, now=T0 + dt.timedelta(seconds=1)) == 2
    assert list_checkpoints(tmp_path) == [paths[-1]]


@pytest.mark.parametrize("days", [-1, math.nan, math.inf, "30"], ids=["neg", "nan", "inf", "str"])
def test_cleanup_refuses_bad_days(tmp_path, days) -> None:
    message = f"cleanup_checkpoints: days_old must be a number >= 0, got {days!r}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        cleanup_checkpoints(tmp_path, days)


def test_public_names() -> None:
    assert set(checkpoints.__all__) == {
        "CHECKPOINT_VERSION",
        "checkpoint_name",
        "cleanup_checkpoints",
        "latest_checkpoint",
        "list_checkpoints",
        "read_checkpoint",
        "write_checkpoint",
    }
