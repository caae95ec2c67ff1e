"""Loading Shuttersong (real or embedded) with recorded rejections; the experiment subset and splits.

Canonical layout (the synthetic world writes the same one):
    root/triplets.csv   image, title, artist, favorite_count[, mood]
    root/lyrics.csv     title, artist, lyric
    root/images/        the photos named in triplets.csv (paths relative to images/, subfolders allowed)
"""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from . import imagefiles

REQUIRED = {"triplets.csv": ["image", "title", "artist", "favorite_count"],
            "lyrics.csv": ["title", "artist", "lyric"]}
# Rejection reasons of triplets.csv rows, in the order they are checked (a row gets the first that applies).
REASONS = ("bad_field_count", "duplicate_row", "bad_favorite_count", "missing_lyric", "empty_lyric",
           "non_english_lyric", "image_outside_images_dir", "missing_image", "unreadable_image", "image_too_large")
# Rejection reasons of lyrics.csv rows (their songs' triplets then have no lyric).
LYRIC_REASONS = ("bad_field_count", "duplicate_lyric_key")
# Fig. 11's refinement: the paper's two abnormal kinds, and where our checks fall
REFINEMENT_GROUP = {"non_english_lyric": "non-English song", "missing_lyric": "lyric not found",
                    "empty_lyric": "lyric not found", "duplicate_row": "bad record",
                    "bad_favorite_count": "bad record", "bad_field_count": "bad record",
                    "missing_image": "bad image", "unreadable_image": "bad image",
                    "image_too_large": "bad image", "image_outside_images_dir": "bad image"}
LANGUAGE_SAMPLE_WORDS = 150  # language ID reads the first words of a lyric: enough, and 3x faster
MAX_FAVORITE_COUNT = 2**63 - 1  # the largest count an int64 column holds exactly
_FAVORITE = re.compile(r"\s*([0-9]+)\s*")  # ASCII digits only: int() would also take '١٢' or '４'


class DataError(ValueError):
    """A dataset file that cannot be used at all (missing, unparsable, missing a column)."""


def decode_csv(path: Path) -> str:
    """The text of a CSV file: UTF-8, with or without a BOM; DataError naming the line of a byte that is not."""
    raw = path.read_bytes()
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise DataError(f"{path}: UTF-16 text; save it as UTF-8")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise DataError(f"{path}: not UTF-8: byte {raw[e.start:e.start + 1]!r} on line {line} ({e.reason}); "
                        "a Latin-1 or Windows-1252 export? Save it as UTF-8") from None


def read_header(fields: list[str] | None, path: Path, required: list[str]) -> list[str]:
    """Column names of a header row; DataError naming the file for no header, a duplicate or a missing column."""
    if fields is None:
        raise DataError(f"{path}: empty file (no header row)")
    names = [f.strip() for f in fields]
    while names and names[-1] == "":  # a trailing comma on the header is an export style, not a column
        names.pop()
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataError(f"{path}: duplicate column name(s) {dup} in the header")
    missing = [c for c in required if c not in names]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {names}")
    return names


def fit_record(fields: list[str], width: int, needed: int, line: int) -> tuple[list[str], str]:
    """A record cut or padded to the header's width, and '' or why the row must be rejected.

    Empty fields past the header's last column are dropped (the trailing-comma export style); missing
    fields after the last required column read as ''. Any other count is a rejection naming the line.
    """
    if len(fields) > width:
        extra = fields[width:]
        if all(not f.strip() for f in extra):
            return fields[:width], ""
        return fields[:width], f"line {line}: {len(fields)} fields, the header has {width} (extra: {extra!r})"
    if len(fields) < needed:
        return fields + [""] * (width - len(fields)), f"line {line}: {len(fields)} fields, the header has {width}"
    return fields + [""] * (width - len(fields)), ""


def read_table(path: Path, required: list[str]) -> tuple[pd.DataFrame, pd.Series]:
    """A CSV as strings, one row per non-blank record, and each row's field-count problem ('' if none).

    A file that cannot be read as a whole (missing, not UTF-8, broken quoting, bad header) is a DataError
    naming it and the line.
    """
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    # strict: an unclosed quote is an error instead of a field that silently swallows the rest of the file
    reader = csv.reader(io.StringIO(decode_csv(path), newline=""), strict=True)
    rows, problems = [], []
    try:
        header = read_header(next(reader, None), path, required)
        width, needed = len(header), max(header.index(c) for c in required) + 1
        start = reader.line_num + 1
        for fields in reader:
            if fields:  # a blank line is no row (as in pandas)
                row, problem = (fields, "") if len(fields) == width else fit_record(fields, width, needed, start)
                rows.append(row)
                problems.append(problem)
            start = reader.line_num + 1
    except csv.Error as e:
        raise DataError(f"{path}: unreadable CSV at line {reader.line_num}: {e}") from e
    return pd.DataFrame(rows, columns=header, dtype=str), pd.Series(problems, dtype=object)


def song_text(title: str, artist: str) -> str:
    """Title and artist with case and spacing normalised, joined so that no two pairs give one text."""
    def norm(s):
        return " ".join(s.split()).casefold().replace("\\", "\\\\").replace("|", "\\|")
    return f"{norm(title)}|{norm(artist)}"


def text_id(text: str) -> str:
    """The song id of a song_text: a 40-bit hash, stable across runs and machines."""
    return "song_" + hashlib.sha1(text.encode()).hexdigest()[:10]


def song_key(title: str, artist: str) -> str:
    """Stable song id from title and artist (case and spacing do not matter)."""
    return text_id(song_text(title, artist))


def song_ids(titles: list[str], artists: list[str]) -> list[str]:
    """song_key of each (title, artist), hashed once per distinct song; DataError if two songs got one id.

    Two songs sharing a 40-bit hash is very unlikely, but it would merge them without a word.
    """
    text_of = {pair: song_text(*pair) for pair in dict.fromkeys(zip(titles, artists))}
    id_of = {text: text_id(text) for text in dict.fromkeys(text_of.values())}
    text_with: dict[str, str] = {}
    for text, key in id_of.items():
        if text_with.setdefault(key, text) != text:
            raise DataError(f"songs {text_with[key]!r} and {text!r} both get id {key}: lengthen the hash in "
                            "i2s.shuttersong.text_id")
    return [id_of[text_of[pair]] for pair in zip(titles, artists)]


def favorite_count(value: str) -> int | None:
    """A favourite count as an int (ASCII digits, spaces around them allowed, 1..2^63-1), else None."""
    m = _FAVORITE.fullmatch(value)
    n = int(m.group(1)) if m else 0
    return n if 1 <= n <= MAX_FAVORITE_COUNT else None


def english_mask(lyrics: list[str]) -> tuple[np.ndarray, list[str]]:
    """Which lyrics are English, by lingua over all its languages; returns (mask, detected names)."""
    from lingua import Language, LanguageDetectorBuilder
    detector = LanguageDetectorBuilder.from_all_languages().build()
    texts = [" ".join(t.split()[:LANGUAGE_SAMPLE_WORDS]) for t in lyrics]
    found = detector.detect_languages_in_parallel_of(texts)
    names = [lang.name if lang is not None else "UNDETERMINED" for lang in found]
    return np.array([lang == Language.ENGLISH for lang in found], bool), names


def image_location(images: Path, name: str) -> Path | None:
    """The file a triplets.csv image name means: a relative path under images/; None if it leads outside."""
    parts = PurePosixPath(name).parts
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts:
        return None
    return images.joinpath(*parts)


def _image_ok(path: Path) -> tuple[str, str] | None:
    """None if the image reads as the pipeline reads it (i2s.imagefiles), else (rejection reason, why)."""
    try:
        imagefiles.read_image(path, name=path.name)
    except imagefiles.ImageFileError as e:
        return e.reason, e.problem
    return None


def load_shuttersong(root: str | Path, check_images: bool = True, threads: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Load the dataset at `root`: (kept triplets, rejections). Rows in = kept + rejected, always.

    Kept triplets carry: row (0-based data row of triplets.csv), image, image_path, title, artist,
    song_id, favorite_count (int), mood ('' when absent), lyric. Rejections carry: file, row, reason,
    detail. Rejections of lyrics.csv rows (bad field counts, duplicate keys) are listed with file='lyrics.csv'.
    """
    root = Path(root)
    trip, trip_problem = read_table(root / "triplets.csv", REQUIRED["triplets.csv"])
    lyr, lyr_problem = read_table(root / "lyrics.csv", REQUIRED["lyrics.csv"])
    images = root / "images"
    if check_images and len(trip) and not images.is_dir():
        raise DataError(f"{images}: folder not found (the photos named in triplets.csv)")
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

    # 0. a row with a field too many or too few: its values are in the wrong columns
    reject(trip_problem != "", "bad_field_count", trip_problem)
    # 1. exact duplicate rows: the first is kept
    cols = REQUIRED["triplets.csv"] + ["mood"]
    first_row = trip.index.to_series().groupby([trip[c] for c in cols], sort=False).transform("min")
    reject(trip.duplicated(cols, keep="first"), "duplicate_row", "duplicate of row " + first_row.astype(str))
    # 2. favourite counts are whole numbers ≥ 1 that an int64 holds
    fav = pd.Series([favorite_count(v) for v in trip["favorite_count"].tolist()], index=trip.index, dtype=object)
    reject(fav.isna(), "bad_favorite_count", "favorite_count=" + trip["favorite_count"].map(repr))
    # 3-5. a lyric, not empty, in English
    for i in np.flatnonzero(lyr_problem != ""):
        rejections.append({"file": "lyrics.csv", "row": int(i), "reason": "bad_field_count", "detail": lyr_problem.iat[i]})
    lyr = lyr[(lyr_problem == "").to_numpy()]
    ids = song_ids(lyr["title"].tolist() + trip["title"].tolist(), lyr["artist"].tolist() + trip["artist"].tolist())
    lyr["song_id"] = pd.Series(ids[:len(lyr)], index=lyr.index, dtype=str)
    trip["song_id"] = pd.Series(ids[len(lyr):], index=trip.index, dtype=str)
    dup_lyr = lyr["song_id"].duplicated(keep="first")
    for i in lyr.index[dup_lyr.to_numpy()]:
        rejections.append({"file": "lyrics.csv", "row": int(i), "reason": "duplicate_lyric_key",
                           "detail": "same title/artist as an earlier row; the first is used"})
    lyr = lyr[~dup_lyr]
    lyric_of = dict(zip(lyr["song_id"], lyr["lyric"]))
    has = trip["song_id"].isin(lyric_of.keys())
    reject(~has, "missing_lyric", pd.Series("no lyrics.csv row for this title/artist", index=trip.index))
    text = trip["song_id"].map(lyric_of).fillna("")
    reject(has & (text.str.strip() == ""), "empty_lyric", pd.Series("the lyrics.csv row is blank", index=trip.index))
    todo = sorted(set(trip.loc[reason == "", "song_id"]))
    eng, langs = english_mask([lyric_of[s] for s in todo]) if todo else (np.array([], bool), [])
    lang_of = dict(zip(todo, langs))
    detected = trip["song_id"].map(lang_of).fillna("ENGLISH")
    reject(detected != "ENGLISH", "non_english_lyric", "detected " + detected)
    # 6-9. the image is under images/, exists and reads as the pipeline will read it
    location = {name: image_location(images, name) for name in set(trip["image"].tolist())}
    where = pd.Series([location[name] for name in trip["image"].tolist()], index=trip.index, dtype=object)
    reject(where.isna(), "image_outside_images_dir", "image=" + trip["image"].map(repr))
    if check_images:
        todo_rows = trip.index[reason == ""]
        files = sorted(set(where[todo_rows]))  # a file named by several rows is read once
        with ThreadPoolExecutor(threads) as ex:  # Pillow decodes outside the GIL
            verdict = dict(zip(files, ex.map(_image_ok, files)))
        verdicts = where[todo_rows].map(verdict.get)
        for i in verdicts.index[verdicts.notna()]:
            reason[i], problem = verdicts[i]
            detail[i] = f"{trip.at[i, 'image']}: {problem}"
    bad = reason != ""
    for i in np.flatnonzero(bad.to_numpy()):
        rejections.append({"file": "triplets.csv", "row": int(i), "reason": reason.iat[i], "detail": detail.iat[i]})
    kept = trip[~bad].copy()
    kept.insert(0, "row", kept.index.astype(int))
    kept["favorite_count"] = fav[~bad].astype("int64")
    kept["lyric"] = text[~bad]
    kept["image_path"] = [str(p) for p in where[~bad]]
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
