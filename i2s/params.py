"""params.yaml, read only here: the whole file, a section, or one dotted key."""
from __future__ import annotations

import copy
import functools
from pathlib import Path

import yaml

from . import paths


@functools.lru_cache(maxsize=4)
def _read(path: str, mtime_ns: int) -> dict:
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping of sections, got {type(data).__name__}")
    return data


def load(path: str | Path | None = None) -> dict:
    """Every section of params.yaml (the project's by default), as a fresh dict."""
    p = Path(path) if path else paths.params_file()
    if not p.is_file():
        raise FileNotFoundError(f"{p}: no params.yaml (run from the project, or set I2S_ROOT)")
    return copy.deepcopy(_read(str(p), p.stat().st_mtime_ns))


def get(key: str, params: dict | None = None):
    """One value by its dotted key, e.g. get("lyric_model.hidden")."""
    node = load() if params is None else params
    for i, part in enumerate(key.split(".")):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"params.yaml has no {'.'.join(key.split('.')[:i + 1])!r}")
        node = node[part]
    return copy.deepcopy(node)


def section(name: str, params: dict | None = None) -> dict:
    """One section of params.yaml."""
    value = get(name, params)
    if not isinstance(value, dict):
        raise KeyError(f"params.yaml: {name!r} is not a section")
    return value
