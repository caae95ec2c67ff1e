"""The training losses: Eq. 11 (MSE), Eq. 12 (CPL), Eq. 13 (MRL), and a symmetric InfoNCE (beyond the paper)."""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from . import networks


def loss_value(name: str, pred: torch.Tensor, target: torch.Tensor, neg: torch.Tensor | None = None,
               margin: float = 1.0, positive: torch.Tensor | None = None,
               log_scale: torch.Tensor | None = None) -> torch.Tensor:
    """Mean over pairs of Eq. 11 (mse: squared distance), Eq. 12 (cpl: −cosine) or Eq. 13 (mrl: hinge on cosines);
    infonce: `pred` is the grid (images × the batch's songs × D), `positive` each image's song column."""
    if name == "infonce":
        if positive is None or log_scale is None or pred.dim() != 3:
            raise ValueError("infonce needs grid predictions, each image's positive column and the log scale")
        return infonce(F.cosine_similarity(target[:, None], pred, -1), positive, log_scale)
    if name == "mse":
        return (pred - target).pow(2).sum(-1).mean()
    if name == "cpl":
        return -F.cosine_similarity(pred, target, -1).mean()
    if name == "mrl":
        if neg is None:
            raise ValueError("mrl needs the predictions of negative lyrics")
        return F.relu(margin + F.cosine_similarity(target, neg, -1) - F.cosine_similarity(target, pred, -1)).mean()
    raise ValueError(f"unknown loss {name!r}; expected one of {networks.LOSSES}")


def infonce(cos: torch.Tensor, positive: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch (beyond the paper): cos = images × the batch's distinct songs.

    Image → lyric: cross-entropy over the songs. Lyric → image: each (song, image) pair against the song's
    non-matching images; the song's other images are left out of that denominator, since a batch holds
    several images per song. The logit scale (1/τ) is learnt, capped as in CLIP."""
    logits = cos * log_scale.clamp(max=float(np.log(networks.INFONCE_SCALE[1]))).exp()
    rows = torch.arange(len(positive), device=positive.device)
    i2t = F.cross_entropy(logits, positive)
    same = positive[:, None] == positive[None]                     # images × images sharing a song
    col = logits[:, positive].T                                   # [k, j] = logit of image j with pair k's song
    col = col.masked_fill(same & ~torch.eye(len(positive), dtype=torch.bool, device=positive.device), float("-inf"))
    t2i = -(col[rows, rows] - torch.logsumexp(col, 1))
    return (i2t + t2i.mean()) / 2


def ranking_hinge(positive: torch.Tensor, negative: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Bai et al.'s margin ranking loss: mean over pairs of max(0, margin − f(q, d⁺) + f(q, d⁻))."""
    return F.relu(margin - positive + negative).mean()
