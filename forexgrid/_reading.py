"""Reading a user's file with a bound: regular files only (by default), at most N bytes.

Every file forexgrid reads at a path a user gives (market data, configuration files,
checkpoints) goes through :func:`read_limited`, so that ``/dev/zero``, a FIFO nobody writes
to, a directory or a file of many gigabytes gets a one-line error instead of a hang or a
``MemoryError``:

- the file is opened without blocking (a FIFO without a writer would block ``open``);
- the opened file must be a regular file, unless the caller allows streams (pipes, FIFOs,
  devices such as ``/dev/stdin``), which are then read until the bound;
- a regular file's size is checked before anything is read, and reading stops one byte
  past the bound in any case (a file that grows meanwhile, a device without end).
"""

from __future__ import annotations

import errno
import os
import select
import stat
from pathlib import Path

from forexgrid._atomic import describe_file_type
from forexgrid.exceptions import PathError

__all__ = ["read_limited"]

_CHUNK = 1 << 20


def _size(n: int) -> str:
    """A byte count for a message: ``2,097,152 bytes (2.0 MB)``."""
    return f"{n:,} bytes ({n / (1 << 20):,.1f} MB)"


def read_limited(
    path: str | os.PathLike[str],
    limit: int,
    *,
    hint: str = "",
    expected: str = "a file on disk",
    allow_streams: bool = False,
    head: bool = False,
) -> bytes:
    """The bytes of the file at ``path``, refusing what cannot be read safely.

    Parameters
    ----------
    path : path
        The file (symbolic links are followed).
    limit : int
        Bytes read at most (>= 1).
    hint : str
        Appended to the "too large" message: how to raise the limit.
    expected : str
        What the file should be, for the "not a regular file" message.
    allow_streams : bool
        Also read a pipe, FIFO, socket or device (up to ``limit`` bytes) instead of
        refusing it.
    head : bool
        Return the first ``limit`` bytes of a longer file instead of refusing it (format
        detection).

    Returns
    -------
    bytes

    Raises
    ------
    PathError
        The file is not a regular file (and streams are not allowed), or holds more than
        ``limit`` bytes (and ``head`` is false). The message names the path.
    FileNotFoundError, IsADirectoryError, PermissionError, OSError
        The file cannot be opened or read; callers turn these into their own messages.
    """
    if limit < 1:
        raise ValueError(f"limit must be >= 1, got {limit}")
    name = Path(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    fd = os.open(name, flags)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(name))
        regular = stat.S_ISREG(info.st_mode)
        if not regular and not allow_streams:
            raise PathError(
                f"{name}: is {describe_file_type(info.st_mode)}, not a regular file; "
                f"expected {expected}"
            )
        too_large = f"{name}: the file is larger than the limit of {_size(limit)}"
        if hint:
            too_large += f"; {hint}"
        if regular and info.st_size > limit and not head:
            raise PathError(
                f"{name}: the file is {_size(info.st_size)}, more than the limit of "
                f"{_size(limit)}" + (f"; {hint}" if hint else "")
            )
        if not regular:
            os.set_blocking(fd, True)  # a stream is read until its writer closes it
            if stat.S_ISFIFO(info.st_mode):
                # Opened without waiting for a writer: until one connects, a read would
                # return end-of-file at once. Wait for the first data (or its hang-up).
                select.select([fd], [], [])
        chunks: list[bytes] = []
        total = 0
        while total <= limit:
            chunk = os.read(fd, min(_CHUNK, limit + 1 - total))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if len(data) > limit:
        if head:
            return data[:limit]
        raise PathError(too_large)
    return data
