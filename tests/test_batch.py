"""The papermill backend (forexgrid/batch.py): a queue run as one notebook per configuration,
deciding exactly as `run`, with per-notebook checkpoints that survive a kill and a dead
kernel that fails only its own configuration."""

from __future__ import annotations

import collections
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pandas as pd
import psutil
import pytest
import yaml
from click.testing import CliRunner
from runner_support import FRONT_SETTINGS

import forexgrid as fg
from forexgrid import batch, storage
from forexgrid._faults import FAULT_ENV
from forexgrid.cli import cli
from forexgrid.exceptions import ConfigError, ForexgridError

ROOT = Path(__file__).resolve().parents[1]
SETTINGS = FRONT_SETTINGS
# Four configurations: two models x two horizons.
GRID = {
    "model_types": ["ridge", "lasso"],
    "symbols": ["EURUSD"],
    "timeframes": ["1h"],
    "days_history": [60],
    "horizons": [1, 3],
}
GRID_FLAGS = ["--models", "ridge,lasso", "--timeframes", "1h", "--days", "60", "--horizons", "1,3"]
EXECUTIONS_ENV = "FOREXGRID_TEST_EXECUTIONS"
_ENV = ("FOREXGRID_CONFIG", "FOREXGRID_WORKSPACE", "FOREXGRID_DATABASE_URL")
FINAL = re.compile(r"^(\d+)_([0-9a-f]{8})\.ipynb$")


@pytest.fixture(autouse=True)
def _isolated(monkeypatch):
    for name in _ENV:
        monkeypatch.delenv(name, raising=False)


def _workspace(root: Path, workers: int = 1) -> tuple[Path, Path]:
    """A workspace folder with a config file (child processes read it too)."""
    root.mkdir(parents=True)
    config = root / "forexgrid.yaml"
    data = {**SETTINGS, "execution": {"workers": workers}, "grid": GRID}
    config.write_text(yaml.safe_dump(data), encoding="utf-8")
    return root, config


def _counting_template(path: Path) -> Path:
    """The default template plus a cell that logs each execution to $FOREXGRID_TEST_EXECUTIONS
    (kernels inherit the environment of the process that runs the batch)."""
    notebook = nbformat.read(batch.DEFAULT_TEMPLATE, as_version=4)
    tags = [c.metadata.get("tags", ()) for c in notebook.cells]
    at = next(i for i, cell_tags in enumerate(tags) if "parameters" in cell_tags)
    notebook.cells.insert(
        at + 1,
        nbformat.v4.new_code_cell(
            "import os\n"
            f"with open(os.environ[{EXECUTIONS_ENV!r}], 'a') as log:\n"
            "    log.write(f'{queue_id} {index}\\n')"
        ),
    )
    nbformat.write(notebook, path)
    return path


def _executions(log: Path) -> list[tuple[int, int]]:
    if not log.is_file():
        return []
    return [tuple(map(int, line.split())) for line in log.read_text().splitlines() if line]


def _final_notebooks(folder: Path) -> dict[int, Path]:
    return {int(m[1]): p for p in folder.glob("*.ipynb") if (m := FINAL.match(p.name))}


def _outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [o for c in notebook.cells if c.cell_type == "code" for o in c.outputs]


def _mime_types(notebook: nbformat.NotebookNode) -> set[str]:
    return {mime for o in _outputs(notebook) for mime in o.get("data", {})}


# --------------------------------------------------------------------------- fast checks


def test_the_default_template_declares_the_five_parameters():
    import papermill

    declared = papermill.inspect_notebook(str(batch.DEFAULT_TEMPLATE))
    assert tuple(declared) == batch.PARAMETERS
    types = [p["inferred_type_name"] for p in declared.values()]
    assert types == ["str", "int", "int", "dict", "str"]
    source = "\n".join(c.source for c in nbformat.read(batch.DEFAULT_TEMPLATE, as_version=4).cells)
    assert "batch.run_configuration(workspace, queue_id, index, config, result_path)" in source


def test_a_missing_or_unparameterised_template_is_refused_by_name(tmp_path):
    settings = fg.load_config(SETTINGS, workspace=tmp_path)
    with pytest.raises(ConfigError, match=r"^execution\.notebook: no notebook at '.*nope\.ipynb'"):
        batch.batch_settings(settings, notebook=tmp_path / "nope.ipynb")
    plain = tmp_path / "plain.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")]), plain)
    with pytest.raises(ConfigError, match="has no cell tagged 'parameters'; expected one that "
                       "sets workspace, queue_id, index, config, result_path"):  # fmt: skip
        batch.batch_settings(settings, notebook=plain)
    (tmp_path / "text.ipynb").write_text("not json")
    with pytest.raises(ConfigError, match="is not a Jupyter notebook"):
        batch.batch_settings(settings, notebook=tmp_path / "text.ipynb")


def test_a_bad_backend_for_ws_run_is_refused(tmp_path):
    ws = fg.Workspace(tmp_path, config=SETTINGS)
    with pytest.raises(ForexgridError, match="backend: expected one of local, dask, papermill"):
        ws.run(GRID, backend="ray")
    with pytest.raises(ForexgridError, match="options of the papermill backend, not 'local'"):
        ws.run(GRID, backend="local", notebook="x.ipynb")
    assert ws.queues().empty  # nothing was created


def test_a_result_file_that_is_not_one_is_an_error(tmp_path):
    with pytest.raises(batch.NotebookError, match="no result file"):
        batch.read_result(tmp_path / "missing.result.pkl")
    (tmp_path / "junk.result.pkl").write_bytes(b"junk")
    with pytest.raises(batch.NotebookError, match="unreadable result file"):
        batch.read_result(tmp_path / "junk.result.pkl")


def test_a_batch_queue_remembers_its_backend_so_resume_runs_it_as_a_batch(tmp_path):
    from forexgrid.runner import create_queue, settings_for_queue

    ws = fg.Workspace(tmp_path, config=SETTINGS)
    settings = batch.batch_settings(ws.settings, output_dir=tmp_path / "out")
    queue = create_queue(fg.grid.GridSpec(**GRID), settings, skip_trained=False)
    stored = queue.settings["execution"]
    assert stored["backend"] == "papermill" and stored["output_dir"] == str(tmp_path / "out")
    # `forexgrid resume` reads the folder's configuration (local): the queue's own wins.
    resumed = settings_for_queue(ws.settings, queue)
    assert resumed.execution.backend == "papermill"
    assert batch.batch_folder(resumed, queue.id) == tmp_path / "out" / str(queue.id)
    assert resumed.execution.notebook is None
    # A local queue stores no backend: it resumes with whatever the configuration says.
    local = create_queue(fg.grid.GridSpec(**GRID), ws.settings, skip_trained=False)
    assert "backend" not in local.settings["execution"]
    found = batch.find_unfinished(settings, fg.grid.GridSpec(**GRID))
    assert found is not None and found.id == queue.id
    assert batch.find_unfinished(settings, fg.grid.GridSpec(**GRID), name="other") is None
    # A batch of the grid that runs now (its runner alive: this process) is not joined.
    with storage.session_scope(settings) as session:
        storage.queues.claim_queue(session, queue.id, storage.queues.default_owner(), 1)
    with pytest.raises(ForexgridError, match=f"batch queue {queue.id} of this grid is running"):
        batch.find_unfinished(settings, fg.grid.GridSpec(**GRID))


# --------------------------------------------------------------------------- batches


def _comparable(ws: fg.Workspace, handle) -> tuple[pd.DataFrame, dict[int, pd.DataFrame]]:
    runs = handle.results().set_index("queue_index")
    columns = ["model_type", "horizon", "status", "kept_when_trained", "kept", "best_regimes"]
    chosen = {
        index: ws.run_details(int(run_id)).chosen.reset_index(drop=True)
        for index, run_id in runs["run_id"].items()
    }
    return runs[columns], chosen


@pytest.mark.slow
def test_a_batch_decides_like_run_and_leaves_a_notebook_per_configuration(tmp_path):
    local = fg.Workspace(tmp_path / "local", config=SETTINGS, create=True)
    expected = _comparable(local, local.run(GRID, progress=False))

    ws = fg.Workspace(
        tmp_path / "batch", config={**SETTINGS, "execution": {"workers": 2}}, create=True
    )
    events = []
    handle = ws.run(GRID, backend="papermill", progress=False, on_progress=events.append)
    assert handle.info().status == "completed"
    runs, chosen = _comparable(ws, handle)
    pd.testing.assert_frame_equal(runs, expected[0])
    assert chosen.keys() == expected[1].keys()
    for index in chosen:
        pd.testing.assert_frame_equal(chosen[index], expected[1][index])
    best_columns = ["symbol", "regime", "rank", "model_type", "horizon", "signal", "threshold",
                    "lookback", "val_sharpe", "dsr", "config_hash"]  # fmt: skip
    pd.testing.assert_frame_equal(
        ws.best()[best_columns].reset_index(drop=True),
        local.best()[best_columns].reset_index(drop=True),
    )

    folder = tmp_path / "batch" / "runs" / str(handle.id)
    notebooks = _final_notebooks(folder)
    records = {r.queue_index: r for r in ws.queue(handle.id).results().itertuples()}
    assert sorted(notebooks) == [0, 1, 2, 3]
    with ws.session() as session:
        hashes = {
            r.queue_index: r.config_hash for r in storage.runs.queue_runs(session, handle.id)
        }
    for index, path in notebooks.items():
        assert path.name == f"{index}_{hashes[index][:8]}.ipynb"
        assert (folder / f"{index}_{hashes[index][:8]}.result.pkl").is_file()
        notebook = nbformat.read(path, as_version=4)
        assert not [o for o in _outputs(notebook) if o.output_type == "error"]
        # The RunResult's and the chosen table's HTML, and the charts.
        assert {"text/html", "image/png"} <= _mime_types(notebook)
        injected = next(
            c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", ())
        )
        assert f"index = {index}" in injected.source
        assert f'"model_type": "{records[index].model_type}"' in injected.source
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [p.name for p in notebooks.values()]
        + [f"{i}_{hashes[i][:8]}.result.pkl" for i in notebooks]
        + ["batch.json", "summary.ipynb"]
    )
    summary = nbformat.read(folder / "summary.ipynb", as_version=4)
    assert not [o for o in _outputs(summary) if o.output_type == "error"]
    assert {"text/html", "image/png"} <= _mime_types(summary)
    assert any(e.kind == "summary" and "summary.ipynb" in e.message for e in events)


@pytest.mark.slow
@pytest.mark.parametrize(
    "kill",
    [
        # SIGKILL from outside once a notebook completed; resumed by the same command.
        "after_a_notebook",
        # The runner kills itself after notebook 0 completed, before its run is recorded (the
        # checkpoint must then be used); resumed by `forexgrid resume`.
        "result_ready",
    ],
)
def test_a_killed_batch_resumes_without_running_a_completed_notebook_again(tmp_path, kill):
    root, config = _workspace(tmp_path / "ws", workers=2)
    template = _counting_template(tmp_path / "counting.ipynb")
    log = tmp_path / "executions.log"
    env = {**os.environ, EXECUTIONS_ENV: str(log), "PYTHONPATH": str(ROOT)}
    top = [sys.executable, "-m", "forexgrid", "--workspace", str(root), "--config", str(config)]
    command = [*top, "batch", str(config), "--notebook", str(template), *GRID_FLAGS]
    folder = root / "runs" / "1"
    faulty = {**env, FAULT_ENV: "result_ready"} if kill == "result_ready" else env
    process = subprocess.Popen(
        command, env=faulty, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=tmp_path
    )
    kernels: dict[int, psutil.Process] = {}
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(psutil.NoSuchProcess):
                kernels.update(
                    (p.pid, p) for p in psutil.Process(process.pid).children(recursive=True)
                )
            if kill == "after_a_notebook" and _final_notebooks(folder):
                process.send_signal(signal.SIGKILL)
            time.sleep(0.05)
        process.wait(timeout=10)
        output = process.stdout.read().decode()
    finally:
        if process.poll() is None:
            process.kill()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL, output
    assert kernels, "no kernel was seen"
    # The kernels notice their parent is gone and exit: nothing keeps running.
    gone, alive = psutil.wait_procs(list(kernels.values()), timeout=30)
    assert alive == []
    completed = set(_final_notebooks(folder))
    before = _executions(log)
    assert completed and completed <= {index for _, index in before}
    if kill == "result_ready":
        assert 0 in completed  # executed, its run not recorded: only its checkpoint has it
        resume = [*top, "resume", "1"]
    else:
        resume = command

    resumed = subprocess.run(
        resume, env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path
    )
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    if kill == "after_a_notebook":
        assert "Resuming batch queue 1" in resumed.stdout
    again = collections.Counter(index for _, index in _executions(log)[len(before) :])
    # A completed notebook is not executed again; every other configuration exactly once.
    assert again == {index: 1 for index in range(4) if index not in completed}

    ws = fg.Workspace(root, config=config)
    queue = ws.queue(1).info()
    assert (queue.status, queue.completed_count, queue.failed_count) == ("completed", 4, 0)
    assert len(ws.queues()) == 1  # resumed, not a second queue
    with ws.session() as session:
        hashes = {r.queue_index: r.config_hash for r in storage.runs.queue_runs(session, 1)}
    stems = [f"{i}_{hashes[i][:8]}" for i in range(4)]
    # Nothing orphaned: one notebook and one result per configuration, no partial file.
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"{s}.ipynb" for s in stems] + [f"{s}.result.pkl" for s in stems]
        + ["batch.json", "summary.ipynb"]
    )  # fmt: skip
    assert set(ws.verify()["state"]) <= {"ok"}


@pytest.mark.slow
def test_editing_the_template_runs_every_configuration_again(tmp_path, monkeypatch):
    from forexgrid.runner import create_queue

    ws = fg.Workspace(tmp_path / "ws", config=SETTINGS, create=True)
    template = _counting_template(tmp_path / "custom.ipynb")
    log = tmp_path / "executions.log"
    monkeypatch.setenv(EXECUTIONS_ENV, str(log))
    settings = batch.batch_settings(
        ws.settings.model_copy(
            update={"execution": ws.settings.execution.model_copy(update={"workers": 2})}
        ),
        notebook=template,
    )
    grid = fg.grid.GridSpec(**{**GRID, "model_types": ["ridge"]})
    queue = create_queue(grid, settings, skip_trained=False)
    with storage.session_scope(settings) as session:
        runs = storage.runs.queue_runs(session, queue.id)
        regimes = tuple(storage.regimes_repo.active_regimes(session))

    def run_all() -> tuple[list, list]:
        executor = batch.NotebookExecutor(settings)
        try:
            futures = [executor.submit_run(run, settings, regimes) for run in runs]
            results = [f.result() for f in futures]
        finally:
            executor.shutdown()
        return results, executor.executed

    first, executed = run_all()
    assert sorted(executed) == [(queue.id, 0), (queue.id, 1)]
    again, executed = run_all()
    assert executed == []  # both checkpoints match: no kernel started
    for a, b in zip(first, again, strict=True):
        pd.testing.assert_frame_equal(a.chosen, b.chosen)
        assert a.config_hash == b.config_hash
    notebook = nbformat.read(template, as_version=4)
    notebook.cells.append(nbformat.v4.new_markdown_cell("An edit."))
    nbformat.write(notebook, template)
    edited, executed = run_all()
    assert sorted(executed) == [(queue.id, 0), (queue.id, 1)]
    assert len(_executions(log)) == 4
    for a, b in zip(first, edited, strict=True):
        pd.testing.assert_frame_equal(a.chosen, b.chosen)


_DYING_TEMPLATE = [
    "import os\n\nfrom forexgrid import batch",
    "if index == 1:\n    os._exit(1)  # the kernel dies, as under the OOM killer",
    "result = batch.run_configuration(workspace, queue_id, index, config, result_path)\n"
    "print('custom template', result.config.label)",
]


@pytest.mark.slow
def test_a_dead_kernel_fails_its_configuration_and_the_batch_goes_on(tmp_path):
    root, config = _workspace(tmp_path / "ws")
    cells = [
        nbformat.v4.new_code_cell(
            "workspace = ''\nqueue_id = 0\nindex = 0\nconfig = {}\nresult_path = ''",
            metadata={"tags": ["parameters"]},
        ),
        *(nbformat.v4.new_code_cell(source) for source in _DYING_TEMPLATE),
    ]
    custom = nbformat.v4.new_notebook(cells=cells)
    custom.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}  # fmt: skip
    nbformat.write(custom, tmp_path / "dying.ipynb")
    dying = str(tmp_path / "dying.ipynb")
    command = ["--workspace", str(root), "batch", str(config), "--notebook", dying,
               "--models", "ridge", "--horizons", "1,3,6"]  # fmt: skip
    result = CliRunner().invoke(cli, command)
    assert result.exit_code == 0, result.output
    assert "Model failed: NotebookError: the notebook's kernel died" in result.output
    ws = fg.Workspace(root, config=config)
    queue = ws.queue(1).info()
    assert (queue.status, queue.completed_count, queue.failed_count) == ("completed", 2, 1)
    runs = ws.queue(1).results().set_index("queue_index")
    assert runs.loc[1, "status"] == "failed"
    assert "kernel died (DeadKernelError" in runs.loc[1, "error"]
    folder = root / "runs" / "1"
    with ws.session() as session:
        hashes = {r.queue_index: r.config_hash for r in storage.runs.queue_runs(session, 1)}
    failed = folder / f"1_{hashes[1][:8]}.failed.ipynb"
    assert str(failed) in runs.loc[1, "error"]
    assert not (folder / f"1_{hashes[1][:8]}.ipynb").exists()
    assert not (folder / f"1_{hashes[1][:8]}.result.pkl").exists()
    banner = nbformat.read(failed, as_version=4).cells[0]
    assert "this configuration failed: the notebook's kernel died" in banner.source
    assert sorted(_final_notebooks(folder)) == [0, 2]
    for index in (0, 2):
        notebook = nbformat.read(_final_notebooks(folder)[index], as_version=4)
        text = "".join(o.get("text", "") for o in _outputs(notebook))
        assert "custom template ridge EURUSD 1h 60d" in text
    assert (folder / "summary.ipynb").is_file()
    assert json.loads((folder / "batch.json").read_text())["template"] == str(
        tmp_path / "dying.ipynb"
    )

    # The same command again: a new queue of what is not completed, the failed one (now at
    # index 0 of queue 2, so its kernel lives); queue 1's failed notebook stays.
    again = CliRunner().invoke(cli, command)
    assert again.exit_code == 0, again.output
    assert "- 2 already trained" in again.output
    retried = ws.queue(2).results()
    assert list(retried["horizon"]) == [runs.loc[1, "horizon"]]
    assert list(retried["status"]) == ["completed"]
    assert sorted(_final_notebooks(root / "runs" / "2")) == [0]
    assert failed.is_file()
