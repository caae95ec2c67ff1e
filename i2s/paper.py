"""The papers' numbers, read only here: dataset facts and every published result (i2s/assets/paper).

Nothing else in the package types a number from a paper; i2s.pipeline makes a stage depend on the file behind each
function it calls (`FILES`), so a changed paper number reruns exactly the stages that show it.
"""
from __future__ import annotations

import functools
import math

import pandas as pd

from . import paths

FILES = {"facts": paths.PAPER_FACTS, "fact": paths.PAPER_FACTS, "fact_of": paths.PAPER_FACTS,
         "results": paths.PAPER_RESULTS, "result": paths.PAPER_RESULTS}


FACT_OF = {  # our name of a quantity → the fact in paper_facts.csv that states it
    "raw_rows": "Shuttersong raw image-song pairs collected",
    "triplets": "triplets after removing abnormal lyrics",
    "songs": "distinct songs",
    "moods": "triplets with a mood",
    "favorite_min": "favorite count min",
    "favorite_max": "favorite count max",
    "songs_lt5": "songs appearing fewer than 5 times",
    "triplets_lt5": "triplets of songs appearing fewer than 5 times",
    "songs_ge5": "songs appearing at least 5 times",
    "triplets_ge5": "triplets of songs appearing at least 5 times",
    "songs_gt50": "songs appearing more than 50 times",
    "triplets_fav_ge3": "triplets with at least 3 favorites",
    "triplets_fav_ge10": "triplets with at least 10 favorites",
    # the MR-CCA paper's music-video data
    "videos": "music videos",
    "segments": "music segments",
    "pairs": "music-image pairs",
    "train_segments": "training segments",
    "prefer_mv_rate_pct": "labelers prefer the MV pair over a random one (%)",
    "music_dim": "music feature dimension",
    "image_dim": "image feature dimension",
}


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, na_values={"value": [""]})


def _table(path) -> pd.DataFrame:
    return _read(str(path), path.stat().st_mtime_ns).copy()


def facts() -> pd.DataFrame:
    """Dataset statistics and settings stated in the papers (source, fact, value)."""
    return _table(paths.PAPER_FACTS)


def fact(name: str) -> float:
    """One fact's value by its exact name in paper_facts.csv."""
    f = facts()
    hit = f.loc[f["fact"] == name, "value"]
    if hit.empty:
        raise KeyError(f"no fact {name!r} in {paths.PAPER_FACTS.name}")
    return float(hit.iloc[0])


def fact_of(quantity: str) -> float:
    """A fact by our name of its quantity (`FACT_OF`), e.g. fact_of("songs_gt50") = 28."""
    return fact(FACT_OF[quantity])


def results(table: str | None = None, **where) -> pd.DataFrame:
    """Every result number the papers publish (source, table, split, method, tags, metric, value), optionally
    those of one table and with columns equal to `where` (e.g. split="dagger")."""
    r = _table(paths.PAPER_RESULTS)
    if table is not None:
        r = r[r["table"] == table]
        if r.empty:
            raise KeyError(f"no table {table!r} in {paths.PAPER_RESULTS.name}")
    for col, value in where.items():
        r = r[r[col] == value]
    return r.reset_index(drop=True)


def result(table: str, metric: str, method: str = "", tags: str = "", split: str | None = None) -> float:
    """One published number; NaN where the paper has none for that cell."""
    r = results(table)
    hit = r[(r["metric"] == metric) & (r["method"] == method) & (r["tags"] == tags)]
    if split is not None:
        hit = hit[hit["split"] == split]
    if len(hit) > 1:
        raise KeyError(f"{table}: {len(hit)} values for {method!r} / {tags!r} / {metric!r}; name the split")
    return float(hit["value"].iloc[0]) if len(hit) else math.nan
