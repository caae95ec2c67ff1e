"""The world as an instrument: song signatures, the planted order signal, real-looking lyrics and the oracles."""
from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from i2s import oracle, planted, render, synth, text
from i2s import shuttersong as data

SCENES = render.load_scenes()
THEMES = ("love", "winter", "food", "night_party")


def _songs(n: int, rng, themes=THEMES, rate=0.4) -> list[dict]:
    """Songs as the world draws them (theme, motifs, a fixed signal rate)."""
    out = []
    for i in range(n):
        theme = themes[i % len(themes)]
        song = {"theme": theme, "theme2": "", "weak": False, "theme_rate": rate, "number": i,
                "motifs": synth.draw_motifs(theme, SCENES, rng), "title": "Some Title"}
        song["objects"], song["object_p"] = synth.song_objects(song, SCENES, 0.4)
        out.append(song)
    return out


def _world(order_signal: float) -> synth.LyricWorld:
    return synth.lyric_world(5, 0.4, order_signal, 0.5, scenes=SCENES)


def _chi2(counts: np.ndarray, labels: np.ndarray) -> float:
    """Chi-square statistic of the label × word table pooled from per-lyric word counts."""
    table = np.stack([counts[labels == g].sum(0) for g in np.unique(labels)])
    expected = table.sum(1, keepdims=True) * table.sum(0, keepdims=True) / table.sum()
    return float(((table - expected) ** 2 / expected).sum())


def _permutation_p(order_signal: float, n: int = 320, perms: int = 200) -> float:
    """p-value of the word counts' dependence on the song's theme and motifs (permutation test over lyrics: the
    chorus repeats words within a lyric, so the lyric, not the word, is the unit that is exchangeable under H0)."""
    rng = np.random.default_rng(0)
    lw = _world(order_signal)
    songs = _songs(n, rng)
    bags = [Counter(text.tokenize(synth.song_lyric(s, lw, SCENES, k))) for k, s in enumerate(songs)]
    total = Counter(w for b in bags for w in b.elements())
    vocab = [w for w, c in total.items() if c >= 20]
    counts = np.array([[b[w] for w in vocab] for b in bags], float)
    _, labels = np.unique([s["theme"] for s in songs], return_inverse=True)
    observed = _chi2(counts, labels)
    null = [_chi2(counts, rng.permutation(labels)) for _ in range(perms)]
    return (1 + sum(x >= observed for x in null)) / (1 + perms)


def test_at_order_signal_1_word_counts_say_nothing_about_the_song():
    assert _permutation_p(1.0) > 0.01


def test_at_order_signal_0_word_counts_tell_the_themes_apart():  # the same test has the power to see a signal
    assert _permutation_p(0.0) < 0.01


def test_at_order_signal_0_a_shuffled_lyric_is_as_likely_as_the_original():
    lw, rng = _world(0.0), np.random.default_rng(1)
    for k, song in enumerate(_songs(6, rng)):
        _, items = synth.compose_lyric(song, lw, SCENES, k)
        assert all(len(it) == 1 for it in items)
        shuffled = [items[i] for i in rng.permutation(len(items))]
        assert synth.content_loglik(shuffled, song, lw, SCENES) == pytest.approx(
            synth.content_loglik(items, song, lw, SCENES), rel=1e-12)


def test_at_order_signal_1_the_order_alone_carries_the_song():
    lw, rng = _world(1.0), np.random.default_rng(2)
    songs = _songs(8, rng, rate=0.5)
    gaps = []
    for k, song in enumerate(songs):
        _, items = synth.compose_lyric(song, lw, SCENES, k)
        phrases = [it for it in items if len(it) == 3]
        assert phrases and all(len(it) in (1, 3) for it in items)
        reversed_ = [it[::-1] if len(it) == 3 else it for it in items]  # the same words in another order
        assert Counter(w for it in reversed_ for w in it) == Counter(w for it in items for w in it)
        own = synth.content_loglik(items, song, lw, SCENES)
        gaps.append(own - synth.content_loglik(reversed_, song, lw, SCENES))
        others = [synth.content_loglik(items, s, lw, SCENES) for s in songs if s["theme"] != song["theme"]]
        assert own > np.mean(others)  # the generator's likelihood knows its song from the order
    assert np.mean(gaps) > 0


def test_lyrics_look_like_lyrics_and_exercise_preprocessing():
    lw, rng = _world(0.25), np.random.default_rng(3)
    lyrics = [synth.song_lyric(s, lw, SCENES, k) for k, s in enumerate(_songs(400, rng))]
    joined = "\n".join(lyrics)
    for mark in ("[Chorus]", "[Verse 1]", "(x2)", ",", "'", "-", "\n\n"):
        assert mark in joined, mark
    assert any(ch.isupper() for ch in joined) and " I " in joined
    toks = [text.tokenize(x) for x in lyrics]
    stats = text.oov_stats(toks, text.vectors())
    assert stats["types"] > 4000, stats          # a Zipfian vocabulary several thousand types wide (400 songs)
    assert 1.0 < stats["oov_tokens_pct"] < 6.0, stats   # a few percent of tokens without a vector


def test_signatures_shape_the_photos():
    rng = np.random.default_rng(4)
    song = _songs(1, rng, themes=("food",))[0]
    motifs = {m.split(":", 1)[1] for m in song["motifs"] if m.startswith("obj:")}
    objs, p = synth.song_objects(song, SCENES, 0.4)
    assert sum(pi for o, pi in zip(objs, p) if o in motifs) == pytest.approx(0.4 + 0.6 * len(motifs) / len(objs))
    seen = Counter()
    for k in range(300):
        spec = synth.photo_spec(song, "food", SCENES, synth.glyphs_by_tag(), rng, 0.0, 0.9, (1, k), 0.4)
        seen.update(t for t, _ in spec.objects)
    share = sum(seen[o] for o in motifs) / sum(seen.values())
    assert share > 0.3  # the song's motifs take a real part of its photos (theme-even would be ~0.1)


def test_motif_words_are_related_not_names():
    import yaml
    from i2s import paths
    motifs = yaml.safe_load((paths.LEXICON / "motifs.yaml").read_text())
    tags = {r["tag"] for r in render.load_objects()}
    used = {o for t in SCENES["themes"].values() for o in t["objects"]}
    assert used <= set(motifs["objects"])
    for name, words in motifs["objects"].items():
        assert len(words) >= 8 and name not in words and not set(words) & tags, name
    code = {w for t in yaml.safe_load((paths.LEXICON / "phrases.yaml").read_text())["templates"] for w in t}
    assert not code & text.ENGLISH_STOP_WORDS  # an order code of stop words would vanish in preprocessing


# ---- on the tiny world ---------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny(tiny_world):
    kept, _ = data.load_shuttersong(tiny_world / "shuttersong")
    subset = data.experiment_subset(kept, 2, 5)
    return tiny_world, kept, subset


def test_lyrics_are_written_again_exactly(tiny):
    world, _, subset = tiny
    own = json.loads((world / "truth" / "params.json").read_text())["order_signal"]
    again = planted.lyrics_at(subset, world / "truth", own)
    have = subset.drop_duplicates("song_id").set_index("song_id")["lyric"]
    assert (again.loc[have.index] == have).all()
    other = planted.lyrics_at(subset, world / "truth", 1.0)
    assert (other.loc[have.index] != have).any()


def _true_tags(world, kept, images) -> pd.DataFrame:
    """A tag table from the world's true scene graphs (every shown object and attribute at probability 1)."""
    graphs = {json.loads(ln)["image"]: json.loads(ln) for ln in (world / "truth" / "scene_graphs.jsonl").read_text().splitlines()}
    objects = sorted({r["tag"] for r in render.load_objects()})
    attrs = [a["attribute"] for a in render.load_attributes()]
    song_of = kept.set_index("image")["song_id"]
    rows = []
    for im in images:
        g = graphs[im]
        names = {n for o in g["objects"] for n in o["names"]}
        att = {a for o in g["objects"] for a in o["attributes"]}
        rows.append({"image": im, "song_id": song_of[im], **{f"obj:{o}": float(o in names) for o in objects},
                     **{f"attr:{a}": float(a in att) for a in attrs}})
    return pd.DataFrame(rows)


def test_the_oracles_rank_songs_from_the_truth(tiny):
    world, kept, subset = tiny
    tags = _true_tags(world, kept, list(subset["image"]))
    songs = sorted(subset["song_id"].unique())
    ranks = oracle.ceilings(tags, subset, world / "truth", list(subset["image"]), songs)
    chance = (len(songs) + 1) / 2
    assert set(ranks) == set(oracle.KINDS)
    assert ranks["song"].mean() < chance and ranks["song"].mean() <= ranks["theme"].mean() + 0.5
    assert all(len(r) == len(subset) and r.min() >= 1 and r.max() <= len(songs) for r in ranks.values())


def test_planted_metrics_are_named_as_the_issue_asks():
    runs = pd.DataFrame({"order_signal": [0.0, 0.0, 1.0, 1.0], "method": ["Our"] * 4, "seed": [0, 1, 0, 1],
                         "R@10": [20.0, 22.0, 15.0, 17.0], "R@1": 0.0, "R@5": 0.0, "Med r": 1.0})
    oracles = pd.DataFrame({"order_signal": [0.0, 1.0], "oracle": ["song", "song"], "R@10": [40.0, 40.0],
                            "R@1": 0.0, "R@5": 0.0, "Med r": 1.0})
    m = planted.metrics_of(runs, oracles)
    assert m["planted/0/Our/R@10/mean"] == 21.0 and m["planted/1/Our/R@10/std"] == pytest.approx(np.sqrt(2))
    assert m["planted/1/oracle/R@10"] == 40.0
    assert list(planted.summary(runs, oracles).columns) == ["order_signal", "Our mean", "Our std", "oracle (song)"]


def _order_toy(n=120, seed=0):
    """Two classes that use the same words equally often and differ only in the order of a phrase."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    docs = []
    for c in y:
        toks = []
        for _ in range(6):
            toks += list(rng.permutation(["la", "da", "dum"]))                      # filler, random order
            toks += ["gold", "river", "wind"] if c == 0 else ["wind", "river", "gold"]
        docs.append(toks)
    return docs, y


def test_order_probes_see_order_and_the_bag_does_not():
    from i2s import orderprobe
    docs, y = _order_toy()
    code = {"gold", "river", "wind"}
    assert orderprobe.logistic_accuracy(docs, y, 5, 0) < 0.7                     # counts are equal: chance
    assert orderprobe.logistic_accuracy([orderprobe.trigrams(d, code) for d in docs], y, 5, 0) > 0.95
    assert orderprobe.trigrams(["a", "b", "c", "d"]) == ["a_b_c", "b_c_d"]
    assert orderprobe.trigrams(["a", "b", "c", "d"], {"b", "c", "d"}) == ["b_c_d"]


def test_the_bilstm_probe_learns_a_plain_order_code():
    from gensim.models import KeyedVectors
    from i2s import orderprobe
    docs, y = _order_toy(160)
    kv = KeyedVectors(8)
    words = ["la", "da", "dum", "gold", "river", "wind"]
    kv.add_vectors(words, np.random.default_rng(1).normal(size=(len(words), 8)).astype(np.float32))
    acc = orderprobe.bilstm_accuracy(docs, y, kv, "final", 8, 0, 0.01, 15, 4, 0)
    assert acc > 0.9


def test_a_probe_without_features_is_the_majority_class():
    from i2s import orderprobe
    y = np.array([0, 0, 0, 1] * 10)
    assert orderprobe.logistic_accuracy([[] for _ in y], y, 5, 0) == 0.75


def test_the_learning_curve_trains_on_other_songs_and_tests_on_the_subset(tiny):
    from gensim.models import KeyedVectors
    from i2s import orderprobe
    world, _, subset = tiny
    songs = orderprobe.curve_songs(subset, world / "truth", 12, 6, seed=0)
    test = set(songs["test"]["number"])
    assert test == set(oracle.signatures(subset, world / "truth")["number"])  # the subset's own songs
    drawn = list(songs["train"]["number"]) + list(songs["val"]["number"])
    assert len(set(drawn)) == 18 and not set(drawn) & test  # never a subset song in training or validation
    assert list(orderprobe.curve_songs(subset, world / "truth", 6, 6, seed=0)["train"]["number"]) == drawn[:6]  # nested
    with pytest.raises(ValueError, match="other English songs"):
        orderprobe.curve_songs(subset, world / "truth", 10**6, 6, seed=0)
    kv = KeyedVectors(8)
    words = sorted({w for t in subset["lyric"] for w in text.tokenize(t)})
    kv.add_vectors(words, np.random.default_rng(1).normal(size=(len(words), 8)).astype(np.float32))
    curve = orderprobe.learning_curve(subset, world / "truth", [6, 12], kv, 4, 3, 0.01, 2, 0, 6, 1,
                                      parallel={"backend": "local", "n_jobs": 1})
    assert set(curve["train_songs"]) == {6, 12} and curve["test_songs"].iloc[0] == len(test)
    assert len(curve) == 2 * (2 + 2 * len(orderprobe.READOUTS)) and curve["accuracy"].between(0, 1).all()
    assert {"BiLSTM (mean states, chrono 3), whole lyric", "BiLSTM (mean states, PyTorch init), whole lyric"} <= set(curve["probe"])
    assert set(orderprobe.curve_metrics(curve)) >= {"probe_curve/12/logistic, word trigrams/accuracy", "probe_curve/chance"}
