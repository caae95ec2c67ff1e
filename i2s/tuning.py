"""Every lyric model trained to its best: one small grid per method, the same number of settings for each,
chosen on the validation part of the training songs (never on test). Stage 03_tuning."""
from __future__ import annotations

import dataclasses
import itertools
import json

import numpy as np
import pandas as pd
import torch

from . import artefacts, devices, lyricdata, networks, parallel, text, training

READS = ("subset", "splits", "tags")  # what stage 03_tuning reads
STAGE = "03_tuning"
LSTM_METHODS = ("Attentive-Reader", "Our", "Our-attention", "Our-attention-linear", "Our-mood")
FIT_IMAGES = 300   # training images ranked among the training songs to measure the fit


def width_key(method: str) -> str:
    """The Config field a method's width is: LSTM units for the BiLSTM methods, else the MLP's hidden layer (BoW's
    rank)."""
    return "hidden" if method in LSTM_METHODS else "mlp_hidden"


def settings(method: str, grid: dict) -> list[dict]:
    """A method's settings: every learning rate × every width of its kind (the same count for every method)."""
    key = width_key(method)
    return [{"lr": lr, key: w} for lr, w in itertools.product(grid["lr"], grid[key])]


def jobs(methods, grid: dict, split: str, group: str, seed: int, fit: int = FIT_IMAGES) -> list[dict]:
    """`training.run_grid` jobs: every method × setting, on the validation protocol only (no test)."""
    return [{"method": m, "group": group, "split": split, "seed": seed, "test": False, "fit": fit, "settings": s}
            for m in methods for s in settings(m, grid)]


def with_settings(job_list: list[dict], best: dict) -> list[dict]:
    """`run_grid` jobs with each method's tuned setting (Our-mood: Our's; a method without one: the defaults)."""
    return [{**j, "settings": best.get(j["method"], best.get("Our", {}) if j["method"] == "Our-mood" else {})}
            for j in job_list]


def grid_table(results: list[dict]) -> pd.DataFrame:
    """One row per run: method, its setting, the validation criterion at the kept epoch, the fit, epochs, seconds."""
    rows = []
    for r in results:
        best = r["history"].loc[r["history"]["best"]].iloc[0]
        rows.append({"method": r["method"], "lr": r["settings"]["lr"], "width": width_key(r["method"]),
                     "width_value": r["settings"][width_key(r["method"])],
                     "val_mean_rank_pct": float(best["val_mean_rank_pct"]),
                     "train_mean_rank_pct": float(100 * np.mean(r["fit"]["ranks"]) / r["fit"]["pool"]),
                     "epochs": r["epochs"], "best_epoch": r["best_epoch"], "train_s": r["train_s"]})
    return pd.DataFrame(rows)


def best_settings(grid: pd.DataFrame) -> dict[str, dict]:
    """Per method, the setting with the lowest validation mean rank (ties: the grid's first)."""
    out = {}
    for method, g in grid.groupby("method", sort=False):
        b = g.loc[g["val_mean_rank_pct"].idxmin()]
        out[method] = {"lr": float(b["lr"]), b["width"]: int(b["width_value"])}
    return out


def tuned(cfg: networks.Config, best: dict, method: str) -> networks.Config:
    """`cfg` with a method's tuned settings (Our-mood takes Our's; a method without any keeps `cfg`)."""
    return dataclasses.replace(cfg, **with_settings([{"method": method}], best)[0]["settings"])


def read_best() -> dict[str, dict]:
    """The tuned settings per method (stage 03_tuning's best.json)."""
    return json.loads(artefacts.locate("tuned_settings").read_text())


def run_stage(values: dict) -> pd.DataFrame:
    """Stage 03_tuning: train every method × setting on `split` / `group` with one seed, write grid.csv (every run)
    and best.json (the chosen setting per method) to data/03_tuning, and the metrics."""
    torch.set_num_threads(int(values["threads"]))
    subset, splits, tag_table = artefacts.read("subset"), artefacts.read("splits"), artefacts.read("tags")
    kv = text.vectors(values["vectors"])
    cfg = networks.Config.from_params(**values)
    data = lyricdata.build_data(subset, tag_table, values["group"], kv, cfg.top_k, cfg.max_tokens)
    job_list = jobs(values["methods"], values["grid"], values["split"], values["group"], int(values["seed"]))
    engine = parallel.engine(values["backend"], int(values["n_jobs"]), values["scheduler"])
    results = training.run_grid(job_list, {values["group"]: data}, splits, cfg, engine,
                                int(values["threads"]), desc="tuning", device=devices.resolve(values["device"]))
    for r, j in zip(results, job_list):
        r["settings"] = j["settings"]
    grid = grid_table(results)
    best = best_settings(grid)
    artefacts.write("tuning_grid", grid)
    artefacts.path("tuned_settings").write_text(json.dumps(best, indent=1, sort_keys=True) + "\n")
    chosen = grid.merge(pd.DataFrame([{"method": m, "lr": b["lr"], "width_value": b[width_key(m)]}
                                      for m, b in best.items()]), on=["method", "lr", "width_value"])
    artefacts.write_metrics(STAGE, {**{f"fit/{r.method}/{k}": float(getattr(r, k)) for r in chosen.itertuples()
                                       for k in ("train_mean_rank_pct", "val_mean_rank_pct")},
                                    "runs": len(grid), "train_s_total": float(grid["train_s"].sum())})
    return grid


def summary(grid: pd.DataFrame) -> pd.DataFrame:
    """The grid as one row per method: each setting's validation mean rank (% of the pool; fit on the training
    pairs in brackets), and the chosen setting."""
    g = grid.assign(setting=[f"lr {lr:g}, {w} {v}" for lr, w, v in zip(grid["lr"], grid["width"], grid["width_value"])],
                    cell=[f"{v:.1f} ({t:.1f})" for v, t in zip(grid["val_mean_rank_pct"], grid["train_mean_rank_pct"])])
    g["slot"] = g.groupby("method", sort=False).cumcount() + 1
    wide = g.pivot(index="method", columns="slot", values="cell").reindex(list(dict.fromkeys(grid["method"])))
    wide.columns = [f"setting {c}" for c in wide.columns]
    chosen = g.loc[g.groupby("method", sort=False)["val_mean_rank_pct"].idxmin()].set_index("method")
    wide["settings (in order)"] = g.groupby("method", sort=False)["setting"].agg(" | ".join)
    wide["chosen"] = chosen["setting"]
    return wide.reset_index()
