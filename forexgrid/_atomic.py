"""Atomic file writes: write to a temporary name beside the target, fsync, rename.

A reader (or a process started after a crash) sees either the old file or the complete new
one, never a partial file: :func:`os.replace` is atomic on POSIX and Windows when source and
target are in the same directory, which is why the temporary file is always created there.

Temporary files are named ``.<target name>.<8 hex digits>.tmp``. A process killed with
SIGKILL while writing leaves one behind (nothing can run on SIGKILL); :func:`is_temp_name`
recognises such leftovers and :func:`remove_temp_files` removes them during recovery.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "is_temp_name",
    "remove_temp_files",
]

logger = logging.getLogger(__name__)

_TEMP_RE = re.compile(r"^\.(?P<target>.+)\.(?P<token>[0-9a-f]{8})\.tmp$")


def is_temp_name(name: str, target_prefix: str = "") -> bool:
    """Whether ``name`` is a temporary file made by :func:`atomic_path`.

    Parameters
    ----------
    name : str
        A file name (not a path).
    target_prefix : str
        Only match temporaries whose target name starts with this prefix (``"model_"``).

    Returns
    -------
    bool
        True for ``.<target>.<8 hex digits>.tmp`` with ``<target>`` starting with
        ``target_prefix``.
    """
    match = _TEMP_RE.match(name)
    return match is not None and match["target"].startswith(target_prefix)


def _create_temp(target: Path) -> Path:
    """Create an empty temporary file beside ``target`` and return its path."""
    for _ in range(100):
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
        try:
            # Mode 0o666 filtered by the umask, like a plain open(): mkstemp's 0o600 would
            # leave every atomically written file private to its owner.
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"{target}: no free temporary name after 100 attempts")


def _fsync_file(path: Path) -> None:
    # fsync flushes the file's dirty pages whichever descriptor wrote them, so callers may
    # write the temporary file through any library (to_parquet, gzip, pickle).
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable. Directories cannot be opened on Windows; there the
    # rename is journalled by NTFS and this step is skipped.
    if os.name != "posix":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str], *, fsync: bool = True) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; on success move it over ``target``.

    The body writes the temporary file by any means. When the body returns, the file is
    fsynced, renamed over ``target`` with :func:`os.replace` and the directory fsynced.
    When the body raises, the temporary file is removed, ``target`` is untouched and the
    exception propagates.

    Parameters
    ----------
    target : path
        The final file. Its directory must exist.
    fsync : bool
        Flush the file and the directory to disk (default). Tests of throwaway files may
        switch it off for speed.

    Yields
    ------
    Path
        The temporary file (created empty).

    Raises
    ------
    OSError
        The directory is missing or not writable, or the rename failed.
    """
    target = Path(target)
    tmp = _create_temp(target)
    renamed = False
    try:
        yield tmp
        if fsync:
            _fsync_file(tmp)
        os.replace(tmp, target)
        renamed = True
    finally:
        if not renamed:
            # Writing or renaming failed: leave no orphan behind.
            tmp.unlink(missing_ok=True)
    if fsync:
        _fsync_dir(target.parent)


def atomic_write_bytes(
    path: str | os.PathLike[str], data: bytes | bytearray | memoryview, *, fsync: bool = True
) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`).

    Parameters
    ----------
    path : path
        The file to create or replace. Its directory must exist.
    data : bytes-like
        The complete new content.
    fsync : bool
        Flush to disk before and after the rename (default).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        The file cannot be written or renamed; the old file, if any, is unchanged.
    """
    target = Path(path)
    with atomic_path(target, fsync=fsync) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
    return target


def atomic_write_text(
    path: str | os.PathLike[str], text: str, *, encoding: str = "utf-8", fsync: bool = True
) -> Path:
    """Write ``text`` to ``path`` atomically, encoded with ``encoding`` (UTF-8).

    Line endings are written as given (no newline translation), so the bytes on disk are
    the same on every platform.

    Parameters
    ----------
    path : path
        The file to create or replace. Its directory must exist.
    text : str
        The complete new content.
    encoding : str
        Text encoding.
    fsync : bool
        Flush to disk before and after the rename (default).

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    OSError
        The file cannot be written or renamed; the old file, if any, is unchanged.
    UnicodeEncodeError
        ``text`` cannot be encoded; nothing is written.
    """
    return atomic_write_bytes(path, text.encode(encoding), fsync=fsync)


def remove_temp_files(
    directory: str | os.PathLike[str],
    *,
    target_prefix: str = "",
    older_than_seconds: float = 0.0,
    now: float | None = None,
) -> list[Path]:
    """Delete temporary files left in ``directory`` by writers that were killed.

    Only the top level of ``directory`` is searched and only names matching
    :func:`is_temp_name` are touched. Run it when no writer is active, or pass
    ``older_than_seconds`` so a write in progress in another process is spared.

    Parameters
    ----------
    directory : path
        The folder to clean. A missing folder has nothing to clean.
    target_prefix : str
        Only temporaries of targets whose name starts with this (``"queue_"``).
    older_than_seconds : float
        Spare temporaries modified less than this many seconds before ``now``.
    now : float or None
        The current time as a POSIX timestamp (default: :func:`time.time`).

    Returns
    -------
    list of Path
        The files removed, sorted by name.

    Raises
    ------
    OSError
        A leftover file exists but cannot be removed.
    """
    folder = Path(directory)
    if not folder.is_dir():
        return []
    cutoff = (time.time() if now is None else now) - older_than_seconds
    removed = []
    for entry in sorted(folder.iterdir()):
        if not is_temp_name(entry.name, target_prefix) or not entry.is_file():
            continue
        try:
            if older_than_seconds > 0 and entry.stat().st_mtime > cutoff:
                continue
            entry.unlink()
        except FileNotFoundError:  # removed by someone else meanwhile: the goal is met
            continue
        logger.info("removed leftover temporary file %s", entry)
        removed.append(entry)
    return removed
