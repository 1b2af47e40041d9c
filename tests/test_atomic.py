"""Tests of forexgrid._atomic: temporary name, fsync, rename; nothing partial, no orphan."""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from forexgrid import _atomic
from forexgrid._atomic import (
    atomic_path,
    atomic_write_bytes,
    atomic_write_text,
    is_temp_name,
    remove_temp_files,
)
from forexgrid.exceptions import PathError

ROOT = Path(__file__).resolve().parents[1]


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------------------------------ writes


def test_write_bytes_creates_and_replaces(tmp_path) -> None:
    target = tmp_path / "a.bin"
    assert atomic_write_bytes(target, b"old") == target
    assert target.read_bytes() == b"old"
    atomic_write_bytes(target, bytearray(b"new content"))
    assert target.read_bytes() == b"new content"
    assert names(tmp_path) == ["a.bin"]


def test_write_text_encodes_without_newline_translation(tmp_path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "é\r\nz\n")
    assert target.read_bytes() == "é\r\nz\n".encode()
    atomic_write_text(target, "é", encoding="latin-1")
    assert target.read_bytes() == b"\xe9"


def test_unencodable_text_writes_nothing(tmp_path) -> None:
    target = tmp_path / "a.txt"
    atomic_write_text(target, "old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "é", encoding="ascii")
    assert target.read_text() == "old"
    assert names(tmp_path) == ["a.txt"]


@settings(max_examples=25, deadline=None)
@given(data=st.binary(max_size=4096))
def test_bytes_round_trip(tmp_path_factory, data: bytes) -> None:
    target = tmp_path_factory.mktemp("rt") / "x"
    atomic_write_bytes(target, data, fsync=False)
    assert target.read_bytes() == data


def test_file_mode_follows_umask(tmp_path) -> None:
    # mkstemp would create 0o600; an atomically written file must look like a plain one.
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "m", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m").stat().st_mode) == 0o644


def test_fsyncs_file_and_directory(tmp_path, monkeypatch) -> None:
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(_atomic.os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    atomic_write_bytes(tmp_path / "f", b"x")
    assert len(synced) == 2  # the file, then the directory holding the new name
    synced.clear()
    atomic_write_bytes(tmp_path / "g", b"x", fsync=False)
    assert synced == []


def test_missing_directory_raises_and_creates_nothing(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        atomic_write_bytes(tmp_path / "nope" / "f", b"x")
    assert names(tmp_path) == []


# ------------------------------------------------------------------------- interrupts


@pytest.mark.parametrize("existed", [True, False], ids=["replace", "create"])
def test_error_inside_context_keeps_old_file_and_removes_temp(tmp_path, existed) -> None:
    target = tmp_path / "data.json"
    if existed:
        target.write_bytes(b"old")
    seen: list[Path] = []
    with pytest.raises(RuntimeError, match="disk on fire"), atomic_path(target) as tmp:
        seen.append(tmp)
        tmp.write_bytes(b"half of the new")
        assert tmp.parent == tmp_path and is_temp_name(tmp.name, "data.json")
        raise RuntimeError("disk on fire")
    assert not seen[0].exists()
    if existed:
        assert target.read_bytes() == b"old"
        assert names(tmp_path) == ["data.json"]
    else:
        assert names(tmp_path) == []


def test_failed_rename_removes_temp(tmp_path) -> None:
    target = tmp_path / "dir_target"
    with pytest.raises(OSError), atomic_path(target) as tmp:
        tmp.write_bytes(b"x")
        # A directory appears at the target while the file is written (checked before, so
        # only a race gets here): os.replace of a file over a non-empty directory fails.
        target.mkdir()
        (target / "inside").write_text("x")
    assert names(tmp_path) == ["dir_target"]


# ------------------------------------------------------------------ what may be replaced


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def _socket(path: Path) -> Path:
    import socket

    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays
    return path


def _device(path: Path) -> Path:
    # Our own /dev/null node (major 1, minor 3): replacing it by mistake harms nothing.
    try:
        os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs root")
    return path


def _directory(path: Path) -> Path:
    path.mkdir()
    return path


NOT_REGULAR = {
    "fifo": (_fifo, "a FIFO (named pipe)", stat.S_ISFIFO),
    "socket": (_socket, "a socket", stat.S_ISSOCK),
    "device": (_device, "a character device", stat.S_ISCHR),
    "directory": (_directory, "a directory", stat.S_ISDIR),
}


@pytest.mark.parametrize("kind", NOT_REGULAR)
@pytest.mark.parametrize("through_link", [False, True], ids=["direct", "symlink"])
def test_only_regular_files_or_new_paths_are_replaced(tmp_path, kind, through_link) -> None:
    make, shown, is_kind = NOT_REGULAR[kind]
    special = make(tmp_path / "special")
    target = special
    if through_link:
        target = tmp_path / "link"
        target.symlink_to(special)
    expected = (
        f"cannot write {target}: it is a symbolic link to {special}, which is {shown}, not a "
        "regular file"
        if through_link
        else f"cannot write {target}: it is {shown}, not a regular file"
    )
    for write in (
        lambda: atomic_write_bytes(target, b"x"),
        lambda: atomic_write_text(target, "x"),
    ):
        with pytest.raises(PathError, match="^" + re.escape(expected)):
            write()
    with pytest.raises(PathError), atomic_path(target) as tmp:
        tmp.write_bytes(b"never")  # pragma: no cover - the check comes first
    assert is_kind(os.lstat(special).st_mode)
    if through_link:
        assert target.is_symlink() and os.readlink(target) == str(special)
    assert not any(is_temp_name(n) for n in names(tmp_path))


def test_a_dangling_or_looping_link_is_refused(tmp_path) -> None:
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "missing" / "file")
    with pytest.raises(PathError, match=re.escape("which does not exist")):
        atomic_write_bytes(dangling, b"x")
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(PathError, match=re.escape("cannot write")):
        atomic_write_bytes(loop, b"x")
    assert names(tmp_path) == ["dangling", "loop"]


def test_a_link_to_a_regular_file_is_written_through(tmp_path) -> None:
    real = tmp_path / "real" / "data.csv"
    real.parent.mkdir()
    real.write_bytes(b"old")
    link = tmp_path / "latest.csv"
    link.symlink_to(Path("real") / "data.csv")  # relative, as users make them
    chain = tmp_path / "chain.csv"
    chain.symlink_to(link)
    atomic_write_bytes(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"
    atomic_write_text(chain, "newer")
    assert chain.is_symlink() and link.is_symlink() and real.read_text() == "newer"
    assert names(tmp_path) == ["chain.csv", "latest.csv", "real"]
    assert names(real.parent) == ["data.csv"]  # the temporary file was beside the target


@pytest.mark.parametrize("device", ["/dev/null", "/dev/full", "/dev/zero"])
def test_the_real_devices_are_refused_and_stay_devices(device) -> None:
    before = os.lstat(device)
    assert stat.S_ISCHR(before.st_mode)
    # The check alone first: if it ever let a device through, the write below is not tried.
    with pytest.raises(PathError):
        _atomic.writable_target(device)
    with pytest.raises(PathError, match=re.escape(f"cannot write {device}: it is a character")):
        atomic_write_bytes(device, b"x")
    after = os.lstat(device)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev


def test_ensure_directory_creates_or_refuses(tmp_path) -> None:
    made = _atomic.ensure_directory(tmp_path / "a" / "b")
    assert made.is_dir()
    assert _atomic.ensure_directory(made) == made  # exists: fine
    link = tmp_path / "to_dir"
    link.symlink_to(made)
    assert _atomic.ensure_directory(link) == link  # a link to a directory is a directory
    fifo = _fifo(tmp_path / "fifo")
    with pytest.raises(PathError, match=re.escape(f"{fifo}: is a FIFO (named pipe), not a")):
        _atomic.ensure_directory(fifo)
    with pytest.raises(PathError, match=re.escape(f"{fifo}: is a FIFO (named pipe), not a")):
        _atomic.ensure_directory(fifo / "below")
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(PathError, match=re.escape(f"{file}: is a regular file, not a")):
        _atomic.ensure_directory(file / "below")
    with pytest.raises(PathError, match=re.escape("is a character device, not a directory")):
        _atomic.ensure_directory("/dev/null/x")
    assert stat.S_ISCHR(os.lstat("/dev/null").st_mode)


_KILLED_WRITER = textwrap.dedent(
    """
    import sys, time
    from forexgrid._atomic import atomic_path

    chunk = b"n" * 65536
    with atomic_path(sys.argv[1]) as tmp, open(tmp, "wb") as handle:
        handle.write(chunk * 64)  # 4 MiB before telling the parent
        handle.flush()
        print(tmp, flush=True)
        while True:  # a large file still being written when the kill lands
            handle.write(chunk)
            handle.flush()
            time.sleep(0.002)
    """
)


def test_sigkill_mid_write_leaves_old_file_and_a_removable_temp(tmp_path) -> None:
    target = tmp_path / "big.bin"
    target.write_bytes(b"old complete content")
    child = subprocess.Popen(
        [sys.executable, "-c", _KILLED_WRITER, str(target)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        tmp = Path(child.stdout.readline().strip())
        time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    # Killed mid-write: the partial data sits in the temporary file only.
    assert tmp.exists() and tmp.stat().st_size >= 4 * 65536 * 16
    assert target.read_bytes() == b"old complete content"
    assert remove_temp_files(tmp_path) == [tmp]
    assert names(tmp_path) == ["big.bin"]


# ------------------------------------------------------------------------ temp names


@pytest.mark.parametrize(
    ("name", "prefix", "expected"),
    [
        (".model_a.pkl.0123abcd.tmp", "", True),
        (".model_a.pkl.0123abcd.tmp", "model_", True),
        (".model_a.pkl.0123abcd.tmp", "queue_", False),
        (".queue_1_checkpoint_20170102_030405.json.ffffffff.tmp", "queue_", True),
        ("model_a.pkl", "", False),
        (".model_a.pkl.0123abcg.tmp", "", False),
        (".model_a.pkl.0123abc.tmp", "", False),
        (".bashrc", "", False),
        (".x.tmp", "", False),
    ],
    ids=[
        "any",
        "prefix",
        "other-prefix",
        "checkpoint",
        "final",
        "not-hex",
        "short",
        "dotfile",
        "no-token",
    ],
)
def test_is_temp_name(name, prefix, expected) -> None:
    assert is_temp_name(name, prefix) is expected


def test_remove_temp_files_filters_by_prefix_and_age(tmp_path) -> None:
    old = tmp_path / ".model_a.pkl.00000000.tmp"
    new = tmp_path / ".model_b.pkl.11111111.tmp"
    other = tmp_path / ".queue_1_checkpoint_20170102_030405.json.22222222.tmp"
    keep = tmp_path / "model_c.pkl"
    for path in (old, new, other, keep):
        path.write_bytes(b"x")
    now = time.time()
    os.utime(old, (now - 3600, now - 3600))
    assert remove_temp_files(tmp_path, target_prefix="model_", older_than_seconds=60) == [old]
    assert remove_temp_files(tmp_path, target_prefix="model_") == [new]
    assert names(tmp_path) == [other.name, keep.name]
    assert remove_temp_files(tmp_path / "missing") == []
