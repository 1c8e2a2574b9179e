"""The explorer notebook in a real browser: JupyterLab on 127.0.0.1 and headless Chromium (Debian's chromium and
chromium-driver, with selenium; .ci/run installs them). The test runs the notebook on the rt smoke run, changes
the method and the target, drills down to one example and checks what the page shows.

Without Chromium the test is skipped, saying what to install."""
import html
import re

import pytest

import workbench as wb
from workbench.runs.folder import repository_root
from workbench.ui.explorer import build_explorer
from workbench.ui.lab import BrowserMissing, browser_paths, explorer_in_lab
from workbench.ui.state import load_explorer_data

try:
    browser_paths()
    MISSING = None
except BrowserMissing as err:
    MISSING = str(err)


@pytest.fixture(scope="module")
def smoke_run():
    """The rt smoke run the notebooks read (runs/rt-smoke; made here in about a minute when absent, and reused by
    the notebook tests that follow)."""
    return wb.open_run("rt", "smoke").folder


def _shown(html_text: str) -> str:
    """What a browser shows of a widgets.HTML value: its text without tags and entities."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_text)).strip()


@pytest.mark.skipif(MISSING is not None, reason=f"no browser: {MISSING}")
def test_explorer_notebook_in_a_browser(smoke_run, tmp_path):
    data = load_explorer_data(smoke_run)
    cascade = next(m for m in data.methods if m.startswith("cascade") and "+DA" in m)
    with explorer_in_lab(smoke_run, tmp_path, env={"WORKBENCH_PRESET": "smoke", "WORKBENCH_TASK": "rt",
                                                  "OMP_NUM_THREADS": "1"}) as page:
        # the notebook ran to its last cell: the explorer opens where the same UI built here opens (DeeBERT, the
        # parameters the study chooses on tune for 3x)
        twin = build_explorer(data)
        assert page.options("method") == list(data.methods)
        assert page.text("summary") == _shown(twin.summary.value)

        # another method and another target: the summary is the study's point for them
        page.choose("method", cascade)
        page.choose("target", "2x")
        twin.method.value, twin.target.value = cascade, 2.0
        assert page.text("summary") == _shown(twin.summary.value)
        assert twin.state.method == cascade
        assert page.driver.find_element("css selector", ".wb-explorer img.wb-figure").size["height"] > 100
        point = twin.state

        # one example drilled down: its text, gold label, where each method stops, and every exit
        example = point.examples.iloc[0]
        page.type("example-id", str(example["example_id"]))
        drill = page.text("drill")
        assert str(example["example_id"]) in drill
        assert f"gold label: {data.label_names[int(example['label'])]}" in drill
        assert "where each method stops at 2x" in drill and "every exit of every model" in drill
        stops = data.example(str(example["example_id"]), methods=[cascade, *data.methods[:2]], target=2.0)["stops"]
        for method in stops["method"]:
            assert method in drill


def test_browser_paths_say_what_to_install(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda name: None)
    with pytest.raises(BrowserMissing, match="apt-get install chromium chromium-driver"):
        browser_paths()


def test_the_notebook_served_is_the_repositorys(tmp_path):
    from workbench.ui.lab import NOTEBOOK
    assert NOTEBOOK == repository_root() / "notebooks" / "05_explorer.ipynb" and NOTEBOOK.is_file()
