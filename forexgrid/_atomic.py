"""Atomic file writes: write to a temporary name beside the target, fsync, rename.

A reader (or a process started after a crash) sees either the old file or the complete new
one, never a partial file: :func:`os.replace` is atomic on POSIX and Windows when source and
target are in the same directory, which is why the temporary file is always created there.

Temporary files are named ``.<target name>.<8 hex digits>.tmp``. A process killed with
SIGKILL while writing leaves one behind (nothing can run on SIGKILL); :func:`is_temp_name`
recognises such leftovers and :func:`remove_temp_files` removes them during recovery.

What may be replaced: only a regular file or a path where nothing exists yet. Every writer
of the program goes through :func:`atomic_path`, which refuses (with
:class:`~forexgrid.exceptions.PathError`) a directory, a device, a FIFO, a socket, a
symbolic link to one of those, and a link that leads nowhere: renaming over ``/dev/full``
would replace the device node itself, and a FIFO or a directory is never what a user means
by "write the CSV there". A symbolic link to a regular file is written *through*: the file
it points to is replaced (atomically, beside itself) and the link stays. Replacing the link
by a plain file would silently cut what the user linked; refusing would make the common
``latest.csv -> exports/2017.csv`` impossible. The check and the rename are two steps, so a
process that can write to the folder could still swap the entry in between; that is a
user's own folder, not a boundary this module defends.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from forexgrid.exceptions import PathError

__all__ = [
    "atomic_path",
    "atomic_write_bytes",
    "atomic_write_text",
    "describe_file_type",
    "ensure_directory",
    "is_temp_name",
    "remove_temp_files",
    "writable_target",
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


def describe_file_type(mode: int) -> str:
    """What a file of ``st_mode`` is, for a message: ``a FIFO (named pipe)``."""
    kinds = (
        (stat.S_ISREG, "a regular file"),
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symbolic link"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


def writable_target(path: str | os.PathLike[str]) -> Path:
    """The file a write to ``path`` may replace, or PathError.

    Parameters
    ----------
    path : path
        Where the caller wants to write.

    Returns
    -------
    Path
        ``path`` when nothing exists there or it is a regular file; the regular file at
        the end of the links when ``path`` is a symbolic link (written through, see the
        module docstring).

    Raises
    ------
    PathError
        ``path`` is a directory, device, FIFO or socket, or a symbolic link to one of
        those, to nothing, or in a loop. The message names the path and what it is.
    """
    target = Path(path)
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return target  # a new file (a missing folder is the writer's ordinary OSError)
    except OSError:
        return target  # e.g. a parent that is a file: the write reports it as an OSError
    if stat.S_ISREG(mode):
        return target
    refused = f"cannot write {target}: it is"
    if not stat.S_ISLNK(mode):
        raise PathError(f"{refused} {describe_file_type(mode)}, not a regular file")
    resolved = Path(os.path.realpath(target))
    try:
        final = os.stat(target).st_mode
    except FileNotFoundError:
        raise PathError(
            f"{refused} a symbolic link to {resolved}, which does not exist; create the file "
            "first or write to another path"
        ) from None
    except OSError as err:  # ELOOP: a link that points back at itself
        raise PathError(f"{refused} a symbolic link that cannot be followed ({err})") from err
    if not stat.S_ISREG(final):
        raise PathError(
            f"{refused} a symbolic link to {resolved}, which is {describe_file_type(final)}, "
            "not a regular file"
        )
    return resolved


def ensure_directory(path: str | os.PathLike[str]) -> Path:
    """Create the folder ``path`` (and its parents) unless it exists; return ``path``.

    Parameters
    ----------
    path : path
        A folder the program writes into (checkpoints, charts, the data store).

    Returns
    -------
    Path
        ``path``, an existing directory (or a link to one).

    Raises
    ------
    PathError
        ``path`` or one of its parents exists and is not a directory (a file, a device,
        a FIFO): named in the message.
    OSError
        The folder cannot be created for another reason (permissions, a full disk).
    """
    folder = Path(path)
    for step in (folder, *folder.parents):
        try:
            mode = os.stat(step).st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # missing, or below a non-directory that a parent step names
        except OSError:
            break  # unreadable: mkdir below reports it
        if not stat.S_ISDIR(mode):
            raise PathError(f"{step}: is {describe_file_type(mode)}, not a directory")
        break
    folder.mkdir(parents=True, exist_ok=True)
    return folder


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
        The final file: a new path or a regular file (a symbolic link to a regular file is
        written through). Its directory must exist.
    fsync : bool
        Flush the file and the directory to disk (default). Tests of throwaway files may
        switch it off for speed.

    Yields
    ------
    Path
        The temporary file (created empty).

    Raises
    ------
    PathError
        ``target`` is not a regular file or a new path (see :func:`writable_target`);
        nothing is created.
    OSError
        The directory is missing or not writable, or the rename failed.
    """
    target = writable_target(target)
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
    PathError
        ``path`` is not a regular file or a new path; nothing is written.
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
    PathError
        ``path`` is not a regular file or a new path; nothing is written.
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
