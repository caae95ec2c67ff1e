"""Side-by-side tables, flat metrics, figures and the reports index."""
from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import nbformat
import pandas as pd
import pytest

from i2s import paths, report


def test_compare_shows_ours_paper_difference():
    t = report.compare({"a": 10, "b": 3.5}, {"a": 12}, "ours (synthetic world)")
    assert list(t.columns) == ["quantity", "ours (synthetic world)", "paper", "difference"]
    assert t.loc[0, "difference"] == -2
    assert math.isnan(t.loc[1, "paper"]) and math.isnan(t.loc[1, "difference"])


def test_compare_facts_reads_the_papers_numbers():
    t = report.compare_facts({"triplets": 16973, "songs": 6000})
    assert t.set_index("quantity").loc["triplets", "difference"] == 0
    assert t.set_index("quantity").loc["songs", "difference"] == 6000 - 6373
    assert report.paper_fact("distinct songs") == 6373
    with pytest.raises(KeyError):
        report.paper_fact("no such fact")


def test_paper_tables_are_tidy():
    r = report.paper_results()
    assert list(r.columns) == ["source", "table", "split", "method", "tags", "metric", "value"]
    assert len(r) > 200 and r["value"].notna().all()


def test_metrics_must_be_flat_numbers(in_tmp_root):
    assert report.save_metrics("99_x", {"a": 1, "b": 0.5, "ok": True}) == {"a": 1, "b": 0.5, "ok": True}
    assert json.loads(paths.metrics("99_x").read_text())["a"] == 1
    with pytest.raises(TypeError, match="flat numbers"):
        report.save_metrics("99_x", {"nested": {"a": 1}})


def test_tables_and_figures_land_in_the_stage_folders(in_tmp_root):
    report.save_table(pd.DataFrame({"x": [1, 2]}), "99_x", "t")
    assert (paths.tables("99_x") / "t.csv").exists() and (paths.tables("99_x") / "t.md").read_text().startswith("|")
    fig, _ = plt.subplots()
    report.savefig(fig, "99_x", "f")
    assert (paths.figures("99_x") / "f.png").stat().st_size > 0


def test_index_links_every_rendered_notebook(in_tmp_root):
    rep = paths.reports()
    rep.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · Title here\nThe summary line.")])
    nbformat.write(nb, rep / "01_x.ipynb")
    (rep / "01_x.html").write_text("<html></html>")
    report.save_metrics("01_x", {"triplets": 5})
    page = report.write_index().read_text()
    assert 'href="01_x.html"' in page and "The summary line." in page and "triplets=5" in page
    assert "synthetic" in page
