"""Side-by-side tables, flat metrics, figures and the reports index."""
from __future__ import annotations

import json
import math

import matplotlib.pyplot as plt
import nbformat
import numpy as np
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


def test_reports_fold_each_code_cell_and_keep_its_code(tmp_path):
    from i2s import htmlreport
    cells = [nbformat.v4.new_markdown_cell("# Title\nProse."),
             nbformat.v4.new_code_cell("total = 1 + 1  # <why>\nprint(total)",
                                       outputs=[nbformat.v4.new_output("stream", text="2\n")])]
    nbformat.write(nbformat.v4.new_notebook(cells=cells), tmp_path / "01_x.ipynb")
    page = htmlreport.render(tmp_path / "01_x.ipynb").read_text()
    assert page.count('<details class="i2s-code">') == 1 and "<details open" not in page
    assert "code: total = 1 + 1  # &lt;why&gt;</summary>" in page
    folded = page.split('<details class="i2s-code">', 1)[1].split("</details>", 1)
    assert "print" in folded[0] and "2\n" not in folded[0] and "Prose." not in folded[0]  # code inside, output after


def test_reports_show_progress_bars_as_their_last_states_and_keep_warnings_in_view(tmp_path):
    from i2s import htmlreport
    bar = "\rtrain (1/2):  {p:>3}%|#         | {n}/10 [00:0{n}<00:09,  1.0it/s]"
    states = [bar.format(p=10 * n, n=n) for n in range(11)]
    warning = "/x/scoring.py:74: UserWarning: the array is not writable\n  targets = data.targets[idx]\n"
    outs = [nbformat.v4.new_output("stream", name="stderr", text=s) for s in states[:6]]
    outs += [nbformat.v4.new_output("stream", name="stdout", text="epoch 5\n"),
             nbformat.v4.new_output("stream", name="stderr", text=states[6] + "\n" + warning)]
    outs += [nbformat.v4.new_output("stream", name="stderr", text=s) for s in states[7:]]
    cells = [nbformat.v4.new_code_cell("fit()", outputs=outs),
             nbformat.v4.new_code_cell("warn()", outputs=[nbformat.v4.new_output("stream", name="stderr",
                                                                                   text=warning)])]
    nb = nbformat.v4.new_notebook(cells=cells)
    folded = htmlreport.fold_progress(nb)
    assert len(nb.cells[0].outputs) == 12  # the executed notebook itself is left as it was
    kinds = [(o["output_type"], o.get("name")) for o in folded.cells[0]["outputs"]]
    assert kinds == [("display_data", None), ("stream", "stdout"), ("stream", "stderr")], kinds
    assert folded.cells[0]["outputs"][2]["text"] == warning  # the warning, word for word, outside the fold
    assert folded.cells[1]["outputs"] == nb.cells[1].outputs  # a cell without bars is not touched
    nbformat.write(nb, tmp_path / "01_x.ipynb")
    page = htmlreport.render(tmp_path / "01_x.ipynb").read_text()
    summary = page.split('<details class="i2s-progress"', 1)[1].split("</summary>", 1)[0]
    assert "10/10" in summary and "5/10" not in summary  # only the last state is in view
    stream = page.split('<details class="i2s-progress"', 1)[1].split("</details>", 1)[0]
    assert all(f"{n}/10 [" in stream for n in range(11))  # every state is still in the page, folded
    before, after = page.split('<details class="i2s-progress"', 1)
    in_view = before + after.split("</details>", 1)[1]
    assert in_view.count("UserWarning: the array is not writable") == 2  # both warnings, outside the fold


def _long_beside_paper():
    ours = tables.source_label(True)
    return pd.DataFrame([{"split": s, "method": m, "tags": t, "metric": k, ours: v + 1, "std": 0.5,
                          "paper": math.nan if m == "New" else v, "difference": 1.0}
                         for s in ("dagger", "section") for m in ("Our", "Our-attention", "New")
                         for t in ("obj", "obj-attr") for k, v in (("R@1", 2.0), ("Med r", 40.0))])


def test_a_table_beside_the_paper_is_drawn_against_the_paper():
    fig = figures.beside_paper_chart(_long_beside_paper())
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title().split("\n")[0] for ax in panels] == ["dagger · R@1", "dagger · Med r", "section · R@1",
                                                                 "section · Med r"]
    for ax in panels:
        assert "2 cells without a paper value" in ax.get_title()
        guide = [ln for ln in ax.get_lines() if ln.get_linestyle() == "--"]
        assert guide and list(guide[0].get_xdata()) == list(guide[0].get_ydata())  # y = x
        assert len(ax.containers) == 4  # Our and Our-attention × 2 tag groups, each with its error bar
    plt.close(fig)
    counts = tables.compare({"songs": 500, "triplets": 16000, "moods": 10}, {"songs": 586, "triplets": 16973},
                            tables.source_label(True))
    fig = figures.beside_paper_chart(counts)
    assert fig.axes[0].get_xscale() == "log" and "1 cell without a paper value" in fig.axes[0].get_title()
    assert {t.get_text() for t in fig.axes[0].texts} == {"songs", "triplets"}  # each point named
    plt.close(fig)


def test_the_picture_of_the_headline_table_is_the_cards_key_figure(in_tmp_root):
    tables.save_table(_long_beside_paper(), "04_attention", "table2_long")
    fig, ax = plt.subplots()
    figures.savefig(fig, "04_attention", "fig6_examples")
    figures.beside_paper_figure("04_attention", "table2_long")
    assert (paths.figures("04_attention") / "table2_long_vs_paper.png").stat().st_size > 10_000
    assert site.headline("04_attention")[2].name == "table2_long_vs_paper.png"


def test_savefig_writes_the_data_of_a_figures_lines(in_tmp_root):
    runs = pd.DataFrame({"K": [3, 3, 4, 4], "mr-cca": [0.6, 0.7, 0.8, 0.8], "cca": [0.5, 0.5, 0.6, 0.7]})
    ax = figures.mean_std_lines(runs, "K", ["mr-cca", "cca"], "Consistency vs K")
    ax.axhline(0.5, label="chance")  # a guide in axes coordinates: not data
    figures.savefig(ax.figure, "06_x", "sweep")
    data = pd.read_csv(figures.plot_data_file("06_x", "sweep"))
    assert data.columns.tolist() == ["panel", "series", "x", "y", "yerr"] and set(data["series"]) == {"mr-cca", "cca"}
    row = data[(data["series"] == "mr-cca") & (data["x"] == 3)].iloc[0]
    assert row["y"] == pytest.approx(0.65) and row["yerr"] == pytest.approx(runs["mr-cca"][:2].std())
    fig, _ = plt.subplots()  # no labelled lines: no data file
    figures.savefig(fig, "06_x", "picture")
    assert not figures.plot_data_file("06_x", "picture").exists()


def test_figure_data_keeps_error_bars_by_point_when_some_are_missing():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from i2s import figures
    fig, ax = plt.subplots()
    ax.errorbar([0.0, 0.5, 1.0], [10, 20, 30], yerr=[float("nan"), 2.0, 4.0], label="Our")  # one seed at 0
    ax.errorbar([0.0, 1.0], [5, 6], yerr=[float("nan"), float("nan")], label="BoW")           # one seed everywhere
    d = figures.figure_data(fig).set_index(["series", "x"])["yerr"]
    plt.close(fig)
    assert np.isnan(d["Our", 0.0]) and d["Our", 0.5] == 2.0 and d["Our", 1.0] == 4.0
    assert d["BoW"].isna().all()
