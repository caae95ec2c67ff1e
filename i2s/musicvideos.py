"""The embedded music-video world for MR-CCA: segments, key frames, features and labelers' preferences.

The paper's 47,888 music-video pairs and their labels are not public. This world has their shape:
music videos cut into segments, each segment a 133-d music descriptor (33 mid-level acoustic values and
100 semantic-word posteriors) and one or more key frames drawn with the OpenMoji renderer, plus pairwise
preferences from simulated labelers. The two observations the paper builds on are built in, and said so:
music comes from a few styles (simple cluster structure), while a frame depends on its music through a
style-specific non-linear map and on its video's own look (complex, many-to-many relation).
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from scipy.ndimage import uniform_filter1d
from tqdm.auto import tqdm

from . import features, paper, paths, render, synth


# ---- defaults (params.yaml `mv_world:` overrides them) -----------------------------------------
@dataclass
class MVParams:
    seed: int = 2009
    scale: float = 1.0           # 1.0 = the paper's 1,500 videos, 22,632 segments, 47,888 pairs
    styles: int = 8              # music styles: the 'simple cluster structure' of music space
    label_fraction: float = 0.5  # the paper had half of the pairs labelled
    labelers: int = 3            # votes per labelled pair
    labeler_flip: float = 0.05   # each labeler's own slips
    prefer_rate: float = 0.892   # Section 2.1: labelers prefer the music-video pair 89.2% of the time
    image_size: int = 160
    jobs: int = 0


MV_STAGE = "00_mv_world"
READS = ()  # stage 00_mv_world reads no upstream artefact
LATENT = ("valence", "arousal", "darkness", "romance", "nature", "urban")
STYLE_PARAMS = ("brightness", "warmth", "saturation", "blur", "clutter")
SEMANTIC_WORDS = (
    "happy sad relax calm energetic angry romantic dreamy dark bright epic melancholic uplifting aggressive "
    "peaceful playful sentimental nostalgic hopeful lonely sexy cheerful tender intense mellow groovy funky "
    "soulful spiritual mysterious tense triumphant bittersweet carefree warm cold gritty smooth heavy light "
    "fast slow loud quiet acoustic electronic orchestral rock pop dance hiphop jazz blues country folk metal "
    "punk ballad anthem party club chill ambient cinematic festive summer winter night morning rainy urban "
    "rural ocean desert forest city love heartbreak friendship freedom rebellion celebration longing passion "
    "innocence youth glamour luxury struggle victory loss hope fear joy anger serenity excitement wonder "
    "confidence vulnerability").split()
ENS_COLUMNS = (["tempo", "loudness", "energy", "danceability", "valence", "mode", "mode_confidence",
                "acousticness", "instrumentalness", "liveness", "speechiness", "mean_section_length",
                "section_count", "duration", "tempo_confidence", "time_signature_confidence"]
               + [f"key_{k}" for k in range(12)] + [f"time_signature_{t}" for t in (3, 4, 5, 6, 7)])
WARM, COOL = ["red", "orange", "yellow", "pink", "golden"], ["blue", "purple", "green", "gray", "white"]


def _sig(x):
    return 1 / (1 + np.exp(-x))


def music_descriptor(z: np.ndarray, key: np.ndarray, meter: np.ndarray, rng: np.random.Generator,
                     word_dirs: np.ndarray) -> np.ndarray:
    """133-d music vectors (ENS-like values, then semantic posteriors) from latent music variables."""
    n = len(z)
    val, aro, dark, rom, nat, urb = z.T
    e = lambda s=0.15: rng.normal(0, s, n)  # noqa: E731
    ens = np.column_stack([
        60 + 120 * _sig(aro + e()), -25 + 20 * _sig(aro - 0.5 * nat + e()), _sig(1.5 * aro + e()),
        _sig(aro + val - dark + e()), _sig(val - dark + e()), (val + e(0.5) > 0).astype(float),
        rng.uniform(0.4, 1, n), _sig(nat - aro + e()), _sig(-urb + e(0.5)), rng.beta(2, 8, n),
        _sig(urb - 1.5 + e()), 8 + 20 * _sig(-aro + e()), 6 + rng.poisson(4, n), 180 + 60 * _sig(rom + e()),
        rng.uniform(0.5, 1, n), rng.uniform(0.6, 1, n)])
    key_oh = np.eye(12)[key]
    meter_oh = np.eye(5)[meter]
    logits = 2.5 * z @ word_dirs.T + rng.normal(0, 0.3, (n, len(word_dirs)))
    post = np.exp(logits - logits.max(1, keepdims=True))
    post /= post.sum(1, keepdims=True)
    return np.column_stack([ens, key_oh, meter_oh, post]).astype(np.float32)


def _post_effects(img: Image.Image, look: np.ndarray) -> Image.Image:
    """Brightness, saturation, hue (warmth) and horizontal motion blur from the frame's style values."""
    bright, warmth, sat, blur = look[:4]
    # each HSV channel is a function of its own uint8 value: evaluate it on the 256 values (the same float
    # maths, float32 store, uint8 cast as per pixel) and look pixels up, instead of per-pixel float arrays
    v = np.arange(256, dtype=np.float32)
    luts = [((v - warmth * 18) % 256).astype(np.float32),  # warm music pulls hues towards red
            np.clip(v * np.exp(0.6 * sat), 0, 255).astype(np.float32),
            np.clip(v * np.exp(0.55 * bright), 0, 255).astype(np.float32)]
    hsv = np.asarray(img.convert("HSV"))
    hsv = np.stack([np.take(lut.astype(np.uint8), hsv[..., k]) for k, lut in enumerate(luts)], -1)
    rgb = np.asarray(Image.fromarray(hsv, "HSV").convert("RGB"), np.float32)
    width = int(round(1 + 5 * max(blur + 0.3, 0)))  # fast music, streaky frames
    if width > 1:
        rgb = uniform_filter1d(rgb, width, axis=1, mode="nearest")
    return Image.fromarray(rgb.clip(0, 255).astype(np.uint8), "RGB")


def _frame_job(job):
    spec, look, path, size = job
    img, _, _ = render.render_scene(spec, size)
    img = _post_effects(img, look)
    img.save(path, quality=88)
    return features.image_features(img)


def _warm(_=None):
    render.glyph_atlas()
    render.glyph_colours()


def _implied(z: np.ndarray, A: np.ndarray, b: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What a frame of this music 'should' look like in its style: style values and theme scores."""
    return np.tanh(np.einsum("nl,nlp->np", z, A) + b), np.einsum("nl,nlt->nt", z, T)


def generate(out: Path, p: MVParams) -> dict:
    """Write the music-video world under `out` and return a summary."""
    t0 = time.time()
    rng = np.random.default_rng(p.seed)
    scenes, glyphs = render.load_scenes(), synth.glyphs_by_tag()
    themes = list(scenes["themes"])
    facts = {k: paper.fact_of(k) for k in ("videos", "segments", "pairs", "train_segments")}  # the paper's shape
    n_vid = max(int(round(facts["videos"] * p.scale)), 2)
    n_seg = max(int(round(facts["segments"] * p.scale)), n_vid)
    n_frames = max(int(round(facts["pairs"] * p.scale)), n_seg)
    n_train = int(round(n_seg * facts["train_segments"] / facts["segments"]))
    L = len(LATENT)

    # music: a few styles (clusters), a song per video, segments around it
    style_mu = rng.normal(0, 1.3, (p.styles, L))
    video_style = rng.choice(p.styles, n_vid, p=rng.dirichlet(np.full(p.styles, 3.0)))
    z_video = style_mu[video_style] + rng.normal(0, 0.35, (n_vid, L))
    seg_video = np.repeat(np.arange(n_vid), 1 + rng.multinomial(n_seg - n_vid, np.full(n_vid, 1 / n_vid)))
    z = z_video[seg_video] + rng.normal(0, 0.25, (n_seg, L))
    word_dirs = rng.normal(0, 1, (len(SEMANTIC_WORDS), L)) / np.sqrt(L)
    music = music_descriptor(z, rng.integers(12, size=n_vid)[seg_video],
                             rng.choice(5, n_vid, p=[0.08, 0.8, 0.04, 0.05, 0.03])[seg_video], rng, word_dirs)

    # frames: a style-specific non-linear map of the music, plus the video's own look
    A = rng.normal(0, 1, (p.styles, L, len(STYLE_PARAMS))) / np.sqrt(L) * 1.6
    b = rng.normal(0, 0.3, (p.styles, len(STYLE_PARAMS)))
    T = rng.normal(0, 1, (p.styles, L, len(themes))) * 1.4
    seg_style = video_style[seg_video]
    look_seg, theme_score = _implied(z, A[seg_style], b[seg_style], T[seg_style])
    video_look = rng.normal(0, 0.35, (n_vid, len(STYLE_PARAMS)))
    video_ctx = rng.choice(render.CONTEXTS, n_vid)
    frame_seg = np.repeat(np.arange(n_seg), 1 + rng.multinomial(n_frames - n_seg, np.full(n_seg, 1 / n_seg)))
    frame_look = look_seg[frame_seg] + video_look[seg_video[frame_seg]] + rng.normal(0, 0.15, (n_frames, len(STYLE_PARAMS)))
    gumbel = -np.log(-np.log(rng.uniform(1e-9, 1, (n_frames, len(themes)))))
    frame_theme = np.argmax(theme_score[frame_seg] + 0.8 * gumbel, 1)

    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    (out / "frames").mkdir(parents=True)
    jobs = []
    for f in range(n_frames):
        th = scenes["themes"][themes[frame_theme[f]]]
        ctx = str(video_ctx[seg_video[frame_seg[f]]]) if rng.random() < 0.6 else synth._weighted(th["contexts"], rng)
        n_obj = int(np.clip(round(3 + 2 * frame_look[f, 4] + rng.normal(0, 0.7)), 1, 7))
        objs = [synth._choose_glyph(str(rng.choice(th["objects"])), themes[frame_theme[f]], glyphs, rng) for _ in range(n_obj)]
        palette = WARM if frame_look[f, 1] > 0 else COOL
        weather = [w for w, q in th.get("weather", {}).items() if rng.random() < q]
        spec = render.SceneSpec(ctx, objs, weather, palette, False, (p.seed, 3, f))
        jobs.append((spec, frame_look[f], str(out / "frames" / f"F_{f:06d}.jpg"), p.image_size))
    n_jobs = p.jobs or os.cpu_count() or 1
    if n_jobs == 1:
        _warm()
        feats = [_frame_job(j) for j in tqdm(jobs, desc="key frames", mininterval=2)]
    else:
        with mp.get_context("fork").Pool(n_jobs, initializer=_warm) as pool:
            feats = list(tqdm(pool.imap(_frame_job, jobs, chunksize=32), total=len(jobs), desc="key frames", mininterval=2))
    images = np.stack(feats).astype(np.float32)

    # labelled preferences: (segment's music, its own frame) vs (same music, a frame of another video)
    labelled = np.flatnonzero(rng.random(n_seg) < p.label_fraction)
    # a segment's frames are contiguous (np.repeat above): the same draws as rng.choice over them, without a scan per segment
    first, count = np.searchsorted(frame_seg, np.arange(n_seg)), np.bincount(frame_seg, minlength=n_seg)
    own = np.array([first[s] + rng.integers(count[s]) for s in labelled], int)
    other = rng.integers(n_frames, size=len(labelled))
    clash = seg_video[frame_seg[other]] == seg_video[labelled]
    while clash.any():
        other[clash] = rng.integers(n_frames, size=int(clash.sum()))
        clash = seg_video[frame_seg[other]] == seg_video[labelled]

    def quality(frames, segs):
        # how well a frame fits a music, by the world's own rule (hidden from the methods)
        d = ((frame_look[frames] - look_seg[segs]) ** 2).sum(1)
        th = theme_score[segs]
        th = (th - th.max(1, keepdims=True))[np.arange(len(segs)), frame_theme[frames]]
        return -d + 0.5 * th

    gap = quality(own, labelled) - quality(other, labelled)
    lo, hi = 1e-3, 50.0
    for _ in range(60):  # β so that the expected preference for the music-video pair is prefer_rate
        beta = (lo + hi) / 2
        rate = ((1 - p.labeler_flip) * _sig(beta * gap) + p.labeler_flip * (1 - _sig(beta * gap))).mean()
        lo, hi = (beta, hi) if rate < p.prefer_rate else (lo, beta)
    prob = _sig(beta * gap)
    votes = []
    for k in range(p.labelers):
        pref = rng.random(len(labelled)) < prob
        pref ^= rng.random(len(labelled)) < p.labeler_flip
        votes.append(pd.DataFrame({"segment": labelled, "frame_mv": own, "frame_random": other,
                                   "labeler": k, "prefers_mv": pref}))
    prefs = pd.concat(votes, ignore_index=True)

    # the paper's split: 20,000 of 22,632 segments for clustering and training (a repeat may redraw it)
    split = np.where(np.isin(np.arange(n_seg), rng.choice(n_seg, n_train, replace=False)), "train", "test")
    np.save(out / "music.npy", music)
    np.save(out / "images.npy", images)
    pd.DataFrame({"segment": np.arange(n_seg), "video": seg_video, "style": seg_style, "split": split}).to_csv(out / "segments.csv", index=False)
    pd.DataFrame({"frame": np.arange(n_frames), "segment": frame_seg, "file": [Path(j[2]).name for j in jobs],
                  "theme": np.array(themes)[frame_theme]}).to_csv(out / "frames.csv", index=False)
    prefs.to_csv(out / "preferences.csv", index=False)
    meta = {"music_columns": ENS_COLUMNS + [f"p({w})" for w in SEMANTIC_WORDS],
            "music_blocks": [["ens", 0, len(ENS_COLUMNS), "l2"], ["semantic", len(ENS_COLUMNS), music.shape[1], "hellinger"]],
            "image_blocks": [[name, s.start, s.stop, dist] for (name, dist), s in zip(features.BLOCKS, features.block_slices())],
            "beta": beta, "params": asdict(p)}
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return {"videos": n_vid, "segments": n_seg, "pairs": n_frames, "train_segments": n_train,
            "labelled_pairs": int(len(labelled)), "votes": int(len(prefs)),
            "prefer_mv_rate": round(float(prefs["prefers_mv"].mean()), 4),
            "music_dim": int(music.shape[1]), "image_dim": int(images.shape[1]),
            "seconds": round(time.time() - t0, 1)}


@dataclass
class MVWorld:
    """The music-video world loaded for the experiments."""
    music: np.ndarray        # segments × 133
    images: np.ndarray       # frames × image feature dims
    segments: pd.DataFrame   # segment, video, style, split
    frames: pd.DataFrame     # frame, segment, file, theme
    prefs: pd.DataFrame      # segment, frame_mv, frame_random, labeler, prefers_mv
    meta: dict
    root: Path


def load(root: str | os.PathLike | None = None) -> MVWorld:
    """Load what `generate` wrote (default: data/00_mv_world)."""
    root = Path(root) if root else paths.data(MV_STAGE)
    return MVWorld(np.load(root / "music.npy"), np.load(root / "images.npy"), pd.read_csv(root / "segments.csv"),
                   pd.read_csv(root / "frames.csv"), pd.read_csv(root / "preferences.csv"),
                   json.loads((root / "meta.json").read_text()), root)


def run_stage(values: dict) -> dict:
    """Stage 00_mv_world: generate the music-video world from the `mv_world` section into data/00_mv_world."""
    from . import artefacts
    summary = generate(artefacts.path("mv_world"), MVParams(**values))
    artefacts.write_metrics(MV_STAGE, summary)
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate the embedded music-video world (what stage 00_mv_world runs).")
    ap.add_argument("--params", default=None, help="a params.yaml (default: the project's)")
    ap.add_argument("--out", default=None, help="default: data/00_mv_world")
    a = ap.parse_args(argv)
    from . import params
    summary = generate(Path(a.out) if a.out else paths.data(MV_STAGE), MVParams(**params.load(a.params)["mv_world"]))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
