"""The papers' tables and figures, one function each: our runs beside the published numbers.

Every function takes what a stage computed (run tables, ranks, counts) and returns the table a notebook shows;
the published numbers come from i2s.paper. Nothing here trains or reads a stage artefact, so each table is
tested on small inputs (tests/test_experiments.py).
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from . import metrics, paper, tables

# ---- image2song: Table 2 and Section 5.2's findings ---------------------------------------------------------------
TABLE2 = "image2song Table 2"
SPLITS = tuple(metrics.SPLIT_METRICS)        # dagger (†), section (§)
# our second readings of a published method stand beside its one published number
PAPER_ROW = {"Our-attention-linear": "Our-attention"}


def _paper_order(table: str, column: str) -> list:
    return list(dict.fromkeys(paper.results(table)[column]))


def table2(runs: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """Table 2 in long form, both splits stacked (split, method, tags, metric, ours mean and std over seeds, paper,
    difference); rows in the paper's order, methods the paper does not have after its own."""
    order = {"method": _paper_order(TABLE2, "method"), "group": _paper_order(TABLE2, "tags")}
    return pd.concat([tables.beside_paper(runs, TABLE2, metrics.SPLIT_METRICS[s], ours_label, split=s, order=order,
                                          paper_row=PAPER_ROW).assign(split=s)
                      for s in SPLITS if (runs["split"] == s).any()], ignore_index=True)


def table2_wide(long: pd.DataFrame, split: str, ours_label: str) -> pd.DataFrame:
    """Table 2's layout for one split: a row per method, per tag group and metric 'ours ± std (paper)'."""
    return tables.beside_paper_wide(long[long["split"] == split], ours_label)


def table2_differences(long: pd.DataFrame) -> pd.DataFrame:
    """Ours − paper for every cell of Table 2 (split and method × tags and metric)."""
    return long.pivot_table(index=["split", "method"], columns=["tags", "metric"], values="difference", sort=False)


CLAIMS = (  # Section 5.2's findings as comparisons between cells of Table 2: (key, finding, axis, better, worse)
    ("attention_helps", "Our-attention beats Our (attention helps)", "method", "Our-attention", "Our"),
    ("attention_linear_helps", "Our-attention-linear beats Our (attention helps, the linear reading of Eq. 10)",
     "method", "Our-attention-linear", "Our"),
    ("final_beats_pooling", "Our-attention beats Attentive-Reader (final output, not attentive pooling)",
     "method", "Our-attention", "Attentive-Reader"),
    ("lstm_beats_conse", "Our beats CONSE (the LSTM beats pooled word vectors)", "method", "Our", "CONSE"),
    ("lstm_beats_bow", "Our beats BoW (the LSTM beats the bag of words)", "method", "Our", "BoW"),
    ("obj_beats_attr", "object tags beat attribute tags", "tags", "obj", "attr"),
    ("objattr_beats_obj", "obj-attr tags beat object tags", "tags", "obj-attr", "obj"),
)


def findings(long: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """For each finding of Section 5.2, in how many comparable cells of Table 2 it holds, ours and the paper's (a
    cell holds when the better side has the higher R@K or the lower Med r; equal values do not hold)."""
    rows = []
    for key, claim, axis, good, bad in CLAIMS:
        a = tables.agreement(long, ours_label, good, bad, axis)
        rows.append({"key": key, "finding": claim, "cells": a["cells"], "holds (ours)": a["ours"],
                     "holds (paper)": a["paper"]})
    return pd.DataFrame(rows)


def query_ranks(results: list[dict], method: str, group: str, split: str, part: str = "test") -> np.ndarray:
    """Seeds × queries ranks of one configuration (queries in a fixed order, for paired comparisons)."""
    rs = sorted((r for r in results if (r["method"], r["group"], r["split"]) == (method, group, split)),
                key=lambda r: r["seed"])
    if not rs:
        raise ValueError(f"no runs of {method} / {group} / {split}")
    if any(not np.array_equal(r[part]["images"], rs[0][part]["images"]) for r in rs):
        raise ValueError("seeds must share their queries")
    return np.stack([r[part]["ranks"] for r in rs])


def paired_bootstrap_table(results: list[dict], a: str, b: str, samples: int, seed: int) -> pd.DataFrame:
    """Paired bootstrap over test queries of a − b for every split, tag group and Table 2 metric that both ran."""
    rows = []
    for split in SPLITS:
        for group in dict.fromkeys(r["group"] for r in results):
            try:
                ra, rb = query_ranks(results, a, group, split), query_ranks(results, b, group, split)
            except ValueError:  # a configuration that was not run
                continue
            for name in metrics.SPLIT_METRICS[split]:
                rows.append({"split": split, "tags": group, "metric": name,
                             **metrics.paired_bootstrap(ra, rb, name, samples, seed)})
    return pd.DataFrame(rows)


def significant_cells(boot: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """The bootstrap table with `better` / `worse`: the difference is outside query noise at a two-sided `level`."""
    tail = (1 - level) / 2
    return boot.assign(better=boot["p_not_better"] < tail, worse=boot["p_not_better"] > 1 - tail)


def our_vs_paper(test: pd.DataFrame, split: str, group: str, ours_label: str) -> pd.DataFrame:
    """Our's test metrics (a row per seed) beside its Table 2 cell (notebook 03)."""
    names = metrics.SPLIT_METRICS[split]
    published = {m: paper.result(TABLE2, m, "Our", group, split) for m in names}
    return tables.compare({m: float(test[m].mean()) for m in names}, published, ours_label)


def per_song_recall(results: list[dict], image_song: np.ndarray, songs: list[str], method: str, group: str,
                    split: str, part: str, k: int = 3) -> pd.Series:
    """Figures 7-8: R@k per song over its query images in `part`, averaged over seeds; index = song id."""
    rs = [r for r in results if (r["method"], r["group"], r["split"]) == (method, group, split)]
    per_seed = [metrics.per_item_recall(r[part]["ranks"], image_song[r[part]["images"]], k) for r in rs]
    out = pd.concat(per_seed, axis=1).mean(axis=1)
    out.index = [songs[i] for i in out.index]
    return out


def example_queries(result: dict, image_song: np.ndarray, images: list[str], songs: list[str], subset: pd.DataFrame,
                    tag_table: pd.DataFrame, n: int = 4) -> list[dict]:
    """Figure 6's rows: n test queries of one run (half where the true song is in the top 3, if there are any),
    with their predicted object and attribute tags and the titles of the top-3 songs."""
    part = result["test"]
    hit = np.array([image_song[i] in top for i, top in zip(part["images"], part["top3"])])
    order = (list(np.flatnonzero(hit)[: (n + 1) // 2]) + list(np.flatnonzero(~hit)))[:n]
    title = subset.drop_duplicates("song_id").set_index("song_id")["title"]
    t = tag_table.set_index("image")
    path = subset.set_index("image")["image_path"]
    rows = []
    for q in order:
        im = int(part["images"][q])
        true = int(image_song[im])
        rows.append({"image_path": path[images[im]], "obj": t.loc[images[im], "top_obj"],
                     "attr": t.loc[images[im], "top_attr"], "true": title[songs[true]],
                     "top3": [(title[songs[s]], s == true) for s in part["top3"][q]]})
    return rows


# ---- song2image: Table 3 ----------------------------------------------------------------------------------------
TABLE3 = "image2song Table 3"
TABLE3_METRICS = ("R@1", "R@5", "R@10", "R@20", "Med r")


def table3(runs: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """Table 3 in long form (the paper prints R@K as fractions: shown ×100, in percent like ours)."""
    return tables.beside_paper(runs, TABLE3, TABLE3_METRICS, ours_label, recall_scale=100)


# ---- the supplement: Tables 1, 2 and 4 (mood, pooling, losses) ---------------------------------------------------
SUPPLEMENT_TABLES = {  # our name: the paper's table and its metrics
    "mood": ("supplement Table 1 (mood)", ("R@1", "R@5", "R@10", "Med r")),
    "pooling": ("supplement Table 2 (pooling)", ("R@1", "R@3", "R@5", "R@10", "Med r")),
    "loss": ("supplement Table 4 (loss)", ("R@1", "R@3", "R@5", "R@10", "Med r")),
}
SUPPLEMENT_METRICS = metrics.SUPPLEMENT_METRICS
LOSS_LABEL = {"mse": "MSE", "cpl": "CPL", "mrl": "MRL", "infonce": "InfoNCE"}
LOSS_ORDER = ("MRL", "CPL", "MSE", "InfoNCE")  # the paper's rows, then ours


def _supplement(runs: pd.DataFrame, which: str, ours_label: str, order: dict | None = None) -> pd.DataFrame:
    table, names = SUPPLEMENT_TABLES[which]
    return tables.beside_paper(runs, table, names, ours_label, order=order, paper_row=PAPER_ROW)


def supplement_table1(runs: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """Supplement Table 1: Our-mood beside the methods of Table 2 (variants paper_methods and mood), in the paper's
    order, our second readings after it."""
    rows = runs[runs["variant"].isin(["paper_methods", "mood"])]
    order = {"method": _paper_order(SUPPLEMENT_TABLES["mood"][0], "method"),
             "group": _paper_order(SUPPLEMENT_TABLES["mood"][0], "tags")}
    return _supplement(rows, "mood", ours_label, order)


def _attention_rows(runs: pd.DataFrame, variants: list[str]) -> pd.DataFrame:
    return runs[(runs["method"] == "Our-attention") & (runs["group"] == "obj-attr") & runs["variant"].isin(variants)]


def supplement_table2(runs: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """Supplement Table 2: Our-attention with average against max pooling of the tag matrix (obj-attr tags)."""
    rows = _attention_rows(runs, ["paper_methods", "max_pooling"])
    label = np.where(rows["pooling"] == "mean", "Our-attention average pooling", "Our-attention max pooling")
    return _supplement(rows.assign(method=label), "pooling", ours_label)


def supplement_table4(runs: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """Supplement Table 4: Our-attention trained with each loss (MSE, CPL, MRL; InfoNCE beyond the paper)."""
    rows = _attention_rows(runs, ["paper_methods", "cpl", "mrl", "infonce"])
    rows = rows.assign(method="Our-attention " + rows["loss"].map(LOSS_LABEL))
    order = [f"Our-attention {o}" for o in LOSS_ORDER if f"Our-attention {o}" in set(rows["method"])]
    return _supplement(rows.set_index("method").loc[order].reset_index(), "loss", ours_label)


def loss_order(t4: pd.DataFrame, ours_label: str) -> str:
    """The losses of supplement Table 4 ranked by R@10, then Med r, e.g. 'MSE > CPL = MRL' (ties as '=')."""
    mean = t4.pivot_table(index="method", columns="metric", values=ours_label, sort=False)
    ranked = mean.sort_values(["R@10", "Med r"], ascending=[False, True])
    key = list(zip(ranked["R@10"].round(6), ranked["Med r"].round(6)))
    names = [m.split()[-1] for m in ranked.index]
    return names[0] + "".join((" = " if key[i] == key[i - 1] else " > ") + names[i] for i in range(1, len(names)))


def supplement_headline(t1: pd.DataFrame, t2: pd.DataFrame, t4: pd.DataFrame, metric: str = "R@10") -> pd.DataFrame:
    """One metric of every method and variant on obj-attr tags (Table 1's rows, max pooling, the other losses)."""
    rows = pd.concat([t1[t1["tags"] == "obj-attr"], t2[t2["method"].str.endswith("max pooling")],
                      t4[t4["method"] != "Our-attention MSE"]])  # MSE with average pooling = Table 1's Our-attention
    return rows[rows["metric"] == metric].reset_index(drop=True)


# ---- the data: Table 1, and the detector's vocabulary and attributes (supplement Table 6) -------------------------
def table1(stats: dict, raw_rows: int, ours_label: str) -> pd.DataFrame:
    """Table 1 and the counts of Section 3 / supplement 8.1 (shuttersong.dataset_stats) beside the paper's."""
    return tables.compare_facts({"raw_rows": raw_rows, **{k: v for k, v in stats.items() if k != "rejected"}},
                                ours_label)


def vocabulary_sizes(objects: list[str], attributes: list[str], ours_label: str) -> pd.DataFrame:
    """The detector's object and attribute classes beside the paper's (Visual Genome's)."""
    return tables.compare({"object classes": len(objects), "attribute classes": len(attributes)},
                          {"object classes": paper.fact("object classes"),
                           "attribute classes": paper.fact("attribute classes")}, ours_label)


TABLE6 = "supplement Table 3 (attributes)"  # the paper's Table 6, as the separate supplement numbers it


def table6(mean_attr: pd.Series, ours_label: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Supplement Table 6: our average probability of the paper's nine attributes (with our rank), and our top-9
    beside the paper's, rank by rank. `mean_attr`: attribute → average probability, sorted descending."""
    pub = paper.results(TABLE6, metric="p")
    paper_p = dict(zip(pub["tags"], pub["value"]))  # the paper's order: ranks 1..9
    rank = {a: i + 1 for i, a in enumerate(mean_attr.index)}
    t6 = tables.compare({a: float(mean_attr.get(a, np.nan)) for a in paper_p}, paper_p, ours_label)
    t6 = t6.rename(columns={"quantity": "attribute"})
    t6.insert(1, "our rank", t6["attribute"].map(rank))
    n = min(9, len(mean_attr), len(paper_p))
    top9 = pd.DataFrame({"rank": range(1, n + 1), "ours: attribute": mean_attr.index[:n],
                         "ours: average probability": mean_attr.to_numpy()[:n].round(4),
                         "paper: attribute": list(paper_p)[:n], "paper: average probability": list(paper_p.values())[:n]})
    return t6, top9


# ---- MR-CCA: Figs. 2A/2B, Table 1 ------------------------------------------------------------------------------
MRCCA_TABLE1 = "MR-CCA Table 1"


def mrcca_curve(runs: pd.DataFrame, x: str, methods: list[str]) -> pd.DataFrame:
    """Fig. 2A (x = 'K') or 2B (x = 'd'): mean and std over repeats of each method's consistency per x."""
    agg = runs.groupby(x)[methods].agg(["mean", "std"])
    return agg.reset_index().set_axis([x] + [f"{m} {s}" for m, s in agg.columns], axis=1)


def mrcca_table1(runs_ref: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """MR-CCA Table 1: consistency and training time of local against global references, and their time ratio."""
    t = runs_ref.groupby("references")[["mr-cca", "fit_s"]].mean()

    def pub(ref, metric):
        return paper.result(MRCCA_TABLE1, metric, f"MR-CCA {ref} reference")
    rows = ([{"quantity": f"{ref} references: consistency %", ours_label: 100 * t.loc[ref, "mr-cca"],
              "paper": pub(ref, "consistency %")} for ref in ("local", "global")]
            + [{"quantity": f"{ref} references: training s", ours_label: t.loc[ref, "fit_s"],
                "paper": pub(ref, "training s")} for ref in ("local", "global")]
            + [{"quantity": "global / local training time", ours_label: t.loc["global", "fit_s"] / t.loc["local", "fit_s"],
                "paper": pub("global", "training s") / pub("local", "training s")}])
    out = pd.DataFrame(rows)
    out["difference"] = out[ours_label] - out["paper"]
    return out


def mrcca_table1_paper() -> dict:
    """Table 1's published side for mrcca.findings: consistency % and training s of local and global references."""
    return {metric: {ref: paper.result(MRCCA_TABLE1, metric, f"MR-CCA {ref} reference") for ref in ("local", "global")}
            for metric in ("consistency %", "training s")}


def mrcca_best(selection: pd.DataFrame, refit: pd.DataFrame, settings: pd.DataFrame, human: dict,
               ours_label: str) -> pd.DataFrame:
    """The setting chosen on validation (refitted on all training segments, scored on test), the test-argmax
    (labelled as such), K = 5 / d = 5 on unanimous test pairs, and what labelers reach, beside the paper's text."""
    text = paper.results("MR-CCA text")
    pub = dict(zip(text["split"], text["value"]))
    chosen, peek = selection.iloc[0], selection.iloc[1]
    k5 = settings[(settings["K"] == 5) & (settings["d"] == 5)]
    best_key = next(k for k in pub if "human" not in k)
    human_key = next(k for k in pub if "human" in k)
    rows = [{"quantity": f"MR-CCA consistency %, K={chosen['K']}, d={chosen['d']} chosen on validation "
                         f"(paper: {best_key}, its best)", ours_label: 100 * refit["mr-cca"].mean(), "paper": pub[best_key]},
            {"quantity": f"MR-CCA consistency %, K={peek['K']}, d={peek['d']}: the test-argmax (optimistic, not a "
                         "selection)", ours_label: 100 * peek["test"], "paper": float("nan")},
            {"quantity": f"MR-CCA on unanimous test pairs %, K=5, d=5 (paper: {human_key})",
             ours_label: 100 * k5["mr-cca unanimous"].mean() if len(k5) else float("nan"), "paper": pub[human_key]},
            {"quantity": "test votes for the music-video pair %", ours_label: 100 * human["votes for the music-video pair"],
             "paper": paper.fact_of("prefer_mv_rate_pct")},
            {"quantity": "a labeler agrees with the other labelers' majority %",
             ours_label: 100 * human["labeler agrees with the other labelers' majority"], "paper": float("nan")}]
    out = pd.DataFrame(rows)
    out["difference"] = out[ours_label] - out["paper"]
    return out

def per_song_table(results: list[dict], datas: dict, gt50_ids, titles: pd.Series) -> pd.DataFrame:
    """Figures 7-8: per-song R@3 (section models, the frequent songs' held-out queries) of Our and Our-attention on
    obj-attr tags and of Our on each tag group; rows = the frequent songs in their order, by title."""
    def recall(method, group):
        d = datas[group]
        return per_song_recall(results, d.image_song.numpy(), d.songs, method, group, "section", "gt50")
    table = pd.DataFrame({"Our (obj-attr)": recall("Our", "obj-attr"),
                          "Our-attention (obj-attr)": recall("Our-attention", "obj-attr"),
                          "Our-attention-linear (obj-attr)": recall("Our-attention-linear", "obj-attr"),
                          **{f"Our ({g})": recall("Our", g) for g in ("obj", "attr")}})
    table = table.reindex([s for s in gt50_ids if s in table.index])
    table.index = [f"{titles[s]}" for s in table.index]
    return table


def table2_metrics(runs: pd.DataFrame, boot: pd.DataFrame, found: pd.DataFrame) -> dict:
    """Stage 04's flat metrics: every Table 2 cell (<split>/<group>/<method>/<metric>/mean|std over seeds), the
    bootstrap of each attention reading `a` against Our (with `significant_cells`' better/worse) and the findings'
    counts."""
    flat = {}
    for (s, g, m), frame in runs.groupby(["split", "group", "method"]):
        for name in metrics.SPLIT_METRICS[s]:
            flat[f"{s}/{g}/{m}/{name}/mean"] = float(frame[name].mean())
            flat[f"{s}/{g}/{m}/{name}/std"] = float(frame[name].std(ddof=1)) if len(frame) > 1 else 0.0
    for _, b in boot.iterrows():
        for k in ("diff", "ci_low", "ci_high", "p_not_better"):
            flat[f"bootstrap/{b['a']}/{b['split']}/{b['tags']}/{b['metric']}/{k}"] = float(b[k])
    for a, g in boot.groupby("a", sort=False):
        flat.update({f"bootstrap/{a}/better_cells": int(g["better"].sum()),
                     f"bootstrap/{a}/worse_cells": int(g["worse"].sum()), f"bootstrap/{a}/cells": len(g)})
    for _, c in found.iterrows():
        flat.update({f"findings/{c['key']}/holds_ours": int(c["holds (ours)"]),
                     f"findings/{c['key']}/holds_paper": int(c["holds (paper)"]), f"findings/{c['key']}/cells": int(c["cells"])})
    return flat


def table3_bootstrap(r_ours: np.ndarray, r_schwarz: np.ndarray, samples: int, seed: int) -> pd.DataFrame:
    """Paired bootstrap over the song queries of Our (seeds × queries) − Schwarz on every Table 3 metric."""
    return pd.DataFrame([{"metric": n, **metrics.paired_bootstrap(r_ours, np.asarray(r_schwarz)[None], n, samples, seed)}
                         for n in TABLE3_METRICS])


def table3_metrics(runs: pd.DataFrame, boot: pd.DataFrame, agreement: dict) -> dict:
    """Stage 05's flat metrics: <method>/<metric>/mean|std over seeds, the bootstrap and the agreement counts."""
    flat = {}
    for m, frame in runs.groupby("method"):
        for name in TABLE3_METRICS:
            flat[f"{m}/{name}/mean"] = float(frame[name].mean())
            flat[f"{m}/{name}/std"] = float(frame[name].std(ddof=1)) if len(frame) > 1 else 0.0
    for _, b in boot.iterrows():
        flat[f"bootstrap/{b['metric']}/diff"] = float(b["diff"])
        flat[f"bootstrap/{b['metric']}/p_not_better"] = float(b["p_not_better"])
    flat.update({"agreement/our_beats_schwarz_ours": agreement["ours"],
                 "agreement/our_beats_schwarz_paper": agreement["paper"], "agreement/cells": agreement["cells"]})
    return flat


def supplement_protocol(runs: pd.DataFrame, ranks: pd.DataFrame, triplets: pd.DataFrame, tag_table: pd.DataFrame,
                        subset: pd.DataFrame, frequent_songs: pd.DataFrame) -> pd.DataFrame:
    """The supplement's queries and candidate pool, and how many posts carry a mood (beside the paper's share)."""
    gt = triplets["song_id"].value_counts()
    frequent = pd.Index(frequent_songs["song_id"])
    tagged = tag_table[tag_table["song_id"].isin(frequent)]
    first = runs.iloc[0]
    has_mood = triplets["mood"].str.strip() != ""
    q_mood = ranks.drop_duplicates("image")["image"].map(triplets.drop_duplicates("image").set_index("image")["mood"])
    paper_share = 100 * paper.fact_of("moods") / paper.fact_of("triplets")
    return pd.DataFrame([
        {"what": "frequent songs (candidate pool; notebook 01's data_stats.more_than)", "count": int(first["pool"])},
        {"what": "their triplets in the refined data", "count": int(gt[frequent].sum())},
        {"what": "their tagged photos", "count": len(tagged)},
        {"what": "  of which in the 5-per-song subset", "count": int(tagged["image"].isin(set(subset["image"])).sum())},
        {"what": "query images (not trained on)", "count": int(first["queries"])},
        {"what": f"triplets with a mood, % (paper: {paper_share:.1f})", "count": round(100 * has_mood.mean(), 1)},
        {"what": "query images with a mood, %", "count": round(100 * (q_mood.str.strip() != "").mean(), 1)}])


def variant_bootstrap(ranks: pd.DataFrame, a: tuple[str, str], b: tuple[str, str], group: str = "obj-attr",
                      names=("R@1", "R@5", "R@10", "Med r"), samples: int = metrics.BOOTSTRAP_SAMPLES,
                      seed: int = 0) -> list[dict]:
    """Paired bootstrap of a − b over the queries both share; a, b = (variant, method) rows of the variant stages'
    ranks (artefacts.read_variants), seeds averaged within each resample (see metrics.paired_bootstrap)."""
    def mat(variant, method):
        r = ranks[(ranks["variant"] == variant) & (ranks["method"] == method) & (ranks["group"] == group)]
        return r.pivot_table(index="seed", columns="image", values="rank").sort_index(axis=1)
    ma, mb = mat(*a), mat(*b)
    if list(ma.columns) != list(mb.columns):
        raise ValueError(f"{a} and {b} do not share their queries")
    return [{"a": a[1], "b": b[1], "tags": group, "metric": n,
             **metrics.paired_bootstrap(ma.to_numpy(), mb.to_numpy(), n, samples, seed)} for n in names]


def variant_bootstraps(ranks: pd.DataFrame, pairs: list, groups, samples: int, seed: int) -> pd.DataFrame:
    """`variant_bootstrap` of every ((variant, method), (variant, method)) pair on every tag group, one table; a and
    b are labelled 'method (variant)'."""
    rows = []
    for a, b in pairs:
        for g in groups:
            for row in variant_bootstrap(ranks, a, b, g, samples=samples, seed=seed):
                rows.append({**row, "a": f"{a[1]} ({a[0]})", "b": f"{b[1]} ({b[0]})"})
    return pd.DataFrame(rows)


def supplement_cost(runs: pd.DataFrame) -> pd.DataFrame:
    """Per variant and method: mean epochs, best epoch, training and scoring seconds, and the runs."""
    cost = runs.groupby(["variant", "method"], sort=False)[["epochs", "best_epoch", "train_s", "score_s"]].mean().round(2)
    cost["runs"] = runs.groupby(["variant", "method"], sort=False).size()
    return cost


def supplement_metrics(t1: pd.DataFrame, t2: pd.DataFrame, t4: pd.DataFrame, ours_label: str, found1: dict,
                       found2: dict, found4: dict) -> dict:
    """Stage 07's flat metrics: every cell of supplement Tables 1, 2 and 4 (mean, std) and the agreement counts."""
    flat = {}
    for table, long in (("mood", t1), ("pooling", t2), ("loss", t4)):
        for _, r in long.iterrows():
            key = f"{table}/{r['method']}/{r['tags']}/{r['metric']}"
            flat[f"{key}/mean"], flat[f"{key}/std"] = float(r[ours_label]), float(r["std"])
    for b, f in found1.items():
        flat[f"agreement/mood_beats_{b}/ours"], flat[f"agreement/mood_beats_{b}/paper"] = f["ours"], f["paper"]
    flat["agreement/average_beats_max/ours"], flat["agreement/average_beats_max/paper"] = found2["ours"], found2["paper"]
    for (a, b), f in found4.items():
        flat[f"agreement/{a}_beats_{b}/ours"], flat[f"agreement/{a}_beats_{b}/paper"] = f["ours"], f["paper"]
    return flat


def fit_table(grid: pd.DataFrame, best: dict) -> pd.DataFrame:
    """Per method, its chosen setting (stage 03_tuning) with the validation criterion and the fit on training pairs."""
    rows = []
    for method, b in best.items():
        g = grid[(grid["method"] == method) & (grid["lr"] == b["lr"])]
        g = g[[b.get(w) == v for w, v in zip(g["width"], g["width_value"])]]
        r = g.iloc[0]
        rows.append({"method": method, "setting": f"lr {r['lr']:g}, {r['width']} {r['width_value']}",
                     "validation mean rank %": round(float(r["val_mean_rank_pct"]), 1),
                     "training-pair mean rank % (fit)": round(float(r["train_mean_rank_pct"]), 1),
                     "epochs": int(r["epochs"])})
    return pd.DataFrame(rows)


def fit_sentence(fit: pd.DataFrame) -> str:
    """The fit in one sentence: the BiLSTM's beside CONSE's (the mean of the same word vectors) and BoW's."""
    f = fit.set_index("method")["training-pair mean rank % (fit)"]
    have = [m for m in ("Our", "Our-attention", "CONSE", "BoW") if m in f.index]
    return ("Fit on the training pairs (mean rank, % of the training songs; 50 = chance): "
            + ", ".join(f"{m} {f[m]:.1f}%" for m in have) + ".")
