"""`regimes list/add/edit/delete/toggle` through the CLI runner.

The module shares one finished workspace. Tests work on regimes they add themselves, and a
test that changes a default regime puts it back in a ``finally``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from forexgrid import storage

DEFAULTS = {
    "bull_trending": ('{"trend_strength": "> 0.7", "returns": "> 0"}', "Strong upward trend"),
    "bear_trending": ('{"trend_strength": "> 0.7", "returns": "< 0"}', "Strong downward trend"),
    "volatile_ranging": (
        '{"trend_strength": "< 0.3", "volatility": "> 75th percentile"}',
        "High volatility, no trend",
    ),
    "calm_ranging": (
        '{"trend_strength": "< 0.3", "volatility": "< 50th percentile"}',
        "Low volatility consolidation",
    ),
}
GUIDE_RULES = (
    '{"trend_strength": "> 0.5", "volatility": "> 90th percentile", "volume": "> 2x average"}'
)


def all_runs(ws) -> list:
    with storage.session_scope(ws.settings) as session:
        return storage.runs.queue_runs(session, ws.queue_id)


def regimes(ws) -> dict:
    with storage.session_scope(ws.settings) as session:
        return {r.name: r for r in storage.regimes_repo.list_regimes(session)}


def error_line(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    return lines[0]


def cells(line: str) -> list[str]:
    return re.split(r"\s{2,}", line.strip())


# --------------------------------------------------------------------------------- list


def test_list_shows_the_defaults_with_their_rules(run_cli):
    result = run_cli("regimes", "list")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert cells(lines[0]) == ["Name", "Active", "Default", "Rules", "Description"]
    rows = {cells(x)[0]: cells(x) for x in lines[2:]}
    for name, (rules, description) in DEFAULTS.items():
        assert rows[name] == [name, "yes", "yes", rules, description]


def test_list_in_an_empty_workspace_shows_the_seeded_defaults(run_empty):
    result = run_empty("regimes", "list")
    assert result.exit_code == 0, result.output
    assert [cells(x)[0] for x in result.stdout.splitlines()[2:]] == list(DEFAULTS)


# ---------------------------------------------------------------------------------- add


def test_add_stores_the_guides_example(run_cli, finished_workspace):
    result = run_cli(
        "regimes", "add", "breakout_volatile", "--rules", GUIDE_RULES, "--description", "Breakout"
    )
    assert result.exit_code == 0, result.output
    added, rescored = result.stdout.splitlines()
    assert added == f"Added regime 'breakout_volatile' (active): {GUIDE_RULES}"
    # The kept models are scored in the new regime from their files (no retraining).
    kept = sum(r.is_model_kept for r in all_runs(finished_workspace))
    assert rescored.startswith(
        f"Rescored {kept} kept model(s) under the current rules of 'breakout_volatile' from "
        "their files (no retraining)"
    )
    assert "breakout_volatile" in run_cli("best").stdout
    stored = regimes(finished_workspace)["breakout_volatile"]
    assert stored.rules == json.loads(GUIDE_RULES)
    assert (stored.description, stored.active, stored.is_default) == ("Breakout", True, False)
    listed = run_cli("regimes", "list").stdout.splitlines()
    row = next(cells(x) for x in listed if x.startswith("breakout_volatile "))
    assert row == ["breakout_volatile", "yes", "no", GUIDE_RULES, "Breakout"]


def test_add_inactive(run_cli, finished_workspace):
    result = run_cli(
        "regimes", "add", "quiet", "--rules", '{"volume": "< 0.5x average"}',
        "--description", "Thin volume", "--inactive",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "(inactive)" in result.stdout
    assert regimes(finished_workspace)["quiet"].active is False
    # An inactive regime is not scored, so the best-models table leaves it out.
    assert "quiet" not in run_cli("best").stdout


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        (
            '{"trend_strength": "> 0.5"',
            "error: regime 'bad_regime': rules are not valid JSON (Expecting ',' delimiter: "
            "line 1 column 27 (char 26)); expected an object such as "
            '{"trend_strength": "> 0.7"}',
        ),
        (
            '["> 0.5"]',
            "error: regime 'bad_regime': rules must be a JSON object (dict) of indicator -> "
            "condition, got list",
        ),
        ("{}", "error: regime 'bad_regime': no rules; give at least one indicator"),
        (
            '{"trend": "> 0.5"}',
            "error: regime 'bad_regime': unknown indicator 'trend'; did you mean "
            "'trend_strength'?",
        ),
        (
            '{"volatility": "> 150th percentile"}',
            "error: regime 'bad_regime': rule 'volatility': '> 150th percentile': percentile "
            "must be between 0 and 100, got 150",
        ),
        (
            '{"volatility": "greater than 3"}',
            "error: regime 'bad_regime': rule 'volatility': cannot parse 'greater than 3'",
        ),
        (
            '{"returns": "> 0", "returns": "< 0"}',
            "error: regime 'bad_regime': rules are not valid JSON (duplicate key 'returns')",
        ),
        (
            '{"volatility": 3}',
            "error: regime 'bad_regime': rule 'volatility': condition must be a string such as "
            "'> 0.7', got 3 (int)",
        ),
    ],
    ids=[
        "not-json",
        "not-an-object",
        "empty",
        "unknown-indicator",
        "percentile-150",
        "not-a-condition",
        "duplicate-key",
        "number-not-string",
    ],
)
def test_add_refuses_bad_rules_and_stores_nothing(run_cli, finished_workspace, rules, message):
    result = run_cli("regimes", "add", "bad_regime", "--rules", rules, "--description", "x")
    assert error_line(result).startswith(message)
    assert "bad_regime" not in regimes(finished_workspace)
    assert "bad_regime" not in run_cli("regimes", "list").stdout


@pytest.mark.parametrize(
    "rules",
    [
        "{\"volatility\": \"> __import__('os').system('touch pwned')\"}",
        "{\"__import__('os').system('touch pwned')\": \"> 1\"}",
        '{"volatility": "> 1\\nimport os; os.system(\'touch pwned\')"}',
        '{"volatility": "> 1; touch pwned"}',
        json.dumps({"volatility": "> " + "9" * 5000}),
        "[" * 100_000 + "]" * 100_000,
        json.dumps({"volume": "> -1e308x average"}),
        json.dumps({"x" * 10_000_000: "> 1"}),
        '{"returns": ' + "9" * 5000 + "}",
        json.dumps({"returns": "> ١"}),
    ],
    ids=[
        "code-condition",
        "code-indicator",
        "newline",
        "shell",
        "huge-condition",
        "deep-nesting",
        "average-overflow",
        "10-MB-indicator",
        "5000-digit-number",
        "arabic-digit",
    ],
)
def test_add_refuses_hostile_rules_in_one_line(
    run_cli, finished_workspace, tmp_path, monkeypatch, rules
):
    monkeypatch.chdir(tmp_path)
    result = run_cli("regimes", "add", "hostile", "--rules", rules, "--description", "x")
    line = error_line(result)
    assert line.startswith("error: regime 'hostile': ")
    assert len(line) < 600  # the message quotes a prefix, not the whole input
    assert not Path("pwned").exists()
    assert "hostile" not in regimes(finished_workspace)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("bull_trending", "error: regime 'bull_trending' already exists; edit it or choose"),
        ("all", "error: regime name 'all' is reserved (the pseudo-regime covering every bar)"),
        (" padded", "error: regime name ' padded': ' ' is not allowed; a regime name is an"),
        ("n" * 1_000_000, "error: regime name 'nnnnnnnn"),
        ("a\x1b[31mred", "error: regime name 'a\\x1b[31mred': '\\x1b' is not allowed"),
        (
            "high vol",
            "error: regime name 'high vol': ' ' is not allowed; a regime name is an identifier: "
            "letters, digits, '_' and '-' only, e.g. 'high_vol-breakout'",
        ),
    ],
    ids=["duplicate", "reserved", "padded", "huge", "terminal-escape", "space"],
)
def test_add_refuses_bad_names(run_cli, finished_workspace, name, message):
    before = regimes(finished_workspace)
    result = run_cli("regimes", "add", name, "--rules", '{"returns": "> 0"}', "--description", "")
    assert error_line(result).startswith(message)
    assert len(error_line(result)) < 600
    assert regimes(finished_workspace).keys() == before.keys()
    assert regimes(finished_workspace)["bull_trending"].rules == before["bull_trending"].rules


def test_add_without_rules_or_description_is_a_usage_error(run_cli):
    result = run_cli("regimes", "add", "x", "--rules", '{"returns": "> 0"}')
    assert result.exit_code == 2
    assert "Missing option '--description'" in result.stderr
    result = run_cli("regimes", "add", "x", "--description", "d")
    assert result.exit_code == 2
    assert "Missing option '--rules'" in result.stderr


# --------------------------------------------------------------------------------- edit


def test_edit_rules_and_description(run_cli, finished_workspace):
    run_cli("regimes", "add", "edit_me", "--rules", '{"returns": "> 0"}', "--description", "a")
    result = run_cli(
        "regimes", "edit", "edit_me", "--rules", '{"returns": "between -0.01 and 0.01"}',
        "--description", "flat",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    updated, rescored = result.stdout.splitlines()
    assert updated == 'Updated regime \'edit_me\' (active): {"returns": "between -0.01 and 0.01"}'
    assert rescored.startswith("Rescored ")
    # A new description alone is not new rules: nothing is rescored.
    described = run_cli("regimes", "edit", "edit_me", "--description", "flatter")
    assert described.stdout.count("\n") == 1
    stored = regimes(finished_workspace)["edit_me"]
    assert (stored.rules, stored.description) == ({"returns": "between -0.01 and 0.01"}, "flatter")


def test_edit_with_bad_rules_changes_nothing(run_cli, finished_workspace):
    before = regimes(finished_workspace)["calm_ranging"]
    result = run_cli("regimes", "edit", "calm_ranging", "--rules", '{"volatility": "< 50"}x')
    assert error_line(result).startswith(
        "error: regime 'calm_ranging': rules are not valid JSON (Extra data"
    )
    after = regimes(finished_workspace)["calm_ranging"]
    assert (after.rules, after.updated_at) == (before.rules, before.updated_at)


def test_rename_carries_the_best_models(run_cli, finished_workspace):
    assert "bear_trending" in run_cli("best").stdout
    result = run_cli("regimes", "edit", "bear_trending", "--rename", "bear_trend")
    try:
        assert result.exit_code == 0, result.output
        assert result.stdout.startswith("Updated regime 'bear_trend' (active): ")
        assert result.stdout.rstrip().endswith("(was 'bear_trending')")
        line = next(x for x in run_cli("best").stdout.splitlines() if x.startswith("bear_trend "))
        assert "(no model)" not in line
        assert re.search(r"\b(ridge|lasso) 1h", line), line
    finally:
        if "bear_trend" in regimes(finished_workspace):
            run_cli("regimes", "edit", "bear_trend", "--rename", "bear_trending")
    assert "bear_trending" in regimes(finished_workspace)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("nope", "--description", "x"), "error: no regime named 'nope' (known: bull_trending,"),
        (
            ("bull_trending", "--rename", "calm_ranging"),
            "error: cannot rename regime 'bull_trending': 'calm_ranging' exists",
        ),
    ],
    ids=["unknown", "rename-taken"],
)
def test_edit_errors_are_one_line(run_cli, finished_workspace, args, message):
    before = regimes(finished_workspace)
    assert error_line(run_cli("regimes", "edit", *args)).startswith(message)
    assert regimes(finished_workspace).keys() == before.keys()


def test_edit_without_changes_is_a_usage_error(run_cli):
    result = run_cli("regimes", "edit", "bull_trending")
    assert result.exit_code == 2
    assert "nothing to change: give --rules, --description or --rename" in result.stderr


# ------------------------------------------------------------------------------- delete


def test_delete_with_yes(run_cli, finished_workspace):
    run_cli("regimes", "add", "doomed", "--rules", '{"returns": "> 0"}', "--description", "")
    result = run_cli("regimes", "delete", "doomed", "--yes")
    assert result.exit_code == 0, result.output
    assert result.stdout == "Deleted regime 'doomed'\n"
    assert "doomed" not in regimes(finished_workspace)


@pytest.mark.parametrize(
    ("answer", "kept"), [("n\n", True), ("\n", True), ("y\n", False)], ids=["no", "default", "yes"]
)
def test_delete_asks_first(run_cli, finished_workspace, answer, kept):
    run_cli("regimes", "add", "maybe", "--rules", '{"returns": "> 0"}', "--description", "")
    try:
        result = run_cli("regimes", "delete", "maybe", input=answer)
        assert result.stdout.startswith("Delete regime 'maybe'? [y/N]: ")
        assert result.exit_code == (1 if kept else 0), result.output
        assert ("maybe" in regimes(finished_workspace)) is kept
        if kept:
            assert "Aborted!" in result.stderr
    finally:
        run_cli("regimes", "delete", "maybe", "--yes")


def test_deleting_a_default_warns_it_is_not_added_back(run_cli, finished_workspace):
    result = run_cli("regimes", "delete", "bull_trending", input="n\n")
    assert result.exit_code == 1
    assert result.stdout.startswith(
        "Delete regime 'bull_trending'? It is a default regime and will not be added back."
    )
    assert "bull_trending" in regimes(finished_workspace)


def test_delete_unknown_fails_before_asking(run_cli):
    result = run_cli("regimes", "delete", "nope")
    assert error_line(result).startswith("error: no regime named 'nope'")
    assert "Delete regime" not in result.stdout


# ------------------------------------------------------------------------------- toggle


def test_toggle_switches_and_the_best_table_follows(run_cli, finished_workspace):
    try:
        result = run_cli("regimes", "toggle", "calm_ranging")
        assert result.exit_code == 0, result.output
        assert result.stdout == "Regime 'calm_ranging' is now inactive\n"
        assert regimes(finished_workspace)["calm_ranging"].active is False
        assert "calm_ranging" not in run_cli("best").stdout
        result = run_cli("regimes", "toggle", "calm_ranging")
        assert result.stdout.splitlines() == [
            "Regime 'calm_ranging' is now active",
            "Nothing to rescore: every run is already scored (or marked not scored) under the "
            "current rules of 'calm_ranging'",
        ]
        assert "calm_ranging" in run_cli("best").stdout
    finally:
        with storage.session_scope(finished_workspace.settings) as session:
            storage.regimes_repo.toggle_regime(session, "calm_ranging", active=True)


def test_toggle_unknown_is_one_line(run_cli):
    assert error_line(run_cli("regimes", "toggle", "nope")).startswith(
        "error: no regime named 'nope' (known: "
    )


# ------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "args",
    [
        ("list",),
        ("add", "fresh", "--rules", '{"returns": "> 0"}', "--description", "x"),
        ("edit", "bull_trending", "--description", "changed"),
        ("delete", "bull_trending", "--yes"),
        ("toggle", "bull_trending"),
    ],
    ids=["list", "add", "edit", "delete", "toggle"],
)
@pytest.mark.parametrize("problem", ["bad-config", "db-folder", "not-a-db"])
def test_bad_config_or_database_is_one_line_and_changes_nothing(
    run_cli, finished_workspace, tmp_path, monkeypatch, args, problem
):
    before = regimes(finished_workspace)
    config = None
    if problem == "bad-config":
        config = tmp_path / "bad.yaml"
        config.write_text("database: {url: 42, echo: maybe}\n")
        expected = f"error: {config}: database."
    elif problem == "db-folder":
        (tmp_path / "db").mkdir()
        monkeypatch.setenv("FOREXGRID_DATABASE_URL", f"sqlite:///{tmp_path / 'db'}")
        expected = f"error: {tmp_path / 'db'}: is a directory"
    else:
        (tmp_path / "x.db").write_text("hello, not a database\n" * 50)
        monkeypatch.setenv("FOREXGRID_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
        expected = f"error: {tmp_path / 'x.db'}: not an SQLite database file"
    result = run_cli("regimes", *args, config=config)
    assert error_line(result).startswith(expected)
    after = regimes(finished_workspace)
    assert after.keys() == before.keys()
    assert after["bull_trending"] == before["bull_trending"]


# ------------------------------------------------------------------------------ rescore


def test_add_without_rescoring_leaves_the_list_empty_until_rescored(run_cli, finished_workspace):
    result = run_cli(
        "regimes", "add", "later", "--rules", '{"returns": "> 0"}', "--description", "x",
        "--no-rescore",
    )  # fmt: skip
    assert result.exit_code == 0 and result.stdout.count("\n") == 1
    best = run_cli("best").stdout.splitlines()
    line = next(x for x in best if x.startswith("later "))
    note = re.search(r"\(no model\) \[(\d+)\]$", line)
    assert note, line
    assert f"[{note.group(1)}] not scored in this window yet" in best
    rescored = run_cli("regimes", "rescore", "later")
    assert rescored.exit_code == 0 and rescored.stdout.startswith("Rescored ")
    again = run_cli("regimes", "rescore", "later")
    assert again.stdout.startswith("Nothing to rescore")
    unknown = run_cli("regimes", "rescore", "nope")
    assert error_line(unknown).startswith("error: no regime named 'nope'")
