"""Reconciliation: make the artifacts folder agree with the database, safely.

What may be removed is decided from three things the caller passes in (this module never
queries the database):

- ``referenced``: every recorded model file still meant to exist. Never removed.
- ``protected``: the run UUIDs of queues whose runner is alive (a fresh heartbeat). Their
  files, final or temporary, are never removed: that runner deletes what it drops and
  promotes what it stages.
- ``temp_grace_seconds``: temporary and pending files younger than this (the crash window)
  are spared as well, whoever wrote them, unless their run is ``expendable`` (the
  caller's own queue, which no one else writes for).

A referenced file that is missing but whose pending file is there and verifies (a runner
killed between recording its run and renaming the file) is promoted.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Collection, Mapping
from dataclasses import dataclass

from forexgrid.exceptions import StorageError
from forexgrid.storage.artifacts._layout import (
    MODEL_RE,
    Layout,
    is_temporary_name,
    run_uuid_in,
    strip_gz,
)
from forexgrid.storage.artifacts._read import check_file
from forexgrid.storage.artifacts._retention import MB, unlink

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Recorded:
    """What the database records of one model file."""

    sha256: str | None = None
    size_bytes: int | None = None


@dataclass(frozen=True)
class ReconcileReport:
    """What :meth:`ModelFileManager.reconcile` found and did.

    Attributes
    ----------
    removed : tuple of str
        Files deleted: model files no run references and leftover temporary files.
    freed_bytes : int
        Bytes those files took.
    missing : tuple of str
        Referenced paths with no file (neither ``.pkl`` nor ``.pkl.gz``).
    corrupt : tuple of str
        Referenced paths whose file exists but does not match the recorded size or SHA-256
        (or cannot be decompressed). Left in place for inspection.
    unknown : tuple of str
        Files in the folder that forexgrid did not name; left alone.
    promoted : tuple of str
        Referenced files found pending (a kill after the run was recorded) and renamed
        into place after they verified.
    spared : tuple of str
        Unreferenced files left because a live runner owns them or they are too recent.
    """

    removed: tuple[str, ...] = ()
    freed_bytes: int = 0
    missing: tuple[str, ...] = ()
    corrupt: tuple[str, ...] = ()
    unknown: tuple[str, ...] = ()
    promoted: tuple[str, ...] = ()
    spared: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when every referenced file is present and verifies."""
        return not self.missing and not self.corrupt

    @property
    def freed_space_mb(self) -> float:
        """``freed_bytes`` in MB (2**20 bytes)."""
        return self.freed_bytes / MB

    def __str__(self) -> str:
        return (
            f"reconcile: removed {len(self.removed)} files ({self.freed_space_mb:.2f} MB), "
            f"promoted {len(self.promoted)}, {len(self.missing)} missing, "
            f"{len(self.corrupt)} corrupt, {len(self.spared)} spared, "
            f"{len(self.unknown)} unknown left alone"
        )


def _promote_pending(layout: Layout, rel: str, recorded: Recorded) -> bool:
    pending = layout.pending_of(rel)
    if not pending.is_file() or recorded.sha256 is None:
        return False
    if not check_file(pending, recorded.sha256, recorded.size_bytes).ok:
        return False
    try:
        os.replace(pending, layout.absolute(rel))
    except FileNotFoundError:  # the runner promoted it meanwhile
        return layout.absolute(rel).is_file()
    logger.warning("promoted %s: its run was recorded but the file was still pending", rel)
    return True


def reconcile(
    layout: Layout,
    referenced: Mapping[str, Recorded],
    *,
    protected: Collection[str] = (),
    expendable: Collection[str] = (),
    temp_grace_seconds: float = 0.0,
    unreferenced_grace_seconds: float = 0.0,
    verify_hashes: bool = True,
    now: float | None = None,
) -> ReconcileReport:
    """Remove what no run needs, promote what a killed runner left pending, report the rest.

    Parameters
    ----------
    layout
        The artifacts folder.
    referenced
        Recorded path -> :class:`Recorded` (hash and size; None fields skip that check).
    protected
        Run UUIDs (lower case) whose files must not be touched.
    expendable
        Run UUIDs (lower case) whose unreferenced files go whatever their age (the
        caller's own queue: no one else writes for it).
    temp_grace_seconds
        Spare temporary and pending files modified less than this many seconds ago.
    unreferenced_grace_seconds
        Spare unreferenced final model files modified less than this many seconds ago.
    verify_hashes
        Hash every referenced file (default); False checks existence only.
    now
        The current POSIX time (default: now).
    """
    wanted: dict[str, Recorded] = {}
    missing: list[str] = []
    for path, recorded in referenced.items():
        try:
            wanted[strip_gz(layout.relative(path))] = recorded
        except StorageError as exc:
            # A bad row must not stop the cleanup of everything else; it is reported.
            logger.warning("%s", exc)
            missing.append(os.fspath(path))
    clock = time.time() if now is None else now
    removed: list[str] = []
    unknown: list[str] = []
    spared: list[str] = []
    promoted: list[str] = []
    freed = 0
    for rel, recorded in wanted.items():
        if not layout.path_of(rel).is_file() and _promote_pending(layout, rel, recorded):
            promoted.append(rel)
    entries = sorted(layout.artifacts_dir.iterdir()) if layout.artifacts_dir.is_dir() else []
    for entry in entries:
        name = entry.name
        if not entry.is_file() or entry.is_symlink():
            unknown.append(name)
            continue
        if MODEL_RE.match(name):
            if strip_gz(name) in wanted:
                continue
            grace = unreferenced_grace_seconds
        elif is_temporary_name(name):
            grace = temp_grace_seconds
        else:
            unknown.append(name)
            continue
        owner = run_uuid_in(name)
        if owner in protected:
            spared.append(name)
            continue
        try:
            if grace > 0 and owner not in expendable and entry.stat().st_mtime > clock - grace:
                spared.append(name)
                continue
        except FileNotFoundError:
            continue
        freed += unlink(entry)
        removed.append(name)
    corrupt: list[str] = []
    for rel, recorded in wanted.items():
        found = layout.path_of(rel)
        if not found.is_file():
            missing.append(rel)
        elif verify_hashes and recorded.sha256 is not None:
            if not check_file(found, recorded.sha256.lower(), recorded.size_bytes).ok:
                corrupt.append(rel)
    report = ReconcileReport(
        removed=tuple(removed),
        freed_bytes=freed,
        missing=tuple(missing),
        corrupt=tuple(corrupt),
        unknown=tuple(unknown),
        promoted=tuple(promoted),
        spared=tuple(spared),
    )
    if missing or corrupt:
        logger.warning("%s; missing: %s; corrupt: %s", report, missing, corrupt)
    else:
        logger.info("%s", report)
    return report
