"""`best` and `trials` through the CLI runner: the grid-wide DSR, PBO and verdict of the best
models, and the multiple-testing scopes they come from.

Tests in this module share one finished workspace and do not change it.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
import pandas as pd
import pytest

from forexgrid import storage
from forexgrid.cli._selection import (
    BEST_EXPORT_COLUMNS,
    BEST_TABLE_WIDTH,
    NO_MODEL,
    _best_rows,
    best_table_text,
)
from forexgrid.storage.bests import BEST_MODELS_COLUMNS
from forexgrid.storage.trials import SCOPE_COLUMNS


def best_table(ws):
    with storage.session_scope(ws.settings) as session:
        return storage.bests.best_models_table(session)


def scopes(ws):
    with storage.session_scope(ws.settings) as session:
        return storage.trials.scope_table(session)


# --------------------------------------------------------------------------------- best


def _entry_line(out: str, regime: str) -> str:
    return next(x for x in out.splitlines() if x.startswith(regime + " "))


def test_best_wide_shows_each_regimes_model_and_chosen_combination(run_cli, finished_workspace):
    result = run_cli("best", "--wide")
    assert result.exit_code == 0, result.output
    out = result.stdout
    table = best_table(finished_workspace)
    start, end = table["validation_start"].iloc[0], table["validation_end"].iloc[0]
    assert out.startswith(f"Best models per regime: EURUSD, validation {start} to {end}\n")
    header = out.splitlines()[1]
    for column in (
        "Regime",
        "Run",
        "Model",
        "Configuration",
        "Signal / threshold / lookback",
        "Val Sharpe",
        "Test Sharpe",
        "Max DD",
        "Win rate",
        "Trades",
        "DSR",
        "PBO",
        "Verdict",
        "Trials (eff.)",
        "Achieved at (UTC)",
    ):
        assert column in header
    assert table["regime"].iloc[0] == "all" and table["has_best"].iloc[0]
    assert table["has_best"].sum() >= 3
    for row in table[table["has_best"]].itertuples():
        line = _entry_line(out, row.regime)
        lookback = "not used" if pd.isna(row.lookback) else f"{row.lookback} bars"
        expected = [
            str(row.run_id),
            row.model_type,
            row.config_label,
            f"{row.signal} / {row.threshold:g} / {lookback}",
            f"{row.val_sharpe:.2f}",
            f"{row.dsr:.2f}",
            f"{row.pbo:.2f}",
            row.verdict,
            f"{row.n_trials} ({row.effective_trials:.1f})",
            row.achieved_at.strftime("%Y-%m-%d %H:%M"),
        ]
        for fragment in expected:
            assert fragment in line, (fragment, line)
        assert row.verdict == ("significant" if row.dsr >= 0.95 else "could be luck")
    for row in table[~table["has_best"]].itertuples():
        assert NO_MODEL in _entry_line(out, row.regime) and row.note
    assert "Details: forexgrid run-details RUN" in out


def test_best_fits_120_columns_and_shows_the_chosen_combination(run_cli, finished_workspace):
    result = run_cli("best")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert max(len(line) for line in out.splitlines()) <= BEST_TABLE_WIDTH
    header = re.split(r"\s{2,}", out.splitlines()[1])
    assert header == [
        "Regime",
        "Run",
        "Configuration",
        "Signal",
        "Thr",
        "Lookback",
        "Test SR",
        "DSR",
        "Verdict",
    ]
    table = best_table(finished_workspace)
    for row in table[table["has_best"]].itertuples():
        cells = re.split(r"\s{2,}", _entry_line(out, row.regime).strip())
        lookback = "not used" if pd.isna(row.lookback) else f"{row.lookback} bars"
        assert cells == [
            row.regime,
            str(row.run_id),
            row.config_label.replace(" EURUSD ", " "),
            row.signal,
            f"{row.threshold:g}",
            lookback,
            f"{row.test_sharpe:.2f}",
            f"{row.dsr:.2f}",
            row.verdict,
        ]
    assert "forexgrid best --wide" in out


def _realistic_best_table() -> pd.DataFrame:
    """Two symbols, the four default regimes and "all", the longest model and method names,
    a six-digit run id, a second place in a list and notes."""
    rows = []
    for symbol in ("EURUSD", "GBPUSD"):
        for i, regime in enumerate(
            ("all", "bull_trending", "bear_trending", "volatile_ranging", "calm_ranging")
        ):
            if symbol == "GBPUSD" and regime == "calm_ranging":
                rows.append(
                    {
                        "symbol": symbol,
                        "regime": regime,
                        "has_best": False,
                        "validation_start": "2017-10-31",
                        "validation_end": "2017-11-29",
                        "note": "none of the 1234 run(s) scored in this window qualified "
                        "(min_trades, min_score, min_dsr)",
                    }
                )
                continue
            model = ("linear_regression", "gradient_boosting")[i % 2]
            for rank in (1, 2) if regime == "all" else (1,):
                rows.append(
                    {
                        "symbol": symbol,
                        "regime": regime,
                        "rank": rank,
                        "has_best": True,
                        "run_id": 123456 + i,
                        "model_type": model,
                        "config_label": f"{model} {symbol} 15m 365d h12 normalized +4h,1d "
                        "max_depth=3 n_estimators=500",
                        "signal": ("direct_multi", "recursive", "stacking")[i % 3],
                        "threshold": 0.35,
                        "lookback": 1000,
                        "val_sharpe": -12.345,
                        "test_sharpe": -10.5,
                        "test_max_drawdown": 0.4567,
                        "test_win_rate": 0.5,
                        "test_trades": 1234,
                        "dsr": 0.5,
                        "pbo": 0.25,
                        "verdict": "could be luck",
                        "n_trials": 123456,
                        "effective_trials": 1234.5,
                        "validation_start": "2017-10-31",
                        "validation_end": "2017-11-29",
                        "achieved_at": pd.Timestamp("2024-03-01 12:34:56", tz="UTC"),
                        "note": "scored under earlier rules: forexgrid regimes rescore " + regime
                        if regime == "bear_trending"
                        else "",
                    }
                )
    return pd.DataFrame(rows, columns=list(BEST_MODELS_COLUMNS))


def test_a_realistic_best_table_fits_120_columns_and_wide_shows_everything():
    table = _realistic_best_table()
    text = best_table_text(None, table=table)
    assert max(len(line) for line in text.splitlines()) <= BEST_TABLE_WIDTH, text
    assert text.count("Best models per regime: ") == 2
    # Cut configurations say so; notes are numbered under their table.
    assert "gradient_boosting 15m 3..." in text
    assert "could be luck [1]" in text
    assert "[1] scored under earlier rules: forexgrid regimes rescore bear_trending" in text
    assert f"{NO_MODEL} [2]" in text and "[2] none of the 1234 run(s)" in text
    wide = best_table_text(None, table=table, wide=True)
    assert max(len(line) for line in wide.splitlines()) > BEST_TABLE_WIDTH
    for fragment in (
        "gradient_boosting GBPUSD 15m 365d h12 normalized +4h,1d max_depth=3 n_estimators=500",
        "stacking / 0.35 / 1000 bars",
        "45.67%",
        "123456 (1234.5)",
        "2024-03-01 12:34",
    ):
        assert fragment in wide, fragment


def test_best_as_csv_is_one_row_per_list_entry_and_nothing_else(run_cli, finished_workspace):
    result = run_cli("best", "--format", "csv")
    assert result.exit_code == 0, result.output
    got = pd.read_csv(io.StringIO(result.stdout))
    required = (
        "symbol, regime, rank, run_id, model_type, timeframe, days_history, horizon, encoder, "
        "signal, threshold, lookback, val_sharpe, test_sharpe, test_max_drawdown, "
        "test_win_rate, test_trades, dsr, pbo, verdict, validation_start, validation_end"
    ).split(", ")
    assert list(got.columns[: len(required)]) == required
    table = best_table(finished_workspace)
    entries = table[table["has_best"]].reset_index(drop=True)
    assert len(got) == len(entries)
    assert got["run_id"].tolist() == entries["run_id"].tolist()
    assert set(got["verdict"]) <= {"significant", "could be luck"}
    assert got["dsr"].between(0, 1).all() and got["pbo"].between(0, 1).all()
    np.testing.assert_allclose(got["val_sharpe"], entries["val_sharpe"], rtol=1e-9)
    assert (
        got["validation_end"].astype(str).tolist()
        == entries["validation_end"].astype(str).tolist()
    )


def test_best_as_json_matches_the_csv(run_cli):
    as_csv = pd.read_csv(io.StringIO(run_cli("best", "--format", "csv").stdout))
    result = run_cli("best", "--format", "json")
    assert result.exit_code == 0, result.output
    records = json.loads(result.stdout)
    assert isinstance(records, list) and len(records) == len(as_csv)
    assert list(records[0]) == list(as_csv.columns)
    assert [r["regime"] for r in records] == as_csv["regime"].tolist()
    assert records[0]["validation_start"] == str(as_csv["validation_start"].iloc[0])


def test_best_in_an_empty_workspace_as_csv_is_the_header_alone(run_empty):
    result = run_empty("best", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [",".join(BEST_EXPORT_COLUMNS)]
    assert json.loads(run_empty("best", "--format", "json").stdout) == []


def test_best_picks_a_window_by_its_last_validation_day(run_cli, finished_workspace):
    end = best_table(finished_workspace)["validation_end"].iloc[0]
    same = run_cli("best", "--window", str(end), "--format", "csv")
    assert same.exit_code == 0 and same.stdout == run_cli("best", "--format", "csv").stdout
    every = run_cli("best", "--window", "all")
    assert every.exit_code == 0 and every.stdout == run_cli("best").stdout
    missing = run_cli("best", "--window", "2001-01-01")
    assert missing.exit_code == 1
    assert missing.stderr == (
        f"error: no validation window ends on 2001-01-01; windows end on: {end}\n"
    )
    bad = run_cli("best", "--window", "soon")
    assert bad.exit_code == 1 and "expected 'newest', 'all' or a date" in bad.stderr


def test_best_for_a_symbol_without_models_marks_every_regime_empty(run_cli):
    result = run_cli("best", "--symbol", "gbpusd")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Best models per regime: GBPUSD"
    for regime in ("all", "bull_trending", "bear_trending", "volatile_ranging", "calm_ranging"):
        line = next(x for x in lines if x.startswith(regime + " "))
        assert line.split() == [regime, NO_MODEL.split()[0], NO_MODEL.split()[1]]


@pytest.mark.parametrize(
    "args",
    [("--symbol", "EURUSD,GBPUSD"), ("--symbol", "EURUSD", "--symbol", "GBPUSD")],
    ids=["comma-separated", "repeated"],
)
def test_best_takes_several_symbols(run_cli, args):
    result = run_cli("best", *args)
    assert result.exit_code == 0, result.output
    headers = [x for x in result.stdout.splitlines() if x.startswith("Best models per regime")]
    assert headers[0].startswith("Best models per regime: EURUSD, validation ")
    assert headers[1:] == ["Best models per regime: GBPUSD"]


def test_best_in_an_empty_workspace_says_no_model(run_empty):
    result = run_empty("best")
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("Best models per regime: no symbol has best models yet\n")
    assert result.stdout.count(NO_MODEL) == 5


def test_best_rows_show_drawdown_as_positive_percent_and_missing_as_na():
    table = pd.DataFrame(
        [
            {
                "symbol": "EURUSD",
                "regime": "r1",
                "rank": 1,
                "has_best": True,
                "run_id": 3,
                "model_type": "ridge",
                "config_label": "ridge EURUSD 1h 60d h3 time_delta",
                "signal": "mean",
                "threshold": 0.0,
                "lookback": pd.NA,
                "val_sharpe": 1.234,
                "test_sharpe": float("nan"),
                "test_max_drawdown": -0.0512,
                "test_win_rate": 0.5,
                "test_trades": 12,
                "dsr": float("nan"),
                "pbo": 0.25,
                "verdict": "could be luck",
                "n_trials": 410,
                "effective_trials": 23.45,
                "test_psr": 0.4,
                "achieved_at": pd.Timestamp("2024-03-01 12:34:56", tz="UTC"),
                "config_hash": "x",
                "note": "",
            },
            {"symbol": "EURUSD", "regime": "r2", "has_best": False, "note": "why"},
        ],
        columns=list(BEST_MODELS_COLUMNS),
    )
    first, second = _best_rows(table)
    assert first["Max DD"] == "5.12%"
    assert first["Signal / threshold / lookback"] == "mean / 0 / not used"
    assert (first["Val Sharpe"], first["Test Sharpe"], first["DSR"]) == ("1.23", "n/a", "n/a")
    assert (first["PBO"], first["Verdict"], first["Trials (eff.)"]) == (
        "0.25",
        "could be luck",
        "410 (23.4)",
    )
    assert first["Win rate"] == "50.0%"
    assert first["Achieved at (UTC)"] == "2024-03-01 12:34"
    assert second == {
        "Symbol": "EURUSD",
        "Regime": "r2",
        "Model": NO_MODEL,
        "Configuration": "why",
    }


# ------------------------------------------------------------------------------ trials


def test_trials_lists_every_scope_with_its_statistics(run_cli, finished_workspace):
    result = run_cli("trials")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    for column in ("Symbol", "Validation window", "Regime", "Rules", "Runs", "Trials"):
        assert column in lines[0]
    table = scopes(finished_workspace)
    assert len(lines) == 2 + len(table)
    for row in table.itertuples():
        line = next(x for x in lines[2:] if f"  {row.regime}  " in x)
        for fragment in (
            str(row.n_runs),
            str(row.n_trials),
            f"{row.effective_trials:.1f}",
            f"{row.expected_max_sharpe:.3f}",
            f"{row.pbo:.2f}",
        ):
            assert fragment in line, (fragment, line)


def test_trials_as_csv_and_json(run_cli, finished_workspace):
    as_csv = pd.read_csv(io.StringIO(run_cli("trials", "--format", "csv").stdout))
    assert list(as_csv.columns) == list(SCOPE_COLUMNS)
    assert len(as_csv) == len(scopes(finished_workspace))
    records = json.loads(run_cli("trials", "--format", "json").stdout)
    assert [r["regime"] for r in records] == as_csv["regime"].tolist()


def test_trials_recompute_gives_the_same_pbo(run_cli, finished_workspace):
    before = scopes(finished_workspace)
    result = run_cli("trials", "--recompute", "--symbol", "eurusd", "--format", "csv")
    assert result.exit_code == 0, result.output
    after = scopes(finished_workspace)
    np.testing.assert_allclose(after["pbo"], before["pbo"])
    assert (after["pbo_computed_at"] >= before["pbo_computed_at"]).all()


def test_trials_in_an_empty_workspace(run_empty):
    result = run_empty("trials")
    assert result.exit_code == 0
    assert result.stdout.startswith("No trials recorded yet")
