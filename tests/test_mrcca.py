"""Tests for i2s.mrcca (MR-CCA music-image matching)."""
import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import cdist
from sklearn.cross_decomposition import CCA as SkCCA
from sklearn.metrics import adjusted_rand_score

from i2s import mrcca
from i2s.mrcca import (MRCCA, cca, closest_score, consistency, dtrt_distances,
                       ensemble_score, fit_cca, fit_dtrt, normalized_cut,
                       pairwise_distance, rank_weights, select_references,
                       softmax_weights)


def correlated(n=800, seed=0):
    """Two views sharing a 2-d latent signal with different strengths."""
    rng = np.random.default_rng(seed)
    z = rng.normal(size=(n, 2))
    X = z @ rng.normal(size=(2, 6)) + 0.7 * rng.normal(size=(n, 6))
    Y = z @ rng.normal(size=(2, 4)) + 0.7 * rng.normal(size=(n, 4))
    return X, Y


def two_world_toy(n, rng, maps):
    """Music in two far-apart clusters; each cluster maps music -> image by its own matrix."""
    c = rng.integers(2, size=n)
    u = rng.normal(size=(n, 3))
    music = np.c_[u, np.where(c == 1, 6.0, -6.0)]
    images = np.einsum("nij,nj->ni", maps[c], u) + 0.3 * rng.normal(size=(n, maps.shape[1]))
    return images, music, c


def true_vs_random(n, rng):
    """Preferences: the matched image beats a random other image, for every music row."""
    other = (np.arange(n) + rng.integers(1, n, size=n)) % n
    return np.c_[np.arange(n), np.arange(n), other]


@pytest.fixture(scope="module")
def toy():
    rng = np.random.default_rng(0)
    A0 = rng.normal(size=(5, 3))
    # opposite maps: the pooled music-image cross-covariance cancels, so one global
    # linear CCA sees nothing while per-cluster models see a clean linear relation
    maps = np.stack([A0, -A0])
    Itr, Mtr, ctr = two_world_toy(600, rng, maps)
    Ite, Mte, _ = two_world_toy(400, rng, maps)
    return dict(Itr=Itr, Mtr=Mtr, ctr=ctr, Ptr=true_vs_random(600, rng),
                Ite=Ite, Mte=Mte, Pte=true_vs_random(400, rng))


@pytest.fixture(scope="module")
def fitted(toy):
    model = MRCCA(n_clusters=2, d=6, n_components=5, seed=0)
    return model.fit(toy["Itr"], toy["Mtr"], toy["Ptr"])


# ------------------------------------------------------------------- CCA ---
def test_cca_corrs_match_projections_and_sklearn():
    X, Y = correlated()
    Wx, Wy, corrs = cca(X, Y, 3, reg=0.0)
    assert Wx.shape == (6, 3) and Wy.shape == (4, 3) and corrs.shape == (3,)
    assert np.all(np.diff(corrs) <= 0)
    Px, Py = (X - X.mean(0)) @ Wx, (Y - Y.mean(0)) @ Wy
    emp = [np.corrcoef(Px[:, k], Py[:, k])[0, 1] for k in range(3)]
    np.testing.assert_allclose(emp, corrs, atol=1e-3)

    sk = SkCCA(n_components=1, max_iter=5000, tol=1e-12).fit(X, Y)
    sx, sy = sk.transform(X, Y)
    sk_corr = abs(np.corrcoef(sx[:, 0], sy[:, 0])[0, 1])
    assert abs(sk_corr - corrs[0]) < 1e-2


def test_cca_projections_white_and_uncorrelated():
    X, Y = correlated(seed=1)
    m = fit_cca(X, Y, 4, reg=0.0)
    Px, Py = m.transform_x(X), m.transform_y(Y)
    np.testing.assert_allclose(np.cov(Px, rowvar=False), np.eye(4), atol=1e-8)
    np.testing.assert_allclose(np.cov(Py, rowvar=False), np.eye(4), atol=1e-8)
    # cross-covariance is diagonal with the canonical correlations on it
    cross = (Px - Px.mean(0)).T @ (Py - Py.mean(0)) / (len(X) - 1)
    np.testing.assert_allclose(cross, np.diag(m.corrs), atol=1e-8)
    # the plain CCA similarity (Eq. 1) is the unweighted sum of products
    np.testing.assert_allclose(m.score(X, Y), (Px * Py).sum(1))


# ---------------------------------------------------------- ranking SVM ---
def test_rank_weights_recover_signs():
    rng = np.random.default_rng(3)
    n = 400
    xa, xb, y = rng.normal(size=(3, n, 3))
    w_true = np.array([1.0, -1.0, 0.0])
    za, zb = xa * y, xb * y
    margin = (za - zb) @ w_true
    keep = np.abs(margin) > 0.2  # strictly separable with a visible margin
    pref = np.where((margin > 0)[:, None], za, zb)[keep]
    other = np.where((margin > 0)[:, None], zb, za)[keep]
    W = rank_weights(pref, other, C=10.0, seed=0)
    assert W[0] > 0 > W[1]
    assert abs(W[2]) < 0.2 * min(W[0], -W[1])
    assert np.all((pref - other) @ W > 0)  # training consistency 1.0


# ------------------------------------------------------------- ensemble ---
def test_soft_ensemble_equals_closest_when_one_cluster_dominates():
    rng = np.random.default_rng(4)
    S = rng.normal(size=(50, 4))
    d2 = rng.uniform(0, 10, size=(50, 4))
    np.testing.assert_allclose(ensemble_score(S, d2, 1e-9), closest_score(S, d2), atol=1e-6)
    # a moderate temperature really mixes (guards against a vacuous pass)
    assert np.abs(ensemble_score(S, d2, 5.0) - closest_score(S, d2)).max() > 1e-2
    np.testing.assert_allclose(softmax_weights(d2, 5.0).sum(1), 1.0)
    # music sitting on one centre, all other centres very far: weights one-hot
    d2_far = np.full((50, 4), 1e4)
    d2_far[np.arange(50), rng.integers(4, size=50)] = 0.0
    np.testing.assert_allclose(ensemble_score(S, d2_far, 1.0), closest_score(S, d2_far), atol=1e-6)


def test_model_soft_equals_closest_at_low_temperature(toy, fitted):
    cold = MRCCA(n_clusters=2, d=6, n_components=5, seed=0, temperature=1e-9)
    cold.fit(toy["Itr"], toy["Mtr"], toy["Ptr"])
    soft = cold.score(toy["Ite"], toy["Mte"], method="mr-cca")
    hard = cold.score(toy["Ite"], toy["Mte"], method="cr-cca")
    np.testing.assert_allclose(soft, hard, atol=1e-6)
    # at its default temperature the fitted model is not just the closest cluster
    S = fitted.cluster_scores(toy["Ite"], toy["Mte"])
    assert S.shape == (len(toy["Ite"]), 2)
    assert not np.allclose(fitted.score(toy["Ite"], toy["Mte"]),
                           fitted.score(toy["Ite"], toy["Mte"], method="cr-cca"))


# ----------------------------------------------------------------- DtRT ---
def test_dtrt_shape_and_zero_self_distance():
    rng = np.random.default_rng(5)
    X = rng.uniform(0, 1, size=(30, 7))
    blocks, metrics = [slice(0, 3), slice(3, 7)], ["l1", "chi2"]
    ref_idx = np.array([2, 5, 9])
    D = dtrt_distances(X, X[ref_idx], blocks, metrics)
    assert D.shape == (30, 3 * 2)  # n x (n_refs * n_feature_types), block-major
    for r, i in enumerate(ref_idx):
        assert D[i, r] == 0 and D[i, 3 + r] == 0
    assert np.all(D[np.setdiff1d(np.arange(30), ref_idx)] > 0)
    np.testing.assert_allclose(D[:, :3], cdist(X[:, :3], X[ref_idx, :3], "cityblock"))
    a, b = X[0, 3:], X[5, 3:]
    assert np.isclose(D[0, 4], 0.5 * np.sum((a - b) ** 2 / (a + b)))

    dt = fit_dtrt(X, X[ref_idx], blocks, metrics, sigma="set")
    S = dt.transform(X)
    assert S.shape == (30, 6) and np.all((S > 0) & (S <= 1))
    np.testing.assert_allclose(S[ref_idx[1], [1, 4]], 1.0)  # exp(-0) for a reference itself
    # the paper's conversion s = exp(-d^2 / sigma^2), per feature type
    np.testing.assert_allclose(S, np.exp(-(D / np.repeat(dt.sigmas, 3)) ** 2))
    # sigma per type ('set') is the median non-zero distance to the references
    np.testing.assert_allclose(dt.sigmas[0], np.median(D[:, :3][D[:, :3] > 0]))
    # per reference (the default): the median non-zero distance to that reference, per type
    dr = fit_dtrt(X, X[ref_idx], blocks, metrics)
    assert dr.sigmas.shape == (2, 3)
    np.testing.assert_allclose(dr.sigmas[1, 2], np.median(D[:, 5][D[:, 5] > 0]))
    np.testing.assert_allclose(dr.transform(X), np.exp(-(D / dr.sigmas.ravel()) ** 2))
    S_mean = fit_dtrt(X, X[ref_idx], blocks, metrics, combine="mean").transform(X)
    assert S_mean.shape == (30, 3)
    np.testing.assert_allclose(pairwise_distance(X[:4], X[:4], "cosine").diagonal(), 0, atol=1e-12)


def test_select_references_local_and_global():
    labels = np.repeat([0, 1, 2], [60, 30, 12])
    local = select_references(labels, d=6, seed=0, mode="local")
    assert [len(r) for r in local] == [10, 5, 2]
    for c, r in enumerate(local):
        assert np.all(labels[r] == c) and len(np.unique(r)) == len(r)
    glob = select_references(labels, d=6, seed=0, mode="global")
    assert len(glob) == 17 and len(np.unique(glob)) == 17


# -------------------------------------------------------- normalized cut ---
def test_normalized_cut_recovers_blobs_on_subsample():
    rng = np.random.default_rng(6)
    centres = np.array([[0, 0, 0], [8, 0, 0], [0, 8, 0]], float)
    truth = rng.integers(3, size=5000)
    X = centres[truth] + rng.normal(size=(5000, 3))
    labels, centroids = normalized_cut(X, 3, seed=0, n_fit=400)
    assert centroids.shape == (3, 3)
    assert adjusted_rand_score(truth, labels) > 0.99


# ----------------------------------------------------------- end to end ---
def test_mrcca_beats_global_cca_on_two_world_toy(toy, fitted):
    assert adjusted_rand_score(toy["ctr"], fitted.labels_) == 1.0
    baseline = fit_cca(toy["Itr"], toy["Mtr"], 3)  # one cluster, raw features, no ranking
    base = consistency(baseline, toy["Ite"], toy["Mte"], toy["Pte"])
    mr = consistency(fitted, toy["Ite"], toy["Mte"], toy["Pte"])
    assert mr > 0.9
    assert base < 0.65
    assert mr > base + 0.25
    # the other two named methods work from the same fit and also beat the baseline
    for method in ("c-cca", "cr-cca"):
        assert consistency(fitted, toy["Ite"], toy["Mte"], toy["Pte"], method=method) > 0.9


def test_ranking_weights_follow_the_preferences(toy, fitted):
    # every cluster saw preferences, so W was learned rather than left at 1
    assert all(not np.allclose(cm.W, 1.0) for cm in fitted.clusters_)
    # reversed preferences (the random image preferred): plain CCA ignores them,
    # ranking CCA must learn to follow them -- R-CCA's reason to exist
    rev = toy["Ptr"][:, [0, 2, 1]]
    m = MRCCA(n_clusters=2, d=6, n_components=5, seed=0, method="cr-cca")
    m.fit(toy["Itr"], toy["Mtr"], rev)
    assert consistency(m, toy["Itr"], toy["Mtr"], rev, method="c-cca") < 0.1
    assert consistency(m, toy["Itr"], toy["Mtr"], rev) > 0.9


def test_consistency_counts_ties_as_half():
    class Const:
        def score(self, images, music):
            return np.zeros(len(images))
    prefs = np.array([[0, 0, 1], [1, 1, 0]])
    assert consistency(Const(), np.zeros((2, 1)), np.zeros((2, 1)), prefs) == 0.5


def test_global_references_fit(toy):
    m = MRCCA(n_clusters=2, d=6, n_components=5, references="global", seed=0)
    m.fit(toy["Itr"], toy["Mtr"], toy["Ptr"])
    assert m.clusters_[0].dtrt_img is m.clusters_[1].dtrt_img
    assert len(m.clusters_[0].dtrt_img.refs) == round(600 / 6)
    assert consistency(m, toy["Ite"], toy["Mte"], toy["Pte"]) > 0.8


def test_determinism(toy, fitted):
    again = MRCCA(n_clusters=2, d=6, n_components=5, seed=0)
    again.fit(toy["Itr"], toy["Mtr"], toy["Ptr"])
    for method in ("c-cca", "cr-cca", "mr-cca"):
        np.testing.assert_array_equal(again.score(toy["Ite"], toy["Mte"], method=method),
                                      fitted.score(toy["Ite"], toy["Mte"], method=method))
    other = MRCCA(n_clusters=2, d=6, n_components=5, seed=1).fit(toy["Itr"], toy["Mtr"], toy["Ptr"])
    assert not np.array_equal(other.score(toy["Ite"], toy["Mte"]),
                              fitted.score(toy["Ite"], toy["Mte"]))


def test_cca_falls_back_to_gesvd_when_gesdd_does_not_converge(monkeypatch):
    from i2s import mrcca
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(40, 5)), rng.normal(size=(40, 4))
    want = mrcca.fit_cca(X, Y, 3)

    def fails(*a, **k):
        raise np.linalg.LinAlgError("SVD did not converge")
    monkeypatch.setattr(mrcca.np.linalg, "svd", fails)
    got = mrcca.fit_cca(X, Y, 3)
    np.testing.assert_allclose(got.corrs, want.corrs, rtol=1e-8)
    with pytest.raises(ValueError, match="non-finite"):
        mrcca.fit_cca(np.full((5, 2), np.nan), Y[:5], 1)


# ------------------------------------------------------ fast path vs reference ---
def protocol_toy(n_seg=240, seed=0):
    """A small protocol dataset: segments of videos in 3 music styles, 1-2 frames each, 3 votes per pair."""
    rng = np.random.default_rng(seed)
    n_vid = 40
    style = rng.integers(3, size=n_vid)
    seg_video = np.sort(rng.integers(n_vid, size=n_seg))
    z = rng.normal(0, 3, (3, 4))[style[seg_video]] + rng.normal(0, 0.6, (n_seg, 4))
    post = np.exp(z @ rng.normal(size=(4, 5)) / 2)
    music = np.hstack([z, post / post.sum(1, keepdims=True)])
    frame_segment = np.repeat(np.arange(n_seg), 1 + rng.integers(0, 2, size=n_seg))
    maps = rng.normal(size=(3, 4, 6))
    implied = np.einsum("ni,nij->nj", z, maps[style[seg_video]])
    look = implied[frame_segment] + rng.normal(0, 1.0, (len(frame_segment), 6))
    hist = np.exp(look[:, :3] / 3)
    images = np.hstack([look, hist / hist.sum(1, keepdims=True)]).astype(np.float32)
    first = np.searchsorted(frame_segment, np.arange(n_seg))
    labelled = np.flatnonzero(rng.random(n_seg) < 0.8)
    other = rng.integers(len(frame_segment), size=len(labelled))
    clash = seg_video[frame_segment[other]] == seg_video[labelled]
    other[clash] = (other[clash] + len(frame_segment) // 2) % len(frame_segment)
    own = first[labelled]
    gap = (((look[other] - implied[labelled]) ** 2).sum(1) - ((look[own] - implied[labelled]) ** 2).sum(1)) / 10
    votes = [pd.DataFrame({"segment": labelled, "frame_mv": own, "frame_random": other, "labeler": k,
                           "prefers_mv": rng.random(len(labelled)) < 1 / (1 + np.exp(-gap))}) for k in range(3)]
    prefs = pd.concat(votes, ignore_index=True)
    keep = seg_video[frame_segment[prefs["frame_random"]]] != seg_video[prefs["segment"]]
    return dict(music=music, images=images, frame_segment=frame_segment, prefs=prefs[keep].reset_index(drop=True),
                n_train=int(0.75 * n_seg), n_components=4, combine="mean",
                image_blocks=[slice(0, 6), slice(6, 9)], image_metrics=["l2", "hellinger"],
                music_blocks=[slice(0, 4), slice(4, 9)], music_metrics=["l2", "hellinger"])


@pytest.fixture(scope="module")
def ptoy():
    return protocol_toy()


SCORE_COLUMNS = [f"{p}{m}{u}" for p in ("", "val ") for m in ("c-cca", "cr-cca", "mr-cca") for u in ("", " unanimous")]


@pytest.mark.parametrize("combine,sigma", [("mean", "reference"), ("mean", "set"), ("concat", "set")])
def test_fast_path_equals_reference(ptoy, combine, sigma):
    # float32 distances carry ~1e-6 relative error and the ranking SVM stops at a tolerance, so scores differ
    # in the 5th-6th digit: a vote can only flip if its two pairs score within that, i.e. about never
    data = {**ptoy, "combine": combine, "sigma": sigma}
    for K in (2, 3):
        fast = mrcca.run_setting(**data, K=K, d=[3, 5], seed=4, val_fraction=0.2, details=True)
        for row in fast:
            ref = mrcca.run_repeat(**data, K=K, d=row["d"], seed=4, val_fraction=0.2)
            inp = mrcca.repeat_inputs(data["music"], data["frame_segment"], data["prefs"], data["n_train"], 4, 0.2,
                                      data["music_blocks"], data["music_metrics"])
            model = MRCCA(n_clusters=K, d=row["d"], n_components=4, combine=combine, seed=4, sigma=sigma,
                          image_blocks=data["image_blocks"], image_metrics=data["image_metrics"],
                          music_blocks=data["music_blocks"], music_metrics=data["music_metrics"])
            model.fit(data["images"][inp.frames], inp.music_z[data["frame_segment"][inp.frames]], inp.fit_votes)
            np.testing.assert_array_equal(row["labels"], model.labels_)
            assert row["temperature"] == model.temperature_
            for cm, fc in zip(model.clusters_, row["clusters"]):
                # per-reference sigmas: the reference path sorts its references, the fast one keeps draw order
                order = (lambda a: np.sort(a, axis=-1)) if sigma == "reference" else (lambda a: a)  # noqa: E731
                # a single small float32 distance (|a|^2 + |b|^2 - 2ab) keeps ~1e-5 of its value, a median of one
                # set of them more: the per-reference medians get the looser tolerance
                tol = 1e-4 if sigma == "reference" else 1e-5
                np.testing.assert_allclose(order(fc["sigma_img"]), order(cm.dtrt_img.sigmas), rtol=tol)
                np.testing.assert_allclose(order(fc["sigma_mus"]), order(cm.dtrt_mus.sigmas), rtol=tol)
                np.testing.assert_allclose(fc["cca"].corrs, cm.cca.corrs, rtol=1e-4, atol=1e-6)
                np.testing.assert_allclose(fc["W"], cm.W, rtol=1e-2, atol=1e-3)
            for col in SCORE_COLUMNS:
                n = row["test_votes"] if not col.startswith("val") else row["val_votes"]
                assert abs(row[col] - ref[col]) <= 1 / n, col
            assert row["train_votes"] == ref["train_votes"] and row["val_votes"] == ref["val_votes"] > 0


@pytest.mark.parametrize("references", ["local", "global"])
def test_fast_path_per_reference_sigma_at_global_references(ptoy, references):
    rows = mrcca.run_setting(**ptoy, K=3, d=[2, 4], seed=1, val_fraction=0.2, references=references)
    for row in rows:
        ref = mrcca.run_repeat(**ptoy, K=3, d=row["d"], seed=1, val_fraction=0.2, references=references)
        for col in SCORE_COLUMNS:
            n = row["test_votes"] if not col.startswith("val") else row["val_votes"]
            assert abs(row[col] - ref[col]) <= 1 / n, col


def test_a_d_sweep_equals_each_d_fitted_alone(ptoy):
    # per-reference sigma: the d sweep shares one factorisation per cluster; fitting each d alone must agree
    swept = mrcca.run_setting(**ptoy, K=2, d=[2, 3, 6], seed=2, val_fraction=0.2, details=True)
    for row in swept:
        alone = mrcca.run_setting(**ptoy, K=2, d=row["d"], seed=2, val_fraction=0.2, details=True)[0]
        for a, b in zip(row["clusters"], alone["clusters"]):
            np.testing.assert_allclose(a["cca"].corrs, b["cca"].corrs, rtol=1e-4, atol=1e-6)
            np.testing.assert_array_equal(a["sigma_img"], b["sigma_img"])
        for col in SCORE_COLUMNS:
            n = row["test_votes"] if not col.startswith("val") else row["val_votes"]
            assert abs(row[col] - alone[col]) <= 1 / n, col


def test_nested_cca_equals_cca_on_leading_columns():
    X, Y = correlated(n=500, seed=3)
    X = np.hstack([X, np.sin(X), X ** 2])
    Y = np.hstack([Y, np.cos(Y)])
    sizes = [(3, 2), (X.shape[1] - 2, Y.shape[1] - 1), (X.shape[1], Y.shape[1])]
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    kept = mrcca.fit_cca_nested(X32, Y32, sizes, 2)
    np.testing.assert_array_equal(X32, X.astype(np.float32))  # without overwrite the inputs are left alone
    for (px, py), model, again in zip(sizes, kept, mrcca.fit_cca_nested(X32.copy(), Y32.copy(), sizes, 2,
                                                                        overwrite=True)):
        ref = fit_cca(X[:, :px], Y[:, :py], 2)
        np.testing.assert_allclose(model.corrs, ref.corrs, rtol=1e-4)
        np.testing.assert_allclose(model.transform_x(X[:, :px]) * model.transform_y(Y[:, :py]),
                                   ref.transform_x(X[:, :px]) * ref.transform_y(Y[:, :py]), rtol=1e-3, atol=1e-4)
        np.testing.assert_array_equal(again.Wx, model.Wx)  # centring in place changes nothing
        np.testing.assert_array_equal(again.Wy, model.Wy)


def test_leading_solves_equal_solves_with_each_leading_block():
    import scipy.linalg as sla
    rng = np.random.default_rng(2)
    A = rng.normal(size=(9, 9))
    L = np.linalg.cholesky(A @ A.T + 9 * np.eye(9))
    parts = [(3, rng.normal(size=(3, 2))), (9, rng.normal(size=(9, 1))), (6, rng.normal(size=(6, 3)))]
    for (p, u), got in zip(parts, mrcca._leading_solves(L, parts)):
        np.testing.assert_allclose(got, sla.solve_triangular(L[:p, :p], u, lower=True, trans="T"), rtol=1e-12)


def test_reference_sigma_is_each_references_median_nonzero_distance():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(70, 5))
    X[10:20] = X[0]  # duplicates of reference 0: their distances to it are 0 and skipped
    blocks = [slice(0, 3), slice(3, 5)]
    side = mrcca._Side.of(X, blocks, ["l2", "l2"])
    refs = np.array([0, 3, 7, 40, 41, 42])
    D = dtrt_distances(X, X[refs], blocks, ["l2", "l2"]).reshape(70, 2, len(refs))
    want = np.array([[np.median(D[:, t, r][D[:, t, r] > 0]) for r in range(len(refs))] for t in range(2)])
    for block in (1, 4, None):  # references a block at a time, uneven blocks included: the same result
        sig, S = mrcca._reference_dtrt(side, np.arange(70), refs, block=block)
        np.testing.assert_allclose(sig, want, rtol=1e-5)
        np.testing.assert_allclose(S, np.exp(-((D / want) ** 2).mean(1)), rtol=1e-4, atol=1e-6)
    # and the reference path's DtRT has the same sigmas
    np.testing.assert_allclose(mrcca.fit_dtrt(X, X[refs], blocks, ["l2", "l2"], "mean", "reference").sigmas, want)


def test_per_reference_sigma_on_the_fast_path_needs_mean_combine(ptoy):
    with pytest.raises(ValueError, match="combine='mean'"):
        mrcca.run_setting(**{**ptoy, "combine": "concat"}, K=2, d=3, seed=0, sigma="reference")
    with pytest.raises(ValueError, match="sigma"):
        mrcca.run_setting(**ptoy, K=2, d=3, seed=0, sigma="per-row")


def test_fast_cca_equals_reference_cca(monkeypatch):
    X, Y = correlated(n=600, seed=2)
    X = np.hstack([X, X[:, :2] ** 2]).astype(np.float32)
    ref, fast = fit_cca(X, Y, 3), mrcca.fit_cca_fast(X, Y, 3)
    np.testing.assert_allclose(fast.corrs, ref.corrs, rtol=1e-5)
    # directions agree up to a sign per pair, which the products (A x)_k (B y)_k do not see
    np.testing.assert_allclose(fast.transform_x(X) * fast.transform_y(Y), ref.transform_x(X) * ref.transform_y(Y),
                               rtol=1e-3, atol=1e-4)
    # a big enough problem takes the ARPACK branch: same top correlations
    monkeypatch.setattr(mrcca, "SVD_DENSE_MAX", 20)
    Xb = np.random.default_rng(0).normal(size=(900, 60))
    Yb = Xb[:, ::-1] + np.random.default_rng(1).normal(size=Xb.shape)
    np.testing.assert_allclose(mrcca.fit_cca_fast(Xb, Yb, 5).corrs, fit_cca(Xb, Yb, 5).corrs, rtol=1e-5)


def test_sigma_is_the_median_of_nonzero_distances_with_duplicates():
    rng = np.random.default_rng(8)
    X = rng.normal(size=(60, 5))
    X[10:20] = X[0]  # duplicates of a row: their distances to it are 0 and skipped
    side = mrcca._Side.of(X, [slice(0, 3), slice(3, 5)], ["l2", "l2"])
    refs = np.array([0, 3, 7, 40, 41])
    for R in (2, 5):
        D = dtrt_distances(X, X[refs[:R]], [slice(0, 3), slice(3, 5)], ["l2", "l2"]).reshape(60, 2, R)
        want = [np.median(D[:, t][D[:, t] > 0]) for t in range(2)]
        got = mrcca._sigmas(side, np.arange(60), refs, [R])[0]
        np.testing.assert_allclose(got, want, rtol=1e-5)


def test_kth_smallest_is_exact():
    rng = np.random.default_rng(9)
    X = rng.gamma(2, size=(700, 90)).astype(np.float32)[:, :60]
    ks = np.array([X.size // 2 - 1, X.size // 2, 5, X.size - 1])
    np.testing.assert_array_equal(mrcca._kth_smallest(X, ks), np.partition(X.ravel(), ks)[ks])


def test_reference_sets_nest_across_d():
    labels = np.repeat([0, 1], [90, 45])
    for mode in ("local", "global"):
        small, big = select_references(labels, 9, 3, mode), select_references(labels, 3, 3, mode)
        for s, b in zip(np.atleast_2d(small) if mode == "global" else small,
                        np.atleast_2d(big) if mode == "global" else big):
            assert set(s) < set(b)


# ------------------------------------------------------------- the protocol ---
def test_validation_selection_never_reads_test_votes(ptoy):
    grid = [{"K": k, "d": [3, 6], "seed": s, "val_fraction": 0.3} for k in (2, 3) for s in (0, 1)]
    runs = mrcca.sweep(grid, {"backend": "local", "n_jobs": 1}, **ptoy)
    # flip every vote on segments that are test segments in both repeats
    test_both = ~(mrcca.repeat_split(240, ptoy["n_train"], 0) | mrcca.repeat_split(240, ptoy["n_train"], 1))
    prefs = ptoy["prefs"].copy()
    hit = test_both[prefs["segment"].to_numpy()]
    assert hit.sum() > 20
    prefs.loc[hit, "prefers_mv"] = ~prefs.loc[hit, "prefers_mv"]
    flipped = mrcca.sweep(grid, {"backend": "local", "n_jobs": 1}, **{**ptoy, "prefs": prefs})
    val_cols = [c for c in SCORE_COLUMNS if c.startswith("val")]
    pd.testing.assert_frame_equal(runs[val_cols], flipped[val_cols])
    assert not runs["mr-cca"].equals(flipped["mr-cca"])  # the perturbation did reach the test columns
    a, b = mrcca.select_on_validation(runs), mrcca.select_on_validation(flipped)
    pd.testing.assert_frame_equal(a.loc[[0], ["K", "d", "val"]], b.loc[[0], ["K", "d", "val"]])
    assert a.loc[0, "selection"].startswith("validation") and "test-argmax" in a.loc[1, "selection"]


def test_protocol_tables_share_runs_and_keep_order(ptoy):
    configs, wanted = mrcca.protocol_configs(repeats=2, k_values=[2, 3], d_for_k_sweep=4, d_values=[3, 4],
                                             k_for_d_sweep=3, table1=(2, 4), table1_repeats=1, settings=((2, 5),),
                                             val_fraction=0.2)
    # a (repeat, K) clusters once: K=3 at d 3, 4 is one task; K=2 carries d 4 and the extra setting's 5
    local = [c for c in configs if not c["alone"]]
    assert sorted(len(c["d"]) for c in local) == [2, 2, 2, 2]
    tables = mrcca.run_protocol(configs, wanted, {"backend": "local", "n_jobs": 1}, **ptoy)
    assert len(tables["fig2a"]) == 4 and len(tables["fig2b"]) == 4 and len(tables["settings"]) == 2
    assert sorted(tables["table1"]["references"]) == ["global", "local"]
    shared = tables["fig2a"].query("K == 3").reset_index(drop=True)
    np.testing.assert_array_equal(shared["mr-cca"], tables["fig2b"].query("d == 4")["mr-cca"])
    assert list(tables["fig2a"]["K"]) == [2, 3, 2, 3] and list(tables["fig2a"]["seed"]) == [0, 0, 1, 1]


def test_findings_quote_only_the_paper_numbers_given(ptoy):
    runs = mrcca.sweep([{"K": 2, "d": [3, 4], "seed": 0}, {"K": 3, "d": [3], "seed": 0},
                        {"K": 2, "d": [3], "seed": 0, "references": "global"}], 1, **ptoy)
    runs_k, runs_d = runs.query("d == 3 and references == 'local'"), runs.query("K == 2 and references == 'local'")
    runs_ref = runs.query("K == 2 and d == 3")
    plain = " ".join(mrcca.findings(runs_k, runs_d, runs_ref))
    assert "80.35" not in plain and "18.7" not in plain and "paper: always" in plain
    quoted = " ".join(mrcca.findings(runs_k, runs_d, runs_ref, {"consistency %": {"local": 1.5, "global": 2.5},
                                                                "training s": {"local": 2.0, "global": 5.0}}))
    assert "1.50% vs 2.50%" in quoted and "2.5× as long" in quoted


def test_fast_cca_on_distinct_music_rows_equals_cca_on_repeated_rows():
    # frames of a segment share its music: fitting on the distinct rows with a row map is the same CCA
    X, Y = correlated(n=400, seed=5)
    y_rows = np.sort(np.random.default_rng(0).integers(150, size=400))
    used, y_rows = np.unique(y_rows, return_inverse=True)
    Yd = Y[:len(used)]
    ref, fast = fit_cca(X, Yd[y_rows], 3), mrcca.fit_cca_fast(X, Yd, 3, y_rows=y_rows[::-1][::-1])
    np.testing.assert_allclose(fast.corrs, ref.corrs, rtol=1e-5)
    np.testing.assert_allclose(fast.transform_x(X) * fast.transform_y(Yd[y_rows]),
                               ref.transform_x(X) * ref.transform_y(Yd[y_rows]), rtol=1e-3, atol=1e-4)
    shuffled = np.random.default_rng(1).permutation(400)  # rows need not come grouped
    again = mrcca.fit_cca_fast(X[shuffled], Yd, 3, y_rows=y_rows[shuffled])
    np.testing.assert_allclose(again.corrs, ref.corrs, rtol=1e-5)


def test_preference_frames_taken_from_the_pool_equal_their_transform():
    rng = np.random.default_rng(4)
    X = rng.random((40, 6))
    side = mrcca._Side.of(X, [slice(0, 2), slice(2, 6)], ["l2", "hellinger"])
    refs = np.array([1, 5, 9, 30])
    sig = rng.uniform(0.5, 2.0, (2, len(refs)))
    want = mrcca._similarities_ref(side, np.arange(40), refs, sig)
    pool_rows = np.arange(0, 40, 3)                      # the pool holds every third frame
    pool_row = np.full(40, -1)
    pool_row[pool_rows] = np.arange(len(pool_rows))
    frames = np.array([0, 2, 3, 7, 9, 39])               # some in the pool, some not
    got = mrcca._pref_dtrt(side, frames, refs, sig, (want[pool_rows], pool_row))
    np.testing.assert_allclose(got, want[frames], rtol=1e-6)
    assert not np.allclose(mrcca._pref_dtrt(side, frames, refs, sig, (want[pool_rows] * 0, pool_row)), want[frames])


def test_unanimous_marks_the_votes_of_segments_whose_labelers_all_agree():
    prefs = pd.DataFrame({"segment": [1, 1, 2, 2, 2, 3, 3, 4, 5, 5],
                          "prefers_mv": [True, True, True, False, True, False, False, True, False, True]})
    mask = np.ones(len(prefs), bool)
    mask[-1] = False                                     # segment 5's second vote is outside the part
    got = mrcca._unanimous(prefs, mask)
    np.testing.assert_array_equal(got, [True, True, False, False, False, True, True, True, True])
