"""The embedded Shuttersong world: songs, lyrics, photos and scene graphs, deterministic by seed.

The real dataset cannot be downloaded here, so stage 00_world writes a synthetic one in the real
dataset's layout (see `i2s.shuttersong.load_shuttersong`). Counts follow the paper's statistics exactly at
`scale: 1.0`; everything else (themes, content gap, selfie share) is a modelling choice documented
next to the code that makes it.
"""
from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import os
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from tqdm.auto import tqdm

from . import paper, paths, render
from .params import ParamsError  # noqa: F401 (synth.ParamsError: what the world's checks raise)


# ---- defaults (params.yaml `world:` overrides them) -----------------------------------------------
ABNORMAL_MIX = {"non_english_lyric": 0.46, "missing_lyric": 0.27, "empty_lyric": 0.08, "unreadable_image": 0.07,
                "missing_image": 0.05, "duplicate_row": 0.04, "bad_favorite_count": 0.03}


@dataclass
class WorldParams:
    seed: int = 2017
    scale: float = 1.0             # 1.0 = the paper's 36,646 raw pairs / 16,973 triplets
    difficulty: float = 0.5        # 0 = easy, 1 = hard (selfie share, off-theme objects, lyric theme words)
    image_size: int = render.IMAGE_SIZE
    scene_graph_images: int = 6000  # the separate detector-training set (no songs)
    jobs: int = 0                  # render processes; 0 = all cores
    # shares of the abnormal rows (raw − kept) by the reason they must be rejected
    abnormal_mix: dict = field(default_factory=lambda: dict(ABNORMAL_MIX))

    def __post_init__(self):
        check_params(self)


MIN_SCALE = 0.001          # below this the paper's counts round to ones that contradict each other
MIN_IMAGE_SIZE = 32        # the smallest photos the renderer was checked at
WORLD_MARKER = ".i2s-world"  # written into every world: only a folder holding it is ever replaced
WORLD_PARTS = {"shuttersong", "scene_graphs", "truth"}


# The paper's statistics the world reproduces at scale 1.0 (read from paper_facts.csv through i2s.paper)
COUNTED = ("raw_rows", "triplets", "songs", "moods", "songs_ge5", "triplets_ge5", "songs_lt5", "triplets_lt5",
           "songs_gt50", "triplets_fav_ge3", "triplets_fav_ge10")
WORLD_STAGE = "00_world"
READS = ()  # stage 00_world reads no upstream artefact
SCENE_GRAPH_SPLIT = (0.8, 0.1, 0.1)  # train / val / test shares of the scene-graph set
MAX_OCCURRENCE = 420               # the most images one song gets (heavy tail of Figure 2)

THEME_WEIGHTS = {"love": 16, "heartbreak": 10, "night_party": 10, "friendship": 9, "summer_beach": 8,
                 "christmas": 6, "dance": 6, "city": 5, "road_trip": 5, "family": 5, "nature": 4,
                 "winter": 4, "rain": 4, "pets": 3, "food": 3, "sports": 2}
# faces of a theme's photos lean to its mood (a weak but real signal for the attribute tags)
EXPRESSION_BIAS = {"heartbreak": {"sad", "crying"}, "rain": {"sad"}, "love": {"kissing", "happy"},
                   "night_party": {"laughing", "cool"}, "friendship": {"laughing", "smiling"},
                   "summer_beach": {"cool", "smiling"}, "winter": {"frozen"}, "dance": {"happy", "cool"}}
FOREIGN = ("es", "fr", "de", "pt", "it")
NON_ALNUM_TOKENS = ("oh-oh", "yeah-yeah", "(x2)", "--", "la-la", "na-na", "...")


def target_counts(scale: float) -> dict:
    """The paper's counts at a scale (1.0 = exact), kept consistent with each other."""
    c = {k: int(round(paper.fact_of(k) * scale)) for k in COUNTED}
    c["triplets"] = c["triplets_ge5"] + c["triplets_lt5"]
    c["songs"] = c["songs_ge5"] + c["songs_lt5"]
    return c


def _fix_sum(x: np.ndarray, total: int, lo: int, hi: int, rng: np.random.Generator) -> np.ndarray:
    """Nudge integer counts by ±1 at random positions until they sum to `total`, within [lo, hi]."""
    x = np.clip(x, lo, hi).astype(np.int64)
    if not (lo * len(x) <= total <= hi * len(x)):
        raise ValueError(f"cannot split {total} into {len(x)} counts in [{lo}, {hi}]")
    while (d := total - int(x.sum())) != 0:
        step = 1 if d > 0 else -1
        ok = np.flatnonzero((x < hi) if step > 0 else (x > lo))
        pick = rng.choice(ok, size=min(abs(d), len(ok)), replace=False)
        x[pick] += step
    return x


def song_occurrences(counts: dict, rng: np.random.Generator) -> np.ndarray:
    """Images per kept song, hitting every count of Figure 2 exactly (sorted: popular songs first)."""
    n_gt50, n_ge5, n_lt5 = counts["songs_gt50"], counts["songs_ge5"], counts["songs_lt5"]
    n_mid = n_ge5 - n_gt50
    # popular songs: a Pareto tail above 50; mid songs 5..50 with a decaying profile; rare songs 1..4
    top = np.minimum(51 + (rng.pareto(1.3, n_gt50) * 30).astype(int), MAX_OCCURRENCE)
    mid = 5 + rng.geometric(0.12, n_mid) - 1
    mid = np.minimum(mid, 50)
    budget = counts["triplets_ge5"]
    if n_gt50:
        top = _fix_sum(top, max(min(int(top.sum()), budget - 5 * n_mid), 51 * n_gt50), 51, MAX_OCCURRENCE, rng)
    mid = _fix_sum(mid, budget - int(top.sum()), 5, 50, rng) if n_mid else mid
    low = rng.choice([1, 2, 3, 4], size=n_lt5, p=[0.62, 0.22, 0.10, 0.06])
    low = _fix_sum(low, counts["triplets_lt5"], 1, 4, rng)
    occ = np.concatenate([top, mid, low])
    return np.sort(occ)[::-1]


def favourite_counts(n: int, counts: dict, rng: np.random.Generator) -> np.ndarray:
    """Heavy-tailed favourite counts with the paper's thresholds (≥3, ≥10) and range (1..8964)."""
    n10, n3 = counts["triplets_fav_ge10"], counts["triplets_fav_ge3"]
    lo, hi = int(paper.fact_of("favorite_min")), int(paper.fact_of("favorite_max"))
    low = rng.choice([1, 2], size=n - n3, p=[0.62, 0.38])
    k = np.arange(3, 10)
    mid = rng.choice(k, size=n3 - n10, p=(k ** -1.6) / (k ** -1.6).sum())
    high = np.minimum(np.floor(10 * (1 - rng.random(n10)) ** (-1 / 0.75)), hi).astype(int)
    if n10:
        high[np.argmax(high)] = hi  # the paper's maximum is a value, not a count: present at any scale
    if len(low):
        low[0] = lo
    fav = np.concatenate([low, mid, high])
    return fav[rng.permutation(n)]


# ---- vocabularies ---------------------------------------------------------------------------
def _lines(path: Path) -> list[str]:
    return [w.strip() for w in path.read_text().splitlines() if w.strip() and not w.startswith("#")]


def load_lexicon() -> dict:
    """Theme vocabularies, pop words, function words, foreign words and names (assets/lexicon)."""
    lex = yaml.safe_load((paths.LEXICON / "themes.yaml").read_text())
    lex["pop_words"] = _lines(paths.LEXICON / "pop_words.txt")
    lex["function_words"] = _lines(paths.LEXICON / "function_words.txt")
    lex["foreign"] = {lang: _lines(paths.LEXICON / "foreign" / f"{lang}.txt") for lang in FOREIGN}
    lex.update(yaml.safe_load((paths.LEXICON / "names.yaml").read_text()))
    return lex


def glyphs_by_tag() -> dict[str, list[dict]]:
    """Object tag → its glyph variants."""
    out: dict[str, list[dict]] = {}
    for row in render.load_objects():
        out.setdefault(row["tag"], []).append(row)
    return out


# ---- songs and lyrics -------------------------------------------------------------------------
def _zipf_weights(n: int, a: float = 1.0) -> np.ndarray:
    w = 1.0 / np.arange(1, n + 1) ** a
    return w / w.sum()


def make_title(words: list[str], rng: np.random.Generator) -> str:
    """A song title from a word list."""
    a, b = (str(w).capitalize() for w in rng.choice(words, 2, replace=False))
    pattern = rng.integers(6)
    return [a, f"{a} {b}", f"{a} of {b}", f"The {a}", f"{a} Tonight", f"My {a}"][pattern]


def make_artist(lex: dict, rng: np.random.Generator) -> str:
    """A fictional artist or band name."""
    u = rng.random()
    if u < 0.6:
        return f"{rng.choice(lex['first_names'])} {rng.choice(lex['last_names'])}"
    a, b = rng.choice(lex["band_words"], 2, replace=False)
    return f"The {a} {b}" if u < 0.85 else f"{a} {b}"


def _stream(draw, chunk: int = 256):
    """Yield items from `draw(n)` called in chunks: drawing per token in Python was the slow part."""
    while True:
        yield from draw(chunk)


def make_lyric(content, function_words, length: int, rng: np.random.Generator,
               chorus_words: list[str] | None = None) -> str:
    """Lines of function and content words (iterators) with a repeated chorus, `length` tokens in all."""
    def line(n):
        toks = [next(function_words) if f else next(content) for f in rng.random(n) < 0.45]
        if rng.random() < 0.08:
            toks.insert(int(rng.integers(len(toks) + 1)), str(rng.choice(NON_ALNUM_TOKENS)))
        return toks
    chorus = [line(int(rng.integers(4, 8))) for _ in range(int(rng.integers(2, 4)))]
    if chorus_words:
        chorus[0] = [w.lower() for w in chorus_words] + chorus[0][: max(len(chorus[0]) - len(chorus_words), 1)]
    out, n, verse_left = [], 0, int(rng.integers(3, 6))
    while n < length:
        if verse_left == 0:
            block, verse_left = chorus, int(rng.integers(3, 6))
        else:
            block, verse_left = [line(int(rng.integers(5, 10)))], verse_left - 1
        for toks in block:
            toks = toks[: max(length - n, 1)]
            out.append(" ".join([toks[0].capitalize()] + toks[1:]))
            n += len(toks)
            if n >= length:
                break
    return "\n".join(out)


def _song_lyric(song: dict, lex: dict, tags: list[str], rng: np.random.Generator, difficulty: float) -> str:
    theme = lex["themes"][song["theme"]]
    own = np.array(rng.choice(theme["lyric_words"], size=min(30, len(theme["lyric_words"])), replace=False))
    own_w = _zipf_weights(len(own), 0.9)
    pop = np.array(rng.choice(lex["pop_words"], size=60, replace=False))
    pop_w = _zipf_weights(len(pop), 0.8)
    second = np.array(lex["themes"][song["theme2"]]["lyric_words"]) if song["theme2"] else None
    tags = np.array(tags)
    direct_share = max(0.08 - 0.06 * difficulty, 0.0)  # a few lyric words name what the photos show

    def draw(n):
        out = pop[rng.choice(len(pop), n, p=pop_w)]
        themed = rng.random(n) < song["theme_rate"]
        kind = rng.random(n)
        out = np.where(themed, own[rng.choice(len(own), n, p=own_w)], out)
        if second is not None:
            out = np.where(themed & (kind < 0.25), second[rng.integers(len(second), size=n)], out)
        out = np.where(themed & (kind > 1 - direct_share), tags[rng.integers(len(tags), size=n)], out)
        return out.tolist()

    fw = np.array(lex["function_words"])
    length = int(np.clip(rng.lognormal(math.log(170), 0.35), 80, 300))
    return make_lyric(_stream(draw), _stream(lambda n: fw[rng.integers(len(fw), size=n)].tolist()), length, rng,
                      song["title"].split()[:3])


def _foreign_lyric(lang: str, lex: dict, rng: np.random.Generator) -> str:
    words = np.array(lex["foreign"][lang])
    w = _zipf_weights(len(words), 0.7)
    length = int(np.clip(rng.lognormal(math.log(170), 0.35), 80, 300))
    # the foreign list holds function words too, so it serves as both
    draw = _stream(lambda n: words[rng.choice(len(words), n, p=w)].tolist())
    return make_lyric(draw, draw, length, rng)


# ---- photos -----------------------------------------------------------------------------------
def _choose_glyph(tag: str, theme: str | None, glyphs: dict, rng: np.random.Generator) -> tuple[str, int]:
    variants = glyphs[tag]
    bias = EXPRESSION_BIAS.get(theme or "", set())
    w = np.array([4.0 if bias & set(v["fixed"]) else 1.0 for v in variants])
    v = variants[int(rng.choice(len(variants), p=w / w.sum()))]
    return tag, int(v["codepoint"])


def photo_spec(song: dict | None, theme: str, scenes: dict, glyphs: dict, rng: np.random.Generator,
               selfie_p: float, on_theme: float, seed) -> render.SceneSpec:
    """What one photo of a song (or of a theme, for the scene-graph set) shows."""
    t = scenes["themes"][theme]
    if rng.random() < selfie_p:  # weakly informative: a face close-up with little of the song in it
        ctx = _weighted(scenes["selfie"]["contexts"], rng)
        objs = [_choose_glyph(str(rng.choice(["face", "face", "person", "woman", "man", "girl", "boy"])), theme, glyphs, rng)]
        for _ in range(int(rng.integers(0, 3))):
            pool = song["objects"] if (song and rng.random() < 0.3) else scenes["generic"]
            objs.append(_choose_glyph(str(rng.choice(pool)), theme, glyphs, rng))
        # the close-up is drawn last so it covers what is behind it
        return render.SceneSpec(ctx, objs[1:] + objs[:1], [], t["palette"], True, seed)
    ctx = _weighted(t["contexts"], rng) if rng.random() < 0.85 else str(rng.choice(render.CONTEXTS))
    objs = []
    for _ in range(int(rng.integers(2, 7))):
        u = rng.random()
        if u < on_theme:
            pool, p = (song["objects"], song["object_p"]) if song else (t["objects"], None)
            tag = str(rng.choice(pool, p=p))
        elif u < on_theme + 0.1:
            tag = str(rng.choice(scenes["themes"][str(rng.choice(list(scenes["themes"])))]["objects"]))
        else:
            tag = str(rng.choice(scenes["generic"]))
        objs.append(_choose_glyph(tag, theme, glyphs, rng))
    if rng.random() < 0.35:
        objs.append(_choose_glyph(str(rng.choice(scenes["people"])), theme, glyphs, rng))
    weather = [w for w, p in t.get("weather", {}).items() if rng.random() < p]
    return render.SceneSpec(ctx, objs, weather, t["palette"], False, seed)


def _weighted(d: dict, rng: np.random.Generator) -> str:
    keys = list(d)
    w = np.array([d[k] for k in keys], float)
    return str(keys[int(rng.choice(len(keys), p=w / w.sum()))])


def _render_one(job):
    spec, path, size = job
    img, objects, info = render.render_scene(spec, size)
    data = render.encode_jpeg(img, np.random.default_rng([*spec.seed, 1]))
    Path(path).write_bytes(data)
    return {"image": Path(path).name, **info, "objects": objects}


def _warm(_=None):
    render.glyph_atlas()
    render.glyph_colours()


def render_all(jobs_list: list, n_jobs: int, desc: str) -> list[dict]:
    """Render photos in parallel (each from its own seed, so the bytes do not depend on scheduling)."""
    n_jobs = n_jobs or os.cpu_count() or 1
    if n_jobs == 1 or len(jobs_list) < 64:
        _warm()
        return [_render_one(j) for j in tqdm(jobs_list, desc=desc, mininterval=2)]
    with mp.get_context("fork").Pool(n_jobs, initializer=_warm) as pool:
        return list(tqdm(pool.imap(_render_one, jobs_list, chunksize=32), total=len(jobs_list), desc=desc, mininterval=2))


# ---- the world ----------------------------------------------------------------------------------
def _split_counts(total: int, mix: dict) -> dict:
    """Largest-remainder split of `total` by shares (so the parts add up exactly)."""
    keys = list(mix)
    shares = np.array([mix[k] for k in keys], float)
    raw = shares / shares.sum() * total
    base = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - base))[: total - base.sum()]:
        base[i] += 1
    return dict(zip(keys, map(int, base)))


def _corrupt_image(path: Path, kind: int, rng: np.random.Generator, good: bytes) -> None:
    if kind == 0:
        path.write_bytes(b"")
    elif kind == 1:
        path.write_bytes(rng.bytes(400))
    else:  # a JPEG cut off mid-stream, as an interrupted download leaves it
        path.write_bytes(good[: len(good) // 3])


def _write_world(out: Path, p: WorldParams) -> dict:
    """Write the world into the new, empty folder `out`. Returns a summary."""
    t0 = time.time()
    rng = np.random.default_rng(p.seed)
    lex, scenes, glyphs = load_lexicon(), render.load_scenes(), glyphs_by_tag()
    d = float(p.difficulty)
    selfie_p, on_theme = 0.15 + 0.4 * d, 0.9 - 0.5 * d
    weak_share, base_rate = 0.1 + 0.3 * d, 0.45 - 0.3 * d
    counts = target_counts(p.scale)
    ss, sg, truth = out / "shuttersong", out / "scene_graphs", out / "truth"
    for q in (ss / "images", sg / "images", truth):
        q.mkdir(parents=True)

    themes = list(THEME_WEIGHTS)
    tw = np.array([THEME_WEIGHTS[t] for t in themes], float)
    tw /= tw.sum()
    used_keys: set = set()

    def new_song(i, language="en", lyric_status="ok"):
        theme = str(rng.choice(themes, p=tw))
        theme2 = str(rng.choice([t for t in themes if t != theme])) if rng.random() < 0.3 else ""
        weak = bool(rng.random() < weak_share)
        rate = 0.02 if weak else float(np.clip(rng.beta(4, 4) * 2 * base_rate, 0.05, 0.9))
        objs = list(scenes["themes"][theme]["objects"])
        song = {"song_id": f"S{i:05d}", "theme": theme, "theme2": theme2, "weak": weak, "theme_rate": rate,
                "language": language, "lyric_status": lyric_status,
                "objects": objs, "object_p": rng.dirichlet(np.full(len(objs), 0.6))}
        while True:
            if language != "en":
                title = " ".join(str(w).capitalize() for w in rng.choice(lex["foreign"][language], int(rng.integers(1, 4)), replace=False))
            else:
                words = lex["pop_words"] if weak else lex["themes"][theme]["title_words"]
                title = make_title(words, rng)
            artist = make_artist(lex, rng)
            if (title.lower(), artist.lower()) not in used_keys:
                used_keys.add((title.lower(), artist.lower()))
                break
        song.update(title=title, artist=artist)
        return song

    # kept songs, with exactly the paper's occurrence statistics
    occ = song_occurrences(counts, rng)
    songs = [new_song(i) for i in range(len(occ))]
    rows = [{"song": s["song_id"], "status": "kept"} for s, n in zip(songs, occ) for _ in range(n)]
    fav = favourite_counts(len(rows), counts, rng)
    for r, f in zip(rows, fav):
        r["favorite_count"] = str(int(f))
    mood_rows = rng.choice(len(rows), counts["moods"], replace=False)
    by_id = {s["song_id"]: s for s in songs}
    for i in mood_rows:
        theme = by_id[rows[i]["song"]]["theme"]
        pool = lex["themes"][theme]["moods"] if rng.random() < 0.6 else lex["generic_moods"]
        rows[i]["mood"] = str(rng.choice(pool))

    # abnormal rows: what the refinement of supplement 8.2 has to remove
    n_abnormal = counts["raw_rows"] - counts["triplets"]
    abn = _split_counts(max(n_abnormal, 0), p.abnormal_mix)
    for reason, status, lang in (("non_english_lyric", "non_english", None), ("missing_lyric", "missing", "en"),
                                 ("empty_lyric", "empty", "en")):
        left = abn[reason]
        while left > 0:
            language = lang or str(rng.choice(FOREIGN))
            s = new_song(len(songs), language, status)
            songs.append(s)
            by_id[s["song_id"]] = s
            n = min(int(rng.geometric(0.45)), left)
            left -= n
            rows += [{"song": s["song_id"], "status": reason, "favorite_count": str(int(f))}
                     for f in favourite_counts(n, {"triplets_fav_ge10": 0, "triplets_fav_ge3": 0}, rng)]
    kept_idx = np.flatnonzero([r["status"] == "kept" for r in rows])
    for reason in ("unreadable_image", "missing_image", "bad_favorite_count"):
        for i in rng.choice(kept_idx, abn[reason], replace=True):
            bad = str(rng.choice(["-3", "0", "", "n/a", "12.5", "lots"])) if reason == "bad_favorite_count" else rows[i]["favorite_count"]
            rows.append({"song": rows[i]["song"], "status": reason, "favorite_count": bad})
    for r in rows:
        if "mood" not in r:
            r["mood"] = str(rng.choice(lex["generic_moods"])) if (r["status"] != "kept" and rng.random() < 0.186) else ""

    # photos: one per row (duplicates reuse their original's file)
    ids = rng.permutation(len(rows) + 10 * len(rows))[: len(rows)]
    for r, k in zip(rows, ids):
        r["image"] = f"IMG_{k:07d}.jpg"
    jobs_list, row_meta = [], []
    for k, r in enumerate(rows):
        s = by_id[r["song"]]
        # better-liked posts are better photos: fewer selfies among high favourite counts
        try:
            f = int(r["favorite_count"])
        except ValueError:
            f = 1
        sp = selfie_p * (1.15 if f < 3 else 0.9 if f < 10 else 0.6)
        spec = photo_spec(s, s["theme"], scenes, glyphs, rng, sp, on_theme, (p.seed, 1, k))
        r["selfie"] = spec.selfie
        r["context"] = spec.context
        if r["status"] != "missing_image":
            jobs_list.append((spec, str(ss / "images" / r["image"]), p.image_size))
    dup_src = rng.choice(kept_idx, abn["duplicate_row"], replace=True)
    rows += [{**rows[i], "status": "duplicate_row"} for i in dup_src]

    graphs = render_all(jobs_list, p.jobs, "photos")
    for r in rows:
        if r["status"] == "unreadable_image":
            path = ss / "images" / r["image"]
            _corrupt_image(path, int(rng.integers(3)), rng, path.read_bytes())

    # the scene-graph set (the paper's Scene Graph Dataset stand-in), from its own generator: its size leaves the
    # songs' world as it is
    sg_rng = np.random.default_rng([p.seed, 2])
    sg_jobs = []
    for k in range(p.scene_graph_images):
        theme = str(sg_rng.choice(themes))
        spec = photo_spec(None, theme, scenes, glyphs, sg_rng, 0.15, 0.75, (p.seed, 2, k))
        sg_jobs.append((spec, str(sg / "images" / f"SG_{k:06d}.jpg"), p.image_size))
    sg_graphs = render_all(sg_jobs, p.jobs, "scene graphs")
    split = sg_rng.choice(["train", "val", "test"], size=len(sg_graphs), p=SCENE_GRAPH_SPLIT)

    # ---- write ----
    order = rng.permutation(len(rows))
    rows = [rows[i] for i in order]
    # a duplicate may land before its original; identical rows are told apart only by position
    seen: set = set()
    for r in rows:
        if r["status"] in ("kept", "duplicate_row"):
            r["status"] = "duplicate_row" if r["image"] in seen else "kept"
            seen.add(r["image"])
    trip = pd.DataFrame([{"image": r["image"], "title": by_id[r["song"]]["title"], "artist": by_id[r["song"]]["artist"],
                          "favorite_count": r["favorite_count"], "mood": r["mood"]} for r in rows])
    trip.to_csv(ss / "triplets.csv", index=False)
    lyr = []
    for s in songs:
        if s["lyric_status"] == "missing":
            continue
        if s["lyric_status"] == "empty":
            text = str(rng.choice(["", " ", "\n"]))
        elif s["language"] != "en":
            text = _foreign_lyric(s["language"], lex, rng)
        else:
            text = _song_lyric(s, lex, s["objects"], rng, d)
        lyr.append({"title": s["title"], "artist": s["artist"], "lyric": text})
    pd.DataFrame(lyr).to_csv(ss / "lyrics.csv", index=False)

    song_cols = ["song_id", "title", "artist", "theme", "theme2", "weak", "theme_rate", "language", "lyric_status"]
    pd.DataFrame([{k: s[k] for k in song_cols} for s in songs]).to_csv(truth / "songs.csv", index=False)
    pd.DataFrame([{"row": i, "image": r["image"], "song_id": r["song"], "intended": r["status"],
                   "selfie": r["selfie"], "context": r["context"]} for i, r in enumerate(rows)]).to_csv(truth / "rows.csv", index=False)
    with open(truth / "scene_graphs.jsonl", "w") as f:
        for g in graphs:
            f.write(json.dumps(g) + "\n")
    with open(sg / "scene_graphs.jsonl", "w") as f:
        for g, s_ in zip(sg_graphs, split):
            f.write(json.dumps({**g, "split": str(s_)}) + "\n")
    shutil.copy(paths.WORLD_ASSETS / "objects.csv", sg / "objects.csv")
    shutil.copy(paths.WORLD_ASSETS / "attributes.csv", sg / "attributes.csv")

    summary = {"raw_rows": len(rows), "kept_rows_intended": int(sum(r["status"] == "kept" for r in rows)),
               "songs_written": len(songs), "images_rendered": len(jobs_list), "scene_graph_images": len(sg_jobs),
               "seconds": round(time.time() - t0, 1), **{f"abnormal_{k}": v for k, v in abn.items()}}
    # `jobs` changes no byte of the world, so it is not recorded: the same world has the same files
    (truth / "params.json").write_text(json.dumps({k: v for k, v in asdict(p).items() if k != "jobs"}, indent=1))
    (out / WORLD_MARKER).write_text("Written by i2s.synth (stage 00_world); it replaces this folder when it reruns.\n")
    return summary


def is_world(folder: Path) -> bool:
    """Whether a folder is a world this generator wrote (its marker, or the layout of worlds from before it)."""
    if (folder / WORLD_MARKER).is_file():
        return True
    return {q.name for q in folder.iterdir()} == WORLD_PARTS and (folder / "truth" / "params.json").is_file()


def check_out(out: Path) -> None:
    """FileExistsError unless `out` is absent, an empty folder or a previous world (nothing else is replaced)."""
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise FileExistsError(f"{out}: not a folder; the world is written to a folder of its own")
    if out.is_dir() and any(out.iterdir()) and not is_world(out):
        raise FileExistsError(f"{out}: not empty and not a world written by i2s.synth (it has no {WORLD_MARKER}); "
                              "refusing to replace it: pass a new or empty folder")


def swap_in(new: Path, out: Path) -> None:
    """Move the finished folder `new` to `out`; a previous world there is deleted only once the new one is in place."""
    check_out(out)  # again: the folder may have changed while the world was being written
    old = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
    if out.exists():
        out.rename(old)
    new.rename(out)
    if old.exists():
        shutil.rmtree(old)


def generate(out: Path, p: WorldParams) -> dict:
    """Write the world under `out`: shuttersong/ (real layout), scene_graphs/, truth/. Returns a summary.

    Parameters are checked and `out` must be absent, empty or a previous world before anything is written;
    the world is written beside it and swapped in when complete, so a failure leaves the previous world as it was.
    """
    check_params(p)
    out = Path(out).absolute()
    check_out(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        summary = _write_world(staging, p)
        swap_in(staging, out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return summary


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def _is_real(v) -> bool:
    return (_is_int(v) or isinstance(v, (float, np.floating))) and math.isfinite(v)


def check_params(p: WorldParams) -> None:
    """ParamsError naming the first world parameter of the wrong type or out of range."""
    rules = [("seed", _is_int(p.seed) and p.seed >= 0, "a whole number ≥ 0"),
             ("scale", _is_real(p.scale) and p.scale >= MIN_SCALE, f"a number ≥ {MIN_SCALE}"),
             ("difficulty", _is_real(p.difficulty) and 0 <= p.difficulty <= 1, "a number from 0 to 1"),
             ("image_size", _is_int(p.image_size) and p.image_size >= MIN_IMAGE_SIZE,
              f"a whole number of pixels ≥ {MIN_IMAGE_SIZE}"),
             ("scene_graph_images", _is_int(p.scene_graph_images) and p.scene_graph_images >= 0, "a whole number ≥ 0"),
             ("jobs", _is_int(p.jobs) and p.jobs >= 0, "a whole number ≥ 0 (0 = all cores)")]
    for name, ok, want in rules:
        if not ok:
            raise ParamsError(f"world.{name} = {getattr(p, name)!r}: must be {want}")
    mix, reasons = p.abnormal_mix, set(ABNORMAL_MIX)
    if not isinstance(mix, dict) or set(mix) != reasons:
        got = set(mix) if isinstance(mix, dict) else set()
        raise ParamsError(f"world.abnormal_mix: unknown key(s) {sorted(got - reasons)}, missing {sorted(reasons - got)}; "
                          f"it gives a share to each of {sorted(reasons)}")
    for k, v in mix.items():
        if not (_is_real(v) and v >= 0):
            raise ParamsError(f"world.abnormal_mix.{k} = {v!r}: must be a number ≥ 0")
    if not sum(mix.values()) > 0:
        raise ParamsError("world.abnormal_mix: the shares add up to 0")


def world_params(values: dict | None) -> WorldParams:
    """WorldParams from the `world` section of params.yaml (missing keys keep their defaults); ParamsError names
    an unknown key or a bad value."""
    values = {} if values is None else values
    if not isinstance(values, dict):
        raise ParamsError(f"world: expected a mapping of parameters, got {type(values).__name__}")
    known = [f.name for f in fields(WorldParams)]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ParamsError(f"world: unknown key(s) {unknown}; the known keys are {known}")
    return WorldParams(**values)


def run_stage(values: dict) -> dict:
    """Stage 00_world: generate the world from the `world` section (the runner's values) into data/00_world."""
    from . import artefacts
    summary = generate(paths.data(WORLD_STAGE), world_params(values))
    artefacts.write_metrics(WORLD_STAGE, summary)
    return summary


def main(argv=None):
    ap = argparse.ArgumentParser(description="Generate the embedded Shuttersong world (what stage 00_world runs).")
    ap.add_argument("--params", default=None, help="a params.yaml (default: the project's)")
    ap.add_argument("--out", default=None, help="default: data/00_world")
    a = ap.parse_args(argv)
    from . import params
    summary = generate(Path(a.out) if a.out else paths.data(WORLD_STAGE),
                       world_params(params.load(a.params).get("world")))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
