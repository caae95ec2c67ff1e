"""The loader keeps or rejects every row with a reason; files it cannot use fail loudly."""
from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from i2s import shuttersong as data

EN = ("Oh baby I remember the summer night we danced under the stars and the ocean waves were singing "
      "our song forever and ever I will hold you close tonight and never let you go away again ") * 3
FR = ("Je t'aime mon amour pour toujours dans la nuit nous dansons sous les étoiles et la mer chante "
      "notre chanson je ne veux pas te quitter jamais mon coeur est à toi ") * 3


def _jpeg(path):
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 20, 3), 128, np.uint8)).save(buf, "JPEG")
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


@pytest.fixture
def dataset(tmp_path):
    """One good row and one row for each way a row can go wrong."""
    img = tmp_path / "images"
    img.mkdir()
    good = _jpeg(img / "good.jpg")
    _jpeg(img / "good2.jpg")
    for name in ("fr.jpg", "nolyric.jpg", "empty.jpg", "badfav.jpg"):
        _jpeg(img / name)
    (img / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (img / "garbage.jpg").write_bytes(b"not an image at all")
    rows = [
        ("good.jpg", "Summer Night", "Ava Harlow", "12", "happy"),      # 0 kept
        ("good.jpg", "Summer Night", "Ava Harlow", "12", "happy"),      # 1 duplicate of 0
        ("badfav.jpg", "Summer Night", "Ava Harlow", "-3", ""),         # 2 bad favourite count
        ("nolyric.jpg", "Lost Song", "Nobody", "1", ""),                # 3 no lyrics.csv row
        ("empty.jpg", "Empty Song", "Nobody", "1", ""),                 # 4 empty lyric
        ("fr.jpg", "Mon Amour", "Clara Vance", "2", ""),                # 5 non-English
        ("missing.jpg", "Summer Night", "Ava Harlow", "3", ""),         # 6 image not on disk
        ("truncated.jpg", "Summer Night", "Ava Harlow", "3", ""),       # 7 truncated JPEG
        ("garbage.jpg", "Summer Night", "Ava Harlow", "3", ""),         # 8 not an image
        ("good2.jpg", " summer  night", "AVA HARLOW", "5", ""),         # 9 kept: same song, other spelling
        ("badfav.jpg", "Summer Night", "Ava Harlow", "n/a", ""),        # 10 bad favourite count
        ("badfav.jpg", "Summer Night", "Ava Harlow", "2.5", ""),        # 11 bad favourite count
    ]
    pd.DataFrame(rows, columns=["image", "title", "artist", "favorite_count", "mood"]).to_csv(tmp_path / "triplets.csv", index=False)
    pd.DataFrame([("Summer Night", "Ava Harlow", EN), ("Empty Song", "Nobody", "   "), ("Mon Amour", "Clara Vance", FR)],
                 columns=["title", "artist", "lyric"]).to_csv(tmp_path / "lyrics.csv", index=False)
    return tmp_path


def test_every_row_kept_or_rejected_with_its_reason(dataset):
    kept, rej = data.load_shuttersong(dataset)
    assert list(kept["row"]) == [0, 9]
    got = dict(zip(rej["row"], rej["reason"]))
    assert got == {1: "duplicate_row", 2: "bad_favorite_count", 3: "missing_lyric", 4: "empty_lyric",
                   5: "non_english_lyric", 6: "missing_image", 7: "unreadable_image", 8: "unreadable_image",
                   10: "bad_favorite_count", 11: "bad_favorite_count"}
    assert len(kept) + len(rej) == 12
    assert rej.set_index("row").loc[1, "detail"] == "duplicate of row 0"
    assert "FRENCH" in rej.set_index("row").loc[5, "detail"]
    assert kept["song_id"].nunique() == 1  # spelling and case do not split a song
    assert kept["favorite_count"].tolist() == [12, 5]
    assert kept["lyric"].iloc[0] == EN


def test_missing_mood_column_is_fine(dataset):
    t = pd.read_csv(dataset / "triplets.csv", dtype=str, keep_default_na=False).drop(columns="mood")
    t.to_csv(dataset / "triplets.csv", index=False)
    kept, _ = data.load_shuttersong(dataset)
    assert (kept["mood"] == "").all()


def test_missing_column_names_file_and_column(dataset):
    t = pd.read_csv(dataset / "triplets.csv", dtype=str).drop(columns="favorite_count")
    t.to_csv(dataset / "triplets.csv", index=False)
    with pytest.raises(data.DataError, match=r"triplets\.csv.*favorite_count"):
        data.load_shuttersong(dataset)


def test_missing_file_and_unparsable_csv_are_clear_errors(dataset):
    (dataset / "lyrics.csv").unlink()
    with pytest.raises(data.DataError, match=r"lyrics\.csv: file not found"):
        data.load_shuttersong(dataset)
    (dataset / "lyrics.csv").write_text('title,artist,lyric\n"a","b","c"\n"x","y","z\n')  # a quote left open
    with pytest.raises(data.DataError, match=r"lyrics\.csv: unreadable CSV at line 3"):
        data.load_shuttersong(dataset)


def test_a_lyrics_row_with_extra_fields_is_rejected_not_the_file(dataset):
    with open(dataset / "lyrics.csv", "a") as f:
        f.write('"x","y","z","extra","fields"\n')
    kept, rej = data.load_shuttersong(dataset)
    assert list(kept["row"]) == [0, 9]
    lyr = rej[rej["file"] == "lyrics.csv"]
    assert lyr["row"].tolist() == [3] and lyr["reason"].tolist() == ["bad_field_count"]
    assert "5 fields, the header has 3" in lyr["detail"].iat[0]


def test_duplicate_lyric_rows_are_recorded(dataset):
    lyr = pd.read_csv(dataset / "lyrics.csv")
    pd.concat([lyr, lyr.iloc[[0]]]).to_csv(dataset / "lyrics.csv", index=False)
    kept, rej = data.load_shuttersong(dataset)
    assert len(kept) == 2
    assert rej.loc[rej["file"] == "lyrics.csv", "reason"].tolist() == ["duplicate_lyric_key"]


def _kept(n_songs=12, per=(7, 5, 3, 1)):
    rows, r = [], 0
    for s in range(n_songs):
        for k in range(per[s % len(per)]):
            rows.append({"row": r, "song_id": f"s{s:02d}", "image": f"i{r}.jpg", "title": f"T{s}",
                         "artist": "A", "favorite_count": (k * 7) % 5 + 1, "mood": ""})
            r += 1
    return pd.DataFrame(rows)


def test_experiment_subset_keeps_best_liked_per_song():
    kept = _kept()
    sub = data.experiment_subset(kept, 5, 5)
    assert set(sub["song_id"]) == {s for s, n in kept.groupby("song_id").size().items() if n >= 5}
    assert (sub.groupby("song_id").size() == 5).all()
    for s, g in sub.groupby("song_id"):
        rest = kept[(kept.song_id == s) & ~kept.row.isin(g.row)]
        assert rest.empty or g["favorite_count"].min() >= rest["favorite_count"].max()


def test_splits_partition_as_the_paper():
    sub = data.experiment_subset(_kept(40), 5, 5)
    sp = data.make_splits(sub, 4, seed=3)
    test_songs = sp.loc[sp.dagger == "test", "song_id"].unique()
    assert len(test_songs) == 4
    assert not set(test_songs) & set(sp.loc[sp.dagger == "train", "song_id"])
    assert (sp[sp.section == "test"].groupby("song_id").size() == 1).all()
    assert sp["song_id"].nunique() == sp.loc[sp.section == "test", "song_id"].nunique()
    assert sp.equals(data.make_splits(sub, 4, seed=3))
    with pytest.raises(ValueError, match="test songs"):
        data.make_splits(sub, 10_000, seed=0)


def test_stats_and_bins_agree():
    kept = _kept()
    rej = pd.DataFrame({"file": ["triplets.csv"] * 3, "row": [90, 91, 92], "reason": ["x"] * 3, "detail": [""] * 3})
    st = data.dataset_stats(kept, rej)
    occ = data.occurrence_bins(kept)
    assert occ["songs"].sum() == st["songs"] and occ["triplets"].sum() == st["triplets"]
    assert st["songs_ge5"] + st["songs_lt5"] == st["songs"]
    assert st["rejected"] == 3
    assert data.favourite_bins(kept)["triplets"].sum() == len(kept)
