"""Stage 03_planted: does each method find what the world plants? The lyrics alone are written again for several
values of `order_signal` (photos, tags, subset and splits stay as they are: a lyric is a pure function of the world's
seed, its song and order_signal), and each method is retrained on the † split with several seeds at each value,
beside the oracles of `i2s.oracle`.

At order_signal 0 a lyric is a bag of independent words; at 1 its word counts are the same for every song and only
the order of its phrases tells songs apart, so BoW and CONSE are at chance there by construction and only an
order-aware model can find anything: whether it does is the result.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch

from . import (artefacts, devices, lyricdata, metrics, networks, oracle, parallel, paths, render, synth, text, training,
               tuning)

READS = ("world_truth", "subset", "splits", "tags", "tuned_settings")   # 00_world's truth, 01's, 02's tags, 03_tuning's
STAGE = "03_planted"
NAMES = ("R@1", "R@5", "R@10", "Med r")
# the slowest methods start first, so that the last runs of the pool are short ones (measured: Eq. 10's two passes
# cost several times Our's, which costs several times CONSE's and BoW's)
COST_ORDER = ("Our-attention", "Attentive-Reader", "Our-attention-linear", "Our-mood", "Our", "CONSE", "BoW-MLP", "BoW")


def lyrics_at(subset: pd.DataFrame, truth_dir, order_signal: float) -> pd.Series:
    """Every subset song's lyric written again at `order_signal` (loader song_id → text)."""
    params = oracle.world_params(truth_dir)
    lw = synth.lyric_world(params.seed, params.song_link, float(order_signal), params.difficulty)
    scenes = render.load_scenes()
    sig = oracle.signatures(subset, truth_dir)
    return pd.Series({s: synth.song_lyric(r, lw, scenes, int(r["number"])) for s, r in sig.iterrows()})


def with_lyrics(subset: pd.DataFrame, lyrics: pd.Series) -> pd.DataFrame:
    """The subset with its lyrics replaced."""
    return subset.assign(lyric=subset["song_id"].map(lyrics))


def key(value: float, group: str) -> str:
    """The name of one sweep point's data (a `run_grid` group)."""
    return f"{group}@{value:g}"


def sweep_jobs(values, methods, group: str, split: str, seeds: int, seed: int, best: dict) -> list[dict]:
    """`run_grid` jobs: every value × method × seed, each method with its tuned setting."""
    jobs = [{"method": m, "group": key(v, group), "split": split, "seed": seed + k, "value": v}
            for v in values for m in methods for k in range(seeds)]
    jobs.sort(key=lambda j: COST_ORDER.index(j["method"]) if j["method"] in COST_ORDER else len(COST_ORDER))
    return tuning.with_settings(jobs, best)


def runs_table(results: list[dict], jobs: list[dict]) -> pd.DataFrame:
    """One row per run: order_signal, method, seed, epochs, seconds and the test metrics."""
    return pd.DataFrame([{"order_signal": j["value"], "method": r["method"], "seed": r["seed"], "epochs": r["epochs"],
                          "train_s": r["train_s"], **metrics.summary(r["test"]["ranks"], NAMES)}
                         for r, j in zip(results, jobs)])


def oracle_table(tag_table, subset, truth_dir, images, songs, values) -> pd.DataFrame:
    """The oracles' metrics at every value (the song and theme oracles read no lyric: the same at every value)."""
    fixed = oracle.ceilings(tag_table, subset, truth_dir, images, songs, ("song", "theme"))
    rows = []
    for v in values:
        ranks = {**fixed, **oracle.ceilings(tag_table, subset, truth_dir, images, songs, ("lyric",), v)}
        rows += [{"order_signal": v, "oracle": k, **metrics.summary(r, NAMES)} for k, r in ranks.items()]
    return pd.DataFrame(rows)


def summary(runs: pd.DataFrame, oracles: pd.DataFrame, metric: str = "R@10") -> pd.DataFrame:
    """Mean and std over seeds of one metric per value and method, and the oracles' values, one row per value."""
    agg = runs.groupby(["order_signal", "method"])[metric].agg(["mean", "std"]).unstack("method")
    agg.columns = [f"{m} {s}" for s, m in agg.columns]
    orc = oracles.pivot(index="order_signal", columns="oracle", values=metric)
    orc.columns = [f"oracle ({c})" for c in orc.columns]
    return agg.join(orc).reset_index()


def metrics_of(runs: pd.DataFrame, oracles: pd.DataFrame, metric: str = "R@10") -> dict:
    """Flat metrics: planted/<value>/<method>/<metric>/mean|std, planted/<value>/oracle/<metric> (the song oracle:
    the ceiling), oracle_lyric and oracle_theme."""
    out = {}
    for (v, m), g in runs.groupby(["order_signal", "method"]):
        out[f"planted/{v:g}/{m}/{metric}/mean"] = float(g[metric].mean())
        out[f"planted/{v:g}/{m}/{metric}/std"] = float(g[metric].std(ddof=1)) if len(g) > 1 else 0.0
    names = {"song": "oracle", "lyric": "oracle_lyric", "theme": "oracle_theme"}
    for r in oracles.to_dict("records"):
        out[f"planted/{r['order_signal']:g}/{names[r['oracle']]}/{metric}"] = float(r[metric])
    return out


def run_stage(values: dict) -> pd.DataFrame:
    """Stage 03_planted: lyrics at each `values['values']`, every method × seed retrained on them; writes runs.csv,
    oracle.csv and summary.csv to data/03_planted and the metrics."""
    t0 = time.perf_counter()
    torch.set_num_threads(int(values["threads"]))
    subset, splits, tag_table = artefacts.read("subset"), artefacts.read("splits"), artefacts.read("tags")
    truth = artefacts.locate("world_truth")
    out = paths.data(STAGE)
    out.mkdir(parents=True, exist_ok=True)
    if not oracle.is_world_of(subset, truth):  # real data: there is no generator to write its lyrics again
        pd.DataFrame(columns=["order_signal", "method", "seed", *NAMES]).to_csv(out / "runs.csv", index=False)
        pd.DataFrame(columns=["order_signal", "oracle", *NAMES]).to_csv(out / "oracle.csv", index=False)
        artefacts.write_metrics(STAGE, {"runs": 0, "synthetic": False})
        return pd.DataFrame()
    best = tuning.read_best()
    kv = text.vectors(values["vectors"])
    cfg = networks.Config.from_params(**values)
    group, split, points = values["group"], values["split"], [float(v) for v in values["values"]]
    own = float(oracle.world_params(truth).order_signal)
    datas = {}
    for v in points:
        lyr = lyrics_at(subset, truth, v)
        if v == own:  # the world's own lyrics, written again, are the ones it wrote
            mismatch = (subset.drop_duplicates("song_id").set_index("song_id")["lyric"] != lyr).sum()
            if mismatch:
                raise RuntimeError(f"{mismatch} lyrics written again at order_signal {v:g} differ from the world's")
        datas[key(v, group)] = lyricdata.build_data(with_lyrics(subset, lyr), tag_table, group, kv, cfg.top_k,
                                                    cfg.max_tokens)
    t_data = time.perf_counter() - t0
    jobs = sweep_jobs(points, values["methods"], group, split, int(values["seeds"]), int(values["seed"]), best)
    engine = parallel.engine(values["backend"], int(values["n_jobs"]), values["scheduler"])
    results = training.run_grid(jobs, datas, splits, cfg, engine, int(values["threads"]), desc="planted sweep",
                                device=devices.resolve(values["device"]))
    t_runs = time.perf_counter() - t0 - t_data
    runs = runs_table(results, jobs).sort_values(["order_signal", "method", "seed"], ignore_index=True)
    first = next(iter(datas.values()))
    idx = lyricdata.split_indices(first, splits, split, int(values["seed"]), cfg.val_fraction)
    images, songs = [first.images[i] for i in idx["test"]], [first.songs[j] for j in idx["pool"]]
    oracles = oracle_table(tag_table, subset, truth, images, songs, points)
    runs.to_csv(out / "runs.csv", index=False)
    oracles.to_csv(out / "oracle.csv", index=False)
    summary(runs, oracles).to_csv(out / "summary.csv", index=False)
    artefacts.write_metrics(STAGE, {**metrics_of(runs, oracles), "runs": len(runs), "data_s": t_data,
                                    "runs_s": t_runs, "wall_s": time.perf_counter() - t0,
                                    "chance/R@10": metrics.chance(len(songs), ["R@10"])["R@10"]})
    return runs
