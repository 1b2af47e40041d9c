"""A queue's status lines, kept in a file so that any process can show them.

The runner calls its progress callback in its own process only. A notebook that started a
queue in the background, a second kernel, or the JupyterLab panels watching a queue run by
``forexgrid run`` need the same lines ("Training 3/16 ...", "Model kept (improves: ...)"):
:func:`forexgrid.runner.run_queue` appends each event to the queue's journal, one JSON object
per line, and :func:`read_tail` returns the newest ones.

Appending is the only write (``O_APPEND``; a line is one ``write`` call, so readers never see
half a line from a live writer, and a torn last line after a crash is skipped). The journal is
a display aid, never a source of truth: counts come from the database.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forexgrid.config import Settings
    from forexgrid.runner import Progress

__all__ = ["JournalReader", "JournalWriter", "journal_path", "read_tail"]

logger = logging.getLogger(__name__)

#: Bytes read from the end of a journal to find its newest lines.
_TAIL_BYTES = 64 * 1024


def journal_path(settings: Settings, queue_id: int, queue_uuid: str) -> Path:
    """Where the journal of a queue lives: beside the log file, named by id and UUID (two
    databases used from one workspace never share a journal)."""
    return settings.log_path.parent / "queues" / f"queue_{queue_id}_{queue_uuid[:8]}.jsonl"


class JournalWriter:
    """Append progress events to a queue's journal; a failing write is logged once, never
    raised (the queue's work matters more than its status lines)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._broken = False

    def __call__(self, event: Progress) -> None:
        if self._broken:
            return
        line = json.dumps(_plain(asdict(event)), ensure_ascii=False) + "\n"
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as err:
            self._broken = True
            logger.warning("status lines of the queue are not journalled (%s): %s", self.path, err)


def _plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: list(v) if isinstance(v, tuple) else v for k, v in data.items()}


def read_tail(path: Path, limit: int = 50) -> list[dict[str, Any]]:
    """The newest ``limit`` events of a journal, oldest first ([] when there is none)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - _TAIL_BYTES))
            chunk = handle.read()
    except FileNotFoundError:
        return []
    lines = chunk.split(b"\n")
    if size > _TAIL_BYTES:
        lines = lines[1:]  # the first line may be cut by the seek
    events = _parse(lines)
    return events[-limit:] if limit else events


def _parse(lines: list[bytes]) -> list[dict[str, Any]]:
    events = []
    for raw in lines:
        if not raw.strip():
            continue
        try:
            events.append(json.loads(raw))
        except ValueError:
            continue  # a line torn by a crash: skip it, the next ones are whole
    return events


class JournalReader:
    """Follow a journal: each call of :meth:`new_events` returns the events appended since
    the previous call (the first call: the newest ``backlog`` events)."""

    def __init__(self, path: Path, backlog: int = 5) -> None:
        self.path = path
        self.backlog = backlog
        self._offset: int | None = None

    def new_events(self) -> list[Progress]:
        from forexgrid.runner import Progress

        if self._offset is None:
            events = read_tail(self.path, self.backlog)
            self._offset = _size(self.path)
        else:
            try:
                with open(self.path, "rb") as handle:
                    handle.seek(self._offset)
                    chunk = handle.read()
            except FileNotFoundError:
                return []
            whole = chunk[: chunk.rfind(b"\n") + 1]  # a line still being written waits
            self._offset += len(whole)
            events = _parse(whole.splitlines())
        return [
            Progress(**{**e, "improved_regimes": tuple(e.get("improved_regimes", ()))})
            for e in events
        ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0
