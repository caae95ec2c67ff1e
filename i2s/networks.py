"""The lyric models of Image2song (Sections 4.2-4.3) and the baselines of Section 5.1, and their settings.

Every model maps a lyric (and, for the attentive ones, the query image's top-K tags) into the image tag space
(Eq. 11); retrieval ranks songs by cosine similarity to the image's tag vector (Section 4.3).

- BoW: the lyric's tf-idf bag of words, a low-rank linear map into the tag space.
- CONSE: the average of the lyric's word vectors, then the same MLP as Our.
- Our: BiLSTM over the lyric, l = h_fwd(final) ‖ h_bwd(first) (Section 4.2), MLP into the tag space.
- Our-attention: the image's top-K tags embedded with the same word vectors, pooled into ṽ; Eqs. 8-10
  re-weight every BiLSTM output and the final output carries the attention (see `OurAttention`).
- Attentive-Reader: the same tag attention, but the attention-weighted pooling of the outputs is the lyric
  representation, combined non-linearly with ṽ (Hermann et al.'s g = tanh(W_rg r + W_ug u)).
"""
from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from . import lyricdata

METHODS = ("BoW", "CONSE", "Attentive-Reader", "Our", "Our-attention")   # the paper's Table 2
EXTRA_METHODS = ("BoW-MLP", "Our-attention-linear")   # second readings, reported beside the paper's rows
ATTENTIVE = ("Attentive-Reader", "Our-attention", "Our-attention-linear")
LOSSES = ("mse", "cpl", "mrl", "infonce")  # Eq. 11, Eq. 12, Eq. 13; infonce: beyond the paper (symmetric, CLIP-style)
SUPPLEMENT_METHODS = ("BoW", "CONSE", "Attentive-Reader", "Our", "Our-mood", "Our-attention")  # supp. Table 1
INFONCE_SCALE = (1 / 0.07, 100.0)    # learnable logit scale 1/τ: CLIP's initial value and cap
POOLINGS = ("mean", "max")


@dataclass(frozen=True)
class Config:
    """Model and training settings; the paper's where it states them (4.3-4.4), ours where it is silent."""
    hidden: int = 32            # LSTM units per direction (paper: not stated; 64 doubles the attentive cost)
    mlp_hidden: int = 128       # hidden layer of the MLP into the tag space (not stated); also BoW's rank
    attention: int = 32         # width of m_t in Eq. 8 (not stated)
    top_k: int = 5              # footnote 5: the top 5 tags
    pooling: str = "mean"       # Section 5.1: average pooling of the tag matrix
    loss: str = "mse"           # Eq. 11
    margin: float = 1.0         # Eq. 13
    lr: float = 1e-3            # Section 4.4: RMSprop, lr 0.001, rho 0.9, eps 1e-8, batches of 100 pairs
    rho: float = 0.9
    eps: float = 1e-8
    batch_pairs: int = 100
    max_epochs: int = 60        # a cap; early stopping on validation retrieval decides (not stated)
    patience: int = 5
    chrono: int = 200           # >0: chrono initialisation of the gates for memories up to this many steps (0: forget_bias)
    forget_bias: float = 3.0    # initial forget-gate bias (not stated): PyTorch's ~0 left Our at chance on validation
    val_fraction: float = 0.1   # validation carved from train, mirroring the split (see split_indices)
    max_tokens: int = 0         # 0 = the whole preprocessed lyric

    @classmethod
    def from_params(cls, **kw) -> "Config":
        """A Config from a params section, ignoring keys that are not model settings."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kw.items() if k in names})


def reverse_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """B × T positions that reverse each sequence within its length and leave the padding in place."""
    t = torch.arange(steps, device=lengths.device).expand(len(lengths), steps)
    n = lengths[:, None]
    return torch.where(t < n, n - 1 - t, t)


def _gather_steps(x: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    return x.gather(1, index[..., None].expand(*index.shape, x.shape[-1]))


def lstm_memory(lstm: nn.LSTM, x: torch.Tensor, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each step's contribution to the final cell state, and the output gate at the last real step.

    With the gates i_t, f_t, C̃_t, o_t of Eqs. 2-6 recomputed from the inputs and outputs, the final cell is
    C_final = Σ_t (Π_{τ>t} f_τ) i_t C̃_t exactly (C_0 = 0); returns the B × T × H terms of that sum (zero on
    padding) and o_final (B × H). x, h, mask are in the order the LSTM read them, padding at the end.
    """
    h_prev = torch.cat([h.new_zeros(h.shape[0], 1, h.shape[2]), h[:, :-1]], 1)
    gates = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0) + F.linear(h_prev, lstm.weight_hh_l0, lstm.bias_hh_l0)
    i, f, g, o = gates.chunk(4, -1)  # PyTorch's gate order
    m = mask[..., None].to(x.dtype)
    log_f = F.logsigmoid(f) * m
    later = log_f.flip(1).cumsum(1).flip(1) - log_f  # Σ_{τ>t} log f_τ over the real steps
    contrib = torch.exp(later) * torch.sigmoid(i) * torch.tanh(g) * m
    last = (mask.sum(1) - 1).clamp(min=0)
    o_final = torch.sigmoid(o)[torch.arange(len(last), device=last.device), last]
    return contrib, o_final


class BiLSTM(nn.Module):
    """A forward and a backward LSTM over padded batches; padding never reaches a real step's output.

    The backward LSTM reads each lyric reversed within its length, so both directions see their padding last
    and no packing is needed. `forward` returns the outputs (B × T × 2H, zero on padding, original order),
    l = h_fwd(final) ‖ h_bwd(first) (B × 2H), and the padding mask.
    """

    def __init__(self, dim: int, hidden: int, forget_bias: float = 0.0, chrono: int = 0):
        super().__init__()
        self.fwd = nn.LSTM(dim, hidden, batch_first=True)
        self.bwd = nn.LSTM(dim, hidden, batch_first=True)
        with torch.no_grad():
            for lstm in (self.fwd, self.bwd):
                lstm.bias_hh_l0[:2 * hidden].zero_()
                if chrono:  # Tallec & Ollivier's chrono init: memories of 1..chrono steps, input gates as closed
                    b = torch.log(torch.empty(hidden).uniform_(1, chrono - 1))
                    lstm.bias_ih_l0[hidden:2 * hidden].copy_(b)
                    lstm.bias_ih_l0[:hidden].copy_(-b)
                else:  # the forget gate starts open (Gers et al.; Jozefowicz et al.): memory over a long lyric
                    lstm.bias_ih_l0[hidden:2 * hidden].fill_(forget_bias)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, memory: bool = False) -> dict:
        steps = x.shape[1]
        mask = torch.arange(steps, device=x.device)[None] < lengths[:, None]
        rev = reverse_index(lengths, steps)
        x_rev = _gather_steps(x, rev)
        hf, _ = self.fwd(x)
        hb_rev, _ = self.bwd(x_rev)
        last = lengths - 1
        rows = torch.arange(len(lengths), device=x.device)
        final = torch.cat([hf[rows, last], hb_rev[rows, last]], -1)
        m = mask[..., None].to(x.dtype)
        out = {"outputs": torch.cat([hf, _gather_steps(hb_rev, rev)], -1) * m, "final": final, "mask": mask}
        if memory:
            cf, of = lstm_memory(self.fwd, x, hf, mask)
            cb_rev, ob = lstm_memory(self.bwd, x_rev, hb_rev, mask)
            out.update(contrib_fwd=cf, contrib_bwd=_gather_steps(cb_rev, rev), o_fwd=of, o_bwd=ob)
        return out


def mlp(dim_in: int, hidden: int, dim_out: int) -> nn.Sequential:
    """The MLP into the tag space, with a linear output: a sigmoid would squash the gradient of the many
    near-zero tag probabilities (every model ends the same way)."""
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.ReLU(), nn.Linear(hidden, dim_out))


def masked_softmax(e: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis restricted to real steps (padding gets exactly 0)."""
    return torch.softmax(e.masked_fill(~mask, float("-inf")), -1)


def weighted_sum(s: torch.Tensor, v: torch.Tensor, grid: bool) -> torch.Tensor:
    """Σ_t s_t v_t: pairs (P×T, P×T×H → P×H) or a grid (C×S×T, S×T×H → C×S×H)."""
    return torch.einsum("cst,sth->csh", s, v) if grid else torch.einsum("pt,pth->ph", s, v)


class TagAttention(nn.Module):
    """Eqs. 8-9: m_t = σ(W_hm h_t + W_vm ṽ), s_t ∝ exp(w_ms·m_t), normalised over the real steps."""

    def __init__(self, dim_h: int, dim_v: int, width: int):
        super().__init__()
        self.W_hm = nn.Linear(dim_h, width, bias=False)
        self.W_vm = nn.Linear(dim_v, width, bias=False)
        self.w_ms = nn.Linear(width, 1, bias=False)

    def weights(self, a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor, grid: bool) -> torch.Tensor:
        """a = W_hm h (song side, …×T×A), b = W_vm ṽ (image side, …×A) → s (P×T, or C×S×T on a grid)."""
        z = a[None] + b[:, None, None] if grid else a + b[:, None]
        return masked_softmax(self.w_ms(z.sigmoid_()).squeeze(-1), mask[None] if grid else mask)  # z is a fresh sum


class LyricModel(nn.Module):
    """Shared interface. Each model's `songs(tokens, lengths, index)` encodes lyrics (image-independent),
    `query` encodes images (attentive models only), and `pairs` combines them into tag-space predictions, for
    aligned pairs or a grid of images × songs."""
    attends = False
    joint = False

    def __init__(self, embedding: torch.Tensor, out_dim: int, cfg: Config):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(embedding, freeze=True, padding_idx=0)  # W_e kept (4.2)
        self.cfg = cfg

    @property
    def device(self) -> torch.device:
        """Where the model's weights are (its inputs are moved there: `scoring.encode_songs`, `image_query`)."""
        return self.embed.weight.device

    def query(self, top_tags: torch.Tensor) -> dict:
        """The tag attention vector ṽ: the top-K tags embedded (Eq. 1) into T (K × d), then pooled."""
        t = self.embed(top_tags)
        return {"v": t.mean(1) if self.cfg.pooling == "mean" else t.max(1).values}

    def pairs(self, song: dict, query: dict | None, grid: bool = False) -> torch.Tensor:
        return song["pred"]


class BoWMLP(LyricModel):
    """tf-idf bag of words → rank-r linear map into the tag space, trained like the others (an extra row: the
    repo's earlier BoW; Bai et al.'s is `BoW`)."""

    def __init__(self, embedding, out_dim, cfg, bow: torch.Tensor):
        super().__init__(embedding, out_dim, cfg)
        self.register_buffer("bow", bow, persistent=False)
        self.map = nn.Sequential(nn.Linear(bow.shape[1], cfg.mlp_hidden, bias=False),
                                 nn.Linear(cfg.mlp_hidden, out_dim))

    def songs(self, tokens, lengths, index):
        return {"pred": self.map(self.bow[index])}


class BoW(LyricModel):
    """Bai et al.'s supervised semantic indexing (degree 2, low rank) as the BoW baseline of Section 5.1.

    The image's tag vector v and the lyric's tf-idf bag of words b are mapped into one rank-r space, and a pair is
    scored by the inner product there, f(v, b) = (U v)·(V b) = vᵀ Uᵀ V b; it learns from the margin ranking loss
    max(0, 1 − f(v, b⁺) + f(v, b⁻)) with b⁻ the bag of a lyric drawn at random from all training lyrics (Bai et
    al.'s SGD on triplets; here the shared RMSprop loop). Retrieval ranks songs by f, not by a cosine in the tag
    space: it is the one method here that does not predict tags.
    """
    joint = True   # scores pairs in its own space (`image_side`), not by cosine with a tag-space prediction

    def __init__(self, embedding, out_dim, cfg, bow: torch.Tensor):
        super().__init__(embedding, out_dim, cfg)
        self.register_buffer("bow", bow, persistent=False)
        self.U = nn.Linear(out_dim, cfg.mlp_hidden, bias=False)
        self.V = nn.Linear(bow.shape[1], cfg.mlp_hidden, bias=False)

    def songs(self, tokens, lengths, index):
        return {"pred": self.V(self.bow[index])}

    def image_side(self, targets: torch.Tensor) -> torch.Tensor:
        """U v: the images' tag vectors in the joint space."""
        return self.U(targets)


class CONSE(LyricModel):
    """The average of the lyric's word vectors, then the MLP of Our."""

    def __init__(self, embedding, out_dim, cfg):
        super().__init__(embedding, out_dim, cfg)
        self.mlp = mlp(embedding.shape[1], cfg.mlp_hidden, out_dim)

    def songs(self, tokens, lengths, index):
        return {"pred": self.mlp(self.embed(tokens).sum(1) / lengths[:, None])}  # padding embeds to 0


class Our(LyricModel):
    """BiLSTM over the lyric; l = h_fwd(final) ‖ h_bwd(first); MLP into the tag space."""

    def __init__(self, embedding, out_dim, cfg):
        super().__init__(embedding, out_dim, cfg)
        self.lstm = BiLSTM(embedding.shape[1], cfg.hidden, cfg.forget_bias, cfg.chrono)
        self.mlp = mlp(2 * cfg.hidden, cfg.mlp_hidden, out_dim)

    def songs(self, tokens, lengths, index):
        return {"pred": self.mlp(self.lstm(self.embed(tokens), lengths)["final"])}


class TagAttended(LyricModel):
    """The BiLSTM, the tag attention of Eqs. 8-9 and the MLP that both readings of Eq. 10 share."""

    attends = True

    def __init__(self, embedding, out_dim, cfg):
        super().__init__(embedding, out_dim, cfg)
        self.lstm = BiLSTM(embedding.shape[1], cfg.hidden, cfg.forget_bias, cfg.chrono)
        self.attention = TagAttention(2 * cfg.hidden, embedding.shape[1], cfg.attention)
        self.mlp = mlp(2 * cfg.hidden, cfg.mlp_hidden, out_dim)

    def query(self, top_tags):
        return {"b": self.attention.W_vm(super().query(top_tags)["v"])}

    def weights(self, song: dict, query: dict, grid: bool = False) -> torch.Tensor:
        """The attention weights s_t of Eq. 9 (sum to one over each lyric's real words)."""
        return self.attention.weights(song["a"], query["b"], song["mask"], grid)


class OurAttentionLinear(TagAttended):
    """Our-attention-linear: a linear reading of Eq. 10, kept beside the one as written (`OurAttention`).

    Eqs. 8-9 weigh every BiLSTM output h_t by s_t (softmax over the real steps) given the image's ṽ, and Eq. 10
    re-weights it; the re-weighted step then flows to the final output through the LSTM's memory:
    C̃_final = Σ_t n·s_t (Π_{τ>t} f_τ) i_t C̃_t, h̃_final = o_final ⊙ tanh(C̃_final), per direction, and
    l̃ = h̃_fwd(final) ‖ h̃_bwd(first) goes through the MLP. Eq. 9 fixes s_t only up to a constant (∝); we take
    n (the lyric's length), so uniform attention gives back exactly Our's l. The gates are those of the lyric
    without attention, which makes l̃ linear in s: all image-song pairs are scored in batches from one pass per
    song, instead of one LSTM pass per pair.
    """
    def songs(self, tokens, lengths, index):
        enc = self.lstm(self.embed(tokens), lengths, memory=True)
        n = lengths[:, None, None].to(enc["outputs"].dtype)
        return {"a": self.attention.W_hm(enc["outputs"]), "mask": enc["mask"], "cf": enc["contrib_fwd"] * n,
                "cb": enc["contrib_bwd"] * n, "of": enc["o_fwd"], "ob": enc["o_bwd"]}

    def pairs(self, song, query, grid=False):
        s = self.weights(song, query, grid)
        l_f = song["of"] * torch.tanh(weighted_sum(s, song["cf"], grid))
        l_b = song["ob"] * torch.tanh(weighted_sum(s, song["cb"], grid))
        return self.mlp(torch.cat([l_f, l_b], -1))


def _ifo_g(hidden: int) -> torch.Tensor:
    """Row order that puts the three sigmoid gates first and the tanh gate last (one op each per step)."""
    r = torch.arange(hidden)
    return torch.cat([r, r + hidden, r + 3 * hidden, r + 2 * hidden])


def rerun(cells: list[nn.LSTM], xproj: torch.Tensor, scale: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """The second pass of Eq. 10, both directions at once: each LSTM reads its inputs again, and the state every
    step hands on is its own output re-weighted, h̃_t = scale_t · h_t (scale = n·s_t); returns the output at each
    lyric's last real step (D×…×H, D = the directions).

    xproj = W_ih x_t + b_ih (D×…×T×4H: computed once per song and broadcast against the pairs), scale D×…×T,
    lengths …; the leading shapes broadcast (a grid: songs 1×S against images C×S).
    """
    hidden = cells[0].weight_hh_l0.shape[1]
    perm = _ifo_g(hidden)
    w_hh = torch.stack([c.weight_hh_l0[perm] for c in cells])            # D × 4H × H
    b_hh = torch.stack([c.bias_hh_l0[perm] for c in cells])              # D × 4H
    xproj = xproj[..., perm]
    d = len(cells)
    shape = torch.broadcast_shapes(xproj.shape[1:-2], scale.shape[1:-1], lengths.shape)
    h = xproj.new_zeros(d, *shape, hidden)
    c = torch.zeros_like(h)
    final = torch.zeros_like(h)
    last = (lengths - 1)[None, ..., None]
    wt = w_hh.transpose(1, 2)
    # unbound once: a slice per step would give the backward pass a full-size gradient per step (quadratic in T)
    xs = (xproj + b_hh.reshape(d, *([1] * (xproj.dim() - 2)), 4 * hidden)).unbind(-2)
    scales = scale.unbind(-1)
    for t in range(len(scales)):
        # one matrix product for all pairs; the input side (per song) broadcasts over them
        gates = torch.bmm(h.reshape(d, -1, hidden), wt).reshape(d, *shape, 4 * hidden) + xs[t]
        sig = torch.sigmoid(gates[..., :3 * hidden])
        i, f, o = sig.chunk(3, -1)
        c = torch.addcmul(f * c, i, torch.tanh(gates[..., 3 * hidden:]))
        out = o * torch.tanh(c)
        final = torch.where(last == t, out, final)
        h = out * scales[t][..., None]
    return final


class OurAttention(TagAttended):
    """Our with tag attention, Eq. 10 as written: the attended outputs flow through the entire lyric.

    A first pass of the BiLSTM gives the outputs h_t; Eqs. 8-9 give their weights s_t for the image (softmax over
    the real steps, from ṽ, the pooled word vectors of its top-K tags). A second pass of the same BiLSTM reads the
    lyric again and hands on, at every step, its own output re-weighted, h̃_t = n·s_t·h_t, as the state the next
    step's gates read (Eq. 10); its final outputs (forward last ‖ backward first) go through the MLP. Eq. 9 fixes
    s_t only up to a constant (∝); n, the lyric's length, makes uniform attention give back Our exactly. Every
    (image, song) pair needs its own second pass: the input projection is computed once per song, only the
    recurrent product runs per pair (`rerun`).
    """
    def songs(self, tokens, lengths, index):
        x = self.embed(tokens)
        enc = self.lstm(x, lengths)
        rev = reverse_index(lengths, x.shape[1])
        return {"a": self.attention.W_hm(enc["outputs"]), "mask": enc["mask"], "lengths": lengths, "rev": rev,
                "xf": F.linear(x, self.lstm.fwd.weight_ih_l0, self.lstm.fwd.bias_ih_l0),
                "xb": F.linear(_gather_steps(x, rev), self.lstm.bwd.weight_ih_l0, self.lstm.bwd.bias_ih_l0)}

    def pairs(self, song, query, grid=False):
        s = self.weights(song, query, grid)
        n = song["lengths"].to(s.dtype)
        scale = s * n[:, None]                                   # P×T, or C×S×T on a grid (songs last but one)
        rev = song["rev"].expand_as(scale)
        scale_rev = scale.gather(-1, rev)                          # the backward LSTM reads the lyric reversed
        xproj, lengths = torch.stack([song["xf"], song["xb"]]), song["lengths"]
        if grid:  # songs broadcast against the images
            xproj, lengths = xproj[:, None], lengths[None]
        final = rerun([self.lstm.fwd, self.lstm.bwd], xproj, torch.stack([scale, scale_rev]), lengths)
        return self.mlp(torch.cat([final[0], final[1]], -1))


class AttentiveReader(LyricModel):
    """Hermann et al.'s Attentive Reader with the image's tag attention in place of the question:
    r = Σ_t s_t h_t (Eqs. 8-9 weights), g = tanh(W_rg r + W_ug ṽ), then a linear map into the tag space."""
    attends = True

    def __init__(self, embedding, out_dim, cfg):
        super().__init__(embedding, out_dim, cfg)
        self.lstm = BiLSTM(embedding.shape[1], cfg.hidden, cfg.forget_bias, cfg.chrono)
        self.attention = TagAttention(2 * cfg.hidden, embedding.shape[1], cfg.attention)
        self.W_rg = nn.Linear(2 * cfg.hidden, cfg.mlp_hidden)
        self.W_ug = nn.Linear(embedding.shape[1], cfg.mlp_hidden, bias=False)
        self.out = nn.Linear(cfg.mlp_hidden, out_dim)

    def songs(self, tokens, lengths, index):
        enc = self.lstm(self.embed(tokens), lengths)
        return {"a": self.attention.W_hm(enc["outputs"]), "mask": enc["mask"], "h": enc["outputs"]}

    def query(self, top_tags):
        v = super().query(top_tags)["v"]
        return {"b": self.attention.W_vm(v), "u": self.W_ug(v)}

    def weights(self, song, query, grid=False):
        """The attention weights over the lyric's words (sum to one over real words)."""
        return self.attention.weights(song["a"], query["b"], song["mask"], grid)

    def pairs(self, song, query, grid=False):
        r = weighted_sum(self.weights(song, query, grid), song["h"], grid)
        u = query["u"][:, None] if grid else query["u"]
        return self.out(torch.tanh(self.W_rg(r) + u))


class OurMood(Our):
    """Our with the post's mood (supplement 9.1): [l ‖ mood vector] through the MLP. The mood belongs to the
    image-song pair, so at retrieval it is the query image's mood, combined with every candidate lyric."""
    attends = True      # the prediction depends on the image (through its mood)
    uses_mood = True

    def __init__(self, embedding, out_dim, cfg):
        LyricModel.__init__(self, embedding, out_dim, cfg)
        self.lstm = BiLSTM(embedding.shape[1], cfg.hidden, cfg.forget_bias, cfg.chrono)
        self.mlp = mlp(2 * cfg.hidden + embedding.shape[1], cfg.mlp_hidden, out_dim)

    def songs(self, tokens, lengths, index):
        enc = self.lstm(self.embed(tokens), lengths)
        return {"l": enc["final"], "mask": enc["mask"]}

    def query(self, top_tags, moods=None):
        if moods is None:
            raise ValueError("Our-mood needs the images' moods (Data.moods: see with_moods)")
        return {"m": moods}

    def pairs(self, song, query, grid=False):
        # the first layer is linear, so W[l ‖ m] = W_l l + W_m m: the grid costs S + C products, not S × C
        first, n = self.mlp[0], song["l"].shape[-1]
        a = F.linear(song["l"], first.weight[:, :n], first.bias)
        b = F.linear(query["m"], first.weight[:, n:])
        return self.mlp[2](self.mlp[1](a[None] + b[:, None] if grid else a + b))


MODEL_CLASSES = {"BoW": BoW, "BoW-MLP": BoWMLP, "CONSE": CONSE, "Attentive-Reader": AttentiveReader, "Our": Our,
                 "Our-attention": OurAttention, "Our-attention-linear": OurAttentionLinear, "Our-mood": OurMood}


def build_model(method: str, data: lyricdata.Data, cfg: Config, train_songs: np.ndarray | None = None) -> LyricModel:
    """A fresh model of `method` for the data's tag group (BoW needs the training songs for its vocabulary)."""
    if method not in MODEL_CLASSES:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if cfg.pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {cfg.pooling!r}; expected one of {POOLINGS}")
    out_dim = data.targets.shape[1]
    if method == "Our-mood" and data.moods is None:
        raise ValueError("Our-mood needs data with moods: models.with_moods(data, ...)")
    if method in ("BoW", "BoW-MLP"):
        songs = np.arange(len(data.songs)) if train_songs is None else train_songs
        model = MODEL_CLASSES[method](data.embedding, out_dim, cfg, lyricdata.bow_matrix(data, songs))
    else:
        model = MODEL_CLASSES[method](data.embedding, out_dim, cfg)
    if cfg.loss == "infonce":  # the temperature is learnt with the model (stored as log of the logit scale)
        model.log_scale = nn.Parameter(torch.tensor(float(np.log(INFONCE_SCALE[0]))))
    return model
