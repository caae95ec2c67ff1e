"""Every path the project reads or writes, in one place."""
from __future__ import annotations

import os
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ASSETS = PACKAGE / "assets"
PAPER_TABLES = ASSETS / "paper"
PAPER_FACTS = PAPER_TABLES / "paper_facts.csv"      # dataset statistics and settings the papers state
PAPER_RESULTS = PAPER_TABLES / "paper_results.csv"  # every result number the papers publish
LEXICON = ASSETS / "lexicon"
WORLD_ASSETS = ASSETS / "world"
# asset folders by the name modules use them under: i2s.pipeline makes a module's reads of them stage dependencies
ASSET_DIRS = {"LEXICON": LEXICON, "WORLD_ASSETS": WORLD_ASSETS}
PARAMS = "params.yaml"
DVC_YAML = "dvc.yaml"


def root() -> Path:
    """Project root for outputs: $I2S_ROOT, else the nearest folder up from here holding params.yaml."""
    if os.environ.get("I2S_ROOT"):
        return Path(os.environ["I2S_ROOT"]).resolve()
    here = Path.cwd().resolve()
    for p in (here, *here.parents):
        if (p / PARAMS).is_file():
            return p
    return here


def data(stage: str) -> Path:
    """Output folder of a stage, e.g. data/01_data_stats."""
    return root() / "data" / stage


def output(stage: str, name: str) -> Path:
    """A file of a stage's output folder (data/<stage>/<name>), its folder created: what a notebook writes."""
    p = data(stage) / name
    p.parent.mkdir(parents=True, exist_ok=True)
    return p


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


def notebook(stage: str) -> Path:
    """The stored (output-free) notebook of a stage."""
    return root() / "notebooks" / f"{stage}.ipynb"


def executed(stage: str) -> Path:
    """The executed copy of a stage's notebook (a stage output, never an input)."""
    return reports() / f"{stage}.ipynb"


def params_file() -> Path:
    """The project's params.yaml."""
    return root() / PARAMS


def relative(path: str | os.PathLike) -> str:
    """A path as the project writes it in dvc.yaml: relative to the root when inside it, else absolute."""
    p = Path(path).resolve()
    try:
        return p.relative_to(root()).as_posix()
    except ValueError:
        return p.as_posix()


def resolve(path: str | os.PathLike) -> Path:
    """A params path: absolute as given, relative to the project root otherwise."""
    p = Path(path)
    return p if p.is_absolute() else root() / p
