"""The second pass of Eq. 10 as one compiled loop (eq10.cpp), forward and backward, beside `networks.rerun`.

`second_pass` computes what `networks.rerun` computes (the output at each pair's last real step of an LSTM that
hands on h̃_t = scale_t · h_t), with one GEMM and one fused pass over the pairs a step instead of about 25 small
PyTorch ops, and only the pairs still reading at each step (pairs sorted by length). The extension is built once
per machine with torch's cpp_extension (g++ and ninja; cached under `~/.cache/torch_extensions`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn


@lru_cache(maxsize=1)
def kernel():
    """The compiled extension (built on first use; a clear error if the machine cannot build it)."""
    from torch.utils import cpp_extension
    src = Path(__file__).with_name("eq10.cpp")
    try:
        return cpp_extension.load(name="i2s_eq10", sources=[str(src)], extra_cflags=["-O3"], verbose=False)
    except Exception as e:  # no compiler or ninja: say what is missing rather than fail deep in torch
        raise RuntimeError(f"cannot build {src} (needs g++ and the ninja package): {e}") from e


def _layout(cells: list[nn.LSTM]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row order i, f, o, g; the recurrent weights in it with the g rows doubled; b_hh in it; the row multiplier."""
    hidden = cells[0].weight_hh_l0.shape[1]
    r = torch.arange(hidden)
    perm = torch.cat([r, r + hidden, r + 3 * hidden, r + 2 * hidden])
    mult = torch.ones(4 * hidden, dtype=cells[0].weight_hh_l0.dtype, device=cells[0].weight_hh_l0.device)
    mult[3 * hidden:] = 2.0   # tanh(g) = 2σ(2g) − 1: one sigmoid over all four gates
    w = torch.stack([c.weight_hh_l0[perm] for c in cells]) * mult[:, None]
    b = torch.stack([c.bias_hh_l0[perm] for c in cells])
    return perm, w, b, mult


class _SecondPass(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, w, scale, song, length):
        save = any(ctx.needs_input_grad[:3])  # grad mode is always off inside forward: ask what needs a gradient
        out = kernel().forward(x, w, scale, song, length, save)
        if save:
            ctx.save_for_backward(x, w, scale, song, length, *out[1:])
        return out[0]

    @staticmethod
    def backward(ctx, g):
        gx, gw, gs = kernel().backward(g, *ctx.saved_tensors)
        return gx, gw, gs, None, None


def second_pass(cells: list[nn.LSTM], xproj: torch.Tensor, scale: torch.Tensor, song: torch.Tensor,
                lengths: torch.Tensor) -> torch.Tensor:
    """Eq. 10's second pass for P pairs: xproj = W_ih x + b_ih per song (D×S×T×4H), scale D×P×T, song P (each
    pair's row of xproj), lengths P; returns each pair's output at its last real step (D×P×H), as networks.rerun."""
    perm, w, b, mult = _layout(cells)
    x = ((xproj[..., perm] + b[:, None, None]) * mult).contiguous()
    order = torch.argsort(lengths, descending=True, stable=True)
    back = torch.argsort(order)
    final = _SecondPass.apply(x, w.contiguous(), scale[:, order].contiguous(), song[order].contiguous(),
                              lengths[order].to(torch.long).contiguous())
    return final[:, back]
