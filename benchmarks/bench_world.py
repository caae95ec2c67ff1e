"""World rendering throughput: parallel rendering as a ratio against serial, measured in the same run.

Run: `make bench` (or `.venv/bin/python -m pytest benchmarks -q -s`). Prints, does not assert a speed.
"""
from __future__ import annotations

import time

import numpy as np

from i2s import render, synth

N = 400


def _jobs(tmp_path):
    rng = np.random.default_rng(0)
    scenes, glyphs = render.load_scenes(), synth.glyphs_by_tag()
    themes = list(scenes["themes"])
    return [(synth.photo_spec(None, str(rng.choice(themes)), scenes, glyphs, rng, 0.35, 0.65, (0, 9, k)),
             str(tmp_path / f"{k}.jpg"), 160) for k in range(N)]


def test_render_throughput(tmp_path):
    jobs = _jobs(tmp_path)
    synth._warm()
    t = time.perf_counter()
    synth.render_all(jobs, 1, "serial")
    serial = time.perf_counter() - t
    t = time.perf_counter()
    synth.render_all(jobs, 2, "2 processes")
    parallel = time.perf_counter() - t
    print(f"\nworld photos: serial {N / serial:.0f} img/s (baseline = 1.00), "
          f"2 processes {N / parallel:.0f} img/s = {serial / parallel:.2f}x serial")
    full = synth.target_counts(1.0)["raw"] + synth.WorldParams().scene_graph_images
    print(f"at this rate the default world's {full:,} photos take ~{full / (N / parallel) / 60:.1f} min on 2 processes")
