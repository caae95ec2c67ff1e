"""The supplementary variants (supplement 9): one cached stage per variant, and what notebook 07 reads of them."""
from __future__ import annotations

import pandas as pd
import torch

from . import artefacts, lyricdata, metrics, networks, text, training, tuning

VARIANT_STAGE = "07_variants"


READS = ("subset", "splits", "triplets", "tags", "tuned_settings")  # what stage 07_variants@<name> reads


def variant_config(values: dict, variant: dict) -> networks.Config:
    """The Config of one supplementary variant: lyric_model's training, attention's width, top-K and pooling
    (in `values`), then the variant's own settings (e.g. pooling: max, loss: cpl)."""
    return networks.Config.from_params(**{**values, **variant})


def run_variant(values: dict) -> pd.DataFrame:
    """Stage 07_variants@<name>: train one variant of `supplementary.variants` (its methods × groups × seeds) on
    the section split and rank the frequent songs' held-out images among those songs. Writes runs.csv (one row
    per run, supplement metrics), ranks.csv (one row per query and run) and history.csv to data/07_variants/<name>/,
    and the mean metrics to metrics/07_variants_<name>.json. `values`: the stage's parameters by name (the
    runner's), `variant` the item's settings and `name` its key."""
    name = values["name"]
    variant = dict(values["variant"])
    methods, groups = variant.pop("methods"), variant.pop("groups")
    cfg = variant_config(values, variant)
    threads = int(values["threads"])
    torch.set_num_threads(threads)
    subset, splits, triplets = artefacts.read("subset"), artefacts.read("splits"), artefacts.read("triplets")
    tag_table = artefacts.read("tags")
    kv = text.vectors(values["vectors"])
    datas = {g: lyricdata.build_data(subset, tag_table, g, kv, cfg.top_k, cfg.max_tokens) for g in groups}
    if "Our-mood" in methods:
        mood = triplets.drop_duplicates("image").set_index("image")["mood"]
        datas = {g: lyricdata.with_moods(d, mood, kv) for g, d in datas.items()}
    d0 = next(iter(datas.values()))
    pool = lyricdata.frequent_songs(d0, triplets, int(values["more_than"]))
    queries = lyricdata.held_out_queries(d0, splits, pool)
    if len(pool) < 2 or not len(queries):
        raise ValueError(f"{len(pool)} songs with more than {values['more_than']} triplets and {len(queries)} queries: "
                         "too few for the supplement's protocol (lower supplementary.more_than)")
    jobs = tuning.with_settings([{"method": m, "group": g, "split": lyricdata.SUPPLEMENT_SPLIT,
                                  "seed": int(values["seed"]) + k, "test": False}
                                 for m in methods for g in groups for k in range(int(values["seeds"]))], tuning.read_best())
    results = training.run_grid(jobs, datas, splits, cfg, int(values["n_jobs"]), threads,
                                {lyricdata.SUPPLEMENT_SPLIT: {"frequent": (queries, pool)}}, f"variant {name}")
    runs = training.results_frame(results, "frequent").drop(columns=list(metrics.SPLIT_METRICS[lyricdata.SUPPLEMENT_SPLIT]))
    names = metrics.SUPPLEMENT_METRICS
    runs = pd.concat([runs, pd.DataFrame([metrics.summary(r["frequent"]["ranks"], names) for r in results])], axis=1)
    runs = runs.assign(variant=name, pooling=cfg.pooling, loss=cfg.loss, queries=len(queries), pool=len(pool))
    song_of = d0.image_song.numpy()
    ranks = pd.concat([pd.DataFrame({"method": r["method"], "group": r["group"], "seed": r["seed"],
                                     "image": [d0.images[i] for i in r["frequent"]["images"]],
                                     "song_id": [d0.songs[song_of[i]] for i in r["frequent"]["images"]],
                                     "rank": r["frequent"]["ranks"]}) for r in results], ignore_index=True)
    hist = pd.concat([r["history"].assign(method=r["method"], group=r["group"], seed=r["seed"]) for r in results],
                     ignore_index=True)
    out = artefacts.path("variant", name=name)
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    ranks.to_csv(out / "ranks.csv", index=False)
    hist.to_csv(out / "history.csv", index=False)
    flat = {f"{m}/{g}/{n}/mean": float(f[n].mean()) for (m, g), f in runs.groupby(["method", "group"]) for n in names}
    artefacts.write_metrics(f"{VARIANT_STAGE}_{name}", {**flat, "runs": len(runs), "queries": len(queries),
                                                       "pool": len(pool), "train_s_total": float(runs["train_s"].sum())})
    return runs
