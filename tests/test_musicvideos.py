"""The music-video world and the MR-CCA experiment protocol on it."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from i2s import features, mrcca, musicvideos


@pytest.fixture(scope="module")
def mv(tmp_path_factory):
    out = tmp_path_factory.mktemp("mv")
    summary = musicvideos.generate(out, musicvideos.MVParams(scale=0.01, jobs=1, seed=3))
    return summary, musicvideos.load(out)


def test_world_has_the_papers_shape(mv):
    summary, w = mv
    assert w.music.shape == (summary["segments"], 133)
    assert w.images.shape == (summary["pairs"], sum(s.stop - s.start for s in features.block_slices()))
    assert summary["pairs"] == round(47888 * 0.01) and summary["segments"] == round(22632 * 0.01)
    assert (w.frames.groupby("segment").size() >= 1).all() and w.frames["segment"].nunique() == len(w.music)
    semantic = w.music[:, len(musicvideos.ENS_COLUMNS):]
    assert np.allclose(semantic.sum(1), 1, atol=1e-4), "semantic part is a posterior over words"
    # random partners come from another video
    seg_video = w.segments.set_index("segment")["video"]
    fr_seg = w.frames.set_index("frame")["segment"]
    assert (seg_video[fr_seg[w.prefs["frame_random"]].to_numpy()].to_numpy()
            != seg_video[w.prefs["segment"]].to_numpy()).all()


def test_labelers_prefer_the_music_video_pair_about_as_often_as_the_papers(mv):
    _, w = mv
    rate = w.prefs["prefers_mv"].mean()
    assert 0.8 < rate < 0.97  # 89.2% in expectation; a small world wobbles
    # labelers disagree on some pairs
    per_pair = w.prefs.groupby("segment")["prefers_mv"].mean()
    assert ((per_pair > 0) & (per_pair < 1)).any()


def test_same_seed_same_world(tmp_path, mv):
    summary, w = mv
    musicvideos.generate(tmp_path, musicvideos.MVParams(scale=0.01, jobs=2, seed=3))
    again = musicvideos.load(tmp_path)
    assert np.array_equal(again.music, w.music) and np.array_equal(again.images, w.images)
    pd.testing.assert_frame_equal(again.prefs, w.prefs)


def test_descriptor_blocks_and_values():
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (160, 160, 3), dtype=np.uint8))
    f = features.image_features(img)
    slices = features.block_slices()
    assert len(slices) == len(features.BLOCKS) and slices[-1].stop == len(f)
    for (name, dist), s in zip(features.BLOCKS, slices):
        if dist == "hellinger":
            assert f[s].min() >= 0 and 0.99 < f[s].sum() / max(1, round(f[s].sum())) < 1.01, name
    flat = features.image_features(Image.new("RGB", (160, 160), (200, 30, 30)))
    assert flat[slices[0]].argmax() == 0  # a red image's hue histogram peaks at red


def test_preference_triples_split_as_the_protocol():
    prefs = pd.DataFrame({"segment": [0, 1, 2], "frame_mv": [0, 1, 2], "frame_random": [2, 0, 1],
                          "labeler": 0, "prefers_mv": [True, False, True]})
    frame_segment = np.array([0, 1, 2])
    train = np.array([True, True, False])
    (tr, val, te), _ = mrcca.preference_triples(prefs, frame_segment, train)
    assert tr.tolist() == [[1, 0, 1]]  # segment 1's vote preferred the random frame 0; seg 0's used a test frame
    assert te.tolist() == [[2, 2, 1]] and len(val) == 0
    # segment 1 held out for validation: its vote validates, and no vote is left to fit on
    (tr, val, te), _ = mrcca.preference_triples(prefs, frame_segment, train, np.array([False, True, False]))
    assert len(tr) == 0 and val.tolist() == [[1, 0, 1]] and te.tolist() == [[2, 2, 1]]


def test_one_repeat_runs_and_scores_all_methods(mv):
    _, w = mv
    blocks = [slice(a, b) for _, a, b, _ in w.meta["image_blocks"]]
    metrics = [m for *_, m in w.meta["image_blocks"]]
    r = mrcca.run_repeat(w.music, w.images, w.frames["segment"].to_numpy(), w.prefs,
                         int((w.segments["split"] == "train").sum()), K=3, d=6, seed=1,
                         image_blocks=blocks, image_metrics=metrics,
                         music_blocks=[slice(a, b) for _, a, b, _ in w.meta["music_blocks"]],
                         music_metrics=[m for *_, m in w.meta["music_blocks"]])
    for m in mrcca.METHODS:
        assert 0 <= r[m] <= 1
    assert r["train_votes"] > 0 and r["test_votes"] > 0


def test_histogram_blocks_equal_np_histogram():
    # the bincount histograms must give np.histogram's bins exactly, edges included
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 255, (160, 160, 3), dtype=np.uint8))
    f = features.image_features(img)
    im = img.resize((features.WORK_SIZE, features.WORK_SIZE), Image.BILINEAR)
    rgb = np.asarray(im, np.float32) / 255
    hsv = np.asarray(im.convert("HSV"), np.float32) / 255
    gy, gx = np.gradient(rgb @ np.array([0.299, 0.587, 0.114], np.float32))
    mag, ang = np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)
    hue, _ = np.histogram(hsv[..., 0], 36, (0, 1), weights=hsv[..., 1])
    np.testing.assert_array_equal(f[features.block_slices()[0]], (hue / hue.sum()).astype(np.float32))
    h = 64
    edge = [np.histogram(ang[sy, sx], 18, (0, np.pi), weights=mag[sy, sx])[0]
            for sy in (slice(0, h), slice(h, None)) for sx in (slice(0, h), slice(h, None))]
    np.testing.assert_array_equal(f[features.block_slices()[4]], np.concatenate([e / e.sum() for e in edge]).astype(np.float32))
    edges = np.linspace(0, np.pi, 19, dtype=np.float32)  # values sitting exactly on an edge
    np.testing.assert_array_equal(features._bin_index(edges, 18, 0, np.pi), np.r_[np.arange(18), 17])


def test_post_effects_look_up_tables_equal_per_pixel_maths():
    rng = np.random.default_rng(2)
    img = Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    look = np.array([0.7, -1.3, 0.4, 0.2, 0.0])
    hsv = np.asarray(img.convert("HSV"), np.float32)
    hsv[..., 0] = (hsv[..., 0] - look[1] * 18) % 256
    hsv[..., 1] = np.clip(hsv[..., 1] * np.exp(0.6 * look[2]), 0, 255)
    hsv[..., 2] = np.clip(hsv[..., 2] * np.exp(0.55 * look[0]), 0, 255)
    rgb = np.asarray(Image.fromarray(hsv.astype(np.uint8), "HSV").convert("RGB"), np.float32)
    from scipy.ndimage import uniform_filter1d
    want = uniform_filter1d(rgb, int(round(1 + 5 * (look[3] + 0.3))), axis=1, mode="nearest").clip(0, 255).astype(np.uint8)
    np.testing.assert_array_equal(np.asarray(musicvideos._post_effects(img, look)), want)
