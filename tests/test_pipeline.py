"""Pipeline smoke test: `dvc repro` of every stage on a tiny world, in a temporary copy of the repo.

It runs the exact commands of dvc.yaml (papermill + nbconvert), so a broken notebook or stage wiring
fails here. Params are params.yaml with tests/smoke_params.yaml laid over it.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(base.get(k, {}), v) if isinstance(v, dict) else v
    return out


def _run(args, cwd, **kw):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("I2S_ROOT", None)
    p = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, **kw)
    assert p.returncode == 0, f"{' '.join(args)} failed:\n{p.stdout[-3000:]}\n{p.stderr[-5000:]}"
    return p.stdout + p.stderr


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    work = tmp_path_factory.mktemp("repo")
    for name in ("i2s", "notebooks"):
        shutil.copytree(REPO / name, work / name, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copy(REPO / "dvc.yaml", work / "dvc.yaml")
    params = _merge(yaml.safe_load((REPO / "params.yaml").read_text()),
                    yaml.safe_load((REPO / "tests" / "smoke_params.yaml").read_text()))
    (work / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _run(["dvc", "init", "--no-scm", "-q"], work)
    log = _run(["dvc", "repro"], work, timeout=1500)
    return work, log


def test_every_stage_ran_and_wrote_its_outputs(pipeline):
    work, _ = pipeline
    stages = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]
    for name, st in stages.items():
        for out in st.get("outs", []):
            path = out if isinstance(out, str) else next(iter(out))
            assert (work / path).exists(), f"{name} did not write {path}"
        for m in st.get("metrics", []):
            path = m if isinstance(m, str) else next(iter(m))
            assert json.loads((work / path).read_text()), f"{name}: empty metrics"


def test_rendered_reports_show_every_figure_and_no_errors(pipeline):
    work, _ = pipeline
    for html in (work / "reports").glob("[0-9][0-9]_*.html"):
        page = html.read_text()
        saved = len(list((work / "figures" / html.stem).glob("*.png")))
        assert saved > 0, f"{html.stem} saved no figure"
        assert page.count("data:image/png;base64") >= saved, f"{html.name} shows fewer figures inline than it saved"
        assert "Traceback" not in page and 'class="ansi-red-fg">Error' not in page


def test_data_stats_metrics_match_the_world(pipeline):
    work, _ = pipeline
    m = json.loads((work / "metrics" / "01_data_stats.json").read_text())
    assert m["loader_truth_mismatches"] == 0
    assert m["triplets"] + m["rejected"] == m["raw_rows"]
    assert m["synthetic"] is True


def test_second_repro_reruns_nothing(pipeline):
    work, _ = pipeline
    out = _run(["dvc", "repro"], work)
    assert "Running stage" not in out, out
    assert "up to date" in _run(["dvc", "status"], work)


def test_dvc_metrics_and_plots_work(pipeline):
    work, _ = pipeline
    assert "01_data_stats" in _run(["dvc", "metrics", "show"], work)
    _run(["dvc", "plots", "show", "-o", "plots_html"], work)
    assert (work / "plots_html" / "index.html").exists()


def test_reports_index(pipeline):
    work, _ = pipeline
    _run([sys.executable, "-m", "i2s.report", "index"], work)
    page = (work / "reports" / "index.html").read_text()
    assert 'href="01_data_stats.html"' in page
