"""Retrieval metrics on hand-made score matrices, ties counted against the model; the paired bootstrap."""
from __future__ import annotations

import numpy as np
import pytest

from i2s import metrics


def test_ranks_of_a_hand_made_matrix():
    scores = np.array([[0.9, 0.1, 0.5],    # correct item 0 is best            → 1
                       [0.9, 0.1, 0.5],    # correct item 1 is worst           → 3
                       [0.2, 0.7, 0.5]])   # correct item 2 is second          → 2
    assert metrics.ranks(scores, np.array([0, 1, 2])).tolist() == [1, 3, 2]


def test_ties_count_against_the_model():
    scores = np.array([[0.5, 0.5, 0.5, 0.1],   # tied with two others → after both: 3
                       [0.3, 0.3, 0.9, 0.3],   # tied with two others below the 0.9 → 4
                       [1.0, 1.0, 1.0, 1.0]])  # a constant scorer ranks the correct item last
    assert metrics.ranks(scores, np.array([0, 1, 2])).tolist() == [3, 4, 4]


def test_ranks_reject_nan_and_bad_truth():
    with pytest.raises(ValueError):
        metrics.ranks(np.array([[0.1, np.nan]]), np.array([0]))
    with pytest.raises(ValueError):
        metrics.ranks(np.array([[0.1, 0.2]]), np.array([2]))
    with pytest.raises(ValueError):
        metrics.ranks(np.array([0.1, 0.2]), np.array([0]))


def test_recall_and_median_rank():
    r = np.array([1, 2, 5, 10, 11, 50])
    assert metrics.recall_at_k(r, 1) == pytest.approx(100 / 6)
    assert metrics.recall_at_k(r, 10) == pytest.approx(400 / 6)
    assert metrics.recall_at_k(r, 100) == 100
    assert metrics.median_rank(r) == 7.5
    assert metrics.summary(r, ("R@5", "Med r")) == {"R@5": 50.0, "Med r": 7.5}
    with pytest.raises(ValueError):
        metrics.metric(r, "MAP")


def test_per_item_recall_groups_queries():
    r = np.array([1, 4, 2, 9, 3])
    out = metrics.per_item_recall(r, ["a", "a", "b", "b", "b"], k=3)
    assert out["a"] == 50 and out["b"] == pytest.approx(200 / 3)


def test_paired_bootstrap_identical_methods_differ_by_zero():
    r = np.random.default_rng(0).integers(1, 100, size=(3, 200))
    for stat in ("R@10", "Med r", lambda x: float(np.mean(x))):
        b = metrics.paired_bootstrap(r, r, stat, samples=500)
        assert b["diff"] == 0 and b["ci_low"] == 0 and b["ci_high"] == 0


def test_paired_bootstrap_sees_a_clearly_better_method():
    rng = np.random.default_rng(1)
    worse = rng.integers(20, 100, size=300)
    better = np.maximum(1, worse - 15)  # every query improves
    up = metrics.paired_bootstrap(better, worse, "R@30", samples=2000)
    assert up["diff"] > 0 and up["ci_low"] > 0 and up["p_not_better"] < 0.01
    down = metrics.paired_bootstrap(better, worse, "Med r", samples=2000)  # lower is better
    assert down["diff"] < 0 and down["ci_high"] < 0 and down["p_not_better"] < 0.01
    flipped = metrics.paired_bootstrap(worse, better, "R@30", samples=2000)
    assert flipped["p_not_better"] > 0.99
