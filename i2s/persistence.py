"""Trained lyric models on disk: one file per model, read without unpickling code."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import artefacts, lyricdata, networks


def model_file(method: str, group: str) -> Path:
    """The file of one method × tag group among notebook 04's saved models (seed 0, dagger split)."""
    return artefacts.path("lyric_models") / f"{method}__{group}.pt"


def save_model(model: networks.LyricModel, path, data: lyricdata.Data, method: str, train_songs: np.ndarray):
    """One file per trained model: method, Config, weights, vocabulary, tag words, group and training songs."""
    from dataclasses import asdict
    from pathlib import Path
    if method not in networks.MODEL_CLASSES or not isinstance(model, networks.MODEL_CLASSES[method]):
        raise ValueError(f"model is a {type(model).__name__}, not a {method!r} model")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # training songs by id, not index: BoW's tf-idf vocabulary is refitted on them, and ids stay valid in a
    # Data with more songs (e.g. a typed lyric appended)
    torch.save({"method": method, "config": asdict(model.cfg), "state_dict": model.state_dict(),
                "words": list(data.words), "tag_words": list(data.tag_words), "group": data.group,
                "train_songs": [data.songs[i] for i in np.asarray(train_songs, dtype=np.int64)]}, path)
    return path


def read_model_file(path) -> dict:
    """The stored fields of a `save_model` file (weights included), read without unpickling code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(path, data: lyricdata.Data) -> networks.LyricModel:
    """A `save_model` file rebuilt on `data` (eval mode); a clear error when the data do not fit the model."""
    ck = read_model_file(path)
    cfg = networks.Config.from_params(**ck["config"])
    if ck["group"] != data.group:
        raise ValueError(f"{path}: a model of the {ck['group']!r} tag group, the data are {data.group!r}")
    if ck["tag_words"] != list(data.tag_words):
        raise ValueError(f"{path}: the model's {len(ck['tag_words'])} tag words differ from the data's "
                         f"{len(data.tag_words)}: rerun notebook 04 after notebook 02")
    if ck["words"] != list(data.words):
        raise ValueError(f"{path}: the model's vocabulary ({len(ck['words'])} words) differs from the data's "
                         f"({len(data.words)}): same subset, word vectors and tag words needed (rerun notebook 04)")
    if cfg.top_k != data.top_tags.shape[1]:
        raise ValueError(f"{path}: the model attends to the top {cfg.top_k} tags, the data hold {data.top_tags.shape[1]}")
    sidx = data.song_index()
    missing = [s for s in ck["train_songs"] if s not in sidx]
    if missing:
        raise ValueError(f"{path}: {len(missing)} training songs are not in the data (e.g. {missing[:3]})")
    model = networks.build_model(ck["method"], data, cfg, np.array([sidx[s] for s in ck["train_songs"]], dtype=np.int64))
    model.load_state_dict(ck["state_dict"])
    return model.eval()


def save_kept_models(results: list[dict], datas: dict, splits, val_fraction: float) -> list[Path]:
    """Save every run that kept its model (`keep_model`) where the explorer finds it (`model_file`)."""
    out = []
    for r in results:
        if "model" in r:
            d = datas[r["group"]]
            train_images = lyricdata.split_indices(d, splits, r["split"], r["seed"], val_fraction)["train"]
            out.append(save_model(r["model"], model_file(r["method"], r["group"]), d, r["method"],
                                  np.unique(d.image_song.numpy()[train_images])))
    return out
