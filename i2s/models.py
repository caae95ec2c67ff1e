"""Lyric models of Image2song (Sections 4.2-4.4) and the baselines of Section 5.1, one training loop for all,
and image→song retrieval scored over (image, song) pairs in batches.

Every model maps a lyric (and, for the attentive ones, the query image's top-K tags) into the image tag space
(Eq. 11); retrieval ranks songs by cosine similarity to the image's tag vector (Section 4.3).

- BoW: the lyric's tf-idf bag of words, a low-rank linear map into the tag space (Bai et al.'s supervised
  semantic indexing, degree 2, with the image already in the tag space).
- CONSE: the average of the lyric's word vectors, then the same MLP as Our.
- Our: BiLSTM over the lyric, l = h_fwd(final) ‖ h_bwd(first) (Section 4.2), MLP into the tag space.
- Our-attention: the image's top-K tags embedded with the same word vectors, pooled into ṽ; Eqs. 8-10
  re-weight every BiLSTM output and the final output carries the attention (see `OurAttention`).
- Attentive-Reader: the same tag attention, but the attention-weighted pooling of the outputs is the lyric
  representation, combined non-linearly with ṽ (Hermann et al.'s g = tanh(W_rg r + W_ug u)).
"""
from __future__ import annotations

import copy
import dataclasses
import time
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from . import metrics, paths, tags, text

# ---- defaults (params.yaml `lyric_model:` / `attention:` override them) ---------------------------------
METHODS = ("BoW", "CONSE", "Attentive-Reader", "Our", "Our-attention")
ATTENTIVE = ("Attentive-Reader", "Our-attention")
GROUPS = tags.GROUPS                 # obj, attr, obj-attr
SPLITS = ("dagger", "section")
LOSSES = ("mse", "cpl", "mrl", "infonce")  # Eq. 11, Eq. 12, Eq. 13; infonce: beyond the paper (symmetric, CLIP-style)
SUPPLEMENT_METHODS = ("BoW", "CONSE", "Attentive-Reader", "Our", "Our-mood", "Our-attention")  # supp. Table 1
INFONCE_SCALE = (1 / 0.07, 100.0)    # learnable logit scale 1/τ: CLIP's initial value and cap
POOLINGS = ("mean", "max")
SCORE_BUDGET = 2_000_000             # floats per attention block when scoring pairs (memory, not results)
SONG_BLOCK = 64                      # pool songs scored together, sorted by length (less padding)


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
    max_epochs: int = 40        # a cap; early stopping on validation retrieval decides (not stated)
    patience: int = 5
    forget_bias: float = 3.0    # initial forget-gate bias (not stated): PyTorch's ~0 left Our at chance on validation
    val_fraction: float = 0.1   # validation carved from train, mirroring the split (see split_indices)
    max_tokens: int = 0         # 0 = the whole preprocessed lyric

    @classmethod
    def from_params(cls, **kw) -> "Config":
        """A Config from a params section, ignoring keys that are not model settings."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in kw.items() if k in names})


# ---- data ---------------------------------------------------------------------------------------------------
@dataclass
class Data:
    """Songs and images of one tag group as tensors; images point at their song by index."""
    group: str
    songs: list[str]              # song_id per song index
    token_lists: list[list[str]]  # preprocessed lyric per song (Section 5.1)
    tokens: torch.Tensor          # S × T word ids, 0 = padding
    lengths: torch.Tensor         # S
    words: list[str]              # vocabulary (text.PAD, text.UNK, ...)
    embedding: torch.Tensor       # V × d frozen word vectors (Eq. 1)
    images: list[str]             # image file name per image index
    image_song: torch.Tensor      # I: song index of each image
    targets: torch.Tensor         # I × D image tag vectors (the group's probabilities)
    tag_words: list[str]          # D
    top_tags: torch.Tensor        # I × K vocabulary ids of each image's top-K tags
    moods: torch.Tensor | None = None  # I × d word vector of each image's mood (0 = none); see `with_moods`

    def song_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.songs)}

    def image_index(self) -> dict[str, int]:
        return {s: i for i, s in enumerate(self.images)}


def load_experiment(vectors: str = text.GLOVE) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, object]:
    """What every lyric notebook starts from: notebook 01's subset and splits, notebook 02's tag table, word vectors."""
    stats = paths.data("01_data_stats")
    subset = pd.read_csv(stats / "subset.csv", keep_default_na=False)
    return subset, pd.read_csv(stats / "splits.csv"), tags.load_tags(), text.vectors(vectors)


def build_data(subset: pd.DataFrame, tag_table: pd.DataFrame, group: str, kv, top_k: int = 5,
               max_tokens: int = 0) -> Data:
    """The experiment's songs (the subset's, sorted by id) and every tagged image of them, for one tag group."""
    lyric = subset.drop_duplicates("song_id").set_index("song_id")["lyric"].sort_index()
    songs = list(lyric.index)
    token_lists = [text.tokenize(x) for x in lyric]
    table = tag_table[tag_table["song_id"].isin(set(songs))].drop_duplicates("image").reset_index(drop=True)
    missing = set(subset["image"]) - set(table["image"])
    if missing:
        raise ValueError(f"{len(missing)} subset images have no tags (e.g. {sorted(missing)[:3]}); rerun notebook 02")
    vec, tag_words = tags.tag_matrix(table, group)
    words = text.vocabulary(token_lists, kv, extra=tag_words)
    index = {w: i for i, w in enumerate(words)}
    seqs = [text.encode(t, index, max_tokens) for t in token_lists]
    tokens = torch.zeros((len(seqs), max(map(len, seqs))), dtype=torch.long)
    for i, s in enumerate(seqs):
        tokens[i, :len(s)] = torch.from_numpy(s)
    top = tags.top_tags(vec, tag_words, top_k)
    sidx = {s: i for i, s in enumerate(songs)}
    return Data(group=group, songs=songs, token_lists=token_lists, tokens=tokens,
                lengths=torch.tensor([len(s) for s in seqs]), words=words,
                embedding=torch.from_numpy(text.embedding_matrix(words, kv)), images=list(table["image"]),
                image_song=torch.tensor([sidx[s] for s in table["song_id"]]), targets=torch.tensor(vec),
                tag_words=tag_words, top_tags=torch.tensor([[index.get(w, 1) for w in row] for row in top]))


def split_indices(data: Data, splits: pd.DataFrame, split: str, seed: int, val_fraction: float) -> dict[str, np.ndarray]:
    """Image indices of train / val / test and the song indices of the candidate pool of one split.

    dagger: test = the test songs' images, pool = the test songs; validation = all images of a random
    `val_fraction` of the training songs (unseen songs, like the test). section: test = one image per song,
    pool = all songs; validation = one training image of a random `val_fraction` of the songs (unseen images
    of seen songs, like the test). Validation images are ranked among the validation songs (`val_pool`): a
    smaller pool than the test's, so that checking every epoch stays cheap. The test side never depends on
    the seed.
    """
    img = data.image_index()
    rows = np.array([img[i] for i in splits["image"]])
    is_test = (splits[split] == "test").to_numpy()
    test, train = rows[is_test], rows[~is_test]
    song_of = data.image_song.numpy()
    rng = np.random.default_rng(seed)
    train_songs = np.unique(song_of[train])
    held = rng.choice(train_songs, max(1, int(round(val_fraction * len(train_songs)))), replace=False)
    if split == "dagger":
        val = train[np.isin(song_of[train], held)]
        pool, val_pool = np.unique(song_of[test]), np.sort(held)
    elif split == "section":
        val = np.array([rng.choice(train[song_of[train] == s]) for s in np.sort(held)], dtype=np.int64)
        pool, val_pool = np.arange(len(data.songs)), np.sort(held)
    else:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    train = np.setdiff1d(train, val)
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test), "pool": pool, "val_pool": val_pool}


def bow_matrix(data: Data, train_songs: np.ndarray) -> torch.Tensor:
    """tf-idf bags of words (L2-normalised) of every song over the training songs' vocabulary and idf."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    vec = TfidfVectorizer(analyzer=lambda toks: toks, dtype=np.float32)
    vec.fit([data.token_lists[i] for i in train_songs])
    return torch.from_numpy(vec.transform(data.token_lists).toarray())


# ---- building blocks ----------------------------------------------------------------------------------------
def reverse_index(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """B × T positions that reverse each sequence within its length and leave the padding in place."""
    t = torch.arange(steps).expand(len(lengths), steps)
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
    o_final = torch.sigmoid(o)[torch.arange(len(last)), last]
    return contrib, o_final


class BiLSTM(nn.Module):
    """A forward and a backward LSTM over padded batches; padding never reaches a real step's output.

    The backward LSTM reads each lyric reversed within its length, so both directions see their padding last
    and no packing is needed. `forward` returns the outputs (B × T × 2H, zero on padding, original order),
    l = h_fwd(final) ‖ h_bwd(first) (B × 2H), and the padding mask.
    """

    def __init__(self, dim: int, hidden: int, forget_bias: float = 0.0):
        super().__init__()
        self.fwd = nn.LSTM(dim, hidden, batch_first=True)
        self.bwd = nn.LSTM(dim, hidden, batch_first=True)
        with torch.no_grad():  # the forget gate starts open (Gers et al.; Jozefowicz et al.): memory over a long lyric
            for lstm in (self.fwd, self.bwd):
                lstm.bias_ih_l0[hidden:2 * hidden].fill_(forget_bias)
                lstm.bias_hh_l0[hidden:2 * hidden].zero_()

    def forward(self, x: torch.Tensor, lengths: torch.Tensor, memory: bool = False) -> dict:
        steps = x.shape[1]
        mask = torch.arange(steps)[None] < lengths[:, None]
        rev = reverse_index(lengths, steps)
        x_rev = _gather_steps(x, rev)
        hf, _ = self.fwd(x)
        hb_rev, _ = self.bwd(x_rev)
        last = lengths - 1
        rows = torch.arange(len(lengths))
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


# ---- models -------------------------------------------------------------------------------------------------
class LyricModel(nn.Module):
    """Shared interface. Each model's `songs(tokens, lengths, index)` encodes lyrics (image-independent),
    `query` encodes images (attentive models only), and `pairs` combines them into tag-space predictions, for
    aligned pairs or a grid of images × songs."""
    attends = False

    def __init__(self, embedding: torch.Tensor, out_dim: int, cfg: Config):
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(embedding, freeze=True, padding_idx=0)  # W_e kept (4.2)
        self.cfg = cfg

    def query(self, top_tags: torch.Tensor) -> dict:
        """The tag attention vector ṽ: the top-K tags embedded (Eq. 1) into T (K × d), then pooled."""
        t = self.embed(top_tags)
        return {"v": t.mean(1) if self.cfg.pooling == "mean" else t.max(1).values}

    def pairs(self, song: dict, query: dict | None, grid: bool = False) -> torch.Tensor:
        return song["pred"]


class BoW(LyricModel):
    """tf-idf bag of words → rank-r linear map into the tag space (degree-2 semantic indexing)."""

    def __init__(self, embedding, out_dim, cfg, bow: torch.Tensor):
        super().__init__(embedding, out_dim, cfg)
        self.register_buffer("bow", bow, persistent=False)
        self.map = nn.Sequential(nn.Linear(bow.shape[1], cfg.mlp_hidden, bias=False),
                                 nn.Linear(cfg.mlp_hidden, out_dim))

    def songs(self, tokens, lengths, index):
        return {"pred": self.map(self.bow[index])}


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
        self.lstm = BiLSTM(embedding.shape[1], cfg.hidden, cfg.forget_bias)
        self.mlp = mlp(2 * cfg.hidden, cfg.mlp_hidden, out_dim)

    def songs(self, tokens, lengths, index):
        return {"pred": self.mlp(self.lstm(self.embed(tokens), lengths)["final"])}


class OurAttention(LyricModel):
    """Our with tag attention (Eqs. 8-10): the final output carries the attention.

    Eqs. 8-9 weigh every BiLSTM output h_t by s_t (softmax over the real steps) given the image's ṽ, and Eq. 10
    re-weights it; the re-weighted step then flows to the final output through the LSTM's memory:
    C̃_final = Σ_t n·s_t (Π_{τ>t} f_τ) i_t C̃_t, h̃_final = o_final ⊙ tanh(C̃_final), per direction, and
    l̃ = h̃_fwd(final) ‖ h̃_bwd(first) goes through the MLP. Eq. 9 fixes s_t only up to a constant (∝); we take
    n (the lyric's length), so uniform attention gives back exactly Our's l. The gates are those of the lyric
    without attention, which makes l̃ linear in s: all image-song pairs are scored in batches from one pass per
    song, instead of one LSTM pass per pair.
    """
    attends = True

    def __init__(self, embedding, out_dim, cfg):
        super().__init__(embedding, out_dim, cfg)
        self.lstm = BiLSTM(embedding.shape[1], cfg.hidden, cfg.forget_bias)
        self.attention = TagAttention(2 * cfg.hidden, embedding.shape[1], cfg.attention)
        self.mlp = mlp(2 * cfg.hidden, cfg.mlp_hidden, out_dim)

    def songs(self, tokens, lengths, index):
        enc = self.lstm(self.embed(tokens), lengths, memory=True)
        n = lengths[:, None, None].to(enc["outputs"].dtype)
        return {"a": self.attention.W_hm(enc["outputs"]), "mask": enc["mask"], "cf": enc["contrib_fwd"] * n,
                "cb": enc["contrib_bwd"] * n, "of": enc["o_fwd"], "ob": enc["o_bwd"]}

    def query(self, top_tags):
        return {"b": self.attention.W_vm(super().query(top_tags)["v"])}

    def weights(self, song: dict, query: dict, grid: bool = False) -> torch.Tensor:
        """The attention weights s_t of Eq. 9 (sum to one over each lyric's real words)."""
        return self.attention.weights(song["a"], query["b"], song["mask"], grid)

    def pairs(self, song, query, grid=False):
        s = self.weights(song, query, grid)
        l_f = song["of"] * torch.tanh(weighted_sum(s, song["cf"], grid))
        l_b = song["ob"] * torch.tanh(weighted_sum(s, song["cb"], grid))
        return self.mlp(torch.cat([l_f, l_b], -1))


class AttentiveReader(LyricModel):
    """Hermann et al.'s Attentive Reader with the image's tag attention in place of the question:
    r = Σ_t s_t h_t (Eqs. 8-9 weights), g = tanh(W_rg r + W_ug ṽ), then a linear map into the tag space."""
    attends = True

    def __init__(self, embedding, out_dim, cfg):
        super().__init__(embedding, out_dim, cfg)
        self.lstm = BiLSTM(embedding.shape[1], cfg.hidden, cfg.forget_bias)
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
        self.lstm = BiLSTM(embedding.shape[1], cfg.hidden, cfg.forget_bias)
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


MODEL_CLASSES = {"BoW": BoW, "CONSE": CONSE, "Attentive-Reader": AttentiveReader, "Our": Our,
                 "Our-attention": OurAttention, "Our-mood": OurMood}


def build_model(method: str, data: Data, cfg: Config, train_songs: np.ndarray | None = None) -> LyricModel:
    """A fresh model of `method` for the data's tag group (BoW needs the training songs for its vocabulary)."""
    if method not in MODEL_CLASSES:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    if cfg.pooling not in POOLINGS:
        raise ValueError(f"unknown pooling {cfg.pooling!r}; expected one of {POOLINGS}")
    out_dim = data.targets.shape[1]
    if method == "Our-mood" and data.moods is None:
        raise ValueError("Our-mood needs data with moods: models.with_moods(data, ...)")
    if method == "BoW":
        songs = np.arange(len(data.songs)) if train_songs is None else train_songs
        model = BoW(data.embedding, out_dim, cfg, bow_matrix(data, songs))
    else:
        model = MODEL_CLASSES[method](data.embedding, out_dim, cfg)
    if cfg.loss == "infonce":  # the temperature is learnt with the model (stored as log of the logit scale)
        model.log_scale = nn.Parameter(torch.tensor(float(np.log(INFONCE_SCALE[0]))))
    return model


# ---- losses and prediction --------------------------------------------------------------------------------------
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
    raise ValueError(f"unknown loss {name!r}; expected one of {LOSSES}")


def infonce(cos: torch.Tensor, positive: torch.Tensor, log_scale: torch.Tensor) -> torch.Tensor:
    """Symmetric InfoNCE over a batch (beyond the paper): cos = images × the batch's distinct songs.

    Image → lyric: cross-entropy over the songs. Lyric → image: each (song, image) pair against the song's
    non-matching images; the song's other images are left out of that denominator, since a batch holds
    several images per song. The logit scale (1/τ) is learnt, capped as in CLIP."""
    logits = cos * log_scale.clamp(max=float(np.log(INFONCE_SCALE[1]))).exp()
    rows = torch.arange(len(positive))
    i2t = F.cross_entropy(logits, positive)
    same = positive[:, None] == positive[None]                     # images × images sharing a song
    col = logits[:, positive].T                                   # [k, j] = logit of image j with pair k's song
    col = col.masked_fill(same & ~torch.eye(len(positive), dtype=torch.bool), float("-inf"))
    t2i = -(col[rows, rows] - torch.logsumexp(col, 1))
    return (i2t + t2i.mean()) / 2


def image_query(model: LyricModel, data: Data, images) -> dict:
    """The image side of an image-dependent model: its top-K tags, and the mood for models that use it."""
    idx = torch.as_tensor(np.asarray(images), dtype=torch.long)
    if getattr(model, "uses_mood", False):
        return model.query(data.top_tags[idx], None if data.moods is None else data.moods[idx])
    return model.query(data.top_tags[idx])


def predict_grid(model: LyricModel, data: Data, images: np.ndarray, songs: np.ndarray) -> torch.Tensor:
    """Tag-space predictions of every image with every one of some distinct songs: images × songs × D."""
    st = encode_songs(model, data, np.asarray(songs))
    if not model.attends:
        pred = model.pairs(st, None)
        return pred[None].expand(len(images), *pred.shape)
    return model.pairs(st, image_query(model, data, images), grid=True)


def encode_songs(model: LyricModel, data: Data, songs: np.ndarray) -> dict:
    """Song-side state of some songs (trimmed to their longest lyric)."""
    idx = torch.as_tensor(songs, dtype=torch.long)
    lengths = data.lengths[idx]
    return model.songs(data.tokens[idx, :int(lengths.max())], lengths, idx)


def predict_pairs(model: LyricModel, data: Data, images: np.ndarray, songs: np.ndarray) -> torch.Tensor:
    """Tag-space predictions for aligned (image, song) pairs; each distinct song is encoded once."""
    uniq, pos = np.unique(songs, return_inverse=True)
    st = encode_songs(model, data, uniq)
    pos = torch.as_tensor(pos)
    if not model.attends:
        return model.pairs(st, None)[pos]
    q = image_query(model, data, images)
    return model.pairs({k: v[pos] for k, v in st.items()}, q)


@torch.no_grad()
def score(model: LyricModel, data: Data, images: np.ndarray, songs: np.ndarray, budget: int = SCORE_BUDGET) -> np.ndarray:
    """Cosine similarity of every image (rows) with every song's lyric (columns) in the tag space.

    For the attentive models the lyric depends on the image: songs are encoded once, in blocks sorted by
    length, and every image × song pair of a block is scored in one batched call (chunks of images bound
    the memory).
    """
    model.eval()
    images, songs = np.asarray(images), np.asarray(songs)
    v = F.normalize(data.targets[torch.as_tensor(images)], dim=-1)
    out = torch.empty(len(images), len(songs))
    if not model.attends:
        pred = torch.cat([model.pairs(encode_songs(model, data, songs[s:s + 256]), None)
                          for s in range(0, len(songs), 256)])
        return (v @ F.normalize(pred, dim=-1).T).numpy()
    q = image_query(model, data, images)
    order = np.argsort(data.lengths[torch.as_tensor(songs)].numpy(), kind="stable")
    for s in range(0, len(songs), SONG_BLOCK):
        cols = order[s:s + SONG_BLOCK]
        st = encode_songs(model, data, songs[cols])
        steps = st["mask"].shape[1]
        chunk = max(1, budget // (len(cols) * steps * max(model.cfg.attention, model.cfg.hidden * 2)))
        for c in range(0, len(images), chunk):
            qc = {k: x[c:c + chunk] for k, x in q.items()}
            pred = model.pairs(st, qc, grid=True)  # C × S × D
            out[c:c + chunk, torch.as_tensor(cols)] = torch.einsum("csd,cd->cs", F.normalize(pred, dim=-1),
                                                                   v[c:c + chunk])
    return out.numpy()


# ---- training -----------------------------------------------------------------------------------------------
def song_batches(images: np.ndarray, data: Data, batch_pairs: int, rng: np.random.Generator | None,
                 bucket: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """Mini-batches of about `batch_pairs` (image, song) pairs, built from whole songs: a song's training
    images share its batch, so each lyric is encoded once per batch (the gradient of those pairs is
    unchanged). With `rng`, songs are shuffled, sorted by length within buckets of `bucket` batches (less
    padding), and the batch order shuffled; without, the order is fixed (validation)."""
    song_of = data.image_song.numpy()[images]
    songs = np.unique(song_of)
    per_batch = max(1, int(round(batch_pairs * len(songs) / max(len(images), 1))))
    if rng is not None:
        songs = rng.permutation(songs)
        lengths = data.lengths.numpy()
        span = per_batch * bucket
        songs = np.concatenate([c[np.argsort(lengths[c], kind="stable")] for c in
                                (songs[i:i + span] for i in range(0, len(songs), span))])
    groups = [songs[i:i + per_batch] for i in range(0, len(songs), per_batch)]
    if rng is not None:
        groups = [groups[i] for i in rng.permutation(len(groups))]
    return [(images[np.isin(song_of, g)], song_of[np.isin(song_of, g)]) for g in groups]


def _batch_loss(model, data, images, songs, cfg, rng) -> torch.Tensor:
    target = data.targets[torch.as_tensor(images)]
    if cfg.loss == "infonce":  # every image of the batch against every song of the batch
        uniq, positive = np.unique(songs, return_inverse=True)
        return loss_value("infonce", predict_grid(model, data, images, uniq), target,
                          positive=torch.as_tensor(positive), log_scale=model.log_scale)
    pred = predict_pairs(model, data, images, songs)
    neg = None
    if cfg.loss == "mrl":  # Eq. 13: a random other lyric; the batch's songs are a random draw of the training songs
        uniq = np.unique(songs)
        neg_songs = np.array([rng.choice(uniq[uniq != s]) if len(uniq) > 1 else s for s in songs])
        neg = predict_pairs(model, data, images, neg_songs)
    return loss_value(cfg.loss, pred, target, neg, cfg.margin)


def pool_ranks(model: LyricModel, data: Data, images: np.ndarray, pool: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Ranks of each query image's song within a pool of songs, and the score matrix."""
    s = score(model, data, images, pool)
    col = {song: j for j, song in enumerate(pool)}
    truth = np.array([col[x] for x in data.image_song.numpy()[np.asarray(images)]])
    return metrics.ranks(s, truth), s


def train(model: LyricModel, data: Data, train_images: np.ndarray, val_images: np.ndarray, val_pool: np.ndarray,
          cfg: Config, seed: int = 0, desc: str | None = None) -> pd.DataFrame:
    """RMSprop (Section 4.4) on mini-batches of pairs, with early stopping on validation retrieval.

    After each epoch the validation images are ranked against `val_pool`; the criterion is their mean rank
    as a percentage of the pool (lower is better; the loss itself barely moves while retrieval improves, since
    cosine ranking ignores the scale the loss is dominated by). Training stops after `patience` epochs without
    improvement and the model ends at its best epoch. Returns the curve, one row per epoch.
    """
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    val_rng_seed = seed + 1_000_003  # fixed negatives for a comparable validation MRL across epochs
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.RMSprop(params, lr=cfg.lr, alpha=cfg.rho, eps=cfg.eps)
    val_batches = song_batches(val_images, data, cfg.batch_pairs, None)
    best, best_state, waited, rows = float("inf"), None, 0, []
    t0 = time.perf_counter()
    bar = tqdm(range(1, cfg.max_epochs + 1), desc=desc, mininterval=5, disable=desc is None)
    for epoch in bar:
        model.train()
        total, n, lyrics, t_ep = 0.0, 0, 0, time.perf_counter()
        for images, songs in song_batches(train_images, data, cfg.batch_pairs, rng):
            loss = _batch_loss(model, data, images, songs, cfg, rng)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total, n, lyrics = total + loss.item() * len(images), n + len(images), lyrics + len(np.unique(songs))
        train_s = time.perf_counter() - t_ep
        model.eval()
        vrng = np.random.default_rng(val_rng_seed)
        with torch.no_grad():
            vl = sum(_batch_loss(model, data, i, s, cfg, vrng).item() * len(i) for i, s in val_batches)
        r, _ = pool_ranks(model, data, val_images, val_pool)
        crit = float(100 * np.mean(r) / len(val_pool))
        rows.append({"epoch": epoch, "train_loss": total / max(n, 1), "val_loss": vl / max(len(val_images), 1),
                     "val_mean_rank_pct": crit, "val_median_rank": metrics.median_rank(r),
                     "lyrics_per_s": lyrics / train_s, "seconds": time.perf_counter() - t0})
        if crit < best - 1e-9:
            best, best_state, waited = crit, copy.deepcopy(model.state_dict()), 0
        else:
            waited += 1
            if waited >= cfg.patience:
                break
    if best_state is not None:
        model.load_state_dict(best_state)
    model.eval()
    hist = pd.DataFrame(rows)
    hist["best"] = hist["epoch"] == int(hist.loc[hist["val_mean_rank_pct"].idxmin(), "epoch"])
    return hist


# ---- experiments ------------------------------------------------------------------------------------------------
def run(method: str, data: Data, splits: pd.DataFrame, split: str, seed: int, cfg: Config,
        extra: dict[str, tuple[np.ndarray, np.ndarray]] | None = None, keep_model: bool = False,
        threads: int | None = None, test: bool = True) -> dict:
    """Train one method on one split with one seed; the test ranks of every query and its top-3 songs.

    `extra`: further named (query images, candidate songs) sets to rank after training (e.g. Figure 7's songs).
    `test=False` skips the split's own test set (when only the `extra` sets are reported, e.g. the supplement).
    """
    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    idx = split_indices(data, splits, split, seed, cfg.val_fraction)
    torch.manual_seed(seed)
    model = build_model(method, data, cfg, np.unique(data.image_song.numpy()[idx["train"]]))
    hist = train(model, data, idx["train"], idx["val"], idx["val_pool"], cfg, seed)
    t_train = time.perf_counter() - t0
    out = {"method": method, "group": data.group, "split": split, "seed": seed, "history": hist,
           "train_s": t_train, "epochs": int(hist["epoch"].max()), "best_epoch": int(hist.loc[hist["best"], "epoch"].iloc[0])}
    sets = {**({"test": (idx["test"], idx["pool"])} if test else {}), **(extra or {})}
    t1 = time.perf_counter()
    for name, (images, pool) in sets.items():
        r, s = pool_ranks(model, data, images, pool)
        out[name] = {"images": np.asarray(images), "ranks": r,
                     "top3": np.asarray(pool)[np.argsort(-s, axis=1, kind="stable")[:, :3]]}
    out["score_s"] = time.perf_counter() - t1
    out["test_pairs"] = len(idx["test"]) * len(idx["pool"]) if test else 0
    if keep_model:
        out["model"] = model
    return out


def run_grid(jobs: list[dict], datas: dict[str, Data], splits: pd.DataFrame, cfg: Config, n_jobs: int = 1,
             threads: int = 1, extra: dict[str, dict] | None = None, desc: str = "runs") -> list[dict]:
    """Many `run`s ({method, group, split, seed[, keep_model, test]} each), in `n_jobs` processes of `threads` torch
    threads. `extra[split]`: the `extra` sets of that split's runs (the groups share image and song indices).
    Every run seeds itself, so the results do not depend on n_jobs or on the order in which runs finish."""
    from joblib import Parallel, delayed
    extra = extra or {}
    calls = [delayed(run)(j["method"], datas[j["group"]], splits, j["split"], j["seed"], cfg, extra.get(j["split"]),
                          j.get("keep_model", False), threads, j.get("test", True)) for j in jobs]
    if n_jobs == 1:
        torch.set_num_threads(threads)
        return [c[0](*c[1], **c[2]) for c in tqdm(calls, desc=desc, mininterval=5)]
    gen = Parallel(n_jobs=n_jobs, return_as="generator")(calls)
    return list(tqdm(gen, total=len(calls), desc=desc, mininterval=5))


def results_frame(results: list[dict], part: str = "test") -> pd.DataFrame:
    """One row per run: method, group, split, seed and every Table 2 metric of its split."""
    rows = []
    for r in results:
        m = metrics.summary(r[part]["ranks"], metrics.SPLIT_METRICS[r["split"]])
        rows.append({k: r[k] for k in ("method", "group", "split", "seed", "epochs", "best_epoch", "train_s", "score_s")} | m)
    return pd.DataFrame(rows)


def query_ranks(results: list[dict], method: str, group: str, split: str, part: str = "test") -> np.ndarray:
    """Seeds × queries ranks of one configuration (queries in a fixed order, for paired comparisons)."""
    rs = sorted((r for r in results if (r["method"], r["group"], r["split"]) == (method, group, split)),
                key=lambda r: r["seed"])
    if not rs:
        raise ValueError(f"no runs of {method} / {group} / {split}")
    if any(not np.array_equal(r[part]["images"], rs[0][part]["images"]) for r in rs):
        raise ValueError("seeds must share their queries")
    return np.stack([r[part]["ranks"] for r in rs])


# ---- tables beside the paper ------------------------------------------------------------------------------------
def table2(runs: pd.DataFrame, paper: pd.DataFrame, split: str, ours_label: str) -> pd.DataFrame:
    """Table 2 for one split, long form: method, tags, metric, ours mean and std over seeds, paper, difference."""
    names = list(metrics.SPLIT_METRICS[split])
    sub = runs[runs["split"] == split]
    agg = sub.groupby(["method", "group"])[names].agg(["mean", "std"])
    p = paper[(paper["table"] == "image2song Table 2") & (paper["split"] == split)].set_index(["method", "tags", "metric"])["value"]
    rows = []
    for method in METHODS:
        for group in GROUPS:
            if (method, group) not in agg.index:
                continue
            for name in names:
                mean, std = agg.loc[(method, group), (name, "mean")], agg.loc[(method, group), (name, "std")]
                pv = float(p.get((method, group, name), np.nan))
                rows.append({"method": method, "tags": group, "metric": name, ours_label: mean, "std": std,
                             "paper": pv, "difference": mean - pv})
    return pd.DataFrame(rows)


def table2_wide(long: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """Table 2's layout: one row per method, per tag group and metric 'ours ± std (paper)'."""
    cell = long.apply(lambda r: f"{r[ours_label]:.2f} ± {r['std']:.2f} ({r['paper']:g})", axis=1)
    wide = long.assign(cell=cell).pivot_table(index="method", columns=["tags", "metric"], values="cell", aggfunc="first")
    metric_order = list(dict.fromkeys(long["metric"]))
    wide = wide.reindex(columns=pd.MultiIndex.from_product([[g for g in GROUPS if g in set(long["tags"])], metric_order]))
    return wide.reindex([m for m in METHODS if m in wide.index])


def per_song_recall(results: list[dict], data: Data, method: str, group: str, split: str, part: str,
                    k: int = 3) -> pd.Series:
    """R@k per song over its query images in `part`, averaged over seeds (Figures 7-8)."""
    rs = [r for r in results if (r["method"], r["group"], r["split"]) == (method, group, split)]
    per_seed = [metrics.per_item_recall(r[part]["ranks"], data.image_song.numpy()[r[part]["images"]], k) for r in rs]
    out = pd.concat(per_seed, axis=1).mean(axis=1)
    out.index = [data.songs[i] for i in out.index]
    return out


def bootstrap_table(results: list[dict], a: str = "Our-attention", b: str = "Our", samples: int = 10_000,
                    seed: int = 0) -> pd.DataFrame:
    """Paired bootstrap over test queries of a − b for every split, tag group and Table 2 metric."""
    rows = []
    for split in SPLITS:
        for group in GROUPS:
            try:
                ra, rb = query_ranks(results, a, group, split), query_ranks(results, b, group, split)
            except ValueError:  # a configuration that was not run
                continue
            for name in metrics.SPLIT_METRICS[split]:
                rows.append({"split": split, "tags": group, "metric": name,
                             **metrics.paired_bootstrap(ra, rb, name, samples, seed)})
    return pd.DataFrame(rows)


CLAIMS = (  # Section 5.2's findings as comparisons between cells of Table 2: (key, finding, better, worse)
    ("attention_helps", "Our-attention beats Our (attention helps)", ("method", "Our-attention"), ("method", "Our")),
    ("final_beats_pooling", "Our-attention beats Attentive-Reader (final output, not attentive pooling)",
     ("method", "Our-attention"), ("method", "Attentive-Reader")),
    ("lstm_beats_conse", "Our beats CONSE (the LSTM beats pooled word vectors)", ("method", "Our"), ("method", "CONSE")),
    ("lstm_beats_bow", "Our beats BoW (the LSTM beats the bag of words)", ("method", "Our"), ("method", "BoW")),
    ("obj_beats_attr", "object tags beat attribute tags", ("tags", "obj"), ("tags", "attr")),
    ("objattr_beats_obj", "obj-attr tags beat object tags", ("tags", "obj-attr"), ("tags", "obj")),
)


def claims(long: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """For each finding of Section 5.2, in how many comparable cells of Table 2 it holds, ours and the paper's.

    `long`: both splits of `table2` stacked with a `split` column. A cell holds when the better side has the
    higher R@K (or the lower Med r); equal values do not count as holding.
    """
    rows = []
    for key, claim, (axis, good), (_, bad) in CLAIMS:
        keys = [c for c in ("split", "method", "tags", "metric") if c != axis]
        g = long[long[axis] == good].set_index(keys)
        b = long[long[axis] == bad].set_index(keys)
        both = g.join(b, lsuffix="_good", rsuffix="_bad", how="inner")
        sign = np.where(both.index.get_level_values("metric") == "Med r", -1, 1)
        out = {"key": key, "finding": claim, "cells": len(both)}
        for col, name in ((ours_label, "holds (ours)"), ("paper", "holds (paper)")):
            out[name] = int((sign * (both[f"{col}_good"] - both[f"{col}_bad"]) > 0).sum())
        rows.append(out)
    return pd.DataFrame(rows)


def example_queries(result: dict, data: Data, subset: pd.DataFrame, tag_table: pd.DataFrame, n: int = 4) -> list[dict]:
    """Figure 6's rows: n test queries of one run (half where the true song is in the top 3, if there are any),
    with their predicted object and attribute tags and the titles of the top-3 songs."""
    part = result["test"]
    hit = np.array([data.image_song[i].item() in top for i, top in zip(part["images"], part["top3"])])
    order = list(np.flatnonzero(hit)[: (n + 1) // 2]) + list(np.flatnonzero(~hit))
    order = order[:n]
    title = subset.drop_duplicates("song_id").set_index("song_id")["title"]
    t = tag_table.set_index("image")
    path = subset.set_index("image")["image_path"]
    rows = []
    for q in order:
        im = int(part["images"][q])
        true = data.image_song[im].item()
        rows.append({"image_path": path[data.images[im]], "obj": t.loc[data.images[im], "top_obj"],
                     "attr": t.loc[data.images[im], "top_attr"], "true": title[data.songs[true]],
                     "top3": [(title[data.songs[s]], s == true) for s in part["top3"][q]]})
    return rows


# ---- song2image (Section 5.3, Table 3) ---------------------------------------------------------------------------
SONG2IMAGE_METRICS = ("R@1", "R@5", "R@10", "R@20", "Med r")


def schwarz_scores(data: Data, songs: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Schwarz et al.'s lyric → image relevance, nothing learnt: the pooled (average) word vector of the lyric
    against the pooled word vector of the image's top-K tag words, by cosine (songs × images)."""
    emb = data.embedding
    s, i = torch.as_tensor(np.asarray(songs)), torch.as_tensor(np.asarray(images))
    lyric = emb[data.tokens[s]].sum(1)      # padding and words without a vector embed to 0; cosine ignores the 1/n
    image = emb[data.top_tags[i]].sum(1)
    return (F.normalize(lyric, dim=-1) @ F.normalize(image, dim=-1).T).numpy()


def song2image_ranks(scores: np.ndarray, data: Data, songs: np.ndarray, images: np.ndarray) -> np.ndarray:
    """Rank of each song query's best-ranked own image among `images` (scores: songs × images; Med r is the
    rank of the closest correct item, Section 5.1)."""
    relevant = data.image_song.numpy()[np.asarray(images)][None] == np.asarray(songs)[:, None]
    return metrics.first_relevant_ranks(scores, relevant)


def song2image_top(scores: np.ndarray, images: np.ndarray, n: int = 4) -> np.ndarray:
    """The n highest-scored images (indices into the data) of each song query."""
    return np.asarray(images)[np.argsort(-scores, axis=1, kind="stable")[:, :n]]


# ---- supplementary experiments (supplement 9: the songs with more than 50 triplets) -------------------------------
VARIANT_STAGE = "07_variants"
SUPPLEMENT_SPLIT = "section"   # the frequent songs' lyrics are trained on; their held-out images are the queries


def frequent_songs(data: Data, triplets: pd.DataFrame, more_than: int = 50) -> np.ndarray:
    """Song indices of the data's songs with more than `more_than` triplets in the refined data."""
    counts = triplets["song_id"].value_counts()
    sidx = data.song_index()
    return np.array(sorted(sidx[s] for s, n in counts.items() if n > more_than and s in sidx), dtype=np.int64)


def held_out_queries(data: Data, splits: pd.DataFrame, songs: np.ndarray, split: str = SUPPLEMENT_SPLIT) -> np.ndarray:
    """Every tagged image of `songs` that no model of `split` trains on: the split's test images, plus any
    image outside the experiment's subset that notebook 02 tagged."""
    trained = set(splits.loc[splits[split] == "train", "image"])
    mine = np.flatnonzero(np.isin(data.image_song.numpy(), np.asarray(songs)))
    return np.array([i for i in mine if data.images[i] not in trained], dtype=np.int64)


def with_moods(data: Data, moods: pd.Series, kv) -> Data:
    """A copy of `data` whose images carry their post's mood (`moods`: image → text, '' = none) as the average
    word vector of its words; zero when the post has no mood or none of its words has a vector."""
    vecs = np.zeros((len(data.images), data.embedding.shape[1]), np.float32)
    for i, im in enumerate(data.images):
        words = [w for w in text.tokenize(str(moods.get(im, ""))) if w in kv.key_to_index]
        if words:
            vecs[i] = np.mean([kv[w] for w in words], axis=0)
    return dataclasses.replace(data, moods=torch.from_numpy(vecs))


def variant_config(params: dict, variant: dict) -> Config:
    """The Config of one supplementary variant: lyric_model's training, attention's width, top-K and pooling,
    then the variant's own settings (e.g. pooling: max, loss: cpl)."""
    att = {k: params["attention"][k] for k in ("attention", "top_k", "pooling")}
    return Config.from_params(**{**params["lyric_model"], **att, **variant})


def run_variant(name: str, params_path: str = "params.yaml") -> pd.DataFrame:
    """Stage 07_variants@<name>: train one variant of `supplementary.variants` (its methods × groups × seeds) on
    the section split and rank the frequent songs' held-out images among those songs. Writes runs.csv (one row
    per run, supplement metrics), ranks.csv (one row per query and run) and history.csv to data/07_variants/<name>/,
    and the mean metrics to metrics/07_variants_<name>.json."""
    import yaml
    params = yaml.safe_load(paths.resolve(params_path).read_text())
    sup = params["supplementary"]
    variant = dict(sup["variants"][name])
    methods, groups = variant.pop("methods"), variant.pop("groups")
    cfg = variant_config(params, variant)
    threads = int(params["lyric_model"]["threads"])
    torch.set_num_threads(threads)
    d01 = paths.data("01_data_stats")
    subset = pd.read_csv(d01 / "subset.csv", keep_default_na=False)
    splits = pd.read_csv(d01 / "splits.csv")
    triplets = pd.read_csv(d01 / "triplets.csv", keep_default_na=False)
    tag_table = tags.load_tags()
    kv = text.vectors(params["lyric_model"]["vectors"])
    datas = {g: build_data(subset, tag_table, g, kv, cfg.top_k, cfg.max_tokens) for g in groups}
    if "Our-mood" in methods:
        mood = triplets.drop_duplicates("image").set_index("image")["mood"]
        datas = {g: with_moods(d, mood, kv) for g, d in datas.items()}
    d0 = next(iter(datas.values()))
    pool = frequent_songs(d0, triplets, int(sup["more_than"]))
    queries = held_out_queries(d0, splits, pool)
    if len(pool) < 2 or not len(queries):
        raise ValueError(f"{len(pool)} songs with more than {sup['more_than']} triplets and {len(queries)} queries: "
                         "too few for the supplement's protocol (lower supplementary.more_than)")
    jobs = [{"method": m, "group": g, "split": SUPPLEMENT_SPLIT, "seed": int(sup["seed"]) + k, "test": False}
            for m in methods for g in groups for k in range(int(sup["seeds"]))]
    results = run_grid(jobs, datas, splits, cfg, int(sup["n_jobs"]), threads,
                       {SUPPLEMENT_SPLIT: {"frequent": (queries, pool)}}, f"variant {name}")
    runs = results_frame(results, "frequent").drop(columns=list(metrics.SPLIT_METRICS[SUPPLEMENT_SPLIT]))
    names = sorted({n for t in SUPPLEMENT_TABLES.values() for n in t[1]}, key=lambda n: (n == "Med r", len(n), n))
    runs = pd.concat([runs, pd.DataFrame([metrics.summary(r["frequent"]["ranks"], names) for r in results])], axis=1)
    runs = runs.assign(variant=name, pooling=cfg.pooling, loss=cfg.loss, queries=len(queries), pool=len(pool))
    song_of = d0.image_song.numpy()
    ranks = pd.concat([pd.DataFrame({"method": r["method"], "group": r["group"], "seed": r["seed"],
                                     "image": [d0.images[i] for i in r["frequent"]["images"]],
                                     "song_id": [d0.songs[song_of[i]] for i in r["frequent"]["images"]],
                                     "rank": r["frequent"]["ranks"]}) for r in results], ignore_index=True)
    hist = pd.concat([r["history"].assign(method=r["method"], group=r["group"], seed=r["seed"]) for r in results],
                     ignore_index=True)
    out = paths.data(VARIANT_STAGE) / name
    out.mkdir(parents=True, exist_ok=True)
    runs.to_csv(out / "runs.csv", index=False)
    ranks.to_csv(out / "ranks.csv", index=False)
    hist.to_csv(out / "history.csv", index=False)
    from . import report
    flat = {f"{m}/{g}/{n}/mean": float(f[n].mean()) for (m, g), f in runs.groupby(["method", "group"]) for n in names}
    report.save_metrics(f"{VARIANT_STAGE}_{name}", {**flat, "runs": len(runs), "queries": len(queries), "pool": len(pool),
                                                     "train_s_total": float(runs["train_s"].sum())})
    return runs


# supplement tables: the paper's table name and metrics, and our label for each (variant, method) row
SUPPLEMENT_TABLES = {
    "mood": ("supplement Table 1 (mood)", ("R@1", "R@5", "R@10", "Med r")),
    "pooling": ("supplement Table 2 (pooling)", ("R@1", "R@3", "R@5", "R@10", "Med r")),
    "loss": ("supplement Table 4 (loss)", ("R@1", "R@3", "R@5", "R@10", "Med r")),
}


def load_variants(names, folder=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The runs and per-query ranks of the variant stages `names` (data/07_variants/<name>/)."""
    folder = folder or paths.data(VARIANT_STAGE)
    runs = pd.concat([pd.read_csv(folder / n / "runs.csv") for n in names], ignore_index=True)
    ranks = pd.concat([pd.read_csv(folder / n / "ranks.csv").assign(variant=n) for n in names], ignore_index=True)
    return runs, ranks


def variant_bootstrap(ranks: pd.DataFrame, a: tuple[str, str], b: tuple[str, str], group: str = "obj-attr",
                      names=("R@1", "R@5", "R@10", "Med r"), samples: int = 10_000, seed: int = 0) -> list[dict]:
    """Paired bootstrap of a − b over the queries both share; a, b = (variant, method) rows of `load_variants`'
    ranks, seeds averaged within each resample (see metrics.paired_bootstrap)."""
    def mat(variant, method):
        r = ranks[(ranks["variant"] == variant) & (ranks["method"] == method) & (ranks["group"] == group)]
        return r.pivot_table(index="seed", columns="image", values="rank").sort_index(axis=1)
    ma, mb = mat(*a), mat(*b)
    if list(ma.columns) != list(mb.columns):
        raise ValueError(f"{a} and {b} do not share their queries")
    return [{"a": a[1], "b": b[1], "tags": group, "metric": n,
             **metrics.paired_bootstrap(ma.to_numpy(), mb.to_numpy(), n, samples, seed)} for n in names]


def beside_paper(runs: pd.DataFrame, paper: pd.DataFrame, table: str, names, ours_label: str,
                 recall_scale: float = 1.0) -> pd.DataFrame:
    """Long table: one row per (method, tags, metric) of `runs` (columns method, group and one per metric, a row
    per seed) with ours mean and std over seeds, the paper's value in `table` (NaN where it has none) and the
    difference. `recall_scale` multiplies the paper's R@K (Table 3 prints fractions; ours are percent)."""
    p = paper[paper["table"] == table].set_index(["method", "tags", "metric"])["value"]
    agg = runs.groupby(["method", "group"], sort=False)[list(names)].agg(["mean", "std"])
    rows = []
    for (method, group) in agg.index:
        for name in names:
            mean, std = agg.loc[(method, group), (name, "mean")], agg.loc[(method, group), (name, "std")]
            pv = float(p.get((method, group, name), np.nan)) * (recall_scale if name.startswith("R@") else 1.0)
            rows.append({"method": method, "tags": group, "metric": name, ours_label: mean,
                         "std": 0.0 if np.isnan(std) else std, "paper": pv, "difference": mean - pv})
    return pd.DataFrame(rows)


def beside_paper_wide(long: pd.DataFrame, ours_label: str) -> pd.DataFrame:
    """One row per method, per tag group and metric 'ours ± std (paper)' ('(—)' where the paper has no value)."""
    cell = long.apply(lambda r: f"{r[ours_label]:.2f} ± {r['std']:.2f} "
                                f"({'—' if np.isnan(r['paper']) else format(r['paper'], 'g')})", axis=1)
    wide = long.assign(cell=cell).pivot_table(index="method", columns=["tags", "metric"], values="cell",
                                              aggfunc="first", sort=False)
    cols = pd.MultiIndex.from_product([list(dict.fromkeys(long["tags"])), list(dict.fromkeys(long["metric"]))])
    return wide.reindex(index=list(dict.fromkeys(long["method"])), columns=cols)


def agreement(long: pd.DataFrame, ours_label: str, better: str, worse: str) -> dict:
    """In how many metrics `better` beats `worse` (same tags), ours and the paper's (R@K higher, Med r lower;
    ties do not count); metrics where the paper has no value are left out of both counts."""
    a = long[long["method"] == better].set_index(["tags", "metric"])
    b = long[long["method"] == worse].set_index(["tags", "metric"])
    both = a.merge(b, left_index=True, right_index=True, suffixes=("_a", "_b"))
    both = both[both["paper_a"].notna() & both["paper_b"].notna()]
    sign = np.where(both.index.get_level_values("metric") == "Med r", -1, 1)
    return {"cells": len(both), "ours": int((sign * (both[f"{ours_label}_a"] - both[f"{ours_label}_b"]) > 0).sum()),
            "paper": int((sign * (both["paper_a"] - both["paper_b"]) > 0).sum())}


# ---- inspection and figures -------------------------------------------------------------------------------------
@torch.no_grad()
def lyric_tags(model: LyricModel, data: Data, songs: np.ndarray, k: int = 5, relative: bool = False) -> list[list[str]]:
    """The k tags each lyric maps to (image-free models): its highest predicted probabilities, or with
    `relative` those furthest above the average prediction over `songs` (what sets the lyric apart)."""
    pred = model.pairs(encode_songs(model.eval(), data, np.asarray(songs)), None).numpy()
    return tags.top_tags(pred - pred.mean(0) if relative else pred, data.tag_words, k)


@torch.no_grad()
def attention_weights(model: LyricModel, data: Data, images, songs) -> list[np.ndarray]:
    """The attention weight of every word of each song's lyric given its image (aligned pairs; an attentive
    model); each distinct song is encoded once."""
    images, songs = np.atleast_1d(images), np.atleast_1d(songs)
    uniq, pos = np.unique(songs, return_inverse=True)
    st = encode_songs(model.eval(), data, uniq)
    s = model.weights({k: v[torch.as_tensor(pos)] for k, v in st.items()}, model.query(data.top_tags[torch.as_tensor(images)]))
    return [s[p, :int(data.lengths[song])].numpy() for p, song in enumerate(songs)]


def attention_text(words: list[str], weights: np.ndarray, per_line: int = 12, title: str = "", ax=None):
    """A lyric's words shaded by their attention weight relative to uniform (n·s_t): red above, blue below.

    The colour scale stretches to the largest deviation, so near-uniform attention still shows its pattern;
    the title states the range."""
    import matplotlib.pyplot as plt
    lines = -(-len(words) // per_line)
    ax = ax or plt.subplots(figsize=(11, 0.32 * lines + 0.9))[1]
    ax.set_axis_off()
    rel = np.asarray(weights, float) * len(weights)
    log = np.log2(np.maximum(rel, 1e-12))
    span = max(float(np.abs(log).max()), 1e-3)
    for k, (word, x) in enumerate(zip(words, log)):
        c = 0.5 + 0.5 * x / span
        ax.text((k % per_line) / per_line, 1 - (k // per_line + 0.5) / lines, word, fontsize=8, va="center",
                transform=ax.transAxes, bbox=dict(fc=plt.cm.RdBu_r(c), ec="none", pad=1.2),
                color="white" if abs(c - 0.5) > 0.35 else "black")
    ax.set_title(f"{title}\nweight / uniform weight: {rel.min():.2f} (blue) … {rel.max():.2f} (red)", fontsize=9)
    return ax


def retrieval_examples(queries: list[dict], per_row: int = 1, size: float = 2.2, title: str = ""):
    """Figure 6: each image query with its predicted tags and its top-3 songs, the true song marked ▲."""
    import matplotlib.pyplot as plt
    from PIL import Image
    fig, axes = plt.subplots(len(queries), 2, figsize=(2 * size + 4.5, len(queries) * size),
                             gridspec_kw={"width_ratios": [1, 2]}, squeeze=False)
    for row, q in zip(axes, queries):
        with Image.open(q["image_path"]) as im:
            row[0].imshow(im.convert("RGB"))
        row[0].set_axis_off()
        row[1].set_axis_off()
        lines = [f"objects: {q['obj']}", f"attributes: {q['attr']}", "", "top-3 songs:"]
        lines += [f"{'▲ ' if hit else '   '}{k + 1}. {name}" for k, (name, hit) in enumerate(q["top3"])]
        lines += ["", f"true song: {q['true']}"]
        row[1].text(0, 0.5, "\n".join(lines), va="center", fontsize=8, family="DejaVu Sans",
                    transform=row[1].transAxes)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def per_song_bars(table: pd.DataFrame, columns: list[str], title: str = "", ylabel: str = "R@3 (%)"):
    """Figures 7-8: one group of bars per song (rows of `table`, labelled by its index) for each column."""
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(max(8, 0.42 * len(table)), 3.8))
    width = 0.8 / len(columns)
    x = np.arange(len(table))
    for k, c in enumerate(columns):
        ax.bar(x + (k - (len(columns) - 1) / 2) * width, table[c].to_numpy(), width, label=c)
    ax.set_xticks(x)
    ax.set_xticklabels(table.index, rotation=75, ha="right", fontsize=7)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=8)
    return fig


def training_curves(histories: dict[str, pd.DataFrame], title: str = ""):
    """Left: training (solid) and validation (dashed) loss per epoch; right: the early-stopping criterion
    (validation mean rank, % of the pool; 50 = chance). One colour per run, the kept epoch marked."""
    import matplotlib.pyplot as plt
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 3.6))
    for k, (name, h) in enumerate(histories.items()):
        c, b = f"C{k}", h[h["best"]]
        ax.plot(h["epoch"], h["train_loss"], color=c, label=f"{name} train")
        ax.plot(h["epoch"], h["val_loss"], color=c, ls="--", label=f"{name} validation")
        bx.plot(h["epoch"], h["val_mean_rank_pct"], color=c, marker="o", ms=3, label=name)
        bx.plot(b["epoch"], b["val_mean_rank_pct"], "*", ms=12, color=c)
    bx.axhline(50, color="grey", ls=":", label="chance")
    ax.set(xlabel="epoch", ylabel="loss", title="loss")
    bx.set(xlabel="epoch", ylabel="validation mean rank (% of pool)", title="early-stopping criterion (★ kept)")
    ax.legend(fontsize=7)
    bx.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig



def song2image_queries(scores: np.ndarray, data: Data, songs: np.ndarray, images: np.ndarray, subset: pd.DataFrame,
                       n: int = 4, top: int = 4, words: int = 12) -> list[dict]:
    """Figure 9's rows: n song queries (half with an own image among the top, if any), each with its title, the
    first lyric words and its `top` images (path, whether it is one of the song's own)."""
    top_images = song2image_top(scores, images, top)
    hit = np.array([np.any(data.image_song.numpy()[row] == s) for row, s in zip(top_images, songs)])
    order = (list(np.flatnonzero(hit)[: (n + 1) // 2]) + list(np.flatnonzero(~hit)))[:n]
    title = subset.drop_duplicates("song_id").set_index("song_id")["title"]
    path = subset.set_index("image")["image_path"]
    rows = []
    for q in order:
        s = int(songs[q])
        rows.append({"title": title[data.songs[s]], "words": " ".join(data.token_lists[s][:words]),
                     "images": [(path.get(data.images[i], ""), int(data.image_song[i]) == s) for i in top_images[q]]})
    return rows


def song2image_examples(queries: list[dict], size: float = 1.8, title: str = ""):
    """Figure 9: each lyric query (title and first words) with its top images, the song's own images outlined red."""
    import textwrap

    import matplotlib.pyplot as plt
    from PIL import Image
    top = max(len(q["images"]) for q in queries)
    fig, axes = plt.subplots(len(queries), top + 1, figsize=(size * (top + 1.6), size * len(queries)), squeeze=False,
                             gridspec_kw={"width_ratios": [1.6] + [1] * top})
    for row, q in zip(axes, queries):
        for ax in row:
            ax.set_axis_off()
        row[0].text(0, 0.5, f"{q['title']}\n\n" + textwrap.fill(q["words"], 28), va="center", fontsize=8,
                    transform=row[0].transAxes)
        for k, (file, own) in enumerate(q["images"]):
            ax = row[k + 1]
            if file:
                with Image.open(file) as im:
                    ax.imshow(im.convert("RGB"))
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            for side in ax.spines.values():
                side.set(color="red" if own else "lightgrey", linewidth=3 if own else 0.8)
            ax.set_title(f"{k + 1}", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def beside_paper_bars(long: pd.DataFrame, ours_label: str, title: str = "", chance: dict | None = None):
    """One panel per metric: ours (mean ± std over seeds) beside the paper's value for each row of a
    `beside_paper` table (method, and tags when there are several); `chance`: metric → random ranking's value
    (a dotted line)."""
    import matplotlib.pyplot as plt
    long = long.reset_index(drop=True)
    names = list(dict.fromkeys(long["metric"]))
    several = long["tags"].nunique() > 1
    label = long["method"] + (" / " + long["tags"] if several else "")
    rows = list(dict.fromkeys(label))
    fig, axes = plt.subplots(1, len(names), figsize=(max(8, 2.2 * len(names) + 0.25 * len(rows)), 3.8), squeeze=False)
    x = np.arange(len(rows))
    for ax, name in zip(axes[0], names):
        sub = long[long["metric"] == name].assign(label=label).set_index("label").reindex(rows)
        ax.bar(x - 0.2, sub[ours_label], 0.4, yerr=sub["std"], capsize=2, label=ours_label)
        ax.bar(x + 0.2, sub["paper"], 0.4, label="paper")
        ax.set_xticks(x)
        ax.set_xticklabels(rows, rotation=75, ha="right", fontsize=7)
        ax.set_title(name)
        if chance and name in chance:
            ax.axhline(chance[name], color="grey", ls=":", label="random ranking")
    axes[0, 0].legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


# ---- persistence ------------------------------------------------------------------------------------------------
def save_model(model: LyricModel, path, data: Data, method: str, train_songs: np.ndarray):
    """One file per trained model: method, Config, weights, vocabulary, tag words, group and training songs."""
    from dataclasses import asdict
    from pathlib import Path
    if method not in MODEL_CLASSES or not isinstance(model, MODEL_CLASSES[method]):
        raise ValueError(f"model is a {type(model).__name__}, not a {method!r} model")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # training songs by id, not index: BoW's tf-idf vocabulary is refitted on them, and ids stay valid in a
    # Data with more songs (e.g. a typed lyric appended)
    torch.save({"method": method, "config": asdict(model.cfg), "state_dict": model.state_dict(),
                "words": list(data.words), "tag_words": list(data.tag_words), "group": data.group,
                "train_songs": [data.songs[i] for i in np.asarray(train_songs, dtype=np.int64)]}, path)
    return path


def read_model_file(path) -> dict:
    """The stored fields of a `save_model` file (weights included), read without unpickling code."""
    return torch.load(path, map_location="cpu", weights_only=True)


def load_model(path, data: Data) -> LyricModel:
    """A `save_model` file rebuilt on `data` (eval mode); a clear error when the data do not fit the model."""
    ck = read_model_file(path)
    cfg = Config.from_params(**ck["config"])
    if ck["group"] != data.group:
        raise ValueError(f"{path}: a model of the {ck['group']!r} tag group, the data are {data.group!r}")
    if ck["tag_words"] != list(data.tag_words):
        raise ValueError(f"{path}: the model's {len(ck['tag_words'])} tag words differ from the data's "
                         f"{len(data.tag_words)}: rerun notebook 04 after notebook 02")
    if ck["words"] != list(data.words):
        raise ValueError(f"{path}: the model's vocabulary ({len(ck['words'])} words) differs from the data's "
                         f"({len(data.words)}): same subset, word vectors and tag words needed (rerun notebook 04)")
    if cfg.top_k != data.top_tags.shape[1]:
        raise ValueError(f"{path}: the model attends to the top {cfg.top_k} tags, the data hold {data.top_tags.shape[1]}")
    sidx = data.song_index()
    missing = [s for s in ck["train_songs"] if s not in sidx]
    if missing:
        raise ValueError(f"{path}: {len(missing)} training songs are not in the data (e.g. {missing[:3]})")
    model = build_model(ck["method"], data, cfg, np.array([sidx[s] for s in ck["train_songs"]], dtype=np.int64))
    model.load_state_dict(ck["state_dict"])
    return model.eval()
