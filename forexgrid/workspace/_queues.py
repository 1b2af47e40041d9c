"""Queues seen from a notebook: :class:`QueueHandle` and :class:`QueueStatus`.

A handle names a queue of the workspace's database, wherever it runs: trained here
(``wait=True``), in a background process this handle started (``wait=False``), or by another
kernel or ``forexgrid run``. Its state always comes from the database; its status lines come
from the queue's journal (:mod:`forexgrid.journal`), which every runner writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forexgrid.exceptions import ForexgridError, quote_input

if TYPE_CHECKING:
    import pandas as pd

    from forexgrid.config import Settings
    from forexgrid.grid import GridSpec
    from forexgrid.runner import Progress
    from forexgrid.storage.records import QueueInfo, RunInfo
    from forexgrid.workspace import Workspace

__all__ = ["QueueHandle", "QueueStatus", "grid_spec", "queues_frame"]

#: Statuses in which nobody trains the queue (the end of a :meth:`QueueHandle.wait`).
STOPPED_STATUSES = ("completed", "cancelled", "failed", "paused", "crashed")
#: Status lines a :class:`QueueStatus` carries.
STATUS_LINES = 20


# ------------------------------------------------------------------------------ grids


def grid_spec(
    settings: Settings, grid: GridSpec | Mapping[str, Any] | None, lists: Mapping[str, Any]
) -> GridSpec:
    """The GridSpec of ``grid`` (a GridSpec, a mapping of ``grid`` keys, or None for the
    configuration's grid) with ``lists`` overriding its lists, validated like the file."""
    from forexgrid.config import override_grid
    from forexgrid.grid import GridSpec
    from forexgrid.storage.records import grid_to_json

    if isinstance(grid, GridSpec):
        if not lists:
            return grid
        base: dict[str, Any] = grid_to_json(grid)
    elif grid is None:
        base = {}
    elif isinstance(grid, Mapping):
        base = dict(grid)
    else:
        raise ForexgridError(
            f"grid: expected a GridSpec, a mapping of grid keys (model_types, symbols, ...) or "
            f"a YAML file, got {quote_input(grid)}"
        )
    merged = {**base, **lists}
    unknown = sorted(set(merged) - set(type(settings.grid).model_fields))
    if unknown:
        raise ForexgridError(
            f"grid: unknown key(s) {', '.join(map(repr, unknown))}; expected some of "
            f"{', '.join(type(settings.grid).model_fields)}"
        )
    return GridSpec.from_settings(override_grid(settings.grid, merged))


# ------------------------------------------------------------------------------ status


@dataclass(frozen=True)
class QueueStatus:
    """A queue's state when it was read (the Training Queue panel's summary)."""

    queue_id: int
    name: str
    status: str
    total: int
    completed: int
    kept: int
    deleted: int
    failed: int
    current_index: int
    messages: tuple[str, ...] = ()
    error: str | None = None
    requested_action: str | None = None
    #: Lines the run summary adds: deleted models split into superseded and never kept, and
    #: the symbols trained on the bundled sample.
    notes: tuple[str, ...] = ()

    @property
    def done(self) -> int:
        """Configurations finished (completed or failed)."""
        return self.completed + self.failed

    @property
    def fraction(self) -> float:
        """Share of the configurations finished, 0..1."""
        return self.done / self.total if self.total else 1.0

    @property
    def stopped(self) -> bool:
        """Whether nobody trains the queue now (finished, paused or crashed)."""
        return self.status in STOPPED_STATUSES

    @classmethod
    def of(
        cls, info: QueueInfo, messages: tuple[str, ...] = (), notes: tuple[str, ...] = ()
    ) -> QueueStatus:
        return cls(
            queue_id=info.id,
            name=info.queue_name,
            status=info.status,
            total=info.total_configs,
            completed=info.completed_count,
            kept=info.kept_count,
            deleted=info.deleted_count,
            failed=info.failed_count,
            current_index=info.current_index,
            messages=messages,
            error=info.error,
            requested_action=info.requested_action,
            notes=notes,
        )

    def summary(self) -> str:
        """One line: ``Queue 3 'name' completed: 16 total, 16 completed, ...``."""
        requested = f" ({self.requested_action} requested)" if self.requested_action else ""
        return (
            f"Queue {self.queue_id} '{self.name}' {self.status}{requested}: {self.done}/"
            f"{self.total} done, {self.completed} completed, {self.failed} failed, "
            f"{self.kept} kept, {self.deleted} deleted"
        )

    def __str__(self) -> str:
        lines = [self.summary(), *self.notes]
        if self.error:
            lines.append(f"Error: {self.error}")
        lines += self.messages[-5:]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from forexgrid.workspace._html import status_card

        return status_card(self)


# ------------------------------------------------------------------------------ handle


class QueueHandle:
    """A training queue of the workspace: its status, controls and results.

    Get one from :meth:`Workspace.run`, :meth:`Workspace.queue` or
    :meth:`Workspace.create_queue`. Pause and cancel are requests the runner honours after
    the configurations in flight, from any process.
    """

    def __init__(self, workspace: Workspace, queue_id: int, info: QueueInfo | None = None):
        self.workspace = workspace
        self.id = int(queue_id)
        self._info = info
        self._process: subprocess.Popen | None = None
        self._output: Path | None = None

    # -------------------------------------------------------------- reading

    def info(self) -> QueueInfo:
        """The queue's row as stored now."""
        from forexgrid import storage

        with self.workspace.session() as session:
            self._info = storage.queues.get_queue(session, self.id)
        return self._info

    @property
    def journal(self) -> Path:
        """The file of the queue's status lines."""
        from forexgrid.journal import journal_path

        info = self._info or self.info()
        return journal_path(self.workspace.settings, self.id, info.queue_uuid)

    def messages(self, limit: int = STATUS_LINES) -> tuple[str, ...]:
        """The queue's newest status lines, oldest first."""
        from forexgrid.journal import read_tail

        return tuple(event["message"] for event in read_tail(self.journal, limit))

    def status(self) -> QueueStatus:
        """The queue's status, counts, newest status lines and summary notes, read now."""
        from forexgrid import storage

        # One transaction for the row and the outcomes: panels call this every 0.5 s.
        with self.workspace.session() as session:
            info = self._info = storage.queues.get_queue(session, self.id)
            outcomes = storage.history.queue_model_outcomes(session, self.id)
        notes = []
        if outcomes["kept_then_deleted"]:
            notes.append(
                f"Deleted: {outcomes['kept_then_deleted']} kept at first, then superseded; "
                f"{outcomes['never_kept']} never kept"
            )
        timeframes = ", ".join(info.grid.get("timeframes") or ())
        notes += [
            f"Data: {symbol} {timeframes} came from the bundled sample; import your own with "
            f"ws.data.import_file(FILE, symbol={symbol!r}) (or `forexgrid data import FILE "
            f"--symbol {symbol}`)"
            for symbol in self.sample_symbols()
        ]
        return QueueStatus.of(info, self.messages(), tuple(notes))

    def outcomes(self) -> dict[str, int]:
        """What became of the models of the queue's completed runs: ``kept`` (now),
        ``kept_then_deleted`` (superseded or removed since), ``never_kept``."""
        from forexgrid import storage

        with self.workspace.session() as session:
            return storage.history.queue_model_outcomes(session, self.id)

    def sample_symbols(self) -> list[str]:
        """The queue's symbols that are trained on the bundled sample (nothing imported)."""
        info = self._info or self.info()
        store = self.workspace.data.store
        return [s for s in info.grid.get("symbols") or () if store.serves_sample(s)]

    def training(self) -> list[RunInfo]:
        """The runs being trained now (in flight), in queue order."""
        from forexgrid import storage

        with self.workspace.session() as session:
            return storage.runs.running_runs(session, self.id)

    def scopes(self) -> pd.DataFrame:
        """The multiple-testing scopes this queue added trials to, with their trials,
        effective trials and PBO (see :meth:`Workspace.trials`)."""
        from forexgrid import scoring

        with self.workspace.session() as session:
            return scoring.queue_scopes(session, self.id)

    def results(self) -> pd.DataFrame:
        """The queue's runs in queue order: configuration, status, kept, best regimes, error,
        configuration hash."""
        import pandas as pd

        from forexgrid import storage

        with self.workspace.session() as session:
            runs = storage.runs.queue_runs(session, self.id)
        columns = [
            "run_id", "queue_index", "model_type", "symbol", "timeframe", "days_history",
            "horizon", "encoder", "status", "kept", "kept_when_trained", "best_regimes",
            "error", "completed_at", "config_hash",
        ]  # fmt: skip
        rows = [
            {
                "run_id": r.id,
                "queue_index": r.queue_index,
                "model_type": r.model_type,
                "symbol": r.symbol,
                "timeframe": r.timeframe,
                "days_history": r.days_history,
                "horizon": r.horizon,
                "encoder": r.encoder,
                "status": r.status,
                "kept": r.is_model_kept,
                "kept_when_trained": r.kept_when_trained,
                "best_regimes": ", ".join(r.best_regimes),
                "error": r.error,
                "completed_at": r.completed_at,
                "config_hash": r.config_hash,
            }
            for r in runs
        ]
        return pd.DataFrame(rows, columns=columns)

    # -------------------------------------------------------------- controls

    def pause(self) -> QueueStatus:
        """Ask the queue to pause after the configurations in flight (resume it later)."""
        return self._request("pause")

    def cancel(self) -> QueueStatus:
        """Ask the queue to stop for good after the configurations in flight."""
        return self._request("cancel")

    def _request(self, action: str) -> QueueStatus:
        from forexgrid import storage

        with self.workspace.session() as session:
            self._info = storage.queue_control.request_action(session, self.id, action)
        return QueueStatus.of(self._info, self.messages())

    def resume(
        self, *, wait: bool = True, progress: bool = True, on_progress: Any = None
    ) -> QueueHandle:
        """Continue a paused or crashed queue with what is not done (see :meth:`start`)."""
        return self.start(wait=wait, progress=progress, on_progress=on_progress)

    def start(
        self, *, wait: bool = True, progress: bool = True, on_progress: Any = None
    ) -> QueueHandle:
        """Train the queue: here until it stops (``wait=True``), or in a background process
        (``wait=False``; returns at once, :meth:`wait` follows it)."""
        if wait:
            self._run_here(progress, on_progress)
        else:
            if on_progress is not None:
                raise ForexgridError(
                    "on_progress needs wait=True (a background queue runs in another process; "
                    "poll handle.status() instead)"
                )
            self._launch()
        return self

    def _run_here(self, progress: bool, on_progress: Any) -> None:
        from forexgrid.progress import ProgressPrinter
        from forexgrid.runner import run_queue

        printer = ProgressPrinter() if progress else None

        def notify(event: Progress) -> None:
            if printer is not None:
                printer(event)
            if on_progress is not None:
                on_progress(event)

        try:
            self._info = run_queue(self.id, self.workspace.settings, progress=notify)
        except KeyboardInterrupt:
            # The runner has paused the queue (nothing lost): say how to go on, no traceback.
            if printer is not None:
                printer.close()
            print(
                f"Interrupted: queue {self.id} is paused. Continue it with "
                f"ws.resume({self.id}) (or `forexgrid resume {self.id}`).",
                file=sys.stderr,
            )
        finally:
            if printer is not None:
                printer.close()

    def _launch(self) -> None:
        """Start ``python -m forexgrid.workspace._background`` for this queue, detached (its
        own session: the kernel's interrupt does not reach it, and it outlives a restart)."""
        from forexgrid._atomic import atomic_write_text

        info = self.info()
        if info.status in STOPPED_STATUSES:
            self._join_background()
        if self.background:
            raise ForexgridError(f"queue {self.id} already runs in a background process")
        settings = self.workspace.settings
        stem = self.journal.with_suffix("")
        settings_file = stem.with_name(stem.name + ".settings.json")
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(
            settings_file,
            json.dumps(
                {
                    "settings": settings.model_dump(mode="json"),
                    "workspace": str(settings.workspace),
                }
            ),
        )
        self._output = stem.with_name(stem.name + ".out")
        command = [
            sys.executable, "-m", "forexgrid.workspace._background", str(settings_file),
            str(self.id), info.status,
        ]  # fmt: skip
        with open(self._output, "ab") as output:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self.workspace.path,
                start_new_session=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )

    def _join_background(self, timeout: float = 120) -> None:
        """Wait for the background process of a stopped queue to finish its last steps."""
        if self._process is not None:
            try:
                self._process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass  # still tidying up (a long PBO): `background` keeps saying so

    def background_failure(self, status: str) -> str | None:
        """Why the background process this handle started is gone while the queue is
        still ``status`` (pending or running): it exited without training the queue (another
        queue holds the slot, a bad setting, a kill). Said once: the handle then forgets the
        process, so a later :meth:`start` may try again. None when there is nothing to say."""
        exited = self._process is not None and self._process.poll() is not None
        if not exited or status not in ("pending", "running"):
            return None
        message = self._not_running(status, exited=True)
        self._process = None
        return message

    @property
    def background(self) -> bool:
        """Whether a background process this handle started is still running."""
        return self._process is not None and self._process.poll() is None

    def wait(
        self, timeout: float | None = None, *, progress: bool = True, poll: float = 0.5
    ) -> QueueStatus:
        """Follow the queue until nobody trains it (finished, paused or crashed).

        Shows the progress bar and the status lines as they are journalled (``progress``),
        whoever runs the queue. Returns the final :class:`QueueStatus`.

        Raises
        ------
        ForexgridError
            After ``timeout`` seconds; when the background process this handle started
            exits without the queue having stopped (its output is quoted); or when the queue
            is pending and nobody was asked to run it.
        """
        from forexgrid.journal import JournalReader
        from forexgrid.progress import ProgressPrinter

        printer = ProgressPrinter() if progress else None
        reader = JournalReader(self.journal)
        started = time.monotonic()

        def show_new_lines() -> None:
            for event in reader.new_events() if printer is not None else ():
                printer(event)

        try:
            while True:
                show_new_lines()
                info = self.info()
                if info.status in STOPPED_STATUSES:
                    # The runner's last steps (PBO, a checkpoint) follow the status change.
                    self._join_background()
                    show_new_lines()
                    return QueueStatus.of(self.info(), self.messages())
                failure = self.background_failure(info.status)
                if failure is not None:
                    raise ForexgridError(failure)
                if info.status == "pending" and self._process is None:
                    raise ForexgridError(self._not_running(info.status, exited=False))
                if timeout is not None and time.monotonic() - started > timeout:
                    raise ForexgridError(
                        f"queue {self.id} is still {info.status} after {timeout:g} s "
                        f"({info.done}/{info.total_configs} done)"
                    )
                time.sleep(poll)
        finally:
            if printer is not None:
                printer.close()

    def _not_running(self, status: str, *, exited: bool) -> str:
        if not exited:
            return (
                f"queue {self.id} is pending and nobody runs it: start it with "
                f"ws.queue({self.id}).start() (or `forexgrid resume {self.id}`)"
            )
        tail = ""
        if self._output is not None and self._output.is_file():
            lines = self._output.read_text(errors="replace").strip().splitlines()
            tail = f": {lines[-1][:300]}" if lines else ""
        return (
            f"the background runner of queue {self.id} exited with status "
            f"{self._process.returncode} while the queue is {status}{tail} (full output: "
            f"{self._output})"
        )

    # -------------------------------------------------------------- display

    def __repr__(self) -> str:
        info = self._info
        state = f" {info.status} {info.done}/{info.total_configs}" if info else ""
        return f"<QueueHandle {self.id}{state} in {self.workspace.path}>"

    def _repr_html_(self) -> str:
        return self.status()._repr_html_()


def queues_frame(workspace: Workspace) -> pd.DataFrame:
    """Every queue of the workspace, oldest first."""
    import pandas as pd

    from forexgrid import storage

    with workspace.session() as session:
        queues = storage.queues.get_all_training_queues(session)
    columns = [
        "id", "name", "status", "total", "completed", "failed", "kept", "deleted", "skipped",
        "current_index", "owner", "created_at", "started_at", "completed_at", "error",
    ]  # fmt: skip
    rows = [
        {
            "id": q.id,
            "name": q.queue_name,
            "status": q.status,
            "total": q.total_configs,
            "completed": q.completed_count,
            "failed": q.failed_count,
            "kept": q.kept_count,
            "deleted": q.deleted_count,
            "skipped": q.skipped_count,
            "current_index": q.current_index,
            "owner": q.owner,
            "created_at": q.created_at,
            "started_at": q.started_at,
            "completed_at": q.completed_at,
            "error": q.error,
        }
        for q in sorted(queues, key=lambda q: q.id)
    ]
    return pd.DataFrame(rows, columns=columns)
