"""Rank-based retrieval metrics of Section 5.1 (R@K, Med r), per-item recall, and a paired bootstrap."""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

# ---- defaults ------------------------------------------------------------------------------------------
# Table 2's metrics per split: dagger ranks among the 100 test songs, section among all 586 songs
SPLIT_METRICS = {"dagger": ("R@1", "R@5", "R@10", "Med r"), "section": ("R@10", "R@50", "R@100", "Med r")}
# the supplement's tables (experiments.SUPPLEMENT_TABLES) report these, ranked among its frequent songs
SUPPLEMENT_METRICS = ("R@1", "R@3", "R@5", "R@10", "Med r")
BOOTSTRAP_SAMPLES = 10_000
BOOTSTRAP_LEVEL = 0.95


def ranks(scores: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """1-based rank of the correct item of each query (rows: queries, columns: candidates, higher = better).

    Ties count against the model: the correct item is ranked after every other item with an equal score, so
    a constant scorer ranks every correct item last.
    """
    scores = np.asarray(scores, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.int64)
    if scores.ndim != 2 or truth.shape != (scores.shape[0],):
        raise ValueError(f"scores must be queries×candidates and truth one index per query; got {scores.shape}, {truth.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN: a NaN cannot be ranked")
    if len(truth) and (truth.min() < 0 or truth.max() >= scores.shape[1]):
        raise ValueError("truth index outside the candidate pool")
    own = scores[np.arange(len(truth)), truth][:, None]
    return (scores >= own).sum(axis=1).astype(np.int64)  # counts the correct item itself, hence 1-based


def first_relevant_ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based rank of the best-ranked relevant item of each query (several relevant items per query, e.g. a
    song's images): one plus the irrelevant items scored at least as high, so ties count against the model."""
    scores = np.asarray(scores, dtype=np.float64)
    relevant = np.asarray(relevant, dtype=bool)
    if scores.shape != relevant.shape or scores.ndim != 2:
        raise ValueError(f"scores and relevant must both be queries×candidates; got {scores.shape}, {relevant.shape}")
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN: a NaN cannot be ranked")
    if not relevant.any(axis=1).all():
        raise ValueError("every query needs at least one relevant candidate")
    best = np.where(relevant, scores, -np.inf).max(axis=1, keepdims=True)
    return 1 + ((scores >= best) & ~relevant).sum(axis=1).astype(np.int64)


def recall_at_k(r: np.ndarray, k: int) -> float:
    """R@K in percent: the share of queries whose correct item is within the top k."""
    r = np.asarray(r)
    return float(100 * (r <= k).mean()) if r.size else float("nan")


def median_rank(r: np.ndarray) -> float:
    """Med r: the median rank of the correct item (lower is better)."""
    r = np.asarray(r)
    return float(np.median(r)) if r.size else float("nan")


def metric(r: np.ndarray, name: str) -> float:
    """One metric by its Table 2 name: 'R@<k>' or 'Med r'."""
    if name == "Med r":
        return median_rank(r)
    if name.startswith("R@"):
        return recall_at_k(r, int(name[2:]))
    raise ValueError(f"unknown metric {name!r}")


def summary(r: np.ndarray, names=SPLIT_METRICS["dagger"]) -> dict[str, float]:
    """Several metrics of one set of ranks, by name."""
    return {n: metric(r, n) for n in names}


def per_item_recall(r: np.ndarray, items, k: int = 3) -> pd.Series:
    """R@k per item (e.g. per song, over its image queries), in percent; index = item."""
    return pd.Series(100.0 * (np.asarray(r) <= k), name=f"R@{k}").groupby(np.asarray(items)).mean()


def paired_bootstrap(ranks_a: np.ndarray, ranks_b: np.ndarray, stat: Callable[[np.ndarray], float] | str,
                     samples: int = BOOTSTRAP_SAMPLES, seed: int = 0, level: float = BOOTSTRAP_LEVEL) -> dict:
    """Paired bootstrap over queries of stat(a) − stat(b).

    ranks_a, ranks_b: per-query ranks of two methods on the same queries, shape (queries,) or (seeds, queries);
    with seeds, the statistic is averaged over seeds within each resample. Queries are resampled with
    replacement, the same indices for both methods (the pairing). Returns the observed difference, the
    percentile interval at `level`, and the one-sided share of resamples where a does not beat b
    (`p_not_better`; for a lower-is-better stat such as 'Med r' "better" means smaller).
    """
    a, b = np.atleast_2d(np.asarray(ranks_a)), np.atleast_2d(np.asarray(ranks_b))
    if a.shape[1] != b.shape[1]:
        raise ValueError("paired bootstrap needs the same queries for both methods")
    name = stat if isinstance(stat, str) else None
    lower_better = name == "Med r"
    rng = np.random.default_rng(seed)
    q = a.shape[1]
    idx = rng.integers(0, q, size=(samples, q))
    if name is not None and name.startswith("R@"):  # vectorised: a recall is a mean of indicators
        k = int(name[2:])
        hit_a, hit_b = (a <= k).mean(0), (b <= k).mean(0)  # per query, averaged over seeds
        diffs = 100 * (hit_a[idx].mean(1) - hit_b[idx].mean(1))
        observed = 100 * (hit_a.mean() - hit_b.mean())
    elif name == "Med r":  # in slices of resamples: seeds × resamples × queries would not fit at once
        diffs = np.concatenate([np.median(a[:, ix], -1).mean(0) - np.median(b[:, ix], -1).mean(0)
                                for ix in np.array_split(idx, max(1, samples // 500))])
        observed = float(np.median(a, -1).mean() - np.median(b, -1).mean())
    else:
        f = (lambda r: metric(r, name)) if name is not None else stat
        per_seed = lambda m, ix: np.mean([f(row[ix]) for row in m])  # noqa: E731
        diffs = np.array([per_seed(a, ix) - per_seed(b, ix) for ix in idx])
        observed = per_seed(a, np.arange(q)) - per_seed(b, np.arange(q))
    lo, hi = np.quantile(diffs, [(1 - level) / 2, (1 + level) / 2])
    worse = (diffs >= 0) if lower_better else (diffs <= 0)
    return {"diff": float(observed), "ci_low": float(lo), "ci_high": float(hi), "p_not_better": float(worse.mean())}


def chance(pool: int, names, relevant=1) -> dict[str, float]:
    """What a random ranking scores, exactly: R@K (percent) and Med r for queries with `relevant` correct items
    (one number, or one per query) among `pool` candidates; Med r is the median of the ranks' distribution."""
    from scipy.special import gammaln
    m = np.atleast_1d(np.asarray(relevant, dtype=np.int64))
    r = np.arange(1, pool + 1)

    def log_comb(a, b):  # log C(a, b), -inf where b > a
        a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
        out = np.full(a.shape, -np.inf)
        ok = (b >= 0) & (b <= a)
        out[ok] = gammaln(a[ok] + 1) - gammaln(b[ok] + 1) - gammaln(a[ok] - b[ok] + 1)
        return out
    # P(first relevant rank > r) = C(pool - m, r) / C(pool, r), per query, then averaged over queries
    beyond = np.exp(log_comb(pool - m[:, None], r[None]) - log_comb(pool, r)[None]).mean(0)
    cdf = 1 - beyond
    out = {}
    for n in names:
        if n == "Med r":
            k = int(np.searchsorted(cdf, 0.5 - 1e-12))
            out[n] = float(r[k] + 0.5) if abs(cdf[k] - 0.5) < 1e-12 and k + 1 < pool else float(r[k])
        else:
            out[n] = float(100 * cdf[min(int(n[2:]), pool) - 1])
    return out
