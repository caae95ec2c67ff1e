"""One training loop for every lyric model (RMSprop, early stopping on validation), runs and grids of runs."""
from __future__ import annotations

import copy
import dataclasses
import time

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from . import losses, lyricdata, metrics, networks, parallel, scoring


def song_batches(images: np.ndarray, data: lyricdata.Data, batch_pairs: int, rng: np.random.Generator | None,
                 bucket: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mini-batches of about `batch_pairs` (image, song) pairs, built from whole songs: a song's training
    images share its batch, so each lyric is encoded once per batch (the gradient of those pairs is
    unchanged). With `rng`, songs are shuffled, sorted by length within buckets of `bucket` batches (less
    padding), and the batch order shuffled; without, the order is fixed (validation)."""
    song_of = data.image_song.numpy()[images]
    songs = np.unique(song_of)
    per_batch = max(1, int(round(batch_pairs * len(songs) / max(len(images), 1))))
    if rng is not None:
        songs = rng.permutation(songs)
        lengths = data.lengths.numpy()
        span = per_batch * bucket
        songs = np.concatenate([c[np.argsort(lengths[c], kind="stable")] for c in
                                (songs[i:i + span] for i in range(0, len(songs), span))])
    groups = [songs[i:i + per_batch] for i in range(0, len(songs), per_batch)]
    if rng is not None:
        groups = [groups[i] for i in rng.permutation(len(groups))]
    return [(images[np.isin(song_of, g)], song_of[np.isin(song_of, g)]) for g in groups]


def negative_songs(songs: np.ndarray, pool: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each pair's song, another song drawn at random from `pool` (Eq. 13: "randomly from the entire lyric
    database", i.e. all training lyrics, not the batch's)."""
    pool = np.asarray(pool)
    if len(np.unique(pool)) < 2:
        raise ValueError("a negative lyric needs at least two songs in the pool")
    neg = pool[rng.integers(0, len(pool), size=len(songs))]
    while (clash := neg == songs).any():
        neg[clash] = pool[rng.integers(0, len(pool), size=int(clash.sum()))]
    return neg


def _batch_loss(model, data, images, songs, cfg, rng, negatives) -> torch.Tensor:
    target = data.targets[torch.as_tensor(images)].to(model.device)
    if model.joint:  # Bai et al.: margin ranking of the pair against a random training lyric, in the joint space
        img = model.image_side(target)
        neg = negative_songs(songs, negatives, rng)
        return losses.ranking_hinge((img * scoring.predict_pairs(model, data, images, songs)).sum(-1),
                                    (img * scoring.predict_pairs(model, data, images, neg)).sum(-1), 1.0)
    if cfg.loss == "infonce":  # every image of the batch against every song of the batch
        uniq, positive = np.unique(songs, return_inverse=True)
        return losses.loss_value("infonce", scoring.predict_grid(model, data, images, uniq), target,
                                 positive=torch.as_tensor(positive, device=model.device), log_scale=model.log_scale)
    pred = scoring.predict_pairs(model, data, images, songs)
    neg = None
    if cfg.loss == "mrl":  # Eq. 13: a random other lyric of all the training lyrics
        neg = scoring.predict_pairs(model, data, images, negative_songs(songs, negatives, rng))
    return losses.loss_value(cfg.loss, pred, target, neg, cfg.margin)


def train(model: networks.LyricModel, data: lyricdata.Data, train_images: np.ndarray, val_images: np.ndarray, val_pool: np.ndarray,
          cfg: networks.Config, seed: int = 0, desc: str | None = None) -> pd.DataFrame:
    """RMSprop (Section 4.4) on mini-batches of pairs, with early stopping on validation retrieval.

    After each epoch the validation images are ranked against `val_pool`; the criterion is their mean rank
    as a percentage of the pool (lower is better; the loss itself barely moves while retrieval improves, since
    cosine ranking ignores the scale the loss is dominated by). Training stops after `patience` epochs without
    improvement and the model ends at its best epoch. Returns the curve, one row per epoch.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    val_rng_seed = seed + 1_000_003  # fixed negatives for a comparable validation MRL across epochs
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.rho, eps=cfg.eps)
    val_batches = song_batches(val_images, data, cfg.batch_pairs, None)
    train_songs = np.unique(data.image_song.numpy()[train_images])  # the negatives of Eq. 13 and Bai et al.
    best, best_state, waited, rows = float("inf"), None, 0, []
    t0 = time.perf_counter()
    bar = tqdm(range(1, cfg.max_epochs + 1), desc=desc, mininterval=5, disable=desc is None)
    for epoch in bar:
        model.train()
        total, n, lyrics, t_ep, grads = 0.0, 0, 0, time.perf_counter(), []
        for images, songs in song_batches(train_images, data, cfg.batch_pairs, rng):
            loss = _batch_loss(model, data, images, songs, cfg, rng, train_songs)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            grads.append(float(torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params if p.grad is not None]))))
            opt.step()
            total, n, lyrics = total + loss.item() * len(images), n + len(images), lyrics + len(np.unique(songs))
        train_s = time.perf_counter() - t_ep
        model.eval()
        vrng = np.random.default_rng(val_rng_seed)
        with torch.no_grad():
            vl = sum(_batch_loss(model, data, i, s, cfg, vrng, np.union1d(train_songs, val_pool)).item() * len(i)
                     for i, s in val_batches)
        r, _ = scoring.pool_ranks(model, data, val_images, val_pool)
        crit = float(100 * np.mean(r) / len(val_pool))
        rows.append({"epoch": epoch, "train_loss": total / max(n, 1), "val_loss": vl / max(len(val_images), 1),
                     "val_mean_rank_pct": crit, "val_median_rank": metrics.median_rank(r),
                     "lyrics_per_s": lyrics / train_s, "grad_norm": float(np.mean(grads)), "seconds": time.perf_counter() - t0})
        if crit < best - 1e-9:
            best, best_state, waited = crit, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist = pd.DataFrame(rows)
    hist["best"] = hist["epoch"] == int(hist.loc[hist["val_mean_rank_pct"].idxmin(), "epoch"])
    return hist


def run(method: str, data: lyricdata.Data, splits: pd.DataFrame, split: str, seed: int, cfg: networks.Config,
        extra: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, keep_model: bool = False,
        threads: int | None = None, test: bool = True, fit: int = 0, device: str = "cpu") -> dict:
    """Train one method on one split with one seed; the test ranks of every query and its top-3 songs.

    `extra`: further named (query images, candidate songs) sets to rank after training (e.g. Figure 7's songs).
    `test=False` skips the split's own test set (when only the `extra` sets are reported, e.g. the supplement, or
    tuning). `fit` > 0 also ranks that many training images (evenly spaced) among all the training songs: how well
    the model fits what it learnt from ("fit"). The model trains and scores on `device` (its inputs are moved there;
    everything returned is on the CPU).
    """
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    idx = lyricdata.split_indices(data, splits, split, seed, cfg.val_fraction)
    torch.manual_seed(seed)
    model = networks.build_model(method, data, cfg, np.unique(data.image_song.numpy()[idx["train"]])).to(device)
    hist = train(model, data, idx["train"], idx["val"], idx["val_pool"], cfg, seed)
    t_train = time.perf_counter() - t0
    out = {"method": method, "group": data.group, "split": split, "seed": seed, "history": hist,
           "train_s": t_train, "epochs": int(hist["epoch"].max()), "best_epoch": int(hist.loc[hist["best"], "epoch"].iloc[0])}
    sets = {**({"test": (idx["test"], idx["pool"])} if test else {}), **(extra or {})}
    if fit:
        train_songs = np.unique(data.image_song.numpy()[idx["train"]])
        sets["fit"] = (idx["train"][np.linspace(0, len(idx["train"]) - 1, min(fit, len(idx["train"]))).astype(int)],
                       train_songs)
    t1 = time.perf_counter()
    for name, (images, pool) in sets.items():
        r, s = scoring.pool_ranks(model, data, images, pool)
        out[name] = {"images": np.asarray(images), "ranks": r, "pool": len(pool),
                     "top3": np.asarray(pool)[np.argsort(-s, axis=1, kind="stable")[:, :3]]}
    out["score_s"] = time.perf_counter() - t1
    out["test_pairs"] = len(idx["test"]) * len(idx["pool"]) if test else 0
    if keep_model:
        out["model"] = model.cpu()
    return out


def _run_job(job: dict, datas: dict, splits: pd.DataFrame, cfg: networks.Config, extra: dict, threads: int,
             device: str) -> dict:
    return run(job["method"], datas[job["group"]], splits, job["split"], job["seed"],
               dataclasses.replace(cfg, **job.get("settings", {})), extra.get(job["split"]), job.get("keep_model", False),
               threads, job.get("test", True), job.get("fit", 0), device)


def run_grid(jobs: list[dict], datas: dict[str, lyricdata.Data], splits: pd.DataFrame, cfg: networks.Config,
             engine: dict | int | None = None, threads: int = 1, extra: dict[str, dict] | None = None,
             desc: str = "runs", device: str = "cpu") -> list[dict]:
    """Many `run`s ({method, group, split, seed[, keep_model, test, fit, settings]} each; `settings` override `cfg`
    for that run) through parallel.pmap on `engine` (the params `parallel` section, i2s.parallel.engine; an int is
    that many local processes), each with `threads` torch threads. `extra[split]`: the `extra` sets of that split's
    runs (the groups share image and song indices). Every run seeds itself, so the results do not depend on the
    engine, its worker count or the order in which runs finish. `device`: devices.resolve's (every run uses it)."""
    if isinstance(engine, int):
        engine = parallel.engine("local", engine)
    return parallel.pmap(_run_job, jobs, engine, desc,
                         shared={"datas": datas, "splits": splits, "cfg": cfg, "extra": extra or {}, "threads": threads,
                                 "device": device})


def results_frame(results: list[dict], part: str = "test") -> pd.DataFrame:
    """One row per run: method, group, split, seed and every Table 2 metric of its split."""
    rows = []
    for r in results:
        m = metrics.summary(r[part]["ranks"], metrics.SPLIT_METRICS[r["split"]])
        rows.append({k: r[k] for k in ("method", "group", "split", "seed", "epochs", "best_epoch", "train_s", "score_s")} | m)
    return pd.DataFrame(rows)


def curves(results: list[dict]) -> pd.DataFrame:
    """The training curves of some runs, one row per run and epoch (with the run's seed)."""
    return pd.concat([r["history"].assign(seed=r["seed"]) for r in results], ignore_index=True)


def run_summaries(results: list[dict], names, part: str = "test") -> pd.DataFrame:
    """One row per run: seed, epochs, best epoch, training seconds, lyrics/s and the metrics `names` on `part`."""
    return pd.DataFrame([{"seed": r["seed"], "epochs": r["epochs"], "best epoch": r["best_epoch"],
                          "train s": r["train_s"], "lyrics/s": r["history"]["lyrics_per_s"].mean(),
                          **metrics.summary(r[part]["ranks"], names)} for r in results])


def grid_jobs(methods, groups, splits, seeds: int, seed: int, keep: str = "") -> list[dict]:
    """`run_grid`'s jobs: every split × group × method × seed (seed, seed+1, ...); the first seed's model of every
    method × group on split `keep` is kept (keep_model)."""
    return [{"method": m, "group": g, "split": s, "seed": seed + k, "keep_model": s == keep and k == 0}
            for s in splits for g in groups for m in methods for k in range(seeds)]


def pool_sizes(results: list[dict]) -> dict[str, int]:
    """Candidate songs per test query of each split the runs cover."""
    return {r["split"]: r["test_pairs"] // len(r["test"]["ranks"]) for r in results}


def cost_table(runs: pd.DataFrame, results: list[dict]) -> pd.DataFrame:
    """Per method and split: mean epochs, best epoch, training and scoring seconds, test pairs and pairs/s scored."""
    cost = runs.groupby(["method", "split"])[["epochs", "best_epoch", "train_s", "score_s"]].mean().round(2)
    pairs = {r["split"]: r["test_pairs"] for r in results}
    cost["test pairs"] = [pairs[s] for _, s in cost.index]
    cost["pairs/s scored"] = (cost["test pairs"] / cost["score_s"]).round(0)
    return cost
