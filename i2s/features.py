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


def _hist(x, bins, rng_, weights=None):
    h, _ = np.histogram(x, bins=bins, range=rng_, weights=weights)
    return h / max(h.sum(), 1e-9)


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
    im = img.convert("RGB").resize((WORK_SIZE, WORK_SIZE), Image.BILINEAR)
    rgb = np.asarray(im, np.float32) / 255
    hsv = np.asarray(im.convert("HSV"), np.float32) / 255
    gray = rgb @ np.array([0.299, 0.587, 0.114], np.float32)
    out = [_hist(hsv[..., 0], 36, (0, 1), weights=hsv[..., 1]),  # saturation-weighted: grey has no hue
           _hist((rgb[..., 0] * 3.999).astype(int) * 16 + (rgb[..., 1] * 3.999).astype(int) * 4
                 + (rgb[..., 2] * 3.999).astype(int), 64, (0, 64)),
           _grid_means(rgb, GRID)]
    small = gray[::2, ::2]  # shape and texture on a 64-px copy: 4x cheaper, same cell layout
    out.append(hog(small, orientations=9, pixels_per_cell=(16, 16), cells_per_block=(2, 2), feature_vector=True))
    gy, gx = np.gradient(gray)
    mag, ang = np.hypot(gx, gy), np.mod(np.arctan2(gy, gx), np.pi)
    half = WORK_SIZE // 2
    for sy in (slice(0, half), slice(half, None)):
        for sx in (slice(0, half), slice(half, None)):
            out.append(_hist(ang[sy, sx], 18, (0, np.pi), weights=mag[sy, sx]))
    lbp = local_binary_pattern((small * 255).astype(np.uint8), 8, 1, method="uniform")
    q = half // 2
    for sy in (slice(0, q), slice(q, None)):
        for sx in (slice(0, q), slice(q, None)):
            out.append(_hist(lbp[sy, sx], 10, (0, 10)))
    n = small.shape[0] + 16
    resp = np.fft.irfft2(np.fft.rfft2(small, s=(n, n))[None] * _gabor_fft(n), s=(n, n))[:, 7:7 + small.shape[0], 7:7 + small.shape[1]]
    out.append(np.concatenate([_grid_means(np.abs(r), GRID) for r in resp]))
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
