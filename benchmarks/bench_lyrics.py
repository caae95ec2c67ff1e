"""Lyric-model throughput: training lyrics/s and attention scoring pairs/s, each as a ratio against a baseline
measured in the same run.

- training: song-grouped batches (each lyric encoded once per batch, `training.song_batches`) against the naive
  batching that encodes the lyric of every one of the 100 pairs; and 2 torch threads against 1.
- scoring: `scoring.score` (all image × song pairs of a block in one batched call) against a per-pair loop.

Run: `.venv/bin/python -m pytest benchmarks/bench_lyrics.py -q -s` (the file named explicitly: pytest's default
file pattern does not match bench_*.py). Prints, does not assert a speed. The data are random lyrics of the experiment's shape (586 songs × 5 images, ~100 words), so the
benchmark needs no pipeline output.
"""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from gensim.models import KeyedVectors

from i2s import losses, lyricdata, networks, scoring, training

SONGS, PER_SONG, WORDS, TAGS = 586, 5, 2000, 329
STEPS = 8          # training steps timed per variant
NAIVE_PAIRS = 300  # pairs scored one at a time


def _data(seed=0):
    rng = np.random.default_rng(seed)
    vocab = [f"w{i}" for i in range(WORDS)]
    tag_words = [f"t{i}" for i in range(TAGS)]
    kv = KeyedVectors(50)
    kv.add_vectors(vocab + tag_words, rng.normal(size=(WORDS + TAGS, 50)).astype(np.float32))
    sub, rows = [], []
    for s in range(SONGS):
        lyric = " ".join(rng.choice(vocab, size=int(rng.integers(39, 218))))
        for k in range(PER_SONG):
            sub.append({"image": f"i{s}_{k}", "song_id": f"s{s:04d}", "lyric": lyric})
            rows.append({"image": f"i{s}_{k}", "song_id": f"s{s:04d}",
                         **{f"obj:{t}": v for t, v in zip(tag_words, rng.beta(1, 30, TAGS))}})
    return lyricdata.build_data(pd.DataFrame(sub), pd.DataFrame(rows), "obj", kv)


def _train_steps(model, data, batches, naive):
    opt = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-8)
    model.train()
    t = time.perf_counter()
    for images, songs in batches:
        if naive:  # encode the lyric of every pair, repeated songs included
            pred = model.pairs(scoring.encode_songs(model, data, songs), None)
        else:
            pred = scoring.predict_pairs(model, data, images, songs)
        loss = losses.loss_value("mse", pred, data.targets[torch.as_tensor(images)])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - t


def test_training_throughput():
    data = _data()
    cfg = networks.Config()
    rng = np.random.default_rng(0)
    images = np.arange(len(data.images))
    grouped = training.song_batches(images, data, cfg.batch_pairs, rng)[:STEPS]
    flat = rng.permutation(images)
    naive = [(b, data.image_song.numpy()[b]) for b in np.array_split(flat[:STEPS * 100], STEPS)]
    torch.manual_seed(0)
    model = networks.build_model("Our", data, cfg)
    torch.set_num_threads(1)
    _train_steps(model, data, grouped[:1], False)  # warm-up
    t_naive = _train_steps(model, data, naive, True)
    t_grouped = _train_steps(model, data, grouped, False)
    torch.set_num_threads(2)
    t_grouped2 = _train_steps(model, data, grouped, False)
    torch.set_num_threads(1)
    pairs = STEPS * 100
    lyrics = sum(len(np.unique(s)) for _, s in grouped)
    print(f"\nOur training, 1 thread: naive batches {pairs / t_naive:.0f} pairs/s ({pairs / t_naive:.0f} lyrics/s, "
          f"baseline = 1.00); song-grouped {pairs / t_grouped:.0f} pairs/s ({lyrics / t_grouped:.0f} lyrics/s) "
          f"= {t_naive / t_grouped:.2f}x; song-grouped on 2 threads {lyrics / t_grouped2:.0f} lyrics/s "
          f"= {t_grouped / t_grouped2:.2f}x of 1 thread")
    print(f"an epoch of the section split's {len(data.songs)} songs takes ~{len(data.songs) / (lyrics / t_grouped):.1f} s "
          "of training (1 thread)")


def test_attention_scoring_throughput():
    data = _data()
    cfg = networks.Config()
    torch.manual_seed(0)
    model = networks.build_model("Our-attention", data, cfg).eval()
    images = np.arange(0, len(data.images), PER_SONG)
    songs = np.arange(len(data.songs))
    rng = np.random.default_rng(1)
    pick_i, pick_s = rng.choice(images, NAIVE_PAIRS), rng.choice(songs, NAIVE_PAIRS)
    torch.set_num_threads(1)
    with torch.no_grad():
        t = time.perf_counter()
        for i, s in zip(pick_i, pick_s):  # the naive way: one (image, song) pair at a time
            scoring.predict_pairs(model, data, np.array([i]), np.array([s]))
        naive = NAIVE_PAIRS / (time.perf_counter() - t)
    t = time.perf_counter()
    scoring.score(model, data, images, songs)
    batched = len(images) * len(songs) / (time.perf_counter() - t)
    our = networks.build_model("Our", data, cfg).eval()
    t = time.perf_counter()
    scoring.score(our, data, images, songs)
    plain = len(images) * len(songs) / (time.perf_counter() - t)
    print(f"\nOur-attention scoring of {len(images)} × {len(songs)} pairs (section's grid), 1 thread: per-pair loop "
          f"{naive:.0f} pairs/s (baseline = 1.00), batched {batched:.0f} pairs/s = {batched / naive:.0f}x; "
          f"Our without attention {plain:.0f} pairs/s = {plain / naive:.0f}x")
