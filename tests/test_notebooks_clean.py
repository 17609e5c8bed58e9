"""Every committed report notebook follows the conventions the runner relies on.

The conventions are described in docs/reports.md. These checks read the notebook files
only; test_runner.py executes them.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import papermill
import pytest

from analysis.runner.catalog import METADATA_KEY, REPORT_NAME_PATTERN

NOTEBOOKS_DIR = Path(__file__).resolve().parent.parent / "notebooks"
NOTEBOOKS = sorted(NOTEBOOKS_DIR.glob("*.ipynb"))
REQUIRED_PARAMETERS = {
    "db": "str",
    "table": "str",
    "start": "str",
    "end": "str",
    "firmware": "list",
    "devices": "list",
    "summary_path": "str",
}


def _read(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _parameters_cells(notebook: nbformat.NotebookNode) -> list:
    return [cell for cell in notebook.cells if "parameters" in cell.metadata.get("tags", [])]


def test_notebooks_directory_has_reports():
    assert NOTEBOOKS, f"no notebooks found in {NOTEBOOKS_DIR}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_is_valid_nbformat(path):
    nbformat.validate(_read(path))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_committed_without_outputs(path):
    code_cells = [cell for cell in _read(path).cells if cell.cell_type == "code"]
    with_outputs = [index for index, cell in enumerate(code_cells) if cell.outputs]
    with_counts = [index for index, cell in enumerate(code_cells)
                   if cell.execution_count is not None]

    assert with_outputs == [], f"{path.name}: code cells {with_outputs} have outputs"
    assert with_counts == [], f"{path.name}: code cells {with_counts} have execution counts"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_has_no_papermill_leftovers(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    injected = [cell for cell in notebook["cells"]
                if "injected-parameters" in cell.get("metadata", {}).get("tags", [])]

    assert "papermill" not in notebook["metadata"]
    assert injected == []


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_name_is_report_name(path):
    assert REPORT_NAME_PATTERN.match(path.stem)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_metadata_describes_report(path):
    entry = _read(path).metadata.get(METADATA_KEY)

    assert isinstance(entry, dict), f"{path.name}: no {METADATA_KEY!r} notebook metadata"
    assert isinstance(entry.get("title"), str) and entry["title"].strip()
    assert isinstance(entry.get("order"), int) and not isinstance(entry["order"], bool)
    assert isinstance(entry.get("default"), bool)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_notebook_has_one_parameters_cell(path):
    cells = _parameters_cells(_read(path))

    assert len(cells) == 1
    assert cells[0].cell_type == "code"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_parameters_are_annotated_one_per_line(path):
    source = _parameters_cells(_read(path))[0].source
    lines = [line for line in source.splitlines() if line.strip()]
    statements = ast.parse(source).body

    assert all(isinstance(statement, ast.AnnAssign) for statement in statements)
    assert len(statements) == len(lines), f"{path.name}: one assignment per line"
    for line in lines:
        # papermill skips a line with a second "=" when it documents the parameters.
        assert line.count("=") == 1, f"{path.name}: {line!r} has more than one '='"
        assert "  # " in line, f"{path.name}: {line!r} has no comment"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_required_parameters_documented(path):
    inferred = papermill.inspect_notebook(str(path))

    for name, type_name in REQUIRED_PARAMETERS.items():
        assert name in inferred, f"{path.name}: parameter {name} missing"
        assert inferred[name]["inferred_type_name"] == type_name
        assert inferred[name]["help"], f"{path.name}: parameter {name} has no comment"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda path: path.stem)
def test_required_parameters_default_to_empty(path):
    inferred = papermill.inspect_notebook(str(path))
    defaults = {name: ast.literal_eval(inferred[name]["default"]) for name in REQUIRED_PARAMETERS}

    assert defaults["db"] == ""
    assert defaults["start"] == ""
    assert defaults["end"] == ""
    assert defaults["firmware"] == []
    assert defaults["devices"] == []
    assert defaults["summary_path"] == ""
