"""Queue checkpoints: versioned JSON snapshots of a queue, written atomically.

A checkpoint file is named ``queue_<id>_checkpoint_<YYYYMMDD>_<HHMMSS>.json`` (UTC time of
writing) and holds::

    {"version": 1, "written_at": "2017-01-02T03:04:05.678901+00:00", "queue_id": 3,
     "snapshot": {...}}

The snapshot is whatever the runner needs to restore the queue into an empty database;
this module only stores and checks the envelope. A second checkpoint of the same queue in
the same second gets a suffix: ``..._HHMMSS_2.json``, ``_3`` and so on; the suffix orders
checkpoints written within one second. Only the runner that owns a queue writes its
checkpoints, so choosing the free name and writing it need no lock.

Times in names are UTC, so ordering and age-based cleanup use the name, not the file's
modification time, which copying or restoring a backup would change.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from forexgrid._atomic import atomic_path, ensure_directory
from forexgrid._faults import fault_point
from forexgrid._reading import read_limited
from forexgrid.exceptions import ConfigError, PathError, StorageError, quote_input
from forexgrid.storage._json_stream import NotSerialisableError, write_json

__all__ = [
    "CHECKPOINT_VERSION",
    "checkpoint_name",
    "cleanup_checkpoints",
    "latest_checkpoint",
    "list_checkpoints",
    "read_checkpoint",
    "write_checkpoint",
]

logger = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1
# Read at most this much of a checkpoint file (the snapshot of a 100,000-configuration queue
# is a few hundred MB): a stray huge file or a device must not fill memory.
_MAX_CHECKPOINT_BYTES = 2 << 30
_NAME_RE = re.compile(
    r"^queue_(?P<queue>0|[1-9][0-9]*)_checkpoint_(?P<stamp>[0-9]{8}_[0-9]{6})"
    r"(?:_(?P<seq>[2-9]|[1-9][0-9]+))?\.json$"
)
_STAMP = "%Y%m%d_%H%M%S"
# Bytes buffered before a write to the file: a large checkpoint is many small pieces.
_BUFFER = 1 << 18
_KEYS = ("version", "written_at", "queue_id", "snapshot")


@dataclass(frozen=True, order=True)
class _Entry:
    """A checkpoint file name parsed; orders by time of writing."""

    written: dt.datetime
    seq: int
    queue_id: int
    path: Path


def _check_queue_id(queue_id: object) -> int:
    if isinstance(queue_id, bool) or not isinstance(queue_id, int) or queue_id < 0:
        raise StorageError(f"checkpoint queue_id must be an integer >= 0, got {queue_id!r}")
    return queue_id


def _utc(now: dt.datetime | None) -> dt.datetime:
    if now is None:
        return dt.datetime.now(dt.timezone.utc)
    # A naive time is taken as UTC, like every timestamp in forexgrid.
    if now.tzinfo is None:
        return now.replace(tzinfo=dt.timezone.utc)
    return now.astimezone(dt.timezone.utc)


def checkpoint_name(queue_id: int, written_at: dt.datetime, seq: int = 1) -> str:
    """Return the file name of a checkpoint of ``queue_id`` written at ``written_at``.

    Parameters
    ----------
    queue_id : int
        The queue's database id.
    written_at : datetime
        The time of writing; converted to UTC (naive means UTC).
    seq : int
        1 for the first checkpoint of that second, 2, 3, ... for the next ones.

    Returns
    -------
    str
        ``queue_<id>_checkpoint_<YYYYMMDD>_<HHMMSS>.json``, with ``_<seq>`` before
        ``.json`` when ``seq`` > 1.

    Raises
    ------
    StorageError
        ``queue_id`` is not an integer >= 0.
    """
    stamp = _utc(written_at).strftime(_STAMP)
    suffix = "" if seq <= 1 else f"_{seq}"
    return f"queue_{_check_queue_id(queue_id)}_checkpoint_{stamp}{suffix}.json"


def _json_default(value: Any) -> Any:
    # numpy scalars and arrays, pandas/datetime stamps and paths occur in runner state;
    # anything else is an error rather than a silent str().
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def write_checkpoint(
    directory: str | os.PathLike[str],
    queue_id: int,
    snapshot: dict[str, Any],
    now: dt.datetime | None = None,
) -> Path:
    """Write a checkpoint of ``queue_id`` atomically and return its path.

    Parameters
    ----------
    directory : path
        The checkpoints folder (``settings.checkpoints_path``); created if missing.
    queue_id : int
        The queue's database id.
    snapshot : dict
        The queue's state. JSON types, plus numpy values (as lists/numbers), datetimes
        (as ISO strings) and paths (as strings). NaN and infinities are written as
        Python's ``json`` writes them (``NaN``), which :func:`read_checkpoint` reads back.
        A value that is an iterator (at any depth of dicts), such as the runs of
        :func:`~forexgrid.storage.snapshots.queue_snapshot_stream`, is written as a JSON
        array one item at a time as it yields, so the snapshot is never whole in memory;
        the file is the same as if it had been a list.
    now : datetime or None
        The time of writing (default: now); naive means UTC.

    Returns
    -------
    Path
        The new file, ``queue_<id>_checkpoint_<YYYYMMDD>_<HHMMSS>[_<n>].json``.

    Raises
    ------
    StorageError
        ``queue_id`` is invalid, ``snapshot`` is not a dict or not JSON-serialisable (the
        message names the type), or the file cannot be written; no partial file is left.
        An error raised by an iterator of ``snapshot`` passes unchanged, and no file is left.
    """
    queue_id = _check_queue_id(queue_id)
    if not isinstance(snapshot, dict):
        raise StorageError(
            f"checkpoint of queue {queue_id}: snapshot must be a dict, "
            f"got {type(snapshot).__name__}"
        )
    written = _utc(now)
    document = {
        "version": CHECKPOINT_VERSION,
        "written_at": written.isoformat(),
        "queue_id": queue_id,
        "snapshot": snapshot,
    }
    folder = Path(directory)
    try:
        ensure_directory(folder)
        seq = 1
        while (target := folder / checkpoint_name(queue_id, written, seq)).exists():
            seq += 1
        with atomic_path(target) as tmp:
            # Written as it is encoded (and its iterators read): the text is never whole in
            # memory. A failure removes the temporary file; the final name never sees a part.
            with open(tmp, "w", encoding="utf-8", buffering=_BUFFER) as handle:
                write_json(handle, document, default=_json_default)
                handle.write("\n")
            fault_point("checkpoint_write")  # the temp file exists, the rename has not happened
    except NotSerialisableError as exc:
        raise StorageError(
            f"checkpoint of queue {queue_id}: snapshot is not JSON-serialisable: {exc}"
        ) from exc
    except PathError as exc:
        raise StorageError(f"checkpoint of queue {queue_id}: {exc}") from exc
    except OSError as exc:
        raise StorageError(
            f"checkpoint of queue {queue_id}: cannot be written to {folder}: {exc}"
        ) from exc
    logger.info("checkpoint of queue %d written to %s", queue_id, target)
    return target


def read_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and check a checkpoint file.

    Parameters
    ----------
    path : path
        A checkpoint file.

    Returns
    -------
    dict
        The whole document: ``version``, ``written_at``, ``queue_id`` and ``snapshot``.

    Raises
    ------
    StorageError
        The file is missing, unreadable, not UTF-8, not valid JSON, not an object, lacks
        one of the four keys, or has a version other than :data:`CHECKPOINT_VERSION`
        (the message names the file and both versions).
    """
    file = Path(path)
    try:
        text = read_limited(file, _MAX_CHECKPOINT_BYTES).decode("utf-8")
    except FileNotFoundError as exc:
        raise StorageError(f"checkpoint {file}: file not found") from exc
    except PathError as exc:
        raise StorageError(f"checkpoint {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise StorageError(f"checkpoint {file}: cannot be read: {exc}") from exc
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise StorageError(
            f"checkpoint {file}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    if not isinstance(document, dict):
        raise StorageError(
            f"checkpoint {file}: expected a JSON object, got {type(document).__name__}"
        )
    expected = f"this forexgrid reads checkpoint version {CHECKPOINT_VERSION}"
    if "version" not in document:
        raise StorageError(f"checkpoint {file}: no 'version' key; {expected}")
    version = document["version"]
    if isinstance(version, bool) or not isinstance(version, int):
        raise StorageError(
            f"checkpoint {file}: version must be an integer, got {quote_input(version)}; "
            f"{expected}"
        )
    if version != CHECKPOINT_VERSION:
        why = (
            "written by a newer forexgrid; upgrade forexgrid to read it"
            if version > CHECKPOINT_VERSION
            else "written by an older forexgrid"
        )
        raise StorageError(
            f"checkpoint {file}: version {version} is not supported ({why}); {expected}"
        )
    for key in _KEYS:
        if key not in document:
            raise StorageError(f"checkpoint {file}: missing key {key!r}")
    if not isinstance(document["snapshot"], dict):
        raise StorageError(
            f"checkpoint {file}: 'snapshot' must be an object, "
            f"got {type(document['snapshot']).__name__}"
        )
    return document


def _entries(directory: str | os.PathLike[str], queue_id: int | None = None) -> list[_Entry]:
    folder = Path(directory)
    if not folder.is_dir():
        return []
    wanted = None if queue_id is None else _check_queue_id(queue_id)
    entries = []
    for path in folder.iterdir():
        match = _NAME_RE.match(path.name)
        if match is None or not path.is_file():
            continue
        queue = int(match["queue"])
        if wanted is not None and queue != wanted:
            continue
        try:
            written = dt.datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=dt.timezone.utc)
        except ValueError:  # 20171399_...: the shape of a name, not a time; not ours
            continue
        entries.append(_Entry(written, int(match["seq"] or 1), queue, path))
    return sorted(entries)


def list_checkpoints(directory: str | os.PathLike[str], queue_id: int | None = None) -> list[Path]:
    """Return the checkpoint files in ``directory``, oldest first.

    Files are recognised and ordered by their names (time of writing, then the same-second
    suffix); their content is not read. Other files are ignored.

    Parameters
    ----------
    directory : path
        The checkpoints folder; a missing folder has none.
    queue_id : int or None
        Only the checkpoints of this queue (default: all queues).

    Returns
    -------
    list of Path

    Raises
    ------
    StorageError
        ``queue_id`` is not an integer >= 0.
    """
    return [entry.path for entry in _entries(directory, queue_id)]


def latest_checkpoint(directory: str | os.PathLike[str], queue_id: int) -> Path | None:
    """Return the most recent checkpoint of ``queue_id`` by its name, or None.

    Raises
    ------
    StorageError
        ``queue_id`` is not an integer >= 0.
    """
    entries = _entries(directory, _check_queue_id(queue_id))
    return entries[-1].path if entries else None


def cleanup_checkpoints(
    directory: str | os.PathLike[str],
    days_old: float,
    *,
    now: dt.datetime | None = None,
) -> int:
    """Delete checkpoints written more than ``days_old`` days ago, except each queue's latest.

    Age is taken from the UTC time in the file name. The latest checkpoint of every queue
    is kept whatever its age, so an old paused queue can still be restored.

    Parameters
    ----------
    directory : path
        The checkpoints folder; a missing folder has nothing to clean.
    days_old : float
        Minimum age in days (``storage.checkpoint_retention_days``).
    now : datetime or None
        The current time (default: now); naive means UTC.

    Returns
    -------
    int
        The number of files deleted.

    Raises
    ------
    ConfigError
        ``days_old`` is negative or not a number.
    StorageError
        A file cannot be deleted.
    """
    if (
        isinstance(days_old, bool)
        or not isinstance(days_old, (int, float))
        or not math.isfinite(days_old)
        or days_old < 0
    ):
        raise ConfigError(f"cleanup_checkpoints: days_old must be a number >= 0, got {days_old!r}")
    cutoff = _utc(now) - dt.timedelta(days=days_old)
    entries = _entries(directory)
    latest = {entry.queue_id: entry for entry in entries}  # sorted: the last one wins
    deleted = 0
    for entry in entries:
        if entry.written >= cutoff or latest[entry.queue_id] is entry:
            continue
        try:
            entry.path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"checkpoint {entry.path}: cannot be deleted: {exc}") from exc
        deleted += 1
        logger.info("deleted old checkpoint %s", entry.path)
    return deleted
