"""Image→song scoring over (image, song) pairs in batches: tag-space predictions, cosine scores, ranks."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import lyricdata, metrics, networks, tagtable

SCORE_BUDGET = 20_000_000            # floats per attention block when scoring pairs (memory, not results)
SONG_BLOCK = 64                      # pool songs scored together, sorted by length (less padding)


def image_query(model: networks.LyricModel, data: lyricdata.Data, images) -> dict:
    """The image side of an image-dependent model: its top-K tags, and the mood for models that use it."""
    idx = torch.as_tensor(np.asarray(images), dtype=torch.long)
    dev = model.device
    if getattr(model, "uses_mood", False):
        return model.query(data.top_tags[idx].to(dev), None if data.moods is None else data.moods[idx].to(dev))
    return model.query(data.top_tags[idx].to(dev))


def predict_grid(model: networks.LyricModel, data: lyricdata.Data, images: np.ndarray, songs: np.ndarray) -> torch.Tensor:
    """Tag-space predictions of every image with every one of some distinct songs: images × songs × D."""
    st = encode_songs(model, data, np.asarray(songs))
    if not model.attends:
        pred = model.pairs(st, None)
        return pred[None].expand(len(images), *pred.shape)
    return model.pairs(st, image_query(model, data, images), grid=True)


def encode_songs(model: networks.LyricModel, data: lyricdata.Data, songs: np.ndarray) -> dict:
    """Song-side state of some songs (trimmed to their longest lyric)."""
    idx = torch.as_tensor(songs, dtype=torch.long)
    lengths = data.lengths[idx]
    dev = model.device
    return model.songs(data.tokens[idx, :int(lengths.max())].to(dev), lengths.to(dev), idx.to(dev))


def predict_pairs(model: networks.LyricModel, data: lyricdata.Data, images: np.ndarray, songs: np.ndarray) -> torch.Tensor:
    """Tag-space predictions for aligned (image, song) pairs; each distinct song is encoded once."""
    uniq, pos = np.unique(songs, return_inverse=True)
    st = encode_songs(model, data, uniq)
    pos = torch.as_tensor(pos, device=model.device)
    if not model.attends:
        return model.pairs(st, None)[pos]
    q = image_query(model, data, images)
    return model.pairs({k: v[pos] for k, v in st.items()}, q)


def similarity(model: networks.LyricModel, targets: torch.Tensor, pred: torch.Tensor) -> torch.Tensor:
    """How well each image (tag vectors C×D) matches each song's prediction (S×D, or C×S×D when the prediction
    depends on the image): the cosine in the tag space, or a joint model's inner product in its own space; C×S."""
    if model.joint:
        img = model.image_side(targets)
        return img @ pred.T if pred.dim() == 2 else torch.einsum("csd,cd->cs", pred, img)
    v = F.normalize(targets, dim=-1)
    p = F.normalize(pred, dim=-1)
    return v @ p.T if p.dim() == 2 else torch.einsum("csd,cd->cs", p, v)


@torch.no_grad()
def score(model: networks.LyricModel, data: lyricdata.Data, images: np.ndarray, songs: np.ndarray, budget: int = SCORE_BUDGET) -> np.ndarray:
    """Cosine similarity of every image (rows) with every song's lyric (columns) in the tag space (Bai et al.'s
    BoW, a `joint` model: the inner product in its own space).

    For the attentive models the lyric depends on the image: songs are encoded once, in blocks sorted by
    length, and every image × song pair of a block is scored in one batched call (chunks of images bound
    the memory).
    """
    model.eval()
    images, songs = np.asarray(images), np.asarray(songs)
    targets = data.targets[torch.as_tensor(images)].to(model.device)
    out = torch.empty(len(images), len(songs))
    if not model.attends:
        pred = torch.cat([model.pairs(encode_songs(model, data, songs[s:s + 256]), None)
                          for s in range(0, len(songs), 256)])
        return similarity(model, targets, pred).cpu().numpy()
    q = image_query(model, data, images)
    order = np.argsort(data.lengths[torch.as_tensor(songs)].numpy(), kind="stable")
    for s in range(0, len(songs), SONG_BLOCK):
        cols = order[s:s + SONG_BLOCK]
        st = encode_songs(model, data, songs[cols])
        steps = st["mask"].shape[1]
        chunk = max(1, budget // (len(cols) * steps * max(model.cfg.attention, model.cfg.hidden * 2)))
        for c in range(0, len(images), chunk):
            qc = {k: x[c:c + chunk] for k, x in q.items()}
            pred = model.pairs(st, qc, grid=True)  # C × S × D
            out[c:c + chunk, torch.as_tensor(cols)] = similarity(model, targets[c:c + chunk], pred).cpu()
    return out.numpy()


def pool_ranks(model: networks.LyricModel, data: lyricdata.Data, images: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of each query image's song within a pool of songs, and the score matrix."""
    s = score(model, data, images, pool)
    col = {song: j for j, song in enumerate(pool)}
    truth = np.array([col[x] for x in data.image_song.numpy()[np.asarray(images)]])
    return metrics.ranks(s, truth), s


@torch.no_grad()
def lyric_tags(model: networks.LyricModel, data: lyricdata.Data, songs: np.ndarray, k: int = 5, relative: bool = False) -> list[list[str]]:
    """The k tags each lyric maps to (image-free models): its highest predicted probabilities, or with
    `relative` those furthest above the average prediction over `songs` (what sets the lyric apart)."""
    pred = model.pairs(encode_songs(model.eval(), data, np.asarray(songs)), None).cpu().numpy()
    return tagtable.top_tags(pred - pred.mean(0) if relative else pred, data.tag_words, k)


@torch.no_grad()
def attention_weights(model: networks.LyricModel, data: lyricdata.Data, images, songs) -> list[np.ndarray]:
    """The attention weight of every word of each song's lyric given its image (aligned pairs; an attentive
    model); each distinct song is encoded once."""
    images, songs = np.atleast_1d(images), np.atleast_1d(songs)
    uniq, pos = np.unique(songs, return_inverse=True)
    st = encode_songs(model.eval(), data, uniq)
    s = model.weights({k: v[torch.as_tensor(pos, device=model.device)] for k, v in st.items()},
                      image_query(model, data, images)).cpu()
    return [s[p, :int(data.lengths[song])].numpy() for p, song in enumerate(songs)]


def lyric_to_tags(model: networks.LyricModel, data: lyricdata.Data, idx: dict, titles, k: int = 5
                  ) -> tuple[pd.DataFrame, list[str]]:
    """Which tags each test lyric maps to, beside its own images' tags (notebook 03).

    Per test song of a split (`idx` from split_indices): the k tags with the highest predicted probability and the
    k furthest above the average prediction (what sets the lyric apart), each with the same lists for the song's
    images (their mean tag vector, and its difference from the average training image) and the overlaps; two
    baselines measure the traps: always guessing the k most frequent tags, and the next song's images. Also
    returns those k most frequent tags."""
    song_of = data.image_song.numpy()
    test_songs = np.unique(song_of[idx["test"]])
    song_mean = pd.DataFrame(data.targets.numpy()).groupby(song_of).mean().loc[test_songs].to_numpy()
    train_mean = data.targets[idx["train"]].numpy().mean(0, keepdims=True)
    predicted = lyric_tags(model, data, test_songs, k)
    distinct = lyric_tags(model, data, test_songs, k, relative=True)
    own = tagtable.top_tags(song_mean, data.tag_words, k)
    own_distinct = tagtable.top_tags(song_mean - train_mean, data.tag_words, k)
    frequent = tagtable.top_tags(train_mean, data.tag_words, k)[0]

    def overlap(a, b):
        return [len(set(x) & set(y)) for x, y in zip(a, b)]
    table = pd.DataFrame({"song": [titles[s] for s in test_songs],
                          "lyric → top tags": [" ".join(p) for p in predicted],
                          "images' top tags": [" ".join(o) for o in own],
                          "overlap": overlap(predicted, own),
                          "frequent-tags guess overlap": overlap([frequent] * len(own), own),
                          "lyric → distinctive tags": [" ".join(p) for p in distinct],
                          "images' distinctive tags": [" ".join(o) for o in own_distinct],
                          "distinctive overlap": overlap(distinct, own_distinct),
                          "next-song overlap": overlap(distinct, own_distinct[1:] + own_distinct[:1])})
    return table, frequent


def attention_view(model: networks.LyricModel, data: lyricdata.Data, images: np.ndarray) -> dict:
    """Among some query images, the one whose attention over its own song's lyric departs most from uniform: its
    image and song, the lyric's words and weights, the most attended words (summed over repeats) and every query's
    peak weight relative to uniform (n · max s_t)."""
    song_of = data.image_song.numpy()
    weights = attention_weights(model, data, images, song_of[images])
    peaks = pd.Series([w.max() * len(w) for w in weights])
    q = int(np.argmax(peaks.to_numpy()))
    image, song = int(images[q]), int(song_of[images[q]])
    words = data.token_lists[song][: len(weights[q])]
    top = pd.Series(weights[q], index=words).groupby(level=0).sum().sort_values(ascending=False)
    return {"image": image, "song": song, "words": words, "weights": weights[q], "top_words": top, "peaks": peaks}
