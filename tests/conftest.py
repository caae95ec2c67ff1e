"""Shared fixtures: a tiny generated world, made once per test session."""
from __future__ import annotations

from pathlib import Path

import pytest

from i2s import synth

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """A small world (scale 0.01) written to a temporary folder."""
    out = tmp_path_factory.mktemp("world")
    synth.generate(out, synth.WorldParams(seed=7, scale=0.01, scene_graph_images=12, jobs=1))
    return out


@pytest.fixture
def in_tmp_root(tmp_path, monkeypatch) -> Path:
    """Point i2s.paths at a temporary project root."""
    monkeypatch.setenv("I2S_ROOT", str(tmp_path))
    return tmp_path
