"""The embedded Shuttersong world: songs, lyrics, photos and scene graphs, deterministic by seed.

The real dataset cannot be downloaded here, so stage 00_world writes a synthetic one in the real
dataset's layout (see `i2s.shuttersong.load_shuttersong`). Counts follow the paper's statistics exactly at
`scale: 1.0`; everything else (themes, content gap, selfie share) is a modelling choice documented
next to the code that makes it.
"""
from __future__ import annotations

import argparse
import itertools
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
    song_link: float = 0.4         # share of a song's signal that is its own (motifs) rather than its theme's
    order_signal: float = 0.25     # share of a lyric's signal carried by word order rather than word choice
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


# ---- the lyric instrument: what a lyric says about its song, and how -------------------------------------------
# A lyric is a stream of content items with function words between them. Each item is a background word (the same
# Zipfian distribution for every song, a share of it spelt without a word vector), or one of the song's signal
# slots (a share SIGNAL_SLOTS of the items, the same for every song). A signal slot carries the song's signal with
# probability q = theme_rate / SIGNAL_SLOTS and is a background word (or a phrase in a random order) otherwise.
# `order_signal` s decides how a slot carries it: with probability 1 - s by WHICH word it is (a word of the song's
# theme, second theme or motifs, or now and then the name of an object its photos show), with probability s by the
# ORDER of a phrase of three code words every song uses equally often (phrases.yaml): the order is the one the
# signal's source (theme or motif) prescribes for that template. So at s = 0 the lyric is a bag of independent
# words, and at s = 1 its word counts are the same for every song and only the phrases' order tells songs apart.
SIGNAL_SLOTS = 0.6          # share of a lyric's content items that are signal slots (theme_rate is clipped to it)
MOTIFS = 3                  # motifs per song: objects its photos tend to show (or a weather), with related words
WEATHER_MOTIF = 0.2         # chance that a motif is a weather (at most one per song)
SECOND_THEME = 0.25         # share of the theme's part of the signal that a song with a second theme gives to it
OOV_SHARE = 0.06            # share of background words spelt without a word vector (elongations, elisions, names)
THEME_ZIPF, MOTIF_ZIPF, BACKGROUND_ZIPF = 0.9, 0.9, 0.9   # Zipf exponents of the word distributions
LYRIC_STREAM, CODE_STREAM = 3, 4                           # the world's random streams for lyrics and the order code
ORDERS = tuple(itertools.permutations(range(3)))           # the 6 orders of a phrase's three words
ADLIBS = ("oh-oh", "yeah-yeah", "na-na-na", "la-la-la", "whoa-oh", "ooh-ooh", "hey-hey")


def _lines_list(name: str) -> list[str]:
    return _lines(paths.LEXICON / name)


@dataclass(frozen=True)
class LyricWorld:
    """What every lyric of a world is drawn from besides its song: the distributions and the order code."""
    seed: int
    song_link: float
    order_signal: float
    direct_share: float                  # share of word-coded signal that names an object the photos show
    words: tuple                         # vocabulary of every content word the generator writes
    background: np.ndarray               # P(word) of a background word (OOV spellings included)
    sources: dict                        # source key ("theme:love", "obj:tree", "weather:snowy") → P(word) over words
    templates: tuple                     # phrase templates (three code words each)
    codes: dict                          # source key → the order (index into ORDERS) of each template
    function_words: tuple
    index: dict = field(default_factory=dict)   # word → its index in `words`

    def p_words(self, mix: dict) -> np.ndarray:
        """P(word) of a mixture {source key: weight} of the sources."""
        return sum(w * self.sources[k] for k, w in mix.items())


def lyric_world(seed: int, song_link: float, order_signal: float, difficulty: float, lex: dict | None = None,
                scenes: dict | None = None) -> LyricWorld:
    """The world's lyric distributions and order code (a function of its seed and knobs only)."""
    lex = load_lexicon() if lex is None else lex
    scenes = render.load_scenes() if scenes is None else scenes
    rng = np.random.default_rng([seed, CODE_STREAM])
    motifs = yaml.safe_load((paths.LEXICON / "motifs.yaml").read_text())
    templates = tuple(tuple(t) for t in yaml.safe_load((paths.LEXICON / "phrases.yaml").read_text())["templates"])
    background, oov = _lines_list("background_words.txt"), _lines_list("oov_words.txt")
    objects = sorted({o for t in scenes["themes"].values() for o in t["objects"]})
    # each theme's words get a Zipf rank of their own, drawn once per world (which theme word is common is arbitrary)
    theme_lists = {f"theme:{t}": list(rng.permutation(lex["themes"][t]["lyric_words"])) for t in THEME_WEIGHTS}
    lists = {**theme_lists, **{f"obj:{o}": motifs["objects"][o] for o in objects},
             **{f"weather:{w}": v for w, v in motifs["weather"].items()},
             **{f"tag:{o}": [o] for o in objects}}
    words = tuple(dict.fromkeys([*background, *oov, *(w for v in lists.values() for w in v),
                                 *(w for t in templates for w in t)]))
    index = {w: i for i, w in enumerate(words)}

    def dist(ws, a):
        p = np.zeros(len(words))
        np.add.at(p, [index[w] for w in ws], _zipf_weights(len(ws), a))
        return p
    bg = (1 - OOV_SHARE) * dist(background, BACKGROUND_ZIPF) + OOV_SHARE * dist(oov, BACKGROUND_ZIPF)
    sources = {k: dist(v, THEME_ZIPF if k.startswith("theme:") else MOTIF_ZIPF) for k, v in lists.items()}
    code_keys = [k for k in lists if not k.startswith("tag:")]
    codes = {k: rng.integers(len(ORDERS), size=len(templates)) for k in code_keys}
    return LyricWorld(seed=int(seed), song_link=float(song_link), order_signal=float(order_signal),
                      direct_share=max(0.08 - 0.06 * difficulty, 0.0), words=words, background=bg, sources=sources,
                      templates=templates, codes=codes, function_words=tuple(lex["function_words"]), index=index)


def draw_motifs(theme: str, scenes: dict, rng: np.random.Generator) -> list[str]:
    """A song's motifs: MOTIFS objects of its theme (or, now and then, one weather), as source keys."""
    objs = list(rng.choice(scenes["themes"][theme]["objects"], MOTIFS, replace=False))
    out = [f"obj:{o}" for o in objs]
    if rng.random() < WEATHER_MOTIF:
        out[-1] = f"weather:{rng.choice(['snowy', 'rainy', 'sunny', 'cloudy', 'foggy'])}"
    return out


def song_objects(song: dict, scenes: dict, song_link: float) -> tuple[list[str], np.ndarray]:
    """The objects a song's photos draw from when on theme, and their probabilities: the theme's objects evenly
    (1 - song_link) and the song's object motifs (song_link)."""
    objs = list(scenes["themes"][song["theme"]]["objects"])
    p = np.full(len(objs), 1.0 / len(objs))
    mine = [objs.index(m.split(":", 1)[1]) for m in song["motifs"] if m.startswith("obj:")]
    if mine:
        p = (1 - song_link) * p
        np.add.at(p, mine, song_link / len(mine))
    return objs, p / p.sum()


def signal_mix(song: dict, song_link: float) -> dict:
    """The sources of a song's signal and their weights: its theme (and second theme), then its motifs."""
    mix = {f"theme:{song['theme']}": 1 - song_link}
    if song.get("theme2"):
        mix = {f"theme:{song['theme']}": (1 - song_link) * (1 - SECOND_THEME),
               f"theme:{song['theme2']}": (1 - song_link) * SECOND_THEME}
    for m in song["motifs"]:
        mix[m] = mix.get(m, 0.0) + song_link / len(song["motifs"])
    return mix


def signal_rate(song: dict) -> float:
    """q: the chance that a signal slot of this song carries its signal."""
    return min(float(song["theme_rate"]) / SIGNAL_SLOTS, 1.0)


def _word_signal(song: dict, lw: LyricWorld, scenes: dict) -> np.ndarray:
    """P(word) of a word-coded signal slot that carries the signal: the song's sources, and now and then the name of
    an object its photos show."""
    objs, p = song_objects(song, scenes, lw.song_link)
    direct = sum(pi * lw.sources[f"tag:{o}"] for o, pi in zip(objs, p))
    return lw.direct_share * direct + (1 - lw.direct_share) * lw.p_words(signal_mix(song, lw.song_link))


def item_shares(order_signal: float) -> tuple[float, float, float]:
    """P(background word), P(word-coded signal slot), P(phrase) of a content item: a phrase takes the place of three
    words, so a share SIGNAL_SLOTS of the content words are signal slots whatever order_signal is."""
    bg, word, phrase = 1 - SIGNAL_SLOTS, SIGNAL_SLOTS * (1 - order_signal), SIGNAL_SLOTS * order_signal / 3
    z = bg + word + phrase
    return bg / z, word / z, phrase / z


def content_items(song: dict, lw: LyricWorld, scenes: dict, n: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """`n` content items of a lyric: single words, or phrases (three code words in an order)."""
    q = signal_rate(song)
    p_bg, p_word, _ = item_shares(lw.order_signal)
    sig = _word_signal(song, lw, scenes)
    mix = signal_mix(song, lw.song_link)
    keys, weights = list(mix), np.array(list(mix.values()))
    kind, carry = rng.random(n), rng.random(n) < q
    bg_draws = rng.choice(len(lw.words), n, p=lw.background)
    sig_draws = rng.choice(len(lw.words), n, p=sig)
    src = rng.choice(len(keys), n, p=weights / weights.sum())
    tpl, shuffled = rng.integers(len(lw.templates), size=n), rng.integers(len(ORDERS), size=n)
    items = []
    for k in range(n):
        if kind[k] >= p_bg + p_word:  # a phrase: its order is the source's when the slot carries the signal
            order = ORDERS[lw.codes[keys[src[k]]][tpl[k]]] if carry[k] else ORDERS[shuffled[k]]
            items.append(tuple(lw.templates[tpl[k]][i] for i in order))
        else:
            items.append((lw.words[sig_draws[k] if kind[k] >= p_bg and carry[k] else bg_draws[k]],))
    return items


def content_loglik(items: list[tuple[str, ...]], song: dict, lw: LyricWorld, scenes: dict) -> float:
    """The generator's log-likelihood of a lyric's drawn content items given its song (the item process up to its
    length): single words from their mixture, phrases by template and order."""
    q = signal_rate(song)
    p_bg, p_word, p_phrase = item_shares(lw.order_signal)
    single = p_bg * lw.background + p_word * (q * _word_signal(song, lw, scenes) + (1 - q) * lw.background)
    mix = signal_mix(song, lw.song_link)
    total = sum(mix.values())
    of_template = {frozenset(t): i for i, t in enumerate(lw.templates)}
    ll = 0.0
    for it in items:
        if len(it) == 1:
            ll += math.log(single[lw.index[it[0]]])
            continue
        t = of_template[frozenset(it)]
        order = ORDERS.index(tuple(lw.templates[t].index(w) for w in it))
        agree = sum(w for k, w in mix.items() if lw.codes[k][t] == order) / total
        p = p_phrase / len(lw.templates) * (q * agree + (1 - q) / len(ORDERS))
        ll += math.log(p) if p > 0 else -math.inf  # an order no source of the song prescribes, from a song that always says
    return ll


def _line(items: list[tuple[str, ...]], lw: LyricWorld, rng: np.random.Generator) -> tuple[str, int]:
    """One written line of content items with function words between them; returns it and its word count."""
    # every draw of the line at once: a draw per word in Python was most of the world's lyric time
    fw = lw.function_words
    before = rng.choice(3, size=len(items), p=[0.3, 0.45, 0.25])   # function words before each item
    inner = rng.random((len(items), 3)) < 0.4                        # a function word inside a phrase ("gold in the")
    pick = rng.integers(len(fw), size=int(before.sum() + inner.sum()))
    possessive, comma, tail = rng.random((len(items), 3)) < 0.03, rng.random(len(items)) < 0.1, rng.random(3)
    out, f = [], 0
    for k, it in enumerate(items):
        out += [fw[i] for i in pick[f:f + before[k]]]
        f += int(before[k])
        for j, w in enumerate(it):
            if j and inner[k, j]:
                out.append(fw[pick[f]])
                f += 1
            out.append(w + ("'" if w.endswith("s") else "'s") if possessive[k, j] else w)
        if comma[k]:
            out[-1] += ","
    words = len(out)
    out = ["I" + w[1:] if w == "i" or w.startswith("i'") else w for w in out]
    text = " ".join(out).rstrip(",")
    text = text[0].upper() + text[1:]
    u = tail[0]
    text += "," if u < 0.1 else "!" if u < 0.15 else "?" if u < 0.19 else "..." if u < 0.25 else ""
    if tail[1] < 0.08:
        text += f" ({ADLIBS[int(tail[2] * len(ADLIBS))]})"
    return text, words


def compose_lyric(song: dict, lw: LyricWorld, scenes: dict, number: int) -> tuple[str, list[tuple[str, ...]]]:
    """A song's lyric as written (sections, chorus repeats, punctuation) and the content items it drew.

    A pure function of the world's seed, the song's number and signature and `lw` (so lyrics can be written again
    for another order_signal while photos and tags stay as they are)."""
    rng = np.random.default_rng([lw.seed, LYRIC_STREAM, number])
    budget = int(np.clip(rng.lognormal(math.log(170), 0.35), 80, 300))  # words as written (function + content)
    stream = content_items(song, lw, scenes, budget, rng)
    drawn: list[tuple[str, ...]] = []

    def new_lines(n_lines: int) -> list[str]:
        lines = []
        for _ in range(n_lines):
            k = int(rng.integers(2, 5))
            items, stream[:k] = stream[:k], []
            drawn.extend(items)
            lines.append(_line(items, lw, rng))
        return lines
    markers = rng.random() < 0.6
    chorus = new_lines(int(rng.integers(2, 4)))
    if rng.random() < 1 - lw.order_signal:  # the chorus opens with the title (its words are the theme's)
        chorus.insert(0, (song["title"] + (f", {rng.choice(['oh', 'yeah', 'baby'])}" if rng.random() < 0.3 else ""),
                          len(song["title"].split())))
    if rng.random() < 0.3:
        chorus[-1] = (chorus[-1][0] + " (x2)", chorus[-1][1])
    # the budget counts every written word, the chorus's repeats too (the paper's lyrics are "dozens of words" once
    # preprocessed, Section 4.2)
    size = sum(n for _, n in chorus)
    blocks, used, verse = [], 0, 0
    while used < budget and stream:
        verse += 1
        lines = []
        for _ in range(int(rng.integers(3, 6))):
            if lines and used + size >= budget:
                break
            lines += new_lines(1)
            used += lines[-1][1]
        blocks.append((f"[Verse {verse}]", lines))
        if verse > 1 and used + size > budget:
            break
        blocks.append(("[Chorus]", chorus))
        used += size
        if verse == 2 and used < budget and rng.random() < 0.4:
            blocks.append(("[Bridge]", new_lines(2)))
            used += sum(n for _, n in blocks[-1][1])
    text = "\n\n".join((f"{head}\n" if markers else "") + "\n".join(t for t, _ in lines) for head, lines in blocks)
    return text, drawn


def song_lyric(song: dict, lw: LyricWorld, scenes: dict, number: int) -> str:
    """A song's lyric as written (see `compose_lyric`)."""
    return compose_lyric(song, lw, scenes, number)[0]


def foreign_lyric(lang: str, lex: dict, seed: int, number: int) -> str:
    """A lyric in another language (one the loader must reject), from its own random stream."""
    rng = np.random.default_rng([seed, LYRIC_STREAM, number])
    words = np.array(lex["foreign"][lang])
    w = _zipf_weights(len(words), 0.7)
    length = int(np.clip(rng.lognormal(math.log(170), 0.35), 80, 300))
    lines, n = [], 0
    while n < length:
        k = int(rng.integers(5, 10))
        line = " ".join(words[rng.choice(len(words), k, p=w)])
        lines.append(line[0].upper() + line[1:] + ("," if rng.random() < 0.2 else ""))
        n += k
    return "\n".join(lines)


# ---- photos -----------------------------------------------------------------------------------
def _choose_glyph(tag: str, theme: str | None, glyphs: dict, rng: np.random.Generator) -> tuple[str, int]:
    variants = glyphs[tag]
    bias = EXPRESSION_BIAS.get(theme or "", set())
    w = np.array([4.0 if bias & set(v["fixed"]) else 1.0 for v in variants])
    v = variants[int(rng.choice(len(variants), p=w / w.sum()))]
    return tag, int(v["codepoint"])


OFF_THEME = 0.1              # share of a photo's objects from a random theme
PERSON = 0.35                # chance a (non-selfie) photo also shows a person
CONTEXT_ON_THEME = 0.85      # chance the background is one of the theme's contexts
SELFIE_FACES = ("face", "face", "person", "woman", "man", "girl", "boy")
SELFIE_SONG_OBJECT = 0.3     # chance an object behind a selfie's face is one of the song's
OBJECTS_PER_PHOTO = (2, 7)   # objects per photo: 2 to 6
WEATHERS = ("snowy", "rainy", "sunny", "cloudy", "foggy")


WEAK_RATE = 0.02            # theme_rate of a weak song (the paper's Best Friends: almost no related words)


def lyric_rates(difficulty: float) -> tuple[float, float]:
    """The share of weak songs and the mean theme_rate of the others, at a difficulty."""
    return 0.1 + 0.3 * difficulty, 0.45 - 0.3 * difficulty


def photo_rates(difficulty: float) -> tuple[float, float]:
    """The share of selfies and of a photo's objects that are on theme, at a difficulty."""
    return 0.15 + 0.4 * difficulty, 0.9 - 0.5 * difficulty


def photo_weather(theme_weather: dict, song: dict | None, song_link: float) -> dict:
    """P(weather) of a photo: its theme's, and a motif weather shown in a further share song_link of the photos."""
    out = dict(theme_weather)
    for m in (song or {}).get("motifs", ()):
        if m.startswith("weather:"):
            w = m.split(":", 1)[1]
            out[w] = 1 - (1 - out.get(w, 0.0)) * (1 - song_link)
    return out


def photo_spec(song: dict | None, theme: str, scenes: dict, glyphs: dict, rng: np.random.Generator,
               selfie_p: float, on_theme: float, seed, song_link: float = 0.0) -> render.SceneSpec:
    """What one photo of a song (or of a theme, for the scene-graph set) shows: objects from the song's pool (its
    theme's objects, weighted toward its object motifs) and weather (its theme's, and a motif weather)."""
    t = scenes["themes"][theme]
    pool, p = (song["objects"], song["object_p"]) if song else (t["objects"], None)
    if rng.random() < selfie_p:  # weakly informative: a face close-up with little of the song in it
        ctx = _weighted(scenes["selfie"]["contexts"], rng)
        objs = [_choose_glyph(str(rng.choice(SELFIE_FACES)), theme, glyphs, rng)]
        for _ in range(int(rng.integers(0, 3))):
            tag = str(rng.choice(pool, p=p)) if (song and rng.random() < SELFIE_SONG_OBJECT) else str(rng.choice(scenes["generic"]))
            objs.append(_choose_glyph(tag, theme, glyphs, rng))
        # the close-up is drawn last so it covers what is behind it
        return render.SceneSpec(ctx, objs[1:] + objs[:1], [], t["palette"], True, seed)
    ctx = _weighted(t["contexts"], rng) if rng.random() < CONTEXT_ON_THEME else str(rng.choice(render.CONTEXTS))
    objs = []
    for _ in range(int(rng.integers(*OBJECTS_PER_PHOTO))):
        u = rng.random()
        if u < on_theme:
            tag = str(rng.choice(pool, p=p))
        elif u < on_theme + OFF_THEME:
            tag = str(rng.choice(scenes["themes"][str(rng.choice(list(scenes["themes"])))]["objects"]))
        else:
            tag = str(rng.choice(scenes["generic"]))
        objs.append(_choose_glyph(tag, theme, glyphs, rng))
    if rng.random() < PERSON:
        objs.append(_choose_glyph(str(rng.choice(scenes["people"])), theme, glyphs, rng))
    weather = [w for w, q in photo_weather(t.get("weather", {}), song, song_link).items() if rng.random() < q]
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
    selfie_p, on_theme = photo_rates(d)
    weak_share, base_rate = lyric_rates(d)
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
        rate = WEAK_RATE if weak else float(np.clip(rng.beta(4, 4) * 2 * base_rate, 0.05, 0.9))
        song = {"song_id": f"S{i:05d}", "number": i, "theme": theme, "theme2": theme2, "weak": weak,
                "theme_rate": min(rate, SIGNAL_SLOTS), "language": language, "lyric_status": lyric_status,
                "motifs": draw_motifs(theme, scenes, rng)}
        song["objects"], song["object_p"] = song_objects(song, scenes, p.song_link)
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
        spec = photo_spec(s, s["theme"], scenes, glyphs, rng, sp, on_theme, (p.seed, 1, k), p.song_link)
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
    lw = lyric_world(p.seed, p.song_link, p.order_signal, d, lex, scenes)
    lyr = []
    for s in songs:
        if s["lyric_status"] == "missing":
            continue
        if s["lyric_status"] == "empty":
            text = str(rng.choice(["", " ", "\n"]))
        elif s["language"] != "en":
            text = foreign_lyric(s["language"], lex, p.seed, s["number"])
        else:
            text = song_lyric(s, lw, scenes, s["number"])
        lyr.append({"title": s["title"], "artist": s["artist"], "lyric": text})
    pd.DataFrame(lyr).to_csv(ss / "lyrics.csv", index=False)

    song_cols = ["song_id", "number", "title", "artist", "theme", "theme2", "weak", "theme_rate", "language",
                 "lyric_status"]
    pd.DataFrame([{**{k: s[k] for k in song_cols}, "motifs": " ".join(s["motifs"])} for s in songs]).to_csv(
        truth / "songs.csv", index=False)
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
             ("song_link", _is_real(p.song_link) and 0 <= p.song_link <= 1, "a number from 0 to 1"),
             ("order_signal", _is_real(p.order_signal) and 0 <= p.order_signal <= 1, "a number from 0 to 1"),
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
