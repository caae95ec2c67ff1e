"""Retrieval ceilings from the generator's truth (data/00_world/truth): what the tags allow, whatever the method.

Every oracle ranks candidate songs for a query photo by the generator's likelihood of the photo's detected tags
(the detector's object probabilities as soft counts of the photo's object slots, its weather probabilities as
Bernoulli evidence, the selfie and ordinary branches of `synth.photo_spec` mixed), under a photo model of each
candidate song:

- **song**: the song's true signature (theme and motifs): the best any method could do from the tags if it read
  every lyric perfectly. It does not depend on the lyrics, so not on `order_signal`.
- **theme**: the song's true theme only (its motifs averaged out): the best a method could do that tells songs apart
  by theme alone (the old world's ceiling).
- **lyric**: what the candidate's lyric itself reveals: the posterior over its theme, signal rate and motifs given
  the content the generator drew for it (`synth.compose_lyric`, word choice and phrase order), under the
  generator's lyric model (one motif at a time, second themes averaged), and the photo model it implies.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from . import metrics, render, synth

KINDS = ("song", "theme", "lyric")
FLOOR = 1e-4               # the least probability of an object slot (the detector sees what no slot drew)
RATE_GRID = 8              # signal rates the lyric oracle weighs (beside the weak songs' rate)


def world_songs(truth_dir: str | os.PathLike) -> pd.DataFrame:
    """The generator's songs (truth/songs.csv), motifs as lists."""
    songs = pd.read_csv(Path(truth_dir) / "songs.csv", keep_default_na=False)
    return songs.assign(motifs=songs["motifs"].str.split(), theme_rate=songs["theme_rate"].astype(float))


def world_params(truth_dir: str | os.PathLike) -> synth.WorldParams:
    """The parameters the world was generated with (truth/params.json)."""
    return synth.world_params(json.loads((Path(truth_dir) / "params.json").read_text()))


def signatures(subset: pd.DataFrame, truth_dir: str | os.PathLike) -> pd.DataFrame:
    """The generator's row of every song of the subset, indexed by the loader's song_id."""
    songs = world_songs(truth_dir)
    ids = subset.drop_duplicates("song_id")[["song_id", "title", "artist"]]
    out = ids.merge(songs.drop(columns=["song_id"]), on=["title", "artist"], how="left", validate="one_to_one")
    if out["theme"].isna().any():
        raise ValueError("songs of the subset are missing from the world's truth (is world_truth this world's?)")
    return out.set_index("song_id")


@dataclass
class PhotoModel:
    """What photos of a song show: the log-probability of an object slot (ordinary and selfie photos) and P(weather)."""
    log_slot: np.ndarray      # 2 × O: ordinary, selfie
    weather: np.ndarray       # W: P(each weather) in an ordinary photo


class World:
    """The parts of the generator the oracles need, built once per world."""

    def __init__(self, params: synth.WorldParams, objects: list[str]):
        self.p, self.objects = params, list(objects)
        self.scenes = render.load_scenes()
        self.selfie_p, self.on_theme = synth.photo_rates(params.difficulty)
        self.lw = synth.lyric_world(params.seed, params.song_link, params.order_signal, params.difficulty,
                                    scenes=self.scenes)
        self.col = {o: i for i, o in enumerate(self.objects)}
        themes = self.scenes["themes"]
        self.off = np.mean([self._spread(t["objects"]) for t in themes.values()], axis=0)
        self.generic = self._spread(self.scenes["generic"])
        self.people = self._spread(self.scenes["people"])
        self.faces = self._spread(synth.SELFIE_FACES)

    def _spread(self, tags, p=None) -> np.ndarray:
        out = np.zeros(len(self.objects))
        p = np.full(len(tags), 1 / len(tags)) if p is None else p
        for t, pi in zip(tags, p):
            if t in self.col:
                out[self.col[t]] += pi
        return out

    def photo_model(self, theme: str, object_p: np.ndarray, weather: dict) -> PhotoModel:
        """The photo model of a song whose on-theme objects are the theme's with `object_p`."""
        pool = self._spread(self.scenes["themes"][theme]["objects"], object_p)
        slot = self.on_theme * pool + synth.OFF_THEME * self.off + (1 - self.on_theme - synth.OFF_THEME) * self.generic
        n = np.mean(range(*synth.OBJECTS_PER_PHOTO))
        ordinary = (n * slot + synth.PERSON * self.people) / (n + synth.PERSON)
        behind = synth.SELFIE_SONG_OBJECT * pool + (1 - synth.SELFIE_SONG_OBJECT) * self.generic
        selfie = (self.faces + behind) / 2   # a face and, on average, one object behind it
        w = np.array([weather.get(a, 0.0) for a in synth.WEATHERS])
        return PhotoModel(np.log(np.maximum(np.stack([ordinary, selfie]), FLOOR)), np.clip(w, 0.01, 0.99))

    def song_model(self, song: dict) -> PhotoModel:
        """A song's photo model from its true signature."""
        _, p = synth.song_objects(song, self.scenes, self.p.song_link)
        return self.photo_model(song["theme"], p, synth.photo_weather(self._theme_weather(song["theme"]), song,
                                                                        self.p.song_link))

    def theme_model(self, theme: str) -> PhotoModel:
        """A theme's photo model, its songs' motifs averaged out."""
        objs = self.scenes["themes"][theme]["objects"]
        weather = self._theme_weather(theme)
        boost = self.p.song_link * synth.WEATHER_MOTIF / len(synth.WEATHERS)
        weather = {a: 1 - (1 - weather.get(a, 0.0)) * (1 - boost) for a in synth.WEATHERS}
        return self.photo_model(theme, np.full(len(objs), 1 / len(objs)), weather)

    def _theme_weather(self, theme: str) -> dict:
        return self.scenes["themes"][theme].get("weather", {})

    def photo_loglik(self, obj: np.ndarray, weather: np.ndarray, model: PhotoModel) -> np.ndarray:
        """log p(tags | song) of each photo (rows of obj: object probabilities, weather: weather probabilities)."""
        ordinary = obj @ model.log_slot[0] + weather @ np.log(model.weather) + (1 - weather) @ np.log1p(-model.weather)
        selfie = obj @ model.log_slot[1] + weather @ np.log(np.full(len(synth.WEATHERS), 0.01)) \
            + (1 - weather) @ np.log1p(-np.full(len(synth.WEATHERS), 0.01))
        return logsumexp(np.stack([ordinary + np.log(1 - self.selfie_p), selfie + np.log(self.selfie_p)]), axis=0)

    # ---- the lyric oracle ------------------------------------------------------------------------------------
    def lyric_model(self, song: dict) -> PhotoModel:
        """The photo model a song's lyric implies: the generator's posterior over theme, rate and motifs given the
        content items it drew (word choice and phrase order), averaged into one photo model."""
        _, items = synth.compose_lyric(song, self.lw, self.scenes, int(song["number"]))
        slots, weather = np.zeros((2, len(self.objects))), np.zeros(len(synth.WEATHERS))
        for theme, (pt, incl, wincl) in self.lyric_posterior(items).items():
            n = len(incl)
            share = incl / synth.MOTIFS              # each object's expected part of the motif share
            p = (1 - self.p.song_link) / n + self.p.song_link * (share + max(0.0, 1 - share.sum()) / n)
            slots += pt * np.exp(self.photo_model(theme, p / p.sum(), {}).log_slot)
            tw = self._theme_weather(theme)
            weather += pt * np.array([1 - (1 - tw.get(a, 0.0)) * (1 - self.p.song_link * wincl[k])
                                      for k, a in enumerate(synth.WEATHERS)])
        return PhotoModel(np.log(np.maximum(slots, FLOOR)), np.clip(weather, 0.01, 0.99))

    def _rates(self) -> tuple[np.ndarray, np.ndarray]:
        """Signal rates q and their prior (weak songs, then the beta-distributed rest)."""
        weak, base = synth.lyric_rates(self.p.difficulty)
        grid = (np.arange(RATE_GRID) + 0.5) / RATE_GRID
        rate = np.clip(grid * 2 * base, 0.05, synth.SIGNAL_SLOTS)
        from scipy.stats import beta
        prior = beta(4, 4).pdf(grid)
        prior = (1 - weak) * prior / prior.sum()
        q = np.append(rate, synth.WEAK_RATE) / synth.SIGNAL_SLOTS
        return np.minimum(q, 1), np.append(prior, weak)

    def lyric_posterior(self, items: list[tuple[str, ...]]) -> dict:
        """theme → (P(theme | items), P(each of its objects is a motif), P(each weather is a motif))."""
        lw, ell = self.lw, self.p.song_link
        p_bg, p_word, p_phrase = synth.item_shares(lw.order_signal)
        words = np.array([lw.index[it[0]] for it in items if len(it) == 1], dtype=np.int64)
        phrases = [it for it in items if len(it) == 3]
        of_template = {frozenset(t): i for i, t in enumerate(lw.templates)}
        tpl = np.array([of_template[frozenset(it)] for it in phrases], dtype=np.int64)
        order = np.array([synth.ORDERS.index(tuple(lw.templates[t].index(w) for w in it))
                          for t, it in zip(tpl, phrases)], dtype=np.int64)
        q, q_prior = self._rates()
        themes = list(synth.THEME_WEIGHTS)
        tw = np.array([synth.THEME_WEIGHTS[t] for t in themes], float)
        bg = lw.background[words]

        def agree(key):  # 1 where the source's code puts each phrase in its order
            return (lw.codes[key][tpl] == order).astype(float)
        theme_words = {t: lw.sources[f"theme:{t}"][words] for t in themes}
        theme_agree = {t: agree(f"theme:{t}") for t in themes}
        second = 0.3 * synth.SECOND_THEME  # a second theme, averaged over the other themes
        out, logz = {}, []
        for t, prior_t in zip(themes, tw / tw.sum()):
            others = [x for x in themes if x != t]
            th_w = (1 - second) * theme_words[t] + second * np.mean([theme_words[x] for x in others], 0)
            th_a = (1 - second) * theme_agree[t] + second * np.mean([theme_agree[x] for x in others], 0)
            keys = [f"obj:{o}" for o in self.scenes["themes"][t]["objects"]] + [f"weather:{w}" for w in synth.WEATHERS]
            kw = np.stack([lw.sources[k][words] for k in keys])          # K × words
            ka = np.stack([agree(k) for k in keys])                       # K × phrases
            prior_k = np.append(np.full(len(keys) - len(synth.WEATHERS), (1 - synth.WEATHER_MOTIF) / (len(keys) - 5)),
                                np.full(len(synth.WEATHERS), synth.WEATHER_MOTIF / len(synth.WEATHERS)))
            avg_w, avg_a = prior_k @ kw, prior_k @ ka
            objs = self.scenes["themes"][t]["objects"]
            _, p_obj = synth.song_objects({"theme": t, "motifs": []}, self.scenes, ell)
            direct = sum(pi * lw.sources[f"tag:{o}"][words] for o, pi in zip(objs, p_obj))
            # hypothesis k: motif k is one of the song's (a third of the motif share), the rest average motifs
            sig = lw.direct_share * direct + (1 - lw.direct_share) * (
                (1 - ell) * th_w + ell * (kw / synth.MOTIFS + avg_w * (1 - 1 / synth.MOTIFS)))   # K × words
            agr = (1 - ell) * th_a + ell * (ka / synth.MOTIFS + avg_a * (1 - 1 / synth.MOTIFS))   # K × phrases
            with np.errstate(divide="ignore"):  # a word no source of theme t writes: t is ruled out
                ll = (np.log(p_bg * bg + p_word * (q[:, None, None] * sig + (1 - q[:, None, None]) * bg)).sum(-1)
                      + np.log(p_phrase / len(lw.templates) * (q[:, None, None] * agr + (1 - q[:, None, None])
                                                               / len(synth.ORDERS))).sum(-1))      # Q × K
            lk = logsumexp(ll + np.log(prior_k), axis=1)                  # Q: the motif hypotheses averaged
            lq = logsumexp(lk + np.log(q_prior))
            if not np.isfinite(lq):
                out[t] = (None, np.zeros(len(self.scenes["themes"][t]["objects"])), np.zeros(len(synth.WEATHERS)))
                logz.append(-np.inf)
                continue
            pq = np.exp(lk + np.log(q_prior) - lq)                        # P(q | t, items)
            # P(k is a motif | t, items): its likelihood ratio against the average, weighed over q
            with np.errstate(invalid="ignore"):
                lr = np.exp(np.clip(np.nan_to_num(ll - lk[:, None], nan=-30.0, neginf=-30.0), -30, 30))
            incl = np.clip(synth.MOTIFS * prior_k * (pq @ lr), 0, 1)
            out[t] = (None, incl[:len(objs)], incl[len(objs):])
            logz.append(lq + np.log(prior_t))
        post = np.exp(np.array(logz) - logsumexp(logz))
        return {t: (post[i], out[t][1], out[t][2]) for i, t in enumerate(themes)}


def query_tags(tag_table: pd.DataFrame, images, world: World) -> tuple[np.ndarray, np.ndarray]:
    """The detector's object probabilities (over world.objects) and weather probabilities of some images."""
    t = tag_table.drop_duplicates("image").set_index("image").loc[list(images)]
    obj = t[[f"obj:{o}" for o in world.objects]].to_numpy(float)
    weather = t[[f"attr:{a}" for a in synth.WEATHERS]].to_numpy(float)
    return obj, weather


def score_matrix(obj: np.ndarray, weather: np.ndarray, models: list[PhotoModel], world: World) -> np.ndarray:
    """Images × songs: log p(tags | song) under each song's photo model."""
    return np.stack([world.photo_loglik(obj, weather, m) for m in models], axis=1)


def scores(tag_table: pd.DataFrame, subset: pd.DataFrame, truth_dir, images, songs, kind: str,
           order_signal: float | None = None) -> np.ndarray:
    """Images × songs (loader song ids): log p(tags | song) under one oracle's photo model of each song.

    `order_signal` rewrites the lyrics the lyric oracle reads (the world's own value by default)."""
    params = world_params(truth_dir)
    if order_signal is not None:
        params = synth.WorldParams(**{**params.__dict__, "order_signal": float(order_signal)})
    objects = [c.split(":", 1)[1] for c in tag_table.columns if c.startswith("obj:")]
    world = World(params, objects)
    sig = signatures(subset, truth_dir)
    obj, weather = query_tags(tag_table, images, world)
    build = {"song": world.song_model, "theme": lambda r: world.theme_model(r["theme"]), "lyric": world.lyric_model}
    out = score_matrix(obj, weather, [build[kind](sig.loc[s].to_dict()) for s in songs], world)
    if kind == "theme":  # songs of one theme tie: a theme-only ranker orders them at random (seeded), not last
        out = out + 1e-9 * np.random.default_rng(params.seed).random(out.shape[1])
    return out


def ceilings(tag_table: pd.DataFrame, subset: pd.DataFrame, truth_dir, images, songs, kinds=KINDS,
             order_signal: float | None = None) -> dict[str, np.ndarray]:
    """The rank of each query image's own song among `songs` (loader song ids) under each oracle of `kinds`."""
    song_of = tag_table.drop_duplicates("image").set_index("image").loc[list(images), "song_id"].to_numpy()
    col = {s: j for j, s in enumerate(songs)}
    truth = np.array([col[s] for s in song_of])
    return {k: metrics.ranks(scores(tag_table, subset, truth_dir, images, songs, k, order_signal), truth)
            for k in kinds}


def is_world_of(subset: pd.DataFrame, truth_dir) -> bool:
    """Whether the subset's songs are the songs of the world in `truth_dir` (not on real data)."""
    if not truth_dir or not (Path(truth_dir) / "songs.csv").is_file():
        return False
    try:
        signatures(subset, truth_dir)
    except ValueError:
        return False
    return True


def ceiling_table(ranks: dict[str, np.ndarray], names) -> pd.DataFrame:
    """One row per oracle: its metrics."""
    label = {"song": "oracle: the song's signature", "theme": "oracle: the song's theme only",
             "lyric": "oracle: what the lyric reveals"}
    return pd.DataFrame([{"method": label[k], **metrics.summary(r, names)} for k, r in ranks.items()])
