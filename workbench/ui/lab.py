"""The explorer notebook in a real browser: JupyterLab on 127.0.0.1, driven by headless Chromium through
Selenium (Debian's `chromium` and `chromium-driver`; `pip install selenium`).

The browser test uses it to check what the page shows, and `python -m workbench.ui.lab` uses it to take the
README's screenshots of the explorer on a run folder::

    python -m workbench.ui.lab --run runs/rt-quick --out docs/img
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_explorer.ipynb"


class BrowserMissing(RuntimeError):
    """Chromium, its driver or Selenium is not installed."""


def browser_paths() -> tuple[str, str]:
    """Chromium's and chromedriver's executables, or BrowserMissing saying how to install them."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    driver = shutil.which("chromedriver")
    missing = [name for name, path in (("chromium", browser), ("chromedriver", driver)) if path is None]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("selenium (pip)")
    if missing:
        raise BrowserMissing(f"{', '.join(missing)} not found; on Debian or Ubuntu: "
                             "`apt-get install chromium chromium-driver` and `pip install selenium`")
    return browser, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def jupyterlab(folder: Path, env: dict[str, str] | None = None, timeout: float = 120.0) -> Iterator[str]:
    """A JupyterLab server on 127.0.0.1 serving `folder`, with a random token; yields its base URL with the token
    (`http://127.0.0.1:PORT/lab/tree/{path}?token=...` opens a notebook). Its log goes to `folder/jupyterlab.log`;
    the server is stopped on exit."""
    port, token = _free_port(), secrets.token_hex(16)
    environment = {**os.environ, **(env or {}), "JUPYTER_RUNTIME_DIR": str(folder / ".runtime")}
    log = open(folder / "jupyterlab.log", "w", encoding="utf-8")
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
         f"--ServerApp.token={token}", f"--ServerApp.root_dir={folder}", "--LabApp.expose_app_in_browser=True",
         f"--LabApp.workspaces_dir={folder / '.workspaces'}", "--ServerApp.allow_root=True"],
        cwd=folder, env=environment, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if server.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {server.returncode}; see {folder / 'jupyterlab.log'}")
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=2) as reply:
                    json.load(reply)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"JupyterLab did not answer on {base} within {timeout:g} s; see "
                                       f"{folder / 'jupyterlab.log'}") from None
                time.sleep(0.5)
        yield f"{base}/lab/tree/{{path}}?token={token}"
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()


@contextmanager
def chromium(width: int = 1280, height: int = 1100):
    """A headless Chromium driven by Selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 f"--window-size={width},{height}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    try:
        yield driver
    finally:
        driver.quit()


class ExplorerPage:
    """The explorer notebook open in JupyterLab: run it, then read and change its controls by their `wb-*` classes
    (see ExplorerUI)."""

    def __init__(self, driver, url: str, timeout: float = 300.0):
        self.driver, self.timeout = driver, timeout
        driver.get(url)
        self._wait(lambda d: d.execute_script(
            "const app = window.jupyterapp; return !!(app && app.shell.currentWidget"
            " && app.shell.currentWidget.sessionContext && app.shell.currentWidget.sessionContext.session"
            " && app.shell.currentWidget.sessionContext.session.kernel)"), "the notebook and its kernel")
        # the notebook alone: side bars collapsed, JupyterLab's own notices hidden
        driver.execute_script("const shell = window.jupyterapp.shell; shell.collapseLeft(); shell.collapseRight();"
                              "document.head.insertAdjacentHTML('beforeend',"
                              " '<style>.Toastify { display: none !important; }</style>');")

    def _wait(self, condition, what: str, timeout: float | None = None):
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout or self.timeout, poll_frequency=0.25).until(condition)
        except TimeoutException:
            raise TimeoutError(f"the page did not show {what} within {timeout or self.timeout:g} s; it shows: "
                               f"{self.driver.find_element('tag name', 'body').text[-2000:]!r}") from None

    def run_all(self) -> None:
        """Run every cell, then wait for the explorer's widget and for the kernel to go idle."""
        self.driver.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        self._wait(lambda d: d.find_elements("css selector", ".wb-explorer .wb-summary"), "the explorer widget")
        self.idle()

    def idle(self) -> None:
        """Wait until the kernel has answered every change (its status reads idle twice in a row)."""
        script = "return window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status"
        self._wait(lambda d: d.execute_script(script) == "idle" and (time.sleep(0.5) or True)
                   and d.execute_script(script) == "idle", "an idle kernel")

    def text(self, name: str) -> str:
        """The text a `wb-<name>` widget shows."""
        return self.driver.find_element("css selector", f".wb-explorer .wb-{name}").text

    def choose(self, name: str, label: str) -> None:
        """Pick `label` in the `wb-<name>` drop-down, then wait for the kernel."""
        from selenium.webdriver.support.ui import Select

        select = Select(self.driver.find_element("css selector", f".wb-explorer .wb-{name} select"))
        select.select_by_visible_text(label)
        self.idle()

    def options(self, name: str) -> list[str]:
        from selenium.webdriver.support.ui import Select

        return [o.text for o in Select(self.driver.find_element(
            "css selector", f".wb-explorer .wb-{name} select")).options]

    def type(self, name: str, text: str) -> None:
        """Type `text` into the `wb-<name>` text box and press Enter, then wait for the kernel."""
        from selenium.webdriver.common.keys import Keys

        box = self.driver.find_element("css selector", f".wb-explorer .wb-{name} input")
        box.clear()
        box.send_keys(text + Keys.ENTER)
        self.idle()

    def screenshot(self, name: str, path: Path) -> None:
        """A PNG of the `wb-<name>` part of the page (`explorer` for the whole widget)."""
        element = self.driver.find_element("css selector", ".wb-explorer" if name == "explorer"
                                           else f".wb-explorer .wb-{name}")
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'start'})", element)
        time.sleep(0.5)
        path.write_bytes(element.screenshot_as_png)


@contextmanager
def explorer_in_lab(run_dir: str | Path, workdir: Path, *, env: dict[str, str] | None = None,
                    width: int = 1280, height: int = 1100) -> Iterator[ExplorerPage]:
    """The explorer notebook, copied into `workdir` with its parameters set to the run in `run_dir` (the
    committed notebook is never touched), served by JupyterLab and open in headless Chromium, all cells run."""
    browser_paths()
    import nbformat

    notebook = nbformat.read(NOTEBOOK, as_version=4)
    cell = next(c for c in notebook.cells if "parameters" in c.metadata.get("tags", []))
    run = json.loads((Path(run_dir) / "config.json").read_text(encoding="utf-8"))["run"]
    cell.source += (f"\nPRESET, TASK = {run['preset']!r}, {run['task']['name']!r}\n"
                    f"GLUE_DIR = {run['task'].get('glue_dir')!r}\nRUN_DIR = {str(Path(run_dir).resolve())!r}\n")
    workdir.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, workdir / NOTEBOOK.name)
    with jupyterlab(workdir, env) as url, chromium(width, height) as driver:
        page = ExplorerPage(driver, url.format(path=NOTEBOOK.name))
        page.run_all()
        yield page


def take_screenshots(run_dir: str | Path, out: Path, *, method: str | None = None, target: str = "3x",
                     example: str | None = None) -> list[Path]:
    """The README's two screenshots of the explorer on `run_dir`: the operating point of `method` (default the
    first difficulty-aware cascade) at `target`, and one example drilled down (default the first wrong early exit
    of that point) with the methods compared at the target."""
    import tempfile

    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, explorer_in_lab(run_dir, Path(tmp), height=1400) as page:
        methods = page.options("method")
        page.choose("method", method or next((m for m in methods if "+DA" in m), methods[0]))
        page.choose("target", target)
        first = out / "explorer_operating_point.png"
        page.screenshot("explorer", first)
        rows = page.driver.find_elements("css selector", ".wb-explorer .wb-table tbody tr")
        page.type("example-id", example or rows[0].find_element("tag name", "td").text)
        second = out / "explorer_drilldown.png"
        page.screenshot("drill", second)
        return [first, second]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.ui.lab", description=take_screenshots.__doc__)
    parser.add_argument("--run", required=True, help="a run folder (outputs.parquet and config.json)")
    parser.add_argument("--out", default="docs/img", help="folder for the PNGs")
    parser.add_argument("--method", help="the method shown (default: the first cascade+DA)")
    parser.add_argument("--target", default="3x")
    parser.add_argument("--example", help="the example id drilled down")
    args = parser.parse_args(argv)
    for path in take_screenshots(args.run, Path(args.out), method=args.method, target=args.target,
                                 example=args.example):
        print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
