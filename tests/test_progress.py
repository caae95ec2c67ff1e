"""The stage runner's progress lines: cells and sections, the kernel's tqdm bars, and the time left."""
from __future__ import annotations

import io

import nbformat

from i2s import stage


def _notebook(path):
    cells = [nbformat.v4.new_markdown_cell("# Demo\nWhat it does."),
             nbformat.v4.new_code_cell("n = 3", metadata={"tags": ["parameters"]}),
             nbformat.v4.new_markdown_cell("## The long loop"),
             nbformat.v4.new_code_cell("import time\nfrom tqdm.auto import tqdm\n"
                                       "for i in tqdm(range(n), desc='steps', mininterval=0):\n    time.sleep(0.2)"),
             nbformat.v4.new_code_cell("time.sleep(0.3)")]
    ks = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": ks}), path)
    return path


def test_a_notebook_stage_says_its_cells_its_bars_and_the_time_left(tmp_path):
    nb = _notebook(tmp_path / "demo.ipynb")
    previous = None
    for run in range(2):
        out = io.StringIO()
        with stage.Progress("99_demo", previous=previous, out=out, every=60, bar_every=60) as p:
            stage.execute(nb, tmp_path / "out.ipynb", {"n": 4}, p, cwd=tmp_path)
        previous = p.record()
        lines = out.getvalue().splitlines()
        assert all(ln.startswith("[99_demo] ") and " so far, " in ln for ln in lines), lines
        assert any("cell 3/4 · The long loop" in ln for ln in lines), lines  # 4 code cells: papermill's injected one too
        bars = [ln for ln in lines if "steps:" in ln]
        assert bars and "4/4" in bars[-1] and "100%" in bars[-1], lines  # the last state of the bar is always said
    assert any("left (last run's cell times)" in ln for ln in lines), lines
    assert previous["seconds"] > 0.8 and len(previous["cells"]) == 6
    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    assert executed.metadata["widgets"]  # the executed notebook keeps its own widget bar


def test_an_estimate_comes_from_the_last_run_and_a_first_run_only_counts_cells():
    p = stage.Progress("00_x", previous={"seconds": 600, "cells": None}, out=io.StringIO())
    assert p.left().startswith("about 10.0 min left (last run took 10.0 min)")
    p = stage.Progress("00_x", cells=[{"cell_type": "code"}] * 4, out=io.StringIO())
    assert p.left() == "time left unknown (first run here; 0/4 cells done)"
    p.durations[0] = 1.0  # a quick first cell says nothing of a sweep in the next one
    assert p.left() == "time left unknown (first run here; 1/4 cells done)"


def test_a_long_silence_gets_a_heartbeat():
    out = io.StringIO()
    with stage.Progress("00_x", previous={"seconds": 60}, out=out, every=0.2):
        import time
        time.sleep(0.6)
    assert "[00_x] still running" in out.getvalue()
