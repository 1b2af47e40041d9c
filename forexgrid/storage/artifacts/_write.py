"""Writing model files: staged under a pending name, promoted once the run is recorded.

A runner writes a kept model in two steps around the transaction that records its run:

1. :func:`stage` streams the pickle to ``.model_<run_uuid>_<attempt>.pkl.pending``, hashing
   it on the way, and fsyncs it. The name is unique per run attempt, so no other writer
   (not even a runner that lost its queue and runs on) can touch it.
2. The run is recorded, under the runner's claim token (``storage.queues.fence``).
3. :func:`promote` renames the pending file to its final name. Only a committed run's
   file ever gets a final name; a runner that lost its queue never reaches this step and
   its pending file is removed (:func:`discard`, or reconciliation after a kill).

A kill between 2 and 3 leaves a recorded run whose file is still pending; reconciliation
promotes it after checking its size and hash (:mod:`._reconcile`).
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from forexgrid._atomic import _fsync_dir
from forexgrid.exceptions import StorageError
from forexgrid.storage.artifacts._layout import GZIP_SUFFIX, Layout

logger = logging.getLogger(__name__)

PICKLE_PROTOCOL = 5


@dataclass(frozen=True)
class ModelFile:
    """A model file as the database records it.

    Attributes
    ----------
    path : str
        POSIX path relative to the artifacts folder (``model_<run_uuid>_<attempt>.pkl``).
    sha256 : str
        Hex SHA-256 of the pickle (of the uncompressed bytes, also after compression).
    size_bytes : int
        Size of the pickle in bytes (uncompressed).
    """

    path: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class StagedModel:
    """A model written under its pending name, to be promoted once its run is recorded."""

    file: ModelFile
    pending: Path
    final: Path


class _HashingWriter:
    """A write-only file object that hashes what passes through to ``raw``."""

    def __init__(self, raw: BinaryIO) -> None:
        self._raw = raw
        self.digest = hashlib.sha256()

    def write(self, data: Any) -> int:
        # The pickler hands over bytes and, for large buffers, memoryviews.
        self.digest.update(data)
        return self._raw.write(data)


def _write_new(path: Path, fill: Any) -> tuple[str, int]:
    """Create ``path`` (it must not exist), let ``fill(file)`` write it, fsync; return
    (sha256, size). On any error the partial file is removed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "xb") as raw:
            writer = _HashingWriter(raw)
            fill(writer)
            raw.flush()
            os.fsync(raw.fileno())
            size = os.fstat(raw.fileno()).st_size
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return writer.digest.hexdigest(), size


def stage(layout: Layout, model: Any, run_uuid: str, attempt: str) -> StagedModel:
    """Pickle ``model`` (protocol 5) to the pending file of (``run_uuid``, ``attempt``).

    ``model`` may also be the pickle's bytes (workers return the fitted model pickled; the
    coordinator writes those bytes as they are).

    Raises
    ------
    StorageError
        Unsafe ``run_uuid`` or ``attempt``, the model cannot be pickled, or the file cannot
        be written (a full disk, an unwritable folder); nothing is left behind.
    """
    final = layout.target(run_uuid, attempt)
    return stage_to(layout.pending_of(final.name), final, model, run_uuid)


def promote(staged: StagedModel) -> None:
    """Give a staged model its final name (after its run was recorded).

    A missing pending file whose final file exists is not an error: reconciliation in
    another process promoted it first.

    Raises
    ------
    StorageError
        The rename failed, and the final file does not exist.
    """
    try:
        os.replace(staged.pending, staged.final)
    except FileNotFoundError:
        if staged.final.is_file():
            return
        raise StorageError(
            f"model file {staged.final}: its pending file {staged.pending.name} is gone"
        ) from None
    except OSError as exc:
        raise StorageError(
            f"model file {staged.final}: cannot be renamed into place: {exc}"
        ) from exc
    # A compressed file of the same name would hold other bytes under the recorded path.
    staged.final.with_name(staged.final.name + GZIP_SUFFIX).unlink(missing_ok=True)
    _fsync_dir(staged.final.parent)
    logger.info(
        "saved model file %s (%d bytes, sha256 %s)",
        staged.final,
        staged.file.size_bytes,
        staged.file.sha256,
    )


def discard(staged: StagedModel) -> None:
    """Remove a staged model whose run was not recorded."""
    staged.pending.unlink(missing_ok=True)


def save(layout: Layout, model: Any, run_uuid: str, attempt: str | None = None) -> ModelFile:
    """Write ``model`` under its final name at once (stage, then promote).

    For callers that record nothing, or record after (tests, tools). Without ``attempt``
    the file is ``model_<run_uuid>.pkl`` and replaces an existing file of that name.
    """
    if attempt is not None:
        staged = stage(layout, model, run_uuid, attempt)
        promote(staged)
        return staged.file
    final = layout.target(run_uuid)
    pending = layout.pending_of(final.name)
    pending.unlink(missing_ok=True)  # a leftover of an earlier kill of this same write
    staged = stage_to(pending, final, model, run_uuid)
    promote(staged)
    return staged.file


def stage_to(pending: Path, final: Path, model: Any, run_uuid: str) -> StagedModel:
    """:func:`stage` with explicit pending and final paths."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        data = memoryview(model).cast("B")

        def fill(out: _HashingWriter) -> None:
            out.write(data)

    else:

        def fill(out: _HashingWriter) -> None:
            pickle.Pickler(out, protocol=PICKLE_PROTOCOL).dump(model)

    try:
        sha256, size = _write_new(pending, fill)
    except OSError as exc:
        raise StorageError(f"model file {final}: cannot be written: {exc}") from exc
    except Exception as exc:  # whatever a __reduce__ raises, the model is unpicklable
        raise StorageError(
            f"model of run {run_uuid}: cannot be pickled: {type(exc).__name__}: {exc}"
        ) from exc
    return StagedModel(ModelFile(final.name, sha256, size), pending, final)
