"""Small HTML pieces for the Workspace's rich displays (Jupyter's ``_repr_html_``).

Every value is escaped; colours come from one palette so that a status or a verdict reads
the same in every table.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from forexgrid.workspace._queues import QueueStatus

#: Text colour of each status and verdict (green good, red bad, amber waiting or doubtful).
COLOURS: dict[str, str] = {
    "completed": "#1a7f37",
    "significant": "#1a7f37",
    "running": "#0969da",
    "pending": "#9a6700",
    "paused": "#9a6700",
    "could be luck": "#9a6700",
    "crashed": "#cf222e",
    "failed": "#cf222e",
    "cancelled": "#6e7781",
}


def coloured(value: Any) -> str:
    """The CSS of a cell holding a status or a verdict ('' for other values)."""
    colour = COLOURS.get(str(value))
    return f"color: {colour}; font-weight: bold" if colour else ""


def definition_list(title: str, items: Mapping[str, Any]) -> str:
    """A two-column table of label -> value under a title."""
    rows = "".join(
        f"<tr><th style='text-align:left'>{html.escape(str(k))}</th>"
        f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>"
        for k, v in items.items()
        if v is not None and v != ""
    )
    return f"<div><b>{html.escape(title)}</b><table>{rows}</table></div>"


def styled(frame: pd.DataFrame, columns: tuple[str, ...] = ("status", "verdict")) -> str:
    """``frame`` as an HTML table with its status and verdict cells coloured."""
    shown = [c for c in columns if c in frame.columns]
    styler = frame.style
    if shown:
        styler = styler.map(coloured, subset=shown)
    return styler.format(precision=3, na_rep="").to_html()


def status_card(status: QueueStatus) -> str:
    """A queue's status: title, a progress bar, the counts and the newest status lines."""
    colour = COLOURS.get(status.status, "#57606a")
    percent = f"{status.fraction:.0%}"
    counts = (
        f"Total {status.total} · Completed {status.completed} · Failed {status.failed} · "
        f"Kept {status.kept} · Deleted {status.deleted} · Current index {status.current_index}"
    )
    lines = "".join(f"<div>{html.escape(m)}</div>" for m in status.messages[-5:])
    notes = "".join(f"<div>{html.escape(n)}</div>" for n in status.notes)
    error = (
        f"<div style='color:{COLOURS['failed']}'>Error: {html.escape(status.error)}</div>"
        if status.error
        else ""
    )
    requested = f" ({status.requested_action} requested)" if status.requested_action else ""
    return (
        "<div class='forexgrid-queue-status'>"
        f"<b>Queue {status.queue_id}: {html.escape(status.name)}</b> "
        f"<span style='color:{colour}; font-weight:bold'>{html.escape(status.status)}"
        f"{html.escape(requested)}</span>"
        f"<div><progress max='{max(status.total, 1)}' value='{status.done}'></progress> "
        f"{status.done}/{status.total} ({percent})</div>"
        f"<div>{html.escape(counts)}</div>{notes}{error}"
        f"<div style='font-family:monospace; font-size:90%'>{lines}</div></div>"
    )
