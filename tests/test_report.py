"""Side-by-side tables, flat metrics, figures and the reports index."""
from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import nbformat
import pandas as pd
import pytest

from i2s import artefacts, figures, paper, paths, site, tables


def test_compare_shows_ours_paper_difference():
    t = tables.compare({"a": 10, "b": 3.5}, {"a": 12}, "ours (synthetic world)")
    assert list(t.columns) == ["quantity", "ours (synthetic world)", "paper", "difference"]
    assert t.loc[0, "difference"] == -2
    assert math.isnan(t.loc[1, "paper"]) and math.isnan(t.loc[1, "difference"])


def test_compare_facts_reads_the_papers_numbers():
    t = tables.compare_facts({"triplets": 16973, "songs": 6000})
    assert t.set_index("quantity").loc["triplets", "difference"] == 0
    assert t.set_index("quantity").loc["songs", "difference"] == 6000 - 6373
    assert paper.fact("distinct songs") == 6373
    with pytest.raises(KeyError):
        paper.fact("no such fact")


def test_paper_tables_are_tidy():
    r = paper.results()
    assert list(r.columns) == ["source", "table", "split", "method", "tags", "metric", "value"]
    assert len(r) > 200 and r["value"].notna().all()


def test_metrics_are_numbers_and_nested_keys_are_flattened_one_way(in_tmp_root):
    assert artefacts.write_metrics("99_x", {"a": 1, "b": 0.5, "ok": True}) == {"a": 1, "b": 0.5, "ok": True}
    assert json.loads(paths.metrics("99_x").read_text())["a"] == 1
    assert artefacts.write_metrics("99_x", {"vocab": {"types": 3, "oov": {"pct": 0.5}}, "n": 2}) == \
        {"vocab/types": 3, "vocab/oov/pct": 0.5, "n": 2}
    for bad in ({"name": "x"}, {"values": [1, 2]}):
        with pytest.raises(TypeError, match="flat numbers"):
            artefacts.write_metrics("99_x", bad)


def test_tables_and_figures_land_in_the_stage_folders(in_tmp_root):
    tables.save_table(pd.DataFrame({"x": [1, 2]}), "99_x", "t")
    assert (paths.tables("99_x") / "t.csv").exists() and (paths.tables("99_x") / "t.md").read_text().startswith("|")
    fig, _ = plt.subplots()
    figures.savefig(fig, "99_x", "f")
    assert (paths.figures("99_x") / "f.png").stat().st_size > 0


def test_index_links_every_rendered_notebook(in_tmp_root):
    rep = paths.reports()
    rep.mkdir()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("# 01 · Title here\nThe summary line.")])
    nbformat.write(nb, rep / "01_x.ipynb")
    (rep / "01_x.html").write_text("<html></html>")
    artefacts.write_metrics("01_x", {"triplets": 5})
    page = site.write_index().read_text()
    assert 'href="01_x.html"' in page and "The summary line." in page and "triplets=5" in page
    assert "synthetic" in page


def test_index_cards_show_the_headline_beside_the_paper_and_a_thumbnail(in_tmp_root):
    rep = paths.reports()
    rep.mkdir()
    for stage in ("04_attention", "07_new"):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {stage}\nSummary.")])
        nb.metadata["papermill"] = {"end_time": "2026-11-25T02:51:39+00:00", "duration": 90.0,
                                    "parameters": {"seeds": 3}, "exception": None}
        nbformat.write(nb, rep / f"{stage}.ipynb")
        (rep / f"{stage}.html").write_text("<html></html>")
        fig, ax = plt.subplots()
        ax.plot([0, 1])
        figures.savefig(fig, stage, "a_figure")
    ours = tables.source_label(True)
    long = pd.DataFrame([{"method": m, "tags": t, "metric": k, ours: v, "paper": 10.0 + v, "split": s}
                         for s in ("dagger", "section") for m in ("Our", "Our-attention") for t in ("obj", "obj-attr")
                         for k, v in (("R@1", 1.5), ("Med r", 40.0))])
    tables.save_table(long, "04_attention", "table2_long")
    tables.save_table(pd.DataFrame({"x": [1]}), "07_new", "no_paper_here")
    tables.save_table(tables.compare({"R@1": 3.0}, {"R@1": 4.0}, ours), "07_new", "beside")
    df, held, png = site.headline("04_attention")  # the configured rows, as method × metric cells
    assert df.columns.tolist() == ["method", "R@1", "Med r"] and df["method"].tolist() == ["Our", "Our-attention"]
    assert df.loc[0, "R@1"] == "1.5 (11.5)" and "split = dagger" in held and f"{ours} (paper)" in held
    assert png.name == "a_figure.png"
    df, held, png = site.headline("07_new")  # not configured: the first table with a paper column
    assert df.columns.tolist() == ["quantity", ours, "paper", "difference"] and png.name == "a_figure.png"
    page = site.write_index().read_text()
    assert page.count("data:image/png;base64,") == 2 and 'href="07_new.html"' in page
    assert "seeds=3" in page and "2026-11-25 02:51 UTC (1.5 min)" in page and "no paper column" not in page
