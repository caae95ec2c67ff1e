"""Positive controls for the planted order signal: can any model read the order code out of the world's lyrics?

Stage 03_planted asks whether the retrieval methods find the order signal. When they do not, two explanations
differ: the lyrics do not carry a learnable order signal (the world is wrong), or the model does not learn it from
this many songs (the model is the limit). These probes tell them apart on the subset's own songs, predicting each
song's theme from its preprocessed lyric with song-level cross-validation (the theme is what † retrieval can
generalise to unseen songs):

- logistic regression on the bag of words (order-blind: must be at chance when order_signal is 1);
- logistic regression on every ordered trigram of consecutive words (order-aware, knows nothing of the code);
- logistic regression on the ordered trigrams of code words (order-aware, knows which words form the code: the
  ceiling of a local n-gram reader);
- the BiLSTM of Our (`networks.BiLSTM`, chrono init, frozen word vectors), trained on the theme directly (a
  stronger supervision than the tag vectors of retrieval), read out as Our reads it (final states) or mean-pooled
  over the steps, on the whole lyric and on its code words alone. Its epoch is chosen on a validation share of
  the training songs; the accuracy is that of the held-out fold.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from torch import nn

from . import networks, oracle, planted, render, synth, text

READOUTS = ("final", "mean")


def code_words(templates) -> set[str]:
    """The words of the order code's phrase templates."""
    return {w for t in templates for w in t}


def trigrams(tokens: list[str], keep: set[str] | None = None) -> list[str]:
    """Ordered trigrams of consecutive tokens (only those whose three words are all in `keep`, when given)."""
    return ["_".join(tokens[i:i + 3]) for i in range(len(tokens) - 2)
            if keep is None or all(w in keep for w in tokens[i:i + 3])]


def _logistic_hits(docs: list[list[str]], y: np.ndarray, train, test) -> int:
    """Test docs a logistic regression on the train docs' feature counts labels right."""
    if not any(docs[i] for i in train):  # no feature at all in training (no code phrase at 0): the majority class
        return int((y[test] == np.bincount(y[train]).argmax()).sum())
    vec = CountVectorizer(analyzer=lambda d: d)
    clf = LogisticRegression(max_iter=2000).fit(vec.fit_transform([docs[i] for i in train]), y[train])
    return int((clf.predict(vec.transform([docs[i] for i in test])) == y[test]).sum())


def logistic_accuracy(docs: list[list[str]], y: np.ndarray, folds: int, seed: int) -> float:
    """Song-level cross-validated accuracy of a logistic regression on the docs' feature counts."""
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    return sum(_logistic_hits(docs, y, tr, te) for tr, te in cv.split(np.zeros(len(y)), y)) / len(y)


def _encode(token_lists, kv) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded word ids, lengths and the frozen embedding, encoded as Our's lyrics are (`text`: UNK steps kept)."""
    words = text.vocabulary(token_lists, kv)
    index = {w: i for i, w in enumerate(words)}
    seqs = [text.encode(t, index) for t in token_lists]
    x = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.from_numpy(s)
    return x, torch.tensor([len(s) for s in seqs]), torch.from_numpy(text.embedding_matrix(words, kv))


def _fit_theme(x, lengths, emb, y: np.ndarray, train, val, test, readout: str, hidden: int, chrono: int, lr: float,
               epochs: int, seed: int, batch: int = 32, patience: int = 0) -> float:
    """Our's BiLSTM and a linear head trained on the theme of `train`; the test accuracy at the epoch of the best
    validation accuracy (patience > 0: stop after that many epochs without a better one)."""
    torch.manual_seed(seed)
    lstm = networks.BiLSTM(emb.shape[1], hidden, chrono=chrono)
    head = nn.Linear(2 * hidden, int(y.max()) + 1)
    opt = torch.optim.RMSprop([*lstm.parameters(), *head.parameters()], lr=lr)
    labels = torch.as_tensor(np.array(y))  # a copy: y may be a read-only memory map (pmap)

    def logits(idx):
        enc = lstm(emb[x[idx]], lengths[idx])
        if readout == "final":
            return head(enc["final"])
        return head(enc["outputs"].sum(1) / lengths[idx, None])

    def accuracy(idx):
        with torch.no_grad():
            return float((logits(torch.as_tensor(idx)).argmax(1) == labels[idx]).float().mean())

    best_val, at_best, since = -1.0, 0.0, 0
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(train)
        for b in range(0, len(order), batch):
            idx = torch.as_tensor(order[b:b + batch])
            loss = nn.functional.cross_entropy(logits(idx), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = accuracy(val)
        if v > best_val:  # the test songs are read at the epoch validation picks, never to pick it
            best_val, at_best, since = v, accuracy(test), 0
        else:
            since += 1
            if patience and since >= patience:
                break
    return at_best


def bilstm_accuracy(token_lists, y: np.ndarray, kv, readout: str, hidden: int, chrono: int, lr: float, epochs: int,
                    folds: int, seed: int, batch: int = 32) -> float:
    """Held-out accuracy (first fold of `folds`) of Our's BiLSTM trained on the theme, its epoch chosen on a
    validation share of the training songs."""
    x, lengths, emb = _encode(token_lists, kv)
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    train, test = next(iter(cv.split(np.zeros(len(y)), y)))
    rng = np.random.default_rng(seed)
    train = rng.permutation(train)
    n_val = max(1, len(train) // folds)
    val, train = train[:n_val], train[n_val:]
    return _fit_theme(x, lengths, emb, y, train, val, test, readout, hidden, chrono, lr, epochs, seed, batch)


def probe_table(subset: pd.DataFrame, truth_dir, values, kv, hidden: int, chrono: int, lr: float, epochs: int,
                folds: int, seed: int, bilstm_values=(1.0,)) -> pd.DataFrame:
    """Theme accuracy of every probe at each order_signal value (the BiLSTM probes at `bilstm_values` only: they cost
    minutes), with the majority-class rate as chance."""
    sig = oracle.signatures(subset, truth_dir)
    y = pd.factorize(sig["theme"], sort=True)[0]
    chance = float(np.bincount(y).max() / len(y))
    wp = oracle.world_params(truth_dir)
    code = code_words(synth.lyric_world(wp.seed, wp.song_link, 1.0, wp.difficulty).templates)
    rows = []
    for v in map(float, values):
        lyrics = planted.lyrics_at(subset, truth_dir, v)
        toks = [text.tokenize(lyrics[s]) for s in sig.index]
        docs = {"bag of words": toks, "word trigrams": [trigrams(t) for t in toks],
                "code-word trigrams": [trigrams(t, code) for t in toks]}
        for name, d in docs.items():
            rows.append({"order_signal": v, "probe": f"logistic, {name}", "accuracy": logistic_accuracy(d, y, folds, seed)})
        if any(abs(v - b) < 1e-9 for b in bilstm_values):
            inputs = {"whole lyric": toks, "code words only": [[w for w in t if w in code] for t in toks]}
            for name, t in inputs.items():
                for readout in READOUTS:
                    acc = bilstm_accuracy(t, y, kv, readout, hidden, chrono, lr, epochs, folds, seed)
                    rows.append({"order_signal": v, "probe": f"BiLSTM ({readout} states), {name}", "accuracy": acc})
    out = pd.DataFrame(rows)
    out["chance"] = chance
    return out


def curve_songs(subset: pd.DataFrame, truth_dir, n_train: int, n_val: int, seed: int) -> dict[str, pd.DataFrame]:
    """The learning curve's songs: test = the subset's own songs; train and val = the world's other English songs
    (each written by the generator, whether or not its Shuttersong lyric file is kept), drawn at random."""
    test = oracle.signatures(subset, truth_dir)
    world = oracle.world_songs(truth_dir)
    others = world[(world["language"] == "en") & ~world["number"].isin(test["number"])]
    if len(others) < n_train + n_val:
        raise ValueError(f"order_probe: the world has {len(others)} other English songs, fewer than curve sizes "
                         f"{n_train} + {n_val} validation")
    drawn = others.iloc[np.random.default_rng(seed).permutation(len(others))[:n_train + n_val]]
    return {"train": drawn.iloc[:n_train], "val": drawn.iloc[n_train:], "test": test}


def _curve_point(job, x, lengths, emb, y, parts, hidden, lr, epochs, seed, patience, threads=1):
    torch.set_num_threads(threads)
    train = parts["train"][:job["n"]]
    return _fit_theme(x, lengths, emb, y, train, parts["val"], parts["test"], job["readout"], hidden, job["chrono"],
                      lr, epochs, seed, patience=patience)


def _init_label(chrono: int) -> str:
    return f"chrono {chrono}" if chrono else "PyTorch init"


def learning_curve(subset: pd.DataFrame, truth_dir, sizes, kv, hidden: int, chrono: int, lr: float, epochs: int,
                   seed: int, n_val: int = 300, patience: int = 0, value: float = 1.0, parallel=None) -> pd.DataFrame:
    """Theme accuracy on the subset's songs at order_signal `value` against the number of training songs: the
    BiLSTM probes (both readouts; with Our's chrono init and, beside it, PyTorch's default init) and the logistic
    bag-of-words and word-trigram probes, all trained on the first n of the same draw of other songs, the
    BiLSTM's epoch chosen on `n_val` further songs."""
    from .parallel import pmap
    sizes = sorted({int(n) for n in sizes})
    songs = curve_songs(subset, truth_dir, max(sizes), n_val, seed)
    table = pd.concat([songs["train"], songs["val"], songs["test"]])
    wp = oracle.world_params(truth_dir)
    lw = synth.lyric_world(wp.seed, wp.song_link, float(value), wp.difficulty)
    scenes = render.load_scenes()
    toks = [text.tokenize(synth.song_lyric(r, lw, scenes, int(r["number"]))) for _, r in table.iterrows()]
    themes = sorted(set(table["theme"]))
    y = np.array([themes.index(t) for t in table["theme"]])
    n_tr, n_va = len(songs["train"]), len(songs["val"])
    parts = {"train": np.arange(n_tr), "val": np.arange(n_tr, n_tr + n_va), "test": np.arange(n_tr + n_va, len(y))}
    test_y = y[parts["test"]]
    chance = float(np.bincount(test_y).max() / len(test_y))
    rows = []
    for n in sizes:
        for name, docs in (("bag of words", toks), ("word trigrams", [trigrams(t) for t in toks])):
            hits = _logistic_hits(docs, y, parts["train"][:n], parts["test"])
            rows.append({"train_songs": n, "probe": f"logistic, {name}", "accuracy": hits / len(test_y)})
    x, lengths, emb = _encode(toks, kv)
    inits = sorted({int(chrono), 0}, reverse=True)  # Our's init first; PyTorch's default beside it
    jobs = sorted(({"n": n, "readout": r, "chrono": c} for n in sizes for r in READOUTS for c in inits),
                  key=lambda j: -j["n"])
    accs = pmap(_curve_point, jobs, parallel, desc="order probe: learning curve",
                shared=dict(x=x, lengths=lengths, emb=emb, y=y, parts=parts, hidden=hidden, lr=lr, epochs=epochs,
                            seed=seed, patience=patience))
    rows += [{"train_songs": j["n"], "probe": f"BiLSTM ({j['readout']} states, {_init_label(j['chrono'])}), whole lyric",
              "accuracy": a} for j, a in zip(jobs, accs)]
    out = pd.DataFrame(rows).sort_values(["probe", "train_songs"], ignore_index=True)
    out["order_signal"], out["test_songs"], out["chance"] = float(value), len(test_y), chance
    return out


def _flat(table: pd.DataFrame, prefix: str, column: str) -> dict:
    out = {f"{prefix}/{getattr(r, column):g}/{r.probe}/accuracy": float(r.accuracy) for r in table.itertuples()}
    if len(table):
        out[f"{prefix}/chance"] = float(table["chance"].iloc[0])
    return out


def curve_metrics(curve: pd.DataFrame) -> dict:
    """Flat metrics: probe_curve/<n>/<probe>/accuracy and probe_curve/chance."""
    return _flat(curve, "probe_curve", "train_songs")


def probe_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics: probe/<value>/<probe>/accuracy and probe/chance."""
    return _flat(table, "probe", "order_signal")
