"""The Regime Analysis charts: the data they show, colours, baselines, PNG output."""

from __future__ import annotations

import math
import re

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from matplotlib import _pylab_helpers
from matplotlib.backends.backend_agg import FigureCanvasAgg
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
from forexgrid.storage.bests import BEST_MODELS_COLUMNS

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
            "test_win_rate; pass ws.best(entries_only=False) (or ws.charts(), which does)",
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


def mid() -> float:
    """The score of a figure every model shares: halfway between the inner ring and the rim."""
    return charts.RADAR_FLOOR + (1.0 - charts.RADAR_FLOOR) * 0.5


def test_radar_scores_rank_the_models_shown_on_each_axis(best):
    scores = radar_scores(best)
    assert scores.index.tolist() == ["bull_trending", "bear_trending"]  # models only
    assert list(scores.columns) == list(charts.RADAR_COLUMNS)
    assert len(charts.RADAR_COLUMNS) >= 4
    bull, bear = scores.loc["bull_trending"], scores.loc["bear_trending"]
    # Best of the models shown at the rim, worst on the inner ring.
    assert (bull["sharpe"], bear["sharpe"]) == (1.0, pytest.approx(charts.RADAR_FLOOR))
    assert (bull["win_rate"], bear["win_rate"]) == (1.0, pytest.approx(charts.RADAR_FLOOR))
    # A figure both share (validation Sharpe, DSR, trades) is drawn halfway for both.
    for column in ("val_sharpe", "dsr", "trades"):
        assert bull[column] == pytest.approx(mid()) and bear[column] == pytest.approx(mid())
    # A missing figure sits at the centre, below the worst model.
    assert bear["drawdown_control"] == 0.0 and bull["drawdown_control"] == pytest.approx(mid())
    assert ((scores >= 0) & (scores <= 1)).all().all()


def test_a_tiny_difference_is_not_stretched_to_the_full_radius():
    # Win rates 60% and 62% differ by less than RADAR_MIN_SPAN (0.1 on the 0..1 scale).
    scores = radar_scores(table(entry("a", test_win_rate=0.60), entry("b", test_win_rate=0.62)))
    low, high = charts.RADAR_FLOOR + (1 - charts.RADAR_FLOOR) * np.array([0.4, 0.6])
    assert scores["win_rate"].tolist() == pytest.approx([low, high])


def test_one_model_is_drawn_at_mid_scale():
    scores = radar_scores(table(entry("only")))
    assert scores.loc["only"].tolist() == pytest.approx([mid()] * len(charts.RADAR_COLUMNS))


def test_a_huge_sharpe_does_not_flatten_the_others():
    # Sharpe goes through 0.5 + 0.5 * tanh(s / 2) first: 50 is "very high", not 25 times 2.
    scores = radar_scores(
        table(
            entry("zero", test_sharpe=0.0),
            entry("two", test_sharpe=2.0),
            entry("huge", test_sharpe=50.0),
        )
    )
    rel = math.tanh(2.0 / charts.RADAR_SHARPE_SCALE)
    assert scores["sharpe"].tolist() == pytest.approx(
        [charts.RADAR_FLOOR, charts.RADAR_FLOOR + (1 - charts.RADAR_FLOOR) * rel, 1.0]
    )


def radar_lines(fig: Figure) -> dict:
    (ax,) = [ax for ax in fig.axes if ax.name == "polar"]
    return {line.get_label(): np.asarray(line.get_ydata()) for line in ax.get_lines()}


def test_two_different_models_give_visibly_different_polygons():
    # The figures new users had: two decent models whose polygons used to coincide.
    best = table(
        entry(
            "bull",
            test_sharpe=1.0,
            val_sharpe=1.8,
            test_max_drawdown=0.10,
            test_win_rate=0.55,
            test_trades=40,
            dsr=0.60,
        ),
        entry(
            "calm",
            test_sharpe=1.4,
            val_sharpe=1.2,
            test_max_drawdown=0.06,
            test_win_rate=0.60,
            test_trades=15,
            dsr=0.90,
        ),
    )
    lines = radar_lines(radar_chart(best))
    bull, calm = lines["bull"], lines["calm"]
    assert len(bull) == len(charts.RADAR_COLUMNS) + 1 and bull[0] == bull[-1]  # closed
    assert ((bull >= 0) & (bull <= 1)).all() and ((calm >= 0) & (calm <= 1)).all()
    assert np.abs(bull - calm).max() >= 0.5  # each axis: one at the rim, one near the centre


def text_boxes(fig: Figure, artists) -> list:
    renderer = fig.canvas.get_renderer()
    return [
        a.get_window_extent(renderer)
        for a in artists
        if a.get_visible() and (not hasattr(a, "get_text") or a.get_text().strip())
    ]


def assert_apart(boxes, others=()) -> None:
    for i, box in enumerate(boxes):
        for other in [*boxes[i + 1 :], *others]:
            # 1 px of tolerance: touching is not overlapping.
            assert not box.padded(-1).overlaps(other.padded(-1)), (box, other)


def radar_texts(ax) -> list:
    legend = ax.get_legend()
    return [*ax.get_xticklabels(), *ax.get_yticklabels(), ax.title, *ax.texts, legend]


@pytest.mark.parametrize("builder", [radar_chart, performance_figure], ids=["radar", "all-four"])
@pytest.mark.parametrize("symbols", [1, 2], ids=["one-symbol", "two-symbols"])
def test_radar_labels_do_not_overlap(builder, symbols):
    rows = [
        entry(regime, symbol=s, test_sharpe=sh, test_win_rate=w)
        for s in ("EURUSD", "GBPUSD")[:symbols]
        for regime, sh, w in (
            ("bull_trending", 1.2, 0.6),
            ("bear_trending", -0.4, 0.45),
            ("volatile_ranging", 0.3, 0.52),
            ("calm_ranging", 2.1, 0.66),
        )
    ]
    fig = builder(table(*rows))
    FigureCanvasAgg(fig).draw()
    polar = [ax for ax in fig.axes if ax.name == "polar"]
    assert len(polar) == symbols
    everything = [t for ax in fig.axes for t in (*ax.get_xticklabels(), ax.title, *ax.texts)]
    for ax in polar:
        mine = text_boxes(fig, radar_texts(ax))
        others = text_boxes(fig, [t for t in everything if t not in radar_texts(ax)])
        assert len(mine) >= len(charts.RADAR_COLUMNS) + 2  # axis labels, title, legend
        assert_apart(mine, others)
        # The legend sits outside the circle, not on the polygons.
        assert not ax.get_legend().get_window_extent().overlaps(ax.get_window_extent())
        assert_outside_the_circle(ax, text_boxes(fig, ax.get_xticklabels()))


def assert_outside_the_circle(ax, boxes) -> None:
    centre = ax.transAxes.transform((0.5, 0.5))
    radius = ax.get_window_extent().width / 2.0
    for box in boxes:
        # The point of the box nearest to the centre is outside the circle.
        nearest = np.clip(centre, [box.x0, box.y0], [box.x1, box.y1])
        assert np.hypot(*(nearest - centre)) > radius, box


# ----------------------------------------------------------------------------- the bars


def facecolours(ax) -> list[tuple[float, ...]]:
    return [p.get_facecolor() for p in ax.patches]


GREEN, GREY = to_rgba(MODEL_COLOR), to_rgba(EMPTY_COLOR)


def signed_table() -> pd.DataFrame:
    """Sharpe +1.5, -0.8, 0, missing; win rate above, below and at 50%; one empty regime."""
    return table(
        entry("up", test_sharpe=1.5, test_win_rate=0.62),
        entry("down", test_sharpe=-0.8, test_win_rate=0.40),
        entry("flat", test_sharpe=0.0, test_win_rate=0.50),
        entry("unknown", test_sharpe=NAN, test_win_rate=NAN),
        empty("none"),
    )


def test_sharpe_bars_are_coloured_by_sign():
    red = to_rgba(charts.NEGATIVE_COLOR)
    ax = bar_axes(sharpe_chart(signed_table()))
    assert facecolours(ax) == [GREEN, red, GREY, GREY, GREY]
    assert red != GREEN and red != GREY


def test_win_rate_bars_are_coloured_against_the_50_percent_line():
    red = to_rgba(charts.NEGATIVE_COLOR)
    ax = bar_axes(win_rate_chart(signed_table()))
    assert facecolours(ax) == [GREEN, red, GREY, GREY, GREY]


def test_drawdown_bars_are_never_green():
    # A drawdown is a loss: its size is shown in one neutral colour, lower is better.
    ax = bar_axes(drawdown_chart(signed_table()))
    colours = facecolours(ax)
    assert GREEN not in colours
    assert colours[:4] == [to_rgba(charts.MAGNITUDE_COLOR)] * 4 and colours[4] == GREY


def test_bar_tick_labels_are_the_regimes(best):
    for builder in (sharpe_chart, drawdown_chart, win_rate_chart):
        ax = bar_axes(builder(best))
        assert [t.get_text() for t in ax.get_xticklabels()] == chart_data(best)["regime"].tolist()


def test_win_rate_bars_show_the_trade_counts():
    best = table(
        entry("bull", test_win_rate=0.62, test_trades=37),
        entry("bear", test_win_rate=0.40, test_trades=8),
        entry("calm", test_win_rate=NAN, test_trades=0),
        entry("odd", test_win_rate=0.5, test_trades=None),
        empty("none"),
    )
    ax = bar_axes(win_rate_chart(best))
    assert [t.get_text() for t in ax.texts] == [
        "62%\nn=37",
        "40%\nn=8",
        "n/a\nn=0",
        "50%\nn=?",
        "no model",
    ]


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
    lines = radar_lines(fig)
    assert set(lines) == {"bull_trending", "bear_trending"}
    r = lines["bull_trending"]
    assert len(r) == len(charts.RADAR_COLUMNS) + 1 and r[0] == r[-1]  # closed
    assert r[:-1] == pytest.approx(radar_scores(best).loc["bull_trending"].to_numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == list(charts.RADAR_LABELS)
    assert NO_MODELS_TEXT not in texts(fig)


def test_performance_figure_has_the_four_charts(best):
    fig = performance_figure(best)
    assert isinstance(fig, Figure)
    assert [ax.name for ax in fig.axes] == ["rectilinear"] * 3 + ["polar"]
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[0].startswith("Sharpe ratio") and titles[2].startswith("Win rate")
    assert fig.get_suptitle() == "EURUSD: best models per regime"


def two_symbols() -> pd.DataFrame:
    return table(
        entry("bull", symbol="EURUSD", test_sharpe=1.0),
        entry("bear", symbol="EURUSD", test_sharpe=-0.5, test_win_rate=0.4),
        empty("calm", symbol="EURUSD"),
        entry("bull", symbol="GBPUSD", test_sharpe=0.7),
        empty("bear", symbol="GBPUSD"),
    )


def test_performance_figure_has_a_panel_per_symbol():
    fig = performance_figure(two_symbols())
    panels = fig.subfigs
    assert [p.get_suptitle() for p in panels] == [
        "EURUSD: best models per regime",
        "GBPUSD: best models per regime",
    ]
    assert len(fig.axes) == 8
    for panel, regimes, models in zip(
        panels,
        (["bull", "bear", "calm"], ["bull", "bear"]),
        ({"bull", "bear"}, {"bull"}),
        strict=True,
    ):
        assert [ax.name for ax in panel.axes] == ["rectilinear"] * 3 + ["polar"]
        for ax in panel.axes[:3]:
            assert [t.get_text() for t in ax.get_xticklabels()] == regimes
        assert set(radar_lines(panel)) == models


@pytest.mark.parametrize(
    "builder",
    [sharpe_chart, drawdown_chart, win_rate_chart, radar_chart],
    ids=["sharpe", "drawdown", "win", "radar"],
)
def test_single_charts_have_an_axes_per_symbol(builder):
    fig = builder(two_symbols())
    assert len(fig.axes) == 2
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == ["EURUSD", "GBPUSD"]
    if builder is not radar_chart:
        assert len(fig.axes[0].patches) == 3 and len(fig.axes[1].patches) == 2


def test_rows_without_a_symbol_get_their_own_untitled_panel():
    rows = two_symbols()
    rows.loc[4, "symbol"] = None  # a hand-built row with no symbol
    fig = sharpe_chart(rows)
    assert [ax.get_title().split(":")[0] for ax in fig.axes] == [
        "EURUSD",
        "GBPUSD",
        "Sharpe ratio by regime (test period)",
    ]
    assert [len(ax.patches) for ax in fig.axes] == [3, 1, 1]


def test_a_single_chart_names_its_symbol(best):
    assert bar_axes(sharpe_chart(best)).get_title().startswith("EURUSD: Sharpe ratio")


PNG = b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize(
    "builder",
    [performance_figure, sharpe_chart, drawdown_chart, win_rate_chart, radar_chart],
    ids=["all-four", "sharpe", "drawdown", "win", "radar"],
)
def test_figures_render_as_png_in_ipython_without_a_backend(best, builder):
    from IPython.core.formatters import PNGFormatter

    # IPython's PNG formatter, with no printer registered for Figure (no %matplotlib inline).
    png = PNGFormatter()(builder(best))
    assert isinstance(png, bytes) and png.startswith(PNG)


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
    def broken(ax, data, symbol=None):
        raise RuntimeError("drawing failed")

    monkeypatch.setattr(charts, "_draw_radar", broken)
    with pytest.raises(RuntimeError, match="drawing failed"):
        save_charts(best, tmp_path / "out")
    assert not (tmp_path / "out").exists()
