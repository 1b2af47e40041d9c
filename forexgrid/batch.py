"""The papermill backend: each configuration of a queue runs as a parameterised notebook.

With ``execution.backend: papermill`` the runner hands every configuration to
:class:`NotebookExecutor`, which executes a template notebook (default
``notebooks/templates/train_config.ipynb``) with papermill, up to ``execution.workers``
kernels at a time. The output notebook is ``<output_dir>/<queue>/<index>_<hash8>.ipynb``
(``hash8``: the first 8 hex digits of the configuration hash) and the template writes the
result beside it (:func:`run_configuration`). The executor's future loads that result file
and returns its :class:`~forexgrid.pipeline.RunResult`, so the runner applies it in queue
order exactly as a ``local`` result: a batch decides what a serial run decides.

Checkpoints. A configuration is done when papermill returned without an error *and* the
template wrote a result for this queue, index, configuration hash and template hash; only
then does the output notebook get its final name (it runs as ``<stem>.running.ipynb``).
A later runner of the queue (resume after a kill) finds a final notebook whose result
matches and returns that result without starting a kernel; editing the template changes its
hash, so every configuration runs again. A notebook that raised, or whose kernel died
(``os._exit``, OOM: papermill raises ``DeadKernelError`` while the notebook may still mark
cells completed, so its metadata is never read), makes the configuration failed with the
reason and is kept as ``<stem>.failed.ipynb``. See docs/batch.md.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import logging
import os
import pickle
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import forexgrid.templates
from forexgrid._atomic import atomic_write_bytes, atomic_write_text, remove_temp_files
from forexgrid.exceptions import ConfigError, ForexgridError, quote_input

if TYPE_CHECKING:
    from forexgrid.config import Settings
    from forexgrid.core.regimes import Regime
    from forexgrid.pipeline import RunResult
    from forexgrid.storage.records import RunInfo

__all__ = [
    "DEFAULT_TEMPLATE",
    "PARAMETERS",
    "NotebookError",
    "NotebookExecutor",
    "batch_folder",
    "batch_settings",
    "copy_template",
    "find_unfinished",
    "open_workspace",
    "read_result",
    "run_configuration",
    "template_path",
    "write_summary",
]

logger = logging.getLogger(__name__)

#: The template a batch runs when ``execution.notebook`` is not set: installed with the
#: package (``forexgrid.templates``; notebooks/templates/ in a source checkout).
DEFAULT_TEMPLATE = Path(forexgrid.templates.__file__).resolve().parent / "train_config.ipynb"
#: The parameters every template receives (its cell tagged ``parameters`` declares them).
PARAMETERS: tuple[str, ...] = ("workspace", "queue_id", "index", "config", "result_path")
#: The file beside a queue's notebooks with the settings and regimes its runner uses.
CONTEXT_FILE = "batch.json"
SUMMARY_NOTEBOOK = "summary.ipynb"
_RESULT_FORMAT = 1
# Seconds a kernel may take to start (papermill's default, 60, is generous on 2 cores).
_START_TIMEOUT = 120
# The kernels' own log: without this, every kernel warns on the terminal (over the progress
# bar) that it listens on TCP without encryption (local loopback connections here).
_KERNEL_ARGUMENTS = ["--log-level=ERROR"]


class NotebookError(ForexgridError):
    """A configuration's notebook failed: a cell raised, the kernel died, or no valid result
    was written. The message names the notebook (kept beside the others) and the reason."""


# ----------------------------------------------------------------------------- paths


def template_path(settings: Settings) -> Path:
    """The template of ``execution.notebook`` (default :data:`DEFAULT_TEMPLATE`), checked.

    Raises
    ------
    ConfigError
        The file is missing, not a notebook, or has no cell tagged ``parameters``.
    """
    name = settings.execution.notebook
    path = DEFAULT_TEMPLATE if name is None else settings.resolve_path(name)
    key = "execution.notebook" if name is not None else "the default template"
    if not path.is_file():
        hint = (
            ""
            if name is not None
            else " (it is installed with forexgrid: reinstall it, or give a template with "
            "--notebook or execution.notebook, see docs/batch.md)"
        )
        raise ConfigError(f"{key}: no notebook at {quote_input(str(path))}{hint}")
    _template_bytes(path, key)
    return path


def _template_bytes(path: Path, key: str = "execution.notebook") -> bytes:
    import nbformat

    data = path.read_bytes()
    try:
        notebook = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as err:  # noqa: BLE001 - nbformat raises many types for a bad file
        raise ConfigError(
            f"{key}: {quote_input(str(path))} is not a Jupyter notebook: {err}"
        ) from None
    if not any("parameters" in c.metadata.get("tags", ()) for c in notebook.cells):
        raise ConfigError(
            f"{key}: {quote_input(str(path))} has no cell tagged 'parameters'; expected one "
            f"that sets {', '.join(PARAMETERS)} (see docs/batch.md)"
        )
    return data


def batch_folder(settings: Settings, queue_id: int) -> Path:
    """``<execution.output_dir>/<queue_id>``: a queue's notebooks, results and summary."""
    return settings.resolve_path(settings.execution.output_dir) / str(int(queue_id))


def _stem(index: int, config_hash: str) -> str:
    return f"{int(index)}_{config_hash[:8]}"


def batch_settings(
    settings: Settings,
    *,
    notebook: str | os.PathLike[str] | None = None,
    output_dir: str | os.PathLike[str] | None = None,
) -> Settings:
    """``settings`` with ``execution.backend: papermill`` and, when given, the template and
    output folder (absolute paths); the template is checked now.

    Raises
    ------
    ConfigError
        The template is missing or not a usable notebook.
    """
    execution = settings.execution
    values = execution.model_dump()
    values["backend"] = "papermill"
    # Absolute paths, as the queue stores them: resuming from elsewhere finds the same files.
    if notebook is not None:
        values["notebook"] = str(Path(os.path.abspath(Path(notebook).expanduser())))
    elif values["notebook"] is not None:
        values["notebook"] = str(settings.resolve_path(values["notebook"]))
    if output_dir is not None:
        values["output_dir"] = str(Path(os.path.abspath(Path(output_dir).expanduser())))
    else:
        values["output_dir"] = str(settings.resolve_path(values["output_dir"]))
    updated = settings.model_copy(update={"execution": type(execution).model_validate(values)})
    template_path(updated)
    return updated


def find_unfinished(settings: Settings, spec: Any, name: str | None = None) -> Any:
    """The newest batch queue of this grid and output folder that has not finished (pending,
    paused, or crashed: a runner killed on this machine is detected now), or None.

    Running ``forexgrid batch`` again with the same arguments resumes it instead of starting
    a second queue of the same grid.

    Raises
    ------
    ForexgridError
        Such a batch is running now (its runner alive).
    """
    from forexgrid import storage
    from forexgrid.recovery import detect_crashed_queues
    from forexgrid.storage.queues import CLAIMABLE_STATUSES
    from forexgrid.storage.records import grid_to_json

    detect_crashed_queues(settings)
    wanted = json.dumps(grid_to_json(spec), sort_keys=True)
    output = str(settings.resolve_path(settings.execution.output_dir))
    with storage.session_scope(settings) as session:
        queues = storage.queues.get_all_training_queues(session)
    for queue in sorted(queues, key=lambda q: q.id, reverse=True):
        execution = queue.settings.get("execution", {})
        same = (
            execution.get("backend") == "papermill"
            and execution.get("output_dir") == output
            and json.dumps(queue.grid, sort_keys=True) == wanted
            and (name is None or queue.queue_name == name)
        )
        if same and queue.status == "running":
            raise ForexgridError(
                f"batch queue {queue.id} of this grid is running ({queue.owner}); follow it "
                f"with `forexgrid status {queue.id}`, or pause it with `forexgrid pause "
                f"{queue.id}` first"
            )
        if same and queue.status in CLAIMABLE_STATUSES:
            return queue
    return None


# ----------------------------------------------------------------------------- the template side


@dataclass(frozen=True)
class _Context:
    settings: Settings
    regimes: tuple[Regime, ...]
    template_sha256: str | None


def _read_context(workspace: str, queue_id: int, folder: Path) -> _Context:
    """What the queue's runner computes with: from ``batch.json`` beside the result, else
    (a template run by hand) from the workspace, the queue's stored settings and regimes."""
    from forexgrid import storage
    from forexgrid.config import load_config
    from forexgrid.core.regimes import Regime

    context_file = folder / CONTEXT_FILE
    if context_file.is_file():
        document = json.loads(context_file.read_text(encoding="utf-8"))
        if document.get("queue_id") == int(queue_id):
            settings = load_config(document["settings"], workspace=document["workspace"])
            regimes = tuple(Regime(**r) for r in document["regimes"])
            return _Context(settings, regimes, document["template_sha256"])
    from forexgrid.runner import settings_for_queue
    from forexgrid.workspace import Workspace

    base = Workspace(workspace).settings
    with storage.session_scope(base) as session:
        queue = storage.queues.get_queue(session, int(queue_id))
        regimes = tuple(storage.regimes_repo.active_regimes(session))
    return _Context(settings_for_queue(base, queue), regimes, None)


def run_configuration(
    workspace: str,
    queue_id: int,
    index: int,
    config: Mapping[str, Any],
    result_path: str,
) -> RunResult:
    """Train and evaluate one configuration of a batch and write its result file: the one
    call a template makes with its five parameters.

    It computes what the ``local`` backend computes (:func:`forexgrid.executors.evaluate`
    with the settings and regimes the queue's runner uses, read from ``batch.json`` beside
    ``result_path``), then writes ``result_path`` atomically: the pickled RunResult with the
    queue, index, configuration hash and template hash the runner checks.

    Parameters
    ----------
    workspace
        The workspace folder.
    queue_id, index
        The queue and the configuration's position in it (0-based).
    config
        The :class:`~forexgrid.grid.TrainingConfig` fields (``TrainingConfig.to_dict()``).
    result_path
        Where the result goes (``<output_dir>/<queue>/<index>_<hash8>.result.pkl``).

    Returns
    -------
    RunResult
        For the notebook to show (``result``, ``result.chosen``, charts).

    Raises
    ------
    ConfigError
        ``config`` is not a valid configuration.
    DataError
        The workspace has no usable bars for it.
    """
    from forexgrid.data.store import DataStore
    from forexgrid.executors import evaluate
    from forexgrid.grid import TrainingConfig

    if not isinstance(config, Mapping):
        raise ConfigError(f"config: expected a dict of TrainingConfig fields, got {config!r}")
    target = Path(result_path)
    context = _read_context(workspace, queue_id, target.parent)
    tc = TrainingConfig.from_dict(config)
    bars = DataStore(context.settings.data_path).load_bars(tc.symbol, tc.timeframe)
    result = evaluate(tc, bars, context.settings, context.regimes)
    document = {
        "format": _RESULT_FORMAT,
        "queue_id": int(queue_id),
        "index": int(index),
        "config_hash": result.config_hash,
        "template_sha256": context.template_sha256,
        "result": result,
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(target, pickle.dumps(document, protocol=pickle.HIGHEST_PROTOCOL))
    return result


def read_result(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The document :func:`run_configuration` wrote (keys ``queue_id, index, config_hash,
    template_sha256, result``).

    Raises
    ------
    NotebookError
        The file is missing or not a result file.
    """
    path = Path(path)
    try:
        document = pickle.loads(path.read_bytes())
    except FileNotFoundError:
        raise NotebookError(f"no result file {path}") from None
    except Exception as err:  # noqa: BLE001 - any unpickling error means an unusable file
        reason = f"{type(err).__name__}: {err}"
        raise NotebookError(f"unreadable result file {path}: {reason}") from None
    if not isinstance(document, dict) or document.get("format") != _RESULT_FORMAT:
        raise NotebookError(f"{path} is not a forexgrid batch result")
    return document


# ----------------------------------------------------------------------------- the executor


class NotebookExecutor(concurrent.futures.Executor):
    """Runs each configuration of a queue as a papermill notebook, ``execution.workers`` at
    a time (threads, each driving one kernel).

    The runner calls :meth:`submit_run`; the future's result is the RunResult the notebook
    wrote (or the matching checkpoint's, without running anything).
    """

    def __init__(self, settings: Settings) -> None:
        self._template = template_path(settings)
        # Read once: every notebook of this runner comes from these bytes, whatever happens
        # to the file meanwhile, so the hash stamped on the results is the one that ran.
        data = _template_bytes(self._template)
        self._template_sha256 = hashlib.sha256(data).hexdigest()
        self._template_text = data.decode("utf-8")
        self._pool = concurrent.futures.ThreadPoolExecutor(
            settings.execution.workers, thread_name_prefix="forexgrid-notebook"
        )
        self._prepared: set[int] = set()
        self._lock = threading.Lock()
        #: Configurations whose notebook ran (tests and the log count them).
        self.executed: list[tuple[int, int]] = []

    @property
    def template_sha256(self) -> str:
        """SHA-256 of the template this executor runs."""
        return self._template_sha256

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> concurrent.futures.Future:
        # Only whole queue runs can become notebooks: a bare callable has no queue index.
        raise TypeError("the papermill backend runs queue runs: use submit_run")

    def submit_run(
        self, run: RunInfo, settings: Settings, regimes: tuple[Regime, ...]
    ) -> concurrent.futures.Future:
        """Run ``run`` as a notebook (or take its matching checkpoint)."""
        folder = self._prepare(run.queue_id, settings, regimes)
        stem = _stem(run.queue_index, run.config_hash)
        notebook, result_file = folder / f"{stem}.ipynb", folder / f"{stem}.result.pkl"
        if notebook.is_file() and result_file.is_file():
            try:
                result = self._checked(run, result_file)
            except NotebookError as err:
                logger.info("run %s: checkpoint not used (%s); running it again", run.id, err)
            else:
                logger.info("run %s: checkpoint %s matches; not run again", run.id, notebook)
                future: concurrent.futures.Future = concurrent.futures.Future()
                future.set_result(result)
                return future
        return self._pool.submit(self._execute, run, settings, folder, stem)

    def _prepare(self, queue_id: int, settings: Settings, regimes: tuple[Regime, ...]) -> Path:
        """Once per queue: its folder, what a killed runner left there, and ``batch.json``."""
        with self._lock:
            folder = batch_folder(settings, queue_id)
            if queue_id in self._prepared:
                return folder
            folder.mkdir(parents=True, exist_ok=True)
            # This runner holds the queue's claim: nothing else writes here now.
            remove_temp_files(folder)
            for partial in folder.glob("*.running.ipynb"):
                logger.info("removing the notebook of an interrupted run: %s", partial)
                partial.unlink()
            for result in folder.glob("*.result.pkl"):
                if not result.with_name(result.name.replace(".result.pkl", ".ipynb")).is_file():
                    result.unlink()  # written by a kernel whose notebook never finished
            from forexgrid.config import _PASSWORD_RE

            values = settings.model_dump(mode="json")
            # Output folders get shared: never a database password in them. The notebooks
            # train without the database; the summary reads it, with the password from
            # $FOREXGRID_DATABASE_URL (which load_config prefers, and kernels inherit).
            values["database"]["url"] = _PASSWORD_RE.sub(r"\1***\3", values["database"]["url"])
            document = {
                "queue_id": int(queue_id),
                "workspace": str(settings.workspace),
                "settings": values,
                "regimes": [
                    {"name": r.name, "rules": dict(r.rules), "description": r.description}
                    for r in regimes
                ],
                "template": str(self._template),
                "template_sha256": self._template_sha256,
            }
            atomic_write_text(folder / CONTEXT_FILE, json.dumps(document, indent=1))
            self._prepared.add(queue_id)
            return folder

    def _checked(self, run: RunInfo, result_file: Path) -> RunResult:
        """The result in ``result_file`` if it is this run's under this template."""
        document = read_result(result_file)
        expected = {
            "queue_id": run.queue_id,
            "index": run.queue_index,
            "config_hash": run.config_hash,
            "template_sha256": self._template_sha256,
        }
        for key, value in expected.items():
            if document.get(key) != value:
                raise NotebookError(
                    f"{result_file.name}: {key} is {document.get(key)!r}, expected {value!r}"
                )
        return document["result"]

    def _execute(self, run: RunInfo, settings: Settings, folder: Path, stem: str) -> RunResult:
        import nbformat
        import papermill

        notebook = folder / f"{stem}.ipynb"
        running = folder / f"{stem}.running.ipynb"
        failed = folder / f"{stem}.failed.ipynb"
        result_file = folder / f"{stem}.result.pkl"
        for stale in (notebook, result_file):
            stale.unlink(missing_ok=True)
        parameters = {
            "workspace": str(settings.workspace),
            "queue_id": run.queue_id,
            "index": run.queue_index,
            "config": run.config.to_dict(),
            "result_path": str(result_file),
        }
        with self._lock:
            self.executed.append((run.queue_id, run.queue_index))
        logger.info("run %s: executing %s", run.id, running)
        try:
            papermill.execute_notebook(
                nbformat.reads(self._template_text, as_version=4),
                str(running),
                parameters=parameters,
                progress_bar=False,
                log_output=False,
                start_timeout=_START_TIMEOUT,
                extra_arguments=_KERNEL_ARGUMENTS,
            )
        except Exception as err:  # noqa: BLE001 - every failure of a notebook fails its run
            reason = _failure_reason(err)
            result_file.unlink(missing_ok=True)  # a dead kernel's result is never "completed"
            kept = _keep_failed(running, failed, reason)
            raise NotebookError(f"{reason} (notebook: {kept})") from None
        try:
            result = self._checked(run, result_file)
        except NotebookError as err:
            result_file.unlink(missing_ok=True)
            kept = _keep_failed(running, failed, str(err))
            raise NotebookError(
                f"the notebook ran but wrote no valid result to result_path: {err} "
                f"(notebook: {kept}; a template must call "
                "forexgrid.batch.run_configuration(workspace, queue_id, index, config, "
                "result_path))"
            ) from None
        os.replace(running, notebook)
        failed.unlink(missing_ok=True)  # an earlier attempt's: this one completed
        return result

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        self._pool.shutdown(wait=wait, cancel_futures=cancel_futures)


def _failure_reason(err: BaseException) -> str:
    name = type(err).__name__
    if name == "DeadKernelError":
        return f"the notebook's kernel died ({name}: {err})"
    if name == "PapermillExecutionError":
        return f"the notebook raised {err.ename}: {err.evalue} (cell {err.exec_count})"
    text = str(err).strip().splitlines()
    return f"the notebook failed: {name}: {text[-1] if text else ''}"


def _keep_failed(running: Path, failed: Path, reason: str) -> Path | None:
    """Keep the failed notebook as ``failed``, with a banner stating ``reason`` on top.

    papermill adds its own error banner when a cell raised; a dead kernel gets none, and its
    cells may still be marked completed, hence forexgrid's own line.
    """
    import nbformat

    if not running.is_file():
        return None
    try:
        notebook = nbformat.read(running, as_version=4)
        banner = nbformat.v4.new_markdown_cell(
            f'<span style="color:red; font-size:1.2em">forexgrid: this configuration '
            f"failed: {reason}</span>"
        )
        banner.metadata["tags"] = ["forexgrid-failure"]
        notebook.cells.insert(0, banner)
        nbformat.write(notebook, running)
    except Exception as err:  # noqa: BLE001 - the notebook is kept as it is then
        logger.warning("could not add the failure banner to %s: %s", running, err)
    os.replace(running, failed)
    return failed


# ----------------------------------------------------------------------------- the summary


def _summary_notebook(workspace: str, queue_id: int, folder: str) -> Any:
    import nbformat

    cells = [
        nbformat.v4.new_markdown_cell(
            f"# Batch summary: queue {queue_id}\n\nThe best model per regime, the probability "
            "of backtest overfitting of each regime the batch added trials to, and the "
            "charts. Each configuration's own notebook is beside this one."
        ),
        nbformat.v4.new_code_cell(
            f"workspace = {workspace!r}\nqueue_id = {int(queue_id)}\nfolder = {folder!r}",
            metadata={"tags": ["parameters"]},
        ),
        nbformat.v4.new_code_cell(
            "%matplotlib inline\nfrom forexgrid import batch\n\n"
            "ws = batch.open_workspace(folder)\nqueue = ws.queue(queue_id)\nqueue.status()"
        ),
        nbformat.v4.new_code_cell("queue.results()"),
        nbformat.v4.new_markdown_cell("## Best model per regime"),
        nbformat.v4.new_code_cell("ws.best()"),
        nbformat.v4.new_markdown_cell("## Probability of backtest overfitting (PBO)"),
        nbformat.v4.new_code_cell("queue.scopes()"),
        nbformat.v4.new_markdown_cell("## Regime analysis charts"),
        nbformat.v4.new_code_cell("ws.charts()"),
    ]
    notebook = nbformat.v4.new_notebook(cells=cells)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    return notebook


def open_workspace(folder: str | os.PathLike[str]) -> Any:
    """The Workspace a batch ran in, with the settings its runner used (its ``batch.json``).

    Raises
    ------
    ForexgridError
        ``folder`` holds no ``batch.json``.
    """
    from forexgrid.config import load_config
    from forexgrid.workspace import Workspace

    context_file = Path(folder) / CONTEXT_FILE
    if not context_file.is_file():
        raise ForexgridError(f"{quote_input(str(folder))}: no {CONTEXT_FILE}; not a batch folder")
    document = json.loads(context_file.read_text(encoding="utf-8"))
    settings = load_config(document["settings"], workspace=document["workspace"])
    return Workspace(document["workspace"], config=settings)


def write_summary(settings: Settings, queue_id: int) -> Path:
    """Execute the batch's summary notebook into ``<output_dir>/<queue>/summary.ipynb``.

    Raises
    ------
    NotebookError
        The summary notebook failed (the partial notebook is kept).
    """
    import papermill

    folder = batch_folder(settings, queue_id)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / SUMMARY_NOTEBOOK
    running = folder / f"{target.stem}.running.ipynb"
    try:
        papermill.execute_notebook(
            _summary_notebook(str(settings.workspace), queue_id, str(folder)),
            str(running),
            progress_bar=False,
            log_output=False,
            start_timeout=_START_TIMEOUT,
            extra_arguments=_KERNEL_ARGUMENTS,
        )
    except Exception as err:  # noqa: BLE001 - reported with its reason, the queue stands
        kept = _keep_failed(running, folder / "summary.failed.ipynb", _failure_reason(err))
        raise NotebookError(f"summary: {_failure_reason(err)} (notebook: {kept})") from None
    os.replace(running, target)
    return target


def copy_template(path: str | os.PathLike[str]) -> Path:
    """Write a copy of the default template to ``path`` (a start for a custom one)."""
    target = Path(path)
    atomic_write_bytes(target, DEFAULT_TEMPLATE.read_bytes())
    return target
