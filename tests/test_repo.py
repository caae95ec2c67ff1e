"""Repository invariants: pinned dependencies agree, notebooks are stored clean and paired, stages are wired."""
from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _pins_pyproject():
    proj = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    deps = proj["dependencies"] + [d for extra in proj["optional-dependencies"].values() for d in extra]
    return {re.split(r"[=<>!~]", d)[0].lower().replace("_", "-"): d.replace(" ", "") for d in deps}


def _pins_environment():
    env = yaml.safe_load((REPO / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return {re.split(r"[=<>!~]", d)[0].lower().replace("_", "-"): d.replace(" ", "") for d in pip}


def test_environment_yml_agrees_with_pyproject():
    assert _pins_environment() == _pins_pyproject()


def test_torch_pins():
    pins = _pins_pyproject()
    assert pins["torch"] == "torch==2.14.1" and pins["torchvision"] == "torchvision==0.29.1"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_stored_without_outputs(nb):
    for cell in nbformat.read(nb, as_version=4).cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{nb.name}: strip outputs (make strip)"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_paired_with_its_py(nb):
    py = nb.with_suffix(".py")
    assert py.exists(), f"{nb.name} has no paired {py.name} (make notebooks)"
    a = [(c.cell_type, c.source.strip()) for c in jupytext.read(py).cells]
    b = [(c.cell_type, c.source.strip()) for c in nbformat.read(nb, as_version=4).cells]
    assert a == b, f"{nb.name} and {py.name} differ: run `make notebooks`"


def _parameters(nb: Path) -> dict:
    cell = next(c for c in nbformat.read(nb, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    return {t.targets[0].id: ast.literal_eval(t.value) for t in ast.parse(cell.source).body if isinstance(t, ast.Assign)}


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_holds_plain_values(nb):
    assert _parameters(nb), f"{nb.name} needs a cell tagged 'parameters'"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_reads_every_parameter(nb):
    import papermill
    # papermill's parser gives up on a line (saying so only as a log warning) whose comment holds `: ""` or `=`
    assert set(papermill.inspect_notebook(str(nb))) == set(_parameters(nb))


def test_package_has_no_placeholders():
    hits = subprocess.run(["git", "grep", "-n", "-E", "NotImplementedError|TODO|FIXME", "--", "i2s"],
                          cwd=REPO, capture_output=True, text=True).stdout
    assert hits == ""


@pytest.mark.parametrize("bench", sorted(p.name for p in (REPO / "benchmarks").glob("bench_*.py")))
def test_every_benchmark_imports_and_names_only_what_i2s_has(bench):
    """`make bench` is not run by CI: at least each benchmark's imports and i2s names must resolve."""
    import importlib
    import sys
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        importlib.import_module(bench.removesuffix(".py"))
    finally:
        sys.path.remove(str(REPO / "benchmarks"))
