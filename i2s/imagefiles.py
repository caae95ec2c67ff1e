"""The one image reader of the pipeline, the loader's image check and the explorer: files or bytes to RGB pixels.

Every photo is read the same way wherever it is read, so one photo always gets one set of tags:
EXIF orientation applied, 16-bit grey scaled (not clipped to white), palette, grey, CMYK and alpha
converted to RGB (alpha composited on white), a pixel limit checked before anything is decoded, and
an optional longest side. Anything wrong with a file is one exception type, ImageFileError, naming it.
"""
from __future__ import annotations

import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:
    import torch

# Only formats whose Pillow decoders are self-contained: EPS, for one, would hand the file to Ghostscript,
# a PostScript interpreter, i.e. run the file as a program. (Phone JPEGs that Pillow reads as MPO come in as JPEG.)
FORMATS = ("JPEG", "PNG", "GIF", "BMP", "TIFF", "WEBP")
# Pillow's own decompression-bomb threshold (89.5 Mpx, a 9,459-px square); above twice this Pillow refuses
# the file itself, so a larger max_pixels has no effect past that.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")
_GREY16_MODES = ("I;16", "I;16L", "I;16B", "I;16N")


class ImageFileError(ValueError):
    """An image file that cannot be used; `reason` is the loader's rejection reason for it."""

    def __init__(self, name: str, problem: str, reason: str = "unreadable_image"):
        super().__init__(f"{name}: {problem}")
        self.name, self.problem, self.reason = name, problem, reason


def to_rgb(im: Image.Image) -> Image.Image:
    """An opened image of any supported mode as 8-bit RGB, alpha composited on white."""
    if im.mode in _GREY16_MODES:
        # Pillow's convert() clips 16-bit values at 255, which turns a 16-bit photo white
        grey = np.asarray(im).astype(np.float32) / 257
        return Image.fromarray(np.rint(grey).astype(np.uint8), "L").convert("RGB")
    if im.mode in ("I", "F"):
        raise ValueError(f"{im.mode!r} (32-bit integer or float) pixels: their range is not known, so no colours")
    if im.mode in _ALPHA_MODES or "transparency" in im.info:
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return im.convert("RGB")


def _open(source: str | Path | bytes, name: str) -> Image.Image:
    if isinstance(source, (bytes, bytearray, memoryview)):
        if not len(source):
            raise ImageFileError(name, "the file is empty")
        return Image.open(io.BytesIO(bytes(source)), formats=FORMATS)
    if not Path(source).is_file():
        raise ImageFileError(name, "no such file", "missing_image")
    return Image.open(source, formats=FORMATS)


def read_image(source: str | Path | bytes, name: str | None = None, max_side: int | None = None,
               max_pixels: int = MAX_PIXELS) -> np.ndarray:
    """An image file (path or bytes) as H×W×3 uint8 RGB, EXIF-oriented; ImageFileError naming it if unusable."""
    if name is None:
        name = "image bytes" if isinstance(source, (bytes, bytearray, memoryview)) else str(source)
    try:
        with _open(source, name) as im:
            w, h = im.size
            if w * h > max_pixels:  # checked on the header: nothing is decoded yet
                raise ImageFileError(name, f"{w}×{h} px is over the limit of {max_pixels:,} px", "image_too_large")
            if w == 0 or h == 0:
                raise ImageFileError(name, f"{w}×{h} px: no pixels")
            if max_side:
                im.draft("RGB", (max_side, max_side))  # JPEG: decode at a reduced scale, much faster for big photos
            rgb = to_rgb(ImageOps.exif_transpose(im))
        if max_side:
            rgb.thumbnail((max_side, max_side))
        return np.array(rgb)
    except ImageFileError:
        raise
    except UnidentifiedImageError:
        raise ImageFileError(name, f"not a {', '.join(FORMATS)} image") from None
    except Image.DecompressionBombError as e:
        raise ImageFileError(name, str(e), "image_too_large") from e
    except Exception as e:  # a damaged file makes Pillow's plugins raise anything (TypeError, IndexError, ...)
        raise ImageFileError(name, f"not an image that can be read ({type(e).__name__}: {e})") from e


def load_image(path: str | Path, max_side: int | None = None) -> torch.Tensor:
    """An image file as a 3×H×W uint8 tensor (read by `read_image`)."""
    import torch  # here, so that the data loader's image check does not import torch
    return torch.from_numpy(read_image(path, max_side=max_side)).permute(2, 0, 1).contiguous()


def load_images(files: list, threads: int = 2, max_side: int | None = None) -> list[torch.Tensor]:
    """Decode many image files in input order (Pillow releases the GIL, so threads help)."""
    with ThreadPoolExecutor(threads) as ex:
        return list(ex.map(lambda f: load_image(f, max_side), files))
