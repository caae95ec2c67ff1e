"""Every path the project reads or writes, in one place."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ASSETS = PACKAGE / "assets"
PAPER_TABLES = ASSETS / "paper"
LEXICON = ASSETS / "lexicon"
WORLD_ASSETS = ASSETS / "world"


def root() -> Path:
    """Project root for outputs: $I2S_ROOT, else the nearest folder up from here holding params.yaml."""
    if os.environ.get("I2S_ROOT"):
        return Path(os.environ["I2S_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / "params.yaml").is_file():
            return p
    return here


def data(stage: str) -> Path:
    """Output folder of a stage, e.g. data/01_data_stats."""
    return root() / "data" / stage


def tables(stage: str) -> Path:
    """Tables (CSV + Markdown) of a stage."""
    return data(stage) / "tables"


def figures(stage: str) -> Path:
    """Figure folder of a stage (PNG, read by `dvc plots`)."""
    return root() / "figures" / stage


def metrics(stage: str) -> Path:
    """Flat metrics JSON of a stage."""
    return root() / "metrics" / f"{stage}.json"


def reports() -> Path:
    """Executed notebooks and their HTML renders."""
    return root() / "reports"


# The embedded world (stage 00_world) writes the real dataset's layout under world_root()/shuttersong.
WORLD = "00_world"


def world_root() -> Path:
    return data(WORLD)


def shuttersong_world() -> Path:
    """Shuttersong-layout copy of the synthetic world (triplets.csv, lyrics.csv, images/)."""
    return world_root() / "shuttersong"


def scene_graph_world() -> Path:
    """The separate scene-graph set (images + boxes/objects/attributes) for the tag detector."""
    return world_root() / "scene_graphs"


def world_truth() -> Path:
    """What the generator knows and a real dataset would not: themes, intended rejections, scene graphs."""
    return world_root() / "truth"


def resolve(path: str | os.PathLike) -> Path:
    """A params path: absolute as given, relative to the project root otherwise."""
    p = Path(path)
    return p if p.is_absolute() else root() / p


def lyric_models() -> Path:
    """Trained lyric models of notebook 04 (seed 0, dagger split): <method>__<group>.pt, read by i2s.explore."""
    return data("04_attention") / "models"


def lyric_model_file(method: str, group: str) -> Path:
    """The file of one method × tag group in `lyric_models()`."""
    return lyric_models() / f"{method}__{group}.pt"
