"""Image descriptors of the MR-CCA paper (Section 2.2): colour, shape and texture, one distance per type."""
from __future__ import annotations

from functools import lru_cache

import numpy as np
from PIL import Image
from skimage.feature import hog, local_binary_pattern

# ---- defaults -----------------------------------------------------------------------------------
WORK_SIZE = 128   # descriptors are computed on a 128-px copy (the paper does not say; speed)
GRID = 4          # spatial grid for the 'spatialet'-style and Gabor descriptors

# (name, distance) of each block, in the order `image_features` concatenates them. The paper names the
# families (hue and RGB histograms, colour spatialet, HOG, edge-orientation histogram, wavelet, GIST) but
# not their sizes; ours total 876 dims against the paper's 2,596.
# Histograms use the Hellinger distance (chi2-like, and Euclidean on square roots, so it runs as a matrix product).
BLOCKS = [("hue_hist", "hellinger"), ("rgb_hist", "hellinger"), ("color_spatialet", "l2"), ("hog", "l2"),
          ("edge_orientation", "hellinger"), ("lbp", "hellinger"), ("gist_gabor", "l2"), ("wavelet", "l2")]


def _normalise(h):
    """Rows of a histogram array scaled to sum 1 (an empty row stays 0)."""
    return h / np.maximum(h.sum(-1, keepdims=True), 1e-9)


def _bin_index(x, bins, lo, hi):
    """np.histogram's bin of each value in [lo, hi]: bins [e_i, e_i+1) on its float32 edges, the last one closed."""
    edges = np.linspace(lo, hi, bins + 1, dtype=np.float32)
    i = np.minimum(((x - lo) * (bins / (hi - lo))).astype(np.intp), bins - 1)
    # the product can land one bin off at an edge; np.histogram corrects the same way
    i -= x < np.take(edges, i)
    i += (x >= np.take(edges, i + 1)) & (i != bins - 1)
    return i


@lru_cache(maxsize=1)
def _hue_bins() -> np.ndarray:
    """Hue bin of each uint8 hue, computed on the float32 value k / 255 the pixels would have."""
    return _bin_index(np.arange(256, dtype=np.float32) / 255, 36, 0, 1)


@lru_cache(maxsize=4)
def _quadrants(n: int) -> np.ndarray:
    """Quadrant number (top-left, top-right, bottom-left, bottom-right) of each pixel of an n x n image."""
    half = np.arange(n) >= n // 2
    return 2 * half[:, None] + half[None, :]


@lru_cache(maxsize=2)
def _gabor_fft(n: int, size: int = 15) -> np.ndarray:
    """FFTs of the Gabor bank zero-padded to n×n: one batched product filters an image with all 16."""
    pad = np.zeros((16, n, n), np.float32)
    for i, k in enumerate(_gabor_bank(size)):
        pad[i, :size, :size] = k
    return np.fft.rfft2(pad)


@lru_cache(maxsize=2)
def _gabor_bank(size: int = 15) -> list[np.ndarray]:
    """4 scales × 4 orientations of real Gabor kernels, as in GIST."""
    bank = []
    y, x = np.mgrid[-size // 2 + 1:size // 2 + 1, -size // 2 + 1:size // 2 + 1].astype(np.float32)
    for freq in (0.06, 0.12, 0.22, 0.35):
        sigma = 0.56 / freq
        for theta in np.arange(4) * np.pi / 4:
            xr = x * np.cos(theta) + y * np.sin(theta)
            k = np.exp(-(x ** 2 + y ** 2) / (2 * sigma ** 2)) * np.cos(2 * np.pi * freq * xr)
            bank.append((k - k.mean()).astype(np.float32))
    return bank


def _grid_means(a: np.ndarray, g: int) -> np.ndarray:
    h, w = a.shape[:2]
    return a[: h - h % g, : w - w % g].reshape(g, h // g, g, w // g, *a.shape[2:]).mean((1, 3)).ravel()


def image_features(img: Image.Image) -> np.ndarray:
    """The concatenated descriptor of one image (blocks in BLOCKS order; sizes in `block_slices`)."""
    # histograms are bincounts on precomputed bins: np.histogram's per-call set-up was a quarter of the cost
    im = img.convert("RGB").resize((WORK_SIZE, WORK_SIZE), Image.BILINEAR)
    rgb = np.asarray(im, np.float32) / 255
    hsv = np.asarray(im.convert("HSV"))
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    level = (rgb * 3.999).astype(np.intp)
    out = [_normalise(np.bincount(np.take(_hue_bins(), hsv[..., 0]).ravel(),  # saturation-weighted: grey has no hue
                                  weights=(hsv[..., 1] / np.float32(255)).ravel(), minlength=36).astype(np.float32)),
           _normalise(np.bincount((level[..., 0] * 16 + level[..., 1] * 4 + level[..., 2]).ravel(), minlength=64)),
           _grid_means(rgb, GRID)]
    small = gray[::2, ::2]  # shape and texture on a 64-px copy: 4x cheaper, same cell layout
    out.append(hog(small, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2), feature_vector=True))
    gy, gx = np.gradient(gray)
    mag, ang = np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)
    # one bincount for the four quadrants: each bin still sums its pixels in raster order
    edge = _quadrants(WORK_SIZE) * 18 + _bin_index(ang, 18, 0, np.pi)
    out.append(_normalise(np.bincount(edge.ravel(), weights=mag.ravel(), minlength=72)
                          .astype(np.float32).reshape(4, 18)))
    lbp = local_binary_pattern((small * 255).astype(np.uint8), 8, 1, method="uniform")
    out.append(_normalise(np.bincount((_quadrants(len(small)) * 10 + lbp.astype(int)).ravel(),
                                      minlength=40).reshape(4, 10)))
    n = small.shape[0] + 16
    resp = np.fft.irfft2(np.fft.rfft2(small, s=(n, n))[None] * _gabor_fft(n), s=(n, n))[:, 7:7 + small.shape[0], 7:7 + small.shape[1]]
    c = small.shape[0] // GRID
    out.append(np.abs(resp).reshape(len(resp), GRID, c, GRID, c).mean((2, 4)))
    out.append(_haar_energies(gray))
    return np.concatenate([np.asarray(o, np.float32).ravel() for o in out])


def _haar_energies(gray: np.ndarray, levels: int = 3) -> np.ndarray:
    """Mean absolute Haar detail coefficients per level and orientation, on a 2×2 grid."""
    feats, a = [], gray
    for _ in range(levels):
        a = a[: a.shape[0] // 2 * 2, : a.shape[1] // 2 * 2]
        tl, tr, bl, br = a[0::2, 0::2], a[0::2, 1::2], a[1::2, 0::2], a[1::2, 1::2]
        for detail in ((tl + tr - bl - br) / 4, (tl - tr + bl - br) / 4, (tl - tr - bl + br) / 4):
            feats.append(_grid_means(np.abs(detail), 2))
        a = (tl + tr + bl + br) / 4
    return np.concatenate(feats)


@lru_cache(maxsize=1)
def block_slices() -> list[slice]:
    """Column slice of each BLOCKS entry in the output of `image_features`."""
    sizes = [36, 64, GRID * GRID * 3, 324, 72, 40, 16 * GRID * GRID, 36]
    starts = np.cumsum([0] + sizes)
    return [slice(int(a), int(b)) for a, b in zip(starts[:-1], starts[1:])]
