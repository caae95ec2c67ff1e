"""The reports index: one card per executed notebook, its headline table beside the paper and key figure."""
from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from . import paths


def notebook_summary(nb_path: Path) -> tuple[str, str]:
    """(title, one-line summary) of a notebook: its first markdown cell's heading and first paragraph."""
    import nbformat
    nb = nbformat.read(nb_path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = [ln.strip() for ln in cell.source.splitlines() if ln.strip()]
            title = lines[0].lstrip("# ") if lines else nb_path.stem
            summary = next((ln for ln in lines[1:] if not ln.startswith("#")), "")
            return title, summary
    return nb_path.stem, ""


def _git_commit() -> str:
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=paths.root(), check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=paths.root(), check=True).stdout.strip()
        return sha + (" (with uncommitted changes)" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"


HEADLINES = {  # stage → (table, rows a reader needs first as a pandas query ("" = all), key figure)
    "01_data_stats": ("table1_counts", "", "fig2_song_occurrence"),
    "02_tag_detector": ("table6_paper_attributes", "", "detections_good"),
    "03_lyric_model": ("our_vs_paper", "", "training_curves"),
    "04_attention": ("table2_long", "split == 'dagger' and tags == 'obj-attr'", "fig6_examples"),
    "06_mrcca": ("best_consistency", "", "fig2a_consistency_vs_k"),
}


HEADLINE_PIVOT = {"04_attention": ("method", "metric")}  # long tables shown as rows × columns of 'ours (paper)'
HEADLINE_ROWS = 12
THUMB_WIDTH = 360


PROJECT = ("This repository reproduces two cross-modal music papers: Image2song (Li, Hu, Lu), which retrieves songs "
           "for a photo through the photo's object and attribute tags and a lyric model with tag attention, and "
           "MR-CCA, which matches music and images learned from music videos.",
           "The real data cannot be fetched here, so every notebook runs on an embedded, deterministically generated "
           "synthetic world with the real datasets' schemas and counts: its numbers are synthetic results, shown "
           "beside the papers' numbers and never in their place.",
           "Each card below is one notebook executed by <code>dvc repro</code>; open its full report for every "
           "table and figure, or explore the trained models in JupyterLab (<code>notebooks/explore.ipynb</code>).")


def headline(stage: str) -> tuple[pd.DataFrame, str, Path | None]:
    """A stage's headline table (rows a reader needs first), what its dropped constant columns held, and its key
    figure. A table named `headline` wins; else HEADLINES; else the stage's first table with a paper column. The
    key figure is that table drawn against the paper (<table>_vs_paper.png), else HEADLINES' figure, else the
    stage's first figure (in the order the notebook wrote them)."""
    tdir, fdir = paths.tables(stage), paths.figures(stage)
    table, query, figure = HEADLINES.get(stage, ("", "", ""))
    if (tdir / "headline.csv").exists():
        table, query = "headline", ""
    if not table or not (tdir / f"{table}.csv").exists():
        csvs = sorted(tdir.glob("*.csv"), key=lambda p: p.stat().st_mtime_ns)
        with_paper = [p for p in csvs if p.stat().st_size > 1 and any("paper" in c for c in pd.read_csv(p, nrows=0).columns)]
        table, query = (with_paper[0].stem if with_paper else ""), ""
    df = pd.read_csv(tdir / f"{table}.csv") if table else pd.DataFrame()
    if query:
        df = df.query(query)
    held = ""
    if len(df) > 1:  # a constant column (e.g. split == dagger) says more once, in the caption
        const = [c for c in df.columns if df[c].nunique(dropna=False) == 1]
        held = ", ".join(f"{c} = {df[c].iloc[0]}" for c in const)
        df = df.drop(columns=const)
    png = fdir / f"{table}_vs_paper.png"  # the headline table drawn (figures.beside_paper_figure)
    if not png.exists():
        png = fdir / f"{figure}.png"
    if not png.exists():
        pngs = sorted(fdir.glob("*.png"), key=lambda p: p.stat().st_mtime_ns)
        png = pngs[0] if pngs else None
    if stage in HEADLINE_PIVOT and not df.empty:
        df = _pivot(df, *HEADLINE_PIVOT[stage])
        held = ", ".join(x for x in (f"each cell: {df.attrs['ours']} (paper)", held) if x)
    return df.reset_index(drop=True), held, png


def _pivot(long: pd.DataFrame, rows: str, cols: str) -> pd.DataFrame:
    """A long table (one number per row, with a paper column) as rows × cols cells 'ours (paper)'."""
    ours = next(c for c in long.columns if str(c).startswith("ours"))
    cell = [f"{_cell(o)} ({_cell(p)})" for o, p in zip(long[ours], long["paper"])]
    wide = long.assign(cell=cell).pivot(index=rows, columns=cols, values="cell")
    wide = wide.reindex(index=list(dict.fromkeys(long[rows])), columns=list(dict.fromkeys(long[cols])))
    out = wide.reset_index().rename_axis(columns=None)
    out.attrs["ours"] = ours
    return out


def thumbnail_uri(png: Path, width: int = THUMB_WIDTH) -> str:
    """A small PNG of a figure as a data URI (the index stays one self-contained file)."""
    import base64
    import io

    from PIL import Image
    with Image.open(png) as im:
        im = im.convert("RGB")
        im.thumbnail((width, width * 3))
        buf = io.BytesIO()
        im.save(buf, "PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _cell(v) -> str:
    if isinstance(v, (float, np.floating)):
        if math.isnan(v):
            return ""
        return f"{v:,.0f}" if abs(v) >= 100 or v == int(v) else f"{v:.3f}".rstrip("0").rstrip(".")
    return html.escape(str(v))


def _table_html(df: pd.DataFrame, rows: int = HEADLINE_ROWS) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join("<tr>" + "".join(f"<td>{_cell(v)}</td>" for v in r) + "</tr>"
                   for r in df.head(rows).itertuples(index=False))
    return f"<table><tr>{head}</tr>{body}</table>"


def run_info(nb_path: Path) -> dict:
    """When and with which parameters papermill executed a notebook (from the executed notebook's metadata)."""
    import nbformat
    pm = nbformat.read(nb_path, as_version=4).metadata.get("papermill", {})
    end = pm.get("end_time")
    when = dt.datetime.fromisoformat(end).strftime("%Y-%m-%d %H:%M UTC") if end else "unknown"
    return {"executed": when, "minutes": (pm.get("duration") or math.nan) / 60, "parameters": dict(pm.get("parameters", {})),
            "exception": bool(pm.get("exception"))}


def _card(nb: Path) -> str:
    stage = nb.stem
    title, summary = notebook_summary(nb)
    page = nb.with_suffix(".html")
    link = (f'<a href="{html.escape(page.name)}">{html.escape(title)}</a>' if page.exists()
            else html.escape(title) + " (not rendered)")
    df, held, png = headline(stage)
    if df.empty:
        table = "<p class='m'>No table beside the paper in this stage.</p>"
    else:
        no_paper = "" if any("paper" in str(c) for c in df.columns) or "(paper)" in held else "<p class='m'>(this table has no paper column)</p>"
        more = f"<p class='m'>… {len(df) - HEADLINE_ROWS} more rows in the report</p>" if len(df) > HEADLINE_ROWS else ""
        table = (f"<p class='m'>headline table{': ' + html.escape(held) if held else ''}</p>"
                 f"{_table_html(df)}{more}{no_paper}")
    thumb = (f'<a href="{html.escape(page.name)}"><img class="t" src="{thumbnail_uri(png)}" '
             f'alt="{html.escape(png.stem)} ({html.escape(stage)})" title="{html.escape(png.stem)}"></a>') if png else ""
    info = run_info(nb)
    mfile = paths.metrics(stage)
    metrics = json.loads(mfile.read_text()) if mfile.exists() else {}
    shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in metrics.items())
    params = ", ".join(f"{k}={v!r}" for k, v in info["parameters"].items())
    failed = " · <b>the run raised an exception</b>" if info["exception"] else ""
    return (f"<li id='{html.escape(stage)}'><h2>{link}</h2><p>{html.escape(summary)}</p>"
            f"<div class='row'><div class='tab'>{table}</div>{thumb}</div>"
            f"<p class='m'>executed {info['executed']} ({info['minutes']:.1f} min){failed}</p>"
            f"<details><summary>parameters of this run</summary><p class='m'>{html.escape(params) or 'none'}</p></details>"
            f"<details><summary>all metrics</summary><p class='m'>{html.escape(shown)}</p></details></li>")


def write_index(reports_dir: Path | None = None) -> Path:
    """reports/index.html: the project in three sentences, then a card per rendered notebook (title, headline
    table beside the paper, key figure, link to the full report, its run's date and parameters), the commit."""
    reports_dir = reports_dir or paths.reports()
    nbs = sorted(reports_dir.glob("[0-9][0-9]_*.ipynb"))
    cards = [_card(nb) for nb in nbs]
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    runs = sorted(run_info(nb)["executed"] for nb in nbs)
    run = (f"<p class='m'>this run: notebooks executed {runs[0]} … {runs[-1]} · commit {html.escape(_git_commit())} · "
           "parameters: params.yaml (each card lists its notebook's)</p>") if runs else ""
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>image2song reproduction: reports</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}}
ul{{padding:0}} li{{list-style:none;border:1px solid #ddd;border-radius:6px;padding:.2em 1em .6em;margin:1em 0}}
h2{{font-size:1.2em}} .row{{display:flex;gap:1.2em;align-items:flex-start;flex-wrap:wrap}} .tab{{flex:1;min-width:380px}}
table{{border-collapse:collapse;font-size:.8em}} td,th{{border-bottom:1px solid #eee;padding:2px 6px;text-align:right}}
td:first-child,th:first-child{{text-align:left}} img.t{{max-width:{THUMB_WIDTH}px;border:1px solid #eee}}
.m{{color:#555;font-size:.85em;font-family:monospace}} details{{font-size:.9em}}</style></head><body>
<h1>Image2song and MR-CCA: a reproduction</h1>
{''.join(f'<p>{s}</p>' for s in PROJECT)}
{run}
<ul>{''.join(cards) or '<li>No rendered notebooks yet: run <code>make reproduce</code>.</li>'}</ul>
<p class="m">index generated {stamp} · commit {_git_commit()}</p></body></html>"""
    out = reports_dir / "index.html"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(body)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description="Write reports/index.html from the rendered notebooks.")
    ap.parse_args(argv)
    print(write_index())


if __name__ == "__main__":
    main()
