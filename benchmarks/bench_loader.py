"""Loader throughput on a generated 100,000-row triplets.csv (5,000 songs, 2,000 photo files).

Run: `make bench` (or `.venv/bin/python -m pytest benchmarks/bench_loader.py -q -s`). Prints, does not assert a
speed. Language identification (lingua) runs once per distinct song, so it scales with songs, not rows.
"""
from __future__ import annotations

import io
import time

import numpy as np
import pandas as pd
from PIL import Image

from i2s import shuttersong as data

ROWS, SONGS, PHOTOS = 100_000, 5_000, 2_000
WORDS = "love night summer dance heart baby tonight forever dream fire rain sun road home light sky".split()


def make_dataset(root, rows: int = ROWS, songs: int = SONGS, photos: int = PHOTOS, seed: int = 0):
    """A Shuttersong-layout folder with `rows` triplets over `songs` English songs and `photos` JPEG files."""
    rng = np.random.default_rng(seed)
    (root / "images").mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(buf, "JPEG")
    for k in range(photos):
        (root / "images" / f"IMG_{k:06d}.jpg").write_bytes(buf.getvalue())
    titles = [f"Song {k}" for k in range(songs)]
    lyrics = [" ".join(rng.choice(WORDS, 120)) for _ in titles]
    pd.DataFrame({"title": titles, "artist": "Band", "lyric": lyrics}).to_csv(root / "lyrics.csv", index=False)
    song = rng.integers(0, songs, rows)
    pd.DataFrame({"image": [f"IMG_{k:06d}.jpg" for k in rng.integers(0, photos, rows)],
                  "title": [titles[s] for s in song], "artist": "Band",
                  "favorite_count": rng.integers(0, 50, rows).astype(str), "mood": ""}).to_csv(root / "triplets.csv",
                                                                                              index=False)
    return root


def test_loader_on_100k_rows(tmp_path, monkeypatch):
    root = make_dataset(tmp_path)
    spent = {"language": 0.0}
    detect = data.english_mask

    def timed(lyrics):
        t = time.perf_counter()
        out = detect(lyrics)
        spent["language"] += time.perf_counter() - t
        return out

    monkeypatch.setattr(data, "english_mask", timed)
    t = time.perf_counter()
    kept, rej = data.load_shuttersong(root)
    total = time.perf_counter() - t
    assert len(kept) + len(rej) == ROWS
    print(f"\nloader: {ROWS:,} rows ({SONGS:,} songs, {PHOTOS:,} photo files) in {total:.1f} s, of which "
          f"language identification {spent['language']:.1f} s; {len(kept):,} kept, {len(rej):,} rejected")
