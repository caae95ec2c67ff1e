"""Lyric preprocessing (Section 5.1), vocabularies with counted OOV words, and word vectors through gensim."""
from __future__ import annotations

import numpy as np
import pytest
from pathlib import Path

from gensim.models import KeyedVectors

from i2s import text


def _kv(words, dim=4, seed=0):
    kv = KeyedVectors(dim)
    kv.add_vectors(words, np.random.default_rng(seed).normal(size=(len(words), dim)).astype(np.float32))
    return kv


def test_tokenize_removes_punctuation_not_the_words_it_touches():
    assert text.tokenize("The Summer NIGHT, don't stop oh-oh 2 Nite\nwe dance") == \
        ["summer", "night", "stop", "oh", "oh", "2", "nite", "dance"]
    assert text.tokenize("christmas, window. shining; darling: christmas-time (x2) na-na-na...") == \
        ["christmas", "window", "shining", "darling", "christmas", "time", "x2", "na", "na", "na"]
    assert text.tokenize("") == [] and text.tokenize("--- !!! ...") == []


def test_contractions_leave_their_content_word_and_elisions_are_joined():
    # the clitics (n't, 's, 're, 'll, 'd, 'm, 've) read as not, is, are, will, would, am, have: stop words
    assert text.tokenize("don't can't won't ain't I'm you'll we'd they've she's love's") == ["love"]
    assert text.tokenize("lovin' 'cause rock'n'roll o'clock") == ["lovin", "cause", "rocknroll", "oclock"]
    assert text.tokenize("Don\u2019t stop believin\u2019") == ["stop", "believin"]  # typographic apostrophes too
    assert text.tokenize("naïve café_bar") == ["naïve", "café", "bar"]


SONGS_POEMS = Path("/usr/share/games/fortunes/songs-poems")  # Debian's fortunes package (`make test` installs it)


@pytest.mark.skipif(not SONGS_POEMS.is_file(), reason="Debian's fortunes package is not installed (make test installs it "
                    "with apt-get where apt is available)")
def test_every_alphabetic_content_word_of_real_song_text_survives():
    import re
    from collections import Counter
    raw = SONGS_POEMS.read_text(encoding="utf-8", errors="replace")
    # whole alphabetic words not touching an apostrophe, as a reader would count them, minus the stop words
    words = [w.lower() for w in re.findall(r"(?<![\w'’])[A-Za-z]+(?![\w'’])", raw)]
    expected = Counter(w for w in words if w not in text.ENGLISH_STOP_WORDS)
    got = Counter(text.tokenize(raw))
    lost = {w: n - got[w] for w, n in expected.items() if got[w] < n}
    assert len(expected) > 3000 and not lost, f"{len(lost)} words lost, e.g. {sorted(lost)[:10]}"
    per_poem = [text.tokenize(p) for p in raw.split("\n%\n")]
    assert sum(map(len, per_poem)) == sum(got.values())  # the poems' tokens are the file's tokens


def test_vocabulary_keeps_words_with_vectors_most_frequent_first_and_tags():
    kv = _kv(["sun", "beach", "snow", "tree"])
    lyrics = [["sun", "beach", "sun", "zzyzx"], ["snow", "sun"]]
    words = text.vocabulary(lyrics, kv, extra=["tree", "notaword"])
    assert words[:2] == [text.PAD, text.UNK]
    assert words[2:] == ["sun", "beach", "snow", "tree"]  # zzyzx and notaword have no vector


def test_oov_words_are_counted_not_silently_dropped():
    kv = _kv(["sun", "beach"])
    lyrics = [["sun", "zzyzx", "zzyzx"], ["qqq", "beach"]]
    stats = text.oov_stats(lyrics, kv)
    assert stats == {"types": 4, "tokens": 5, "oov_types": 2, "oov_tokens": 3, "oov_types_pct": 50.0,
                     "oov_tokens_pct": 60.0}
    table = text.oov_table(lyrics, kv)
    assert table["word"].tolist() == ["zzyzx", "qqq"] and table["tokens"].tolist() == [2, 1]
    index = {w: i for i, w in enumerate(text.vocabulary(lyrics, kv))}
    assert text.encode(lyrics[0], index).tolist() == [index["sun"], 1, 1]  # kept in place as UNK


def test_encode_truncates_and_never_returns_an_empty_lyric():
    index = {text.PAD: 0, text.UNK: 1, "a": 2, "b": 3}
    assert text.encode(["a", "b", "a"], index, max_tokens=2).tolist() == [2, 3]
    assert text.encode([], index).tolist() == [1]


def test_embedding_matrix_rows_are_the_vectors_and_pad_unk_are_zero():
    kv = _kv(["sun", "beach"])
    words = [text.PAD, text.UNK, "beach", "sun"]
    e = text.embedding_matrix(words, kv)
    assert e.shape == (4, 4) and e.dtype == np.float32
    assert not e[:2].any()
    np.testing.assert_array_equal(e[2], kv["beach"])
    np.testing.assert_array_equal(e[3], kv["sun"])


def test_vectors_reads_a_word2vec_binary(tmp_path):
    kv = _kv(["mistletoe", "sleigh", "surf"], dim=6, seed=3)
    path = tmp_path / "tiny-vectors.bin"
    kv.save_word2vec_format(str(path), binary=True)
    loaded = text.vectors(str(path))
    assert isinstance(loaded, KeyedVectors) and loaded.vector_size == 6 and len(loaded) == 3
    np.testing.assert_allclose(loaded["sleigh"], kv["sleigh"], rtol=1e-6)
    assert len(text.vectors(str(path), limit=2)) == 2


def test_vectors_rejects_an_unknown_source(tmp_path):
    with pytest.raises(FileNotFoundError):
        text.vectors(str(tmp_path / "missing.bin"))


def test_default_vectors_are_glove_6b_50d():
    kv = text.vectors()
    assert isinstance(kv, KeyedVectors)
    assert len(kv) == 400_000 and kv.vector_size == 50
    assert kv.most_similar("christmas", topn=20) and "beach" in kv.key_to_index
