"""Why a lyric model learns or does not: its fit on its own training pairs, and what its final state sees."""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import lyricdata, networks

DISTANCES = (0, 5, 20, 50, 100, 150)   # steps before the end of a lyric


def final_state_sensitivity(model: networks.LyricModel, data: lyricdata.Data, songs: np.ndarray,
                            distances=DISTANCES) -> pd.Series:
    """How much the forward LSTM's final output depends on the word `d` steps before the lyric's end: the mean norm
    of ∂(Σ h_fwd(final)) / ∂x_{T−d} over the songs long enough (the backward LSTM mirrors it at the start)."""
    model.eval()
    songs = np.asarray(songs)
    lengths = data.lengths[torch.as_tensor(songs)]
    x = model.embed(data.tokens[torch.as_tensor(songs), :int(lengths.max())]).detach().requires_grad_(True)
    hidden = model.cfg.hidden
    model.lstm(x, lengths)["final"][:, :hidden].sum().backward()
    grad = x.grad.norm(dim=-1)
    back = [grad[i, :int(n)].flip(0).numpy() for i, n in enumerate(lengths)]
    return pd.Series({d: float(np.mean([b[d] for b in back if len(b) > d])) for d in distances if any(len(b) > d for b in back)},
                     name="sensitivity")
