"""The Regime Analysis charts: Sharpe, drawdown, win rate and a radar profile per regime.

A pure function, :func:`chart_data`, turns the best-models table
(:func:`forexgrid.storage.best_models_table`) into one row per regime; the figure builders
only draw that frame. The same figures serve the CLI (:func:`save_charts` writes PNGs), the
widgets and notebooks (:func:`performance_figure` puts all four in one figure)::

    from forexgrid import charts, storage

    with storage.session_scope(settings) as session:
        table = storage.bests.best_models_table(session, "EURUSD")
    charts.performance_figure(table)            # displays in a notebook cell
    charts.save_charts(table, "charts/")        # four PNG files

Figures are built as :class:`matplotlib.figure.Figure` objects directly, without pyplot:
no global figure registry, nothing to close, safe with any backend (PNG output uses Agg).
They show inline in Jupyter, with or without ``%matplotlib inline`` (see
:class:`_NotebookFigure`). With several symbols, each symbol gets its own panel.

Colours: green is good (a Sharpe above 0, a win rate above 50%), red is bad, grey is
neither (on the line, missing, or a regime without a model, drawn at 0 and labelled
"no model"); the max drawdown is one neutral blue. Win-rate bars carry their trade count.

The radar's six axes (:data:`RADAR_LABELS`) are scaled across the models it draws: a
bounded absolute 0..1 score first (Sharpe ``0.5 + 0.5 * tanh(s / 2)``, trades
``n / (n + 30)``), then best model at the rim, worst on the inner ring
(:data:`RADAR_FLOOR`), a spread below :data:`RADAR_MIN_SPAN` widened to it, a missing
figure at the centre. ``docs/charts.md`` says what each chart shows.
"""

from __future__ import annotations

import io
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
    "MAGNITUDE_COLOR",
    "MODEL_COLOR",
    "NEGATIVE_COLOR",
    "NO_MODELS_TEXT",
    "RADAR_COLUMNS",
    "RADAR_FLOOR",
    "RADAR_LABELS",
    "RADAR_MIN_SPAN",
    "RADAR_SHARPE_SCALE",
    "RADAR_TRADES_HALF",
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
"""Bar colour of a good figure (green): a Sharpe above 0, a win rate above 50%."""
NEGATIVE_COLOR = "#d62728"
"""Bar colour of a bad figure (red): a Sharpe below 0, a win rate below 50%."""
EMPTY_COLOR = "#b0b0b0"
"""Bar colour of a regime without a best model, a missing figure or one on the line (grey)."""
MAGNITUDE_COLOR = "#4c72b0"
"""Bar colour of the max drawdown (blue): a size of loss, neither good nor bad by sign."""
NO_MODELS_TEXT = "no best models yet"
"""What a chart says when no regime has a best model."""
RADAR_SHARPE_SCALE = 2.0
"""Sharpe ``s`` maps to ``0.5 + 0.5 * tanh(s / RADAR_SHARPE_SCALE)`` before the radar's scaling."""
RADAR_TRADES_HALF = 30.0
"""Trades ``n`` map to ``n / (n + RADAR_TRADES_HALF)`` before the radar's scaling."""
RADAR_FLOOR = 0.15
"""Radius of the worst model shown on a radar axis (0 is kept for a missing figure)."""
RADAR_MIN_SPAN = 0.1
"""Smallest spread, on the 0..1 absolute scale, that a radar axis stretches from ring to rim."""
RADAR_COLUMNS: tuple[str, ...] = (
    "sharpe",
    "val_sharpe",
    "dsr",
    "trades",
    "win_rate",
    "drawdown_control",
)
"""Columns of :func:`radar_scores`, clockwise from the top of the radar."""
RADAR_LABELS: tuple[str, ...] = (
    "test Sharpe",
    "val. Sharpe",
    "DSR",
    "trades",
    "win rate",
    "1 - drawdown",
)
"""The radar's axis labels, in the order of :data:`RADAR_COLUMNS` (short: they must not
collide)."""

_REQUIRED = ("regime", "has_best", "test_sharpe", "test_max_drawdown", "test_win_rate")
# best_models_table column -> chart_data column
_RENAMES = {
    "has_best": "has_model",
    "test_sharpe": "sharpe",
    "test_max_drawdown": "max_drawdown",
    "test_win_rate": "win_rate",
    "test_trades": "trades",
}
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
            "ws.best(entries_only=False) (or ws.charts(), which does)"
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

    Every row given is scaled against the others (the figures call this once per symbol):
    on each axis the best model scores 1, the worst :data:`RADAR_FLOOR`, a figure all share
    halfway between, a missing figure 0. The steps are in the module docstring.

    Parameters
    ----------
    data : DataFrame
        :func:`chart_data` (a best-models table is converted first).

    Returns
    -------
    DataFrame
        Indexed by ``label``; columns :data:`RADAR_COLUMNS`: ``sharpe`` (test),
        ``val_sharpe``, ``dsr``, ``trades``, ``win_rate`` and ``drawdown_control``
        (``1 - max drawdown``), each in 0..1.

    Raises
    ------
    ForexgridError
        As :func:`chart_data`.
    """
    data = _as_chart_data(data)
    shown = data[data["has_model"]]
    trades = shown["trades"].astype("float64").to_numpy(na_value=np.nan).clip(0.0, None)
    absolute = np.column_stack(
        [
            0.5 + 0.5 * np.tanh(shown["sharpe"].to_numpy() / RADAR_SHARPE_SCALE),
            0.5 + 0.5 * np.tanh(shown["val_sharpe"].to_numpy() / RADAR_SHARPE_SCALE),
            shown["dsr"].to_numpy(),
            trades / (trades + RADAR_TRADES_HALF),
            shown["win_rate"].to_numpy(),
            1.0 - np.abs(shown["max_drawdown"].to_numpy()),
        ]
    ).clip(0.0, 1.0)
    return pd.DataFrame(
        _scale_across_models(absolute),
        index=pd.Index(shown["label"].to_numpy(), name="label"),
        columns=list(RADAR_COLUMNS),
    )


def _scale_across_models(absolute: np.ndarray) -> np.ndarray:
    # absolute: one row per model, one column per axis, in 0..1 or NaN.
    with np.errstate(all="ignore"):  # an axis with no figure at all is all-NaN: scores 0
        low = np.nanmin(absolute, axis=0, initial=np.inf, where=np.isfinite(absolute))
        high = np.nanmax(absolute, axis=0, initial=-np.inf, where=np.isfinite(absolute))
        middle = (low + high) / 2.0
        span = np.maximum(high - low, RADAR_MIN_SPAN)
        relative = (absolute - (middle - span / 2.0)) / span
    # The clip only removes rounding (the best model could land at 1 + 1e-16).
    scores = (RADAR_FLOOR + (1.0 - RADAR_FLOOR) * relative).clip(0.0, 1.0)
    return np.where(np.isfinite(scores), scores, 0.0)


def _as_chart_data(data: pd.DataFrame) -> pd.DataFrame:
    # The builders accept the best-models table too, which is what a notebook user holds.
    if isinstance(data, pd.DataFrame) and "has_model" in data.columns:
        return data
    return chart_data(data)


def _by_symbol(data: pd.DataFrame) -> list[tuple[str | None, pd.DataFrame]]:
    """Split chart data into one panel per symbol, in table order (one panel if none)."""
    symbols = data["symbol"].astype(object).where(data["symbol"].notna(), None)
    names = list(dict.fromkeys(symbols))
    if len(names) <= 1:
        return [(names[0] if names else None, data)]
    return [
        (name, data[(symbols.isna() if name is None else symbols.eq(name)).to_numpy()])
        for name in names
    ]


# --------------------------------------------------------------------------- the drawing


class _NotebookFigure(Figure):
    """A Figure that shows itself as a PNG when it is a Jupyter cell's last expression.

    Why this and not pyplot: a figure made through pyplot stays in pyplot's global registry
    until closed (memory grows over a long session), and with the inline backend it would
    be shown twice (as the cell's value and again when the backend flushes its open figures
    at the end of the cell). A plain Figure is in no registry, but in a fresh kernel (no
    ``%matplotlib inline``, pyplot never imported) IPython has no printer for it and shows
    ``<Figure size ...>``. IPython's formatters use a printer registered for the type first
    and ``_repr_png_`` only when there is none, so: without the inline backend this method
    draws the PNG; with it, the inline printer draws it instead. One image either way.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


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


def _signed_colours(values: np.ndarray, line: float) -> list[str]:
    """Green above ``line``, red below, grey on it or missing."""
    colours = np.full(len(values), EMPTY_COLOR, dtype=object)
    with np.errstate(invalid="ignore"):
        colours[values > line] = MODEL_COLOR
        colours[values < line] = NEGATIVE_COLOR
    return colours.tolist()


def _titled(prefix: str | None, title: str) -> str:
    return title if prefix is None else f"{prefix}: {title}"


def _draw_bars(
    ax: Axes,
    data: pd.DataFrame,
    values: np.ndarray,
    *,
    title: str,
    ylabel: str,
    labels: list[str],
    colours: list[str],
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
    colours = [c if h else EMPTY_COLOR for c, h in zip(colours, has, strict=True)]
    x = np.arange(len(data))
    bars = ax.bar(x, heights, color=colours, edgecolor=colours, zorder=2)
    texts = [text if h else "no model" for text, h in zip(labels, has, strict=True)]
    # Above the baselines (zorder 3), on white, so a line through a label does not hide it.
    ax.bar_label(
        bars,
        labels=texts,
        padding=2,
        fontsize=8,
        zorder=4,
        bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 0.5},
    )
    # The panel is one symbol's, so the regime alone names a bar.
    ax.set_xticks(x, data["regime"].tolist(), rotation=20, ha="right")
    ax.margins(y=0.15)
    if not has.any():
        _no_models(ax)


def _figure_text(values: np.ndarray, fmt: Callable[[float], str]) -> list[str]:
    return [fmt(v) if np.isfinite(v) else "n/a" for v in values]


def _draw_sharpe(ax: Axes, data: pd.DataFrame, symbol: str | None = None) -> None:
    values = data["sharpe"].to_numpy(dtype=float)
    _draw_bars(
        ax,
        data,
        values,
        title=_titled(symbol, "Sharpe ratio by regime (test period)"),
        ylabel="annualised Sharpe",
        labels=_figure_text(values, lambda v: f"{v:.2f}"),
        colours=_signed_colours(values, 0.0),
    )


def _draw_drawdown(ax: Axes, data: pd.DataFrame, symbol: str | None = None) -> None:
    values = np.abs(data["max_drawdown"].to_numpy(dtype=float)) * 100.0
    _draw_bars(
        ax,
        data,
        values,
        title=_titled(symbol, "Max drawdown by regime (test period, lower is better)"),
        ylabel="max drawdown (%)",
        labels=_figure_text(values, lambda v: f"{v:.2f}%"),
        colours=[MAGNITUDE_COLOR] * len(values),
    )


def _draw_win_rate(ax: Axes, data: pd.DataFrame, symbol: str | None = None) -> None:
    values = data["win_rate"].to_numpy(dtype=float) * 100.0
    trades = ["?" if pd.isna(n) else str(n) for n in data["trades"]]
    _draw_bars(
        ax,
        data,
        values,
        title=_titled(symbol, "Win rate by regime (test period)"),
        ylabel="winning trades (%)",
        labels=[
            f"{text}\nn={n}"
            for text, n in zip(_figure_text(values, lambda v: f"{v:.0f}%"), trades, strict=True)
        ],
        colours=_signed_colours(values, 50.0),
    )
    ax.axhline(50.0, color="red", linestyle="--", linewidth=1.2, label="50% baseline", zorder=3)
    # Room above a 100% bar for its two-line label.
    ax.set_ylim(0.0, 122.0)
    ax.set_yticks([0, 25, 50, 75, 100])
    ax.legend(loc="upper right", fontsize=8)


def _draw_radar(ax: Axes, data: pd.DataFrame, symbol: str | None = None) -> None:
    angles = np.linspace(0.0, 2.0 * np.pi, len(RADAR_COLUMNS), endpoint=False)
    ax.set_theta_zero_location("N")
    ax.set_theta_direction(-1)  # clockwise from the top, as a reader scans
    ax.set_xticks(angles, list(RADAR_LABELS), fontsize=9)
    ax.tick_params(axis="x", pad=6)
    # Centred labels on the sides would straddle the circle: anchor each by its outer edge.
    for label, side in zip(ax.get_xticklabels(), np.sin(angles), strict=True):
        label.set_horizontalalignment(
            "left" if side > 0.1 else "right" if side < -0.1 else "center"
        )
    ax.set_ylim(0.0, 1.0)
    # Rings without numbers: the radius is a position among the models shown, not a figure.
    ax.set_yticks([RADAR_FLOOR, (1.0 + RADAR_FLOOR) / 2.0, 1.0], [])
    ax.set_title(_titled(symbol, "Profile of each regime's best model"), pad=14)
    scores = radar_scores(data)
    if scores.empty:
        _no_models(ax)
        return
    closed = np.append(angles, angles[0])
    regimes = data.loc[data["has_model"], "regime"].tolist()
    for regime, values in zip(regimes, scores.to_numpy(dtype=float), strict=True):
        radii = np.append(values, values[0])
        (line,) = ax.plot(closed, radii, linewidth=1.5, label=regime)
        ax.fill(closed, radii, alpha=0.12, color=line.get_color())
    note = (
        "one model: drawn halfway, nothing to compare"
        if len(scores) == 1
        else "rim = best of these models, inner ring = worst"
    )
    # Below the circle, clear of the bottom axis label; its title says how to read radii.
    ax.legend(
        loc="upper center",
        bbox_to_anchor=(0.5, -0.12),
        ncol=min(len(scores), 2),
        fontsize=8,
        title=note,
        title_fontsize=8,
        frameon=False,
    )


_DRAWERS = (_draw_sharpe, _draw_drawdown, _draw_win_rate, _draw_radar)


def _single(draw: Callable[..., None], data: pd.DataFrame, polar: bool = False) -> Figure:
    panels = _by_symbol(_as_chart_data(data))
    height = 6.0 if polar else 5.0
    fig = _NotebookFigure(figsize=(8.0, height * len(panels)), layout="constrained")
    for row, (symbol, panel) in enumerate(panels, start=1):
        ax = fig.add_subplot(len(panels), 1, row, projection="polar" if polar else None)
        draw(ax, panel, symbol)
    return fig


def sharpe_chart(data: pd.DataFrame) -> Figure:
    """Bar chart of each regime's best test Sharpe: green above 0, red below, grey at 0 or none.

    One axes per symbol, titled with it, when the table holds several.

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
    """Bar chart of each regime's best test max drawdown, as a positive percentage (blue).

    One axes per symbol, titled with it, when the table holds several.

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

    Green above the line, red below, grey on it; each bar is labelled with its win rate and
    its number of test trades (``n=37``). One axes per symbol when the table holds several.

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
    """Radar of each regime's best model on the six axes of :data:`RADAR_LABELS`, 0..1.

    The radii are :func:`radar_scores`, scaled across the models of one symbol: best at
    the rim, worst on the inner ring. One radar per symbol when the table holds several.

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
    """All four charts in one figure (2 x 2), for a notebook cell; one block per symbol.

    With one symbol the figure is titled ``"<symbol>: best models per regime"``; with
    several, it holds one sub-figure per symbol (``fig.subfigs``, in table order), each
    with its own four charts and that title. As a cell's last expression it shows inline.

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
    panels = _by_symbol(_as_chart_data(best_table))
    fig = _NotebookFigure(figsize=(14.0, 10.0 * len(panels)), layout="constrained")
    blocks = [fig] if len(panels) == 1 else fig.subfigures(len(panels), 1).tolist()
    for block, (symbol, data) in zip(blocks, panels, strict=True):
        axes = [
            block.add_subplot(2, 2, 1),
            block.add_subplot(2, 2, 2),
            block.add_subplot(2, 2, 3),
            block.add_subplot(2, 2, 4, projection="polar"),
        ]
        for ax, draw in zip(axes, _DRAWERS, strict=True):
            draw(ax, data)
        block.suptitle(_titled(symbol, "best models per regime"), fontsize=14, fontweight="bold")
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
