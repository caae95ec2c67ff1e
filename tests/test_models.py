"""Lyric models: BiLSTM masking on padded batches, tag attention, batched pair scoring, splits, training."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from gensim.models import KeyedVectors

from i2s import losses, lyricdata, networks, persistence, scoring, training

# a tiny world: two themes, each with its own lyric words and its own image tags
THEMES = {"beach": (["surf", "tide", "sunscreen", "coral"], ["umbrella", "wave", "sun"]),
          "snow": (["sleigh", "frost", "mitten", "chimney"], ["tree", "snowman", "star"])}
FILLER = ["baby", "tonight", "yeah", "forever", "dream", "heart"]
OBJECTS = ["umbrella", "wave", "sun", "tree", "snowman", "star"]
ATTRIBUTES = ["blue", "white"]


def _kv():
    words = sorted({w for ws, _ in THEMES.values() for w in ws} | set(FILLER) | set(OBJECTS) | set(ATTRIBUTES))
    kv = KeyedVectors(8)
    kv.add_vectors(words, np.random.default_rng(0).normal(size=(len(words), 8)).astype(np.float32))
    return kv


def _tables(n_songs=12, per_song=5, seed=0):
    rng = np.random.default_rng(seed)
    sub, tag_rows = [], []
    for s in range(n_songs):
        theme = list(THEMES)[s % 2]
        words, objs = THEMES[theme]
        lyric = " ".join(rng.choice(words + FILLER, size=int(rng.integers(6, 15))))
        for k in range(per_song):
            image = f"img_{s}_{k}.jpg"
            sub.append({"image": image, "song_id": f"song_{s:02d}", "lyric": lyric})
            row = {"image": image, "song_id": f"song_{s:02d}"}
            for o in OBJECTS:
                row[f"obj:{o}"] = float(rng.uniform(0.6, 1.0) if o in objs and rng.random() < 0.8 else rng.uniform(0, 0.1))
            for a in ATTRIBUTES:
                row[f"attr:{a}"] = float(rng.uniform(0, 1))
            tag_rows.append(row)
    sub = pd.DataFrame(sub)
    songs = sorted(sub["song_id"].unique())
    test_songs = set(songs[:4])
    splits = sub[["song_id", "image"]].copy()
    splits["dagger"] = np.where(splits["song_id"].isin(test_songs), "test", "train")
    splits["section"] = np.where(splits["image"].str.endswith("_0.jpg"), "test", "train")
    return sub, pd.DataFrame(tag_rows), splits


@pytest.fixture(scope="module")
def tiny():
    sub, table, splits = _tables()
    return lyricdata.build_data(sub, table, "obj-attr", _kv(), top_k=3), splits


CFG = networks.Config(hidden=6, mlp_hidden=10, attention=5, top_k=3, batch_pairs=20, max_epochs=3, patience=3,
                    val_fraction=0.25)


def test_build_data_shapes(tiny):
    data, _ = tiny
    assert len(data.songs) == 12 and len(data.images) == 60
    assert data.targets.shape == (60, len(OBJECTS) + len(ATTRIBUTES)) and data.tag_words[:2] == OBJECTS[:2]
    assert data.tokens.shape[0] == 12 and (data.tokens[:, 0] > 1).all()
    assert data.top_tags.shape == (60, 3)
    for i in range(12):  # padding (id 0) only after the lyric's length
        n = int(data.lengths[i])
        assert (data.tokens[i, :n] > 0).all() and (data.tokens[i, n:] == 0).all()
    assert data.embedding.shape[0] == len(data.words) and not data.embedding[:2].any()


def test_build_data_refuses_untagged_subset_images():
    sub, table, _ = _tables()
    with pytest.raises(ValueError, match="no tags"):
        lyricdata.build_data(sub, table.iloc[1:], "obj", _kv())


def test_bilstm_on_a_padded_batch_matches_each_lyric_alone():
    torch.manual_seed(0)
    lstm = networks.BiLSTM(5, 4)
    lengths = torch.tensor([7, 3, 5])
    x = torch.randn(3, 7, 5)
    garbage = x.clone()
    for b, n in enumerate(lengths):
        garbage[b, n:] = 100 * torch.randn(7 - int(n), 5)  # whatever sits in the padding must not matter
    out, out_g = lstm(x, lengths), lstm(garbage, lengths)
    assert out["outputs"].shape == (3, 7, 8) and out["final"].shape == (3, 8)
    assert torch.equal(out["mask"], torch.arange(7)[None] < lengths[:, None])
    torch.testing.assert_close(out["final"], out_g["final"])
    torch.testing.assert_close(out["outputs"], out_g["outputs"])
    for b, n in enumerate(lengths.tolist()):
        alone = lstm(x[b:b + 1, :n], torch.tensor([n]))
        torch.testing.assert_close(out["final"][b], alone["final"][0])
        torch.testing.assert_close(out["outputs"][b, :n], alone["outputs"][0])
        assert not out["outputs"][b, n:].any()
        # l = h_fwd(final) ‖ h_bwd(first): the forward output at the last word, the backward at the first
        torch.testing.assert_close(out["final"][b, :4], out["outputs"][b, n - 1, :4])
        torch.testing.assert_close(out["final"][b, 4:], out["outputs"][b, 0, 4:])


def test_lstm_memory_sums_to_the_final_cell_state():
    torch.manual_seed(1)
    lstm = torch.nn.LSTM(5, 4, batch_first=True)
    x = torch.randn(2, 6, 5)
    lengths = torch.tensor([6, 4])
    h, _ = lstm(x)
    mask = torch.arange(6)[None] < lengths[:, None]
    contrib, o_final = networks.lstm_memory(lstm, x, h, mask)
    for b, n in enumerate(lengths.tolist()):
        _, (h_n, c_n) = lstm(x[b:b + 1, :n])
        torch.testing.assert_close(contrib[b].sum(0), c_n[0, 0])
        torch.testing.assert_close(o_final[b] * torch.tanh(contrib[b].sum(0)), h_n[0, 0])
        assert not contrib[b, n:].any()


@pytest.mark.parametrize("method", networks.ATTENTIVE)
def test_attention_weights_sum_to_one_over_real_words(tiny, method):
    data, _ = tiny
    torch.manual_seed(0)
    model = networks.build_model(method, data, CFG).eval()
    songs = np.array([0, 1, 2, 3])
    st = scoring.encode_songs(model, data, songs)
    q = model.query(data.top_tags[:3])
    with torch.no_grad():
        grid = model.weights(st, q, grid=True)  # images × songs × steps
        pair = model.weights({k: v[[0, 1, 2]] for k, v in st.items()}, q)
    lengths = data.lengths[songs]
    assert grid.shape == (3, 4, int(lengths.max()))
    torch.testing.assert_close(grid.sum(-1), torch.ones(3, 4))
    for j, n in enumerate(lengths.tolist()):
        assert (grid[:, j, n:] == 0).all() and (grid[:, j, :n] > 0).all()
    torch.testing.assert_close(pair, torch.stack([grid[i, i] for i in range(3)]))
    w = scoring.attention_weights(model, data, [0, 5, 7], [2, 2, 0])
    assert [len(x) for x in w] == [int(data.lengths[2]), int(data.lengths[2]), int(data.lengths[0])]
    assert all(x.sum() == pytest.approx(1, abs=1e-5) for x in w)
    np.testing.assert_allclose(w[1], scoring.attention_weights(model, data, 5, 2)[0], rtol=1e-6)


@pytest.mark.parametrize("method", ["Our-attention", "Our-attention-linear"])
def test_uniform_attention_gives_back_our_representation(tiny, method):
    data, _ = tiny
    torch.manual_seed(0)
    att = networks.build_model(method, data, CFG).eval()
    our = networks.build_model("Our", data, CFG).eval()
    our.lstm.load_state_dict(att.lstm.state_dict())
    our.mlp.load_state_dict(att.mlp.state_dict())
    with torch.no_grad():
        att.attention.w_ms.weight.zero_()  # equal scores → s_t = 1/n on every real word
        songs = np.arange(6)
        images = np.arange(6) * 5
        torch.testing.assert_close(scoring.predict_pairs(att, data, images, songs),
                                   scoring.predict_pairs(our, data, images, songs))


@pytest.mark.parametrize("method", networks.METHODS + networks.EXTRA_METHODS)
def test_batched_scores_equal_pairwise_predictions(tiny, method):
    data, splits = tiny
    torch.manual_seed(0)
    model = networks.build_model(method, data, CFG).eval()
    images, songs = np.array([0, 7, 13, 40, 59]), np.array([11, 0, 5, 3])
    s = scoring.score(model, data, images, songs, budget=50)  # a tiny budget forces several image chunks
    naive = np.zeros_like(s)
    with torch.no_grad():
        for i, im in enumerate(images):
            for j, so in enumerate(songs):
                pred = scoring.predict_pairs(model, data, np.array([im]), np.array([so]))
                naive[i, j] = ((model.image_side(data.targets[[im]]) * pred).sum().item() if model.joint else
                               torch.nn.functional.cosine_similarity(pred, data.targets[[im]]).item())
    np.testing.assert_allclose(s, naive, atol=1e-5)


def test_splits_mirror_the_test_protocol_and_never_touch_test(tiny):
    data, splits = tiny
    song_of = data.image_song.numpy()
    d = lyricdata.split_indices(data, splits, "dagger", 0, 0.25)
    assert len(d["pool"]) == 4 and set(song_of[d["test"]]) == set(d["pool"])
    assert set(song_of[d["val"]]) == set(d["val_pool"]) and len(d["val_pool"]) == 2
    assert not set(song_of[d["train"]]) & (set(d["pool"]) | set(d["val_pool"]))
    assert len(np.concatenate([d["train"], d["val"], d["test"]])) == 60
    s = lyricdata.split_indices(data, splits, "section", 0, 0.25)
    assert len(s["test"]) == 12 and len(s["pool"]) == 12 and len(s["val"]) == 3
    assert len(set(song_of[s["val"]])) == 3 and not set(s["val"]) & set(s["train"])
    assert set(song_of[s["val"]]) == set(s["val_pool"])  # each validation image's song has other training images
    assert set(song_of[s["val"]]) <= set(song_of[s["train"]])
    assert set(s["train"]) | set(s["val"]) | set(s["test"]) == set(range(60))
    other = lyricdata.split_indices(data, splits, "section", 1, 0.25)
    assert np.array_equal(other["test"], s["test"]) and np.array_equal(other["pool"], s["pool"])


def test_song_batches_cover_every_training_pair_once(tiny):
    data, splits = tiny
    idx = lyricdata.split_indices(data, splits, "dagger", 0, 0.25)
    batches = training.song_batches(idx["train"], data, 20, np.random.default_rng(0))
    images = np.concatenate([b[0] for b in batches])
    assert sorted(images.tolist()) == sorted(idx["train"].tolist())
    assert sorted(len(im) for im, _ in batches) == [10, 20]  # 6 songs × 5 images: one batch of 4 songs, one of 2
    for im, so in batches:
        assert np.array_equal(data.image_song.numpy()[im], so)


def test_losses():
    p, t = torch.tensor([[1.0, 0.0], [0.0, 2.0]]), torch.tensor([[0.0, 0.0], [0.0, 1.0]])
    assert losses.loss_value("mse", p, t).item() == pytest.approx(1.0)  # Eq. 11 per pair: (1 + 1) / 2
    assert losses.loss_value("cpl", t[1:], t[1:]).item() == pytest.approx(-1.0)
    a, b = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    assert losses.loss_value("mrl", a, a, neg=b).item() == pytest.approx(0.0)   # 1 + 0 − 1
    assert losses.loss_value("mrl", b, a, neg=a).item() == pytest.approx(2.0)   # 1 + 1 − 0
    with pytest.raises(ValueError):
        losses.loss_value("mrl", a, a)
    with pytest.raises(ValueError):
        losses.loss_value("hinge", a, a)


@pytest.mark.parametrize("method,loss", [(m, "mse") for m in networks.METHODS + networks.EXTRA_METHODS]
                         + [("Our", "cpl"), ("Our-attention", "mrl"), ("Our-attention", "infonce")])
def test_training_reduces_the_loss_on_a_tiny_problem(tiny, method, loss):
    data, splits = tiny
    cfg = networks.Config(hidden=8, mlp_hidden=16, attention=6, top_k=3, batch_pairs=20, max_epochs=1, loss=loss,
                        lr=1e-2)
    idx = lyricdata.split_indices(data, splits, "section", 0, 0.25)
    torch.manual_seed(0)
    model = networks.build_model(method, data, cfg, np.unique(data.image_song.numpy()[idx["train"]]))
    images = idx["train"]
    songs = data.image_song.numpy()[images]

    def full_loss():
        with torch.no_grad():
            return training._batch_loss(model.eval(), data, images, songs, cfg, np.random.default_rng(5),
                                        np.unique(songs)).item()
    before = full_loss()
    for _ in range(15):
        training.train(model, data, images, idx["val"], idx["val_pool"], cfg, seed=0)
    assert full_loss() < 0.8 * before


def test_run_is_deterministic_and_ranks_every_test_query(tiny):
    data, splits = tiny
    a = training.run("Our-attention", data, splits, "dagger", 3, CFG)
    b = training.run("Our-attention", data, splits, "dagger", 3, CFG)
    assert np.array_equal(a["test"]["ranks"], b["test"]["ranks"])
    pd.testing.assert_frame_equal(a["history"].drop(columns=["seconds", "lyrics_per_s"]),
                                  b["history"].drop(columns=["seconds", "lyrics_per_s"]))
    assert len(a["test"]["ranks"]) == 20 and a["test"]["ranks"].max() <= 4 and a["test"]["top3"].shape == (20, 3)
    frame = training.results_frame([a, b])
    assert list(frame.columns[-4:]) == ["R@1", "R@5", "R@10", "Med r"] and (frame["R@10"] == 100).all()


@pytest.mark.parametrize("method", networks.METHODS)
def test_saved_model_loads_back_with_identical_scores(tiny, method, tmp_path):
    data, splits = tiny
    train_songs = np.unique(data.image_song.numpy()[lyricdata.split_indices(data, splits, "dagger", 0, 0.25)["train"]])
    torch.manual_seed(0)
    model = networks.build_model(method, data, CFG, train_songs)
    training.train(model, data, np.arange(20, 60), np.arange(10), np.arange(2), CFG)
    path = persistence.save_model(model, tmp_path / f"{method}__obj-attr.pt", data, method, train_songs)
    back = persistence.load_model(path, data)
    assert type(back) is type(model) and back.cfg == CFG and not back.training
    images, songs = np.arange(0, 60, 7), np.arange(12)
    np.testing.assert_array_equal(scoring.score(back, data, images, songs), scoring.score(model, data, images, songs))
    torch.manual_seed(1)  # a fresh model scores differently: the weights, not the architecture, made them equal
    other = networks.build_model(method, data, CFG, train_songs)
    assert not np.allclose(scoring.score(other, data, images, songs), scoring.score(model, data, images, songs))


def test_loading_a_model_on_other_data_fails_clearly(tiny, tmp_path):
    data, splits = tiny
    model = networks.build_model("Our", data, CFG)
    path = persistence.save_model(model, tmp_path / "m.pt", data, "Our", np.arange(8))
    sub, table, _ = _tables()
    with pytest.raises(ValueError, match="tag group"):
        persistence.load_model(path, lyricdata.build_data(sub, table, "obj", _kv(), top_k=3))
    fewer = sub[sub["song_id"] != "song_11"]
    with pytest.raises(ValueError, match="vocabulary|training songs"):
        persistence.load_model(path, lyricdata.build_data(fewer, table, "obj-attr", _kv(), top_k=3))
    with pytest.raises(ValueError, match="top 3 tags"):
        persistence.load_model(path, lyricdata.build_data(sub, table, "obj-attr", _kv(), top_k=2))
    with pytest.raises(ValueError, match="not a 'BoW' model"):
        persistence.save_model(model, tmp_path / "x.pt", data, "BoW", np.arange(8))


def test_bilstm_forget_gate_starts_open_and_the_memory_terms_still_add_up():
    lstm = networks.BiLSTM(5, 4, forget_bias=3.0)
    for d in (lstm.fwd, lstm.bwd):
        assert torch.all(d.bias_ih_l0[4:8] == 3.0) and torch.all(d.bias_hh_l0[4:8] == 0)
        assert not torch.all(d.bias_ih_l0[:4] == 3.0)  # the other gates keep PyTorch's initialisation
    x, lengths = torch.randn(2, 6, 5), torch.tensor([6, 3])
    out = lstm(x, lengths, memory=True)
    # the final cell state is the sum of the per-step contributions, so h_final = o_final * tanh(sum)
    h = out["o_fwd"] * torch.tanh(out["contrib_fwd"].sum(1))
    torch.testing.assert_close(h, out["final"][:, :4], rtol=1e-5, atol=1e-5)


def _two_step_models():
    """Eq. 10 and its linear reading with the same weights, on a one-word-per-step embedding."""
    emb = torch.tensor([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])   # PAD, UNK, two words
    cfg = networks.Config(hidden=3, mlp_hidden=4, attention=2, top_k=1, chrono=0, forget_bias=0.0)
    torch.manual_seed(3)
    eq10 = networks.OurAttention(emb, 2, cfg).eval()
    linear = networks.OurAttentionLinear(emb, 2, cfg).eval()
    linear.load_state_dict(eq10.state_dict())
    return eq10, linear


def test_eq10_hands_the_reweighted_output_on_and_differs_from_the_linear_reading():
    eq10, linear = _two_step_models()
    tokens, lengths = torch.tensor([[2, 3]]), torch.tensor([2])
    with torch.no_grad():
        song = eq10.songs(tokens, lengths, torch.tensor([0]))
        s = torch.tensor([[0.9, 0.1]])           # attention weights of the two words, sum 1
        eq10.weights = lambda st, q, grid=False: s
        linear.weights = lambda st, q, grid=False: s
        out = eq10.pairs(song, {"b": torch.zeros(1, 2)})
        out_lin = linear.pairs(linear.songs(tokens, lengths, torch.tensor([0])), {"b": torch.zeros(1, 2)})
        # Eq. 10 by hand: the forward LSTM's second step reads h̃_1 = n·s_1·h_1; the backward one reads the lyric
        # reversed, so its second step reads n·s_2·h of the second word; final = h_fwd(2) ‖ h_bwd(1)
        def cell(lstm, x, h, c):
            g = lstm.weight_ih_l0 @ x + lstm.bias_ih_l0 + lstm.weight_hh_l0 @ h + lstm.bias_hh_l0
            i, f, gg, o = g.chunk(4)
            c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(gg)
            return torch.sigmoid(o) * torch.tanh(c), c
        x1, x2, z = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), torch.zeros(3)
        h1, c1 = cell(eq10.lstm.fwd, x1, z, z)
        hf, _ = cell(eq10.lstm.fwd, x2, 2 * 0.9 * h1, c1)
        g1, d1 = cell(eq10.lstm.bwd, x2, z, z)
        hb, _ = cell(eq10.lstm.bwd, x1, 2 * 0.1 * g1, d1)
        torch.testing.assert_close(out, eq10.mlp(torch.cat([hf, hb]))[None])
    assert not torch.allclose(out, out_lin, atol=1e-4)   # the two readings are different mechanisms


def test_bai_et_al_ranking_loss_separates_a_separable_toy_problem():
    torch.manual_seed(0)
    # 6 "documents" (bags of 6 words) and queries in a 4-d tag space: query k matches document k
    docs = torch.eye(6)
    queries = torch.nn.functional.normalize(torch.randn(6, 4), dim=1)
    cfg = networks.Config(mlp_hidden=4)
    model = networks.BoW(torch.zeros(2, 1), 4, cfg, docs)
    opt = torch.optim.RMSprop(model.parameters(), lr=0.05)
    rng = np.random.default_rng(0)
    for _ in range(300):
        neg = training.negative_songs(np.arange(6), np.arange(6), rng)
        img = model.image_side(queries)
        loss = losses.ranking_hinge((img * model.songs(None, None, torch.arange(6))["pred"]).sum(-1),
                                    (img * model.songs(None, None, torch.as_tensor(neg))["pred"]).sum(-1), 1.0)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        scores = model.image_side(queries) @ model.songs(None, None, torch.arange(6))["pred"].T
    assert (scores.argmax(1) == torch.arange(6)).all() and loss.item() < 0.1


def test_mrl_and_bai_negatives_come_from_all_training_lyrics_not_the_batch():
    rng = np.random.default_rng(0)
    batch = np.array([3, 3, 7, 7])
    pool = np.arange(100)
    neg = np.concatenate([training.negative_songs(batch, pool, rng) for _ in range(200)])
    assert not (neg.reshape(200, 4) == batch).any()            # never the pair's own song
    assert len(set(neg) - set(batch)) > 80                      # drawn from the whole pool, not the batch
    with pytest.raises(ValueError, match="two songs"):
        training.negative_songs(batch, np.array([3]), rng)


def test_the_device_switch_takes_a_gpu_only_when_there_is_one():
    from i2s import devices
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert devices.resolve("auto") == want and devices.resolve("cpu") == "cpu"
    with pytest.raises(ValueError, match="parallel.device"):
        devices.resolve("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no GPU"):
            devices.resolve("cuda")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here: the CUDA path runs where there is one")
@pytest.mark.parametrize("method", ["BoW", "Our", "Our-attention"])
def test_a_run_on_the_gpu_ranks_like_the_cpu(tiny, method):
    data, splits = tiny
    cpu = training.run(method, data, splits, "dagger", 0, CFG, device="cpu")
    gpu = training.run(method, data, splits, "dagger", 0, CFG, device="cuda")
    assert np.abs(cpu["test"]["ranks"] - gpu["test"]["ranks"]).mean() < 1.0
