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

from . import networks, oracle, planted, synth, text

READOUTS = ("final", "mean")


def code_words(templates) -> set[str]:
    """The words of the order code's phrase templates."""
    return {w for t in templates for w in t}


def trigrams(tokens: list[str], keep: set[str] | None = None) -> list[str]:
    """Ordered trigrams of consecutive tokens (only those whose three words are all in `keep`, when given)."""
    return ["_".join(tokens[i:i + 3]) for i in range(len(tokens) - 2)
            if keep is None or all(w in keep for w in tokens[i:i + 3])]


def logistic_accuracy(docs: list[list[str]], y: np.ndarray, folds: int, seed: int) -> float:
    """Song-level cross-validated accuracy of a logistic regression on the docs' feature counts."""
    cv = StratifiedKFold(folds, shuffle=True, random_state=seed)
    hits = 0
    for tr, te in cv.split(np.zeros(len(y)), y):
        if not any(docs[i] for i in tr):  # no feature at all in training (no code phrase at 0): the majority class
            hits += int((y[te] == np.bincount(y[tr]).argmax()).sum())
            continue
        vec = CountVectorizer(analyzer=lambda d: d)
        x_tr = vec.fit_transform([docs[i] for i in tr])
        clf = LogisticRegression(max_iter=2000).fit(x_tr, y[tr])
        hits += int((clf.predict(vec.transform([docs[i] for i in te])) == y[te]).sum())
    return hits / len(y)


def _encode(token_lists, kv) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Padded word ids, lengths and the frozen embedding, encoded as Our's lyrics are (`text`: UNK steps kept)."""
    words = text.vocabulary(token_lists, kv)
    index = {w: i for i, w in enumerate(words)}
    seqs = [text.encode(t, index) for t in token_lists]
    x = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
    for i, s in enumerate(seqs):
        x[i, :len(s)] = torch.from_numpy(s)
    return x, torch.tensor([len(s) for s in seqs]), torch.from_numpy(text.embedding_matrix(words, kv))


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
    torch.manual_seed(seed)
    lstm = networks.BiLSTM(emb.shape[1], hidden, chrono=chrono)
    head = nn.Linear(2 * hidden, int(y.max()) + 1)
    opt = torch.optim.RMSprop([*lstm.parameters(), *head.parameters()], lr=lr)
    labels = torch.as_tensor(y)

    def logits(idx):
        enc = lstm(emb[x[idx]], lengths[idx])
        if readout == "final":
            return head(enc["final"])
        return head(enc["outputs"].sum(1) / lengths[idx, None])

    def accuracy(idx):
        with torch.no_grad():
            return float((logits(torch.as_tensor(idx)).argmax(1) == labels[idx]).float().mean())

    best_val, at_best = -1.0, 0.0
    for epoch in range(epochs):
        order = np.random.default_rng([seed, epoch]).permutation(train)
        for b in range(0, len(order), batch):
            idx = torch.as_tensor(order[b:b + batch])
            loss = nn.functional.cross_entropy(logits(idx), labels[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        v = accuracy(val)
        if v > best_val:  # the test fold is read at the epoch validation picks, never to pick it
            best_val, at_best = v, accuracy(test)
    return at_best


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


def probe_metrics(table: pd.DataFrame) -> dict:
    """Flat metrics: probe/<value>/<probe>/accuracy and probe/chance."""
    out = {f"probe/{r.order_signal:g}/{r.probe}/accuracy": float(r.accuracy) for r in table.itertuples()}
    if len(table):
        out["probe/chance"] = float(table["chance"].iloc[0])
    return out
