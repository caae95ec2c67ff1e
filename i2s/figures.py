"""Every figure of the notebooks, and saving a figure where `dvc plots` finds it."""
from __future__ import annotations

import math

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from . import imagefiles, paths

if TYPE_CHECKING:
    import torch

sns.set_theme(style="whitegrid", context="notebook")


def attention_text(words: list[str], weights: np.ndarray, per_line: int = 12, title: str = "", ax=None):
    """A lyric's words shaded by their attention weight relative to uniform (n·s_t): red above, blue below.

    The colour scale stretches to the largest deviation, so near-uniform attention still shows its pattern;
    the title states the range."""
    import matplotlib.pyplot as plt
    lines = -(-len(words) // per_line)
    ax = ax or plt.subplots(figsize=(11, 0.32 * lines + 0.9))[1]
    ax.set_axis_off()
    rel = np.asarray(weights, float) * len(weights)
    log = np.log2(np.maximum(rel, 1e-12))
    span = max(float(np.abs(log).max()), 1e-3)
    for k, (word, x) in enumerate(zip(words, log)):
        c = 0.5 + 0.5 * x / span
        ax.text((k % per_line) / per_line, 1 - (k // per_line + 0.5) / lines, word, fontsize=8, va="center",
                transform=ax.transAxes, bbox=dict(fc=plt.cm.RdBu_r(c), ec="none", pad=1.2),
                color="white" if abs(c - 0.5) > 0.35 else "black")
    ax.set_title(f"{title}\nweight / uniform weight: {rel.min():.2f} (blue) … {rel.max():.2f} (red)", fontsize=9)
    return ax


def retrieval_examples(queries: list[dict], per_row: int = 1, size: float = 2.2, title: str = ""):
    """Figure 6: each image query with its predicted tags and its top-3 songs, the true song marked ▲."""
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(queries), 2, figsize=(2 * size + 4.5, len(queries) * size),
                             gridspec_kw={"width_ratios": [1, 2]}, squeeze=False)
    for row, q in zip(axes, queries):
        row[0].imshow(imagefiles.read_image(q["image_path"]))
        row[0].set_axis_off()
        row[1].set_axis_off()
        lines = [f"objects: {q['obj']}", f"attributes: {q['attr']}", "", "top-3 songs:"]
        lines += [f"{'▲ ' if hit else '   '}{k + 1}. {name}" for k, (name, hit) in enumerate(q["top3"])]
        lines += ["", f"true song: {q['true']}"]
        row[1].text(0, 0.5, "\n".join(lines), va="center", fontsize=8, family="DejaVu Sans",
                    transform=row[1].transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def per_song_bars(table: pd.DataFrame, columns: list[str], title: str = "", ylabel: str = "R@3 (%)"):
    """Figures 7-8: one group of bars per song (rows of `table`, labelled by its index) for each column."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(8, 0.42 * len(table)), 3.8))
    width = 0.8 / len(columns)
    x = np.arange(len(table))
    for k, c in enumerate(columns):
        ax.bar(x + (k - (len(columns) - 1) / 2) * width, table[c].to_numpy(), width, label=c)
    ax.set_xticks(x)
    ax.set_xticklabels(table.index, rotation=75, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def lyric_training_curves(histories: dict[str, pd.DataFrame], title: str = ""):
    """Left: training (solid) and validation (dashed) loss per epoch; right: the early-stopping criterion
    (validation mean rank, % of the pool; 50 = chance). One colour per run, the kept epoch marked."""
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.6))
    for k, (name, h) in enumerate(histories.items()):
        c, b = f"C{k}", h[h["best"]]
        ax.plot(h["epoch"], h["train_loss"], color=c, label=f"{name} train")
        ax.plot(h["epoch"], h["val_loss"], color=c, ls="--", label=f"{name} validation")
        bx.plot(h["epoch"], h["val_mean_rank_pct"], color=c, marker="o", ms=3, label=name)
        bx.plot(b["epoch"], b["val_mean_rank_pct"], "*", ms=12, color=c)
    bx.axhline(50, color="grey", ls=":", label="chance")
    ax.set(xlabel="epoch", ylabel="loss", title="loss")
    bx.set(xlabel="epoch", ylabel="validation mean rank (% of pool)", title="early-stopping criterion (★ kept)")
    ax.legend(fontsize=7)
    bx.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def song2image_examples(queries: list[dict], size: float = 1.8, title: str = ""):
    """Figure 9: each lyric query (title and first words) with its top images, the song's own images outlined red."""
    import textwrap

    import matplotlib.pyplot as plt
    top = max(len(q["images"]) for q in queries)
    fig, axes = plt.subplots(len(queries), top + 1, figsize=(size * (top + 1.6), size * len(queries)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6] + [1] * top})
    for row, q in zip(axes, queries):
        for ax in row:
            ax.set_axis_off()
        row[0].text(0, 0.5, f"{q['title']}\n\n" + textwrap.fill(q["words"], 28), va="center", fontsize=8,
                    transform=row[0].transAxes)
        for k, (file, own) in enumerate(q["images"]):
            ax = row[k + 1]
            if file:
                ax.imshow(imagefiles.read_image(file))
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set(color="red" if own else "lightgrey", linewidth=3 if own else 0.8)
            ax.set_title(f"{k + 1}", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def beside_paper_bars(long: pd.DataFrame, ours_label: str, title: str = "", chance: dict | None = None):
    """One panel per metric: ours (mean ± std over seeds) beside the paper's value for each row of a
    `beside_paper` table (method, and tags when there are several); `chance`: metric → random ranking's value
    (a dotted line)."""
    import matplotlib.pyplot as plt
    long = long.reset_index(drop=True)
    names = list(dict.fromkeys(long["metric"]))
    several = long["tags"].nunique() > 1
    label = long["method"] + (" / " + long["tags"] if several else "")
    rows = list(dict.fromkeys(label))
    fig, axes = plt.subplots(1, len(names), figsize=(max(8, 2.2 * len(names) + 0.25 * len(rows)), 3.8), squeeze=False)
    x = np.arange(len(rows))
    for ax, name in zip(axes[0], names):
        sub = long[long["metric"] == name].assign(label=label).set_index("label").reindex(rows)
        ax.bar(x - 0.2, sub[ours_label], 0.4, yerr=sub["std"], capsize=2, label=ours_label)
        ax.bar(x + 0.2, sub["paper"], 0.4, label="paper")
        ax.set_xticks(x)
        ax.set_xticklabels(rows, rotation=75, ha="right", fontsize=7)
        ax.set_title(name)
        if chance and name in chance:
            ax.axhline(chance[name], color="grey", ls=":", label="random ranking")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def draw_detections(ax, image: torch.Tensor, pred: dict, objects: list[str], attributes: list[str],
                    score: float, n_attributes: int = 2, truth: dict | None = None, title: str = ""):
    """An image with its detections scored ≥ `score` (e.g. detector.CONFIDENT): box, object label, top attributes and
    score (ground truth dashed)."""
    ax.imshow(image.permute(1, 2, 0).numpy())
    ax.set_axis_off()
    if truth is not None:
        for b in truth["boxes"].tolist():
            ax.add_patch(_rect(b, "white", "--", 0.8))
    keep = pred["scores"] >= score
    for b, lab, sc, att in zip(pred["boxes"][keep].tolist(), pred["labels"][keep].tolist(),
                               pred["scores"][keep].tolist(), pred["attributes"][keep]):
        top = [attributes[j] for j in att.argsort(descending=True)[:n_attributes].tolist() if att[j] >= 0.5]
        ax.add_patch(_rect(b, "#ff2d55", "-", 1.3))
        ax.text(b[0], b[1], f"{objects[lab - 1]} {sc:.2f}" + (f"\n{', '.join(top)}" if top else ""), fontsize=6,
                va="bottom", color="white", bbox=dict(fc="#ff2d55", ec="none", alpha=0.75, pad=0.6))
    ax.set_title(title, fontsize=7)
    return ax


def _rect(b, colour, style, lw):
    import matplotlib.patches as mpatches
    return mpatches.Rectangle((b[0], b[1]), b[2] - b[0], b[3] - b[1], fill=False, ec=colour, ls=style, lw=lw)


def detection_grid(images: list[torch.Tensor], preds: list[dict], titles: list[str], objects: list[str],
                   attributes: list[str], score: float, truths: list[dict] | None = None, per_row: int = 4,
                   size: float = 2.6, title: str = ""):
    """A grid of `draw_detections` panels (detections scored ≥ `score`)."""
    import matplotlib.pyplot as plt
    rows = math.ceil(len(images) / per_row)
    fig, axes = plt.subplots(rows, per_row, figsize=(per_row * size, rows * size), squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for k, (im, p, t) in enumerate(zip(images, preds, titles)):
        draw_detections(axes.flat[k], im, p, objects, attributes, score, truth=truths[k] if truths else None, title=t)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def detector_training_curves(histories: dict[str, pd.DataFrame], smooth: int = 20):
    """Loss components per iteration (rolling mean), one line per training run."""
    import matplotlib.pyplot as plt
    keys = ["loss", "loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg", "loss_attribute"]
    fig, axes = plt.subplots(2, 3, figsize=(12, 5.5), sharex=True)
    for ax, k in zip(axes.flat, keys):
        for name, h in histories.items():
            ax.plot(h["iteration"], h[k].rolling(smooth, min_periods=1).mean(), label=name)
        ax.set_title(k, fontsize=10)
        ax.set_yscale("log")
    axes[0, 0].legend(fontsize=8)
    for ax in axes[1]:
        ax.set_xlabel("iteration")
    fig.tight_layout()
    return fig


def attribute_profile(mean_probs: pd.Series, highlight: int = 9, title: str = ""):
    """Supplement Fig. 13: the average probability of every attribute, sorted, the top ones named."""
    import matplotlib.pyplot as plt
    s = mean_probs.sort_values(ascending=False)
    fig, ax = plt.subplots(figsize=(12, 3.6))
    ax.bar(range(len(s)), s.to_numpy(), color=["#C44E52" if i < highlight else "#4C72B0" for i in range(len(s))])
    ax.set_xticks(range(len(s)))
    ax.set_xticklabels(s.index, rotation=90, fontsize=7)
    ax.set_ylabel("average probability")
    ax.set_title(title)
    return fig


def savefig(fig, stage: str, name: str):
    """Save a figure as PNG under figures/<stage>/ (what `dvc plots show` collects) and, when it draws labelled
    lines, their data as data/<stage>/plots/<name>.csv (`figure_data`; dvc.yaml draws some of them interactively)."""
    out = paths.figures(stage)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / f"{name}.png", dpi=110, bbox_inches="tight")
    data = figure_data(fig)
    if not data.empty:
        plot_data_file(stage, name).parent.mkdir(parents=True, exist_ok=True)
        data.to_csv(plot_data_file(stage, name), index=False)
    return fig


def plot_data_file(stage: str, name: str):
    """Where `savefig` writes the data of a figure's lines (outside figures/, whose images `dvc plots` shows as is)."""
    return paths.data(stage) / "plots" / f"{name}.csv"


def figure_data(fig) -> pd.DataFrame:
    """The data a figure draws as lines, one row per point: panel (the axes' title), series (the legend label),
    x, y, and yerr for error-bar series (else empty). Unlabelled lines (guides such as y = x) are left out."""
    from matplotlib.container import ErrorbarContainer
    rows = []
    for k, ax in enumerate(fig.axes):
        panel = ax.get_title() or ax.get_ylabel() or f"panel {k + 1}"
        series = [(ln.get_label(), ln.get_xdata(), ln.get_ydata(), None) for ln in ax.get_lines()
                  if not ln.get_label().startswith("_") and ln.get_transform() is ax.transData]
        for c in ax.containers:
            if isinstance(c, ErrorbarContainer) and not str(c.get_label()).startswith("_"):
                line, _, bars = c.lines
                # a bar per point with a finite error (NaN errors, e.g. one seed, draw no segment): keyed by its x
                err = {float(s[0][0]): abs(s[1][1] - s[0][1]) / 2 for s in bars[0].get_segments()
                       if len(s) == 2} if bars else {}
                series.append((c.get_label(), line.get_xdata(), line.get_ydata(), err))
        for label, xs, ys, err in series:
            for x, y in zip(np.asarray(xs, float), np.asarray(ys, float)):
                rows.append({"panel": panel, "series": label, "x": x, "y": y,
                             "yerr": (err or {}).get(float(x), np.nan)})
    return pd.DataFrame(rows, columns=["panel", "series", "x", "y", "yerr"])


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
    fig, axes = plt.subplots(len(groups), per_row, figsize=(per_row * size + 1.2, len(groups) * size), squeeze=False)
    for r, (name, files) in enumerate(groups.items()):
        for c in range(per_row):
            ax = axes[r, c]
            ax.set_axis_off()
            if c < len(files):
                ax.imshow(imagefiles.read_image(files[c]))
        axes[r, 0].text(-0.08, 0.5, name, transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=9)
    fig.suptitle(title, y=1 - 0.1 / len(groups))
    fig.subplots_adjust(wspace=0.04, hspace=0.06, left=0.12, top=1 - 0.35 / len(groups))
    return fig


def length_histogram(lengths: pd.DataFrame, max_tokens: int = 0, title: str = ""):
    """Histograms of each column of a length table (words per lyric), the `max_tokens` cut marked when set."""
    ax = lengths.plot.hist(bins=40, alpha=0.6, figsize=(7, 3.4), title=title)
    ax.set_xlabel("words")
    if max_tokens:
        ax.axvline(max_tokens, color="k", ls="--", label=f"max_tokens = {max_tokens}")
        ax.legend()
    return ax.figure


def _ours_column(table: pd.DataFrame) -> str:
    return next(c for c in table.columns if str(c).startswith("ours"))


def _cell_labels(table: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    """Each cell's label, colour group and marker group: method (and tags) of a long table, else its first column."""
    if "method" not in table.columns:
        label = table.iloc[:, 0].astype(str)
        return label, label, pd.Series([""] * len(table), index=table.index)
    tags = table["tags"].astype(str) if "tags" in table.columns else pd.Series("", index=table.index)
    several = tags.nunique() > 1
    return table["method"].astype(str) + (" / " + tags if several else ""), table["method"].astype(str), tags


def beside_paper_chart(table: pd.DataFrame, title: str = "", per_row: int = 4, annotate: int = 25):
    """Ours against the paper's for every cell of a table beside the paper (a `tables.beside_paper` long table or a
    `tables.compare` one): a panel per metric (and split), a point per cell with ± std over seeds, and the y = x line
    where the two agree; cells the paper has no value for are counted in the panel's title."""
    t = table.reset_index(drop=True)
    ours = _ours_column(t)
    label, colour, marker = _cell_labels(t)
    keys = [c for c in ("split", "metric") if c in t.columns and t[c].nunique() > 0]
    panel = t[keys].astype(str).agg(" · ".join, axis=1) if keys else pd.Series([""] * len(t))
    names = list(dict.fromkeys(panel))
    colours = {m: f"C{i % 10}" for i, m in enumerate(dict.fromkeys(colour))}
    markers = {g: "osD^v<>ph*"[i % 10] for i, g in enumerate(dict.fromkeys(marker))}
    cols = min(per_row, len(names))
    rows = -(-len(names) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(max(5.5, 3.6 * cols + 0.4), 3.4 * rows + 0.8), squeeze=False)
    for ax in axes.flat[len(names):]:
        ax.set_axis_off()
    std = t["std"] if "std" in t.columns else pd.Series(0.0, index=t.index)
    for ax, name in zip(axes.flat, names):
        cell = (panel == name) & t[ours].notna()
        have = cell & t["paper"].notna()
        x, y, e = t.loc[have, "paper"].astype(float), t.loc[have, ours].astype(float), std[have].fillna(0).astype(float)
        for i in x.index:
            ax.errorbar(x[i], y[i], yerr=e[i], fmt=markers[marker[i]], color=colours[colour[i]], ms=5, capsize=2)
        if len(x) <= annotate and colour.nunique() == len(t):  # few single cells: name each point
            for i in x.index:
                ax.annotate(label[i], (x[i], y[i]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        lo, hi = (min(x.min(), (y - e).min()), max(x.max(), (y + e).max())) if len(x) else (0.0, 1.0)
        log = len(x) > 1 and lo > 0 and hi / lo > 30
        if log:
            ax.set(xscale="log", yscale="log")
            for axis in (ax.xaxis, ax.yaxis):  # decade labels only: minor ones overlap on narrow panels
                axis.set_minor_formatter(plt.NullFormatter())
        pad = (hi / lo) ** 0.05 if log else 0.05 * (hi - lo or 1.0)
        lims = (lo / pad, hi * pad) if log else (lo - pad, hi + pad)
        ax.plot(lims, lims, color="grey", ls="--", lw=0.8)  # y = x: ours equals the paper's
        ax.set(xlim=lims, ylim=lims, xlabel="paper", ylabel="ours")
        silent = int((cell & t["paper"].isna()).sum())
        ax.set_title(name + (f"\n({silent} cell{'s' * (silent > 1)} without a paper value)" if silent else ""), fontsize=9)
        if not len(x):
            ax.text(0.5, 0.5, "the paper has no value here", ha="center", va="center", transform=ax.transAxes)
    handles = [plt.Line2D([], [], color=c, marker="o", ls="", label=m) for m, c in colours.items()] if colour.nunique() < len(t) else []
    handles += [plt.Line2D([], [], color="k", marker=mk, ls="", label=g) for g, mk in markers.items() if g] if len(markers) > 1 else []
    handles.append(plt.Line2D([], [], color="grey", ls="--", label="y = x (ours = paper)"))
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=7, frameon=False)
    fig.suptitle(title or f"{ours} against the paper (± std over seeds)", fontsize=10)
    fig.tight_layout(rect=(0, 0.07 + 0.02 * (len(handles) > 6), 1, 1))
    return fig


def beside_paper_figure(stage: str, table: str, title: str = ""):
    """A stage's saved table beside the paper (data/<stage>/tables/<table>.csv) drawn by `beside_paper_chart` and
    saved as figures/<stage>/<table>_vs_paper.png, the picture the reports index shows beside that table."""
    fig = beside_paper_chart(pd.read_csv(paths.tables(stage) / f"{table}.csv"), title)
    return savefig(fig, stage, f"{table}_vs_paper")
