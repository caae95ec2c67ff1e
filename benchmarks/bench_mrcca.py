"""MR-CCA training time at the paper's full scale (K = 10, d = 10): one local- and one global-reference fit on
the fast path, beside the paper's Table 1 seconds (one 2.8 GHz CPU) as ratios, and the fast path's speed-up over
the reference MRCCA measured in the same run. Also one repeat of the protocol's sweeps beside its BLAS floor: the
time its fits' unavoidable float32 products take at this machine's rates, measured in the same run.

Run: `.venv/bin/python -m pytest benchmarks/bench_mrcca.py -q -s` (or `make bench`). Needs a generated world:
$I2S_MV_WORLD, else data/00_mv_world (`python -m i2s.musicvideos --params params.yaml` with mv_world.scale 1.0
for full scale). The reference global fit takes tens of minutes; it runs only with I2S_BENCH_GLOBAL_REFERENCE=1.
Prints, does not assert a speed. Both paths run single-threaded BLAS, as the protocol's workers do. The fast
path's image embedding (sqrt of the histogram blocks, the same for every fit) is made once beforehand, as sweep
does; the load average is printed because other jobs on the machine slow both paths alike.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from i2s import mrcca, musicvideos, paper, paths

K, D, SEED = 10, 10, 0


def _world():
    root = Path(os.environ.get("I2S_MV_WORLD") or paths.data("00_mv_world"))
    if not (root / "music.npy").exists():
        pytest.skip(f"no music-video world at {root} (set I2S_MV_WORLD)")
    w = musicvideos.load(root)
    meta = w.meta
    return w, dict(music=w.music, images=w.images, frame_segment=w.frames["segment"].to_numpy(), prefs=w.prefs,
                   n_train=int((w.segments["split"] == "train").sum()), combine="mean",
                   image_blocks=[slice(a, b) for _, a, b, _ in meta["image_blocks"]],
                   image_metrics=[m for *_, m in meta["image_blocks"]],
                   music_blocks=[slice(a, b) for _, a, b, _ in meta["music_blocks"]],
                   music_metrics=[m for *_, m in meta["music_blocks"]])


def _paper_seconds():
    return {ref: paper.result("MR-CCA Table 1", "training s", f"MR-CCA {ref} reference") for ref in mrcca.REFERENCES}


def test_fit_time_against_the_paper_and_the_reference_path():
    w, data = _world()
    paper = _paper_seconds()
    load = os.getloadavg()[0]
    side = mrcca.embed_images(data["images"], data["image_blocks"], data["image_metrics"])
    with threadpool_limits(1):
        fast = {ref: mrcca.run_setting(**data, K=K, d=D, seed=SEED, references=ref, image_side=side)[0]
                for ref in mrcca.REFERENCES}
        slow = {"local": mrcca.run_repeat(**data, K=K, d=D, seed=SEED)}
        if os.environ.get("I2S_BENCH_GLOBAL_REFERENCE") == "1":
            slow["global"] = mrcca.run_repeat(**data, K=K, d=D, seed=SEED, references="global")
    print(f"\nMR-CCA fit, K={K}, d={D}, {len(w.music):,} segments, {len(w.frames):,} pairs "
          f"({fast['local']['train_votes']:,} training votes), 1 BLAS thread, "
          f"load average {load:.1f} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores:")
    for ref in mrcca.REFERENCES:
        s = fast[ref]["fit_s"]
        line = (f"  {ref:6s} references: fast path {s:7.1f} s = {s / paper[ref]:.3f} x the paper's {paper[ref]:.1f} s"
                f" | MR-CCA consistency {100 * fast[ref]['mr-cca']:.2f}%")
        if ref in slow:
            r = slow[ref]["fit_s"]
            line += (f" | reference path {r:7.1f} s ({100 * slow[ref]['mr-cca']:.2f}%): "
                     f"speed-up {r / s:.1f}x")
        print(line)
    print(f"  global / local training time: ours {fast['global']['fit_s'] / fast['local']['fit_s']:.1f}x, "
          f"paper {paper['global'] / paper['local']:.1f}x")


def test_d_sweep_time_by_sigma_reading():
    """Fig. 2B's d sweep of one repeat (K = 10, d = 2..20) under both sigma readings, in the same run.

    With one sigma per reference (the default) a reference's DtRT column is the same for every d, so one CCA
    factorisation per cluster serves the sweep; one sigma per set fits each d on its own.
    """
    w, data = _world()
    side = mrcca.embed_images(data["images"], data["image_blocks"], data["image_metrics"])
    ds = list(range(2, 21))
    out = {}
    with threadpool_limits(1):
        for sigma in mrcca.SIGMAS:
            t = time.perf_counter()
            rows = mrcca.run_setting(**data, K=K, d=ds, seed=SEED, image_side=side, sigma=sigma)
            out[sigma] = (time.perf_counter() - t, sum(r["mr-cca"] for r in rows) / len(rows))
    print(f"\nMR-CCA d sweep, K={K}, d=2..20 ({len(ds)} fits), {len(w.frames):,} pairs, 1 BLAS thread:")
    for sigma, (s, c) in out.items():
        print(f"  sigma per {sigma:9s}: {s:7.1f} s for the sweep ({s / len(ds):.1f} s a fit), "
              f"mean MR-CCA consistency {100 * c:.2f}%")
    print(f"  shared factorisation speed-up: {out['set'][0] / out['reference'][0]:.1f}x")


def _rates(n=4000):
    """This machine's single-thread float32 rates (flop/s) for the products a fit is made of."""
    import numpy as np
    import scipy.linalg as sla
    rng = np.random.default_rng(0)
    A = rng.random((2 * n, n), dtype=np.float32)
    B = rng.random((2 * n, n), dtype=np.float32)
    C = (A.T @ A) / np.float32(2 * n)
    C.flat[::n + 1] += 1
    L = sla.cholesky(C, lower=True, check_finite=False)
    out = {}
    for name, flops, fn in (("gemm", 2 * 2 * n * n * n, lambda: A.T @ B), ("syrk", 2 * n * n * n, lambda: A.T @ A),
                            ("potrf", n ** 3 / 3, lambda: sla.cholesky(C, lower=True, check_finite=False)),
                            ("trsm", n ** 3, lambda: sla.solve_triangular(L, C, lower=True, check_finite=False))):
        fn()
        t = time.perf_counter()
        fn()
        out[name] = flops / (time.perf_counter() - t)
    return out


def _floor_seconds(sizes, rates, d, image_dims, music_dims, sigma_rows=None):
    """BLAS time of one fit's unavoidable products: distances to the references, the Gram and cross products,
    two Cholesky factorisations and the two triangular solves of the whitened cross-covariance.

    sizes: (frames, segments) of each cluster; sigma_rows: the rows the DtRT is computed on once for all
    clusters (global references), else each cluster's own rows."""
    total, n_all = 0.0, sum(n for n, _ in sizes)
    R_global = mrcca.n_references(n_all, d)
    if sigma_rows is not None:
        total += 2 * sigma_rows * R_global * (image_dims + music_dims) / rates["gemm"]
    for n, m in sizes:
        R = R_global if sigma_rows is not None else mrcca.n_references(n, d)
        if sigma_rows is None:
            total += 2 * n * R * (image_dims + music_dims) / rates["gemm"]
        total += (n + m) * R * R / rates["syrk"] + 2 * m * R * R / rates["gemm"]
        total += 2 * R ** 3 / 3 / rates["potrf"] + 2 * R ** 3 / rates["trsm"]
    return total


def test_one_repeat_against_its_blas_floor():
    """One repeat of the protocol's sweeps (K = 3..20 at d = 6, d = 2..20 at K = 10) and one global Table 1 fit,
    timed on the fast path, beside the time the same fits' unavoidable BLAS products take at this machine's
    own rates measured in the same run (the floor no implementation of this protocol goes below in float32).
    """
    import numpy as np
    w, data = _world()
    side = mrcca.embed_images(data["images"], data["image_blocks"], data["image_metrics"])
    image_dims, music_dims = data["images"].shape[1], data["music"].shape[1]
    fseg = data["frame_segment"]
    # the fitting frames of this repeat's split (val_fraction as the protocol), for the clusters' segment counts
    fit_seg = fseg[mrcca.repeat_inputs(data["music"], fseg, data["prefs"], data["n_train"], SEED, 0.1).frames]
    tasks = [(k, [6], "local") for k in range(3, 21) if k != 10] + [(10, list(range(2, 21)), "local"),
                                                                   (10, [10], "global")]
    rows_out = []
    with threadpool_limits(1):
        rates = _rates()
        for K, ds, ref in tasks:
            t = time.perf_counter()
            labels = mrcca.run_setting(**data, K=K, d=ds, seed=SEED, references=ref, val_fraction=0.1,
                                       image_side=side, details=True)[0]["labels"]
            s = time.perf_counter() - t
            # the floor of the same fits, from the sizes of the cut this run made
            sizes = [(int((labels == c).sum()), len(np.unique(fit_seg[labels == c]))) for c in range(labels.max() + 1)]
            floor = _floor_seconds(sizes, rates, min(ds), image_dims, music_dims,
                                   sigma_rows=len(labels) if ref == "global" else None)
            rows_out.append((K, ds, ref, s, floor, max(n for n, _ in sizes)))
    print(f"\nOne repeat on the fast path, 1 BLAS thread; float32 rates here: "
          + ", ".join(f"{k} {v / 1e9:.0f} GFlop/s" for k, v in rates.items()))
    for K, ds, ref, s, floor, big in rows_out:
        dtxt = f"d={ds[0]}" if len(ds) == 1 else f"d={ds[0]}..{ds[-1]}"
        print(f"  K={K:2d} {dtxt:9s} {ref:6s}: {s:6.1f} s, BLAS floor {floor:6.1f} s ({s / floor:.1f}x); "
              f"largest cluster {big:,} frames")
    s, f = sum(r[3] for r in rows_out), sum(r[4] for r in rows_out)
    print(f"  all: {s:.0f} s against a floor of {f:.0f} s ({s / f:.1f}x)")
