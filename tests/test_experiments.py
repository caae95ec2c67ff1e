"""Every paper table of i2s.experiments on small, hand-made runs: our numbers land beside the right published ones."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from i2s import experiments, metrics, paper, tables

OURS = "ours (synthetic world)"


def _table2_runs(seeds=2):
    rows = []
    for split, names in metrics.SPLIT_METRICS.items():
        for m in ("Our-attention", "BoW", "Our"):          # not the paper's order: the table must reorder them
            for g in ("obj-attr", "obj", "attr"):
                for s in range(seeds):
                    base = {"Our-attention": 30.0, "Our": 20.0, "BoW": 10.0}[m] + {"obj": 2, "attr": 0, "obj-attr": 1}[g]
                    rows.append({"method": m, "group": g, "split": split, "seed": s,
                                 **{n: (100 - base if n == "Med r" else base + s) for n in names}})
    return pd.DataFrame(rows)


def test_table2_puts_each_cell_beside_the_papers_value_in_the_papers_order():
    long = experiments.table2(_table2_runs(), OURS)
    assert list(dict.fromkeys(long["method"])) == ["BoW", "Our", "Our-attention"]
    assert list(dict.fromkeys(long["tags"])) == ["obj", "attr", "obj-attr"]
    cell = long[(long.split == "dagger") & (long.method == "BoW") & (long.tags == "obj") & (long.metric == "R@10")].iloc[0]
    assert cell["paper"] == paper.result("image2song Table 2", "R@10", "BoW", "obj", "dagger") == 13.4
    assert cell[OURS] == 12.5 and cell["std"] == pytest.approx(np.std([12, 13], ddof=1))
    assert cell["difference"] == pytest.approx(12.5 - 13.4)
    wide = experiments.table2_wide(long, "section", OURS)
    assert list(wide.columns.get_level_values(1)[:4]) == list(metrics.SPLIT_METRICS["section"])


def test_findings_count_cells_where_the_better_side_wins_ours_and_the_papers():
    found = experiments.findings(experiments.table2(_table2_runs(), OURS), OURS).set_index("key")
    # ours: Our-attention > Our in every R@K cell and lower Med r: all 24 cells (2 splits × 3 groups × 4 metrics)
    assert found.loc["attention_helps", "cells"] == 24 and found.loc["attention_helps", "holds (ours)"] == 24
    assert found.loc["lstm_beats_bow", "holds (ours)"] == 24
    # obj (+2) beats attr (+0) in ours everywhere; Attentive-Reader was not run: no cells
    assert found.loc["obj_beats_attr", "holds (ours)"] == found.loc["obj_beats_attr", "cells"] == 3 * 8
    assert found.loc["final_beats_pooling", "cells"] == 0
    long = experiments.table2(_table2_runs(), OURS)
    p = long[(long.method == "Our-attention")].set_index(["split", "tags", "metric"])["paper"]
    q = long[(long.method == "Our")].set_index(["split", "tags", "metric"])["paper"]
    sign = np.where(p.index.get_level_values("metric") == "Med r", -1, 1)
    assert found.loc["attention_helps", "holds (paper)"] == int((sign * (p - q) > 0).sum())


def _results(method, group, split, ranks_by_seed):
    return [{"method": method, "group": group, "split": split, "seed": s,
             "test": {"images": np.arange(len(r)), "ranks": np.asarray(r), "top3": np.zeros((len(r), 3), int)}}
            for s, r in enumerate(ranks_by_seed)]


def test_bootstrap_table_compares_the_same_queries_and_flags_clear_differences():
    good = _results("Our-attention", "obj", "dagger", [[1] * 50 + [2] * 50, [1] * 100])
    bad = _results("Our", "obj", "dagger", [[60] * 100, [70] * 100])
    boot = experiments.significant_cells(experiments.paired_bootstrap_table(good + bad, "Our-attention", "Our", 500, 0))
    assert set(boot["metric"]) == set(metrics.SPLIT_METRICS["dagger"]) and boot["better"].all() and not boot["worse"].any()
    with pytest.raises(ValueError, match="no runs"):
        experiments.query_ranks(good, "Our", "obj", "dagger")


def test_table3_scales_the_papers_fractions_to_percent():
    runs = pd.DataFrame([{"method": "Our", "group": "obj-attr", "seed": 0, **{n: 10.0 for n in experiments.TABLE3_METRICS}}])
    long = experiments.table3(runs, OURS).set_index("metric")
    assert long.loc["R@10", "paper"] == pytest.approx(100 * paper.result("image2song Table 3", "R@10", "Our", "obj-attr"))
    assert long.loc["Med r", "paper"] == paper.result("image2song Table 3", "Med r", "Our", "obj-attr")


def _variant_runs():
    rows = []
    for variant, method, pooling, loss, r10 in [("paper_methods", "Our-attention", "mean", "mse", 50.0),
                                                ("paper_methods", "Our", "mean", "mse", 40.0),
                                                ("mood", "Our-mood", "mean", "mse", 45.0),
                                                ("max_pooling", "Our-attention", "max", "mse", 30.0),
                                                ("cpl", "Our-attention", "mean", "cpl", 50.0),
                                                ("mrl", "Our-attention", "mean", "mrl", 20.0)]:
        rows.append({"variant": variant, "method": method, "group": "obj-attr", "seed": 0, "pooling": pooling,
                     "loss": loss, **{n: (10.0 if n == "Med r" else r10) for n in metrics.SUPPLEMENT_METRICS}})
    return pd.DataFrame(rows)


def test_supplement_tables_label_the_variants_as_the_paper_does():
    runs = _variant_runs()
    t1 = experiments.supplement_table1(runs, OURS)
    assert list(dict.fromkeys(t1["method"])) == ["Our", "Our-mood", "Our-attention"]
    assert not t1["paper"].isna().any()
    t2 = experiments.supplement_table2(runs, OURS)
    assert set(t2["method"]) == {"Our-attention average pooling", "Our-attention max pooling"}
    assert tables.agreement(t2, OURS, "Our-attention average pooling", "Our-attention max pooling")["ours"] == 4
    t4 = experiments.supplement_table4(runs, OURS)
    assert list(dict.fromkeys(t4["method"])) == ["Our-attention MRL", "Our-attention CPL", "Our-attention MSE"]
    assert experiments.loss_order(t4, OURS) in ("CPL = MSE > MRL", "MSE = CPL > MRL")
    head = experiments.supplement_headline(t1, t2, t4)
    assert set(head["metric"]) == {"R@10"} and "Our-attention MSE" not in set(head["method"])


def test_table6_ranks_our_attributes_beside_the_papers_nine():
    mean = pd.Series({"white": 0.5, "black": 0.4, "red": 0.1}).sort_values(ascending=False)
    t6, top9 = experiments.table6(mean, OURS)
    pub = paper.results(experiments.TABLE6, metric="p")
    assert list(t6["attribute"]) == list(pub["tags"]) and len(top9) == 3
    white = t6.set_index("attribute").loc["white"]
    assert white["our rank"] == 1 and white[OURS] == 0.5
    assert np.isnan(t6.set_index("attribute").loc[[a for a in pub["tags"] if a not in mean.index][0], OURS])


def test_table1_compares_the_loaders_counts_with_the_papers_facts():
    t = experiments.table1({"triplets": 16973, "songs": 6000, "rejected": 5}, 36646, OURS).set_index("quantity")
    assert "rejected" not in t.index and t.loc["raw_rows", "difference"] == 0 and t.loc["songs", "difference"] == -373


def test_mrcca_table1_and_curves():
    runs = pd.DataFrame({"references": ["local", "local", "global"], "mr-cca": [0.8, 0.7, 0.6], "fit_s": [1.0, 3.0, 10.0],
                         "K": [10] * 3, "d": [10] * 3, "c-cca": [0.5] * 3})
    t = experiments.mrcca_table1(runs, OURS).set_index("quantity")
    assert t.loc["local references: consistency %", OURS] == pytest.approx(75)
    assert t.loc["global / local training time", OURS] == 5
    assert t.loc["global / local training time", "paper"] == pytest.approx(869.2618 / 46.3999)
    curve = experiments.mrcca_curve(runs, "K", ["c-cca", "mr-cca"])
    assert list(curve.columns) == ["K", "c-cca mean", "c-cca std", "mr-cca mean", "mr-cca std"]


def test_chance_is_exact_for_one_and_for_several_relevant_items():
    assert metrics.chance(100, ["R@10", "Med r"]) == pytest.approx({"R@10": 10.0, "Med r": 50.5})
    # two relevant among four: P(first ≤ 1) = 1/2; the median rank is between 1 and 2
    c = metrics.chance(4, ["R@1", "R@2", "Med r"], [2, 2])
    assert c["R@1"] == pytest.approx(50) and c["R@2"] == pytest.approx(100 * 5 / 6) and c["Med r"] == 1.5
    rng = np.random.default_rng(0)
    rel = np.zeros((2000, 30), bool)
    rel[:, :3] = True
    sim = metrics.first_relevant_ranks(rng.random(rel.shape), rel)
    assert metrics.recall_at_k(sim, 5) == pytest.approx(metrics.chance(30, ["R@5"], 3)["R@5"], abs=2.5)


def test_values_equal_up_to_float_rounding_are_ties_not_wins():
    long = pd.DataFrame({"method": ["A", "B"], "tags": ["obj", "obj"], "metric": ["R@5", "R@5"],
                         OURS: [12.466666666666669, 12.466666666666667], "paper": [1.0, 2.0]})
    assert tables.agreement(long, OURS, "A", "B") == {"cells": 1, "ours": 0, "paper": 0}
