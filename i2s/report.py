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
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=paths.root(), check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_index(reports_dir: Path | None = None) -> Path:
    """reports/index.html: one link per rendered notebook with its one-line summary and metrics."""
    reports_dir = reports_dir or paths.reports()
    cards = []
    for nb in sorted(reports_dir.glob("[0-9][0-9]_*.ipynb")):
        title, summary = notebook_summary(nb)
        page = nb.with_suffix(".html")
        mfile = paths.metrics(nb.stem)
        metrics = json.loads(mfile.read_text()) if mfile.exists() else {}
        shown = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in list(metrics.items())[:8])
        link = f'<a href="{html.escape(page.name)}">{html.escape(title)}</a>' if page.exists() else html.escape(title) + " (not rendered)"
        cards.append(f"<li><h3>{link}</h3><p>{html.escape(summary)}</p>"
                     f"<p class='m'>{html.escape(shown)}</p></li>")
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    body = f"""<!doctype html><html><head><meta charset="utf-8"><title>image2song reproduction: reports</title>
<style>body{{font-family:system-ui,sans-serif;max-width:920px;margin:2em auto;padding:0 1em;color:#222}}
li{{list-style:none;border:1px solid #ddd;border-radius:6px;padding:.2em 1em;margin:.8em 0}}
.m{{color:#555;font-size:.85em;font-family:monospace}}</style></head><body>
<h1>Image2song and MR-CCA: a reproduction</h1>
<p>Each notebook below was executed by <code>dvc repro</code> (papermill) and rendered to HTML.
Unless a report says otherwise, its numbers come from the embedded <b>synthetic</b> world, shown next to the
papers' numbers; they are not the papers' results.</p>
<ul>{''.join(cards) or '<li>No rendered notebooks yet: run <code>make reproduce</code>.</li>'}</ul>
<p class="m">generated {stamp} · commit {_git_commit()}</p></body></html>"""
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
