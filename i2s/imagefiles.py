"""Reading image files into tensors (the one image reader of the pipeline and the explorer)."""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def load_image(path: str | Path) -> torch.Tensor:
    """An image file as a 3×H×W uint8 tensor."""
    with Image.open(path) as im:
        return torch.from_numpy(np.array(im.convert("RGB"))).permute(2, 0, 1).contiguous()


def load_images(files: list, threads: int = 2) -> list[torch.Tensor]:
    """Decode many image files (PIL releases the GIL, so threads help)."""
    with ThreadPoolExecutor(threads) as ex:
        return list(ex.map(load_image, files))
