"""Tests of forexgrid._reading: regular files only by default, never more than the bound."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

import pytest

from forexgrid._reading import read_limited
from forexgrid.exceptions import PathError


def test_a_regular_file_within_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1000)
    assert read_limited(path, 1000) == b"x" * 1000
    assert read_limited(path, 10, head=True) == b"x" * 10


def test_a_large_file_is_refused_before_reading(tmp_path: Path) -> None:
    path = tmp_path / "big"
    with open(path, "wb") as handle:
        handle.truncate(3 << 30)  # 3 GiB, sparse: no disk used, and never read
    message = (
        f"{path}: the file is 3,221,225,472 bytes (3,072.0 MB), more than the limit of "
        "1,048,576 bytes (1.0 MB); raise it"
    )
    with pytest.raises(PathError, match=f"^{re.escape(message)}$"):
        read_limited(path, 1 << 20, hint="raise it")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null", "/dev/urandom"])
def test_devices_are_refused_by_default(device: str) -> None:
    with pytest.raises(PathError, match=re.escape(f"{device}: is a character device, not a")):
        read_limited(device, 1 << 20)


def test_dev_zero_as_an_allowed_stream_stops_at_the_limit() -> None:
    with pytest.raises(PathError, match=re.escape("/dev/zero: the file is larger than")):
        read_limited("/dev/zero", 1 << 20, allow_streams=True)
    assert read_limited("/dev/zero", 100, allow_streams=True, head=True) == bytes(100)
    assert read_limited("/dev/null", 100, allow_streams=True) == b""


def test_a_fifo_without_writer_is_refused_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    with pytest.raises(PathError, match=re.escape(f"{fifo}: is a FIFO (named pipe), not a")):
        read_limited(fifo, 1 << 20)


def test_a_fifo_as_an_allowed_stream_is_read_to_its_end(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as handle:  # blocks until the reader has opened the FIFO
            handle.write(b"line\n" * 1000)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    assert read_limited(fifo, 1 << 20, allow_streams=True) == b"line\n" * 1000
    thread.join(5)


def test_a_link_to_a_regular_file_is_followed(tmp_path: Path) -> None:
    (tmp_path / "real").write_bytes(b"abc")
    (tmp_path / "link").symlink_to(tmp_path / "real")
    assert read_limited(tmp_path / "link", 10) == b"abc"
    (tmp_path / "to_zero").symlink_to("/dev/zero")
    with pytest.raises(PathError, match="is a character device"):
        read_limited(tmp_path / "to_zero", 10)


def test_missing_files_and_directories_keep_their_os_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        read_limited(tmp_path / "missing", 10)
    with pytest.raises(IsADirectoryError):
        read_limited(tmp_path, 10)
