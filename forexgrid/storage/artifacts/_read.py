"""Reading model files: size and SHA-256 checked while streaming, before unpickling.

Unpickling runs code chosen by whoever wrote the file, so nothing is unpickled unless its
bytes match the size and hash recorded when forexgrid wrote it. The check streams: a
compressed file is inflated chunk by chunk and reading stops as soon as it passes the
recorded size, so a file replaced by a gzip bomb costs one chunk of memory, not gigabytes.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import logging
import pickle
import re
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from forexgrid.exceptions import StorageError
from forexgrid.storage.artifacts._layout import GZIP_SUFFIX

logger = logging.getLogger(__name__)

CHUNK = 1024 * 1024
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")

FileState = Literal["ok", "missing", "size_mismatch", "sha_mismatch", "unreadable"]


@dataclass(frozen=True)
class FileCheck:
    """The state of one model file against what the database recorded.

    Attributes
    ----------
    path : Path
        The file checked (the ``.gz`` variant when compressed).
    state : str
        ``ok``, ``missing``, ``size_mismatch``, ``sha_mismatch`` or ``unreadable``.
    detail : str
        What was found, for a person ("recorded 1,234 bytes, the file has more").
    """

    path: Path
    state: FileState
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.state == "ok"


def check_sha(path: str, sha256: object) -> str:
    """The recorded hash in lower case; StorageError if it is not 64 hex digits."""
    if not isinstance(sha256, str) or not _SHA_RE.match(sha256.lower()):
        raise StorageError(
            f"model file {path}: recorded SHA-256 must be 64 hex digits, got {sha256!r}; "
            "refusing to unpickle an unverified file"
        )
    return sha256.lower()


def _stream(found: Path, limit: int | None, sink: io.BytesIO | None) -> tuple[str, int, bool]:
    """Hash the (decompressed) content of ``found``; return (sha256, bytes read, overflow).

    Stops after ``limit + 1`` bytes (``overflow`` is then True). ``sink`` collects the bytes.
    """
    digest = hashlib.sha256()
    total = 0
    opener = gzip.open if found.name.endswith(GZIP_SUFFIX) else open
    with opener(found, "rb") as handle:
        while True:
            want = CHUNK if limit is None else min(CHUNK, limit + 1 - total)
            chunk = handle.read(want)
            if not chunk:
                return digest.hexdigest(), total, False
            total += len(chunk)
            if limit is not None and total > limit:
                return digest.hexdigest(), total, True
            digest.update(chunk)
            if sink is not None:
                sink.write(chunk)


def _examine(
    found: Path, sha256: str, size_bytes: int | None, keep: bool
) -> tuple[FileCheck, bytes | None]:
    sink = io.BytesIO() if keep else None
    try:
        if size_bytes is not None and not found.name.endswith(GZIP_SUFFIX):
            actual = found.stat().st_size
            if actual != size_bytes:  # decided without reading a byte
                return FileCheck(
                    found, "size_mismatch", f"recorded {size_bytes:,} bytes, file has {actual:,}"
                ), None
        actual_sha, total, overflow = _stream(found, size_bytes, sink)
    except FileNotFoundError:
        return FileCheck(found, "missing", "not found"), None
    except (OSError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        return FileCheck(found, "unreadable", f"cannot be read: {exc}"), None
    if overflow:
        return FileCheck(
            found, "size_mismatch", f"recorded {size_bytes:,} bytes, the content is larger"
        ), None
    if size_bytes is not None and total != size_bytes:
        return FileCheck(
            found, "size_mismatch", f"recorded {size_bytes:,} bytes, the content has {total:,}"
        ), None
    if actual_sha != sha256:
        return FileCheck(
            found, "sha_mismatch", f"SHA-256 mismatch: recorded {sha256}, file has {actual_sha}"
        ), None
    return FileCheck(found, "ok"), (sink.getvalue() if sink is not None else None)


def check_file(found: Path, sha256: str, size_bytes: int | None = None) -> FileCheck:
    """Check ``found`` against the recorded hash (and size, when known), streaming."""
    return _examine(found, sha256, size_bytes, keep=False)[0]


def load_file(found: Path, sha256: str, size_bytes: int | None = None) -> Any:
    """Unpickle ``found`` after checking its size and SHA-256.

    Raises
    ------
    StorageError
        Missing, unreadable or undecompressable file; size or hash differs from the
        record (nothing is unpickled); or the verified pickle cannot be unpickled.
    """
    check, data = _examine(found, sha256, size_bytes, keep=True)
    if check.state == "missing":
        raise StorageError(f"model file {found}: not found (nor {found.name}.gz)")
    if not check.ok:
        raise StorageError(
            f"model file {found}: {check.detail}; the file is corrupt or was modified and was "
            "not loaded"
        )
    try:
        return pickle.loads(data)
    except Exception as exc:  # any error unpickling a verified file is the same fault
        raise StorageError(
            f"model file {found}: verified but cannot be unpickled: {type(exc).__name__}: {exc}"
        ) from exc
