"""The Regime Analysis charts: the data they show, colours, baselines, PNG output."""

from __future__ import annotations

import math
import re

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib import _pylab_helpers
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from forexgrid import charts
from forexgrid.charts import (
    CHART_COLUMNS,
    CHART_FILES,
    EMPTY_COLOR,
    MODEL_COLOR,
    NO_MODELS_TEXT,
    chart_data,
    drawdown_chart,
    performance_figure,
    radar_chart,
    radar_scores,
    save_charts,
    sharpe_chart,
    win_rate_chart,
)
from forexgrid.exceptions import ForexgridError
from forexgrid.storage import BEST_MODELS_COLUMNS

NAN = float("nan")


def entry(regime: str, rank=1, symbol="EURUSD", **metrics) -> dict:
    row = {
        "symbol": symbol,
        "regime": regime,
        "rank": rank,
        "has_best": True,
        "run_id": 1,
        "model_type": "ridge",
        "config_label": "ridge EURUSD 1h 60d h3 time_delta",
        "signal": "direct",
        "threshold": 0.5,
        "lookback": 50,
        "val_sharpe": 2.0,
        "test_sharpe": 1.0,
        "test_max_drawdown": 0.1,
        "test_win_rate": 0.6,
        "test_trades": 20,
        "dsr": 0.7,
        "test_psr": 0.8,
        "achieved_at": pd.Timestamp("2024-01-02", tz="UTC"),
        "config_hash": "abc",
    }
    row.update(metrics)
    return row


def empty(regime: str, symbol="EURUSD") -> dict:
    return {"symbol": symbol, "regime": regime, "has_best": False}


def table(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows), columns=list(BEST_MODELS_COLUMNS))


@pytest.fixture
def best() -> pd.DataFrame:
    """Bull with a model, bear with a model but no drawdown figure, two empty regimes."""
    return table(
        entry("bull_trending", test_sharpe=1.5, test_max_drawdown=0.05, test_win_rate=0.62),
        entry("bull_trending", rank=2, test_sharpe=0.4, run_id=2),
        entry("bear_trending", test_sharpe=-0.8, test_max_drawdown=NAN, test_win_rate=0.4),
        empty("volatile_ranging"),
        empty("calm_ranging"),
    )


def bar_axes(fig: Figure):
    (ax,) = fig.axes
    return ax


def texts(fig: Figure) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


# ------------------------------------------------------------------------------ the data


def test_chart_data_has_one_row_per_regime_with_the_best_entry(best):
    data = chart_data(best)
    assert list(data.columns) == list(CHART_COLUMNS)
    assert data["regime"].tolist() == [
        "bull_trending",
        "bear_trending",
        "volatile_ranging",
        "calm_ranging",
    ]
    assert data["has_model"].tolist() == [True, True, False, False]
    assert data["sharpe"].iloc[0] == 1.5  # rank 1, not the rank-2 entry's 0.4
    assert data["label"].tolist() == data["regime"].tolist()
    for column in ("sharpe", "max_drawdown", "win_rate", "dsr", "val_sharpe"):
        assert data[column].iloc[2:].isna().all()
    assert math.isnan(data["max_drawdown"].iloc[1])


def test_chart_data_labels_regimes_by_symbol_when_there_are_several():
    data = chart_data(table(entry("bull", symbol="EURUSD"), entry("bull", symbol="GBPUSD")))
    assert data["label"].tolist() == ["EURUSD bull", "GBPUSD bull"]


def test_chart_data_of_an_empty_table_is_empty():
    data = chart_data(table())
    assert data.empty and list(data.columns) == list(CHART_COLUMNS)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (
            pd.DataFrame({"regime": ["a"], "has_best": [True]}),
            "chart_data: the best-models table lacks column(s) test_sharpe, test_max_drawdown, "
            "test_win_rate; pass forexgrid.storage.best_models_table(session)",
        ),
        (
            [1, 2],
            "chart_data: expected the best-models table as a DataFrame, got list",
        ),
    ],
    ids=["missing-columns", "not-a-frame"],
)
def test_chart_data_refuses_what_is_not_a_best_table(value, message):
    with pytest.raises(ForexgridError, match=re.escape(message)):
        chart_data(value)


def test_radar_scores_normalise_to_0_1(best):
    scores = radar_scores(best)
    assert scores.index.tolist() == ["bull_trending", "bear_trending"]  # models only
    bull, bear = scores.loc["bull_trending"], scores.loc["bear_trending"]
    assert bull["sharpe"] == pytest.approx(0.5 + 0.5 * math.tanh(1.5 / 2))
    assert bull["drawdown_control"] == pytest.approx(0.95)
    assert bull["win_rate"] == pytest.approx(0.62)
    assert bear["sharpe"] == pytest.approx(0.5 + 0.5 * math.tanh(-0.4))
    assert bear["drawdown_control"] == 0.0  # a missing figure scores 0
    assert ((scores >= 0) & (scores <= 1)).all().all()


@pytest.mark.parametrize(
    ("sharpe", "expected"),
    [(0.0, 0.5), (2.0, 0.5 + 0.5 * math.tanh(1.0)), (-50.0, 0.0), (50.0, 1.0)],
    ids=["zero", "two", "very-negative", "very-positive"],
)
def test_radar_sharpe_scale_is_bounded(sharpe, expected):
    scores = radar_scores(table(entry("r", test_sharpe=sharpe)))
    assert scores.loc["r", "sharpe"] == pytest.approx(expected, abs=1e-12)


# ----------------------------------------------------------------------------- the bars


@pytest.mark.parametrize(
    "builder", [sharpe_chart, drawdown_chart, win_rate_chart], ids=["sharpe", "dd", "win"]
)
def test_bar_colours_follow_has_model(best, builder):
    ax = bar_axes(builder(chart_data(best)))
    colours = [p.get_facecolor() for p in ax.patches]
    assert colours == [to_rgba(MODEL_COLOR)] * 2 + [to_rgba(EMPTY_COLOR)] * 2
    assert [t.get_text() for t in ax.get_xticklabels()] == chart_data(best)["label"].tolist()


def test_bar_heights_and_labels(best):
    data = chart_data(best)
    sharpe = bar_axes(sharpe_chart(data))
    assert [p.get_height() for p in sharpe.patches] == [1.5, -0.8, 0.0, 0.0]
    assert texts(sharpe.figure) == ["1.50", "-0.80", "no model", "no model"]
    drawdown = bar_axes(drawdown_chart(data))
    # Drawdown as a positive percentage; the missing figure drawn at 0 and marked n/a.
    assert [p.get_height() for p in drawdown.patches] == pytest.approx([5.0, 0.0, 0.0, 0.0])
    assert texts(drawdown.figure) == ["5.00%", "n/a", "no model", "no model"]
    win = bar_axes(win_rate_chart(data))
    assert [p.get_height() for p in win.patches] == pytest.approx([62.0, 40.0, 0.0, 0.0])


def test_a_negative_drawdown_is_shown_positive():
    ax = bar_axes(drawdown_chart(table(entry("r", test_max_drawdown=-0.07))))
    assert ax.patches[0].get_height() == pytest.approx(7.0)


def horizontal_lines(ax) -> list:
    return [line for line in ax.get_lines() if np.ptp(np.asarray(line.get_ydata())) == 0]


def test_win_rate_chart_has_the_red_dashed_50_percent_line(best):
    ax = bar_axes(win_rate_chart(best))
    (line,) = [x for x in horizontal_lines(ax) if x.get_ydata()[0] == 50.0]
    assert to_rgba(line.get_color()) == to_rgba("red")
    assert line.get_linestyle() == "--"
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylim()[1] >= 100.0


@pytest.mark.parametrize("builder", [sharpe_chart, drawdown_chart], ids=["sharpe", "drawdown"])
def test_bar_charts_have_a_baseline_at_zero(best, builder):
    ax = bar_axes(builder(best))
    assert [x.get_ydata()[0] for x in horizontal_lines(ax)] == [0.0]


# ----------------------------------------------------------------------- empty and radar


@pytest.mark.parametrize(
    "builder",
    [sharpe_chart, drawdown_chart, win_rate_chart, radar_chart],
    ids=["sharpe", "drawdown", "win", "radar"],
)
@pytest.mark.parametrize(
    "best_rows",
    [(), (empty("bull"), empty("bear"))],
    ids=["no-rows", "only-empty-regimes"],
)
def test_charts_without_models_say_so(builder, best_rows):
    fig = builder(table(*best_rows))
    assert NO_MODELS_TEXT in texts(fig)
    patches = [p for p in fig.axes[0].patches if p.get_facecolor() == to_rgba(MODEL_COLOR)]
    assert patches == []


def test_radar_draws_one_closed_polygon_per_model(best):
    fig = radar_chart(best)
    (ax,) = fig.axes
    assert ax.name == "polar"
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == {"bull_trending", "bear_trending"}
    r = np.asarray(lines["bull_trending"].get_ydata())
    assert len(r) == 4 and r[0] == r[-1]  # three axes, closed
    assert r[:3] == pytest.approx(radar_scores(best).loc["bull_trending"].to_numpy())
    assert NO_MODELS_TEXT not in texts(fig)


def test_performance_figure_has_the_four_charts(best):
    fig = performance_figure(best)
    assert isinstance(fig, Figure)
    assert [ax.name for ax in fig.axes] == ["rectilinear"] * 3 + ["polar"]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("Sharpe ratio") and titles[2].startswith("Win rate")


def test_figures_leave_no_pyplot_state(best):
    before = _pylab_helpers.Gcf.get_num_fig_managers()
    performance_figure(best)
    sharpe_chart(best)
    assert _pylab_helpers.Gcf.get_num_fig_managers() == before


# -------------------------------------------------------------------------------- saving


def test_save_charts_writes_four_valid_pngs(best, tmp_path):
    out = tmp_path / "charts"
    paths = save_charts(best, out)
    assert paths == [out / name for name in CHART_FILES]
    for path in paths:
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[2] in (3, 4)
        assert image.shape[0] > 100 and image.shape[1] > 100
    assert sorted(p.name for p in out.iterdir()) == sorted(CHART_FILES)  # no temp files


def test_save_charts_of_an_empty_table(tmp_path):
    paths = save_charts(table(), tmp_path)
    assert all(p.stat().st_size > 0 for p in paths)


def test_save_charts_replaces_existing_files(best, tmp_path):
    (tmp_path / CHART_FILES[0]).write_bytes(b"old")
    save_charts(best, tmp_path)
    assert matplotlib.image.imread(tmp_path / CHART_FILES[0]).ndim == 3


def test_save_charts_needs_an_existing_parent(best, tmp_path):
    out = tmp_path / "missing" / "charts"
    message = (
        f"charts: cannot create output directory {out}: its parent {out.parent} does not exist"
    )
    with pytest.raises(ForexgridError, match=re.escape(message)):
        save_charts(best, out)
    assert not (tmp_path / "missing").exists()


def test_save_charts_refuses_a_file_as_directory(best, tmp_path):
    file = tmp_path / "file"
    file.write_text("x")
    with pytest.raises(
        ForexgridError, match=re.escape(f"charts: output {file} exists and is not")
    ):
        save_charts(best, file)
    assert file.read_text() == "x"


def test_a_drawing_error_writes_no_file(best, tmp_path, monkeypatch):
    def broken(ax, data):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(charts, "_draw_radar", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        save_charts(best, tmp_path / "out")
    assert not (tmp_path / "out").exists()
