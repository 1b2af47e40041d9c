"""The notebook's front door: one :class:`Workspace` per folder of forexgrid work.

>>> import forexgrid as fg
>>> ws = fg.Workspace("my_research")              # doctest: +SKIP
>>> ws.data.import_file("EURUSD_1h.csv", symbol="EURUSD")  # doctest: +SKIP
>>> queue = ws.run({"model_types": ["random_forest"], "days_history": [60]})  # doctest: +SKIP
>>> ws.best()                                        # doctest: +SKIP

A workspace is a folder: its configuration file (``configs/training_pipeline/
default_config.yaml``, else the built-in defaults), its database, data store, model files,
checkpoints and logs. Notebooks, the CLI (every ``forexgrid`` command is a thin call of a
Workspace method), the JupyterLab panels and papermill batches all go through it, so they
cannot disagree.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from forexgrid.exceptions import ConfigError, ForexgridError, quote_input
from forexgrid.workspace._data import WorkspaceData
from forexgrid.workspace._queues import QueueHandle, QueueStatus
from forexgrid.workspace._regimes import WorkspaceRegimes
from forexgrid.workspace._results import (
    BestTable,
    HistoryTable,
    KeptModel,
    RecoveryReport,
    RunDetails,
)

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

    from forexgrid.config import Settings
    from forexgrid.grid import GridSpec

__all__ = [
    "BestTable",
    "DEFAULT_CONFIG",
    "HistoryTable",
    "KeptModel",
    "QueueHandle",
    "QueueStatus",
    "RecoveryReport",
    "RunDetails",
    "Workspace",
]

logger = logging.getLogger(__name__)

#: The configuration file a workspace reads when none is given, relative to its folder.
DEFAULT_CONFIG = Path("configs/training_pipeline/default_config.yaml")


class Workspace:
    """A folder of forexgrid work: settings, database, data store, model files and logs.

    Parameters
    ----------
    path
        The folder (default: the current directory). Relative paths in the configuration
        are relative to it.
    config
        A configuration YAML file, a mapping of the same shape, or loaded
        :class:`~forexgrid.config.Settings`; default: the folder's
        ``configs/training_pipeline/default_config.yaml`` if present, else the defaults.
    create
        Create the folder if it does not exist (otherwise a missing folder is an error, so a
        typo never starts an empty workspace somewhere unexpected).

    Raises
    ------
    ForexgridError
        The folder does not exist (and ``create`` is false) or is not a folder.
    ConfigError
        The configuration is invalid.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] = ".",
        *,
        config: str | os.PathLike[str] | Mapping[str, Any] | Settings | None = None,
        create: bool = False,
    ) -> None:
        folder = Path(os.path.abspath(Path(path).expanduser()))
        if not folder.exists():
            if not create:
                raise ForexgridError(
                    f"workspace folder {quote_input(str(folder))} does not exist: create it "
                    f"with `mkdir -p {folder}` (or fg.Workspace(..., create=True) in a "
                    "notebook), or run `forexgrid demo` for one with data and results"
                )
            folder.mkdir(parents=True)
        elif not folder.is_dir():
            raise ForexgridError(
                f"workspace {quote_input(str(folder))} is a file; expected a folder"
            )
        self.path = folder
        self.config_path: Path | None = None
        self._settings = self._load_settings(config)

    def _load_settings(self, config: Any) -> Settings:
        from forexgrid.config import Settings, load_config

        if isinstance(config, Settings):
            return config
        if config is None and (self.path / DEFAULT_CONFIG).is_file():
            config = self.path / DEFAULT_CONFIG
        if isinstance(config, (str, os.PathLike)):
            self.config_path = Path(os.path.abspath(Path(config).expanduser()))
        return load_config(config, workspace=self.path)

    @property
    def settings(self) -> Settings:
        """The workspace's configuration (read-only)."""
        return self._settings

    def __repr__(self) -> str:
        config = self.config_path or "built-in defaults"
        return f"Workspace({str(self.path)!r}, config={str(config)!r})"

    def _repr_html_(self) -> str:
        from forexgrid.workspace._html import definition_list

        return definition_list(
            "forexgrid workspace",
            {
                "Folder": self.path,
                "Configuration": self.config_path or "built-in defaults",
                "Database": self._database().display_url,
                "Data": self.settings.data_path,
                "Model files": self.settings.artifacts_path,
            },
        )

    # ------------------------------------------------------------------ parts

    def _database(self):
        from forexgrid.storage.database import Database

        return Database.from_settings(self.settings)

    def session(self):
        """A database transaction (context manager): commit on success, roll back on error.

        For the queries of :mod:`forexgrid.storage` that no Workspace method covers yet.
        """
        from forexgrid.storage import session_scope

        return session_scope(self.settings)

    @cached_property
    def data(self) -> WorkspaceData:
        """The workspace's market data: ``import_file``, ``list``, ``bars``, ``symbols``."""
        return WorkspaceData(self)

    @cached_property
    def regimes(self) -> WorkspaceRegimes:
        """The regime definitions: ``list``, ``add``, ``edit``, ``delete``, ``toggle``,
        ``rescore`` and ``label(bars)``."""
        return WorkspaceRegimes(self)

    # ------------------------------------------------------------------ queues

    def grid(self, grid: GridSpec | Mapping[str, Any] | None = None, **lists: Any) -> GridSpec:
        """The grid a run would train: ``grid`` (a GridSpec, or a mapping of the ``grid``
        section's keys over the configuration's) with ``lists`` overriding its lists.

        Values meet the same checks and ranges as the configuration file's ``grid`` section.
        """
        from forexgrid.workspace._queues import grid_spec

        return grid_spec(self.settings, grid, lists)

    def run(
        self,
        grid: GridSpec | Mapping[str, Any] | str | os.PathLike[str] | None = None,
        *,
        name: str | None = None,
        wait: bool = True,
        progress: bool = True,
        on_progress: Any = None,
        skip_trained: bool | None = None,
        backend: str | None = None,
        notebook: str | os.PathLike[str] | None = None,
        output_dir: str | os.PathLike[str] | None = None,
    ) -> QueueHandle:
        """Create a queue for a grid and train it.

        Parameters
        ----------
        grid
            A :class:`~forexgrid.grid.GridSpec`; a mapping of ``grid`` section keys
            (``{"model_types": ["xgboost"], "days_history": [60, 90]}``; keys left out come
            from the configuration); a YAML configuration file, used as ``forexgrid run
            CONFIG`` uses it (its ``grid`` section and its settings); or None for the
            configuration's own grid.
        name
            The queue's name (default: from the grid).
        wait
            Train here and return when the queue stops (Ctrl-C / the kernel's interrupt
            pauses it). False starts a background process and returns at once: the kernel
            stays free, and the queue goes on if the kernel restarts.
        progress
            Show the progress bar and the status lines (a live bar in Jupyter, text in a
            terminal). False is silent.
        on_progress
            Also called with each :class:`~forexgrid.runner.Progress` event (``wait=True``).
        skip_trained
            Leave out configurations already trained on the same data (default:
            ``grid.skip_trained``).
        backend
            ``"papermill"`` runs each configuration as a notebook, like ``forexgrid batch``
            (docs/batch.md); None uses ``execution.backend``.
        notebook, output_dir
            The papermill backend's template and output folder (default
            ``execution.notebook`` and ``execution.output_dir``).

        Returns
        -------
        QueueHandle

        Raises
        ------
        GridSizeError
            The grid is larger than ``execution.max_grid_size`` (nothing is written).
        ConfigError
            A list of the grid is invalid, the backend unknown, or the papermill template
            missing.
        """
        workspace = self
        if isinstance(grid, (str, os.PathLike)):
            workspace = Workspace(self.path, config=grid)
            grid = None
        if backend is not None or notebook is not None or output_dir is not None:
            workspace = workspace._with_backend(backend, notebook, output_dir)
        queue = workspace.create_queue(grid, name=name, skip_trained=skip_trained)
        return queue.start(wait=wait, progress=progress, on_progress=on_progress)

    def _with_backend(
        self,
        backend: str | None,
        notebook: str | os.PathLike[str] | None,
        output_dir: str | os.PathLike[str] | None,
    ) -> Workspace:
        """This workspace with another executor backend (the papermill one's paths)."""
        from forexgrid.batch import batch_settings
        from forexgrid.config import EXECUTION_BACKENDS

        backend = backend or self.settings.execution.backend
        if backend not in EXECUTION_BACKENDS:
            raise ForexgridError(
                f"backend: expected one of {', '.join(EXECUTION_BACKENDS)}, got "
                f"{quote_input(backend)}"
            )
        if backend != "papermill":
            if notebook is not None or output_dir is not None:
                raise ForexgridError(
                    f"notebook and output_dir are options of the papermill backend, not "
                    f"{backend!r}"
                )
            execution = self.settings.execution
            try:
                execution = type(execution).model_validate(
                    {**execution.model_dump(), "backend": backend}
                )
            except ValueError as err:
                raise ConfigError(f"backend {backend!r}: {err}") from None
            settings = self.settings.model_copy(update={"execution": execution})
        else:
            settings = batch_settings(self.settings, notebook=notebook, output_dir=output_dir)
        workspace = Workspace(self.path, config=settings)
        workspace.config_path = self.config_path
        return workspace

    def create_queue(
        self,
        grid: GridSpec | Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        skip_trained: bool | None = None,
    ) -> QueueHandle:
        """Create a pending queue for a grid without training it (see :meth:`run`)."""
        from forexgrid.runner import create_queue

        spec = self.grid(grid)
        # Before anything is written: a grid over execution.max_grid_size is one error.
        spec.check_size(self.settings.execution.max_grid_size)
        info = create_queue(spec, self.settings, name=name, skip_trained=skip_trained)
        return QueueHandle(self, info.id, info)

    def queues(self) -> pd.DataFrame:
        """Every queue, oldest first: id, name, status, counts and times."""
        from forexgrid.workspace._queues import queues_frame

        return queues_frame(self)

    def queue(self, queue_id: int | None = None) -> QueueHandle:
        """The queue ``queue_id`` (default: the newest), wherever it was started."""
        from forexgrid import storage

        with self.session() as session:
            if queue_id is None:
                queues = storage.queues.get_all_training_queues(session)
                if not queues:
                    raise ForexgridError(
                        "no queues yet: start one with ws.run(grid) (or `forexgrid run CONFIG`)"
                    )
                info = max(queues, key=lambda q: q.id)
            else:
                info = storage.queues.get_queue(session, queue_id)
        return QueueHandle(self, info.id, info)

    def resume(
        self, queue_id: int, *, wait: bool = True, progress: bool = True, on_progress: Any = None
    ) -> QueueHandle:
        """Continue a paused or crashed queue with what is not done (see :meth:`run`)."""
        return self.queue(queue_id).resume(wait=wait, progress=progress, on_progress=on_progress)

    def recovery(self) -> RecoveryReport:
        """Find queues whose runner died, with each one's recommendation.

        Also removes model files no run needs and finishes model writes a kill interrupted
        (never touching the files of a live runner), like ``forexgrid recover``.
        """
        from forexgrid import storage
        from forexgrid.recovery import reconcile_model_files, recover

        crashed = recover(self.settings)
        files = reconcile_model_files(self.settings)
        with self.session() as session:
            running = [
                q for q in storage.queues.get_all_training_queues(session) if q.status == "running"
            ]
        return RecoveryReport(
            crashed=tuple(crashed),
            files=files,
            running=tuple(running),
            detect_after_minutes=self.settings.recovery.detect_crash_after_minutes,
        )

    # ------------------------------------------------------------------ results

    def best(
        self,
        symbol: str | Iterable[str] | None = None,
        regime: str | Iterable[str] | None = None,
        *,
        window: str = "newest",
        entries_only: bool = True,
    ) -> BestTable:
        """The best models of each regime, with their chosen inference combination.

        One row per list entry (``entries_only=False``: also a row for each active regime
        with no best model yet). The same rows as ``forexgrid best --format csv``; in Jupyter
        the table shows with the verdicts coloured.

        Parameters
        ----------
        symbol, regime
            Only these (a name or several; default: all).
        window
            ``newest`` (each symbol's newest validation window), ``all``, or a date
            ``YYYY-MM-DD`` on which the validation window ends.
        """
        from forexgrid.workspace._results import best_table

        return best_table(
            self,
            _names(symbol, "symbol"),
            _names(regime, "regime"),
            window,
            entries_only=entries_only,
        )

    def history(
        self,
        symbol: str | Iterable[str] | None = None,
        model_type: str | Iterable[str] | None = None,
        status: str | Iterable[str] | None = None,
        limit: int = 100,
    ) -> HistoryTable:
        """Training runs, newest first, filtered by symbol, model type and status (each one
        value or several), at most ``limit`` (10 to 1000). Like ``forexgrid history``."""
        from forexgrid import storage

        with self.session() as session:
            frame = storage.history.training_history(
                session, symbols=symbol, model_types=model_type, statuses=status, limit=limit
            )
        return HistoryTable(frame)

    def run_details(self, run_id: int) -> RunDetails:
        """One training run in full: configuration, model file state, chosen rows, results."""
        from forexgrid.workspace._results import run_details

        return run_details(self, run_id)

    def load_model(self, run_id: int) -> KeptModel:
        """The fitted model of a kept run, after checking its file's size and SHA-256.

        Returns a :class:`KeptModel`: ``.model`` (the estimator), ``.config`` and
        ``.predict(bars)`` (forecasts of new bars, every prediction method).
        """
        from forexgrid.workspace._results import load_model

        return load_model(self, run_id)

    def charts(self, symbol: str | None = None, *, window: str = "newest") -> Figure:
        """The Regime Analysis charts of the best models (Sharpe, drawdown, win rate, radar)
        as one matplotlib Figure; it displays inline in Jupyter and saves with
        ``fig.savefig(path)``."""
        from forexgrid import charts

        symbols = () if symbol is None else symbol
        table = self.best(symbols, window=window, entries_only=False)
        return charts.performance_figure(table)

    def save_charts(
        self, directory: str | os.PathLike[str], symbol: str | None = None
    ) -> list[Path]:
        """Write the four Regime Analysis charts as PNG files into ``directory`` (created if
        missing; its parent must exist) and return their paths."""
        from forexgrid import charts, storage

        with self.session() as session:
            table = storage.bests.best_models_table(session, symbol)
        return charts.save_charts(table, directory)

    def trials(self, symbol: str | None = None, *, recompute: bool = False) -> pd.DataFrame:
        """The multiple-testing scopes (symbol, regime, rules version, validation window) and
        their statistics: trials, effective trials, the expected maximum Sharpe the DSR is
        measured against, and PBO. ``recompute`` refreshes their PBO first."""
        from forexgrid import scoring, storage

        if recompute:
            scoring.update_pbo(self.settings, symbol=symbol)
        with self.session() as session:
            return storage.trials.scope_table(session, symbol)

    def cleanup(self, days_old: float = 30) -> dict[str, Any]:
        """Delete model files last modified more than ``days_old`` days ago, except those of
        models that are best in a regime; returns what was deleted and kept."""
        from forexgrid.storage import ModelFileManager

        return ModelFileManager.from_settings(self.settings).cleanup_old_models(days_old=days_old)

    def verify(self) -> pd.DataFrame:
        """Check every kept model file against its recorded size and SHA-256.

        Returns one row per kept file (``run_id, path, state, detail``; ``state`` is ``ok``,
        ``missing``, ``size_mismatch``, ``sha_mismatch``, ``unreadable`` or
        ``unverifiable``); nothing is changed or unpickled.
        """
        from forexgrid.workspace._results import verify_files

        return verify_files(self)


def _names(value: str | Iterable[str] | None, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    try:
        names = tuple(value)
    except TypeError:
        raise ForexgridError(
            f"{what}: expected a name or a list of names, got {quote_input(value)}"
        ) from None
    for name in names:
        if not isinstance(name, str):
            raise ForexgridError(f"{what}: expected names (strings), got {quote_input(name)}")
    return names
