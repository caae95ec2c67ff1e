"""Multiple Ranking CCA (MR-CCA) for music-image matching.

Implements the method of "Multiple Ranking Canonical Correlation Analysis"
(music-image matching from music videos):

1. cluster the training pairs by their *music* side with normalized cut (Sec. 3.1);
2. per cluster, a Distance-to-Reference Transformation (DtRT): a sample becomes its
   Gaussian similarities exp(-d^2 / sigma^2) to a random set of reference pairs
   (1/d of the cluster), per feature type (Sec. 3.1);
3. per cluster, classical CCA on the matched DtRT pairs (Eq. 1), then Ranking CCA:
   a diagonal weighting W of the canonical dimensions learned from pairwise
   preferences with a ranking SVM (Eqs. 3-8);
4. combine the per-cluster similarities for a test pair either with the closest
   cluster (Eq. 9) or with softmax weights over clusters (Eq. 10).

Method names follow the paper's Section 4 exactly (they coincide with the brief):
    'c-cca'  "closest CCA"          Eq. 1 (plain CCA similarity, W = 1) + Eq. 9
    'cr-cca' "closest Ranking CCA"  Eq. 4 (ranking-weighted similarity)  + Eq. 9
    'mr-cca' "Multiple Ranking CCA" Eq. 4                                + Eq. 10
All three share the same clustering, references and CCA; only W and the combination
differ, so one fitted MRCCA can be scored with any of them (``score(..., method=)``).

Choices where the paper is silent (each also commented where it is made):
  * similarity of a pair is computed on *centred* DtRT vectors, <A(x-mx), B(y-my)>,
    because CCA is defined on centred variables and an uncentred y would let an
    image-only term change the ranking of images for a fixed music;
  * several feature types per modality: by default the per-type similarities to the
    R references are concatenated (block-major: all R similarities of type 0, then
    type 1, ...), giving n x (R * T). ``combine='mean'`` instead gives the paper's
    literal one-similarity-per-reference vector of length R (same dimension and
    aligned components for image and music), using exp(-mean_t (d_t / sigma_t)^2);
  * sigma (DtRT normalisation): the paper writes sigma_r^c, "a normalization parameter", and no
    more. Two readings, both implemented (``sigma=``): 'reference' (default, the index r read as one
    sigma per reference) = per feature type, the median of the non-zero distances between the
    cluster's training samples and reference r; 'set' = one per feature type, the median over all
    (sample, reference) pairs. Notebook 06 shows both side by side;
  * normalized cut = scikit-learn SpectralClustering on standardised music features,
    RBF affinity (Shi & Malik's Gaussian-weighted graph) with the median heuristic
    for gamma, ``assign_labels='discretize'`` (Yu & Shi's multiclass normalized-cut
    discretisation). Fitted on a subsample (default 2000) for speed; the remaining
    points go to the nearest cluster mean. Cluster centres and the distances d_c of
    Eqs. 9-10 live in that standardised music space;
  * Eq. 10's sigma^2 ("temperature") defaults to TEMPERATURE_GAP_FRACTION (1/4) of the
    median, over training music, of d^2(second-nearest centre) - d^2(nearest centre):
    a typical training point then puts ~e^-4 of its weight on the runner-up cluster,
    and only points near a boundary are really mixed (the paper's stated purpose).
    A within-cluster-spread scale was tried first and mixed far too much because in
    high dimensions the spread dwarfs the gaps between centres;
  * references: local = round(n_c / d) random members of each cluster (references
    stay in the training set); global = round(N / d) random rows of the whole
    training set shared by all clusters (the paper: global references give higher
    dimension "for the same d"), with sigma computed over all training data. They are
    the first rows of one random order per cluster, so the sets for all d nest and one
    draw serves a whole d sweep;
  * identical rows are at distance exactly 0 (squared distances within rounding of 0
    are snapped), so sigma's "non-zero" skips a row's own reference and its duplicates
    (a segment's frames share its music) and nothing else;
  * ranking SVM: hinge loss, no intercept (Eq. 6-8), mirrored pairs so both classes
    exist; the mirrored copy doubles the loss, so LinearSVC gets C / 2. A cluster
    without any preference keeps W = 1, i.e. falls back to plain CCA;
  * preferences are an integer array of (music_index, preferred_image_index,
    other_image_index) rows indexing the arrays passed alongside (a 3-column
    DataFrame in that column order also works, it is read with np.asarray); a
    preference is assigned to the cluster of its music;
  * consistency counts ties as 0.5.

Two implementations of the same method:
  * the reference path, MRCCA (fit / score) and run_repeat: float64, one model per call,
    written for reading;
  * the fast path, run_setting: everything a (repeat, K) shares across d is done once
    (split, standardisation, normalized cut, the reference order, the distances of the
    cluster's rows to the largest reference set; with per-reference sigma also the DtRT and
    the CCA factorisation, whose leading blocks are the smaller sets' ones: fit_cca_nested),
    distances are float32 BLAS products,
    sigma's median is an exact order statistic found in a sampled bracket, all feature
    types' similarities come from one product, and CCA whitens with Cholesky factors on
    the distinct music rows. tests/test_mrcca.py checks it against the reference path
    (same clusters, sigmas to 1e-5, consistencies to within a vote).
sweep / protocol_configs / run_protocol drive the Section 4 runs through parallel.pmap;
select_on_validation picks K and d on validation votes only.

Not implemented from the paper: the feature extraction (ENS, semantic posteriors,
image descriptors) and the music segmentation -- callers bring feature matrices.
"""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.spatial.distance import cdist, pdist
from sklearn.cluster import SpectralClustering
from sklearn.exceptions import ConvergenceWarning
from sklearn.svm import LinearSVC

try:
    from tqdm.auto import tqdm
except ImportError:  # progress bars are cosmetic; never fail because of them
    def tqdm(iterable, **_):
        return iterable

# ---------------------------------------------------------------- defaults ---
N_CLUSTERS = 10         # paper: precision plateaus for K > 10 (Fig. 2A)
D_REF = 6               # paper: reference set = 1/d of each cluster, best 1/6..1/8
N_COMPONENTS = 10       # paper silent on J (number of canonical dimensions)
REG = 1e-3              # ridge added to C_xx, C_yy before whitening
SVM_C = 1.0             # ranking-SVM C of Eq. 6
TEMPERATURE = None      # Eq. 10 sigma^2; None -> derived from the centre gaps below
TEMPERATURE_GAP_FRACTION = 0.25  # sigma^2 = this * median(d2_2nd - d2_1st) on training music
NCUT_N_FIT = 2000       # spectral clustering runs on at most this many points
NCUT_AFFINITY = "rbf"   # or "nearest_neighbors"
NCUT_N_NEIGHBORS = 10   # only for the kNN affinity
DTRT_COMBINE = "concat"  # or "mean" (one similarity per reference, paper-literal)
SIGMA = "reference"     # sigma_r per reference and feature type (the paper's indexed sigma_r^c), or "set"
SIGMAS = ("reference", "set")
DISTANCE_CHUNK = 2e5    # floats per temporary chi2 block; small blocks stay in cache
ZERO_SNAP = 1e-12       # a squared distance below this share of |a|^2 + |b|^2 is rounding noise: 0
METHODS = ("c-cca", "cr-cca", "mr-cca")
REFERENCES = ("local", "global")


# --------------------------------------------------------------------- CCA ---
def _inv_sqrt(C, eps=1e-12):
    """Symmetric (pseudo-)inverse square root of a PSD matrix."""
    evals, evecs = np.linalg.eigh(C)
    # directions with ~zero variance would blow up when reg = 0; drop them
    keep = evals > eps * max(evals.max(), eps)
    inv = np.zeros_like(evals)
    inv[keep] = 1.0 / np.sqrt(evals[keep])
    return (evecs * inv) @ evecs.T


def _svd(M):
    """Thin SVD; LAPACK's gesdd (numpy's) can fail to converge on an ill-conditioned but finite matrix, and then
    the slower gesvd is used."""
    if not np.isfinite(M).all():
        raise ValueError("CCA: the whitened cross-covariance has NaN or inf entries (non-finite features?)")
    try:
        return np.linalg.svd(M, full_matrices=False)
    except np.linalg.LinAlgError:
        import scipy.linalg
        return scipy.linalg.svd(M, full_matrices=False, lapack_driver="gesvd")


@dataclass
class CCAModel:
    """Fitted CCA: means, projection matrices and canonical correlations."""
    mean_x: np.ndarray
    mean_y: np.ndarray
    Wx: np.ndarray
    Wy: np.ndarray
    corrs: np.ndarray

    def transform_x(self, X):
        """Project X-side rows onto the canonical directions."""
        return (np.asarray(X, float) - self.mean_x) @ self.Wx

    def transform_y(self, Y):
        """Project Y-side rows onto the canonical directions."""
        return (np.asarray(Y, float) - self.mean_y) @ self.Wy

    def score(self, X, Y, weights=None):
        """Row-wise similarity sum_k w_k (A x)_k (B y)_k (Eq. 1 if weights is None, else Eq. 4)."""
        prod = self.transform_x(X) * self.transform_y(Y)
        return prod.sum(1) if weights is None else prod @ np.asarray(weights, float)


def fit_cca(X, Y, n_components, reg=REG):
    """Closed-form regularised CCA on centred data; returns a CCAModel."""
    X = np.asarray(X, float)
    Y = np.asarray(Y, float)
    n = max(len(X) - 1, 1)  # unbiased covariances; a 1-row cluster must not divide by 0
    mx, my = X.mean(0), Y.mean(0)
    Xc, Yc = X - mx, Y - my
    Kx = _inv_sqrt(Xc.T @ Xc / n + reg * np.eye(X.shape[1]))
    Ky = _inv_sqrt(Yc.T @ Yc / n + reg * np.eye(Y.shape[1]))
    U, s, Vt = _svd(Kx @ (Xc.T @ Yc / n) @ Ky)
    k = min(n_components, len(s))
    return CCAModel(mx, my, Kx @ U[:, :k], Ky @ Vt[:k].T, s[:k])


def cca(X, Y, n_components, reg=REG):
    """Regularised CCA; returns (Wx, Wy, corrs) with corrs descending."""
    m = fit_cca(X, Y, n_components, reg)
    return m.Wx, m.Wy, m.corrs


# ---------------------------------------------------------- normalized cut ---
def assign_clusters(X, centroids):
    """Nearest-centre labels and squared distances (n x K) to every centre."""
    d2 = cdist(np.asarray(X, float), centroids, "sqeuclidean")
    return d2.argmin(1), d2


def _centroids(X, labels):
    """Means of the non-empty clusters, plus labels renumbered 0..K-1."""
    uniq, labels = np.unique(labels, return_inverse=True)
    return np.stack([X[labels == c].mean(0) for c in range(len(uniq))]), labels


def normalized_cut(X, k, seed=0, n_fit=NCUT_N_FIT, affinity=NCUT_AFFINITY,
                   gamma=None, n_neighbors=NCUT_N_NEIGHBORS):
    """Normalized-cut clustering of X into k groups; returns (labels, centroids)."""
    X = np.asarray(X, float)
    n = len(X)
    if k <= 1 or n <= k:  # nothing to cut
        centroids, labels = _centroids(X, np.zeros(n, int) if k <= 1 else np.arange(n))
        return labels, centroids
    rng = np.random.default_rng(seed)
    # spectral clustering is O(n^2) in memory; fit the cut on a subsample
    idx = np.sort(rng.choice(n, n_fit, replace=False)) if n > n_fit else np.arange(n)
    Xs = X[idx]
    if affinity == "rbf" and gamma is None:
        # median heuristic keeps the Gaussian affinity scale-free
        med = np.median(pdist(Xs, "sqeuclidean"))
        gamma = 1.0 / med if med > 0 else 1.0
    sc = SpectralClustering(n_clusters=k, affinity=affinity, gamma=gamma or 1.0,
                            n_neighbors=n_neighbors, assign_labels="discretize",
                            random_state=seed)
    fit_labels = sc.fit_predict(Xs)
    centroids, fit_labels = _centroids(Xs, fit_labels)
    labels, _ = assign_clusters(X, centroids)
    labels[idx] = fit_labels  # the cut itself decides for points it saw
    centroids, labels = _centroids(X, labels)
    return labels, centroids


# ------------------------------------------ Distance-to-Reference Transform ---
def _euclidean(A, B):
    # |a|^2 + |b|^2 - 2ab runs as one matrix product (BLAS): ~50x faster than cdist at DtRT sizes
    na, nb = (A * A).sum(1)[:, None], (B * B).sum(1)[None]
    d2 = na + nb - 2 * A @ B.T
    # identical rows must be exactly 0 apart (sigma's median skips zeros), but rounding leaves them at
    # +-1e-16 of the norms, so whether a duplicate counted depended on the last bit
    d2[d2 <= ZERO_SNAP * (na + nb)] = 0
    return np.sqrt(d2)


def pairwise_distance(A, B, metric):
    """Distances (len(A) x len(B)) under 'l1', 'l2', 'hellinger', 'chi2' or 'cosine'."""
    A = np.asarray(A, float)
    B = np.asarray(B, float)
    if metric == "l1":
        return cdist(A, B, "cityblock")
    if metric == "l2":
        return _euclidean(A, B)
    if metric == "hellinger":
        # for histograms: a chi2-like distance that is Euclidean on square roots, hence BLAS-fast
        return _euclidean(np.sqrt(np.maximum(A, 0)), np.sqrt(np.maximum(B, 0))) / np.sqrt(2)
    if metric == "cosine":
        # an all-zero vector has no direction; call it maximally far (1)
        return np.nan_to_num(cdist(A, B, "cosine"), nan=1.0)
    if metric == "chi2":
        # 0.5 * sum (a-b)^2 / (a+b) for non-negative histograms; chunked to bound memory.
        # a+b = 0 only when a = b = 0, where the numerator is 0 too, so clamp the divisor
        out = np.empty((len(A), len(B)))
        step = max(1, int(DISTANCE_CHUNK // max(1, B.size)))
        for i in range(0, len(A), step):
            a = A[i:i + step, None, :]
            num = (a - B[None]) ** 2
            num /= np.maximum(a + B[None], 1e-300)
            out[i:i + step] = 0.5 * num.sum(-1)
        return out
    raise ValueError(f"unknown metric {metric!r}")


def _blocks(blocks, metrics):
    return ([slice(None)] if blocks is None else list(blocks),
            ["l2"] if metrics is None else list(metrics))


def dtrt_distances(X, refs, blocks=None, metrics=None):
    """Per-feature-type distances to references, shape n x (T * R), block-major."""
    blocks, metrics = _blocks(blocks, metrics)
    if len(blocks) != len(metrics):
        raise ValueError("need one metric per feature block")
    X = np.asarray(X, float)
    refs = np.asarray(refs, float)
    return np.hstack([pairwise_distance(X[:, b], refs[:, b], m)
                      for b, m in zip(blocks, metrics)])


@dataclass
class DtRT:
    """Fitted Distance-to-Reference Transformation for one modality."""
    refs: np.ndarray
    blocks: list
    metrics: list
    sigmas: np.ndarray  # normalisation: one per feature type (T,) or one per type and reference (T, R)
    combine: str = DTRT_COMBINE

    def transform(self, X):
        """Gaussian similarities exp(-d^2/sigma^2) to the references."""
        return self._similarity(dtrt_distances(X, self.refs, self.blocks, self.metrics))

    def _similarity(self, D):
        sig = self.sigmas[:, None] if self.sigmas.ndim == 1 else self.sigmas
        D = D.reshape(len(D), len(sig), len(self.refs)) / sig
        if self.combine == "concat":
            return np.exp(-D ** 2).reshape(len(D), -1)
        if self.combine == "mean":
            return np.exp(-(D ** 2).mean(1))
        raise ValueError(f"unknown combine {self.combine!r}")


def fit_dtrt(X, refs, blocks=None, metrics=None, combine=DTRT_COMBINE, sigma=SIGMA):
    """DtRT with sigma = median non-zero distance from X to each reference ('reference') or to all ('set')."""
    return _fit_transform_dtrt(X, refs, blocks, metrics, combine, sigma)[0]


def _fit_transform_dtrt(X, refs, blocks, metrics, combine, sigma=SIGMA):
    # fitting needs the very distances the transform needs; compute them once
    if sigma not in SIGMAS:
        raise ValueError(f"sigma must be one of {SIGMAS}, not {sigma!r}")
    blocks, metrics = _blocks(blocks, metrics)
    refs = np.asarray(refs, float)
    D = dtrt_distances(X, refs, blocks, metrics)
    Dt = D.reshape(len(D), len(blocks), len(refs))
    if sigma == "reference":
        # sigma_r: the median non-zero distance of the fitted rows to reference r (a reference without any
        # non-zero distance keeps 1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            sigmas = np.nanmedian(np.where(Dt > 0, Dt, np.nan), axis=0)
        sigmas = np.where(np.isnan(sigmas), 1.0, sigmas)
        dtrt = DtRT(refs, blocks, metrics, sigmas, combine)
        return dtrt, dtrt._similarity(D)
    sigmas = np.ones(len(blocks))
    for t in range(len(blocks)):
        nz = Dt[:, t][Dt[:, t] > 0]
        if nz.size:
            sigmas[t] = np.median(nz)
    dtrt = DtRT(refs, blocks, metrics, sigmas, combine)
    return dtrt, dtrt._similarity(D)


def n_references(n, d):
    """Size of a reference set: 1/d of n rows, at least one."""
    return max(1, round(n / d))


def reference_order(labels, seed=0, mode="local"):
    """Random draw order of reference candidates: per cluster (local) or over all rows (global).

    The references for d are the first n_references(n, d) rows of an order, so one draw serves every d and
    the set for a larger d is part of the set for a smaller d (a uniform random subset either way).
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    if mode == "global":
        return rng.permutation(len(labels))
    if mode != "local":
        raise ValueError(f"unknown reference mode {mode!r}")
    return [rng.permutation(np.flatnonzero(labels == c)) for c in range(labels.max() + 1)]


def select_references(labels, d=D_REF, seed=0, mode="local"):
    """Reference row indices: per cluster 1/d of its members (local) or 1/d of all rows (global)."""
    order = reference_order(labels, seed, mode)
    if mode == "global":
        return np.sort(order[:n_references(len(order), d)])
    return [np.sort(o[:n_references(len(o), d)]) for o in order]


# ------------------------------------------------------------ Ranking CCA ---
def rank_weights(z_pref, z_other, C=SVM_C, seed=0):
    """Diagonal W of Eq. 4 from a ranking SVM on z_pref - z_other (Eqs. 5-8)."""
    diff = np.asarray(z_pref, float) - np.asarray(z_other, float)
    # mirrored copies give LinearSVC two classes; they double the hinge sum -> C/2
    Z = np.vstack([diff, -diff])
    y = np.r_[np.ones(len(diff)), -np.ones(len(diff))]
    svm = LinearSVC(C=C / 2, loss="hinge", fit_intercept=False, dual=True,
                    max_iter=20000, random_state=seed)
    with warnings.catch_warnings():
        # the hinge dual creeps on noisy, overlapping preferences; the weights after 20,000 passes are
        # used as they are, and a warning per cluster and run would bury the reports
        warnings.simplefilter("ignore", ConvergenceWarning)
        return svm.fit(Z, y).coef_.ravel()


# --------------------------------------------------------------- ensemble ---
def softmax_weights(d2, temperature):
    """Eq. 10 weights exp(-d_c^2/sigma^2) / sum_c' exp(-d_c'^2/sigma^2), row-wise."""
    logits = -np.asarray(d2, float) / temperature
    logits -= logits.max(1, keepdims=True)  # stable even for tiny temperatures
    w = np.exp(logits)
    return w / w.sum(1, keepdims=True)


def closest_score(S, d2):
    """Eq. 9: per-row score of the nearest cluster."""
    S = np.asarray(S, float)
    return S[np.arange(len(S)), np.asarray(d2).argmin(1)]


def ensemble_score(S, d2, temperature):
    """Eq. 10: softmax-weighted sum of per-cluster scores."""
    return (softmax_weights(d2, temperature) * np.asarray(S, float)).sum(1)


def _default_temperature(Z, centroids):
    """Eq. 10 sigma^2 from the typical gap between nearest and runner-up centre."""
    if len(centroids) < 2:
        return 1.0  # one cluster: the weights are 1 whatever sigma is
    d2 = np.sort(assign_clusters(Z, centroids)[1], 1)
    gap = np.median(d2[:, 1] - d2[:, 0])
    return float(max(TEMPERATURE_GAP_FRACTION * gap, 1e-12))


# ------------------------------------------------------------------ model ---
@dataclass
class ClusterModel:
    """Everything one cluster needs to score a pair: DtRTs, CCA and ranking weights."""
    dtrt_img: DtRT
    dtrt_mus: DtRT
    cca: CCAModel
    W: np.ndarray

    def score(self, images, music, ranking=True):
        """Eq. 4 (ranking=True) or Eq. 1 similarity of row pairs in this cluster's space."""
        return self.cca.score(self.dtrt_img.transform(images), self.dtrt_mus.transform(music),
                              self.W if ranking else None)


class MRCCA:
    """Clustered (ranking) CCA on DtRT features: C-CCA, CR-CCA or MR-CCA."""

    def __init__(self, n_clusters=N_CLUSTERS, d=D_REF, n_components=N_COMPONENTS,
                 reg=REG, method="mr-cca", references="local", C=SVM_C,
                 temperature=TEMPERATURE, image_blocks=None, image_metrics=None,
                 music_blocks=None, music_metrics=None, combine=DTRT_COMBINE,
                 n_fit=NCUT_N_FIT, seed=0, verbose=False, sigma=SIGMA):
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        if references not in REFERENCES:
            raise ValueError(f"references must be one of {REFERENCES}")
        self.n_clusters, self.d, self.n_components, self.reg = n_clusters, d, n_components, reg
        self.method, self.references, self.C, self.temperature = method, references, C, temperature
        self.image_blocks, self.image_metrics = image_blocks, image_metrics
        self.music_blocks, self.music_metrics = music_blocks, music_metrics
        self.combine, self.n_fit, self.seed, self.verbose = combine, n_fit, seed, verbose
        if sigma not in SIGMAS:
            raise ValueError(f"sigma must be one of {SIGMAS}")
        self.sigma = sigma

    def _std_music(self, music):
        return (np.asarray(music, float) - self.music_mean_) / self.music_scale_

    def fit(self, images, music, preferences=None):
        """Fit on paired rows images[i] <-> music[i]; preferences = int rows (music, preferred, other)."""
        images = np.asarray(images, float)
        music = np.asarray(music, float)
        if preferences is None:
            if self.method != "c-cca":
                raise ValueError(f"{self.method} needs preferences")
            preferences = np.empty((0, 3), int)
        prefs = np.asarray(preferences, int).reshape(-1, 3)
        rng = np.random.default_rng(self.seed)
        seeds = rng.integers(2**31, size=3)

        # clustering only looks at music: music space has the simpler cluster structure
        self.music_mean_ = music.mean(0)
        scale = music.std(0)
        self.music_scale_ = np.where(scale > 0, scale, 1.0)
        Zm = self._std_music(music)
        self.labels_, self.centroids_ = normalized_cut(Zm, self.n_clusters, seeds[0],
                                                       n_fit=self.n_fit)
        K = len(self.centroids_)
        self.temperature_ = (self.temperature if self.temperature is not None
                             else _default_temperature(Zm, self.centroids_))

        refs = select_references(self.labels_, self.d, seeds[1], self.references)
        if self.references == "global":
            g_img, gX = _fit_transform_dtrt(images, images[refs], self.image_blocks,
                                            self.image_metrics, self.combine, self.sigma)
            g_mus, gY = _fit_transform_dtrt(music, music[refs], self.music_blocks,
                                            self.music_metrics, self.combine, self.sigma)

        pref_cluster = self.labels_[prefs[:, 0]] if len(prefs) else np.empty(0, int)
        self.clusters_ = []
        for c in tqdm(range(K), desc="MR-CCA clusters", disable=not self.verbose):
            members = np.flatnonzero(self.labels_ == c)
            if self.references == "local":
                dt_img, X = _fit_transform_dtrt(images[members], images[refs[c]],
                                                self.image_blocks, self.image_metrics, self.combine, self.sigma)
                dt_mus, Y = _fit_transform_dtrt(music[members], music[refs[c]],
                                                self.music_blocks, self.music_metrics, self.combine, self.sigma)
            else:
                dt_img, dt_mus, X, Y = g_img, g_mus, gX[members], gY[members]
            # CCA only sees the matched pairs; preferences enter through W
            model = fit_cca(X, Y, min(self.n_components, X.shape[1], Y.shape[1]), self.reg)
            P = prefs[pref_cluster == c]
            W = np.ones(len(model.corrs))  # no preferences here -> plain CCA (Eq. 1)
            if len(P):
                y = model.transform_y(dt_mus.transform(music[P[:, 0]]))
                # each image is transformed once even if it appears in many preferences
                uniq, inv = np.unique(P[:, 1:], return_inverse=True)
                x = model.transform_x(dt_img.transform(images[uniq]))[inv.reshape(-1, 2)]
                W = rank_weights(x[:, 0] * y, x[:, 1] * y, self.C, int(seeds[2]) + c)
            self.clusters_.append(ClusterModel(dt_img, dt_mus, model, W))
        return self

    def cluster_distances(self, music):
        """Squared distances (n x K) of music rows to the cluster centres."""
        return assign_clusters(self._std_music(music), self.centroids_)[1]

    def cluster_scores(self, images, music, ranking=True):
        """Per-cluster similarities S_c for every row pair, shape n x K."""
        images = np.asarray(images, float)
        music = np.asarray(music, float)
        return np.column_stack([cm.score(images, music, ranking) for cm in
                                tqdm(self.clusters_, desc="clusters", disable=not self.verbose)])

    def score(self, images, music, method=None):
        """Similarity S(I, M) of each row pair under method (default: the fitted one)."""
        method = method or self.method
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}")
        images = np.asarray(images, float)
        music = np.asarray(music, float)
        d2 = self.cluster_distances(music)
        ranking = method != "c-cca"
        if method == "mr-cca":
            return ensemble_score(self.cluster_scores(images, music, ranking), d2,
                                  self.temperature_)
        # closest cluster (Eq. 9): only score each row in its own cluster
        nearest = d2.argmin(1)
        out = np.empty(len(images))
        for c, cm in enumerate(tqdm(self.clusters_, desc="clusters", disable=not self.verbose)):
            rows = nearest == c
            if rows.any():
                out[rows] = cm.score(images[rows], music[rows], ranking)
        return out


def agreement(s_a, s_b):
    """Fraction of rows where the preferred pair's score s_a beats s_b; ties = 0.5 (nan without rows)."""
    if len(s_a) == 0:
        return float("nan")
    return float(np.mean(np.where(s_a > s_b, 1.0, np.where(s_a == s_b, 0.5, 0.0))))


def consistency(model, images, music, preferences, **score_kwargs):
    """Fraction of (music, preferred, other) rows where the preferred pair scores higher; ties = 0.5."""
    prefs = np.asarray(preferences, int).reshape(-1, 3)
    images = np.asarray(images, float)
    music = np.asarray(music, float)
    m, a, b = prefs.T
    return agreement(model.score(images[a], music[m], **score_kwargs),
                     model.score(images[b], music[m], **score_kwargs))


# ------------------------------------------------------------------ fast path ---
# The same MR-CCA as MRCCA.fit + score, organised for the protocol: one clustering and one draw of reference
# order serve every d of a (repeat, K); distances run as float32 BLAS products on features embedded so that
# every metric is Euclidean; sigma's median is an order statistic (identical rows counted, not filtered);
# the Gaussian similarities of all reference types come out of one product per row set; CCA whitens with
# Cholesky factors instead of eigendecompositions and takes only the top singular vectors. Supports the
# 'l2' and 'hellinger' metrics (the ones the world uses); the reference path takes any.
FAST_METRICS = ("l2", "hellinger")
SVD_DENSE_MAX = 500     # above this many references the top singular vectors come from ARPACK (svds)


def keep_freed_memory():
    """Ask glibc's malloc to keep freed memory for reuse (no-op elsewhere); once per process."""
    global _MEMORY_KEPT
    if _MEMORY_KEPT:
        return
    _MEMORY_KEPT = True
    # a fit allocates and frees arrays of hundreds of MB per cluster; by default glibc maps each one afresh and
    # unmaps it on free, so every array's pages fault in again (about a tenth of a K = 3 fit's time here)
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
        libc.mallopt(M_MMAP_MAX, 0)                  # big blocks from the heap, so freed ones are reused ...
        libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1)    # ... and the heap's top is not handed back
    except (OSError, AttributeError):  # not glibc: the allocator's defaults stand
        pass


_MEMORY_KEPT = False


def _embed(X, blocks, metrics):
    """float32 rows whose per-block Euclidean distance is the block's metric, their squared norms (n x T), spans."""
    blocks, metrics = _blocks(blocks, metrics)
    X = np.asarray(X)
    parts = []
    for b, m in zip(blocks, metrics):
        if m not in FAST_METRICS:
            raise ValueError(f"the fast path supports {FAST_METRICS}, not {m!r}: use run_repeat")
        v = np.asarray(X[:, b], np.float32)
        parts.append(v if m == "l2" else np.sqrt(np.maximum(v, 0)) / np.float32(np.sqrt(2)))
    sqn = np.column_stack([np.einsum("ij,ij->i", v, v, dtype=np.float64) for v in parts])
    widths = np.cumsum([0] + [v.shape[1] for v in parts])
    return np.hstack(parts), sqn, [slice(int(a), int(z)) for a, z in zip(widths[:-1], widths[1:])]


def _row_ids(E, spans):
    """Per block, an id shared exactly by identical rows (their bytes compared)."""
    ids = []
    for s in spans:
        rows = np.ascontiguousarray(E[:, s])
        ids.append(np.unique(rows.view(np.dtype((np.void, rows.itemsize * rows.shape[1]))).ravel(),
                             return_inverse=True)[1].ravel())
    return ids


def _augmented(E, sqn, refs_side):
    """[a, |a|^2, 1] (rows) or [-2b, 1, |b|^2] (references) in float32: _sq_block's two factors."""
    A = np.empty((len(E), E.shape[1] + 2), np.float32)
    if refs_side:
        np.multiply(E, -2, out=A[:, :-2])
        A[:, -2], A[:, -1] = 1, sqn
    else:
        A[:, :-2], A[:, -2], A[:, -1] = E, sqn, 1
    return A


def _sq_block(E_rows, sqn_rows, E_refs, sqn_refs):
    """Squared Euclidean distances as one float32 product: [a, |a|^2, 1] . [-2b, 1, |b|^2]."""
    return _augmented(E_rows, sqn_rows, False) @ _augmented(E_refs, sqn_refs, True).T


def _kth_smallest(X, ks, sample=20000):
    """The ks-th smallest values of X, exactly: a sample brackets them, only the bracket is partitioned."""
    ks = np.asarray(ks)
    n = X.size
    # elements drawn independently (rows and columns of a distance matrix are correlated, a grid is not a
    # fair sample); any sample gives the exact answer, a bad one only falls back to the full partition
    rng = np.random.default_rng(0)
    S = np.sort(X[rng.integers(X.shape[0], size=sample), rng.integers(X.shape[1], size=sample)])
    # +-6 standard errors of a sample quantile's rank: the bracket misses with probability ~1e-9
    q = np.array([ks.min(), ks.max()]) / n + np.array([-1, 1]) * 6 * np.sqrt(0.25 / S.size)
    lo, hi = S[np.clip((q * S.size).astype(int), 0, S.size - 1)]
    keep = X >= lo
    below = keep.size - np.count_nonzero(keep)
    keep &= X <= hi
    mid = X[keep]
    if below <= ks.min() and below + mid.size > ks.max():
        return np.partition(mid, ks - below)[ks - below]
    return np.partition(np.ravel(X), ks)[ks]


def _sigmas(side, sig_rows, refs, sizes):
    """sigma per (size, block): median distance from sig_rows to the first `size` refs, identical rows skipped.

    The skipped pairs (a row and an identical reference) are the smallest values, so the median of the
    others is an order statistic of all of them: no filtered copy, and float32 noise on the zeros is moot.
    """
    out = np.ones((len(sizes), len(side.spans)))
    for t, s in enumerate(side.spans):
        D2 = _sq_block(side.E[sig_rows, s], side.sqn[sig_rows, t], side.E[refs, s], side.sqn[refs, t])
        ids = side.ids[t]
        same = np.bincount(ids[sig_rows], minlength=ids.max() + 1)
        for i, R in enumerate(sizes):
            zeros = int(same[ids[refs[:R]]].sum())
            m = len(sig_rows) * R - zeros
            if m > 0:
                k = zeros + np.array([(m - 1) // 2, m // 2])
                out[i, t] = np.sqrt(np.maximum(_kth_smallest(D2[:, :R], k), 0).astype(np.float64)).mean()
    return out


def _similarities(side, rows, refs, sigma, combine):
    """DtRT rows (float32): exp(-mean_t d_t^2 / sigma_t^2) to refs ('mean') or per type side by side ('concat')."""
    E, sqn, spans = side.E, side.sqn, side.spans
    if combine == "mean":  # one sigma per type is the per-reference form with equal columns
        return _similarities_ref(side, rows, refs, np.repeat(np.asarray(sigma, float)[:, None], len(refs), 1))
    if combine == "concat":
        acc = np.hstack([_sq_block(E[rows, s], sqn[rows, t], E[refs, s], sqn[refs, t]) / np.float32(sigma[t] ** 2)
                         for t, s in enumerate(spans)])
    else:
        raise ValueError(f"unknown combine {combine!r}")
    np.maximum(acc, 0, out=acc)
    return np.exp(-acc, out=acc)


REF_BLOCK = 128   # references per block in _reference_dtrt: a block's distances stay in cache for its passes


def _reference_dtrt(side, rows, refs, block=None):
    """Per-reference sigma (T x R) over `rows`, identical rows skipped, and the rows' DtRT (n x R, 'mean').

    sigma_{t,r} is the median non-zero distance of the rows to reference r in type t: the skipped pairs are
    the smallest values of the reference's distances, so it is an order statistic of all of them. The DtRT is
    exp(-sum_t d_t^2 / (T sigma_{t,r}^2)). References are taken `block` at a time (REF_BLOCK), so a block's
    distances, select, sum and exp run in cache instead of in passes over an R x n array per type.
    """
    block = block or REF_BLOCK
    T, n, R = len(side.spans), len(rows), len(refs)
    sig = np.ones((T, R))
    out = np.empty((n, R), np.float32)
    # the rows' factor of every type, gathered once for all blocks
    A = [_augmented(side.E[rows, s], side.sqn[rows, t], False) for t, s in enumerate(side.spans)]
    zeros = [np.bincount(ids[rows], minlength=ids.max() + 1)[ids[refs]] for ids in side.ids]
    for a in range(0, R, block):
        blk = slice(a, min(a + block, R))
        for t, s in enumerate(side.spans):
            # references as rows: each reference's distances are contiguous for the partition
            D2 = _augmented(side.E[refs[blk], s], side.sqn[refs[blk], t], True) @ A[t].T
            z_blk = zeros[t][blk]
            groups = np.unique(z_blk)
            for z in groups:
                m = n - z
                if m <= 0:
                    continue
                cols = np.flatnonzero(z_blk == z)
                lo, hi = z + (m - 1) // 2, z + m // 2
                # one in-place select at hi; the order statistic just below it is the largest value left of it
                part = D2.copy() if len(groups) == 1 else D2[cols]
                part.partition(hi, axis=1)
                v_hi = part[:, hi]
                v_lo = part[:, :hi].max(1) if lo < hi else v_hi
                sig[t, a + cols] = (np.sqrt(np.maximum(v_lo, 0).astype(np.float64))
                                    + np.sqrt(np.maximum(v_hi, 0).astype(np.float64))) / 2
            D2 *= (1.0 / (T * sig[t, blk] ** 2)).astype(np.float32)[:, None]
            if t == 0:
                acc = D2
            else:
                acc += D2
        np.maximum(acc, 0, out=acc)
        # written transposed a block at a time: rows x references, row-major, for the fit's gathers and products
        out[:, blk] = np.exp(-acc, out=acc).T
    return sig, out


def _similarities_ref(side, rows, refs, sigma):
    """DtRT rows (float32, 'mean') to refs with a sigma per type and reference (T x R): one product,
    sum_t c_tr |a_t - b_r,t|^2 with c_tr = 1 / (T sigma_tr^2) folded into the references' factor."""
    E, sqn, spans = side.E, side.sqn, side.spans
    T = len(spans)
    c = (1.0 / (T * sigma ** 2)).T.astype(np.float32)          # R x T
    col_type = np.concatenate([np.full(s.stop - s.start, t) for t, s in enumerate(spans)])
    D = E.shape[1]
    A = np.empty((len(rows), D + T + 1), np.float32)
    A[:, :D], A[:, D:D + T], A[:, -1] = E[rows], sqn[rows], 1
    B = np.empty((len(refs), D + T + 1), np.float32)
    B[:, :D] = -2 * E[refs] * c[:, col_type]
    B[:, D:D + T], B[:, -1] = c, (sqn[refs] * c).sum(1)
    acc = A @ B.T
    np.maximum(acc, 0, out=acc)
    return np.exp(-acc, out=acc)


def _top_svd(M, k):
    """Top-k singular triplets, descending; ARPACK for big matrices (a seeded start keeps it deterministic)."""
    if min(M.shape) <= max(SVD_DENSE_MAX, 2 * k + 1):
        U, s, Vt = _svd(np.asarray(M, np.float64))
        return U[:, :k], s[:k], Vt[:k]
    from scipy.sparse.linalg import svds
    v0 = np.random.default_rng(0).standard_normal(min(M.shape))
    U, s, Vt = svds(M, k, v0=v0.astype(M.dtype))
    order = np.argsort(-s)
    return (U[:, order].astype(np.float64), s[order].astype(np.float64), Vt[order].astype(np.float64))


def _gram(A, B, n, reg=0.0):
    """A^T B / n (+ reg on the diagonal) as a float32 BLAS product (A^T A runs as a rank-k update)."""
    C = A.T @ (A if B is None else B)
    C /= np.float32(n)
    if reg:
        C.flat[::C.shape[1] + 1] += reg
    return C


def fit_cca_fast(X, Y, n_components, reg=REG, y_rows=None):
    """fit_cca's CCA with float32 Gram products and Cholesky whitening; same directions up to sign.

    y_rows (optional) maps each X row to a row of Y when Y holds only distinct rows (a segment's music is the
    same for all its frames): Y's moments then count each row once per X row, and the products run on the
    distinct rows, which is fit_cca(X, Y[y_rows]) at a fraction of the cost.
    """
    return fit_cca_nested(X, Y, [(X.shape[1], Y.shape[1])], n_components, reg, y_rows)[0]


def fit_cca_nested(X, Y, sizes, n_components, reg=REG, y_rows=None, overwrite=False):
    """fit_cca_fast on the leading (px, py) columns of X and Y for every (px, py) in sizes, from one factorisation.

    The covariances of leading columns are leading blocks of the full ones, a leading block's Cholesky factor is
    the leading block of the full factor, and so the whitened cross-covariance of the first px, py columns is
    the leading block of the full one: only the top singular vectors are computed per size. overwrite=True lets
    it centre X and Y in place (the callers' private float32 copies), saving two copies of each.
    """
    import scipy.linalg as sla
    X = np.asarray(X, np.float32)
    Y = np.asarray(Y, np.float32)
    if not overwrite:
        X, Y = X.copy(), Y.copy()
    n = max(len(X) - 1, 1)
    mx = X.mean(0, dtype=np.float64)
    X -= mx.astype(np.float32)
    if y_rows is None:
        count, Xs = np.ones(len(Y)), X
        my = Y.mean(0, dtype=np.float64)
    else:
        y_rows = np.asarray(y_rows)
        count = np.bincount(y_rows, minlength=len(Y))
        my = (count.astype(np.float32) @ Y).astype(np.float64) / len(X)
        # the cross-covariance only needs the sum of centred X rows per Y row (a sparse product); scaled by
        # 1/sqrt(count) it pairs with the sqrt(count)-weighted Y of the Y covariance, so Y is weighted once
        from scipy.sparse import csr_matrix
        w = (1 / np.sqrt(count[y_rows])).astype(np.float32)
        Xs = csr_matrix((w, (y_rows, np.arange(len(X)))), shape=(len(Y), len(X))) @ X
    Y -= my.astype(np.float32)
    if y_rows is not None:
        Y *= np.sqrt(count).astype(np.float32)[:, None]
    try:
        # any whitening gives the same canonical directions; Cholesky is ~10x cheaper than eigh
        # in float32: its backward error is a perturbation of C no larger than the float32 Gram product's own
        Lx32 = sla.cholesky(_gram(X, None, n, reg), lower=True, overwrite_a=True, check_finite=False)
        Ly32 = sla.cholesky(_gram(Y, None, n, reg), lower=True, overwrite_a=True, check_finite=False)
    except np.linalg.LinAlgError:  # singular without a ridge: the pseudo-inverse of the reference copes
        Xr = X.astype(np.float64) + mx
        Yr = Y.astype(np.float64) / np.sqrt(count)[:, None] + my
        Yr = Yr if y_rows is None else Yr[y_rows]
        return [fit_cca(Xr[:, :px], Yr[:, :py], n_components, reg) for px, py in sizes]
    # M = Lx^-1 Cxy Ly^-T in float32: a Cholesky factor's condition number is the square root of its
    # matrix's (~70 at the default ridge), so the solves keep ~1e-6 relative accuracy at half the cost
    M = sla.solve_triangular(Lx32, (Xs.T @ Y) / np.float32(n), lower=True, check_finite=False)
    M = sla.solve_triangular(Ly32, M.T, lower=True, check_finite=False).T
    tops = []
    for px, py in sizes:
        k = min(n_components, px, py)
        # M holds float32 digits only: ARPACK's single-precision iteration loses none of them (the top
        # directions agree with a float64 run to ~1e-7) at a third of the time; dense SVDs stay in float64
        tops.append(_top_svd(np.ascontiguousarray(M[:px, :py]), k))
    # W = L[:p, :p]^-T U for every size in one solve with the full factor: U padded with zero rows below p
    # solves to W padded with exact zeros, since L^T is upper triangular (no copy of each leading block);
    # float32 like M's solves, for the same reason
    Wx, Wy = (_leading_solves(L, [(p, u) for p, u in parts])
              for L, parts in ((Lx32, [(px, U) for (px, _), (U, _, _) in zip(sizes, tops)]),
                               (Ly32, [(py, Vt.T) for (_, py), (_, _, Vt) in zip(sizes, tops)])))
    return [CCAModel(mx[:px], my[:py], wx, wy, s) for (px, py), (_, s, _), wx, wy in zip(sizes, tops, Wx, Wy)]


def _leading_solves(L, parts):
    """[L[:p, :p]^-T u for (p, u) in parts] from one triangular solve with the whole lower factor L."""
    import scipy.linalg as sla
    B = np.zeros((len(L), sum(u.shape[1] for _, u in parts)), L.dtype)
    at = np.cumsum([0] + [u.shape[1] for _, u in parts])
    for (p, u), a in zip(parts, at):
        B[:p, a:a + u.shape[1]] = u
    Z = sla.solve_triangular(L, B, lower=True, trans="T", check_finite=False)
    return [Z[:p, a:a + u.shape[1]].astype(np.float64) for (p, u), a in zip(parts, at)]


def _project(S, mean, W):
    """(S - mean) @ W in float32 (S is float32 already, W has ~10 columns); mean=None: S is centred already."""
    return (S if mean is None else S - mean.astype(np.float32)) @ W.astype(np.float32)


@dataclass
class _Side:
    """One modality's embedded rows for a repeat: features, squared norms per block, spans, identity ids."""
    E: np.ndarray
    sqn: np.ndarray
    spans: list
    ids: list

    @classmethod
    def of(cls, X, blocks, metrics):
        E, sqn, spans = _embed(X, blocks, metrics)
        return cls(E, sqn, spans, _row_ids(E, spans))


def embed_images(images, blocks=None, metrics=None):
    """The fast path's view of the image features: the same for every repeat, so worth computing once."""
    return _Side.of(images, blocks, metrics)


def _fit_cluster(img, mus, members, pref, refs, sigma_img, sigma_mus, combine, n_components, reg, C, svm_seed):
    """One cluster's CCA and ranking weights on the fast DtRT.

    members / refs are (frame, segment) index pairs of the cluster's fitting rows and references; pref holds
    the cluster's preferences as (member position of the music row, preferred frame, other frame).
    """
    (m_img, m_mus), (r_img, r_mus) = members, refs
    pref_imgs = np.unique(pref[:, 1:])
    X = _similarities(img, np.concatenate([m_img, pref_imgs]), r_img, sigma_img, combine)
    # a segment's frames share its music: transform each segment once
    segs, y_rows = np.unique(m_mus, return_inverse=True)
    Y = _similarities(mus, segs, r_mus, sigma_mus, combine)
    model = fit_cca_fast(X[:len(m_img)], Y, min(n_components, X.shape[1], Y.shape[1]), reg, y_rows.ravel())
    W = np.ones(len(model.corrs))  # no preferences here -> plain CCA (Eq. 1)
    if len(pref):
        # a preference's music is a member's, so its DtRT row is already in Y
        y = _project(Y[y_rows.ravel()[pref[:, 0]]], model.mean_y, model.Wy)
        x = _project(X[len(m_img) + np.searchsorted(pref_imgs, pref[:, 1:])], model.mean_x, model.Wx)
        W = rank_weights(x[:, 0] * y, x[:, 1] * y, C, svm_seed)
    return model, W


def _fit_cluster_nested(img, X, Y, y_rows, pref, r_img, sizes, sig_img, n_components, reg, C, svm_seed,
                        pool=None):
    """One cluster's CCA and ranking weights for every reference count in sizes (per-reference sigma).

    X (members x R) and Y (distinct segments x R) are the DtRT to all R references, private float32 copies
    that the fit overwrites; the references for a size are its first columns (the sets nest), so one
    factorisation serves all sizes (fit_cca_nested). pref as in _fit_cluster. pool (optional): the pool's DtRT
    rows and each frame's row in it (-1: not there), where the preferences' frames are looked up before being
    transformed. Returns [(model, W, seconds of that size's own steps)].
    """
    if len(pref):
        # each distinct image and segment of the preferences once (projected, then gathered per vote); the
        # segments' rows are taken before the fit centres X and Y in place
        pref_imgs, img_of = np.unique(pref[:, 1:], return_inverse=True)
        pref_segs, seg_of = np.unique(y_rows[pref[:, 0]], return_inverse=True)
        Xp = _pref_dtrt(img, pref_imgs, r_img, sig_img, pool)
        Yp = Y[pref_segs]
        img_of, seg_of = img_of.reshape(-1, 2), seg_of.ravel()
    models = fit_cca_nested(X, Y, [(R, R) for R in sizes], n_components, reg, y_rows, overwrite=True)
    if len(pref):
        # a size's means are the leading entries of the widest size's: centre once, slice per size
        Xp, Yp = _centred(Xp, models, "x"), _centred(Yp, models, "y")
    out = []
    for R, model in zip(sizes, models):
        t = time.perf_counter()
        W = np.ones(len(model.corrs))  # no preferences here -> plain CCA (Eq. 1)
        if len(pref):
            y = _project(Yp[:, :R], None, model.Wy)[seg_of]
            x = _project(Xp[:, :R], None, model.Wx)[img_of]
            W = rank_weights(x[:, 0] * y, x[:, 1] * y, C, svm_seed)
        out.append((model, W, time.perf_counter() - t))
    return out


def _pref_dtrt(img, frames, refs, sigma, pool=None):
    """The frames' DtRT to refs: rows the pool already holds are copied, the others transformed."""
    if pool is None:
        return _similarities_ref(img, frames, refs, sigma)
    X_pool, pool_row = pool
    at = pool_row[frames]
    have = at >= 0
    out = np.empty((len(frames), len(refs)), np.float32)
    out[have] = X_pool[at[have]]
    if not have.all():
        out[~have] = _similarities_ref(img, frames[~have], refs, sigma)
    return out


def _centred(S, models, side):
    """S (float32, in place) minus the mean of the widest of the nested models, whose leading entries are
    every narrower model's mean."""
    mean = max((getattr(m, f"mean_{side}") for m in models), key=len)
    S -= mean.astype(np.float32)
    return S


def _pair_scores(model, W, X_eval, Y_eval, votes, centred=False):
    """Plain (Eq. 1) and ranked (Eq. 4) scores of each vote's preferred and other pair: 4 arrays.

    centred=True: X_eval and Y_eval are already centred on the model's means (a nested sweep centres once)."""
    Px = _project(X_eval, None if centred else model.mean_x, model.Wx).astype(np.float64)
    Py = _project(Y_eval, None if centred else model.mean_y, model.Wy).astype(np.float64)
    m, a, b = votes.T
    za, zb = Px[a] * Py[m], Px[b] * Py[m]
    return za.sum(1), zb.sum(1), za @ W, zb @ W


# ------------------------------------------------ experiment protocol (Sec. 4) ---
def repeat_split(n_segments, n_train, seed):
    """Boolean train mask over segments: the paper draws 20,000 of 22,632 at random, anew per repeat."""
    rng = np.random.default_rng(seed)
    mask = np.zeros(n_segments, bool)
    mask[rng.choice(n_segments, n_train, replace=False)] = True
    return mask


def validation_split(train_mask, fraction, seed):
    """Boolean validation mask: a random share `fraction` of the training segments, anew per repeat."""
    val = np.zeros_like(train_mask)
    train = np.flatnonzero(train_mask)
    n_val = int(round(fraction * len(train)))
    if n_val:
        # a stream of its own, so the train/test split is the same whatever the fraction
        val[np.random.default_rng([seed, 1]).choice(train, n_val, replace=False)] = True
    return val


def preference_triples(prefs, frame_segment, train_mask, val_mask=None):
    """Votes as (segment, preferred frame, other frame) rows for fitting, validation and test.

    `prefs` has columns segment, frame_mv, frame_random, prefers_mv (one row per vote). Fitting uses the
    training segments outside validation: a fitting vote needs its segment and both frames there. A
    validation vote needs its segment in validation and both frames on the training side; a test vote needs
    its segment on the test side. Returns (fit, val, test) triples and the three boolean masks over votes.
    """
    val_mask = np.zeros_like(train_mask) if val_mask is None else val_mask
    fit_mask = train_mask & ~val_mask
    seg = prefs["segment"].to_numpy()
    a, b = prefs["frame_mv"].to_numpy(), prefs["frame_random"].to_numpy()
    mv = prefs["prefers_mv"].to_numpy(bool)
    trip = np.column_stack([seg, np.where(mv, a, b), np.where(mv, b, a)])
    fa, fb = frame_segment[a], frame_segment[b]
    masks = (fit_mask[seg] & fit_mask[fa] & fit_mask[fb],
             val_mask[seg] & train_mask[fa] & train_mask[fb],
             ~train_mask[seg])
    return tuple(trip[m] for m in masks), masks


def _unanimous(prefs, mask):
    # the paper's 84.52% came from 'some human-labelled pairs'; our reading: pairs all labelers agree on
    votes = prefs[mask]
    g = votes["prefers_mv"].astype(np.int8).groupby(votes["segment"])
    return (g.transform("min") == g.transform("max")).to_numpy(bool)


@dataclass
class RepeatInputs:
    """What one repeat's fit and scoring need: the split, the standardised music and the vote sets."""
    frames: np.ndarray        # frames of fitting segments: the rows the model is fitted on
    music_z: np.ndarray       # segments x music dims, standardised on the fitting segments
    fit_votes: np.ndarray     # (music row, preferred row, other row), indexing `frames`
    eval_votes: dict          # 'val' / 'test' -> (segment, preferred frame, other frame) rows
    unanimous: dict           # 'val' / 'test' -> bool per eval vote: its pair's labelers all agree


def repeat_inputs(music, frame_segment, prefs, n_train, seed, val_fraction=0.0, music_blocks=None,
                  music_metrics=None):
    """Split, validation part, standardisation and votes of one repeat (shared by both fit paths)."""
    train_mask = repeat_split(len(music), n_train, seed)
    val_mask = validation_split(train_mask, val_fraction, seed)
    (fit_t, val_t, test_t), (_, val_m, test_m) = preference_triples(prefs, frame_segment, train_mask, val_mask)
    fit_mask = train_mask & ~val_mask
    frames = np.flatnonzero(fit_mask[frame_segment])
    row_of = np.full(len(frame_segment), -1)
    row_of[frames] = np.arange(len(frames))
    # a vote's music row is the row of its own music-video frame: that pair carries the segment's music
    fit_votes = np.column_stack([row_of[_own_frame(fit_t, frame_segment)], row_of[fit_t[:, 1]], row_of[fit_t[:, 2]]])
    mu, sd = music[fit_mask].mean(0), music[fit_mask].std(0) + 1e-9
    music_z = ((music - mu) / sd if music_blocks is None
               else _standardise_l2_blocks(music, mu, sd, music_blocks, music_metrics))
    return RepeatInputs(frames, music_z, fit_votes.reshape(-1, 3), {"val": val_t, "test": test_t},
                        {"val": _unanimous(prefs, val_m), "test": _unanimous(prefs, test_m)})


def _row(K, d, seed, references, val_fraction, fit_s, inp):
    return {"K": K, "d": d, "seed": seed, "references": references, "val_fraction": val_fraction,
            "fit_s": fit_s, "train_votes": len(inp.fit_votes), "val_votes": len(inp.eval_votes["val"]),
            "test_votes": len(inp.eval_votes["test"])}


def _column(part, method, unanimous=False):
    # test columns keep their historical names ('mr-cca'); validation ones are prefixed ('val mr-cca')
    return ("" if part == "test" else f"{part} ") + method + (" unanimous" if unanimous else "")


def run_repeat(music, images, frame_segment, prefs, n_train, K, d, seed, references="local",
               combine="mean", image_blocks=None, image_metrics=None, music_blocks=None,
               music_metrics=None, n_components=N_COMPONENTS, val_fraction=0.0, sigma=SIGMA):
    """One repeat with the reference MRCCA: split, fit once, score C-CCA, CR-CCA, MR-CCA on val and test votes."""
    inp = repeat_inputs(music, frame_segment, prefs, n_train, seed, val_fraction, music_blocks, music_metrics)
    t0 = time.perf_counter()
    model = MRCCA(n_clusters=K, d=d, n_components=n_components, references=references, combine=combine,
                  image_blocks=image_blocks, image_metrics=image_metrics, music_blocks=music_blocks,
                  music_metrics=music_metrics, seed=seed, sigma=sigma).fit(images[inp.frames],
                                                              inp.music_z[frame_segment[inp.frames]], inp.fit_votes)
    out = _row(K, d, seed, references, val_fraction, time.perf_counter() - t0, inp)
    out["sigma"] = sigma
    for part, votes in inp.eval_votes.items():
        agree = inp.unanimous[part]
        for method in METHODS:
            out[_column(part, method)] = consistency(model, images, inp.music_z, votes, method=method)
            out[_column(part, method, True)] = consistency(model, images, inp.music_z, votes[agree], method=method)
    return out


def run_setting(music, images, frame_segment, prefs, n_train, K, d, seed, references="local",
                combine="mean", image_blocks=None, image_metrics=None, music_blocks=None,
                music_metrics=None, n_components=N_COMPONENTS, val_fraction=0.0, details=False, image_side=None,
                sigma=SIGMA):
    """run_repeat for every d in `d` (an int or a list) at once, on the fast path: one row per d.

    Split, standardisation, normalized cut and the draw of reference order are done once and shared by all
    d (the references for d are a prefix of that order, as in select_references). fit_s is the time to fit
    one model: the shared steps' time divided among the d, plus that d's own steps; scoring is excluded.
    With details=True each row also carries the fitted pieces (labels, sigmas, CCAs, W) for tests.
    image_side: embed_images(images, image_blocks, image_metrics), to reuse across calls (sweep does).
    sigma='reference' (one sigma per reference, so a reference's DtRT column is the same for every d): one
    CCA factorisation per cluster serves all d (fit_cca_nested); sigma='set' fits each d on its own.
    """
    if sigma not in SIGMAS:
        raise ValueError(f"sigma must be one of {SIGMAS}, not {sigma!r}")
    if sigma == "reference" and combine != "mean":
        raise ValueError("the fast path's per-reference sigma needs combine='mean': use run_repeat")
    keep_freed_memory()
    ds = sorted({int(x) for x in np.atleast_1d(d)})
    inp = repeat_inputs(music, frame_segment, prefs, n_train, seed, val_fraction, music_blocks, music_metrics)
    t0 = time.perf_counter()  # from here on, as run_repeat times MRCCA.fit
    frames, fseg = inp.frames, np.asarray(frame_segment)
    img = image_side or embed_images(images, image_blocks, image_metrics)
    mus = _Side.of(inp.music_z, music_blocks, music_metrics)
    # MRCCA.fit's clustering step, on the same inputs with the same seeds
    seeds = np.random.default_rng(seed).integers(2**31, size=3)
    music_rows = inp.music_z[fseg[frames]]
    mean, scale = music_rows.mean(0), music_rows.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    Zm = (music_rows - mean) / scale
    labels, centroids = normalized_cut(Zm, K, seeds[0])
    n_k = len(centroids)
    temperature = _default_temperature(Zm, centroids)
    order = reference_order(labels, seeds[1], references)
    pref = inp.fit_votes
    pref_cluster = labels[pref[:, 0]] if len(pref) else np.empty(0, int)
    position = np.zeros(len(frames), int)  # a fitting row's position among its cluster's members
    members = [np.flatnonzero(labels == c) for c in range(n_k)]
    for mem in members:
        position[mem] = np.arange(len(mem))
    # the eval votes' frames and segments, each transformed once
    votes = np.vstack([inp.eval_votes["val"], inp.eval_votes["test"]]).reshape(-1, 3)
    ev_frames, ev_f = np.unique(votes[:, 1:], return_inverse=True)
    ev_segs, ev_s = np.unique(votes[:, 0], return_inverse=True)
    ev_votes = np.column_stack([ev_s.ravel(), ev_f.reshape(-1, 2)])
    d2_eval = assign_clusters((inp.music_z[ev_segs] - mean) / scale, centroids)[1][ev_s.ravel()]
    scores = np.zeros((len(ds), 4, len(votes), n_k))  # plain / ranked scores of both pairs, per d and cluster
    shared = time.perf_counter() - t0
    own = np.zeros(len(ds))
    fitted = [[] for _ in ds]
    pools = [(o, [c]) for c, o in enumerate(order)] if references == "local" else [(order, list(range(n_k)))]
    for pool, clusters in pools:
        t = time.perf_counter()
        sizes = [n_references(len(pool), x) for x in ds]
        refs = frames[pool[:max(sizes)]]
        # sigma over the cluster's rows (local) or all fitting rows (global), as _fit_transform_dtrt
        sig_rows = frames if references == "global" else frames[members[clusters[0]]]
        if sigma == "reference":
            shared += time.perf_counter() - t
            shared += _nested_pool(img, mus, frames, fseg, members, clusters, refs, sig_rows, sizes, pref,
                                   pref_cluster, position, references, n_components, int(seeds[2]), ev_frames,
                                   ev_segs, ev_votes, scores, own, fitted if details else None)
            continue
        sig_img = _sigmas(img, sig_rows, refs, sizes)
        sig_mus = _sigmas(mus, fseg[sig_rows], fseg[refs], sizes)
        shared += time.perf_counter() - t
        for i, R in enumerate(sizes):
            r_img = refs[:R]
            r_mus = fseg[r_img]
            X_ev = Y_ev = None
            for c in clusters:
                t = time.perf_counter()
                mem = frames[members[c]]
                P = pref[pref_cluster == c]
                P = np.column_stack([position[P[:, 0]], frames[P[:, 1]], frames[P[:, 2]]]).reshape(-1, 3)
                model, W = _fit_cluster(img, mus, (mem, fseg[mem]), P, (r_img, r_mus), sig_img[i], sig_mus[i],
                                        combine, n_components, REG, SVM_C, int(seeds[2]) + c)
                own[i] += time.perf_counter() - t
                if X_ev is None or references == "local":  # global references: one eval transform for all clusters
                    X_ev = _similarities(img, ev_frames, r_img, sig_img[i], combine)
                    Y_ev = _similarities(mus, ev_segs, r_mus, sig_mus[i], combine)
                scores[i, :, :, c] = _pair_scores(model, W, X_ev, Y_ev, ev_votes)
                if details:
                    fitted[i].append({"cca": model, "W": W, "sigma_img": sig_img[i], "sigma_mus": sig_mus[i]})
    rows = []
    n_val = len(inp.eval_votes["val"])
    for i, x in enumerate(ds):
        out = _row(K, x, seed, references, val_fraction, shared / len(ds) + own[i], inp)
        out["sigma"] = sigma
        plain_a, plain_b, rank_a, rank_b = scores[i]
        for part, sl in (("val", slice(0, n_val)), ("test", slice(n_val, None))):
            d2 = d2_eval[sl]
            pairs = {"c-cca": (closest_score(plain_a[sl], d2), closest_score(plain_b[sl], d2)),
                     "cr-cca": (closest_score(rank_a[sl], d2), closest_score(rank_b[sl], d2)),
                     "mr-cca": (ensemble_score(rank_a[sl], d2, temperature),
                                ensemble_score(rank_b[sl], d2, temperature))}
            agree = inp.unanimous[part]
            for method, (s_a, s_b) in pairs.items():
                out[_column(part, method)] = agreement(s_a, s_b)
                out[_column(part, method, True)] = agreement(s_a[agree], s_b[agree])
        if details:
            out.update(labels=labels, centroids=centroids, temperature=temperature, clusters=fitted[i])
        rows.append(out)
    return rows


def _nested_pool(img, mus, frames, fseg, members, clusters, refs, sig_rows, sizes, pref, pref_cluster, position,
                 references, n_components, svm_seed, ev_frames, ev_segs, ev_votes, scores, own, fitted):
    """run_setting's per-reference-sigma fits of one reference pool (a local cluster or the global set).

    Fills scores and own (per size) in place and appends to fitted (when given); returns the seconds shared
    by all sizes (sigmas, DtRT, the CCA factorisation, the eval transforms).
    """
    t0 = time.perf_counter()
    own_here = 0.0
    sig_img, X_all = _reference_dtrt(img, sig_rows, refs)             # sig_rows x R
    r_mus = fseg[refs]
    sig_mus, Y_all = _reference_dtrt(mus, fseg[sig_rows], r_mus)
    t = time.perf_counter()
    X_ev = _similarities_ref(img, ev_frames, refs, sig_img)
    Y_ev = _similarities_ref(mus, ev_segs, r_mus, sig_mus)
    own_here += time.perf_counter() - t   # eval transforms: excluded from fit_s like scoring
    # the preferences' frames are fitting frames: those among sig_rows have their DtRT rows already (all of
    # them with global references)
    pool_row = np.full(len(fseg), -1)
    pool_row[sig_rows] = np.arange(len(sig_rows))
    for c in clusters:
        # the cluster's members among sig_rows: all of them (local) or its rows of the fitting set (global)
        pos = np.arange(len(sig_rows)) if references == "local" else members[c]
        segs, first, y_rows = np.unique(fseg[frames[members[c]]], return_index=True, return_inverse=True)
        P = pref[pref_cluster == c]
        P = np.column_stack([position[P[:, 0]], frames[P[:, 1]], frames[P[:, 2]]]).reshape(-1, 3)
        # the fit overwrites its X: the local pool's whole DtRT is used once, the global one is gathered per cluster
        X = X_all if references == "local" else X_all[pos]
        fits = _fit_cluster_nested(img, X, Y_all[pos[first]], y_rows.ravel(), P, refs, sizes, sig_img,
                                   n_components, REG, SVM_C, svm_seed + c, pool=(X_all, pool_row))
        t = time.perf_counter()
        models = [model for model, _, _ in fits]
        # a local pool has one cluster: its eval transforms are centred in place
        Xc_ev, Yc_ev = ((X_ev, Y_ev) if len(clusters) == 1 else (X_ev.copy(), Y_ev.copy()))
        Xc_ev, Yc_ev = _centred(Xc_ev, models, "x"), _centred(Yc_ev, models, "y")
        own_here += time.perf_counter() - t
        for i, (R, (model, W, sec)) in enumerate(zip(sizes, fits)):
            t = time.perf_counter()
            scores[i, :, :, c] = _pair_scores(model, W, Xc_ev[:, :R], Yc_ev[:, :R], ev_votes, centred=True)
            own[i] += sec
            own_here += sec + time.perf_counter() - t
            if fitted is not None:
                fitted[i].append({"cca": model, "W": W, "sigma_img": sig_img[:, :R], "sigma_mus": sig_mus[:, :R]})
    # scoring and the eval transforms are excluded from fit_s, as in the per-d path
    return time.perf_counter() - t0 - own_here


def _run_config(config, **data):
    return run_setting(**data, **config)


def sweep(configs, parallel=None, desc="MR-CCA runs", **data):
    """run_setting over {K, d, seed[, references, val_fraction]} configs through parallel.pmap; one row per (config, d).

    A config's d may be a list: its d share one clustering. `parallel` is the params `parallel` section
    (e.g. {"backend": "local", "n_jobs": 2} or {"backend": "dask", "scheduler": "tcp://host:8786"});
    an int is read as local n_jobs.
    """
    from .parallel import pmap
    if parallel is None or isinstance(parallel, int):
        parallel = {"backend": "local", "n_jobs": parallel or 2}
    if "image_side" not in data:  # embedded once here, not once per task
        data = {**data, "image_side": embed_images(data["images"], data.get("image_blocks"), data.get("image_metrics"))}
    rows = pmap(_run_config, list(configs), parallel, desc=desc, shared=data)
    return pd.DataFrame([r for task in rows for r in task])


def protocol_configs(repeats=10, k_values=range(3, 21), d_for_k_sweep=6, d_values=range(2, 21),
                     k_for_d_sweep=10, table1=(10, 10), table1_repeats=10, settings=((5, 5),), seed=0,
                     val_fraction=0.1):
    """The Section 4 runs as sweep configs tagged by table, grouped so a (repeat, K) clusters once.

    Tables: 'fig2a' (K sweep at d_for_k_sweep), 'fig2b' (d sweep at k_for_d_sweep), 'table1' (local and
    global references; fitted alone so their fit_s are whole fits), 'settings' (extra (K, d), e.g. 5, 5).
    Returns (configs, wanted): configs for sweep, wanted[table] = the (K, d, seed, references) rows it reads.
    """
    runs = {}   # (seed, K, references, alone) -> set of d
    wanted = {"fig2a": [], "fig2b": [], "table1": [], "settings": []}

    def want(table, K, d, s, references="local", alone=False):
        runs.setdefault((s, K, references, alone), set()).add(d)
        wanted[table].append((K, d, s, references, alone))

    for r in range(repeats):
        s = seed + r
        for d in d_values:
            want("fig2b", k_for_d_sweep, d, s)
        for k in k_values:
            want("fig2a", k, d_for_k_sweep, s)
        for k, d in settings:
            want("settings", k, d, s)
    for r in range(table1_repeats):
        for ref in REFERENCES:
            want("table1", *table1, seed + r, ref, alone=True)
    configs = [{"K": K, "d": sorted(ds), "seed": s, "references": ref, "val_fraction": val_fraction,
                "alone": alone} for (s, K, ref, alone), ds in runs.items()]
    # the biggest tasks first, so the workers finish together. A fit costs about its CCA Gram products:
    # K clusters x n_c rows x R^2 references = N^3 / (K d)^2 for local, N^3 / d^2 for global references
    cost = lambda c: sum((1 if c["references"] == "global" else 1 / c["K"] ** 2) / d ** 2 for d in c["d"])  # noqa: E731
    return sorted(configs, key=cost, reverse=True), wanted


def run_protocol(configs, wanted, parallel=None, **data):
    """Run protocol_configs' configs in one sweep and split the rows into the tables asked for."""
    tasks = [{k: v for k, v in c.items() if k != "alone"} for c in configs]
    rows = sweep(tasks, parallel, "MR-CCA protocol", **data)
    rows["alone"] = np.repeat([c["alone"] for c in configs], [len(c["d"]) for c in configs])
    key = ["K", "d", "seed", "references", "alone"]
    index = rows.set_index(key)
    return {table: index.loc[want].reset_index().drop(columns="alone") for table, want in wanted.items()}


def select_on_validation(runs, metric="mr-cca"):
    """Best (K, d) by mean *validation* consistency over repeats, with its mean test consistency.

    Only the validation column decides; the test column is read afterwards, for the chosen setting. The
    test-argmax row is the setting a selection on test votes would pick: an optimistic bound, labelled so.
    """
    # a run listed in two tables (Fig. 2A's K=10 is Fig. 2B's d=6) counts once
    runs = runs.drop_duplicates(["K", "d", "seed", "references", "val_fraction"])
    by = runs.groupby(["K", "d"])
    val, test = by[_column("val", metric)].mean(), by[metric].mean()
    if val.isna().all():
        raise ValueError("no validation votes: run the sweeps with val_fraction > 0")
    chosen, peek = val.idxmax(), test.idxmax()
    return pd.DataFrame([
        {"selection": "validation (reported)", "K": chosen[0], "d": chosen[1], "val": val[chosen],
         "test": test[chosen], "repeats": int(by.size()[chosen])},
        {"selection": "test-argmax (optimistic, not a selection)", "K": peek[0], "d": peek[1], "val": val[peek],
         "test": test[peek], "repeats": int(by.size()[peek])}])


def cluster_structure(X, ks, seed=0, n_sample=2000, n_pca=20):
    """Silhouette of k-means clusterings of standardised, PCA-reduced rows for each k (the paper's
    first observation: music space clusters more cleanly than image space)."""
    from sklearn.cluster import KMeans
    from sklearn.decomposition import PCA
    from sklearn.metrics import silhouette_score
    rng = np.random.default_rng(seed)
    X = np.asarray(X, float)[rng.choice(len(X), min(n_sample, len(X)), replace=False)]
    X = (X - X.mean(0)) / (X.std(0) + 1e-9)
    Z = PCA(min(n_pca, X.shape[1]), random_state=seed).fit_transform(X)
    return [float(silhouette_score(Z, KMeans(k, n_init=4, random_state=seed).fit_predict(Z))) for k in ks]


def human_reference(prefs, train_mask):
    """Test-side reference points: how often votes favour the music-video pair, and a labeler's
    agreement with the majority of the others (what a model can hope to match)."""
    test = prefs[~train_mask[prefs["segment"].to_numpy()]]
    by_pair = test.groupby("segment")["prefers_mv"]
    n = by_pair.transform("size")
    others = (by_pair.transform("sum") - test["prefers_mv"]) / (n - 1).clip(lower=1)
    agree = np.where(others == 0.5, 0.5, (others > 0.5) == test["prefers_mv"])
    return {"votes for the music-video pair": float(test["prefers_mv"].mean()),
            "labeler agrees with the other labelers' majority": float(np.mean(agree[n > 1]))}


def _own_frame(trip, frame_segment):
    # of the two frames of a vote, the one from the vote's own segment is the music-video frame
    return np.where(frame_segment[trip[:, 1]] == trip[:, 0], trip[:, 1], trip[:, 2])


def _standardise_l2_blocks(music, mu, sd, blocks, metrics):
    # Euclidean blocks mix units (tempo in BPM, energy in 0..1): z-score them; histogram blocks stay as they are
    out = np.array(music, float)
    for blk, metric in zip(blocks, metrics):
        if metric == "l2":
            out[:, blk] = (out[:, blk] - mu[blk]) / sd[blk]
    return out




def sigma_readings(runs: pd.DataFrame) -> pd.DataFrame:
    """Both readings of the DtRT's sigma at one setting: mean and std over repeats of consistency and fit time."""
    cols = {"val mr-cca": "validation MR-CCA %", "mr-cca": "test MR-CCA %", "c-cca": "test C-CCA %",
            "fit_s": "fit s"}
    g = runs.groupby("sigma")
    mean, std = g[list(cols)].mean(), g[list(cols)].std()
    out = pd.DataFrame(index=mean.index)
    for col, name in cols.items():
        scale = 1 if col == "fit_s" else 100
        out[name] = scale * mean[col]
        out[name + " std"] = scale * std[col]
    out.insert(0, "repeats", g.size())
    out.index.name = "sigma reading"
    return out.reset_index().round(3)


def findings(runs_k, runs_d, runs_ref, paper=None):
    """Sentences checking the paper's four claims against our runs (true or not, said either way).

    `paper` holds the paper's side, read by the caller from i2s/assets/paper (none is typed here); any of
    'plateau_K' (K after which Fig. 2A is flat), 'best_d' ((lo, hi) range of the best d in Fig. 2B),
    'consistency %' and 'training s' (each {'local': x, 'global': y}, Table 1). Missing keys are not quoted.
    """
    paper = paper or {}
    mk = runs_k.groupby("K")[list(METHODS)].mean()
    md = runs_d.groupby("d")[list(METHODS)].mean()
    out = []
    if len(mk) > 1:
        k0 = paper.get("plateau_K", int(np.median(mk.index)))
        lo, hi = mk.loc[mk.index <= k0, "mr-cca"], mk.loc[mk.index >= k0, "mr-cca"]
        flat = f", and spans {100 * (hi.max() - hi.min()):.1f} points for K ≥ {k0}" if len(hi) > 1 else ""
        said = f" (paper: rises up to K≈{k0}, then flat)" if "plateau_K" in paper else ""
        out.append(f"Fig. 2A: MR-CCA goes from {100 * mk['mr-cca'].iloc[0]:.1f}% at K={mk.index[0]} to "
                   f"{100 * lo.iloc[-1]:.1f}% at K={lo.index[-1]}{flat}{said}.")
    if len(md) > 1:
        best_d = int(md["mr-cca"].idxmax())
        said = f" (paper: around 1/{paper['best_d'][0]} to 1/{paper['best_d'][1]})" if "best_d" in paper else ""
        out.append(f"Fig. 2B: the best reference share on test is 1/{best_d} ({100 * md['mr-cca'].max():.1f}%){said}.")
    both = pd.concat([mk, md], ignore_index=True)
    wins_r = float((both["cr-cca"] > both["c-cca"]).mean())
    wins_m = float((both["mr-cca"] > both["cr-cca"]).mean())
    out.append(f"Methods: CR-CCA beats C-CCA in {100 * wins_r:.0f}% of the settings and MR-CCA beats CR-CCA in "
               f"{100 * wins_m:.0f}% (paper: always).")
    t = runs_ref.groupby("references")[["mr-cca", "fit_s"]].mean()
    if {"local", "global"} <= set(t.index):
        pc, ps = paper.get("consistency %"), paper.get("training s")
        said = []
        if pc:
            said.append(f"{pc['local']:.2f}% vs {pc['global']:.2f}%")
        if ps:
            said.append(f"{ps['global'] / ps['local']:.1f}× as long")
        out.append(f"References: local {100 * t.loc['local', 'mr-cca']:.1f}% vs global {100 * t.loc['global', 'mr-cca']:.1f}%, "
                   f"global training {t.loc['global', 'fit_s'] / t.loc['local', 'fit_s']:.1f}× as long"
                   + (f" (paper: {', '.join(said)})." if said else "."))
    return out
