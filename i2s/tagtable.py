"""The tag table: one object ⊕ attribute probability vector per image (the paper's `v`), its groups and top-K words."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

TOP_K = 5                         # Section 4.3: the top-5 tags feed the attention model
GROUPS = ("obj", "attr", "obj-attr")


def tag_table(preds: list[dict], meta: pd.DataFrame, objects: list[str], attributes: list[str],
              top_k: int = TOP_K) -> pd.DataFrame:
    """One row per image: `meta`'s columns, the top-K tag words of each group, and every class probability
    as a column (`obj:<tag>`, `attr:<attribute>`)."""
    obj = torch.stack([p["obj_vec"] for p in preds]).numpy()
    att = torch.stack([p["attr_vec"] for p in preds]).numpy()
    both, words = np.hstack([obj, att]), objects + attributes
    tops = {"obj": top_tags(obj, objects, top_k), "attr": top_tags(att, attributes, top_k),
            "obj-attr": top_tags(both, words, top_k)}
    df = meta.reset_index(drop=True).copy()
    for g in GROUPS:
        df[f"top_{g}"] = [" ".join(t) for t in tops[g]]
    probs = pd.DataFrame(np.hstack([obj, att]).astype(np.float32),
                         columns=[f"obj:{t}" for t in objects] + [f"attr:{a}" for a in attributes])
    return pd.concat([df, probs], axis=1)


def top_tags(vectors: np.ndarray, words: list[str], k: int = TOP_K) -> list[list[str]]:
    """The k highest-probability words of each row (ties broken by vocabulary order)."""
    order = np.argsort(-vectors, axis=1, kind="stable")[:, :k]
    return [[words[j] for j in row] for row in order]


def tag_matrix(table: pd.DataFrame, group: str = "obj-attr") -> tuple[np.ndarray, list[str]]:
    """The image representation of one group ('obj', 'attr' or 'obj-attr'): N×D probabilities and the D words."""
    prefixes = {"obj": ("obj:",), "attr": ("attr:",), "obj-attr": ("obj:", "attr:")}[group]
    cols = [c for p in prefixes for c in table.columns if c.startswith(p)]
    return table[cols].to_numpy(np.float32), [c.split(":", 1)[1] for c in cols]


def mean_attributes(table: pd.DataFrame) -> pd.Series:
    """The average probability of every attribute over the table's images, sorted (supplement Fig. 13)."""
    matrix, words = tag_matrix(table, "attr")
    return pd.Series(matrix.mean(0), index=words).sort_values(ascending=False)
