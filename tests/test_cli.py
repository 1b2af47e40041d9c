"""The command line: commands, one-line errors, exit statuses, and the log file it starts."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from forexgrid import __version__
from forexgrid.cli import cli
from forexgrid.data import load_sample

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = ROOT / "configs" / "training_pipeline" / "default_config.yaml"


@pytest.fixture
def workspace(tmp_path, monkeypatch):
    """An empty workspace, with no environment overrides leaking in."""
    for name in ("FOREXGRID_CONFIG", "FOREXGRID_WORKSPACE", "FOREXGRID_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def run(workspace: Path, *args: str):
    return CliRunner().invoke(cli, ["--workspace", str(workspace), *args])


def write_dukascopy(path: Path, n: int = 48) -> Path:
    bars = load_sample("EURUSD", "1h").iloc[:n]
    lines = ["Time,Open,High,Low,Close,Volume"]
    for stamp, row in zip(
        bars.index.strftime("%d.%m.%Y %H:%M:%S.000"), bars.itertuples(index=False), strict=True
    ):
        lines.append(",".join([stamp, *(repr(float(v)) for v in row)]))
    path.write_text("\n".join(lines) + "\n")
    return path


def test_help_lists_the_command_groups(workspace):
    result = run(workspace, "--help")
    assert result.exit_code == 0
    for group in ("config", "data"):
        assert re.search(rf"^\s+{group}\s", result.output, re.MULTILINE), result.output


def test_version(workspace):
    result = run(workspace, "--version")
    assert result.exit_code == 0
    assert result.output.strip() == f"forexgrid, version {__version__}"


def test_config_check_accepts_the_default_file(workspace):
    result = run(workspace, "config", "check", str(DEFAULT_CONFIG))
    assert result.exit_code == 0
    assert result.output.startswith("OK: ")


def test_config_check_reports_a_bad_key_in_one_line(workspace):
    bad = workspace / "bad.yaml"
    bad.write_text("queue:\n  max_paralel_queues: 2\n")
    result = run(workspace, "config", "check", str(bad))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0] == (
        f"error: {bad}: queue.max_paralel_queues: unknown key; did you mean 'max_parallel_queues'?"
    )
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "execution:\n  workers: 99999999999999999999\n",
            "execution.workers: must be between 1 and 1024, got 99999999999999999999",
        ),
        (
            "grid:\n  days_history: [99999999999999999999]\n",
            "grid.days_history[0]: must be between 1 and 36500, got 99999999999999999999",
        ),
        (
            "grid:\n  model_types: [ridge]\n  hyperparameters: {ridge: {alpha: -1.0}}\n",
            "grid.hyperparameters.ridge: invalid hyperparameters for ridge (alpha=-1.0): "
            "InvalidParameterError: The 'alpha' parameter of Ridge must be",
        ),
    ],
    ids=["huge-workers", "huge-days", "hyperparameter-value"],
)
def test_config_check_and_run_refuse_the_same_values(workspace, text, message):
    bad = workspace / "bad.yaml"
    bad.write_text(text)
    for args in (("config", "check", str(bad)), ("run", str(bad))):
        result = run(workspace, *args)
        assert result.exit_code == 1, (args, result.output)
        assert result.stderr.startswith("error: "), (args, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        if args[0] == "config":
            assert result.stderr.startswith(f"error: {bad}: {message}")
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (workspace / "forexgrid.db").exists()


def test_config_check_missing_file_exits_1(workspace):
    result = run(workspace, "config", "check", str(workspace / "nope.yaml"))
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ")
    assert "nope.yaml" in result.stderr


def test_config_show_prints_the_effective_settings(workspace):
    config = workspace / "mine.yaml"
    config.write_text("queue:\n  auto_checkpoint_interval: 3\n")
    result = run(workspace, "--config", str(config), "config", "show")
    assert result.exit_code == 0, result.output
    assert re.search(r"^\s+auto_checkpoint_interval: 3$", result.output, re.MULTILINE)
    assert re.search(r"^\s+max_parallel_queues: 1$", result.output, re.MULTILINE)


def test_config_show_with_a_broken_config_exits_1(workspace):
    config = workspace / "broken.yaml"
    config.write_text("queue: [1, 2\n")
    result = run(workspace, "--config", str(config), "config", "show")
    assert result.exit_code == 1
    assert result.stderr.startswith(f"error: {config}")


def test_usage_errors_exit_2(workspace):
    assert run(workspace, "no-such-command").exit_code == 2
    assert run(workspace, "data", "import", "x.csv").exit_code == 2  # --symbol missing
    assert run(workspace, "data", "show", "EURUSD", "1h", "--rows", "-1").exit_code == 2


@pytest.mark.parametrize(
    "args",
    [
        ("history", "--limit", "9" * 5000),
        ("data", "show", "EURUSD", "1h", "--rows", "x" * 100_000),
        ("cleanup", "--days-old", "x" * 100_000),
    ],
    ids=["int-5000-digits", "rows-text", "float-text"],
)
def test_usage_errors_quote_a_bounded_value(workspace, args):
    result = run(workspace, *args)
    assert result.exit_code == 2
    assert len(result.stderr) < 1000
    assert "characters)" in result.stderr


def test_data_import_list_show_round_trip(workspace):
    source = write_dukascopy(workspace / "eurusd.csv")
    imported = run(workspace, "data", "import", str(source), "--symbol", "gbpusd")
    assert imported.exit_code == 0, imported.output
    assert imported.output.startswith("Imported 48 new bars of GBPUSD 1h")
    assert (workspace / "data" / "GBPUSD" / "1h.parquet").is_file()

    listed = run(workspace, "data", "list")
    assert listed.exit_code == 0
    assert re.search(r"GBPUSD\s+1h\s+48", listed.output), listed.output

    shown = run(workspace, "data", "show", "GBPUSD", "4h", "--rows", "2")
    assert shown.exit_code == 0, shown.output
    assert shown.output.splitlines()[0].startswith("GBPUSD 4h: ")
    # The summary line, the column line, the index-name line and 2 + 2 rows.
    assert len(shown.output.strip().splitlines()) == 7


def test_data_import_errors_name_the_guessed_format(workspace):
    # A MetaTrader 4 export with a broken price: the error says how the file was read.
    source = workspace / "eurusd_mt4.csv"
    source.write_text(
        "2017.01.02,02:00,1.05,1.06,1.04,1.055,10\n2017.01.02,03:00,1.05,x,1.04,1.05,9\n"
    )
    result = run(workspace, "data", "import", str(source), "--symbol", "EURUSD")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: eurusd_mt4.csv: line 2: ")
    assert result.stderr.rstrip().endswith(
        "(read as mt4 (MetaTrader 4 export), guessed from the first line; pass --format, or "
        "format= in Python, to choose)"
    )
    named = run(workspace, "data", "import", str(source), "--symbol", "EURUSD", "--format", "mt4")
    assert named.exit_code == 1 and "guessed" not in named.stderr


def test_data_show_serves_the_bundled_sample_without_imports(workspace):
    result = run(workspace, "data", "show", "EURUSD", "1d", "--rows", "0")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == (
        "EURUSD 1d: 260 bars from 2017-01-01 22:00:00+00:00 to 2017-12-28 22:00:00+00:00"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("data", "show", "../etc", "1h"), "symbol"),
        (("data", "show", "EURUSD", "7h"), "unknown timeframe '7h'"),
        (("data", "show", "GBPUSD", "1h"), "GBPUSD"),
        (("data", "import", "missing.csv", "--symbol", "EURUSD"), "missing.csv"),
        (("data", "import", "x.csv", "--symbol", "EUR/USD"), "EUR/USD"),
        (("data", "show", "EURUSD", "7" * 100_000), "... (100,000 characters)"),
        (("data", "show", "E" * 100_000, "1h"), "... (100,000 characters)"),
    ],
    ids=[
        "hostile-symbol",
        "bad-timeframe",
        "unknown-symbol",
        "missing-file",
        "bad-symbol",
        "huge-timeframe",
        "huge-symbol",
    ],
)
def test_data_errors_are_one_line_and_exit_1(workspace, args, message):
    result = run(workspace, *args)
    assert result.exit_code == 1, result.output
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("error: ")
    assert message in result.stderr
    assert len(result.stderr) < 600


def _forexgrid(workspace: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """The CLI as a real process, with 2 GB of address space and a time limit: a reader that
    slurps /dev/zero or waits on a FIFO fails the test instead of the machine."""
    import resource

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-m", "forexgrid", "--workspace", str(workspace), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=limit,
    )


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "directory", "link-to-dev-zero"])
def test_data_import_refuses_what_is_not_a_file_on_disk(workspace, kind):
    import os

    target = {
        "dev-zero": Path("/dev/zero"),
        "fifo": workspace / "bars.csv",
        "directory": workspace,
        "link-to-dev-zero": workspace / "zero.csv",
    }[kind]
    if kind == "fifo":
        os.mkfifo(target)
    if kind == "link-to-dev-zero":
        target.symlink_to("/dev/zero")
    result = _forexgrid(workspace, "data", "import", str(target), "--symbol", "EURUSD")
    assert result.returncode == 1, result.stderr
    expected = {
        "dev-zero": "/dev/zero: is a character device, not a regular file",
        "fifo": f"{target}: is a FIFO (named pipe), not a regular file",
        "directory": f"{target}: is a directory; expected a market-data file",
        "link-to-dev-zero": f"{target}: is a character device, not a regular file",
    }[kind]
    assert result.stderr.startswith(f"error: {expected}"), result.stderr
    assert result.stderr.count("\n") == 1
    assert not (workspace / "data" / "EURUSD").exists()


def test_data_import_refuses_a_file_above_max_import_mb_before_reading(workspace):
    config = workspace / "small.yaml"
    config.write_text("data:\n  max_import_mb: 1\n")
    big = workspace / "big.csv"
    with open(big, "wb") as handle:
        handle.truncate(40 << 30)  # 40 GiB, sparse: reading it would fail the 2 GB limit
    result = _forexgrid(
        workspace, "--config", str(config), "data", "import", str(big), "--symbol", "EURUSD"
    )
    assert result.returncode == 1
    assert result.stderr == (
        f"error: {big}: the file is 42,949,672,960 bytes (40,960.0 MB), more than the limit of "
        "1,048,576 bytes (1.0 MB); raise data.max_import_mb (or max_bytes=) to read it\n"
    )


def test_data_import_stream_reads_a_fifo_up_to_the_limit(workspace):
    import os
    import threading

    source = write_dukascopy(workspace / "eurusd.csv")
    fifo = workspace / "pipe"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as handle:
            handle.write(source.read_bytes())

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    imported = run(workspace, "data", "import", str(fifo), "--symbol", "EURUSD", "--stream")
    thread.join(5)
    assert imported.exit_code == 0, imported.output
    assert imported.output.startswith("Imported 48 new bars of EURUSD 1h")
    config = workspace / "small.yaml"
    config.write_text("data:\n  max_import_mb: 1\n")
    endless = _forexgrid(
        workspace,
        "--config",
        str(config),
        *("data", "import", "/dev/zero", "--symbol", "GBPUSD", "--stream"),
    )
    assert endless.returncode == 1
    assert endless.stderr.startswith(
        "error: /dev/zero: the file is larger than the limit of 1,048,576 bytes (1.0 MB)"
    )


def test_corrupt_data_file_names_file_and_line(workspace):
    source = write_dukascopy(workspace / "bad.csv", n=5)
    lines = source.read_text().splitlines()
    lines[3] = lines[3].replace(",", ",-", 1)  # a negative open price on line 4
    source.write_text("\n".join(lines) + "\n")
    result = run(workspace, "data", "import", str(source), "--symbol", "EURUSD")
    assert result.exit_code == 1
    assert re.match(r"error: bad\.csv: line 4: ", result.stderr), result.stderr
    assert not (workspace / "data" / "EURUSD").exists()


def test_commands_that_load_settings_write_the_log_file(workspace):
    source = write_dukascopy(workspace / "eurusd.csv")
    assert run(workspace, "data", "import", str(source), "--symbol", "EURUSD").exit_code == 0
    log = workspace / "logs" / "training_pipeline.log"
    assert log.is_file()
    assert "forexgrid.data" in log.read_text()


def test_debug_shows_the_traceback_as_a_real_process(workspace):
    exe = [sys.executable, "-m", "forexgrid", "--workspace", str(workspace)]
    plain = subprocess.run([*exe, "config", "check", "nope.yaml"], capture_output=True, text=True)
    assert plain.returncode == 1
    assert plain.stderr.count("\n") == 1 and "Traceback" not in plain.stderr
    debug = subprocess.run(
        [*exe, "--debug", "config", "check", "nope.yaml"], capture_output=True, text=True
    )
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "ConfigError" in debug.stderr


def test_the_command_reference_matches_the_commands():
    from forexgrid.cli._reference import command_reference

    documented = (ROOT / "docs" / "cli.md").read_text()
    assert documented == command_reference(), "docs/cli.md is stale: run `make docs`"


def test_a_reader_that_stops_early_is_not_an_error(workspace):
    """`forexgrid data show ... | head -1`: the closed pipe ends the command quietly with the
    status of a tool killed by SIGPIPE, not an "internal error" line."""
    command = [sys.executable, "-m", "forexgrid", "--workspace", str(workspace)]
    # 6,225 bars, about 400 KB: more than a pipe holds, so the writer meets the closed end.
    shown = subprocess.Popen(
        [*command, "data", "show", "EURUSD", "1h", "--rows", "10000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert shown.stdout.readline().startswith("EURUSD 1h: 6,225 bars")
    shown.stdout.close()
    assert shown.wait(timeout=60) == 141
    assert shown.stderr.read() == ""


def test_regimes_add_help_states_the_naming_rule(workspace):
    from forexgrid.core.regimes import REGIME_NAME_RULE

    result = run(workspace, "regimes", "add", "--help")
    assert result.exit_code == 0
    assert REGIME_NAME_RULE in " ".join(result.output.split())
