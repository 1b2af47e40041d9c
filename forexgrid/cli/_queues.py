"""`forexgrid run` and the queue commands: queues, status, pause, cancel, resume, recover,
checkpoint, db."""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
import time
from pathlib import Path

import click

from forexgrid.cli._app import CliState, cli
from forexgrid.cli._format import ROW_ID, render_table
from forexgrid.exceptions import quote_input
from forexgrid.progress import ProgressPrinter

# Exit status of a run that Ctrl-C paused (128 + SIGINT, the shell's convention).
EXIT_INTERRUPTED = 130


def _split(values: tuple[str, ...]) -> list[str] | None:
    """Repeated and comma-separated option values as one list (None when not given)."""
    items = [part.strip() for value in values for part in value.split(",") if part.strip()]
    return items or None


def _int_list(name: str, values: list[str] | None) -> list[int] | None:
    if values is None:
        return None
    out = []
    for value in values:
        if re.fullmatch(r"[+-]?[0-9]+", value) and len(value) > 4300:
            # int() refuses more digits (and would be slow on a huge text).
            raise click.BadParameter(
                f"{quote_input(value)}: a number of {len(value):,} digits", param_hint=name
            )
        try:
            out.append(int(value))
        except ValueError as err:
            raise click.BadParameter(
                f"expected whole numbers, got {quote_input(value)}", param_hint=name
            ) from err
    return out


# The flag of `forexgrid run` that overrides each list of the grid section.
_GRID_FLAGS = {
    "model_types": "--models",
    "symbols": "--symbols",
    "timeframes": "--timeframes",
    "days_history": "--days",
    "horizons": "--horizons",
    "encoders": "--encoders",
}


def _queue_line(q) -> str:
    """One row of ``Workspace.queues()`` as a line of ``forexgrid queues``."""
    done = q.completed + q.failed
    return (
        f"{q.id:>4}  {q.status:<10} {done:>4}/{q.total:<4} completed {q.completed}, "
        f"failed {q.failed}, kept {q.kept}, deleted {q.deleted}  {q.name}"
    )


def _summary(q, seconds: float, outcomes: dict[str, int] | None = None) -> str:
    """The line after a run: counts of the queue's runs and of what became of their models.

    ``outcomes`` (:func:`forexgrid.storage.queue_model_outcomes`) splits the deleted models
    into those kept at first and superseded by a later run, and those never kept, so the
    summary agrees with the status lines ("Model kept" lines minus "Run N's model deleted"
    lines = kept).
    """
    text = (
        f"Queue {q.id} '{q.queue_name}' {q.status} in {seconds:.1f} s: {q.total_configs} total, "
        f"{q.completed_count} completed, {q.failed_count} failed, {q.kept_count} kept, "
        f"{q.deleted_count} deleted"
    )
    if outcomes and outcomes["kept_then_deleted"]:
        text += (
            f" ({outcomes['kept_then_deleted']} kept at first, then superseded; "
            f"{outcomes['never_kept']} never kept)"
        )
    return text


def _queue_summary(state: CliState, q, seconds: float) -> str:
    """The summary after a run: counts, and the symbols trained on the bundled sample."""
    handle = state.ws.queue(q.id)
    lines = [_summary(q, seconds, handle.outcomes())]
    timeframes = ", ".join(q.grid.get("timeframes") or ())
    lines += [
        f"Data: {symbol} {timeframes} came from the bundled sample; import your own with: "
        f"forexgrid data import FILE --symbol {symbol}"
        for symbol in handle.sample_symbols()
    ]
    return "\n".join(lines)


def _selection_summary(state: CliState, queue_id: int) -> None:
    """The trials, effective trials and PBO of each scope the queue added to."""
    from forexgrid.cli._selection import TRIALS_SUMMARY_COLUMNS, trials_rows

    scopes = state.ws.queue(queue_id).scopes()
    if scopes.empty:
        return
    click.echo(
        "Multiple testing, per regime and validation window (forexgrid best for the verdicts):"
    )
    right = {"Trials", "Effective", "PBO"}
    click.echo(render_table(trials_rows(scopes), TRIALS_SUMMARY_COLUMNS, right))


def run_with_progress(state: CliState, queue_id: int) -> int:
    """Run a queue with the progress bar; Ctrl-C pauses it, a second Ctrl-C exits at once.

    Returns the exit status: 0, or 130 when Ctrl-C paused the queue.
    """
    from forexgrid.exceptions import ForexgridError, LostOwnershipError
    from forexgrid.runner import run_queue

    settings = state.settings
    printer = ProgressPrinter()
    pause = threading.Event()

    def on_interrupt(signum, frame):
        if pause.is_set():
            printer.close()
            click.echo(
                # Left "running" (a crash, which recovery on this machine sees at once)
                # unless the runner had already recorded the pause: a handler cannot ask.
                f"\nExiting at once. Queue {queue_id} stops here (as a crash, unless it had "
                f"already paused); continue it with: {state.command('resume', queue_id)}",
                err=True,
            )
            os._exit(EXIT_INTERRUPTED)
        pause.set()
        click.echo(
            "\nPausing after the configurations in flight finish "
            "(press Ctrl-C again to exit at once)...",
            err=True,
        )

    started = time.perf_counter()
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, on_interrupt) if in_main_thread else None
    try:
        final = run_queue(queue_id, settings, progress=printer, pause_event=pause)
    except LostOwnershipError:
        raise
    except ForexgridError as err:
        stopped = state.ws.queue(queue_id).info()
        if stopped.status != "paused":
            raise
        raise ForexgridError(
            f"{err}; queue {queue_id} is paused: fix the cause, then run: "
            f"{state.command('resume', queue_id)}"
        ) from err
    finally:
        printer.close()
        if in_main_thread:
            signal.signal(signal.SIGINT, previous)
    click.echo(_queue_summary(state, final, time.perf_counter() - started))
    _selection_summary(state, final.id)
    if final.status == "paused":
        click.echo(f"Resume with: {state.command('resume', final.id)}")
    return EXIT_INTERRUPTED if pause.is_set() and final.status == "paused" else 0


def grid_options(command):
    """The grid flags of `forexgrid run` (also `forexgrid batch`): each list of the grid
    section, the queue's name and --skip-trained."""
    options = [
        click.option("--models", multiple=True, help="Model types, e.g. xgboost,lightgbm."),
        click.option("--symbols", multiple=True, help="Symbols, e.g. EURUSD,GBPUSD."),
        click.option("--timeframes", multiple=True, help="Timeframes, e.g. 1h,4h."),
        click.option("--days", multiple=True, help="Days of history, e.g. 60,90."),
        click.option("--horizons", multiple=True, help="Horizons in bars, e.g. 1,3."),
        click.option("--encoders", multiple=True, help="Encoders, e.g. time_delta,normalized."),
        click.option("--name", default=None, help="Queue name (default: from the grid)."),
        click.option(
            "--skip-trained/--no-skip-trained",
            default=None,
            help="Leave out configurations already trained on the same data (default: "
            "grid.skip_trained).",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def grid_from_options(settings, options):
    """The GridSpec of the configuration's grid with the grid flags' lists, checked against
    ``execution.max_grid_size`` before anything is written."""
    from forexgrid.config import override_grid
    from forexgrid.grid import GridSpec

    # The flags meet the same checks and ranges as the file's grid section.
    grid = override_grid(
        settings.grid,
        {
            "model_types": _split(options["models"]),
            "symbols": _split(options["symbols"]),
            "timeframes": _split(options["timeframes"]),
            "days_history": _int_list("--days", _split(options["days"])),
            "horizons": _int_list("--horizons", _split(options["horizons"])),
            "encoders": _split(options["encoders"]),
        },
        _GRID_FLAGS,
    )
    spec = GridSpec.from_settings(grid)
    # Before any output or database: a grid over execution.max_grid_size is one error line.
    spec.check_size(settings.execution.max_grid_size)
    return spec


@cli.command("run")
@click.argument("config", type=click.Path(dir_okay=False, path_type=Path))
@grid_options
@click.pass_obj
def run_command(state: CliState, config: Path, **options):
    """Train the grid of CONFIG's `grid` section (flags override its lists).

    A grid of more than `execution.max_grid_size` configurations (default 100,000) is refused
    before anything is written. Each flag takes a comma-separated list or may be repeated.
    Ctrl-C pauses the queue after the configurations in flight (resume it with `forexgrid
    resume ID`); a second Ctrl-C exits at once (the queue is then a crash: `forexgrid resume
    ID` continues it, as the message says).
    """
    state.config_path = config
    spec = grid_from_options(state.settings, options)
    click.echo(spec.describe())
    queue = state.ws.create_queue(
        spec, name=options["name"], skip_trained=options["skip_trained"]
    ).info()
    if queue.skipped_count:
        click.echo(f"- {queue.skipped_count} already trained")
        click.echo(f"= {queue.total_configs} new configurations to train")
    click.echo(f"Queue {queue.id} '{queue.queue_name}' created")
    sys.exit(run_with_progress(state, queue.id))


@cli.command("queues")
@click.pass_obj
def queues_command(state: CliState):
    """List every queue: id, status, progress and counts."""
    queues = state.ws.queues()
    if queues.empty:
        click.echo("No queues yet. Start one with: forexgrid run CONFIG")
        return
    click.echo("  ID  STATUS     DONE/TOTAL")
    for q in queues.itertuples():
        click.echo(_queue_line(q))


@cli.command("status")
@click.argument("queue_id", type=ROW_ID, required=False)
@click.pass_obj
def status_command(state: CliState, queue_id: int | None):
    """Show one queue in detail (default: the newest)."""
    if queue_id is None and state.ws.queues().empty:
        click.echo("No queues yet. Start one with: forexgrid run CONFIG")
        return
    handle = state.ws.queue(queue_id)
    q = handle.info()
    running = handle.training()
    done = q.completed_count + q.failed_count
    lines = [
        f"Queue {q.id} '{q.queue_name}'",
        f"  status:        {q.status}"
        + (f" ({q.requested_action} requested)" if q.requested_action else ""),
        f"  progress:      {done}/{q.total_configs} ({done / q.total_configs:.0%})"
        if q.total_configs
        else "  progress:      0/0",
        f"  completed:     {q.completed_count}   failed: {q.failed_count}   "
        f"kept: {q.kept_count}   deleted: {q.deleted_count}   skipped: {q.skipped_count}",
        f"  current index: {q.current_index}",
        f"  created:       {q.created_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if q.started_at:
        lines.append(f"  started:       {q.started_at:%Y-%m-%d %H:%M:%S} UTC")
    if q.heartbeat_at:
        lines.append(f"  heartbeat:     {q.heartbeat_at:%Y-%m-%d %H:%M:%S} UTC ({q.owner})")
    if q.completed_at:
        lines.append(f"  finished:      {q.completed_at:%Y-%m-%d %H:%M:%S} UTC")
    if q.error:
        lines.append(f"  error:         {q.error}")
    for r in running:
        lines.append(f"  training:      #{r.queue_index + 1} {r.config.label}")
    click.echo("\n".join(lines))


def _request(state: CliState, queue_id: int, action: str) -> None:
    handle = state.ws.queue(queue_id)
    q = handle.pause() if action == "pause" else handle.cancel()
    if q.status == "running":
        click.echo(
            f"Queue {q.queue_id}: {action} requested; the runner stops after the configurations "
            "in flight finish"
        )
    else:
        click.echo(f"Queue {q.queue_id} is now {q.status}")


@cli.command("pause")
@click.argument("queue_id", type=ROW_ID)
@click.pass_obj
def pause_command(state: CliState, queue_id: int):
    """Pause a queue after the configurations in flight (resume it later)."""
    _request(state, queue_id, "pause")


@cli.command("cancel")
@click.argument("queue_id", type=ROW_ID)
@click.pass_obj
def cancel_command(state: CliState, queue_id: int):
    """Cancel a queue after the configurations in flight (it cannot be resumed)."""
    _request(state, queue_id, "cancel")


@cli.command("resume")
@click.argument("queue_id", type=ROW_ID)
@click.pass_obj
def resume_command(state: CliState, queue_id: int):
    """Continue a paused or crashed queue with what is not done."""
    sys.exit(run_with_progress(state, queue_id))


@cli.command("recover")
@click.option("--resume", "resume", is_flag=True, help="Resume every crashed queue now.")
@click.pass_obj
def recover_command(state: CliState, resume: bool):
    """Find queues whose runner died and say what to do with each.

    A running queue's runner is dead when its process is gone from this machine (decided
    at once), or when it has not sent a heartbeat for recovery.detect_crash_after_minutes
    (a runner on another machine, or one that hangs). Also removes model files no run
    needs and finishes model writes a kill interrupted; never touches the files of a live
    runner.
    """
    report = state.ws.recovery()
    crashed = report.crashed
    for line in report.lines():
        click.echo(line)
    if not crashed:
        return
    if resume:
        for item in crashed:
            click.echo(f"Resuming queue {item.queue.id}...")
            status = run_with_progress(state, item.queue.id)
            if status:
                sys.exit(status)
    else:
        for item in crashed:
            click.echo(f"Resume with: {state.command('resume', item.queue.id)}")
        if len(crashed) > 1:
            click.echo(f"Or resume them all: {state.command('recover', '--resume')}")


@cli.group("checkpoint")
def checkpoint_group():
    """List checkpoints and restore a queue from one."""


@checkpoint_group.command("list")
@click.argument("queue_id", type=ROW_ID, required=False)
@click.pass_obj
def checkpoint_list(state: CliState, queue_id: int | None):
    """List checkpoint files (of one queue, or all), oldest first."""
    from forexgrid.storage import list_checkpoints

    files = list_checkpoints(state.settings.checkpoints_path, queue_id)
    if not files:
        click.echo(f"No checkpoints in {state.settings.checkpoints_path}")
    for path in files:
        click.echo(str(path))


@checkpoint_group.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.pass_obj
def checkpoint_restore(state: CliState, file: Path):
    """Recreate a queue and its runs from a checkpoint FILE (e.g. into a new database)."""
    from forexgrid import storage

    document = storage.read_checkpoint(file)
    with storage.session_scope(state.settings) as session:
        q = storage.snapshots.restore_snapshot(session, document["snapshot"])
    click.echo(
        f"Restored queue {q.id} '{q.queue_name}' ({q.status}, "
        f"{q.completed_count + q.failed_count}/{q.total_configs} done) from {file}"
    )
    if q.status in ("paused", "pending", "crashed"):
        click.echo(f"Resume with: {state.command('resume', q.id)}")


@cli.group("db")
def db_group():
    """Inspect and upgrade the database schema."""


@db_group.command("status")
@click.pass_obj
def db_status(state: CliState):
    """Show the database URL and whether its schema is up to date."""
    from forexgrid.storage import Database, head_revision

    db = Database.from_settings(state.settings)
    schema, revision = db.schema_state()
    click.echo(f"{db.display_url}: schema {schema} (revision {revision}, head {head_revision()})")


@db_group.command("upgrade")
@click.pass_obj
def db_upgrade(state: CliState):
    """Upgrade the database schema to this version of forexgrid (back it up first)."""
    from forexgrid.storage import Database

    db = Database.from_settings(state.settings)
    revision = db.upgrade()
    click.echo(f"{db.display_url}: upgraded to revision {revision}")
