"""The notebooks: each jupytext source (notebooks/*.py) and its .ipynb say the same thing, no .ipynb carries
outputs, and each one opens with a `parameters` cell that papermill can override.

Executing them is separate: `WORKBENCH_PRESET=smoke python -m pytest --nbmake notebooks/`."""
import ast
import json
from pathlib import Path

import jupytext
import pytest

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCES = sorted(NOTEBOOKS.glob("*.py"))
PARAMETERS = {"PRESET", "TASK", "GLUE_DIR", "RUN_DIR"}


def _cells(notebook) -> list[tuple[str, str, list[str]]]:
    return [(cell.cell_type, cell.source.strip(), sorted(cell.metadata.get("tags", []))) for cell in notebook.cells]


def test_every_source_has_its_notebook_and_back():
    assert SOURCES, f"no jupytext sources in {NOTEBOOKS}"
    assert {p.stem for p in SOURCES} == {p.stem for p in NOTEBOOKS.glob("*.ipynb")}, \
        "every notebooks/*.py needs its .ipynb and back: run `jupytext --to notebook notebooks/*.py`"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_source_and_notebook_agree(source):
    ipynb = source.with_suffix(".ipynb")
    from_source, from_notebook = _cells(jupytext.read(source)), _cells(jupytext.read(ipynb))
    for index, (a, b) in enumerate(zip(from_source, from_notebook)):
        assert a == b, (f"cell {index} of {source.name} and {ipynb.name} differ; regenerate the notebook with "
                        f"`jupytext --to notebook {source.relative_to(NOTEBOOKS.parent)}`")
    assert len(from_source) == len(from_notebook), f"{source.name} and {ipynb.name} have different cell counts"


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_notebook_is_committed_without_outputs(source):
    raw = json.loads(source.with_suffix(".ipynb").read_text(encoding="utf-8"))
    for index, cell in enumerate(raw["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, \
                (f"cell {index} of {source.stem}.ipynb has outputs; strip them (regenerate it from the .py with "
                 "jupytext, or `jupyter nbconvert --clear-output --inplace`)")


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_first_code_cell_holds_the_parameters(source):
    code = [cell for cell in jupytext.read(source).cells if cell.cell_type == "code"]
    assert code, f"{source.name} has no code cell"
    first = code[0]
    assert "parameters" in first.metadata.get("tags", []), \
        f"the first code cell of {source.name} must be tagged parameters (# %% tags=[\"parameters\"])"
    assigned = {target.id for node in ast.walk(ast.parse(first.source)) if isinstance(node, ast.Assign)
                for target in node.targets if isinstance(target, ast.Name)}
    assert PARAMETERS <= assigned, f"the parameters cell of {source.name} lacks {sorted(PARAMETERS - assigned)}"
    assert "WORKBENCH_PRESET" in first.source, f"{source.name}: PRESET should default to $WORKBENCH_PRESET"
