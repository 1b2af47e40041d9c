"""The Training Queue panel (``manager.queue``) and the recovery banner.

:class:`QueueModel` is the panel without widgets: the choices, what Generate creates, what
each button does, which buttons make sense, what the summary and the log say. It reads and
changes the queue only through the Workspace (:class:`~forexgrid.workspace.QueueHandle`),
so a queue started by ``forexgrid run`` or another kernel shows here like one started here.
:class:`QueuePanel` binds ipywidgets to it; a :class:`~forexgrid.widgets._base.Poller` on
the kernel's event loop calls :meth:`QueuePanel.refresh` every 0.5 s.
"""

from __future__ import annotations

import html
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from forexgrid.exceptions import ForexgridError

from ._base import css, handler, message_html

if TYPE_CHECKING:
    from forexgrid.recovery import CrashedQueue
    from forexgrid.workspace import QueueHandle, QueueStatus, Workspace

__all__ = ["QueueModel", "QueuePanel", "RecoveryBanner", "button_states"]

PANEL = "queue"
#: The guide's choices; values of the workspace's own grid are added to them.
DAYS_CHOICES = (30, 60, 90, 180)
HORIZON_CHOICES = (1, 3, 6, 12)
#: Lines the status log keeps (newest last).
LOG_LINES = 200
#: Queue statuses in which a runner is (or is about to be) at work.
ACTIVE = ("running",)
RESUMABLE = ("paused", "crashed")


def button_states(status: str | None, *, requested: str | None = None) -> dict[str, bool]:
    """Which of the queue's buttons make sense for a queue in ``status`` (None: no queue yet).

    Generate whenever nothing runs; Start for a freshly generated (pending) queue; Pause and
    Cancel while it runs (Pause not once a cancel is requested; neither twice); Resume for a
    paused or crashed queue; Cancel also for a pending, paused or crashed one (it is then
    cancelled at once).
    """
    running = status in ACTIVE
    return {
        "generate": not running,
        "start": status == "pending",
        "pause": running and requested is None,
        "cancel": (running and requested != "cancel") or status in ("pending", *RESUMABLE),
        "resume": status in RESUMABLE,
    }


@dataclass(frozen=True)
class Generated:
    """What Generate made: the grid's arithmetic, the count after skipping, the queue."""

    arithmetic: str
    total: int
    skipped: int
    queue: QueueHandle

    @property
    def to_train(self) -> int:
        return self.total - self.skipped

    def lines(self) -> list[str]:
        """The guide's three lines."""
        return [
            self.arithmetic,
            f"- {self.skipped} already trained",
            f"= {self.to_train} new configurations to train (queue {self.queue.id})",
        ]


class QueueModel:
    """The Training Queue without widgets.

    Parameters
    ----------
    workspace
        The workspace whose data, database and queues the panel shows.
    """

    def __init__(self, workspace: Workspace) -> None:
        from forexgrid.config import ENCODERS, MODEL_TYPES
        from forexgrid.data.timeframes import TRAINABLE_TIMEFRAMES

        self.workspace = workspace
        grid = workspace.settings.grid
        self.model_type_choices: tuple[str, ...] = MODEL_TYPES
        self.symbol_choices: tuple[str, ...] = self._symbols(grid.symbols)
        self.timeframe_choices: tuple[str, ...] = TRAINABLE_TIMEFRAMES
        self.days_choices = tuple(sorted({*DAYS_CHOICES, *grid.days_history}))
        self.horizon_choices = tuple(sorted({*HORIZON_CHOICES, *grid.horizons}))
        self.encoder_choices: tuple[str, ...] = ENCODERS
        #: The configuration's grid: what the controls start with.
        self.defaults: dict[str, Any] = {
            "model_types": tuple(grid.model_types),
            "symbols": tuple(s for s in grid.symbols if s in self.symbol_choices),
            "timeframes": tuple(t for t in grid.timeframes if t in self.timeframe_choices),
            "days_history": tuple(grid.days_history),
            "horizons": tuple(grid.horizons),
            "encoder": grid.encoders[0],
            "skip_trained": bool(grid.skip_trained),
        }
        self.queue: QueueHandle | None = None
        self.generated: Generated | None = None
        self.log: deque[str] = deque(maxlen=LOG_LINES)
        self._reader: Any = None
        self._last: QueueStatus | None = None

    def _symbols(self, configured: Sequence[str]) -> tuple[str, ...]:
        # The data store's symbols (EURUSD is served from the bundled sample when nothing is
        # imported, and list() says so), then the configuration's.
        listed = self.workspace.data.list()
        stored = list(dict.fromkeys(listed["symbol"])) if not listed.empty else []
        return tuple(dict.fromkeys([*stored, *configured]))

    # -------------------------------------------------------------- actions

    def generate(
        self,
        *,
        model_types: Sequence[str],
        symbols: Sequence[str],
        timeframes: Sequence[str],
        days_history: Sequence[int],
        horizons: Sequence[int],
        encoder: str,
        skip_trained: bool,
    ) -> Generated:
        """Create the pending queue of the selected grid (nothing trains yet).

        A queue this panel generated before and never started is cancelled first, so
        pressing Generate twice leaves one pending queue, not two.

        Raises
        ------
        ForexgridError
            A list is empty (naming it); the grid is invalid or too large; every
            configuration is already trained.
        """
        lists = {
            "model_types": list(model_types),
            "symbols": list(symbols),
            "timeframes": list(timeframes),
            "days_history": [int(d) for d in days_history],
            "horizons": [int(h) for h in horizons],
        }
        for key, values in lists.items():
            if not values:
                raise ForexgridError(f"{key.replace('_', ' ')}: select at least one")
        if not encoder:
            raise ForexgridError("encoder: select one")
        spec = self.workspace.grid({**lists, "encoders": [encoder]})
        self._discard_unstarted()
        handle = self.workspace.create_queue(spec, skip_trained=skip_trained)
        info = handle.info()
        generated = Generated(spec.describe(), len(spec), int(info.skipped_count), handle)
        self.generated = generated
        self.attach(handle)
        self.log.extend(generated.lines())
        return generated

    def _discard_unstarted(self) -> None:
        if self.generated is None:
            return
        queue = self.generated.queue
        if queue.info().status == "pending":
            queue.cancel()
            self.log.append(f"Queue {queue.id} (generated, never started) cancelled.")
        self.generated = None

    def attach(self, handle: QueueHandle) -> None:
        """Follow ``handle`` from now on (its journal from its newest lines)."""
        from forexgrid.journal import JournalReader

        self.queue = handle
        self._reader = JournalReader(handle.journal, backlog=0)
        self._last = None

    def start(self) -> QueueStatus:
        """Train the generated queue in a background process (the kernel stays free)."""
        queue = self._require_queue("start")
        queue.start(wait=False)
        self.log.append(f"Queue {queue.id} started in a background process.")
        return self.read()

    def pause(self) -> QueueStatus:
        """Ask the queue to pause after the configurations in flight."""
        status = self._require_queue("pause").pause()
        self.log.append(f"Pause requested for queue {status.queue_id}.")
        return self.read()

    def cancel(self) -> QueueStatus:
        """Ask the queue to stop for good after the configurations in flight."""
        status = self._require_queue("cancel").cancel()
        self.log.append(f"Cancel requested for queue {status.queue_id}.")
        return self.read()

    def resume(self, queue: QueueHandle | None = None) -> QueueStatus:
        """Continue the paused or crashed queue (``queue``, default: the one shown) with what
        is not done, in a background process."""
        if queue is not None and (self.queue is None or queue.id != self.queue.id):
            self.attach(queue)
        queue = self._require_queue("resume")
        queue.resume(wait=False)
        self.log.append(f"Queue {queue.id} resumed in a background process.")
        return self.read()

    def _require_queue(self, action: str) -> QueueHandle:
        if self.queue is None:
            raise ForexgridError(f"{action}: no queue yet; press Generate first")
        return self.queue

    # -------------------------------------------------------------- reading

    def read(self) -> QueueStatus | None:
        """The shown queue's status now; new journal lines are added to the log.

        Raises
        ------
        ForexgridError
            The background runner started here exited without training the queue (once).
        """
        if self.queue is None:
            return None
        status = self.queue.status()
        for event in self._reader.new_events():
            self.log.append(event.message)
        self._last = status
        self._check_runner(status)
        return status

    def _check_runner(self, status: QueueStatus) -> None:
        """A background runner started here that exited while its queue is still pending
        never trained it (another queue holds the slot, a bad setting): say so, once."""
        if status.status != "pending":
            return  # a runner that died while training leaves a crash: the banner's job
        failure = self.queue.background_failure(status.status)
        if failure is not None:
            raise ForexgridError(failure)

    def follow_external(self) -> QueueHandle | None:
        """Start following a queue someone else runs (the CLI, another kernel, a batch) when
        the shown one is not running; return it (None: nothing new)."""
        if self._last is not None and self._last.status in (*ACTIVE, "pending"):
            return None
        queues = self.workspace.queues()
        running = queues[queues["status"] == "running"]
        if running.empty:
            return None
        newest = int(running["id"].max())
        if self.queue is not None and self.queue.id == newest:
            return None
        handle = self.workspace.queue(newest)
        self.attach(handle)
        self.log.append(f"Following queue {newest}, started elsewhere.")
        return handle

    @property
    def last(self) -> QueueStatus | None:
        """The status read last (None before a queue is shown)."""
        return self._last

    @staticmethod
    def summary(status: QueueStatus | None) -> dict[str, Any]:
        """The Results Summary: Queue, Status, Total, Completed, Kept, Deleted, Failed,
        Current index (values ready for HTML)."""
        if status is None:
            return {"Queue": "-", "Status": "no queue", "Total": 0, "Completed": 0, "Kept": 0,
                    "Deleted": 0, "Failed": 0, "Current index": "-"}  # fmt: skip
        state = status.status.capitalize()
        if status.requested_action:
            state += f" ({status.requested_action} requested)"
        return {
            "Queue": f"{status.queue_id} {html.escape(status.name)}",
            "Status": state,
            "Total": status.total,
            "Completed": status.completed,
            "Kept": status.kept,
            "Deleted": status.deleted,
            "Failed": status.failed,
            "Current index": status.current_index,
        }


# ------------------------------------------------------------------------------ view


def _checkboxes(options: Sequence[Any], selected: Sequence[Any], control: str) -> w.HBox:
    # The row is forexgrid-queue-<control>, each box forexgrid-queue-<control>-<option>.
    boxes = [
        css(w.Checkbox(value=o in selected, description=str(o), indent=False), PANEL,
            f"{control}-{o}")
        for o in options
    ]  # fmt: skip
    for box in boxes:
        box.layout.width = "auto"
    return css(w.HBox(boxes), PANEL, control)


_LOG_HTML = (
    "<div style='max-height:14em;overflow-y:auto;display:flex;flex-direction:column-reverse;"
    "border:1px solid #d0d7de;padding:4px'><pre style='margin:0;font-size:90%'>{}</pre></div>"
)


class CheckboxGroup:
    """A row of checkboxes whose ``value`` is the tuple of the checked options (in order)."""

    def __init__(self, options: Sequence[Any], selected: Sequence[Any], control: str) -> None:
        self.options = tuple(options)
        self.box = _checkboxes(self.options, selected, control)

    @property
    def checkboxes(self) -> tuple[w.Checkbox, ...]:
        return tuple(self.box.children)

    @property
    def value(self) -> tuple[Any, ...]:
        pairs = zip(self.options, self.box.children, strict=True)
        return tuple(option for option, box in pairs if box.value)

    @value.setter
    def value(self, values: Sequence[Any]) -> None:
        for option, box in zip(self.options, self.box.children, strict=True):
            box.value = option in values


class QueuePanel:
    """The Training Queue tab: choose the grid, Generate, Start, Pause, Cancel, Resume and
    watch it train (``.widget`` is the tab's content)."""

    def __init__(self, model: QueueModel) -> None:
        self.model = model
        d = model.defaults
        self.model_types = css(
            w.SelectMultiple(options=model.model_type_choices, value=d["model_types"], rows=8,
                             description="Models"),
            PANEL, "model-types",
        )  # fmt: skip
        self.symbols = css(
            w.SelectMultiple(options=model.symbol_choices, value=d["symbols"], rows=4,
                             description="Symbols"),
            PANEL, "symbols",
        )  # fmt: skip
        self.timeframes = CheckboxGroup(model.timeframe_choices, d["timeframes"], "timeframes")
        self.days = CheckboxGroup(model.days_choices, d["days_history"], "days")
        self.horizons = CheckboxGroup(model.horizon_choices, d["horizons"], "horizons")
        self.encoder = css(
            w.Dropdown(options=model.encoder_choices, value=d["encoder"], description="Encoder"),
            PANEL, "encoder",
        )  # fmt: skip
        self.skip_trained = css(
            w.Checkbox(value=d["skip_trained"], description="Skip already-trained", indent=False),
            PANEL, "skip-trained",
        )  # fmt: skip
        self.generate_button = self._button("Generate Queue", "generate", "primary")
        self.start_button = self._button("Start Training", "start", "success")
        self.pause_button = self._button("Pause", "pause", "warning")
        self.cancel_button = self._button("Cancel", "cancel", "danger")
        self.resume_button = self._button("Resume", "resume", "info")
        self.confirm_cancel_button = self._button(
            "Yes, cancel the queue", "confirm-cancel", "danger"
        )
        self.keep_button = self._button("No, keep it", "keep", "")
        self.cancel_confirm = css(
            w.HBox([w.HTML("Cancel the queue for good?"), self.confirm_cancel_button,
                    self.keep_button], layout=w.Layout(display="none")),
            PANEL, "cancel-confirm",
        )  # fmt: skip
        self.progress = css(
            w.IntProgress(value=0, min=0, max=1, description="Progress"), PANEL, "progress"
        )
        self.message = css(w.HTML(), PANEL, "message")
        self.summary = css(w.HTML(), PANEL, "summary")
        # The status lines, newest last, in a box that stays scrolled to the newest line
        # (column-reverse), which a Textarea does not.
        self.status = css(w.HTML(), PANEL, "status")
        self.generate_button.on_click(self._on_generate)
        self.start_button.on_click(self._on_start)
        self.pause_button.on_click(self._on_pause)
        self.cancel_button.on_click(self._on_cancel)
        self.confirm_cancel_button.on_click(self._on_confirm_cancel)
        self.keep_button.on_click(self._on_keep)
        self.resume_button.on_click(self._on_resume)
        label = w.HTML
        self.widget = css(
            w.VBox(
                [
                    w.HBox([self.model_types, self.symbols]),
                    w.HBox([label("<b>Timeframes</b>&nbsp;"), self.timeframes.box]),
                    w.HBox([label("<b>Days history</b>&nbsp;"), self.days.box]),
                    w.HBox([label("<b>Horizons</b>&nbsp;"), self.horizons.box]),
                    w.HBox([self.encoder, self.skip_trained]),
                    w.HBox([self.generate_button, self.start_button, self.pause_button,
                            self.cancel_button, self.resume_button]),
                    self.cancel_confirm,
                    self.message,
                    self.progress,
                    self.summary,
                    label("<b>Status</b>"),
                    self.status,
                ]
            ),
            PANEL, "panel",
        )  # fmt: skip
        self._show(None)

    @staticmethod
    def _button(text: str, control: str, style: str) -> w.Button:
        return css(w.Button(description=text, button_style=style), PANEL, f"{control}-button")

    # -------------------------------------------------------------- handlers

    @handler
    def _on_generate(self, _button: Any = None) -> None:
        generated = self.model.generate(
            model_types=self.model_types.value,
            symbols=self.symbols.value,
            timeframes=self.timeframes.value,
            days_history=self.days.value,
            horizons=self.horizons.value,
            encoder=self.encoder.value,
            skip_trained=self.skip_trained.value,
        )
        self.show_message(
            f"{generated.arithmetic}; {generated.skipped} already trained; "
            f"{generated.to_train} to train. Press Start Training.",
            "ok",
        )
        self.refresh()

    @handler
    def _on_start(self, _button: Any = None) -> None:
        self._show(self.model.start())
        self.show_message("Training in a background process; this page updates by itself.")

    @handler
    def _on_pause(self, _button: Any = None) -> None:
        self._show(self.model.pause())
        self.show_message("Pause requested: the queue pauses after the model in training.")

    @handler
    def _on_cancel(self, _button: Any = None) -> None:
        # The guide's confirmation dialog: a second, explicit click cancels.
        self.cancel_confirm.layout.display = "flex"

    @handler
    def _on_confirm_cancel(self, _button: Any = None) -> None:
        self.cancel_confirm.layout.display = "none"
        self._show(self.model.cancel())
        self.show_message("Cancel requested: the queue stops after the model in training.")

    @handler
    def _on_keep(self, _button: Any = None) -> None:
        self.cancel_confirm.layout.display = "none"

    @handler
    def _on_resume(self, _button: Any = None) -> None:
        self._show(self.model.resume())
        self.show_message("Resumed in a background process.")

    # -------------------------------------------------------------- display

    def refresh(self) -> None:
        """Read the queue (or pick up one started elsewhere) and show it; the poller calls
        this every 0.5 s."""
        followed = self.model.follow_external()
        if followed is not None:
            self.show_message(f"Following queue {followed.id}, started elsewhere.")
        self._show(self.model.read())

    def _show(self, status: QueueStatus | None) -> None:
        states = button_states(
            status.status if status else None,
            requested=status.requested_action if status else None,
        )
        for name, enabled in states.items():
            getattr(self, f"{name}_button").disabled = not enabled
        if status is not None:
            self.progress.max = max(status.total, 1)
            self.progress.value = status.done
            self.progress.bar_style = {
                "completed": "success",
                "paused": "warning",
                "cancelled": "warning",
                "failed": "danger",
                "crashed": "danger",
            }.get(status.status, "info")
        rows = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{k}</th><td>{v}</td></tr>"
            for k, v in self.model.summary(status).items()
        )
        summary = f"<table class='forexgrid-queue-summary-table'>{rows}</table>"
        if self.summary.value != summary:
            self.summary.value = summary
        self._show_log()

    def show_message(self, text: str, kind: str = "info") -> None:
        self.message.value = message_html(text, kind)

    def show_error(self, text: str) -> None:
        """Show an error in the status area and the log."""
        self.model.log.append(f"Error: {text}")
        self.message.value = message_html(text, "error")
        self._show_log()

    def _show_log(self) -> None:
        value = _LOG_HTML.format(html.escape("\n".join(self.model.log)))
        if self.status.value != value:
            self.status.value = value


# ------------------------------------------------------------------------------ recovery


class RecoveryBanner:
    """Shown on open when queues crashed: each one's progress, remaining configurations and
    recommendation, a Resume button each, and Close (``.widget``; hidden when nothing
    crashed)."""

    def __init__(self, workspace: Workspace, queue_panel: QueuePanel) -> None:
        self.workspace = workspace
        self.queue_panel = queue_panel
        self.report = workspace.recovery()
        self.crashed: tuple[CrashedQueue, ...] = tuple(self.report.crashed)
        self.resume_buttons: list[w.Button] = []
        rows: list[w.Widget] = []
        for item in self.crashed:
            button = css(w.Button(description=f"Resume queue {item.queue.id}",
                                  button_style="info"), "recovery", "resume-button")  # fmt: skip
            button.on_click(self._resume_handler(item))
            self.resume_buttons.append(button)
            bar = w.FloatProgress(value=item.progress, min=0, max=1, bar_style="danger")
            rows.append(w.VBox([w.HTML(message_html(item.describe(), "warning")),
                                w.HBox([bar, button])]))  # fmt: skip
        notice = ""
        if workspace.settings.recovery.auto_resume_on_crash:
            notice = (
                "Auto-resume is on (recovery.auto_resume_on_crash): crashed queues were marked "
                "paused and can be resumed here."
            )
        self.notice = css(w.HTML(message_html(notice, "info") if notice else ""),
                          "recovery", "notice")  # fmt: skip
        self.message = css(w.HTML(), "recovery", "message")
        self.close_button = css(w.Button(description="Close"), "recovery", "close-button")
        self.close_button.on_click(self._on_close)
        title = w.HTML(f"<b>Crashed queues found: {len(self.crashed)}</b>")
        self.widget = css(
            w.VBox([title, *rows, self.notice, self.message, self.close_button],
                   layout=w.Layout(border="1px solid #cf222e", padding="6px")),
            "recovery", "banner",
        )  # fmt: skip
        if not self.crashed:
            self.widget.layout.display = "none"

    def _resume_handler(self, item: CrashedQueue) -> Any:
        def on_click(_button: Any = None) -> None:
            self._on_resume(item)

        return on_click

    @handler
    def _on_resume(self, item: CrashedQueue) -> None:
        from forexgrid.workspace import QueueHandle

        self.queue_panel._show(
            self.queue_panel.model.resume(QueueHandle(self.workspace, item.queue.id))
        )
        self.message.value = message_html(f"Queue {item.queue.id} resumed.", "ok")
        self.widget.layout.display = "none"

    @handler
    def _on_close(self, _button: Any = None) -> None:
        self.widget.layout.display = "none"

    def show_error(self, text: str) -> None:
        self.message.value = message_html(text, "error")
