"""The terminal view of a running queue: a tqdm bar plus the user guide's status lines."""

from __future__ import annotations

import sys

from tqdm import tqdm

from forexgrid.runner import Progress

__all__ = ["ProgressPrinter"]


class ProgressPrinter:
    """A progress callback for :func:`forexgrid.runner.run_queue` that draws in a terminal.

    The bar counts finished configurations and shows the one in training; each status line
    ("Model kept (improves: ...)", "Checkpoint saved", ...) is printed above the bar.
    """

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stderr
        self.bar: tqdm | None = None
        self.last: Progress | None = None

    def __call__(self, event: Progress) -> None:
        self.last = event
        if self.bar is None:
            self.bar = tqdm(
                total=event.total,
                initial=event.done,
                unit="model",
                file=self.stream,
                dynamic_ncols=True,
                leave=True,
            )
        if event.kind == "training":
            self.bar.set_postfix_str(event.config or "", refresh=True)
            self.bar.write(event.message, file=self.stream)
            return
        if event.kind in ("kept", "deleted", "failed"):
            self.bar.update(event.done - self.bar.n)
        if event.kind in ("completed", "paused", "cancelled"):
            self.bar.set_postfix_str("", refresh=False)
            self.close()
            print(event.message, file=self.stream)
            return
        self.bar.write(event.message, file=self.stream)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
