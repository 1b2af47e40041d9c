"""Tests of forexgrid.storage.artifacts: model files saved atomically, verified before load."""

from __future__ import annotations

import gzip
import hashlib
import logging
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from forexgrid.config import load_config
from forexgrid.exceptions import ConfigError, StorageError
from forexgrid.storage.artifacts import ModelFile, ModelFileManager, ReconcileReport, Recorded

ROOT = Path(__file__).resolve().parents[2]
DAY = 86_400
UUID_A = "0b5c3f2e-4a1d-4c8e-9f00-aaaaaaaaaaaa"
UUID_B = "0b5c3f2e-4a1d-4c8e-9f00-bbbbbbbbbbbb"
UUID_C = "0b5c3f2e-4a1d-4c8e-9f00-cccccccccccc"


class TouchOnLoad:
    """Unpickling this creates a marker file: proof that a pickle was (not) loaded."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def manager(tmp_path: Path) -> ModelFileManager:
    return ModelFileManager(tmp_path / "artifacts")


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def backdate(path: Path, days: float) -> None:
    then = time.time() - days * DAY
    os.utime(path, (then, then))


def flip_byte(path: Path, index: int) -> None:
    data = bytearray(path.read_bytes())
    data[index] ^= 0x01
    path.write_bytes(bytes(data))


def model() -> dict:
    return {"weights": np.arange(6, dtype=np.float64).reshape(2, 3), "name": "m"}


# -------------------------------------------------------------------------------- save


def test_save_writes_protocol_5_pickle_and_records_hash_and_size(manager) -> None:
    saved = manager.save(model(), UUID_A)
    file = manager.artifacts_dir / f"model_{UUID_A}.pkl"
    data = file.read_bytes()
    assert saved == ModelFile(
        path=f"model_{UUID_A}.pkl",
        sha256=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
    )
    assert data[:2] == b"\x80\x05"  # PROTO 5
    assert names(manager.artifacts_dir) == [file.name]  # no temporary file left
    with pytest.raises(AttributeError):
        saved.path = "x"  # frozen: a recorded file is a value


def test_save_and_load_a_fitted_estimator(manager) -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    fitted = Ridge().fit(x, x @ [1.0, -2.0, 0.5])
    saved = manager.save(fitted, UUID_A)
    loaded = manager.load(saved.path, saved.sha256)
    np.testing.assert_array_equal(loaded.predict(x), fitted.predict(x))


def test_save_bytes_matches_save(manager) -> None:
    payload = pickle.dumps(model(), protocol=5)
    by_bytes = manager.save_bytes(payload, UUID_B)
    assert by_bytes.sha256 == hashlib.sha256(payload).hexdigest()
    assert by_bytes.size_bytes == len(payload)
    assert manager.absolute(by_bytes.path).read_bytes() == payload
    np.testing.assert_array_equal(
        manager.load(by_bytes.path, by_bytes.sha256)["weights"], model()["weights"]
    )


def test_save_replaces_the_file_of_the_same_run(manager) -> None:
    first = manager.save({"v": 1}, UUID_A)
    stale = manager.artifacts_dir / f"model_{UUID_A}.pkl.gz"
    stale.write_bytes(b"an earlier attempt, compressed")
    second = manager.save({"v": 2}, UUID_A)
    assert first.path == second.path and first.sha256 != second.sha256
    assert names(manager.artifacts_dir) == [f"model_{UUID_A}.pkl"]
    assert manager.load(second.path, second.sha256) == {"v": 2}


@pytest.mark.parametrize(
    "run_uuid",
    ["../evil", "", "a/b", ".hidden", "a b", 7],
    ids=["dotdot", "empty", "slash", "dot", "space", "int"],
)
def test_save_refuses_unsafe_run_uuid(manager, run_uuid) -> None:
    message = f"run_uuid must be letters, digits, '-' or '_' (a file-name part), got {run_uuid!r}"
    with pytest.raises(StorageError, match=re.escape(message)):
        manager.save({}, run_uuid)
    assert not manager.artifacts_dir.exists() or names(manager.artifacts_dir) == []


def test_unpicklable_model_leaves_nothing(manager) -> None:
    with pytest.raises(StorageError, match=re.escape(f"model of run {UUID_A}: cannot be pickled")):
        manager.save({"f": lambda x: x}, UUID_A)
    assert names(manager.artifacts_dir) == []


# -------------------------------------------------------------------------------- load


def test_tampered_file_is_refused_without_unpickling(manager, tmp_path) -> None:
    marker_c, marker_b = tmp_path / "marker_c", tmp_path / "marker_b"
    saved = manager.save(TouchOnLoad(marker_c), UUID_A)
    file = manager.absolute(saved.path)
    # Flip one bit of the marker's name ("c" ^ 1 == "b"): the pickle stays valid and would
    # now create marker_b, so only the hash check stands between the file and running it.
    data = file.read_bytes()
    flip_byte(file, data.index(b"marker_c") + len("marker_"))
    tampered = file.read_bytes()
    actual = hashlib.sha256(tampered).hexdigest()
    message = (
        f"model file {file}: SHA-256 mismatch: recorded {saved.sha256}, file has {actual}; "
        "the file is corrupt or was modified and was not loaded"
    )
    with pytest.raises(StorageError, match=re.escape(message)):
        manager.load(saved.path, saved.sha256)
    assert not marker_c.exists() and not marker_b.exists()
    assert manager.verify(saved.path, saved.sha256) is False
    # Control: the tampered bytes really would have run code when unpickled.
    pickle.loads(tampered)
    assert marker_b.exists() and not marker_c.exists()


def test_untampered_marker_pickle_does_run(manager, tmp_path) -> None:
    # The counterpart of the test above: with a matching hash, load unpickles.
    marker = tmp_path / "marker"
    saved = manager.save(TouchOnLoad(marker), UUID_A)
    manager.load(saved.path, saved.sha256)
    assert marker.exists()


@pytest.mark.parametrize("where", [0, 0.5, -1], ids=["first", "middle", "last"])
def test_any_flipped_byte_is_refused(manager, where) -> None:
    saved = manager.save(model(), UUID_A)
    file = manager.absolute(saved.path)
    flip_byte(file, int(where * saved.size_bytes) if where != -1 else -1)
    with pytest.raises(StorageError, match=re.escape(f"recorded {saved.sha256}, file has ")):
        manager.load(saved.path, saved.sha256)


@pytest.mark.parametrize("sha", [None, "abc", "g" * 64], ids=["none", "short", "not-hex"])
def test_malformed_recorded_hash_refuses_to_unpickle(manager, tmp_path, sha) -> None:
    marker = tmp_path / "marker"
    saved = manager.save(TouchOnLoad(marker), UUID_A)
    message = (
        f"model file {saved.path}: recorded SHA-256 must be 64 hex digits, got {sha!r}; "
        "refusing to unpickle an unverified file"
    )
    with pytest.raises(StorageError, match=re.escape(message)):
        manager.load(saved.path, sha)
    assert not marker.exists()
    assert manager.verify(saved.path, sha) is False


def test_upper_case_hash_is_accepted(manager) -> None:
    saved = manager.save({"v": 1}, UUID_A)
    assert manager.load(saved.path, saved.sha256.upper()) == {"v": 1}


def test_missing_file(manager) -> None:
    file = manager.artifacts_dir / f"model_{UUID_A}.pkl"
    message = f"model file {file}: not found (nor model_{UUID_A}.pkl.gz)"
    with pytest.raises(StorageError, match=re.escape(message)):
        manager.load(file.name, "0" * 64)
    assert manager.verify(file.name, "0" * 64) is False


def test_verified_but_unloadable_pickle(manager) -> None:
    payload = b"\x80\x05cno_such_module_xyz\nThing\n."  # GLOBAL of a missing module
    saved = manager.save_bytes(payload, UUID_A)
    message = (
        f"model file {manager.absolute(saved.path)}: verified but cannot be unpickled: "
        "ModuleNotFoundError"
    )
    with pytest.raises(StorageError, match=re.escape(message)):
        manager.load(saved.path, saved.sha256)


@pytest.mark.parametrize(
    "path", ["../outside.pkl", "/etc/passwd", "."], ids=["dotdot", "abs", "folder"]
)
def test_paths_outside_the_folder_are_refused(manager, path) -> None:
    message = f"model file {path}: not inside the artifacts folder {manager.artifacts_dir}"
    with pytest.raises(StorageError, match=re.escape(message)):
        manager.load(path, "0" * 64)
    with pytest.raises(StorageError, match=re.escape(message)):
        manager.delete(path)
    with pytest.raises(StorageError, match=re.escape(message)):
        manager.verify(path, "0" * 64)


def test_absolute_path_inside_the_folder_is_relative(manager) -> None:
    saved = manager.save({"v": 1}, UUID_A)
    absolute = manager.absolute(saved.path)
    assert absolute.is_absolute()
    assert manager.relative(absolute) == saved.path
    assert manager.load(absolute, saved.sha256) == {"v": 1}


# --------------------------------------------------------------------- delete / compress


def test_delete_returns_freed_bytes_and_tolerates_missing(manager, caplog) -> None:
    saved = manager.save(model(), UUID_A)
    (manager.artifacts_dir / f"{saved.path}.gz").write_bytes(b"12345")
    assert manager.delete(saved.path) == saved.size_bytes + 5
    assert names(manager.artifacts_dir) == []
    with caplog.at_level(logging.INFO, logger="forexgrid.storage.artifacts"):
        assert manager.delete(saved.path) == 0
    assert f"{saved.path} was already gone" in caplog.text


def test_compress_old_models(manager, tmp_path) -> None:
    old = manager.save({"big": np.zeros(20_000)}, UUID_A)  # zeros: compresses well
    new = manager.save({"big": np.zeros(20_000)}, UUID_B)
    old_file = manager.absolute(old.path)
    backdate(old_file, 10)
    mtime = old_file.stat().st_mtime_ns
    stats = manager.compress_old_models(days_old=7)
    packed = old_file.with_name(old_file.name + ".gz")
    assert names(manager.artifacts_dir) == [packed.name, new.path]
    assert stats["compressed_files"] == 1 and stats["files"] == [old.path]
    assert stats["bytes_before"] == old.size_bytes
    assert stats["bytes_after"] == packed.stat().st_size
    assert stats["saved_bytes"] == old.size_bytes - packed.stat().st_size > 100_000
    assert math.isclose(stats["saved_space_mb"], stats["saved_bytes"] / 2**20)
    # The age is the model's, so cleanup keeps counting from when it was written.
    assert packed.stat().st_mtime_ns == mtime
    # The recorded path, hash and size stay those of the uncompressed pickle.
    assert manager.path_of(old.path) == packed
    assert hashlib.sha256(gzip.decompress(packed.read_bytes())).hexdigest() == old.sha256
    assert manager.verify(old.path, old.sha256)
    np.testing.assert_array_equal(manager.load(old.path, old.sha256)["big"], np.zeros(20_000))
    assert manager.compress_old_models(days_old=7)["compressed_files"] == 0


def test_tampered_compressed_file_is_refused_without_unpickling(manager, tmp_path) -> None:
    marker = tmp_path / "marker"
    saved = manager.save(TouchOnLoad(marker), UUID_A)
    backdate(manager.absolute(saved.path), 30)
    manager.compress_old_models(days_old=7)
    packed = manager.path_of(saved.path)
    assert packed.name.endswith(".pkl.gz")
    flip_byte(packed, len(packed.read_bytes()) // 2)
    with pytest.raises(StorageError, match=re.escape(f"model file {packed}: ")):
        manager.load(saved.path, saved.sha256)
    assert not marker.exists()
    assert manager.verify(saved.path, saved.sha256) is False


def test_path_of(manager) -> None:
    plain = manager.artifacts_dir / f"model_{UUID_A}.pkl"
    assert manager.path_of(plain.name) == plain  # neither exists: the recorded location
    manager.artifacts_dir.mkdir()
    packed = plain.with_name(plain.name + ".gz")
    packed.write_bytes(b"x")
    assert manager.path_of(plain.name) == packed
    assert manager.path_of(packed.name) == packed
    plain.write_bytes(b"x")
    assert manager.path_of(packed.name) == plain  # the uncompressed file wins


# ------------------------------------------------------------------------------ cleanup


@pytest.mark.parametrize("keep_form", ["relative", "absolute", "gz"], ids=str)
def test_cleanup_old_models_spares_new_and_kept(manager, keep_form) -> None:
    kept = manager.save(model(), UUID_A)
    dropped = manager.save(model(), UUID_B)
    fresh = manager.save(model(), UUID_C)
    for saved in (kept, dropped):
        backdate(manager.absolute(saved.path), 40)
    manager.compress_old_models(days_old=35)  # the kept one now lives as .pkl.gz
    dropped_size = manager.path_of(dropped.path).stat().st_size
    keep = {
        "relative": kept.path,
        "absolute": str(manager.absolute(kept.path)),
        "gz": kept.path + ".gz",
    }[keep_form]
    stats = manager.cleanup_old_models(days_old=30, keep=[keep])
    assert stats == {
        "deleted_files": 1,
        "files": [dropped.path + ".gz"],
        "freed_bytes": dropped_size,
        "freed_space_mb": dropped_size / 2**20,
        "kept_files": 1,
    }
    assert names(manager.artifacts_dir) == [kept.path + ".gz", fresh.path]


def test_cleanup_with_an_empty_keep_deletes_every_old_file(manager) -> None:
    saved = manager.save(model(), UUID_A)
    backdate(manager.absolute(saved.path), 31)
    stats = manager.cleanup_old_models(days_old=30, keep=())
    assert stats["deleted_files"] == 1
    assert math.isclose(stats["freed_space_mb"], saved.size_bytes / 2**20)
    assert names(manager.artifacts_dir) == []


def test_cleanup_without_keep_needs_the_database(manager) -> None:
    with pytest.raises(StorageError, match=re.escape("cleanup_old_models: pass keep=")):
        manager.cleanup_old_models(days_old=30)


def test_the_guides_cleanup_snippet_spares_the_kept_models(tmp_path, monkeypatch) -> None:
    """``ModelFileManager().cleanup_old_models(days_old=30)`` asks the database what is kept."""
    from forexgrid import storage
    from forexgrid.grid import GridSpec

    monkeypatch.delenv("FOREXGRID_DATABASE_URL", raising=False)
    monkeypatch.setenv("FOREXGRID_WORKSPACE", str(tmp_path))
    manager = ModelFileManager()
    assert manager.artifacts_dir == tmp_path / "artifacts"
    best = manager.save(model(), UUID_A)
    loser = manager.save(model(), UUID_B)
    for saved in (best, loser):
        backdate(manager.absolute(saved.path), 31)
    spec = GridSpec(
        model_types=["ridge"],
        symbols=["EURUSD"],
        timeframes=["1h"],
        days_history=[60],
        horizons=[1, 3],
    )
    with storage.session_scope() as session:
        queue = storage.queues.create_queue(session, spec)
        first, second = storage.runs.pending_runs(session, queue.id)
        for run, saved, kept in ((first, best, True), (second, loser, False)):
            storage.runs.start_run(session, run.id)
            storage.runs.complete_run(
                session,
                run.id,
                results=pd.DataFrame(columns=storage.runs.RESULT_COLUMNS),
                chosen=pd.DataFrame(columns=storage.runs.CHOSEN_COLUMNS),
                kept=kept,
                model_file_path=saved.path,
                model_file_sha256=saved.sha256,
                model_file_size_bytes=saved.size_bytes,
            )
    stats = manager.cleanup_old_models(days_old=30)
    assert stats["deleted_files"] == 1 and stats["files"] == [loser.path]
    assert names(manager.artifacts_dir) == [best.path]


def test_cleanup_leaves_other_files_alone(manager) -> None:
    manager.artifacts_dir.mkdir()
    other = manager.artifacts_dir / "notes.txt"
    other.write_text("mine")
    backdate(other, 400)
    assert manager.cleanup_old_models(days_old=1, keep=())["deleted_files"] == 0
    assert other.exists()


def test_missing_folder_is_empty(tmp_path) -> None:
    manager = ModelFileManager(tmp_path / "never")
    assert manager.cleanup_old_models(keep=())["deleted_files"] == 0
    assert manager.compress_old_models()["compressed_files"] == 0
    assert manager.reconcile({}) == ReconcileReport()
    assert not (tmp_path / "never").exists()


@pytest.mark.parametrize("days", [-1, math.nan, True, "7"], ids=["negative", "nan", "bool", "str"])
@pytest.mark.parametrize("method", ["cleanup_old_models", "compress_old_models"])
def test_days_old_must_be_a_non_negative_number(manager, method, days) -> None:
    message = f"{method}: days_old must be a number >= 0, got {days!r}"
    with pytest.raises(ConfigError, match=re.escape(message)):
        getattr(manager, method)(days_old=days)


# ---------------------------------------------------------------------------- reconcile


def test_reconcile(manager) -> None:
    good = manager.save(model(), UUID_A)
    bad = manager.save(model(), UUID_B)
    flip_byte(manager.absolute(bad.path), 10)
    orphan = manager.save(model(), UUID_C)
    folder = manager.artifacts_dir
    (folder / "model_orphan2.pkl.gz").write_bytes(b"12")
    temp = folder / f".model_{UUID_A}.pkl.0123abcd.tmp"
    temp.write_bytes(b"half")
    (folder / "notes.txt").write_text("user file")
    (folder / "sub").mkdir()
    referenced = {
        good.path: good.sha256,
        bad.path: bad.sha256,
        "model_gone.pkl": "0" * 64,
        "../elsewhere.pkl": None,
    }
    report = manager.reconcile(referenced)
    assert report == ReconcileReport(
        removed=(temp.name, orphan.path, "model_orphan2.pkl.gz"),  # sorted by name
        freed_bytes=4 + 2 + orphan.size_bytes,
        missing=("../elsewhere.pkl", "model_gone.pkl"),
        corrupt=(bad.path,),
        unknown=("notes.txt", "sub"),
    )
    assert not report.ok
    assert str(report) == (
        f"reconcile: removed 3 files ({report.freed_space_mb:.2f} MB), promoted 0, "
        "2 missing, 1 corrupt, 0 spared, 2 unknown left alone"
    )
    assert names(folder) == [good.path, bad.path, "notes.txt", "sub"]
    again = manager.reconcile({good.path: good.sha256})
    assert again.removed == (bad.path,) and again.ok


def test_reconcile_keeps_compressed_referenced_files(manager) -> None:
    saved = manager.save(model(), UUID_A)
    backdate(manager.absolute(saved.path), 10)
    manager.compress_old_models(days_old=1)
    report = manager.reconcile({saved.path: saved.sha256})
    assert report.ok and report.removed == ()
    assert names(manager.artifacts_dir) == [saved.path + ".gz"]


def test_reconcile_grace_spares_recent_files(manager) -> None:
    recent = manager.save(model(), UUID_A)
    old = manager.save(model(), UUID_B)
    backdate(manager.absolute(old.path), 1)
    report = manager.reconcile({}, grace_seconds=600)
    assert report.removed == (old.path,)
    assert names(manager.artifacts_dir) == [recent.path]


def test_reconcile_without_hashing(manager) -> None:
    saved = manager.save(model(), UUID_A)
    flip_byte(manager.absolute(saved.path), 5)
    assert manager.reconcile({saved.path: saved.sha256}, verify_hashes=False).ok
    assert manager.reconcile({saved.path: None}).ok


_KILLED_SAVE = textwrap.dedent(
    """
    import sys, time
    from forexgrid.storage.artifacts import ModelFileManager

    class Stall:
        def __reduce__(self):
            # Reached after the 8 MiB blob went to the temporary file.
            print("pickling", flush=True)
            time.sleep(60)
            return (Stall, ())

    ModelFileManager(sys.argv[1]).save({"blob": b"n" * (8 << 20), "stall": Stall()}, sys.argv[2])
    """
)


def test_sigkill_during_save_keeps_the_old_file_and_reconcile_removes_the_pending_one(
    manager,
) -> None:
    old = manager.save({"version": "old"}, UUID_A)
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_SAVE, str(manager.artifacts_dir), UUID_A],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout.readline().strip() == "pickling"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    temps = [p for p in manager.artifacts_dir.iterdir() if p.name.endswith(".pending")]
    assert len(temps) == 1 and temps[0].stat().st_size > 8 << 20  # killed mid-write
    assert manager.load(old.path, old.sha256) == {"version": "old"}
    report = manager.reconcile({old.path: old.sha256})
    assert report.removed == (temps[0].name,) and report.ok
    assert names(manager.artifacts_dir) == [old.path]


# ------------------------------------------------------------------------ construction


def test_default_folder_comes_from_the_settings(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FOREXGRID_WORKSPACE", str(tmp_path))
    assert ModelFileManager().artifacts_dir == load_config(None).artifacts_path
    assert ModelFileManager().artifacts_dir == tmp_path / "artifacts"
    settings = load_config({"storage": {"artifacts_dir": "models"}}, workspace=tmp_path)
    manager = ModelFileManager.from_settings(settings)
    assert manager.artifacts_dir == tmp_path / "models"
    assert repr(manager) == f"ModelFileManager({str(tmp_path / 'models')!r})"


# ------------------------------------------------------------- staged writes, bounds


def test_a_staged_model_has_its_final_name_only_once_promoted(manager) -> None:
    staged = manager.stage(model(), UUID_A, "0123abcd")
    assert staged.file.path == f"model_{UUID_A}_0123abcd.pkl"
    assert names(manager.artifacts_dir) == [f".model_{UUID_A}_0123abcd.pkl.pending"]
    manager.promote(staged)
    assert names(manager.artifacts_dir) == [staged.file.path]
    loaded = manager.load(staged.file.path, staged.file.sha256, staged.file.size_bytes)
    np.testing.assert_array_equal(loaded["weights"], model()["weights"])
    manager.promote(staged)  # promoted by someone else meanwhile: nothing to do
    other = manager.stage(model(), UUID_B, "89abcdef")
    manager.discard(other)
    assert names(manager.artifacts_dir) == [staged.file.path]


def test_two_attempts_of_one_run_never_share_a_file(manager) -> None:
    first = manager.save({"v": 1}, UUID_A, "00000001")
    second = manager.save({"v": 2}, UUID_A, "00000002")
    assert first.path != second.path
    assert manager.load(first.path, first.sha256, first.size_bytes) == {"v": 1}
    with pytest.raises(StorageError, match="attempt must be 8 to 32 hex digits"):
        manager.stage({"v": 3}, UUID_A, "../x")


def test_a_write_that_fails_leaves_nothing(manager, tmp_path) -> None:
    class Unpicklable:
        def __reduce__(self):
            raise TypeError("no")

    with pytest.raises(StorageError, match="cannot be pickled: TypeError: no"):
        manager.stage({"x": Unpicklable()}, UUID_A, "0123abcd")
    assert names(manager.artifacts_dir) == []


def test_a_file_of_the_wrong_size_is_refused_before_it_is_read(manager, tmp_path) -> None:
    marker = tmp_path / "unpickled"
    saved = manager.save(TouchOnLoad(marker), UUID_A)
    with open(manager.absolute(saved.path), "ab") as handle:
        handle.write(b"\0")
    with pytest.raises(StorageError, match=f"recorded {saved.size_bytes:,} bytes, file has"):
        manager.load(saved.path, saved.sha256, saved.size_bytes)
    check = manager.check(saved.path, saved.sha256, saved.size_bytes)
    assert check.state == "size_mismatch" and not marker.exists()


def test_a_gzip_bomb_is_refused_after_one_chunk_not_inflated(manager, tmp_path) -> None:
    import resource

    saved = manager.save({"v": 1}, UUID_A)
    bomb = manager.absolute(saved.path + ".gz")
    # 2 GiB of zeros in 128 gzip members of 16 MiB (a valid gzip file of about 2 MB).
    bomb.write_bytes(gzip.compress(bytes(16 << 20), compresslevel=9) * 128)
    manager.absolute(saved.path).unlink()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    with pytest.raises(StorageError, match="the content is larger"):
        manager.load(saved.path, saved.sha256, saved.size_bytes)
    assert time.perf_counter() - started < 1.0
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 64 << 10  # far below the 2 GiB it would inflate to
    assert manager.check(saved.path, saved.sha256, saved.size_bytes).state == "size_mismatch"


def test_reconcile_spares_live_runners_and_recent_temporaries(manager) -> None:
    live = manager.stage(model(), UUID_A, "0123abcd")  # a live runner's write in progress
    dropped = manager.save(model(), UUID_B, "0123abcd")  # unreferenced, run of a live queue
    dead = manager.stage(model(), UUID_C, "0123abcd")  # left by a killed runner long ago
    backdate(dead.pending, 1)
    report = manager.reconcile(
        {}, protected={UUID_A.upper(), UUID_B}, grace_seconds=0, temp_grace_seconds=600
    )
    assert report.removed == (dead.pending.name,)
    assert set(report.spared) == {live.pending.name, dropped.path}
    fresh = manager.stage(model(), UUID_C, "89abcdef")
    assert manager.reconcile({}, temp_grace_seconds=600).spared[-1] == fresh.pending.name


def test_reconcile_promotes_a_recorded_file_left_pending_and_only_if_it_verifies(manager):
    staged = manager.stage(model(), UUID_A, "0123abcd")
    record = Recorded(staged.file.sha256, staged.file.size_bytes)
    report = manager.reconcile({staged.file.path: record})
    assert report.promoted == (staged.file.path,) and report.ok
    assert names(manager.artifacts_dir) == [staged.file.path]
    bad = manager.stage(model(), UUID_B, "0123abcd")
    flip_byte(bad.pending, 20)
    report = manager.reconcile(
        {staged.file.path: record, bad.file.path: Recorded(bad.file.sha256, bad.file.size_bytes)}
    )
    assert report.promoted == () and report.missing == (bad.file.path,)
