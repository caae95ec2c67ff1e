"""The detector on held-out scene graphs: object AP@0.5, attribute AP, image-level tag AP, per-image F1."""
from __future__ import annotations

import contextlib
import io

import numpy as np
import pandas as pd
import torch
from torchvision.ops import box_iou

from . import detector, scenegraphs



def object_ap(preds: list[dict], targets: list[dict], objects: list[str]) -> tuple[float, pd.DataFrame]:
    """Detection AP@0.5 per object class (COCO's 101-point AP via torchmetrics) and their mean over the
    classes that occur in the ground truth."""
    from torchmetrics.detection import MeanAveragePrecision
    metric = MeanAveragePrecision(iou_type="bbox", iou_thresholds=[0.5], class_metrics=True, backend="pycocotools")
    metric.update([{k: p[k] for k in ("boxes", "scores", "labels")} for p in preds],
                  [{"boxes": t["boxes"], "labels": t["labels"]} for t in targets])
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        r = metric.compute()
    classes = r["classes"].reshape(-1).tolist()
    ap = r["map_per_class"].reshape(-1).tolist()
    gt = pd.Series(torch.cat([t["labels"] for t in targets]).numpy()).value_counts()
    table = pd.DataFrame({"object": [objects[c - 1] for c in classes], "ap50": ap,
                          "test_instances": [int(gt.get(c, 0)) for c in classes]})
    table = table[table["test_instances"] > 0].sort_values(["ap50", "object"], ascending=[False, True])
    return float(table["ap50"].mean()), table.reset_index(drop=True)


def multilabel_ap(scores: np.ndarray, truth: np.ndarray, words: list[str], name: str = "tag") -> tuple[float, pd.DataFrame]:
    """Average precision per column (sklearn) over the columns with at least one positive, and their mean."""
    from sklearn.metrics import average_precision_score
    rows = [{name: w, "ap": float(average_precision_score(truth[:, j], scores[:, j])), "positives": int(truth[:, j].sum())}
            for j, w in enumerate(words) if truth[:, j].sum() > 0]
    table = pd.DataFrame(rows).sort_values(["ap", name], ascending=[False, True]).reset_index(drop=True)
    return float(table["ap"].mean()), table


def attribute_ap(model: detector.TagDetector, data: scenegraphs.SceneGraphSet, batch_size: int = 32) -> tuple[float, pd.DataFrame]:
    """Attribute AP per attribute on the ground-truth boxes of a held-out set (the attribute head alone)."""
    scores = []
    for s in range(0, len(data), batch_size):
        _, att = model.score_boxes(data.images[s:s + batch_size], [t["boxes"] for t in data.targets[s:s + batch_size]])
        scores.append(att)
    truth = torch.cat([t["attributes"] for t in data.targets]).numpy()
    return multilabel_ap(torch.cat(scores).numpy(), truth, model.attributes, "attribute")


def image_truth(targets: list[dict], n_objects: int) -> tuple[np.ndarray, np.ndarray]:
    """Image-level ground truth: which objects and which attributes (on any object) each image has."""
    obj = np.zeros((len(targets), n_objects), np.int8)
    att = np.zeros((len(targets), targets[0]["attributes"].shape[1] if targets else 0), np.int8)
    for i, t in enumerate(targets):
        obj[i, (t["labels"] - 1).numpy()] = 1
        if len(t["attributes"]):
            att[i] = t["attributes"].amax(0).numpy() > 0
    return obj, att


def evaluate(model: detector.TagDetector, preds: list[dict], data: scenegraphs.SceneGraphSet) -> dict:
    """Every held-out measure: object AP@0.5, attribute AP on boxes, and image-level tag AP of both groups."""
    obj_map, obj_table = object_ap(preds, data.targets, model.objects)
    att_map, att_table = attribute_ap(model, data)
    o_true, a_true = image_truth(data.targets, len(model.objects))
    o_img, o_img_table = multilabel_ap(torch.stack([p["obj_vec"] for p in preds]).numpy(), o_true, model.objects, "object")
    a_img, a_img_table = multilabel_ap(torch.stack([p["attr_vec"] for p in preds]).numpy(), a_true, model.attributes, "attribute")
    return {"object_map50": obj_map, "attribute_map": att_map, "object_map_image": o_img, "attribute_map_image": a_img,
            "object_ap": obj_table, "attribute_ap": att_table, "object_ap_image": o_img_table,
            "attribute_ap_image": a_img_table}


def image_f1(pred: dict, target: dict, score: float = detector.CONFIDENT, iou: float = 0.5) -> float:
    """F1 of an image's confident detections against its boxes (a match needs the right class and IoU ≥ iou)."""
    keep = pred["scores"] >= score
    pb, pl = pred["boxes"][keep], pred["labels"][keep]
    tb, tl = target["boxes"], target["labels"]
    if len(pb) == 0 or len(tb) == 0:
        return float(len(pb) == len(tb))
    ious = box_iou(pb, tb) * (pl[:, None] == tl[None, :])
    used, tp = set(), 0
    for i in range(len(pb)):  # detections come sorted by score: greedy matching as in VOC
        j = int(ious[i].argmax())
        if ious[i, j] >= iou and j not in used:
            used.add(j)
            tp += 1
    return 2 * tp / (len(pb) + len(tb))


MEASURES = ("object_map50", "attribute_map", "object_map_image", "attribute_map_image")


def evaluation_table(rows: dict[str, dict]) -> pd.DataFrame:
    """The held-out measures of each detector (name → `evaluate`'s dict) side by side, and ImageNet − random."""
    out = pd.DataFrame({"measure": MEASURES, **{k: [v[m] for m in MEASURES] for k, v in rows.items()}})
    if {"ImageNet init", "random init"} <= set(rows):
        out["ImageNet − random"] = out["ImageNet init"] - out["random init"]
    return out


def f1_cases(preds: list[dict], targets: list[dict], n: int = 8) -> tuple[np.ndarray, dict[str, list[int]]]:
    """Each image's detection F1, and the n best ("good") and worst ("bad") images; among equal F1 the busiest
    scenes first."""
    f1 = np.array([image_f1(p, t) for p, t in zip(preds, targets)])
    n_obj = np.array([len(t["labels"]) for t in targets])
    return f1, {"good": list(np.lexsort((-n_obj, -f1))[:n]), "bad": list(np.lexsort((-n_obj, f1))[:n])}


def transfer(preds: list[dict], photos: pd.DataFrame, truth_graphs: list[dict], n: int, objects: list[str],
             attributes: list[str], seed: int = 0) -> dict:
    """How the detector does on the song photos, scored (never trained) against the world's scene graphs of a seeded
    sample of n experiment-subset photos: object AP@0.5 and image-level object and attribute tag AP."""
    graph = {g["image"]: g for g in truth_graphs}
    on = np.flatnonzero(photos["in_subset"].to_numpy())
    on = np.sort(np.random.default_rng(seed).choice(on, min(len(on), n), replace=False))
    targets = [scenegraphs.graph_target(graph[photos["image"].iat[i]], objects, attributes) for i in on]
    t_map, _ = object_ap([preds[i] for i in on], targets, objects)
    o_true, a_true = image_truth(targets, len(objects))
    o_img, _ = multilabel_ap(np.stack([preds[i]["obj_vec"].numpy() for i in on]), o_true, objects)
    a_img, _ = multilabel_ap(np.stack([preds[i]["attr_vec"].numpy() for i in on]), a_true, attributes)
    return {"object_map50": t_map, "object_map_image": o_img, "attribute_map_image": a_img}


def transfer_table(heldout: dict, song_photos: dict) -> pd.DataFrame:
    """`transfer`'s measures beside the same measures on the held-out scene graphs, and their difference."""
    out = pd.DataFrame({"measure": list(song_photos), "held-out scene graphs": [heldout[k] for k in song_photos],
                        "song photos (subset sample)": list(song_photos.values())})
    out["difference"] = out["song photos (subset sample)"] - out["held-out scene graphs"]
    return out
