"""The Regime Analysis charts: Sharpe, drawdown, win rate and a radar profile per regime.

A pure function, :func:`chart_data`, turns the best-models table
(:func:`forexgrid.storage.best_models_table`) into one row per regime; the figure builders
only draw that frame. The same figures serve the CLI (:func:`save_charts` writes PNGs), the
widgets and notebooks (:func:`performance_figure` puts all four in one figure)::

    from forexgrid import charts, storage

    with storage.session_scope(settings) as session:
        table = storage.best_models_table(session, "EURUSD")
    charts.performance_figure(table)            # displays in a notebook cell
    charts.save_charts(table, "charts/")        # four PNG files

Figures are built as :class:`matplotlib.figure.Figure` objects directly, without pyplot:
no global figure registry, nothing to close, safe with any backend (PNG output uses Agg).

Colours: green bars for regimes that have a best model, grey for regimes that have none
(drawn at height 0 and labelled "no model"). A missing figure of a regime that has a model
is drawn at 0 and labelled "n/a".

Radar normalisation (every axis 0..1, larger is better):

- Sharpe: ``0.5 + 0.5 * tanh(sharpe / 2)`` -- 0.5 at a Sharpe of 0, 0.88 at 2, 0.12 at -2;
  bounded, so the very large annualised Sharpes of short test windows stay on the chart.
- Drawdown control: ``1 - max_drawdown`` (the drawdown as a fraction, clipped to 0..1).
- Win rate: the share of winning trades, as is.

A missing figure is drawn at 0 on its axis.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from forexgrid._atomic import atomic_path
from forexgrid.exceptions import ForexgridError

__all__ = [
    "CHART_COLUMNS",
    "CHART_FILES",
    "EMPTY_COLOR",
    "MODEL_COLOR",
    "NO_MODELS_TEXT",
    "RADAR_SHARPE_SCALE",
    "chart_data",
    "drawdown_chart",
    "performance_figure",
    "radar_chart",
    "radar_scores",
    "save_charts",
    "sharpe_chart",
    "win_rate_chart",
]

logger = logging.getLogger(__name__)

#: Columns of :func:`chart_data`.
CHART_COLUMNS: tuple[str, ...] = (
    "symbol",
    "regime",
    "label",
    "has_model",
    "run_id",
    "model_type",
    "config_label",
    "sharpe",
    "val_sharpe",
    "max_drawdown",
    "win_rate",
    "trades",
    "dsr",
    "achieved_at",
)

#: File names :func:`save_charts` writes, in order: Sharpe, drawdown, win rate, radar.
CHART_FILES: tuple[str, ...] = (
    "sharpe_ratio.png",
    "max_drawdown.png",
    "win_rate.png",
    "performance_radar.png",
)

MODEL_COLOR = "#2ca02c"
"""Bar colour of a regime that has a best model (green)."""
EMPTY_COLOR = "#b0b0b0"
"""Bar colour of a regime without a best model (grey)."""
NO_MODELS_TEXT = "no best models yet"
"""What a chart says when no regime has a best model."""
RADAR_SHARPE_SCALE = 2.0
"""Sharpe ``s`` maps to ``0.5 + 0.5 * tanh(s / RADAR_SHARPE_SCALE)`` on the radar."""

_REQUIRED = ("regime", "has_best", "test_sharpe", "test_max_drawdown", "test_win_rate")
# best_models_table column -> chart_data column
_RENAMES = {
    "has_best": "has_model",
    "test_sharpe": "sharpe",
    "test_max_drawdown": "max_drawdown",
    "test_win_rate": "win_rate",
    "test_trades": "trades",
}
_RADAR_AXES = ("Sharpe", "Drawdown control", "Win rate")
_DPI = 120


# ------------------------------------------------------------------------------ the data


def chart_data(best_table: pd.DataFrame) -> pd.DataFrame:
    """Return the figures the charts show: one row per regime, its best entry's test figures.

    Parameters
    ----------
    best_table : DataFrame
        :func:`forexgrid.storage.best_models_table` (or any frame with its ``regime``,
        ``has_best``, ``test_sharpe``, ``test_max_drawdown`` and ``test_win_rate``
        columns). Of a regime with several list places only rank 1 is charted.

    Returns
    -------
    DataFrame
        :data:`CHART_COLUMNS`, in the table's regime order: ``has_model`` bool, ``sharpe``
        (test Sharpe), ``max_drawdown`` (a fraction, positive), ``win_rate`` (0..1),
        ``trades``, ``dsr``, ``val_sharpe``; NaN for regimes without a model. ``label`` is
        the regime, prefixed with the symbol when the table holds several symbols.

    Raises
    ------
    ForexgridError
        If ``best_table`` is not a DataFrame or lacks a required column.
    """
    if not isinstance(best_table, pd.DataFrame):
        raise ForexgridError(
            f"chart_data: expected the best-models table as a DataFrame, got "
            f"{type(best_table).__name__}"
        )
    missing = [c for c in _REQUIRED if c not in best_table.columns]
    if missing:
        raise ForexgridError(
            f"chart_data: the best-models table lacks column(s) {', '.join(missing)}; pass "
            "forexgrid.storage.best_models_table(session)"
        )
    table = best_table.reset_index(drop=True)
    has = table["has_best"].fillna(False).astype(bool)
    if "rank" in table.columns:
        first = pd.to_numeric(table["rank"], errors="coerce").fillna(1).eq(1).to_numpy()
        keep = ~has.to_numpy() | first
        table, has = table[keep].reset_index(drop=True), has[keep].reset_index(drop=True)
    out = pd.DataFrame(index=table.index)
    for column in CHART_COLUMNS:
        source = next((k for k, v in _RENAMES.items() if v == column), column)
        out[column] = table[source] if source in table.columns else np.nan
    out["has_model"] = has.to_numpy()
    for column in ("sharpe", "val_sharpe", "max_drawdown", "win_rate", "dsr"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("float64")
        # An empty regime has no figures, whatever a hand-built table says.
        out.loc[~out["has_model"], column] = np.nan
    out["trades"] = pd.to_numeric(out["trades"], errors="coerce").astype("Int64")
    out["regime"] = out["regime"].astype(str)
    symbols = out["symbol"].dropna().unique() if "symbol" in table.columns else []
    if len(symbols) > 1:
        out["label"] = [
            r if pd.isna(s) else f"{s} {r}"
            for s, r in zip(out["symbol"], out["regime"], strict=True)
        ]
    else:
        out["label"] = out["regime"]
    return out[list(CHART_COLUMNS)]


def radar_scores(data: pd.DataFrame) -> pd.DataFrame:
    """Return the radar's 0..1 scores of each regime that has a best model.

    Parameters
    ----------
    data : DataFrame
        :func:`chart_data` (a best-models table is converted first).

    Returns
    -------
    DataFrame
        Indexed by ``label``; columns ``sharpe`` (``0.5 + 0.5 * tanh(sharpe / 2)``),
        ``drawdown_control`` (``1 - max_drawdown``, clipped to 0..1) and ``win_rate``
        (clipped to 0..1). A missing figure scores 0.

    Raises
    ------
    ForexgridError
        As :func:`chart_data`.
    """
    data = _as_chart_data(data)
    shown = data[data["has_model"]]
    scores = pd.DataFrame(
        {
            "sharpe": 0.5 + 0.5 * np.tanh(shown["sharpe"].to_numpy() / RADAR_SHARPE_SCALE),
            "drawdown_control": (1.0 - shown["max_drawdown"].to_numpy()).clip(0.0, 1.0),
            "win_rate": shown["win_rate"].to_numpy().clip(0.0, 1.0),
        },
        index=pd.Index(shown["label"].to_numpy(), name="label"),
    )
    return scores.fillna(0.0)


def _as_chart_data(data: pd.DataFrame) -> pd.DataFrame:
    # The builders accept the best-models table too, which is what a notebook user holds.
    if isinstance(data, pd.DataFrame) and "has_model" in data.columns:
        return data
    return chart_data(data)


# --------------------------------------------------------------------------- the drawing


def _no_models(ax: Axes) -> None:
    ax.text(
        0.5,
        0.5,
        NO_MODELS_TEXT,
        transform=ax.transAxes,
        ha="center",
        va="center",
        fontsize=13,
        color="0.35",
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.9},
        zorder=5,
    )


def _draw_bars(
    ax: Axes,
    data: pd.DataFrame,
    values: np.ndarray,
    *,
    title: str,
    ylabel: str,
    fmt: Callable[[float], str],
) -> None:
    has = data["has_model"].to_numpy(dtype=bool)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.axhline(0.0, color="black", linewidth=0.8, zorder=1)
    if data.empty:
        ax.set_xticks([])
        _no_models(ax)
        return
    heights = np.where(np.isfinite(values), values, 0.0)
    x = np.arange(len(data))
    bars = ax.bar(
        x,
        heights,
        color=[MODEL_COLOR if h else EMPTY_COLOR for h in has],
        edgecolor=[MODEL_COLOR if h else EMPTY_COLOR for h in has],
        zorder=2,
    )
    texts = [
        fmt(v) if np.isfinite(v) else ("n/a" if h else "no model")
        for v, h in zip(values, has, strict=True)
    ]
    ax.bar_label(bars, labels=texts, padding=2, fontsize=8)
    ax.set_xticks(x, data["label"].tolist(), rotation=20, ha="right")
    ax.margins(y=0.15)
    if not has.any():
        _no_models(ax)


def _draw_sharpe(ax: Axes, data: pd.DataFrame) -> None:
    _draw_bars(
        ax,
        data,
        data["sharpe"].to_numpy(dtype=float),
        title="Sharpe ratio by regime (test period)",
        ylabel="annualised Sharpe",
        fmt=lambda v: f"{v:.2f}",
    )


def _draw_drawdown(ax: Axes, data: pd.DataFrame) -> None:
    _draw_bars(
        ax,
        data,
        np.abs(data["max_drawdown"].to_numpy(dtype=float)) * 100.0,
        title="Max drawdown by regime (test period, lower is better)",
        ylabel="max drawdown (%)",
        fmt=lambda v: f"{v:.2f}%",
    )


def _draw_win_rate(ax: Axes, data: pd.DataFrame) -> None:
    _draw_bars(
        ax,
        data,
        data["win_rate"].to_numpy(dtype=float) * 100.0,
        title="Win rate by regime (test period)",
        ylabel="winning trades (%)",
        fmt=lambda v: f"{v:.0f}%",
    )
    ax.axhline(50.0, color="red", linestyle="--", linewidth=1.2, label="50% baseline", zorder=3)
    ax.set_ylim(0.0, 110.0)
    ax.legend(loc="upper right", fontsize=8)


def _draw_radar(ax: Axes, data: pd.DataFrame) -> None:
    angles = np.linspace(0.0, 2.0 * np.pi, len(_RADAR_AXES), endpoint=False)
    ax.set_xticks(angles, list(_RADAR_AXES))
    ax.set_ylim(0.0, 1.0)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], ["0.25", "0.5", "0.75", "1"], fontsize=7)
    ax.set_rlabel_position(60)  # between the Sharpe and drawdown spokes, clear of both
    ax.set_title("Performance profile of each regime's best model", pad=20)
    scores = radar_scores(data)
    if scores.empty:
        _no_models(ax)
        return
    closed = np.append(angles, angles[0])
    for label, row in scores.iterrows():
        values = row.to_numpy(dtype=float)
        values = np.append(values, values[0])
        (line,) = ax.plot(closed, values, linewidth=1.5, label=str(label))
        ax.fill(closed, values, alpha=0.12, color=line.get_color())
    ax.legend(loc="upper left", bbox_to_anchor=(1.1, 1.0), fontsize=8)
    ax.annotate(
        "scale 0..1. Sharpe: 0.5 + 0.5 tanh(S/2); drawdown control: 1 - max drawdown; "
        "win rate as is",
        xy=(0.5, -0.12),
        xycoords="axes fraction",
        ha="center",
        fontsize=7,
        color="0.35",
    )


def _single(draw: Callable[[Axes, pd.DataFrame], None], data: pd.DataFrame, polar=False):
    data = _as_chart_data(data)
    fig = Figure(figsize=(8.0, 5.0), layout="constrained")
    ax = fig.add_subplot(projection="polar" if polar else None)
    draw(ax, data)
    return fig


def sharpe_chart(data: pd.DataFrame) -> Figure:
    """Bar chart of each regime's best test Sharpe; green with a model, grey without.

    Parameters
    ----------
    data : DataFrame
        :func:`chart_data` (a best-models table is converted first).

    Returns
    -------
    matplotlib.figure.Figure
        With a baseline at 0; says "no best models yet" when no regime has a model.

    Raises
    ------
    ForexgridError
        As :func:`chart_data`.
    """
    return _single(_draw_sharpe, data)


def drawdown_chart(data: pd.DataFrame) -> Figure:
    """Bar chart of each regime's best test max drawdown, as a positive percentage.

    Parameters
    ----------
    data : DataFrame
        :func:`chart_data` (a best-models table is converted first).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ForexgridError
        As :func:`chart_data`.
    """
    return _single(_draw_drawdown, data)


def win_rate_chart(data: pd.DataFrame) -> Figure:
    """Bar chart of each regime's best test win rate (%), with a red dashed line at 50%.

    Parameters
    ----------
    data : DataFrame
        :func:`chart_data` (a best-models table is converted first).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ForexgridError
        As :func:`chart_data`.
    """
    return _single(_draw_win_rate, data)


def radar_chart(data: pd.DataFrame) -> Figure:
    """Radar of each regime's best model: Sharpe, drawdown control and win rate, 0..1.

    The normalisation is :func:`radar_scores` (see the module docstring).

    Parameters
    ----------
    data : DataFrame
        :func:`chart_data` (a best-models table is converted first).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ForexgridError
        As :func:`chart_data`.
    """
    return _single(_draw_radar, data, polar=True)


def performance_figure(best_table: pd.DataFrame) -> Figure:
    """All four charts in one figure (2 x 2), for a notebook cell.

    Parameters
    ----------
    best_table : DataFrame
        :func:`forexgrid.storage.best_models_table` (or :func:`chart_data`).

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    ForexgridError
        As :func:`chart_data`.
    """
    data = _as_chart_data(best_table)
    fig = Figure(figsize=(14.0, 10.0), layout="constrained")
    axes = [
        fig.add_subplot(2, 2, 1),
        fig.add_subplot(2, 2, 2),
        fig.add_subplot(2, 2, 3),
        fig.add_subplot(2, 2, 4, projection="polar"),
    ]
    for ax, draw in zip(
        axes, (_draw_sharpe, _draw_drawdown, _draw_win_rate, _draw_radar), strict=True
    ):
        draw(ax, data)
    fig.suptitle("Best models per regime")
    return fig


# ------------------------------------------------------------------------------- saving


def _output_dir(directory: str | os.PathLike[str]) -> Path:
    path = Path(directory).expanduser()
    if path.exists() and not path.is_dir():
        raise ForexgridError(f"charts: output {path} exists and is not a directory")
    if not path.exists():
        # Create the folder itself but not a chain of them: a typo in a parent stays visible.
        if not path.parent.is_dir():
            raise ForexgridError(
                f"charts: cannot create output directory {path}: its parent {path.parent} "
                "does not exist"
            )
        try:
            path.mkdir()
        except OSError as err:
            raise ForexgridError(
                f"charts: cannot create output directory {path}: {err.strerror or err}"
            ) from err
    return path


def save_charts(best_table: pd.DataFrame, directory: str | os.PathLike[str]) -> list[Path]:
    """Write the four charts as PNG files into ``directory``, each atomically.

    Parameters
    ----------
    best_table : DataFrame
        :func:`forexgrid.storage.best_models_table` (or :func:`chart_data`).
    directory : path
        Output folder; created if missing (its parent must exist). Files named
        :data:`CHART_FILES` are replaced.

    Returns
    -------
    list of Path
        The four files, in the order of :data:`CHART_FILES`.

    Raises
    ------
    ForexgridError
        If the table is unusable (see :func:`chart_data`), ``directory`` is a file or its
        parent does not exist, or a file cannot be written.
    """
    data = _as_chart_data(best_table)
    # Every figure is built before the first file is written, so a drawing error writes none.
    figures = [sharpe_chart(data), drawdown_chart(data), win_rate_chart(data), radar_chart(data)]
    out = _output_dir(directory)
    paths = []
    for name, fig in zip(CHART_FILES, figures, strict=True):
        target = out / name
        try:
            with atomic_path(target) as tmp:
                fig.savefig(tmp, format="png", dpi=_DPI)
        except OSError as err:
            raise ForexgridError(f"charts: cannot write {target}: {err.strerror or err}") from err
        paths.append(target)
    logger.info("charts: wrote %d PNG files to %s", len(paths), out)
    return paths
