"""The scene-graph set (Visual Genome shape) the detector learns from: vocabularies, records, detection targets."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch

from . import imagefiles, render


def vocabularies(scene_graphs: str | Path | None = None) -> tuple[list[str], list[str]]:
    """(object tags, attributes): the set's objects.csv / attributes.csv if present, else the world's."""
    folder = Path(scene_graphs) if scene_graphs else None
    obj_csv = folder / "objects.csv" if folder else None
    att_csv = folder / "attributes.csv" if folder else None
    objects = (pd.read_csv(obj_csv)["tag"] if obj_csv and obj_csv.is_file()
               else pd.Series([r["tag"] for r in render.load_objects()]))
    attributes = (pd.read_csv(att_csv)["attribute"] if att_csv and att_csv.is_file()
                  else pd.Series([r["attribute"] for r in render.load_attributes()]))
    return list(dict.fromkeys(objects)), list(dict.fromkeys(attributes))


def read_scene_graphs(path: str | Path) -> list[dict]:
    """The records of a scene_graphs.jsonl (a folder holding one, or the file)."""
    path = Path(path)
    if path.is_dir():
        path = path / "scene_graphs.jsonl"
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def graph_target(graph: dict, objects: list[str], attributes: list[str]) -> dict:
    """Boxes (xyxy), labels (1-based; 0 is background) and multi-hot attributes of one scene graph."""
    o_idx = {t: i + 1 for i, t in enumerate(objects)}
    a_idx = {a: i for i, a in enumerate(attributes)}
    boxes, labels, attrs = [], [], torch.zeros((0, len(attributes)))
    rows = []
    for ob in graph["objects"]:
        name = next((n for n in ob["names"] if n in o_idx), None)
        if name is None:  # a class outside the vocabulary is not a training target
            continue
        boxes.append([ob["x"], ob["y"], ob["x"] + ob["w"], ob["y"] + ob["h"]])
        labels.append(o_idx[name])
        row = torch.zeros(len(attributes))
        row[[a_idx[a] for a in ob.get("attributes", []) if a in a_idx]] = 1
        rows.append(row)
    if rows:
        attrs = torch.stack(rows)
    return {"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
            "labels": torch.tensor(labels, dtype=torch.int64), "attributes": attrs}


@dataclass
class SceneGraphSet:
    """Images (uint8 tensors) with their detection targets, one split of a scene-graph set."""
    names: list[str]
    images: list[torch.Tensor]
    targets: list[dict]
    graphs: list[dict] = field(repr=False)

    def __len__(self):
        return len(self.names)


def load_scene_graph_set(folder: str | Path, split: str | tuple, objects: list[str], attributes: list[str],
                         limit: int | None = None, threads: int = 2, images_dir: str | Path | None = None) -> SceneGraphSet:
    """One or more splits of a scene-graph set (records in file order, so the order is deterministic)."""
    folder = Path(folder)
    splits = (split,) if isinstance(split, str) else tuple(split)
    graphs = [g for g in read_scene_graphs(folder) if g.get("split") in splits or "all" in splits]
    graphs = graphs[:limit] if limit else graphs
    img_dir = Path(images_dir) if images_dir else folder / "images"
    images = imagefiles.load_images([img_dir / g["image"] for g in graphs], threads)
    return SceneGraphSet([g["image"] for g in graphs], images, [graph_target(g, objects, attributes) for g in graphs],
                         graphs)


def split_targets(folder: str | Path, split: str, objects: list[str], attributes: list[str]) -> list[dict]:
    """The detection targets of one split, without decoding its images (e.g. to count a split nothing scores)."""
    return [graph_target(g, objects, attributes) for g in read_scene_graphs(folder) if g.get("split") == split]


def split_summary(splits: dict[str, list[dict]]) -> pd.DataFrame:
    """Images, objects, object classes seen and attribute labels of each split (name → its targets)."""
    return pd.DataFrame([{"split": name, "images": len(tg), "objects": int(sum(len(t["labels"]) for t in tg)),
                          "object classes seen": int(len(torch.cat([t["labels"] for t in tg]).unique())) if tg else 0,
                          "attribute labels": int(sum(t["attributes"].sum() for t in tg))}
                         for name, tg in splits.items()])


def image_meta(data: SceneGraphSet, folder: str | Path) -> pd.DataFrame:
    """The tag table's identifying columns for a scene-graph split (no song; not in the experiment subset)."""
    return pd.DataFrame({"image": data.names, "image_path": [str(Path(folder) / "images" / n) for n in data.names],
                         "song_id": "", "in_subset": False, "song_gt50": False})
