"""What only the embedded world knows and a real dataset would not (data/00_world/truth): the generator's intended
decision for every row, the songs' themes, the photos' scene graphs."""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd


def loader_vs_truth(rejections: pd.DataFrame, truth_dir: str | os.PathLike) -> pd.DataFrame:
    """Rows where the loader's decision differs from the generator's intention (empty when they agree)."""
    truth = pd.read_csv(Path(truth_dir) / "rows.csv")
    got = pd.Series("kept", index=truth.index, dtype=object)
    r = rejections[rejections["file"] == "triplets.csv"]
    got.iloc[r["row"].to_numpy()] = r["reason"].to_numpy()
    out = truth.assign(loader=got)
    return out[out["loader"] != out["intended"]]


def songs_with_themes(kept: pd.DataFrame, truth_dir: str | os.PathLike) -> pd.DataFrame:
    """Kept triplets joined with the generator's song facts (theme, weak, theme_rate)."""
    songs = pd.read_csv(Path(truth_dir) / "songs.csv", keep_default_na=False)
    rows = pd.read_csv(Path(truth_dir) / "rows.csv")[["row", "selfie", "context"]]
    return (kept.merge(songs.drop(columns=["song_id"]), on=["title", "artist"], how="left")
                .merge(rows, on="row", how="left"))


def examples_by_theme(kept_with_themes: pd.DataFrame, per_theme: int = 6, seed: int = 0) -> dict[str, list[str]]:
    """A few image paths per theme (seeded), for the example grid."""
    out = {}
    for theme, g in kept_with_themes.groupby("theme", sort=True):
        out[theme] = list(g.sample(min(per_theme, len(g)), random_state=seed)["image_path"])
    return out
