"""Lyric-model throughput: training lyrics/s and attention scoring pairs/s, each as a ratio against a baseline
measured in the same run.

- training: song-grouped batches (each lyric encoded once per batch, `training.song_batches`) against the naive
  batching that encodes the lyric of every one of the 100 pairs; and 2 torch threads against 1.
- scoring: `scoring.score` (all image × song pairs of a block in one batched call) against a per-pair loop.

Run: `make bench` (or `.venv/bin/python -m pytest benchmarks/bench_lyrics.py -q -s`). Prints, does not assert a
speed. The data are random lyrics of the experiment's shape (586 songs × 5 images, ~100 words), so the
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


def _pair_loop(model, data, images, songs, n, seed=1):
    """Pairs/s scoring one (image, song) pair at a time: the naive baseline."""
    rng = np.random.default_rng(seed)
    pick_i, pick_s = rng.choice(images, n), rng.choice(songs, n)
    with torch.no_grad():
        t = time.perf_counter()
        for i, s in zip(pick_i, pick_s):
            scoring.predict_pairs(model, data, np.array([i]), np.array([s]))
        return n / (time.perf_counter() - t)


def _grid(model, data, images, songs):
    t = time.perf_counter()
    scoring.score(model, data, images, songs)
    return len(images) * len(songs) / (time.perf_counter() - t)


def test_attention_scoring_throughput():
    """Both readings of Eq. 10 on the section split's grid (586 images × 586 songs): the per-pair loop (baseline),
    the batched scorer, and Our without attention; and Eq. 10 as written against its linear reading."""
    data = _data()
    cfg = networks.Config()
    images = np.arange(0, len(data.images), PER_SONG)
    songs = np.arange(len(data.songs))
    torch.set_num_threads(1)
    rates = {}
    for method in ("Our-attention", "Our-attention-linear", "Our"):
        torch.manual_seed(0)
        model = networks.build_model(method, data, cfg).eval()
        naive = _pair_loop(model, data, images, songs, NAIVE_PAIRS // (3 if method == "Our-attention" else 1))
        rates[method] = (naive, _grid(model, data, images, songs))
        print(f"\n{method} scoring of {len(images)} × {len(songs)} pairs, 1 thread: per-pair loop {naive:.0f} pairs/s "
              f"(baseline = 1.00), batched {rates[method][1]:.0f} pairs/s = {rates[method][1] / naive:.0f}x")
    eq10, linear = rates["Our-attention"][1], rates["Our-attention-linear"][1]
    print(f"Eq. 10 as written (a second pass per pair) scores {eq10:.0f} pairs/s = {eq10 / linear:.3f}x its linear "
          f"reading ({linear:.0f} pairs/s, one pass per song); the section test grid takes ~{len(images) ** 2 / eq10:.0f} s "
          "per Our-attention run")


def test_eq10_training_throughput():
    """Training steps of Eq. 10 (a second pass per pair, with its backward) against the linear reading."""
    data = _data()
    cfg = networks.Config()
    rng = np.random.default_rng(0)
    batches = training.song_batches(np.arange(len(data.images)), data, cfg.batch_pairs, rng)[:STEPS]
    torch.set_num_threads(1)
    t = {}
    for method in ("Our-attention-linear", "Our-attention"):
        torch.manual_seed(0)
        model = networks.build_model(method, data, cfg)
        _train_steps(model, data, batches[:1], False)
        t[method] = _train_steps(model, data, batches, False)
    pairs = sum(len(b) for b, _ in batches)
    print(f"\ntraining, 1 thread: Our-attention-linear {pairs / t['Our-attention-linear']:.0f} pairs/s (baseline = 1.00), "
          f"Our-attention (Eq. 10) {pairs / t['Our-attention']:.0f} pairs/s = "
          f"{t['Our-attention-linear'] / t['Our-attention']:.2f}x")


def _second_pass_inputs(model, data, images, songs):
    """What OurAttention.pairs hands its second pass for aligned pairs: per-song input projections, scales."""
    uniq, pos = np.unique(songs, return_inverse=True)
    st = scoring.encode_songs(model, data, uniq)
    pos = torch.as_tensor(pos)
    s = model.weights({k: v[pos] for k, v in st.items()}, model.query(data.top_tags[torch.as_tensor(images)]))
    lengths = st["lengths"][pos]
    scale = s * lengths[:, None]
    scale_rev = scale.gather(-1, st["rev"][pos])
    return torch.stack([st["xf"], st["xb"]]), torch.stack([scale, scale_rev]), pos, lengths


def test_eq10_compiled_second_pass_against_the_pytorch_loop():
    """i2s.eq10.second_pass (one compiled loop) against networks.rerun (the PyTorch loop, baseline = 1.00): training
    batches (forward and backward) and a scoring block (forward only), 1 thread, the same inputs."""
    from i2s import eq10
    data = _data()
    cfg = networks.Config()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = networks.build_model("Our-attention", data, cfg)
    cells = [model.lstm.fwd, model.lstm.bwd]
    eq10.kernel()  # built (or loaded) before timing
    rng = np.random.default_rng(0)
    batches = training.song_batches(np.arange(len(data.images)), data, cfg.batch_pairs, rng)[:STEPS]

    with torch.no_grad():  # the second pass alone is timed; its inputs are leaves
        inputs = [_second_pass_inputs(model, data, images, songs) for images, songs in batches]

    def run(fn, grad):
        t = time.perf_counter()
        for xproj, scale, pos, lengths in inputs:
            with torch.set_grad_enabled(grad):
                x, s = xproj.clone().requires_grad_(grad), scale.clone().requires_grad_(grad)
                out = fn(x, s, pos, lengths)
                if grad:
                    out.sum().backward()
        return time.perf_counter() - t

    loop = lambda x, s, p, n: networks.rerun(cells, x[:, p], s, n)
    fused = lambda x, s, p, n: eq10.second_pass(cells, x, s, p, n)
    pairs = sum(len(b) for b, _ in batches)
    for grad, what in ((True, "training (forward + backward)"), (False, "scoring (forward)")):
        run(fused, grad)
        t_loop, t_fused = run(loop, grad), run(fused, grad)
        print(f"\nEq. 10 second pass, {what}, {pairs} pairs in batches of ~{cfg.batch_pairs}: PyTorch loop "
              f"{pairs / t_loop:.0f} pairs/s (baseline = 1.00), compiled {pairs / t_fused:.0f} pairs/s = "
              f"{t_loop / t_fused:.2f}x")
    images = np.arange(0, len(data.images), PER_SONG)[:32]
    songs = np.arange(64)  # scoring.SONG_BLOCK songs of a block
    grid_i, grid_s = np.repeat(images, len(songs)), np.tile(songs, len(images))
    with torch.no_grad():
        xproj, scale, pos, lengths = _second_pass_inputs(model, data, grid_i, grid_s)
        t = time.perf_counter(); loop(xproj, scale, pos, lengths); t_loop = time.perf_counter() - t
        t = time.perf_counter(); fused(xproj, scale, pos, lengths); t_fused = time.perf_counter() - t
    n = len(grid_i)
    print(f"Eq. 10 second pass, a scoring block of {len(images)} images x {len(songs)} songs: PyTorch loop "
          f"{n / t_loop:.0f} pairs/s (baseline = 1.00), compiled {n / t_fused:.0f} pairs/s = {t_loop / t_fused:.2f}x")
