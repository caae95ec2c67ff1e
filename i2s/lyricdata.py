"""The lyric experiments' data: songs and tagged images of one tag group as tensors, splits, bags of words."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from . import artefacts, tagtable, text

GROUPS = tagtable.GROUPS                 # obj, attr, obj-attr
SPLITS = ("dagger", "section")


@dataclass
class Data:
    """Songs and images of one tag group as tensors; images point at their song by index."""
    group: str
    songs: list[str]              # song_id per song index
    token_lists: list[list[str]]  # preprocessed lyric per song (Section 5.1)
    tokens: torch.Tensor          # S × T word ids, 0 = padding
    lengths: torch.Tensor         # S
    words: list[str]              # vocabulary (text.PAD, text.UNK, ...)
    embedding: torch.Tensor       # V × d frozen word vectors (Eq. 1)
    images: list[str]             # image file name per image index
    image_song: torch.Tensor      # I: song index of each image
    targets: torch.Tensor         # I × D image tag vectors (the group's probabilities)
    tag_words: list[str]          # D
    top_tags: torch.Tensor        # I × K vocabulary ids of each image's top-K tags
    moods: torch.Tensor | None = None  # I × d word vector of each image's mood (0 = none); see `with_moods`

    def song_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.songs)}

    def image_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.images)}


def load_experiment(vectors: str = text.GLOVE) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, object]:
    """What every lyric notebook starts from: notebook 01's subset and splits, notebook 02's tag table, word vectors."""
    return artefacts.read("subset"), artefacts.read("splits"), artefacts.read("tags"), text.vectors(vectors)


def build_data(subset: pd.DataFrame, tag_table: pd.DataFrame, group: str, kv, top_k: int = 5,
               max_tokens: int = 0) -> Data:
    """The experiment's songs (the subset's, sorted by id) and every tagged image of them, for one tag group."""
    lyric = subset.drop_duplicates("song_id").set_index("song_id")["lyric"].sort_index()
    songs = list(lyric.index)
    token_lists = [text.tokenize(x) for x in lyric]
    table = tag_table[tag_table["song_id"].isin(set(songs))].drop_duplicates("image").reset_index(drop=True)
    missing = set(subset["image"]) - set(table["image"])
    if missing:
        raise ValueError(f"{len(missing)} subset images have no tags (e.g. {sorted(missing)[:3]}); rerun notebook 02")
    vec, tag_words = tagtable.tag_matrix(table, group)
    words = text.vocabulary(token_lists, kv, extra=tag_words)
    index = {w: i for i, w in enumerate(words)}
    seqs = [text.encode(t, index, max_tokens) for t in token_lists]
    tokens = torch.zeros((len(seqs), max(map(len, seqs))), dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = torch.from_numpy(s)
    top = tagtable.top_tags(vec, tag_words, top_k)
    sidx = {s: i for i, s in enumerate(songs)}
    return Data(group=group, songs=songs, token_lists=token_lists, tokens=tokens,
                lengths=torch.tensor([len(s) for s in seqs]), words=words,
                embedding=torch.from_numpy(text.embedding_matrix(words, kv)), images=list(table["image"]),
                image_song=torch.tensor([sidx[s] for s in table["song_id"]]), targets=torch.tensor(vec),
                tag_words=tag_words, top_tags=torch.tensor([[index.get(w, 1) for w in row] for row in top]))


def split_indices(data: Data, splits: pd.DataFrame, split: str, seed: int, val_fraction: float) -> dict[str, np.ndarray]:
    """Image indices of train / val / test and the song indices of the candidate pool of one split.

    dagger: test = the test songs' images, pool = the test songs; validation = all images of a random
    `val_fraction` of the training songs (unseen songs, like the test). section: test = one image per song,
    pool = all songs; validation = one training image of a random `val_fraction` of the songs (unseen images
    of seen songs, like the test). Validation images are ranked among the validation songs (`val_pool`): a
    smaller pool than the test's, so that checking every epoch stays cheap. The test side never depends on
    the seed.
    """
    img = data.image_index()
    rows = np.array([img[i] for i in splits["image"]])
    is_test = (splits[split] == "test").to_numpy()
    test, train = rows[is_test], rows[~is_test]
    song_of = data.image_song.numpy()
    rng = np.random.default_rng(seed)
    train_songs = np.unique(song_of[train])
    held = rng.choice(train_songs, max(1, int(round(val_fraction * len(train_songs)))), replace=False)
    if split == "dagger":
        val = train[np.isin(song_of[train], held)]
        pool, val_pool = np.unique(song_of[test]), np.sort(held)
    elif split == "section":
        val = np.array([rng.choice(train[song_of[train] == s]) for s in np.sort(held)], dtype=np.int64)
        pool, val_pool = np.arange(len(data.songs)), np.sort(held)
    else:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    train = np.setdiff1d(train, val)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test), "pool": pool, "val_pool": val_pool}


def bow_matrix(data: Data, train_songs: np.ndarray) -> torch.Tensor:
    """tf-idf bags of words (L2-normalised) of every song over the training songs' vocabulary and idf."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    vec = TfidfVectorizer(analyzer=lambda toks: toks, dtype=np.float32)
    vec.fit([data.token_lists[i] for i in train_songs])
    return torch.from_numpy(vec.transform(data.token_lists).toarray())


SUPPLEMENT_SPLIT = "section"   # the frequent songs' lyrics are trained on; their held-out images are the queries


def held_out_queries(data: Data, splits: pd.DataFrame, songs: np.ndarray, split: str = SUPPLEMENT_SPLIT) -> np.ndarray:
    """Every tagged image of `songs` that no model of `split` trains on: the split's test images, plus any
    image outside the experiment's subset that notebook 02 tagged."""
    trained = set(splits.loc[splits[split] == "train", "image"])
    mine = np.flatnonzero(np.isin(data.image_song.numpy(), np.asarray(songs)))
    return np.array([i for i in mine if data.images[i] not in trained], dtype=np.int64)


def with_moods(data: Data, moods: pd.Series, kv) -> Data:
    """A copy of `data` whose images carry their post's mood (`moods`: image → text, '' = none) as the average
    word vector of its words; zero when the post has no mood or none of its words has a vector."""
    vecs = np.zeros((len(data.images), data.embedding.shape[1]), np.float32)
    for i, im in enumerate(data.images):
        words = [w for w in text.tokenize(str(moods.get(im, ""))) if w in kv.key_to_index]
        if words:
            vecs[i] = np.mean([kv[w] for w in words], axis=0)
    return dataclasses.replace(data, moods=torch.from_numpy(vecs))


def song_indices(data: Data, song_ids) -> np.ndarray:
    """The data's indices of some song ids (those it has), sorted."""
    sidx = data.song_index()
    return np.array(sorted(sidx[s] for s in song_ids if s in sidx), dtype=np.int64)


def coverage(tag_table: pd.DataFrame, subset: pd.DataFrame, data: Data, gt50: pd.DataFrame,
             queries: np.ndarray) -> pd.DataFrame:
    """What is tagged, and the queries of Figures 7-8 (the songs with more than 50 triplets, `gt50`)."""
    return pd.DataFrame([
        {"what": "tagged images (tags.parquet)", "count": len(tag_table)},
        {"what": "subset images (5 per song)", "count": len(subset)},
        {"what": "tagged images of the experiment's songs", "count": len(data.images)},
        {"what": "songs with > 50 triplets", "count": len(song_indices(data, gt50["song_id"]))},
        {"what": "their query images for Figs. 7-8", "count": len(queries)},
        {"what": "their triplets in the refined data", "count": int(gt50["triplets"].sum())}])
