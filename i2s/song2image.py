"""Song2image retrieval (Section 5.3): Schwarz et al.'s baseline, ranks of each song's own images."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from . import lyricdata, metrics
from .experiments import TABLE3_METRICS



def schwarz_scores(data: lyricdata.Data, songs: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Schwarz et al.'s lyric → image relevance, nothing learnt: the pooled (average) word vector of the lyric
    against the pooled word vector of the image's top-K tag words, by cosine (songs × images)."""
    emb = data.embedding
    s, i = torch.as_tensor(np.asarray(songs)), torch.as_tensor(np.asarray(images))
    lyric = emb[data.tokens[s]].sum(1)      # padding and words without a vector embed to 0; cosine ignores the 1/n
    image = emb[data.top_tags[i]].sum(1)
    return (F.normalize(lyric, dim=-1) @ F.normalize(image, dim=-1).T).numpy()


def song2image_ranks(scores: np.ndarray, data: lyricdata.Data, songs: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Rank of each song query's best-ranked own image among `images` (scores: songs × images; Med r is the
    rank of the closest correct item, Section 5.1)."""
    relevant = data.image_song.numpy()[np.asarray(images)][None] == np.asarray(songs)[:, None]
    return metrics.first_relevant_ranks(scores, relevant)


def song2image_top(scores: np.ndarray, images: np.ndarray, n: int = 4) -> np.ndarray:
    """The n highest-scored images (indices into the data) of each song query."""
    return np.asarray(images)[np.argsort(-scores, axis=1, kind="stable")[:, :n]]


def song2image_queries(scores: np.ndarray, data: lyricdata.Data, songs: np.ndarray, images: np.ndarray, subset: pd.DataFrame,
                       n: int = 4, top: int = 4, words: int = 12) -> list[dict]:
    """Figure 9's rows: n song queries (half with an own image among the top, if any), each with its title, the
    first lyric words and its `top` images (path, whether it is one of the song's own)."""
    top_images = song2image_top(scores, images, top)
    hit = np.array([np.any(data.image_song.numpy()[row] == s) for row, s in zip(top_images, songs)])
    order = (list(np.flatnonzero(hit)[: (n + 1) // 2]) + list(np.flatnonzero(~hit)))[:n]
    title = subset.drop_duplicates("song_id").set_index("song_id")["title"]
    path = subset.set_index("image")["image_path"]
    rows = []
    for q in order:
        s = int(songs[q])
        rows.append({"title": title[data.songs[s]], "words": " ".join(data.token_lists[s][:words]),
                     "images": [(path.get(data.images[i], ""), int(data.image_song[i]) == s) for i in top_images[q]]})
    return rows


def relevant(data: lyricdata.Data, songs: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Song queries × candidate images: whether the image is one of the song's own."""
    return data.image_song.numpy()[np.asarray(images)][None] == np.asarray(songs)[:, None]


def setup_table(data: lyricdata.Data, songs: np.ndarray, images: np.ndarray) -> pd.DataFrame:
    """The queries and candidates of Table 3."""
    per_song = relevant(data, songs, images).sum(1)
    return pd.DataFrame([{"what": "lyric queries (test songs)", "count": len(songs)},
                         {"what": "candidate images", "count": len(images)},
                         {"what": "correct images per query (median)", "count": float(np.median(per_song))}])


def chance(data: lyricdata.Data, songs: np.ndarray, images: np.ndarray) -> dict:
    """What a random ranking of the candidates scores on Table 3's metrics (each query's closest own image)."""
    return metrics.chance(len(images), TABLE3_METRICS, relevant(data, songs, images).sum(1))


def runs_table(r_schwarz: np.ndarray, r_ours: dict[int, np.ndarray], group: str, seed: int) -> pd.DataFrame:
    """One row per run of Table 3: Schwarz (deterministic, one row) and Our (a row per seed), with the metrics."""
    return pd.DataFrame([{"method": "Schwarz", "group": group, "seed": seed, **metrics.summary(r_schwarz, TABLE3_METRICS)}]
                        + [{"method": "Our", "group": group, "seed": k, **metrics.summary(r, TABLE3_METRICS)}
                           for k, r in r_ours.items()])


def per_query_ranks(data: lyricdata.Data, songs: np.ndarray, titles: pd.Series, r_ours: dict, r_schwarz) -> pd.DataFrame:
    """Per song query: the rank of its closest own image under Our (mean over seeds) and under Schwarz."""
    return pd.DataFrame({"song": [titles[data.songs[s]] for s in songs],
                         "rank Our (mean over seeds)": np.mean(list(r_ours.values()), axis=0), "rank Schwarz": r_schwarz})
