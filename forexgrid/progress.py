"""How a running queue shows itself: a progress bar plus the user guide's status lines.

:class:`ProgressPrinter` is the progress callback of :func:`forexgrid.runner.run_queue` that
the CLI and :meth:`forexgrid.Workspace.run` use. In a terminal it draws a tqdm bar on stderr
and prints each status line above it; in Jupyter (a kernel with a notebook front end) the
bar is tqdm's ipywidgets bar and the status lines are the cell's text output, so both update
live while the cell runs.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from forexgrid.runner import Progress

__all__ = ["ProgressPrinter", "in_notebook"]


def in_notebook() -> bool:
    """True inside a Jupyter kernel (where rich output and widgets display)."""
    if "IPython" not in sys.modules:  # never import IPython just to find out
        return False
    from IPython import get_ipython

    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


class ProgressPrinter:
    """A progress callback that draws the bar and prints the status lines.

    The bar counts finished configurations and shows the one in training; each status line
    ("Model kept (improves: ...)", "Checkpoint saved", ...) is printed above it (below it in
    a notebook, where output only grows).

    Parameters
    ----------
    stream
        Where a terminal bar and lines go (default: stderr). Ignored in a notebook.
    notebook
        Use the Jupyter bar; default: when running inside a Jupyter kernel.
    """

    def __init__(self, stream=None, *, notebook: bool | None = None) -> None:
        self.notebook = in_notebook() if notebook is None else notebook
        self.stream = stream or (sys.stdout if self.notebook else sys.stderr)
        self.bar: Any = None
        self.last: Progress | None = None

    def _new_bar(self, event: Progress) -> Any:
        if self.notebook:
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm(
                total=event.total, initial=event.done, unit="model", desc=f"Queue {event.queue_id}"
            )
        from tqdm import tqdm

        return tqdm(
            total=event.total,
            initial=event.done,
            unit="model",
            file=self.stream,
            dynamic_ncols=True,
            leave=True,
        )

    def _line(self, message: str) -> None:
        if self.notebook or self.bar is None:
            print(message, file=self.stream, flush=True)
        else:
            self.bar.write(message, file=self.stream)

    def __call__(self, event: Progress) -> None:
        self.last = event
        if self.bar is None:
            self.bar = self._new_bar(event)
        if event.kind == "training":
            self.bar.set_postfix_str(event.config or "", refresh=True)
            self._line(event.message)
            return
        if event.kind in ("kept", "deleted", "failed"):
            self.bar.update(event.done - self.bar.n)
        if event.kind in ("completed", "paused", "cancelled"):
            self.bar.set_postfix_str("", refresh=False)
            self.close()
            print(event.message, file=self.stream, flush=True)
            return
        self._line(event.message)

    def close(self) -> None:
        """Close the bar (it stays on screen)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
