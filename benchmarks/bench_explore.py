"""Exploration latency (notebooks/explore.ipynb): an uploaded phone photo → boxes, tags and the top-10 songs of the
library with their attention weights and the views the notebook shows, for every method and tag group; and a
lyric → the top-10 photos. The issue's budget is 2 s per query on a 2-core laptop: printed as a share of it.

Uses the project's artefacts when `make reproduce` wrote them (detector of notebook 02, lyric models of notebook
04), else a stand-in of the experiment's shape in a temporary folder: 586 songs × 5 photos, lyrics of 39-217 words
from GloVe's vocabulary, the world's object and attribute tags, the ImageNet-initialised detector and untrained lyric
models of the default Config (a query costs the same whatever the weights learned).

Run: `.venv/bin/python -m pytest benchmarks/bench_explore.py -q -s` (the file named explicitly: pytest's default
file pattern does not match bench_*.py). Prints, does not assert a speed.
"""
from __future__ import annotations

import io
import os
import time

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image, ImageFilter

from i2s import artefacts, detector, explore, lyricdata, networks, paths, persistence, scenegraphs, text

BUDGET_S = 2.0
SONGS, PER_SONG = 586, 5
REPEATS = 3            # queries per method × group and thread count (the median is printed)
PHONE = (4032, 3024)   # a 12-megapixel phone photo, JPEG


def _phone_photo(seed=0) -> bytes:
    """A smooth 12-MP JPEG (smooth like a photo, so it compresses like one: a few MB)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).filter(ImageFilter.GaussianBlur(2))
    big = np.asarray(small.resize(PHONE, Image.BICUBIC), np.int16)
    big = np.clip(big + rng.normal(0, 6, big.shape), 0, 255).astype(np.uint8)  # sensor noise: a photo's file size
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, "JPEG", quality=90)
    return buf.getvalue()


def _stand_in(root):
    """Artefacts of the experiment's shape under `root` (see the module docstring)."""
    rng = np.random.default_rng(0)
    objects, attributes = scenegraphs.vocabularies()
    words = text.vectors().index_to_key[100:20_100]  # common words, as lyrics use
    img_dir = root / "images"
    img_dir.mkdir(parents=True)
    rows = []
    for s in range(SONGS):
        lyric = " ".join(rng.choice(words, size=int(rng.integers(39, 218))))
        for k in range(PER_SONG):
            name = f"IMG_{s:04d}{k}.jpg"
            Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).resize((160, 160)).save(img_dir / name)
            rows.append({"image": name, "title": f"Song {s}", "artist": f"Artist {s % 97}", "song_id": f"song_{s:04d}",
                         "lyric": lyric, "image_path": str(img_dir / name)})
    subset = pd.DataFrame(rows)
    (root / "data" / "01_data_stats").mkdir(parents=True)
    subset.to_csv(root / "data" / "01_data_stats" / "subset.csv", index=False)
    subset.to_csv(root / "data" / "01_data_stats" / "triplets.csv", index=False)
    probs = rng.beta(0.3, 6, (len(subset), len(objects) + len(attributes))).astype(np.float32)
    table = pd.concat([subset[["image", "image_path", "song_id"]],
                       pd.DataFrame(probs, columns=[f"obj:{o}" for o in objects] + [f"attr:{a}" for a in attributes])],
                      axis=1)
    artefacts.write("tags", table)
    detector.save_checkpoint(detector.build_detector(objects, attributes), artefacts.path("detector"))
    cfg = networks.Config()
    train = np.arange(SONGS - 100)  # the dagger split's 100 test songs are unseen
    for group in lyricdata.GROUPS:
        data = lyricdata.build_data(subset, table, group, text.vectors(), cfg.top_k, cfg.max_tokens)
        for method in networks.METHODS:
            torch.manual_seed(0)
            persistence.save_model(networks.build_model(method, data, cfg, train), persistence.model_file(method, group),
                              data, method, train)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    if not explore.missing_artefacts():
        yield f"the project's artefacts in {paths.root()}"
        return
    root = tmp_path_factory.mktemp("explore_bench")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("I2S_ROOT", str(root))
        t = time.perf_counter()
        _stand_in(root)
        yield f"a stand-in of the experiment's shape (built in {time.perf_counter() - t:.0f} s)"


def _photo_query(ex, photo, method, group):
    """What the notebook does for an upload: decode, detect, rank, and render the figure and the song table."""
    q = ex.tag_image(photo, "phone.jpg")
    songs = ex.songs_for(q, method, group)
    explore.songs_html(songs, method, group)
    fig = explore.detection_figure(q)
    fig.savefig(io.BytesIO(), format="png")  # what display(fig) does in the notebook
    import matplotlib.pyplot as plt
    plt.close(fig)


def test_photo_and_lyric_query_latency(project):
    photo = _phone_photo()
    print(f"\nexplore latency on {project}; upload: a {PHONE[0]}×{PHONE[1]} JPEG of {len(photo) / 1e6:.1f} MB; "
          f"{os.cpu_count()} cores; budget {BUDGET_S:.0f} s per query")
    t = time.perf_counter()
    ex = explore.Explorer(threads=1)
    _photo_query(ex, photo, "Our-attention", "obj-attr")
    cold = time.perf_counter() - t
    for m in ex.methods():  # load every model and Data once: a session's first query of each pays this
        for g in ex.groups():
            ex.model(m, g)
    print(f"first query of a session (loads word vectors, Data, detector and model): {cold:.2f} s")
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for m in ex.methods():
            for g in ex.groups():
                times = []
                for _ in range(REPEATS):
                    t = time.perf_counter()
                    _photo_query(ex, photo, m, g)
                    times.append(time.perf_counter() - t)
                rows.append({"threads": threads, "method": m, "group": g, "median_s": np.median(times), "max_s": max(times)})
    r = pd.DataFrame(rows)
    r["share_of_budget"] = r["median_s"] / BUDGET_S
    print("photo → tags + top-10 songs (+ figure and table), per query:")
    print(r.round(3).to_string(index=False))
    for threads in (1, 2):
        worst = r.loc[r["threads"] == threads, "max_s"].max()
        print(f"slowest query on {threads} thread(s): {worst:.2f} s = {worst / BUDGET_S:.2f} of the budget")
    parts = {}
    torch.set_num_threads(1)
    t = time.perf_counter()
    pixels = explore.decode_image(photo, "phone.jpg")
    parts["decode + shrink the JPEG"] = time.perf_counter() - t
    t = time.perf_counter()
    q = ex.tag_image(pixels, "phone.jpg")
    parts["detector"] = time.perf_counter() - t
    t = time.perf_counter()
    songs = ex.songs_for(q, "Our-attention", "obj-attr")
    parts["rank the library + attention (Our-attention, obj-attr)"] = time.perf_counter() - t
    t = time.perf_counter()
    explore.songs_html(songs, "Our-attention", "obj-attr")
    parts["song table (HTML)"] = time.perf_counter() - t
    t = time.perf_counter()
    import matplotlib.pyplot as plt
    fig = explore.detection_figure(q)
    fig.savefig(io.BytesIO(), format="png")
    plt.close(fig)
    parts["detection figure (PNG)"] = time.perf_counter() - t
    print("where a query's time goes (1 thread): " + "; ".join(f"{k} {v:.3f} s" for k, v in parts.items()))
    song = ex.library()["song_id"].iloc[0]
    lyric = ex.library()["lyric"].iloc[0]
    for threads in (1, 2):
        torch.set_num_threads(threads)
        for m in ("BoW", "Our", "Our-attention"):
            t = time.perf_counter()
            explore.images_html(ex.images_for(song, m, "obj-attr"))
            a = time.perf_counter() - t
            t = time.perf_counter()
            ex.images_for(lyric, m, "obj-attr")
            b = time.perf_counter() - t
            print(f"lyric → top-10 photos of {len(ex.data('obj-attr').images)}, {m}, {threads} thread(s): a library "
                  f"song {a:.2f} s (with thumbnails), the same words typed {b:.2f} s")
    torch.set_num_threads(1)
