"""The supplementary variants (supplement 9): one cached stage per variant, and what notebook 07 reads of them."""
from __future__ import annotations

import pandas as pd
import torch

from . import artefacts, devices, lyricdata, metrics, networks, parallel, text, training, tuning

VARIANT_STAGE = "07_variants"


READS = ("subset", "splits", "triplets", "songs_gt50", "tags", "tuned_settings")  # what stage 07_variants@<name> reads


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
    pool = lyricdata.song_indices(d0, artefacts.read("songs_gt50")["song_id"])  # notebook 01's frequent songs
    queries = lyricdata.held_out_queries(d0, splits, pool)
    if len(pool) < 2 or not len(queries):
        raise ValueError(f"{len(pool)} frequent songs and {len(queries)} queries: too few for the supplement's protocol "
                         "(lower data_stats.more_than)")
    jobs = tuning.with_settings([{"method": m, "group": g, "split": lyricdata.SUPPLEMENT_SPLIT,
                                  "seed": int(values["seed"]) + k, "test": False}
                                 for m in methods for g in groups for k in range(int(values["seeds"]))], tuning.read_best())
    engine = parallel.engine(values["backend"], int(values["n_jobs"]), values["scheduler"])
    results = training.run_grid(jobs, datas, splits, cfg, engine, threads,
                                {lyricdata.SUPPLEMENT_SPLIT: {"frequent": (queries, pool)}}, f"variant {name}",
                                devices.resolve(values["device"]))
    runs, ranks, hist = frequent_tables(results, d0, "frequent", name, cfg)
    write_frequent(artefacts.path("variant", name=name), runs, ranks, hist)
    names = metrics.SUPPLEMENT_METRICS
    flat = {f"{m}/{g}/{n}/mean": float(f[n].mean()) for (m, g), f in runs.groupby(["method", "group"]) for n in names}
    artefacts.write_metrics(f"{VARIANT_STAGE}_{name}", {**flat, "runs": len(runs), "queries": len(queries),
                                                       "pool": len(pool), "train_s_total": float(runs["train_s"].sum())})
    return runs


def frequent_tables(results: list[dict], data: lyricdata.Data, part: str, variant: str, cfg: networks.Config
                    ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The supplement's tables of some runs scored on the frequent songs' held-out images (`part` of each result):
    runs (one row per run, supplement metrics), ranks (one row per query and run) and the training curves."""
    runs = training.results_frame(results, part).drop(columns=list(metrics.SPLIT_METRICS[lyricdata.SUPPLEMENT_SPLIT]))
    runs = pd.concat([runs, pd.DataFrame([metrics.summary(r[part]["ranks"], metrics.SUPPLEMENT_METRICS)
                                          for r in results])], axis=1)
    first = results[0][part]
    runs = runs.assign(variant=variant, pooling=cfg.pooling, loss=cfg.loss, queries=len(first["images"]),
                       pool=first["pool"])
    song_of = data.image_song.numpy()
    ranks = pd.concat([pd.DataFrame({"method": r["method"], "group": r["group"], "seed": r["seed"],
                                     "image": [data.images[i] for i in r[part]["images"]],
                                     "song_id": [data.songs[song_of[i]] for i in r[part]["images"]],
                                     "rank": r[part]["ranks"]}) for r in results], ignore_index=True)
    hist = pd.concat([r["history"].assign(method=r["method"], group=r["group"], seed=r["seed"]) for r in results],
                     ignore_index=True)
    return runs, ranks, hist


def write_frequent(folder, runs: pd.DataFrame, ranks: pd.DataFrame, hist: pd.DataFrame):
    """Write `frequent_tables` where artefacts.read_variants reads them (runs.csv, ranks.csv, history.csv)."""
    folder.mkdir(parents=True, exist_ok=True)
    runs.to_csv(folder / "runs.csv", index=False)
    ranks.to_csv(folder / "ranks.csv", index=False)
    hist.to_csv(folder / "history.csv", index=False)
    return folder
