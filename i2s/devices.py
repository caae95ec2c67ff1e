"""Where the torch parts run: `device: auto` takes a GPU when there is one (the params `parallel` section)."""
from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")


def resolve(name: str = "auto") -> str:
    """The torch device a params value names: "cuda" when asked or when `auto` finds one, else "cpu"."""
    import torch
    if name not in DEVICES and not str(name).startswith("cuda:"):
        raise ValueError(f"parallel.device must be one of {DEVICES} (or cuda:<n>), not {name!r}")
    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"parallel.device = {name!r}, but torch sees no GPU here (use auto or cpu)")
    return name
