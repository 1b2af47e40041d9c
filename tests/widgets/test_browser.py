"""End to end in a real browser: JupyterLab (and Voila) serving a copy of
notebooks/04_manager.ipynb, driven by Debian's chromium through the playwright package.

The Lab test clicks through the three tabs as a user would and saves a screenshot at each
step under its output folder (``<tmp_path>/screenshots``; also copied to
``$FOREXGRID_SCREENSHOTS`` when set: docs/widgets.md shows the ones committed in
docs/images/widgets/). Recipes: ../shared/TESTING.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "notebooks" / "04_manager.ipynb"
BIN = Path(sys.executable).parent
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def _chromium() -> str:
    """Debian's chromium (never a browser download); CI (root, CI=true) installs it."""
    found = shutil.which("chromium")
    if found is None and os.environ.get("CI") and os.geteuid() == 0:
        subprocess.run(["apt-get", "install", "-y", "chromium"], check=False, timeout=600,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
        found = shutil.which("chromium")
    if found is None:
        pytest.skip("chromium is not installed (apt-get install -y chromium)")
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_http(url: str, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"server not ready after {timeout} s: {log.read_text()[-2000:]}")


def _wait_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 90) -> None:
    # Voila executes the notebook for each page request: probe the port, not a page.
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited: {log.read_text()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"server not listening after {timeout} s: {log.read_text()[-2000:]}")


def _jupyter_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("JUPYTER_CONFIG_DIR", "JUPYTER_DATA_DIR", "JUPYTER_RUNTIME_DIR", "IPYTHONDIR"):
        folder = home / name.lower()
        folder.mkdir(parents=True, exist_ok=True)
        env[name] = str(folder)
    for name in ("FOREXGRID_CONFIG", "FOREXGRID_WORKSPACE", "FOREXGRID_DATABASE_URL"):
        env.pop(name, None)
    # The notebook's demo workspace (tempfile.mkdtemp) lands in the test's folder.
    (home / "tmp").mkdir(exist_ok=True)
    env["TMPDIR"] = str(home / "tmp")
    return env


class Server:
    def __init__(self, command: list[str], env: dict[str, str], cwd: Path, log: Path):
        self.log = log
        self._out = open(log, "wb")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=self._out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)
        self._out.close()


@pytest.fixture
def shots(tmp_path):
    """``shots(page, name)`` saves a screenshot under the test's output folder."""
    folder = tmp_path / "screenshots"
    folder.mkdir()
    extra = os.environ.get("FOREXGRID_SCREENSHOTS")

    def save(page, name: str) -> Path:
        path = folder / f"{name}.png"
        page.screenshot(path=str(path), full_page=False)
        if extra:
            Path(extra).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(extra) / path.name)
        return path

    save.folder = folder
    print(f"screenshots: {folder}")
    return save


@pytest.fixture
def browser():
    playwright = pytest.importorskip("playwright.sync_api")
    executable = _chromium()
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def lab(tmp_path):
    """JupyterLab on a folder holding a copy of the manager notebook: (url, folder)."""
    folder = tmp_path / "lab"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    home = tmp_path / "jupyter"
    settings = home / "user-settings" / "@jupyterlab" / "apputils-extension"
    settings.mkdir(parents=True)
    # No news pop-up over the bottom right of the page.
    (settings / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    port, token = _free_port(), "forexgrid-e2e"
    command = [
        str(BIN / "jupyter"), "lab", "--no-browser", f"--port={port}",
        f"--ServerApp.token={token}", "--ServerApp.ip=127.0.0.1", "--allow-root",
        f"--ServerApp.root_dir={folder}", f"--LabApp.user_settings_dir={home / 'user-settings'}",
        f"--LabApp.workspaces_dir={home / 'workspaces'}", "--LabApp.expose_app_in_browser=True",
    ]  # fmt: skip
    server = Server(command, _jupyter_env(home), folder, tmp_path / "lab.log")
    try:
        _wait_http(f"http://127.0.0.1:{port}/api/status?token={token}", server.process, server.log)
        yield f"http://127.0.0.1:{port}/lab/tree/{NOTEBOOK.name}?token={token}", folder
    finally:
        server.stop()


def _progress(panel) -> float:
    width = panel.locator(".forexgrid-queue-progress .progress-bar").evaluate(
        "el => el.style.width"
    )
    return float(width.rstrip("%") or 0)


def _summary_status(panel) -> str:
    text = panel.locator(".forexgrid-queue-summary").inner_text()
    match = re.search(r"Status\s+(\w+)", text)
    return match.group(1) if match else ""


def test_the_manager_in_jupyterlab(browser, lab, shots):
    from playwright.sync_api import expect

    expect.set_options(timeout=60_000)
    url, folder = lab
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.set_default_timeout(60_000)
    page.goto(url)
    # A cold server may ask which kernel to use: accept the default.
    page.add_locator_handler(
        page.locator(".jp-Dialog:has-text('Select Kernel')"),
        lambda: page.locator(".jp-Dialog .jp-mod-accept").click(),
    )
    expect(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")).to_be_visible()
    expect(page.locator(".jp-KernelName").first).not_to_have_text("No Kernel")
    expect(page.get_by_text("Python 3 (ipykernel) | Idle")).to_be_visible()
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    nb = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
    queue = nb.locator(".forexgrid-queue-panel")
    expect(queue.locator(".forexgrid-queue-generate-button")).to_be_enabled()
    queue.scroll_into_view_if_needed()
    shots(page, "01_opened")

    # The grid: ridge and lasso x EURUSD x 1h x 30, 60 days x horizons 1, 3.
    queue.locator(".forexgrid-queue-model-types select").select_option(["ridge", "lasso"])
    expect(queue.locator(".forexgrid-queue-days-60 input")).to_be_checked()
    expect(queue.locator(".forexgrid-queue-horizons-3 input")).to_be_checked()
    queue.locator(".forexgrid-queue-generate-button").click()
    message = queue.locator(".forexgrid-queue-message")
    expect(message).to_contain_text(
        "2 models x 1 symbol x 1 timeframe x 2 days x 2 horizons = 8 configurations; "
        "0 already trained; 8 to train"
    )
    expect(queue.locator(".forexgrid-queue-start-button")).to_be_enabled()
    shots(page, "02_generated")

    queue.locator(".forexgrid-queue-start-button").click()
    # Watch the bar as the user does: its width must grow at least twice before the summary
    # says Completed (live updates, not one final repaint). Pause once it has moved, resume
    # once paused.
    seen: list[tuple[float, str]] = []
    paused = resumed = False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        state = (_progress(queue), _summary_status(queue))
        if not seen or state != seen[-1]:
            seen.append(state)
        if state[1] == "Completed":
            break
        if not paused and state[0] > 0:
            queue.locator(".forexgrid-queue-pause-button").click()
            paused = True
        if paused and not resumed and state[1] == "Paused":
            expect(queue.locator(".forexgrid-queue-resume-button")).to_be_enabled()
            shots(page, "03_paused")
            queue.locator(".forexgrid-queue-resume-button").click()
            resumed = True
        page.wait_for_timeout(100)
    assert seen[-1] == (100.0, "Completed"), seen
    assert resumed, f"never saw the queue paused: {seen}"
    before = [p for p, status in seen if status != "Completed"]
    increases = sum(b > a for a, b in zip(before, before[1:], strict=False))
    assert increases >= 2, seen
    expect(queue.locator(".forexgrid-queue-status")).to_contain_text("Training completed!")
    shots(page, "04_completed")

    # Regime Analysis: the table shows a ticked regime; the charts; a bad rule's message.
    nb.locator(".forexgrid-manager-tabs .lm-TabBar-tab:has-text('Regime Analysis')").click()
    regimes = nb.locator(".forexgrid-regimes-panel")
    expect(regimes.locator(".forexgrid-regimes-table")).to_contain_text("\u2713")
    regimes.locator(".forexgrid-regimes-charts-button").click()
    expect(regimes.locator(".forexgrid-regimes-message")).to_contain_text("Performance charts")
    regimes.locator(".forexgrid-regimes-table").scroll_into_view_if_needed()
    shots(page, "05_regimes")
    regimes.locator(".forexgrid-regimes-name input").fill("bad_rule")
    regimes.locator(".forexgrid-regimes-rules textarea").fill('{"trend_strength": "> banana"}')
    check = regimes.locator(".forexgrid-regimes-rules-check")
    expect(check).to_contain_text("rule 'trend_strength': cannot parse '> banana'")
    regimes.locator(".forexgrid-regimes-add-button").click()
    expect(regimes.locator(".forexgrid-regimes-message")).to_contain_text("cannot parse")
    check.scroll_into_view_if_needed()
    shots(page, "06_bad_rule")

    # Training History: the runs, one run's details, the CSV export.
    nb.locator(".forexgrid-manager-tabs .lm-TabBar-tab:has-text('Training History')").click()
    history = nb.locator(".forexgrid-history-panel")
    rows = history.locator(".forexgrid-history-table tbody tr")
    expect(rows).to_have_count(8)
    # Statuses are coloured (HTML in the cell), not shown as markup.
    expect(rows.first.locator("td span[style*='color']")).to_have_text("completed")
    expect(history.locator(".forexgrid-history-message")).to_contain_text("8 run(s)")
    expect(rows.first.locator("td").first).to_have_text("8")  # newest first
    # Sort by ID (in the browser), then select the first row shown: the details are those
    # of that row's run, whatever the order on screen.
    history.get_by_role("button", name="ID: Activate to sort", exact=True).click()
    expect(rows.first.locator("td").first).to_have_text("1")
    rows.first.click()
    expect(history.locator(".forexgrid-history-details-button")).to_be_enabled()
    history.locator(".forexgrid-history-details-button").click()
    details = history.locator(".forexgrid-history-details")
    expect(details).to_contain_text("Chosen combination")
    expect(details).to_contain_text(re.compile(r"Run 1 \("))
    history.locator(".forexgrid-history-export-button").click()
    exported = history.locator(".forexgrid-history-message")
    expect(exported).to_contain_text("Exported 8 run(s) to")
    path = Path(re.search(r"to (\S+\.csv)", exported.inner_text()).group(1))
    assert path.is_file() and len(path.read_text().splitlines()) == 9
    history.locator(".forexgrid-history-table").scroll_into_view_if_needed()
    shots(page, "07_history")

    # A queue started from a terminal while the notebook is open shows live in the panel:
    # the command the notebook prints (its workspace, its configuration, 90 days).
    printed = nb.locator(".jp-OutputArea-output:has-text('forexgrid --workspace')")
    words = printed.inner_text().split()
    assert words[:2] == ["forexgrid", "--workspace"], words
    nb.locator(".forexgrid-manager-tabs .lm-TabBar-tab:has-text('Training Queue')").click()
    cli = subprocess.Popen(
        [str(BIN / "forexgrid"), *words[1:]], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True, env=_jupyter_env(folder.parent / "jupyter"),
    )  # fmt: skip
    try:
        expect(queue.locator(".forexgrid-queue-status")).to_contain_text(
            "Following queue 2, started elsewhere."
        )
        summary = queue.locator(".forexgrid-queue-summary")
        expect(summary).to_contain_text(re.compile(r"Total\s*2"))
        expect(summary).to_contain_text(re.compile(r"Status\s*Completed"))
        expect(queue.locator(".forexgrid-queue-message")).to_contain_text("Following queue 2")
    finally:
        assert cli.wait(timeout=300) == 0, cli.stderr.read()
    queue.locator(".forexgrid-queue-summary").scroll_into_view_if_needed()
    shots(page, "09_cli_queue")


def test_voila_serves_the_manager(browser, tmp_path, shots):
    from playwright.sync_api import expect

    voila = BIN / "voila"
    if not voila.exists():
        pytest.skip("voila is not installed (pip install voila)")
    folder = tmp_path / "voila"
    folder.mkdir()
    shutil.copy(NOTEBOOK, folder / NOTEBOOK.name)
    port = _free_port()
    command = [
        str(voila), NOTEBOOK.name, "--no-browser", f"--port={port}", "--Voila.ip=127.0.0.1",
    ]  # fmt: skip
    server = Server(command, _jupyter_env(tmp_path / "jupyter"), folder, tmp_path / "voila.log")
    try:
        _wait_port(port, server.process, server.log)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"http://127.0.0.1:{port}/", timeout=120_000)
        expect(page.locator(".forexgrid-queue-generate-button")).to_be_enabled(timeout=120_000)
        expect(page.locator(".forexgrid-manager-tabs")).to_contain_text("Regime Analysis")
        shots(page, "08_voila")
    finally:
        server.stop()
