"""Tables beside the paper's numbers, metrics, figures, and the reports index."""
from __future__ import annotations

import argparse
import datetime as dt
import html
import json
import math
import subprocess
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import paths

sns.set_theme(style="whitegrid", context="notebook")

# metrics keys of notebook 01 → the fact in paper_facts.csv that states the same quantity
PAPER_FACT_OF = {
    "raw_rows": "Shuttersong raw image-song pairs collected",
    "triplets": "triplets after removing abnormal lyrics",
    "songs": "distinct songs",
    "moods": "triplets with a mood",
    "favorite_min": "favorite count min",
    "favorite_max": "favorite count max",
    "songs_lt5": "songs appearing fewer than 5 times",
    "triplets_lt5": "triplets of songs appearing fewer than 5 times",
    "songs_ge5": "songs appearing at least 5 times",
    "triplets_ge5": "triplets of songs appearing at least 5 times",
    "songs_gt50": "songs appearing more than 50 times",
    "triplets_fav_ge3": "triplets with at least 3 favorites",
    "triplets_fav_ge10": "triplets with at least 10 favorites",
    # the MR-CCA paper's music-video data
    "videos": "music videos",
    "segments": "music segments",
    "pairs": "music-image pairs",
    "train_segments": "training segments",
    "prefer_mv_rate_pct": "labelers prefer the MV pair over a random one (%)",
    "music_dim": "music feature dimension",
    "image_dim": "image feature dimension",
}


def paper_facts() -> pd.DataFrame:
    """Dataset statistics and settings stated in the papers (source, fact, value)."""
    return pd.read_csv(paths.PAPER_TABLES / "paper_facts.csv")


def paper_results() -> pd.DataFrame:
    """Every result number the papers publish (source, table, split, method, tags, metric, value)."""
    return pd.read_csv(paths.PAPER_TABLES / "paper_results.csv")


def paper_fact(name: str) -> float:
    """One fact's value by its exact name in paper_facts.csv."""
    f = paper_facts()
    hit = f.loc[f["fact"] == name, "value"]
    if hit.empty:
        raise KeyError(f"no fact {name!r} in paper_facts.csv")
    return float(hit.iloc[0])


def compare(ours: dict, paper: dict, ours_label: str = "ours") -> pd.DataFrame:
    """Side-by-side table: quantity, ours, paper, difference (ours − paper); paper NaN where it is silent."""
    rows = []
    for k, v in ours.items():
        p = paper.get(k, math.nan)
        rows.append({"quantity": k, ours_label: v, "paper": p,
                     "difference": (v - p) if not (p is None or (isinstance(p, float) and math.isnan(p))) else math.nan})
    return pd.DataFrame(rows)


def compare_facts(ours: dict, ours_label: str = "ours") -> pd.DataFrame:
    """`compare` against paper_facts.csv through PAPER_FACT_OF."""
    facts = paper_facts().set_index("fact")["value"]
    paper = {k: float(facts[PAPER_FACT_OF[k]]) for k in ours if k in PAPER_FACT_OF}
    return compare(ours, paper, ours_label)


def source_label(synthetic: bool) -> str:
    """Column name for our numbers, so a synthetic result is never mistaken for a real one."""
    return "ours (synthetic world)" if synthetic else "ours (real data)"


def save_table(df: pd.DataFrame, stage: str, name: str) -> pd.DataFrame:
    """Write a table as CSV and Markdown under data/<stage>/tables/; returns it for display."""
    out = paths.tables(stage)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(df.to_markdown(index=False, floatfmt=".6g") + "\n")
    return df


def save_metrics(stage: str, metrics: dict) -> dict:
    """Write the flat metrics JSON of a stage (numbers only, for `dvc metrics show`)."""
    flat = {}
    for k, v in metrics.items():
        if isinstance(v, (np.integer, np.floating)):
            v = v.item()
        if not isinstance(v, (int, float, bool)):
            raise TypeError(f"metric {k!r} is {type(v).__name__}; metrics must be flat numbers")
        flat[k] = v
    p = paths.metrics(stage)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(flat, indent=1, sort_keys=True) + "\n")
    return flat


def savefig(fig, stage: str, name: str):
    """Save a figure as PNG under figures/<stage>/ (what `dvc plots show` collects)."""
    out = paths.figures(stage)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    return fig


# ---- figures of notebook 01 --------------------------------------------------------------------
def bar_with_counts(df: pd.DataFrame, x: str, y: str, note: str | None = None, title: str = "", ax=None):
    """Bars of `y` per `x`, each annotated with its count (and `note` column, e.g. triplets)."""
    ax = ax or plt.subplots(figsize=(8, 3.6))[1]
    sns.barplot(data=df, x=x, y=y, ax=ax, color="#4C72B0")
    for i, r in df.reset_index(drop=True).iterrows():
        label = f"{int(r[y]):,}" + (f"\n({int(r[note]):,} triplets)" if note else "")
        ax.annotate(label, (i, r[y]), ha="center", va="bottom", fontsize=8)
    ax.set_title(title)
    ax.set_ylim(0, df[y].max() * 1.25)
    return ax


def mean_std_lines(df: pd.DataFrame, x: str, columns: list[str], title: str = "", ylabel: str = "", ax=None):
    """Mean ± std over repeats of each column against x, as lines with error bars (Fig. 2 of MR-CCA)."""
    ax = ax or plt.subplots(figsize=(6.5, 3.8))[1]
    agg = df.groupby(x)[columns].agg(["mean", "std"])
    for c in columns:
        ax.errorbar(agg.index, agg[(c, "mean")], yerr=agg[(c, "std")], marker="o", ms=3, capsize=2, label=c)
    ax.set_xlabel(x)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    return ax


def flow_chart(steps: list[tuple[str, int]], removed: list[tuple[str, int]], title: str = ""):
    """Supplement Fig. 11 as a chart: the main flow left to right, removals hanging below each step."""
    fig, ax = plt.subplots(figsize=(11, 3.8))
    ax.set_axis_off()
    n = len(steps)
    for i, (label, count) in enumerate(steps):
        ax.add_patch(plt.Rectangle((i * 3, 2), 2.4, 1.2, fc="#DCE9F5", ec="#4C72B0"))
        ax.text(i * 3 + 1.2, 2.6, f"{label}\n{count:,}", ha="center", va="center", fontsize=9)
        if i < n - 1:
            ax.annotate("", (i * 3 + 3, 2.6), (i * 3 + 2.4, 2.6), arrowprops=dict(arrowstyle="->"))
    for i, (label, count) in enumerate(removed):
        ax.add_patch(plt.Rectangle((i * 3 + 1.5, 0), 2.4, 1.1, fc="#F8E0DC", ec="#C44E52"))
        ax.text(i * 3 + 2.7, 0.55, f"{label}\n−{count:,}", ha="center", va="center", fontsize=8)
        ax.annotate("", (i * 3 + 2.7, 1.1), (i * 3 + 2.4, 2.0), arrowprops=dict(arrowstyle="->", color="#C44E52"))
    ax.set_xlim(-0.2, n * 3)
    ax.set_ylim(-0.2, 3.4)
    ax.set_title(title)
    return fig


def image_grid(groups: dict[str, list[str]], per_row: int = 6, size: float = 1.3, title: str = ""):
    """A grid of image files, one row per group (e.g. per theme), the group name on the left."""
    from PIL import Image
    fig, axes = plt.subplots(len(groups), per_row, figsize=(per_row * size + 1.2, len(groups) * size), squeeze=False)
    for r, (name, files) in enumerate(groups.items()):
        for c in range(per_row):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(files):
                with Image.open(files[c]) as im:
                    ax.imshow(im.convert("RGB"))
        axes[r, 0].text(-0.08, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=9)
    fig.suptitle(title, y=1 - 0.1 / len(groups))
    fig.subplots_adjust(wspace=0.04, hspace=0.06, left=0.12, top=1 - 0.35 / len(groups))
    return fig


# ---- reports index ---------------------------------------------------------------------------------
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
    figure. A table named `headline` wins; else HEADLINES; else the stage's first table with a paper column and
    its first figure (in the order the notebook wrote them)."""
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
    ap = argparse.ArgumentParser(description="Report helpers.")
    ap.add_argument("what", choices=["index"])
    a = ap.parse_args(argv)
    if a.what == "index":
        print(write_index())


if __name__ == "__main__":
    main()
