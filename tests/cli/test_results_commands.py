"""`history`, `run-details`, `charts` and `cleanup` through the CLI runner.

Tests in this module share one finished workspace and do not change what the others read
(the cleanup test only removes a file it planted).
"""

from __future__ import annotations

import os
import re
import stat
import time
from pathlib import Path

import matplotlib.image
import pandas as pd
import pytest

from forexgrid import scoring, storage
from forexgrid.charts import CHART_FILES
from forexgrid.cli._results import HISTORY_TABLE_WIDTH
from forexgrid.storage.history import HISTORY_COLUMNS

# A row of the history table: its id, then the model type.
ROW_RE = re.compile(r"^\s*(\d+)\s{2}[a-z_]+\s{2,}[A-Z0-9]+\s", re.MULTILINE)


def best_table(ws):
    with storage.session_scope(ws.settings) as session:
        return storage.bests.best_models_table(session)


def all_runs(ws):
    with storage.session_scope(ws.settings) as session:
        return storage.runs.queue_runs(session, ws.queue_id)


def history_ids(output: str) -> list[int]:
    return [int(m) for m in ROW_RE.findall(output)]


# ------------------------------------------------------------------------------ history


def _history_frame(ws):
    with storage.session_scope(ws.settings) as session:
        return storage.history.training_history(session).set_index("id")


def test_history_lists_runs_newest_first_within_120_columns(run_cli, finished_workspace):
    result = run_cli("history")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert max(len(x) for x in lines) <= HISTORY_TABLE_WIDTH
    assert re.sub(r"\s{2,}", "|", lines[0]) == (
        "ID|Model type|Symbol|TF|Days|h|Encoder|Status|Kept|Val SR|Test SR|Created (UTC)"
    )
    runs = all_runs(finished_workspace)
    assert history_ids(result.stdout) == sorted((r.id for r in runs), reverse=True)
    frame = _history_frame(finished_workspace)
    for run in runs:
        line = next(x for x in lines if x.split()[:1] == [str(run.id)])
        row = frame.loc[run.id]
        assert line.split()[1:10] == [
            run.model_type,
            run.symbol,
            run.timeframe,
            str(run.days_history),
            str(run.horizon),
            run.encoder,
            "completed",
            "yes" if run.is_model_kept else "no",
            f"{row.all_val_sharpe:.2f}",
        ]
        assert line.split()[10] == f"{row.all_test_sharpe:.2f}"
    assert "8 run(s), newest first." in lines
    assert "forexgrid history --wide" in result.stdout


def test_history_wide_has_the_guides_columns_and_the_configuration(run_cli, finished_workspace):
    result = run_cli("history", "--wide")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert re.sub(r"\s{2,}", "|", lines[0]) == (
        "ID|UUID|Model type|Symbol|Timeframe|Days|Horizon|Encoder|Status|Kept|Best regimes|"
        "Val SR (all)|Test SR (all)|Created at (UTC)"
    )
    frame = _history_frame(finished_workspace)
    for run in all_runs(finished_workspace):
        line = next(x for x in lines if x.split()[:1] == [str(run.id)])
        assert run.run_uuid[:8] in line
        assert (" yes " if run.is_model_kept else " no ") in line
        assert ", ".join(run.best_regimes) in line
        row = frame.loc[run.id]
        assert f"  {row.all_val_sharpe:.2f}  " in line and f"  {row.all_test_sharpe:.2f}  " in line
    assert result.stdout.rstrip().endswith("8 run(s), newest first.")


def test_a_realistic_history_fits_120_columns():
    from forexgrid.cli._results import history_table_text

    rows = []
    for i, (status, kept, was, by) in enumerate(
        [
            ("completed", True, True, None),
            ("completed", False, True, 123460),
            ("completed", False, True, None),
            ("completed", False, False, None),
            ("failed", False, None, None),
            ("cancelled", False, None, None),
        ]
    ):
        rows.append(
            {
                "id": 123456 + i,
                "uuid": "0123abcd",
                "model_type": "gradient_boosting",
                "symbol": "GBPUSD",
                "timeframe": "15m",
                "status": status,
                "kept": kept,
                "best_regimes": "all, bull_trending, bear_trending, volatile_ranging",
                "created_at": pd.Timestamp("2024-03-01 12:34:56", tz="UTC"),
                "days_history": 3650,
                "horizon": 24,
                "encoder": "normalized",
                "kept_when_trained": was,
                "model_deleted_by_run_id": by,
                "all_val_sharpe": -12.345,
                "all_test_sharpe": -10.5,
            }
        )
    frame = pd.DataFrame(rows)
    text = history_table_text(frame, limit=100)
    assert max(len(x) for x in text.splitlines()) <= HISTORY_TABLE_WIDTH, text
    kept = [x.split()[8] for x in text.splitlines()[2:8]]
    assert kept == ["yes", "superseded", "deleted", "no", "no", "no"]
    wide = history_table_text(frame, limit=100, wide=True)
    assert "no (was; pushed out by run 123460)" in wide and "bear_trending" in wide


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("--model-type", "lasso"), {"lasso"}),
        (("--model-type", "ridge,lasso"), {"ridge", "lasso"}),
        (("--model-type", "ridge", "--model-type", "LASSO"), {"ridge", "lasso"}),
        (("--symbol", "eurusd"), {"ridge", "lasso"}),
        (("--status", "completed", "--model-type", "ridge"), {"ridge"}),
    ],
    ids=["one-model", "comma", "repeated-any-case", "symbol-any-case", "status-and-model"],
)
def test_history_filters_accept_several_values(run_cli, finished_workspace, args, expected):
    result = run_cli("history", *args)
    assert result.exit_code == 0, result.output
    want = sorted(r.id for r in all_runs(finished_workspace) if r.model_type in expected)
    assert sorted(history_ids(result.stdout)) == want


@pytest.mark.parametrize(
    "args",
    [("--status", "failed"), ("--symbol", "GBPUSD"), ("--status", "cancelled,pending")],
    ids=["no-failed-runs", "other-symbol", "two-statuses"],
)
def test_history_without_matches_says_so(run_cli, args):
    result = run_cli("history", *args)
    assert result.exit_code == 0, result.output
    assert result.stdout == "No training runs match the filters.\n"


def test_history_limit_is_honoured(run_cli, finished_workspace):
    # Ten is the smallest limit and the fixture has 8 runs: only the message can tell.
    result = run_cli("history", "--limit", "10")
    assert result.exit_code == 0
    assert len(history_ids(result.stdout)) == 8
    assert "raise --limit" not in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--limit", "5"), "Invalid value for '--limit': 5 is not in the range 10<=x<=1000."),
        (("--limit", "1001"), "Invalid value for '--limit': 1001 is not in the range 10<=x<=1000"),
        (
            ("--status", "completed,bogus"),
            "Invalid value for '--status': unknown value 'bogus' (expected one of pending, "
            "running, completed, failed, cancelled)",
        ),
        (
            ("--model-type", "ridg"),
            "Invalid value for '--model-type': unknown value 'ridg'; did you mean 'ridge'?",
        ),
        (("--symbol", ","), "Invalid value for '--symbol': empty value ','"),
    ],
    ids=["limit-below-10", "limit-above-1000", "unknown-status", "model-typo", "empty-symbol"],
)
def test_history_bad_flag_values_are_usage_errors(run_cli, args, message):
    result = run_cli("history", *args, "--export")
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    assert not (Path.home() / ".forexgrid").exists()  # --export wrote nothing


def test_history_export_without_path_writes_to_home(run_cli, finished_workspace):
    # --export followed by another option: the option takes no value.
    result = run_cli("history", "--export", "--limit", "10")
    assert result.exit_code == 0, result.output
    written = list((Path.home() / ".forexgrid").iterdir())
    assert len(written) == 1
    path = written[0]
    assert re.fullmatch(r"training_history_\d{8}_\d{6}\.csv", path.name)
    assert result.stdout.splitlines()[-1] == f"Exported 8 run(s) to {path}"
    frame = pd.read_csv(path)
    assert list(frame.columns) == list(HISTORY_COLUMNS)
    runs = {r.id: r for r in all_runs(finished_workspace)}
    assert sorted(frame["id"]) == sorted(runs)
    for row in frame.itertuples():
        assert row.run_uuid == runs[row.id].run_uuid
        assert row.kept == runs[row.id].is_model_kept
        assert pd.Timestamp(row.created_at) == pd.Timestamp(runs[row.id].created_at)


def test_history_export_to_a_path_and_to_a_folder(run_cli, tmp_path):
    target = tmp_path / "out.csv"
    result = run_cli("history", "--model-type", "lasso", "--export", str(target))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == f"Exported 4 run(s) to {target}"
    assert set(pd.read_csv(target)["model_type"]) == {"lasso"}
    folder = tmp_path / "exports"
    folder.mkdir()
    result = run_cli("history", "--export", str(folder))
    assert result.exit_code == 0, result.output
    (written,) = folder.iterdir()
    assert written.name.startswith("training_history_") and written.suffix == ".csv"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file


def test_history_export_into_a_missing_folder_fails_and_writes_nothing(run_cli, tmp_path):
    target = tmp_path / "missing" / "out.csv"
    result = run_cli("history", "--export", str(target))
    line = _error_line(result)
    assert line == (
        f"error: history --export: cannot write {target}: directory {target.parent} does not exist"
    )
    assert not target.parent.exists()


@pytest.mark.parametrize("slash", ["/", "//"], ids=["slash", "two-slashes"])
def test_history_export_to_a_new_folder_with_a_slash_creates_it(run_cli, tmp_path, slash):
    folder = tmp_path / "newdir"
    result = run_cli("history", "--export", str(folder) + slash)
    assert result.exit_code == 0, result.output
    assert folder.is_dir()  # never a file named like the folder
    (written,) = folder.iterdir()
    assert re.fullmatch(r"training_history_\d{8}_\d{6}\.csv", written.name)
    assert result.stdout.splitlines()[-1] == f"Exported 8 run(s) to {written}"


def test_history_export_to_a_new_folder_below_a_missing_one_says_so(run_cli, tmp_path):
    folder = tmp_path / "missing" / "newdir"
    result = run_cli("history", "--export", f"{folder}/")
    assert _error_line(result) == (
        f"error: history --export: cannot create the folder {folder}: its parent "
        f"{folder.parent} does not exist"
    )
    assert list(tmp_path.iterdir()) == [tmp_path / "home"]


def test_history_export_folder_slash_on_a_file_is_refused(run_cli, tmp_path):
    existing = tmp_path / "out.csv"
    existing.write_text("keep me")
    result = run_cli("history", "--export", f"{existing}/")
    assert _error_line(result) == (
        f"error: history --export: {existing}/ names a folder, but {existing} is a regular file"
    )
    assert existing.read_text() == "keep me"


@pytest.mark.parametrize("kind", ["fifo", "socket", "device", "dangling-link", "link-to-fifo"])
def test_history_export_refuses_what_is_not_a_regular_file(run_cli, tmp_path, kind):
    import socket

    target = tmp_path / "target"
    if kind in ("fifo", "link-to-fifo"):
        os.mkfifo(tmp_path / "fifo")
        if kind == "fifo":
            target = tmp_path / "fifo"
        else:
            target.symlink_to(tmp_path / "fifo")
    elif kind == "socket":
        server = socket.socket(socket.AF_UNIX)
        server.bind(str(target))
        server.close()
    elif kind == "device":
        os.mknod(target, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # our own /dev/null
    else:
        target.symlink_to(tmp_path / "nowhere.csv")
    before = os.lstat(target)
    result = run_cli("history", "--export", str(target))
    line = _error_line(result)
    assert line.startswith(f"error: history --export: cannot write {target}: it is ")
    after = os.lstat(target)
    assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)
    assert not (tmp_path / "nowhere.csv").exists()


@pytest.mark.parametrize("device", ["/dev/full", "/dev/null"])
def test_history_export_to_a_real_device_is_refused(run_cli, device):
    from forexgrid._atomic import writable_target
    from forexgrid.exceptions import PathError

    with pytest.raises(PathError):  # never run the command against an unchecked writer
        writable_target(device)
    result = run_cli("history", "--export", device)
    assert _error_line(result) == (
        f"error: history --export: cannot write {device}: it is a character device, not a "
        "regular file"
    )
    assert stat.S_ISCHR(os.lstat(device).st_mode)


def test_history_export_through_a_link_writes_the_linked_file(run_cli, tmp_path):
    real = tmp_path / "exports" / "runs.csv"
    real.parent.mkdir()
    real.write_text("old")
    link = tmp_path / "latest.csv"
    link.symlink_to(real)
    result = run_cli("history", "--export", str(link))
    assert result.exit_code == 0, result.output
    assert link.is_symlink()
    assert len(pd.read_csv(real)) == 8


# -------------------------------------------------------------------------- run-details


def test_run_details_of_a_kept_run(run_cli, finished_workspace):
    run = next(r for r in all_runs(finished_workspace) if r.is_model_kept)
    result = run_cli("run-details", str(run.id))
    assert result.exit_code == 0, result.output
    out = result.stdout
    lines = out.splitlines()
    assert lines[0] == f"Run {run.id}  {run.run_uuid}  completed"
    fields = {x.split("  ")[1].strip(): x.strip() for x in lines[1:] if x.startswith("  ")}
    assert run.config.label in fields["configuration"]
    assert fields["horizon"].endswith(f"  {run.horizon}")
    assert fields["config hash"].endswith(run.config_hash)
    assert fields["combinations"].endswith(f"{run.n_combinations} distinct")
    model_path = finished_workspace.settings.artifacts_path / run.model_file_path
    assert fields["model file"].endswith(
        f"{model_path} ({run.model_file_size_bytes / 1024:.1f} KB, sha256 "
        f"{run.model_file_sha256[:12]}, kept, verified)"
    )
    with storage.session_scope(finished_workspace.settings) as session:
        table = storage.bests.best_models_table(session, run.symbol, window="all")
    listed = table.loc[table["has_best"] & (table["run_id"] == run.id), "regime"]
    assert fields["best regimes (kept now)"].endswith(", ".join(dict.fromkeys(listed)))
    assert fields["lookback windows"].endswith("  50, 100, 200 bars")
    assert "Error:" not in out
    with storage.session_scope(finished_workspace.settings) as session:
        chosen = storage.runs.run_chosen(session, run.id)
        results = storage.runs.run_results(session, run.id)
    assert "Chosen combination per regime (test figures reported):" in out
    assert (
        "chosen: best validation Sharpe among combinations with at least 5 trades in the "
        f"regime (selection.min_trades of queue {run.queue_id}'s settings)"
    ) in lines
    for row in chosen.itertuples():
        line = next(x for x in lines if x.startswith(row.regime + " ") and "/" in x)
        assert f"{row.val_sharpe:.2f}" in line and f"{row.test_sharpe:.2f}" in line
    # Its chosen combinations scored against every trial of each regime's scope.
    with storage.session_scope(finished_workspace.settings) as session:
        grid = scoring.grid_scores(session, run.id)
    start = next(i for i, x in enumerate(lines) if x.startswith("Against the whole grid"))
    for row in grid.itertuples():
        line = next(x for x in lines[start:] if x.startswith(row.regime + " "))
        assert f"{row.n_trials} ({row.effective_trials:.1f})" in line
        assert f"{row.pbo:.2f}" in line
        assert pd.isna(row.dsr) or (f"{row.dsr:.2f}" in line and row.verdict in line)
    assert f"Results: {len(results)} rows;" in out
    validation = results[results["split"] == "validation"]
    best_all = validation[validation["regime"] == "all"]["sharpe"].max()
    after = lines[next(i for i, x in enumerate(lines) if x.startswith("Results: ")) :]
    summary = next(x for x in after if x.startswith("all "))
    n_all = len(validation[validation["regime"] == "all"])
    assert summary.split()[1:3] == [str(n_all), f"{best_all:.2f}"]


def test_run_details_states_the_rule_with_the_queues_min_trades(
    run_cli, finished_workspace, tmp_path
):
    run = next(r for r in all_runs(finished_workspace) if r.status == "completed")
    # The configuration file says 7 now; the run was chosen with its queue's 5.
    edited = tmp_path / "edited.yaml"
    edited.write_text(
        finished_workspace.config.read_text().replace("min_trades: 5", "min_trades: 7")
    )
    assert "min_trades: 7" in edited.read_text()
    result = run_cli("run-details", str(run.id), config=edited)
    assert result.exit_code == 0, result.output
    assert "with at least 5 trades in the regime (selection.min_trades of queue" in result.stdout


def _train_four(settings):
    """Train ridge and lasso at horizons 1 and 3 (30 days of EURUSD 1h); return the queue."""
    from forexgrid.grid import GridSpec
    from forexgrid.runner import create_queue, run_queue

    spec = GridSpec(
        model_types=["ridge", "lasso"],
        symbols=["EURUSD"],
        timeframes=["1h"],
        days_history=[30],
        horizons=[1, 3],
    )
    return run_queue(create_queue(spec, settings, skip_trained=False).id, settings)


def test_run_details_of_deleted_and_never_kept_models(empty_workspace, cli_for):
    from forexgrid.storage import ModelFileManager

    settings = empty_workspace.settings
    queue = _train_four(settings)
    with storage.session_scope(settings) as session:
        runs = storage.runs.queue_runs(session, queue.id)
        kept = next(r for r in runs if r.is_model_kept)
        never = next(r for r in runs if not r.is_model_kept)
        tampered = next(r for r in runs if r.is_model_kept and r.id != kept.id)
        # What the runner does to a model pushed out of every list: flag, then file.
        storage.runs.mark_models_deleted(session, [kept.id], by_run_id=never.id)
        deleted_at = storage.runs.get_run(session, kept.id).model_deleted_at
    files = ModelFileManager.from_settings(settings)
    files.delete(kept.model_file_path)
    run_cli = cli_for(empty_workspace)
    result = run_cli("run-details", str(kept.id))
    assert result.exit_code == 0, result.output
    assert (
        f"{kept.model_file_path} ({kept.model_file_size_bytes / 1024:.1f} KB, sha256 "
        f"{kept.model_file_sha256[:12]}, deleted: kept, then pushed out of every list by run "
        f"{never.id} on {deleted_at:%Y-%m-%d %H:%M:%S})"
    ) in result.stdout
    # A kept file changed behind forexgrid's back is reported, never loaded.
    path = files.path_of(tampered.model_file_path)
    path.write_bytes(path.read_bytes()[:-1] + b"x")
    details = run_cli("run-details", str(tampered.id)).stdout
    assert "kept, MODIFIED: SHA-256 mismatch: recorded " in details
    assert re.search(
        r"^  best regimes \(when kept; deleted since\)  "
        + re.escape(", ".join(kept.best_regimes))
        + "$",
        result.stdout,
        re.MULTILINE,
    ), result.stdout
    assert "best regimes (kept now)" not in result.stdout
    # A model that never entered a list was never written, and has no best regimes.
    lines = run_cli("run-details", str(never.id)).stdout.splitlines()
    model_line = next(x for x in lines if x.strip().startswith("model file"))
    assert model_line.split() == ["model", "file", "-"]
    assert not [x for x in lines if x.strip().startswith("best regimes")]


def test_run_details_of_failed_and_pending_runs(empty_workspace, cli_for):
    from forexgrid.grid import GridSpec
    from forexgrid.runner import create_queue

    queue = create_queue(
        GridSpec(
            model_types=["ridge"],
            symbols=["EURUSD"],
            timeframes=["1h"],
            days_history=[30],
            horizons=[1, 3],
        ),
        empty_workspace.settings,
    )
    traceback = 'Traceback (most recent call last):\n  File "x.py", line 1\nValueError: boom'
    with storage.session_scope(empty_workspace.settings) as session:
        failed, pending = storage.runs.queue_runs(session, queue.id)
        storage.runs.start_run(session, failed.id)
        storage.runs.fail_run(session, failed.id, traceback)
    invoke = cli_for(empty_workspace)
    result = invoke("run-details", str(failed.id))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].endswith("  failed")
    assert "\nError:\n  Traceback (most recent call last):\n" in result.stdout
    assert "\n  ValueError: boom\n" in result.stdout
    assert "Chosen combinations: none (the run failed)" in result.stdout
    assert "Results: none (the run failed)" in result.stdout
    result = invoke("run-details", str(pending.id))
    assert result.exit_code == 0, result.output
    assert "Chosen combinations: none (not trained yet)" in result.stdout
    assert re.search(r"^  started at\s+-$", result.stdout, re.MULTILINE)


def test_run_details_unknown_id_is_one_line(run_cli):
    assert _error_line(run_cli("run-details", "999")) == "error: no run with id 999"


def test_run_details_non_integer_id_is_a_usage_error(run_cli):
    result = run_cli("run-details", "abc")
    assert result.exit_code == 2
    assert "'abc' is not an id (a whole number between 1 and 9223372036854775807)" in result.stderr


# ------------------------------------------------------------------------------- charts


def test_charts_writes_four_pngs(run_cli, tmp_path):
    out = tmp_path / "charts"
    result = run_cli("charts", "--output", str(out), "--symbol", "EURUSD")
    assert result.exit_code == 0, result.output
    paths = [out / name for name in CHART_FILES]
    assert result.stdout.splitlines() == [
        f"Saved 4 charts to {out}:",
        *(f"  {p}" for p in paths),
    ]
    for path in paths:
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert sorted(p.name for p in out.iterdir()) == sorted(CHART_FILES)


def test_charts_without_models_say_so(run_empty, tmp_path):
    result = run_empty("charts", "--output", str(tmp_path / "c"))
    assert result.exit_code == 0, result.output
    assert "(no best models yet; the charts say so)" in result.stdout
    assert len(list((tmp_path / "c").glob("*.png"))) == 4


def test_charts_into_a_missing_parent_fails_and_writes_nothing(run_cli, tmp_path):
    out = tmp_path / "no" / "such"
    line = _error_line(run_cli("charts", "--output", str(out)))
    assert line == (
        f"error: charts: cannot create output directory {out}: its parent {out.parent} does "
        "not exist"
    )
    assert not (tmp_path / "no").exists()


def test_charts_output_that_is_a_file_is_a_usage_error(run_cli, tmp_path):
    file = tmp_path / "file.png"
    file.write_bytes(b"x")
    result = run_cli("charts", "--output", str(file))
    assert result.exit_code == 2
    assert "is a file" in result.stderr
    assert file.read_bytes() == b"x"


# ------------------------------------------------------------------------------ cleanup


def test_cleanup_deletes_old_unkept_files_only(run_cli, finished_workspace):
    artifacts = finished_workspace.settings.artifacts_path
    kept = sorted(artifacts.iterdir())
    assert kept  # the kept models of the fixture
    stray = artifacts / "model_stray-0001.pkl"
    stray.write_bytes(b"\0" * (3 * 1024 * 1024 // 2))  # 1.5 MB
    old = time.time() - 40 * 86_400
    for path in [stray, kept[0]]:
        os.utime(path, (old, old))
    result = run_cli("cleanup")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "Deleted 1 files, freed 1.50 MB",
        "Kept 1 older file(s) of models that are best in a regime.",
    ]
    assert sorted(artifacts.iterdir()) == kept
    again = run_cli("cleanup", "--days-old", "0")
    assert again.stdout.splitlines()[0] == "Deleted 0 files, freed 0.00 MB"
    assert sorted(artifacts.iterdir()) == kept


@pytest.mark.parametrize("days", ["-1", "36501", "inf", "nan", "1e308"])
def test_cleanup_days_outside_the_range_are_a_usage_error(run_cli, days):
    result = run_cli("cleanup", "--days-old", days)
    assert result.exit_code == 2
    assert "is not in the range 0<=x<=36500" in result.stderr


# -------------------------------------------------------------------- errors, every command

COMMANDS = [
    ("best",),
    ("history", "--export"),
    ("run-details", "1"),
    ("charts", "--output", "CHARTS"),
    ("cleanup",),
]
COMMAND_IDS = ["best", "history", "run-details", "charts", "cleanup"]


def _args(args: tuple[str, ...], tmp_path: Path) -> list[str]:
    return [str(tmp_path / "charts") if a == "CHARTS" else a for a in args]


def _error_line(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def _nothing_written(tmp_path: Path) -> None:
    assert not (tmp_path / "charts").exists()
    assert not (Path.home() / ".forexgrid").exists()


@pytest.mark.parametrize("args", COMMANDS, ids=COMMAND_IDS)
def test_a_config_with_errors_is_one_line(run_cli, tmp_path, args):
    bad = tmp_path / "bad.yaml"
    bad.write_text("selection:\n  min_trade: 5\n")
    result = run_cli(*_args(args, tmp_path), config=bad)
    assert _error_line(result) == (
        f"error: {bad}: selection.min_trade: unknown key; did you mean 'min_trades'?"
    )
    assert result.stdout == ""
    _nothing_written(tmp_path)


@pytest.mark.parametrize("args", COMMANDS, ids=COMMAND_IDS)
def test_a_database_path_that_is_a_folder_is_one_line(run_cli, tmp_path, monkeypatch, args):
    folder = tmp_path / "db_folder"
    folder.mkdir()
    monkeypatch.setenv("FOREXGRID_DATABASE_URL", f"sqlite:///{folder}")
    line = _error_line(run_cli(*_args(args, tmp_path)))
    assert line.startswith(f"error: {folder}: is a directory, expected an SQLite database file")
    _nothing_written(tmp_path)
    assert list(folder.iterdir()) == []


@pytest.mark.parametrize("args", COMMANDS, ids=COMMAND_IDS)
def test_a_file_that_is_not_a_database_is_one_line(run_cli, tmp_path, monkeypatch, args):
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database, just some text" * 40)
    before = junk.read_bytes()
    monkeypatch.setenv("FOREXGRID_DATABASE_URL", f"sqlite:///{junk}")
    line = _error_line(run_cli(*_args(args, tmp_path)))
    assert line.startswith(f"error: {junk}: not an SQLite database file")
    _nothing_written(tmp_path)
    assert junk.read_bytes() == before


# ------------------------------------------------------------------------------- verify


def test_verify_checks_every_kept_file_and_exits_1_on_any_problem(empty_workspace, cli_for):
    from forexgrid.storage import ModelFileManager

    settings = empty_workspace.settings
    _train_four(settings)
    with storage.session_scope(settings) as session:
        kept = storage.runs.kept_model_files(session)
    assert len(kept) >= 2
    run_cli = cli_for(empty_workspace)
    files = ModelFileManager.from_settings(settings)
    clean = run_cli("verify")
    assert clean.exit_code == 0, clean.output
    assert clean.stdout.startswith(f"Checked {len(kept)} kept model file(s) (")
    assert f"in {files.artifacts_dir}: {len(kept)} ok, 0 with problems." in clean.stdout
    (first_id, first, _, _), (second_id, second, sha, size) = kept[:2]
    files.path_of(first).unlink()
    tampered = files.path_of(second)
    tampered.write_bytes(tampered.read_bytes()[:-1] + b"x")  # same size, other bytes
    result = run_cli("verify")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert f"{len(kept) - 2} ok, 2 with problems." in lines[0]
    assert lines[1] == f"MISSING     run {first_id}  {files.absolute(first)}"
    assert lines[2].startswith(f"MODIFIED    run {second_id}  {tampered}  SHA-256 mismatch: ")
    assert files.check(second, sha, size).state == "sha_mismatch"
