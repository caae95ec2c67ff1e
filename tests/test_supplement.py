"""Song2image (Schwarz et al.'s scorer, closest-correct ranks), the mood input (Our-mood), InfoNCE and the
supplement's protocol helpers, on tiny hand-made examples."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from test_models import CFG, _kv, _tables

from i2s import losses, lyricdata, metrics, networks, scoring, song2image, tables, training


@pytest.fixture(scope="module")
def tiny():
    sub, table, splits = _tables()
    kv = _kv()
    return lyricdata.build_data(sub, table, "obj-attr", kv, top_k=3), splits, kv, sub


# ---- song2image -------------------------------------------------------------------------------------------------
def test_first_relevant_rank_counts_only_irrelevant_items_ahead_and_ties_against():
    scores = np.array([[0.9, 0.8, 0.1, 0.5],     # relevant 1 and 2: best relevant is 0.8, one irrelevant ahead
                       [0.2, 0.2, 0.2, 0.2],     # all tied: ranked after every irrelevant one
                       [0.1, 0.3, 0.9, 0.2]])
    relevant = np.array([[0, 1, 1, 0], [1, 0, 0, 0], [0, 0, 1, 1]], bool)
    assert metrics.first_relevant_ranks(scores, relevant).tolist() == [2, 4, 1]
    with pytest.raises(ValueError, match="relevant"):
        metrics.first_relevant_ranks(scores, np.zeros_like(relevant))
    # with one relevant item per query it is the ordinary rank
    truth = np.array([2, 0, 3])
    assert np.array_equal(metrics.first_relevant_ranks(scores, np.eye(4, dtype=bool)[truth]), metrics.ranks(scores, truth))


def test_schwarz_scores_are_the_cosine_of_pooled_word_vectors(tiny):
    data, _, kv, sub = tiny
    songs, images = np.array([0, 3, 7]), np.array([0, 6, 22, 41, 59])
    s = song2image.schwarz_scores(data, songs, images)
    lyric = sub.drop_duplicates("song_id").set_index("song_id")["lyric"]
    top = [[data.words[i] for i in data.top_tags[im]] for im in images]
    for a, song in enumerate(songs):
        v = np.mean([kv[w] for w in lyric[data.songs[song]].split()], axis=0)   # every tiny lyric word has a vector
        for b, tags in enumerate(top):
            t = np.mean([kv[w] for w in tags], axis=0)
            assert s[a, b] == pytest.approx(v @ t / np.linalg.norm(v) / np.linalg.norm(t), abs=1e-5)


def test_schwarz_finds_the_image_whose_tags_are_the_lyric():
    kv = _kv()
    sub = pd.DataFrame({"image": ["a.jpg", "b.jpg"], "song_id": ["s0", "s1"], "lyric": ["sun wave umbrella", "tree star snowman"]})
    table = pd.DataFrame({"image": ["a.jpg", "b.jpg"], "song_id": ["s0", "s1"],
                          **{f"obj:{o}": [float(o in ("sun", "wave", "umbrella")), float(o in ("tree", "star", "snowman"))]
                             for o in ["umbrella", "wave", "sun", "tree", "snowman", "star"]}})
    data = lyricdata.build_data(sub, table, "obj", kv, top_k=3)
    s = song2image.schwarz_scores(data, np.array([0, 1]), np.array([0, 1]))
    np.testing.assert_allclose(np.diag(s), 1.0, atol=1e-6)
    assert song2image.song2image_ranks(s, data, np.array([0, 1]), np.array([0, 1])).tolist() == [1, 1]


def test_song2image_ranks_use_each_songs_own_images(tiny):
    data, _, _, _ = tiny
    songs, images = np.array([0, 1]), np.arange(10)          # songs 0 and 1 own images 0-4 and 5-9
    scores = np.zeros((2, 10))
    scores[0, 7], scores[0, 3] = 0.9, 0.5                     # song 0: an image of song 1 first, then its own
    scores[1, 9] = 1.0
    assert song2image.song2image_ranks(scores, data, songs, images).tolist() == [2, 1]
    assert song2image.song2image_top(scores, images, 2)[0].tolist() == [7, 3]


# ---- the mood input ----------------------------------------------------------------------------------------------
def _with_moods(data, kv, mood_of=lambda i: "blue" if i % 3 == 0 else ""):
    return lyricdata.with_moods(data, pd.Series({im: mood_of(i) for i, im in enumerate(data.images)}), kv)


def test_with_moods_gives_the_mood_word_vector_or_zero(tiny):
    data, _, kv, _ = tiny
    d = _with_moods(data, kv, lambda i: {0: "blue", 1: "", 2: "blue white", 3: "unknownword"}.get(i % 4))
    np.testing.assert_allclose(d.moods[0].numpy(), kv["blue"])
    assert not d.moods[1].any() and not d.moods[3].any()        # no mood, or no word with a vector
    np.testing.assert_allclose(d.moods[2].numpy(), (kv["blue"] + kv["white"]) / 2, rtol=1e-6)
    assert data.moods is None and d.words == data.words          # a copy; the vocabulary is untouched


def test_our_mood_needs_moods_and_uses_them(tiny):
    data, _, kv, _ = tiny
    with pytest.raises(ValueError, match="mood"):
        networks.build_model("Our-mood", data, CFG)
    d = _with_moods(data, kv)
    torch.manual_seed(0)
    model = networks.build_model("Our-mood", d, CFG).eval()
    with torch.no_grad():
        with_mood = scoring.predict_pairs(model, d, np.array([0, 1]), np.array([0, 0]))   # image 0 has a mood, 1 none
        no_mood = scoring.predict_pairs(model, _with_moods(data, kv, lambda i: ""), np.array([0, 1]), np.array([0, 0]))
    assert not torch.allclose(with_mood[0], no_mood[0])         # the mood changes the prediction ...
    torch.testing.assert_close(with_mood[1], no_mood[1])         # ... and only where there is one


def test_our_mood_batched_scores_equal_pairwise_predictions(tiny):
    data, _, kv, _ = tiny
    d = _with_moods(data, kv)
    torch.manual_seed(1)
    model = networks.build_model("Our-mood", d, CFG).eval()
    images, songs = np.array([0, 7, 13, 40, 59]), np.array([11, 0, 5, 3])
    s = scoring.score(model, d, images, songs, budget=50)
    with torch.no_grad():
        naive = np.array([[torch.nn.functional.cosine_similarity(
            scoring.predict_pairs(model, d, np.array([im]), np.array([so])), d.targets[[im]]).item() for so in songs]
            for im in images])
    np.testing.assert_allclose(s, naive, atol=1e-5)


def test_our_mood_trains_and_ranks(tiny):
    data, splits, kv, _ = tiny
    d = _with_moods(data, kv)
    r = training.run("Our-mood", d, splits, "section", 0, CFG)
    assert len(r["test"]["ranks"]) == 12 and r["test"]["ranks"].max() <= 12


# ---- InfoNCE ----------------------------------------------------------------------------------------------------
def test_infonce_is_low_for_a_matching_batch_and_symmetric_in_its_terms():
    cos = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    low = losses.infonce(cos, torch.tensor([0, 1]), torch.tensor(np.log(50.0)))
    high = losses.infonce(-cos, torch.tensor([0, 1]), torch.tensor(np.log(50.0)))
    assert low.item() < 1e-6 and high.item() > 50
    # scale 1 and no signal: both directions are log(number of candidates)
    flat = losses.infonce(torch.zeros(3, 3), torch.tensor([0, 1, 2]), torch.tensor(0.0))
    assert flat.item() == pytest.approx(np.log(3))


def test_infonce_leaves_the_songs_other_images_out_of_the_lyric_side():
    # images 0 and 1 share song 0; image 2 has song 1. Image 1's own score is low, but it is not a negative of image 0.
    cos = torch.tensor([[1.0, 0.0], [-1.0, 0.0], [0.0, 1.0]])
    positive = torch.tensor([0, 0, 1])
    out = losses.infonce(cos, positive, torch.tensor(0.0))
    i2t = torch.nn.functional.cross_entropy(cos, positive)
    # lyric → image for pair k: image k against the images of other songs only
    t2i = [-(1.0 - torch.logsumexp(torch.tensor([1.0, 0.0]), 0)), -(-1.0 - torch.logsumexp(torch.tensor([-1.0, 0.0]), 0)),
           -(1.0 - torch.logsumexp(torch.tensor([0.0, 0.0, 1.0]), 0))]
    assert out.item() == pytest.approx(((i2t + torch.stack(t2i).mean()) / 2).item(), abs=1e-6)


def test_infonce_needs_its_temperature_and_learns_it(tiny):
    data, _, _, _ = tiny
    with pytest.raises(ValueError, match="infonce"):
        losses.loss_value("infonce", torch.zeros(2, 3), torch.zeros(2, 3))
    cfg = networks.Config(hidden=8, mlp_hidden=16, attention=6, top_k=3, loss="infonce")
    model = networks.build_model("Our-attention", data, cfg)
    assert "log_scale" in dict(model.named_parameters())        # the temperature is learnt
    # that training with it reduces the loss: tests/test_models.py::test_training_reduces_the_loss_on_a_tiny_problem


# ---- the supplement's protocol and tables ------------------------------------------------------------------------
def test_frequent_songs_and_their_held_out_queries(tiny):
    data, splits, _, _ = tiny
    triplets = pd.DataFrame({"song_id": [data.songs[0]] * 60 + [data.songs[1]] * 51 + [data.songs[2]] * 50})
    counts = triplets["song_id"].value_counts()
    pool = lyricdata.song_indices(data, counts[counts > 50].index)
    assert pool.tolist() == [0, 1]
    q = lyricdata.held_out_queries(data, splits, pool)
    assert [data.images[i] for i in q] == ["img_0_0.jpg", "img_1_0.jpg"]       # the § test image of each


def test_beside_paper_joins_the_papers_values_and_scales_fractions(monkeypatch):
    runs = pd.DataFrame({"method": ["Our", "Our", "X"], "group": ["obj-attr"] * 3, "R@1": [10.0, 20.0, 5.0],
                         "Med r": [4.0, 6.0, 9.0]})
    paper = pd.DataFrame({"table": ["T"] * 2, "method": ["Our", "Our"], "tags": ["obj-attr"] * 2,
                          "metric": ["R@1", "Med r"], "value": [0.19, 15.0]})
    monkeypatch.setattr(tables.paper, "results", lambda table, **where: paper[paper["table"] == table])
    long = tables.beside_paper(runs, "T", ["R@1", "Med r"], "ours", recall_scale=100)
    our = long[long["method"] == "Our"].set_index("metric")
    assert our.loc["R@1", "ours"] == 15 and our.loc["R@1", "paper"] == pytest.approx(19)
    assert our.loc["Med r", "paper"] == 15 and our.loc["Med r", "difference"] == -10
    assert np.isnan(long.loc[long["method"] == "X", "paper"]).all() and (long.loc[long["method"] == "X", "std"] == 0).all()
    assert tables.agreement(long, "ours", "Our", "X") == {"cells": 0, "ours": 0, "paper": 0}  # X has no paper value
