"""Loading Shuttersong (real or embedded) with recorded rejections; the experiment subset and splits.

Canonical layout (the synthetic world writes the same one):
    root/triplets.csv   image, title, artist, favorite_count[, mood]
    root/lyrics.csv     title, artist, lyric
    root/images/        the photos named in triplets.csv
"""
from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

REQUIRED = {"triplets.csv": ["image", "title", "artist", "favorite_count"],
            "lyrics.csv": ["title", "artist", "lyric"]}
# Rejection reasons, in the order they are checked (a row gets the first that applies).
REASONS = ("duplicate_row", "bad_favorite_count", "missing_lyric", "empty_lyric", "non_english_lyric",
           "missing_image", "unreadable_image")
# Fig. 11's refinement: the paper's two abnormal kinds, and where our checks fall
REFINEMENT_GROUP = {"non_english_lyric": "non-English song", "missing_lyric": "lyric not found",
                    "empty_lyric": "lyric not found", "duplicate_row": "bad record",
                    "bad_favorite_count": "bad record", "missing_image": "bad image",
                    "unreadable_image": "bad image"}
LANGUAGE_SAMPLE_WORDS = 150  # language ID reads the first words of a lyric: enough, and 3x faster


class DataError(ValueError):
    """A dataset file that cannot be used at all (missing, unparsable, missing a column)."""


def read_table(path: Path, required: list[str]) -> pd.DataFrame:
    """Read a CSV as strings; a clear DataError names the file (and row or column) when it cannot."""
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: unreadable CSV: {e}") from e
    except (UnicodeDecodeError, pd.errors.EmptyDataError) as e:
        raise DataError(f"{path}: unreadable CSV: {e}") from e
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {list(df.columns)}")
    return df


def song_key(title: str, artist: str) -> str:
    """Stable song id from title and artist (case and spacing do not matter)."""
    norm = f"{' '.join(title.split()).casefold()}|{' '.join(artist.split()).casefold()}"
    return "song_" + hashlib.sha1(norm.encode()).hexdigest()[:10]


def english_mask(lyrics: list[str]) -> tuple[np.ndarray, list[str]]:
    """Which lyrics are English, by lingua over all its languages; returns (mask, detected names)."""
    from lingua import Language, LanguageDetectorBuilder
    detector = LanguageDetectorBuilder.from_all_languages().build()
    texts = [" ".join(t.split()[:LANGUAGE_SAMPLE_WORDS]) for t in lyrics]
    found = detector.detect_languages_in_parallel_of(texts)
    names = [lang.name if lang is not None else "UNDETERMINED" for lang in found]
    return np.array([lang == Language.ENGLISH for lang in found], bool), names


def _image_ok(path: Path) -> str | None:
    """None if the image decodes, else the rejection reason."""
    if not path.is_file():
        return "missing_image"
    try:
        with Image.open(path) as im:
            im.load()
            if im.width == 0 or im.height == 0:
                return "unreadable_image"
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        return "unreadable_image"
    return None


def load_shuttersong(root: str | Path, check_images: bool = True, threads: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load the dataset at `root`: (kept triplets, rejections). Rows in = kept + rejected, always.

    Kept triplets carry: row (0-based data row of triplets.csv), image, image_path, title, artist,
    song_id, favorite_count (int), mood ('' when absent), lyric. Rejections carry: file, row, reason,
    detail. Rejections of lyrics.csv rows (duplicate keys) are listed with file='lyrics.csv'.
    """
    root = Path(root)
    trip = read_table(root / "triplets.csv", REQUIRED["triplets.csv"])
    lyr = read_table(root / "lyrics.csv", REQUIRED["lyrics.csv"])
    if "mood" not in trip.columns:
        trip["mood"] = ""
    rejections: list[dict] = []
    reason = pd.Series("", index=trip.index, dtype=object)
    detail = pd.Series("", index=trip.index, dtype=object)

    def reject(mask, why, info=None):
        m = mask & (reason == "")
        reason[m] = why
        if info is not None:
            detail[m] = info[m]

    # 1. exact duplicate rows: the first is kept
    cols = REQUIRED["triplets.csv"] + ["mood"]
    first_row = trip.index.to_series().groupby([trip[c] for c in cols], sort=False).transform("min")
    reject(trip.duplicated(cols, keep="first"), "duplicate_row", "duplicate of row " + first_row.astype(str))
    # 2. favourite counts are whole numbers ≥ 1
    fav_ok = trip["favorite_count"].str.fullmatch(r"\s*\d+\s*")
    fav_int = pd.to_numeric(trip["favorite_count"].where(fav_ok, None), errors="coerce")
    reject(~fav_ok | (fav_int < 1), "bad_favorite_count", "favorite_count=" + trip["favorite_count"].map(repr))
    # 3-5. a lyric, not empty, in English
    lyr["song_id"] = [song_key(t, a) for t, a in zip(lyr["title"], lyr["artist"])]
    dup_lyr = lyr["song_id"].duplicated(keep="first")
    for i in np.flatnonzero(dup_lyr):
        rejections.append({"file": "lyrics.csv", "row": int(i), "reason": "duplicate_lyric_key",
                           "detail": "same title/artist as an earlier row; the first is used"})
    lyr = lyr[~dup_lyr]
    lyric_of = dict(zip(lyr["song_id"], lyr["lyric"]))
    trip["song_id"] = [song_key(t, a) for t, a in zip(trip["title"], trip["artist"])]
    has = trip["song_id"].isin(lyric_of.keys())
    reject(~has, "missing_lyric", pd.Series("no lyrics.csv row for this title/artist", index=trip.index))
    text = trip["song_id"].map(lyric_of).fillna("")
    reject(has & (text.str.strip() == ""), "empty_lyric", pd.Series("the lyrics.csv row is blank", index=trip.index))
    todo = sorted(set(trip.loc[reason == "", "song_id"]))
    eng, langs = english_mask([lyric_of[s] for s in todo]) if todo else (np.array([], bool), [])
    lang_of = dict(zip(todo, langs))
    non_en = trip["song_id"].map(lambda s: lang_of.get(s, "ENGLISH") != "ENGLISH")
    reject(non_en, "non_english_lyric", "detected " + trip["song_id"].map(lambda s: lang_of.get(s, "")))
    # 6-7. the image exists and decodes
    images = root / "images"
    if check_images:
        idx = list(trip.index[reason == ""])
        paths = [images / Path(trip.at[i, "image"]).name if trip.at[i, "image"].strip() else images / "" for i in idx]
        with ThreadPoolExecutor(threads) as ex:  # PIL decodes outside the GIL
            found = list(ex.map(_image_ok, paths))
        for i, why in zip(idx, found):
            if why:
                reason[i] = why
                detail[i] = trip.at[i, "image"]
    bad = reason != ""
    for i in np.flatnonzero(bad.to_numpy()):
        rejections.append({"file": "triplets.csv", "row": int(i), "reason": reason.iat[i], "detail": detail.iat[i]})
    kept = trip[~bad].copy()
    kept.insert(0, "row", kept.index.astype(int))
    kept["favorite_count"] = fav_int[~bad].astype(int)
    kept["lyric"] = text[~bad]
    kept["image_path"] = [str(images / Path(x).name) for x in kept["image"]]
    kept = kept.reset_index(drop=True)
    rej = pd.DataFrame(rejections, columns=["file", "row", "reason", "detail"])
    n_rej = int((rej["file"] == "triplets.csv").sum())
    assert len(kept) + n_rej == len(trip), "rows in must equal kept + rejected"
    return kept, rej


# ---- statistics, experiment subset, splits --------------------------------------------------------
def dataset_stats(kept: pd.DataFrame, rejections: pd.DataFrame) -> dict:
    """The numbers of Table 1, Figure 2 and supplement 8 for a loaded dataset."""
    occ = kept.groupby("song_id").size()
    return {
        "triplets": int(len(kept)), "songs": int(occ.size), "moods": int((kept["mood"].str.strip() != "").sum()),
        "songs_ge5": int((occ >= 5).sum()), "triplets_ge5": int(occ[occ >= 5].sum()),
        "songs_lt5": int((occ < 5).sum()), "triplets_lt5": int(occ[occ < 5].sum()),
        "songs_gt50": int((occ > 50).sum()),
        "favorite_min": int(kept["favorite_count"].min()), "favorite_max": int(kept["favorite_count"].max()),
        "triplets_fav_ge3": int((kept["favorite_count"] >= 3).sum()),
        "triplets_fav_ge10": int((kept["favorite_count"] >= 10).sum()),
        "rejected": int((rejections["file"] == "triplets.csv").sum()),
    }


def occurrence_bins(kept: pd.DataFrame, edges=(1, 2, 3, 4, 5, 11, 21, 51, 10**9)) -> pd.DataFrame:
    """Figure 2: songs and triplets per song-occurrence bin."""
    occ = kept.groupby("song_id").size()
    labels = [f"{a}" if b - a == 1 else (f"{a}-{b - 1}" if b < 10**9 else f">{a - 1}") for a, b in zip(edges[:-1], edges[1:])]
    cut = pd.cut(occ, bins=list(edges), right=False, labels=labels)
    return pd.DataFrame({"songs": occ.groupby(cut, observed=False).size(),
                         "triplets": occ.groupby(cut, observed=False).sum()}).rename_axis("occurrences").reset_index()


def favourite_bins(kept: pd.DataFrame, edges=(1, 2, 3, 5, 10, 100, 1000, 10**9)) -> pd.DataFrame:
    """Supplement Figure 10: triplets per favourite-count bin."""
    labels = [f"{a}" if b - a == 1 else (f"{a}-{b - 1}" if b < 10**9 else f"≥{a}") for a, b in zip(edges[:-1], edges[1:])]
    cut = pd.cut(kept["favorite_count"], bins=list(edges), right=False, labels=labels)
    return kept.groupby(cut, observed=False).size().rename("triplets").rename_axis("favorite_count").reset_index()


def experiment_subset(kept: pd.DataFrame, min_count: int = 5, per_song: int = 5) -> pd.DataFrame:
    """Section 5.1: songs with ≥ min_count triplets, each kept to its per_song best-liked triplets.

    Ties in favourite count are broken by the source row, so the subset is deterministic.
    """
    occ = kept.groupby("song_id")["row"].transform("size")
    sub = kept[occ >= min_count].sort_values(["song_id", "favorite_count", "row"], ascending=[True, False, True])
    return sub.groupby("song_id", sort=True).head(per_song).reset_index(drop=True)


def make_splits(subset: pd.DataFrame, test_songs: int, seed: int) -> pd.DataFrame:
    """The two partitions: dagger (test_songs unseen songs) and section (one image per song held out)."""
    rng = np.random.default_rng(seed)
    songs = np.array(sorted(subset["song_id"].unique()))
    if test_songs >= len(songs):
        raise ValueError(f"dagger split wants {test_songs} test songs but the subset has only {len(songs)}")
    test = set(rng.choice(songs, test_songs, replace=False))
    out = subset[["song_id", "image", "row"]].copy()
    out["dagger"] = np.where(out["song_id"].isin(test), "test", "train")
    pick = out.groupby("song_id")["row"].transform(lambda r: r.iloc[rng.integers(len(r))])
    out["section"] = np.where(out["row"] == pick, "test", "train")
    return out


def refinement_flow(rejections: pd.DataFrame, raw_rows: int) -> tuple[list, list]:
    """Supplement Fig. 11 as counts: main steps [(label, rows left)] and removals [(label, rows removed)]."""
    r = rejections[rejections["file"] == "triplets.csv"]
    by = r["reason"].map(REFINEMENT_GROUP).value_counts()
    steps, removed, left = [("raw pairs", raw_rows)], [], raw_rows
    for group, label in (("bad record", "valid records"), ("non-English song", "English songs"),
                         ("lyric not found", "lyric found"), ("bad image", "refined triplets")):
        n = int(by.get(group, 0))
        left -= n
        steps.append((label, left))
        removed.append((group, n))
    return steps, removed


def songs_over(kept: pd.DataFrame, n: int = 50) -> pd.DataFrame:
    """Songs with more than n triplets (title, artist, triplets), most frequent first."""
    occ = kept.groupby(["song_id", "title", "artist"]).size().rename("triplets").reset_index()
    return occ[occ["triplets"] > n].sort_values(["triplets", "song_id"], ascending=[False, True]).reset_index(drop=True)


def rejection_counts(rejections: pd.DataFrame) -> pd.DataFrame:
    """Rejected rows per file and reason, with the refinement step of supplement Fig. 11 each falls under."""
    return (rejections.groupby(["file", "reason"]).size().rename("rows").reset_index()
            .assign(paper_group=lambda d: d["reason"].map(REFINEMENT_GROUP)))


def raw_rows(kept: pd.DataFrame, rejections: pd.DataFrame) -> int:
    """Data rows of triplets.csv: the kept ones plus the rejected ones."""
    return len(kept) + int((rejections["file"] == "triplets.csv").sum())


def split_sizes(splits: pd.DataFrame) -> pd.DataFrame:
    """Train and test triplets of each split."""
    return pd.DataFrame({s: splits[s].value_counts() for s in ("dagger", "section")}).rename_axis("part").reset_index()


def examples_by_song(kept: pd.DataFrame, songs, per_song: int = 6, title_chars: int = 18) -> dict[str, list[str]]:
    """A few image paths of each of some songs (the most frequent when `songs` is empty), keyed by a short title."""
    songs = list(songs) or list(kept["song_id"].value_counts().index[:8])
    return {kept.loc[kept.song_id == s, "title"].iloc[0][:title_chars]:
            list(kept.loc[kept.song_id == s, "image_path"].head(per_song)) for s in songs}
