"""Every stage artefact that another stage (or the explorer) reads: where it lives, how it is read and written.

A stage names what it reads (`READS` in its notebook or entry module); i2s.pipeline turns those names into the
stage's dependencies, and under the stage runner reading an artefact the stage did not name is an error, so a
dependency cannot go missing from dvc.yaml.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import paths

READS_ENV = "I2S_READS"   # set by the stage runner: the artefacts the running stage declared


@dataclass(frozen=True)
class Artefact:
    """A stage output other stages read: its stage, its path inside data/<stage>/ and how to read it."""
    stage: str
    path: str                 # may hold {name} (one artefact per foreach item)
    kind: str                 # csv, parquet, file, dir
    options: tuple = ()       # pandas read options, as (key, value) pairs

    def file(self, **fmt) -> Path:
        return paths.data(self.stage) / self.path.format(**fmt)


ARTEFACTS = {
    "shuttersong_world": Artefact("00_world", "shuttersong", "dir"),
    "scene_graphs": Artefact("00_world", "scene_graphs", "dir"),
    "world_truth": Artefact("00_world", "truth", "dir"),
    "triplets": Artefact("01_data_stats", "triplets.csv", "csv", (("keep_default_na", False),)),
    "rejections": Artefact("01_data_stats", "rejections.csv", "csv", (("keep_default_na", False),)),
    "subset": Artefact("01_data_stats", "subset.csv", "csv", (("keep_default_na", False),)),
    "splits": Artefact("01_data_stats", "splits.csv", "csv", (("keep_default_na", False),)),
    "songs_gt50": Artefact("01_data_stats", "tables/songs_gt50.csv", "csv", (("keep_default_na", False),)),
    "detector": Artefact("02_tag_detector", "detector.pt", "file"),
    "tags": Artefact("02_tag_detector", "tags.parquet", "parquet"),
    "tuning_grid": Artefact("03_tuning", "grid.csv", "csv"),
    "tuned_settings": Artefact("03_tuning", "best.json", "file"),
    "planted_runs": Artefact("03_planted", "runs.csv", "csv"),
    "planted_oracle": Artefact("03_planted", "oracle.csv", "csv"),
    "lyric_models": Artefact("04_attention", "models", "dir"),
    # Table 2's section-split models scored on the frequent songs: supplement Table 1's paper methods (no retraining)
    "table2_frequent": Artefact("04_attention", "frequent", "dir"),
    "variant": Artefact("07_variants", "{name}", "dir"),
    "mv_world": Artefact("00_mv_world", "", "dir"),
}


def path(artefact: str, **fmt) -> Path:
    """Where an artefact lives (e.g. path("subset") = data/01_data_stats/subset.csv)."""
    if artefact not in ARTEFACTS:
        raise KeyError(f"unknown artefact {artefact!r}; known: {', '.join(ARTEFACTS)}")
    return ARTEFACTS[artefact].file(**fmt)


def _declared(name: str) -> None:
    allowed = os.environ.get(READS_ENV)
    if allowed is not None and name not in allowed.split(","):
        raise RuntimeError(f"this stage reads artefact {name!r} without declaring it in READS: add it there, so that "
                           "dvc.yaml lists it as a dependency (then `python -m i2s.pipeline`)")


def read(artefact: str, **fmt) -> pd.DataFrame:
    """A table artefact as a DataFrame, with its read options."""
    name = artefact
    a = ARTEFACTS[name]
    _declared(name)
    f = a.file(**fmt)
    if not f.exists():
        raise FileNotFoundError(f"{f} is missing: run stage {a.stage} first (`dvc repro {a.stage}`)")
    if a.kind == "csv":
        return pd.read_csv(f, **dict(a.options))
    if a.kind == "parquet":
        return pd.read_parquet(f)
    raise TypeError(f"artefact {name!r} is a {a.kind}: use artefacts.path({name!r}) and its own loader")


def locate(artefact: str, **fmt) -> Path:
    """The path of a file or folder artefact the running stage reads (declared, like `read`)."""
    _declared(artefact)
    return path(artefact, **fmt)


def write(artefact: str, table: pd.DataFrame, **fmt) -> Path:
    """Write a table artefact where `read` finds it."""
    name = artefact
    a = ARTEFACTS[name]
    f = a.file(**fmt)
    f.parent.mkdir(parents=True, exist_ok=True)
    if a.kind == "csv":
        table.to_csv(f, index=False)
    elif a.kind == "parquet":
        table.to_parquet(f, index=False)
    else:
        raise TypeError(f"artefact {name!r} is a {a.kind}, not a table")
    return f


def flatten(nested: dict, prefix: str = "") -> dict:
    """Nested dicts as one level with '/'-joined keys ({"a": {"b": 1}} → {"a/b": 1})."""
    out = {}
    for k, v in nested.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "/"))
        else:
            out[key] = v
    return out


def write_metrics(stage: str, metrics: dict) -> dict:
    """Write the flat metrics JSON of a stage (numbers only, for `dvc metrics show`); nested dicts are flattened."""
    flat = {}
    for k, v in flatten(metrics).items():
        if isinstance(v, (np.integer, np.floating, np.bool_)):
            v = v.item()
        if not isinstance(v, (int, float, bool)):
            raise TypeError(f"metric {k!r} is {type(v).__name__}; metrics must be flat numbers")
        flat[k] = v
    p = paths.metrics(stage)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(flat, indent=1, sort_keys=True) + "\n")
    return flat


def read_metrics(stage: str) -> dict:
    """A stage's metrics JSON ({} when it has not run)."""
    p = paths.metrics(stage)
    return json.loads(p.read_text()) if p.exists() else {}


def read_variants(names, paper_methods: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs and per-query ranks of the variant stages `names` (data/07_variants/<name>/runs.csv, ranks.csv), and
    with `paper_methods` Table 2's section models on the same queries (stage 04's `table2_frequent`)."""
    folders = {n: locate("variant", name=n) for n in names}
    if paper_methods:
        folders["paper_methods"] = locate("table2_frequent")
    runs = pd.concat([pd.read_csv(f / "runs.csv") for f in folders.values()], ignore_index=True)
    ranks = pd.concat([pd.read_csv(f / "ranks.csv").assign(variant=n) for n, f in folders.items()], ignore_index=True)
    return runs, ranks
