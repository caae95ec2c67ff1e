"""Tables beside the paper's numbers: side-by-side comparisons, long and wide forms, agreement counts, saving."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import paper, paths


TIE = 1e-9  # differences below this are ties (float rounding), in every comparison of cells


def source_label(synthetic: bool) -> str:
    """Column name for our numbers, so a synthetic result is never mistaken for a real one."""
    return "ours (synthetic world)" if synthetic else "ours (real data)"


def compare(ours: dict, published: dict, ours_label: str = "ours") -> pd.DataFrame:
    """Side-by-side table: quantity, ours, paper, difference (ours − paper); paper NaN where it is silent."""
    rows = []
    for k, v in ours.items():
        p = published.get(k, math.nan)
        missing = p is None or (isinstance(p, float) and math.isnan(p))
        rows.append({"quantity": k, ours_label: v, "paper": p, "difference": math.nan if missing else v - p})
    return pd.DataFrame(rows)


def compare_facts(ours: dict, ours_label: str = "ours") -> pd.DataFrame:
    """`compare` against the papers' dataset facts (paper.FACT_OF names the fact of each quantity)."""
    return compare(ours, {k: paper.fact_of(k) for k in ours if k in paper.FACT_OF}, ours_label)


def beside_paper(runs: pd.DataFrame, table: str, names, ours_label: str, split: str | None = None,
                 order: dict | None = None, recall_scale: float = 1.0, paper_row: dict | None = None) -> pd.DataFrame:
    """Long table: one row per (method, tags, metric) of `runs` (columns method, group and one per metric, a row
    per seed) with ours mean and std over seeds (0 for one seed), the paper's value in `table` (NaN where it has
    none) and the difference. `split` keeps that split of both; `order` fixes the row order of method and group
    ({"method": [...], "group": [...]}; default: as they appear). `recall_scale` multiplies the paper's R@K (Table 3
    prints fractions; ours are percent). `paper_row` names the published row a method of ours stands beside when it
    is another reading of one (e.g. {"Our-attention-linear": "Our-attention"})."""
    pub = paper.results(table, **({"split": split} if split else {})).set_index(["method", "tags", "metric"])["value"]
    if split is not None and "split" in runs.columns:
        runs = runs[runs["split"] == split]
    agg = runs.groupby(["method", "group"], sort=False)[list(names)].agg(["mean", "std"])
    keys = list(agg.index)
    if order:
        rank = {c: {v: i for i, v in enumerate(order.get(c, []))} for c in ("method", "group")}
        keys.sort(key=lambda mg: (rank["method"].get(mg[0], len(rank["method"])),
                                  rank["group"].get(mg[1], len(rank["group"]))))
    rows = []
    for method, group in keys:
        for name in names:
            mean, std = agg.loc[(method, group), (name, "mean")], agg.loc[(method, group), (name, "std")]
            published = (paper_row or {}).get(method, method)
            pv = float(pub.get((published, group, name), np.nan)) * (recall_scale if name.startswith("R@") else 1.0)
            rows.append({"method": method, "tags": group, "metric": name, ours_label: mean,
                         "std": 0.0 if np.isnan(std) else std, "paper": pv, "difference": mean - pv})
    return pd.DataFrame(rows)


def beside_paper_wide(long: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """One row per method, per tag group and metric 'ours ± std (paper)' ('(—)' where the paper has no value)."""
    cell = long.apply(lambda r: f"{r[ours_label]:.2f} ± {r['std']:.2f} "
                                f"({'—' if np.isnan(r['paper']) else format(r['paper'], 'g')})", axis=1)
    wide = long.assign(cell=cell).pivot_table(index="method", columns=["tags", "metric"], values="cell",
                                              aggfunc="first", sort=False)
    cols = pd.MultiIndex.from_product([list(dict.fromkeys(long["tags"])), list(dict.fromkeys(long["metric"]))])
    return wide.reindex(index=list(dict.fromkeys(long["method"])), columns=cols)


def flat_columns(wide: pd.DataFrame, tags: bool = True) -> pd.DataFrame:
    """A wide table with its (tags, metric) columns joined into one level and the method as a column (for CSV)."""
    cols = [f"{g} {m}" if tags else m for g, m in wide.columns]
    return wide.set_axis(cols, axis=1).reset_index()


def agreement(long: pd.DataFrame, ours_label: str, better: str, worse: str, axis: str = "method") -> dict:
    """In how many comparable cells `better` beats `worse` along `axis` ('method' or 'tags'), ours and the paper's:
    R@K higher, Med r lower; ties (within TIE) do not count; cells where the paper has no value are left out of both counts.
    Cells are matched on every other column of split, method, tags and metric that `long` has."""
    keys = [c for c in ("split", "method", "tags", "metric") if c in long.columns and c != axis]
    a = long[long[axis] == better].set_index(keys)
    b = long[long[axis] == worse].set_index(keys)
    both = a.join(b, how="inner", suffixes=("_a", "_b"))
    both = both[both["paper_a"].notna() & both["paper_b"].notna()]
    sign = np.where(both.index.get_level_values("metric") == "Med r", -1, 1)
    # means of the same seeds' recalls can differ in the last bit by the order they were summed in: equal, not better
    return {"cells": len(both),
            "ours": int((sign * (both[f"{ours_label}_a"] - both[f"{ours_label}_b"]) > TIE).sum()),
            "paper": int((sign * (both["paper_a"] - both["paper_b"]) > TIE).sum())}


def save_table(df: pd.DataFrame, stage: str, name: str) -> pd.DataFrame:
    """Write a table as CSV and Markdown under data/<stage>/tables/; returns it for display."""
    out = paths.tables(stage)
    out.mkdir(parents=True, exist_ok=True)
    df.to_csv(out / f"{name}.csv", index=False)
    (out / f"{name}.md").write_text(df.to_markdown(index=False, floatfmt=".6g") + "\n")
    return df
