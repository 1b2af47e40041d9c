"""``python -m forexgrid.workspace._background SETTINGS_JSON QUEUE_ID STATUS``: run one queue.

:meth:`forexgrid.workspace.QueueHandle.start` with ``wait=False`` starts this in its own
session. It loads the settings the notebook's workspace used (written as JSON), checks that
the queue is still as the notebook left it (a pause or cancel clicked before this process
got going wins), and runs it; its status lines go to the queue's journal like any runner's.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from forexgrid import storage
    from forexgrid.config import load_config
    from forexgrid.exceptions import ForexgridError
    from forexgrid.log import setup_logging
    from forexgrid.runner import run_queue

    settings_file, queue_id, launched_status = Path(argv[0]), int(argv[1]), argv[2]
    document = json.loads(settings_file.read_text(encoding="utf-8"))
    settings = load_config(document["settings"], workspace=document["workspace"])
    setup_logging(settings, console_level=logging.WARNING)
    with storage.session_scope(settings) as session:
        status = storage.queues.get_queue(session, queue_id).status
    if status != launched_status:
        print(f"queue {queue_id} is {status} now (was {launched_status}): not started")
        return 0
    try:
        final = run_queue(queue_id, settings)
    except ForexgridError as err:
        print(f"error: {err}")
        return 1
    print(f"queue {queue_id} {final.status}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
