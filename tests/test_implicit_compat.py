"""backpack.implicit against implicit itself: same inputs, same outputs.

implicit (a test dependency) is the reference: where both sides can be given identical state
(factors, similarity inputs, seeds) the results must match; where the state comes from training
(different kernels), the behaviour implicit documents is checked instead.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import scipy.sparse as sp

implicit = pytest.importorskip("implicit")

implicit_evaluation = pytest.importorskip("implicit.evaluation")


import backpack.implicit as bi
from backpack.errors import ModelFitError, ParameterWarning, UnsupportedOptionError


def _counts(users=120, items=60, density=0.12, seed=3) -> sp.csr_matrix:
    # continuous weights: no ties, so both sides must agree on every position
    return sp.random(users, items, density=density, format="csr", random_state=seed, dtype=np.float64) * 4 + 0


def _same_ranking(ids, scores, want_ids, want_scores, msg=""):
    """Same scores position by position, and the same ids within each run of equal scores.

    A run cut by the end of the list may hold different members of a tie on either side.
    """
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5, err_msg=str(msg))
    start = 0
    for end in range(1, len(want_scores) + 1):
        if end == len(want_scores) or not np.isclose(want_scores[end], want_scores[start], rtol=1e-5, atol=1e-5):
            if end < len(want_scores):
                assert set(ids[start:end].tolist()) == set(want_ids[start:end].tolist()), msg
            start = end


def _mirror_factors(ours, theirs, seed=0, users=40, items=30, f=5):
    rng = np.random.default_rng(seed)
    ours.user_factors = theirs.user_factors = rng.standard_normal((users, f)).astype(np.float32)
    ours.item_factors = theirs.item_factors = rng.standard_normal((items, f)).astype(np.float32)
    ours._user_norms = ours._item_norms = None
    theirs._user_norms = theirs._item_norms = None


KNN = [
    (bi.nearest_neighbours.CosineRecommender, implicit.nearest_neighbours.CosineRecommender, {}),
    (bi.nearest_neighbours.TFIDFRecommender, implicit.nearest_neighbours.TFIDFRecommender, {}),
    (bi.nearest_neighbours.BM25Recommender, implicit.nearest_neighbours.BM25Recommender, {"K1": 1.5, "B": 0.6}),
]


@pytest.mark.parametrize("ours_cls, theirs_cls, params", KNN)
@pytest.mark.parametrize("K", [1, 4, 80])
def test_knn_similarity_matrix_is_implicits(ours_cls, theirs_cls, params, K):
    counts = _counts()
    ours, theirs = ours_cls(K=K, **params), theirs_cls(K=K, **params)
    ours.fit(counts, show_progress=False)
    theirs.fit(counts, show_progress=False)
    a, b = ours.similarity.toarray(), theirs.similarity.toarray()
    assert ours.similarity.dtype == np.float64
    np.testing.assert_array_equal(a != 0, b != 0)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("ours_cls, theirs_cls, params", KNN)
def test_knn_recommend_and_similar_items_are_implicits(ours_cls, theirs_cls, params):
    counts = _counts()
    ours, theirs = ours_cls(K=6, **params), theirs_cls(K=6, **params)
    ours.fit(counts, show_progress=False)
    theirs.fit(counts, show_progress=False)
    calls = [
        {"N": 5},
        {"N": 40},  # more than the bag reaches: only reached items (held ones at score 0)
        {"N": 5, "filter_already_liked_items": False},
        {"N": 5, "filter_items": [1, 2, 3, 7]},  # implicit returns up to N + 4 items here (its quirk)
        {"N": 8, "items": [0, 5, 9, 11, 30, 59]},
    ]
    for call in calls:
        for u in range(0, counts.shape[0], 7):
            ids, scores = ours.recommend(u, counts[u], **call)
            want_ids, want_scores = theirs.recommend(u, counts[u], **call)
            assert ids.dtype == want_ids.dtype and scores.dtype == want_scores.dtype, call
            _same_ranking(ids, scores, want_ids, want_scores, call)
        users = np.arange(0, 30)
        ids, scores = ours.recommend(users, counts[users], **call)
        want_ids, want_scores = theirs.recommend(users, counts[users], **call)
        assert ids.shape == want_ids.shape and ids.dtype == want_ids.dtype and scores.dtype == want_scores.dtype
        np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(ids == -1, want_ids == -1)
    for i in range(counts.shape[1]):
        for call in ({"N": 3}, {"N": 10, "filter_items": [i, 4]}, {"N": 4, "items": np.array([0, 1, 2, i])}):
            ids, scores = ours.similar_items(i, **call)
            want_ids, want_scores = theirs.similar_items(i, **call)
            _same_ranking(ids, scores, want_ids, want_scores, call)
    ids, _ = ours.similar_items(np.arange(5), N=6)
    assert ids.shape == (5, 6) and (ids[:, 0] == np.arange(5)).all()  # the query item comes first
    assert ours.similar_items(counts.shape[1] + 3)[0].size == 0  # implicit: an unknown item has no neighbours


def test_knn_errors_are_implicits():
    counts = _counts()
    model = bi.nearest_neighbours.CosineRecommender(K=5)
    with pytest.raises(NotImplementedError):
        model.fit(counts, show_progress=False, callback=lambda *a: None)
    model.fit(counts, show_progress=False)
    with pytest.raises(NotImplementedError):
        model.similar_users(0)
    with pytest.raises(NotImplementedError):
        model.similar_items(0, recalculate_item=True, item_users=counts.T.tocsr()[:1])
    with pytest.raises(ValueError):
        model.recommend(0, counts[0].tocoo())
    with pytest.raises(ValueError):
        model.recommend([0, 1], counts[:3])
    with pytest.raises(IndexError):
        model.recommend(0, counts[0], items=[1, counts.shape[1]])
    with pytest.raises(ValueError):
        model.recommend(0, counts[0], items=[1], filter_items=[2])


def test_knn_save_load_files_interchange_with_implicit(tmp_path):
    counts = _counts()
    ours = bi.nearest_neighbours.BM25Recommender(K=7, K1=2.0, B=0.5)
    ours.fit(counts, show_progress=False)
    buffer = io.BytesIO()
    ours.save(buffer)
    buffer.seek(0)
    theirs = implicit.nearest_neighbours.BM25Recommender.load(buffer)  # implicit reads our file
    np.testing.assert_array_equal(theirs.similarity.toarray(), ours.similarity.toarray())
    theirs.save(str(tmp_path / "theirs"))  # numpy adds .npz, load finds it
    back = bi.nearest_neighbours.BM25Recommender.load(str(tmp_path / "theirs"))
    assert back.K == 7
    np.testing.assert_array_equal(back.recommend(3, counts[3])[0], ours.recommend(3, counts[3])[0])


CALLS = [
    {"N": 6},
    {"N": 50},  # more than the catalogue: implicit pads with id 0 / score 0
    {"N": 6, "filter_already_liked_items": False},
    {"N": 6, "filter_items": [0, 3, 4]},
    {"N": 4, "items": [2, 5, 7, 9, 11, 20]},
]


@pytest.mark.parametrize("call", CALLS)
def test_factor_recommend_matches_implicit_on_the_same_factors(call):
    ours, theirs = (
        bi.als.AlternatingLeastSquares(factors=5),
        implicit.als.AlternatingLeastSquares(factors=5, use_gpu=False),
    )
    _mirror_factors(ours, theirs)
    held = sp.random(40, 30, density=0.2, format="csr", random_state=5, dtype=np.float32)
    for u in range(40):
        ids, scores = ours.recommend(u, held[u], **call)
        want_ids, want_scores = theirs.recommend(u, held[u], **call)
        assert ids.shape == want_ids.shape and scores.dtype == want_scores.dtype
        _same_ranking(ids, scores, want_ids, want_scores, call)  # the -FLT_MAX tail is one tie
    users = np.arange(12)
    ids, scores = ours.recommend(users, held[users], **call)
    want_ids, want_scores = theirs.recommend(users, held[users], **call)
    assert ids.shape == want_ids.shape and ids.dtype == want_ids.dtype
    np.testing.assert_allclose(scores, want_scores, rtol=1e-5, atol=1e-5)


def test_factor_similar_items_and_users_match_implicit():
    ours, theirs = (
        bi.bpr.BayesianPersonalizedRanking(factors=4),
        implicit.bpr.BayesianPersonalizedRanking(factors=4, use_gpu=False),
    )
    _mirror_factors(ours, theirs)
    for call in ({"N": 5}, {"N": 5, "filter_items": [1, 2]}, {"N": 3, "items": [0, 4, 8, 9]}):
        for i in (0, 7, 29):
            got, want = ours.similar_items(i, **call), theirs.similar_items(i, **call)
            np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
            np.testing.assert_array_equal(got[0], want[0])
    got, want = ours.similar_users(np.arange(6), N=4), theirs.similar_users(np.arange(6), N=4)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError):
        ours.recommend(0, sp.csr_matrix((1, 30)), recalculate_user=True)


def test_als_recalculate_explain_and_loss_match_implicit():
    ours = bi.als.AlternatingLeastSquares(factors=5, regularization=0.3, alpha=2.0)
    theirs = implicit.als.AlternatingLeastSquares(factors=5, regularization=0.3, alpha=2.0, use_gpu=False)
    _mirror_factors(ours, theirs)
    held = sp.random(40, 30, density=0.2, format="csr", random_state=5, dtype=np.float32) * 3
    np.testing.assert_allclose(
        ours.recalculate_user(np.arange(40), held), theirs.recalculate_user(np.arange(40), held), rtol=1e-3, atol=1e-4
    )
    item_users = held.T.tocsr()
    np.testing.assert_allclose(
        ours.recalculate_item(np.arange(30), item_users),
        theirs.recalculate_item(np.arange(30), item_users),
        rtol=1e-3,
        atol=1e-4,
    )
    for u in (0, 5, 17):
        score, top, _ = ours.explain(u, held, itemid=3, N=4)
        want_score, want_top, _ = theirs.explain(u, held, itemid=3, N=4)
        assert score == pytest.approx(want_score, rel=1e-5, abs=1e-6)
        assert [i for i, _ in top] == [i for i, _ in want_top]
        np.testing.assert_allclose([s for _, s in top], [s for _, s in want_top], rtol=1e-5, atol=1e-6)
    for reg in (0.0, 0.7):
        got = bi.cpu.als.calculate_loss(held, ours.user_factors, ours.item_factors, reg)
        want = implicit.cpu.als.calculate_loss(held, ours.user_factors, ours.item_factors, regularization=reg)
        assert got == pytest.approx(want, rel=1e-4)


def test_als_fit_solves_the_least_squares_system_exactly_with_use_cg_false():
    # reference: one exact ALS alternation in NumPy from the same start
    counts = _counts(30, 20, 0.3, seed=8).astype(np.float32)
    model = bi.als.AlternatingLeastSquares(factors=4, regularization=0.1, alpha=3.0, use_cg=False, iterations=1)
    rng = np.random.default_rng(1)
    X0 = rng.random((30, 4), dtype=np.float32) * 0.01
    Y0 = rng.random((20, 4), dtype=np.float32) * 0.01
    model.user_factors, model.item_factors = X0.copy(), Y0.copy()
    model.fit(counts, show_progress=False)
    C = counts.toarray() * 3.0

    def solve(conf, other):
        out = np.zeros((conf.shape[0], other.shape[1]))
        for r in range(conf.shape[0]):
            c = np.where(conf[r] > 0, conf[r], 1.0)
            p = (conf[r] > 0).astype(float)
            A = (other.T * c) @ other + 0.1 * np.eye(other.shape[1])
            out[r] = np.linalg.solve(A, (other.T * c) @ p) if (conf[r] > 0).any() else 0
        return out

    X = solve(C, Y0.astype(np.float64))
    Y = solve(C.T, X)
    np.testing.assert_allclose(model.user_factors, X, rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(model.item_factors, Y, rtol=1e-3, atol=1e-5)


def test_options_implicit_accepts_and_refuses():
    bi.als.AlternatingLeastSquares(use_gpu=False, use_native=False, use_cg=False, dtype=np.float64)
    bi.bpr.BayesianPersonalizedRanking(use_gpu=False, dtype=np.float64)
    assert bi.als.AlternatingLeastSquares().factors == 100  # implicit's default, not Backpack's 64
    for make in (
        lambda: bi.als.AlternatingLeastSquares(use_gpu=True),
        lambda: bi.bpr.BayesianPersonalizedRanking(use_gpu=True),
        lambda: bi.als.AlternatingLeastSquares(dtype=np.float16),
    ):
        with pytest.raises(UnsupportedOptionError) as info:
            make()
        assert isinstance(info.value, ValueError)
    assert bi.gpu.HAS_CUDA is False
    assert bi.utils.ParameterWarning is ParameterWarning
    with pytest.warns(ParameterWarning):
        bi.als.AlternatingLeastSquares(factors=2, iterations=1).fit(_counts().tocoo(), show_progress=False)


def test_fit_callbacks_and_nan_factors():
    counts = _counts()
    seen = []
    model = bi.als.AlternatingLeastSquares(factors=3, iterations=4, calculate_training_loss=True)
    model.fit(counts, show_progress=False, callback=lambda *args: seen.append(args))
    assert [s[0] for s in seen] == [0, 1, 2, 3] and all(s[2] > 0 for s in seen)
    epochs = []
    bpr = bi.bpr.BayesianPersonalizedRanking(factors=3, iterations=3, random_state=1)
    bpr.fit(counts, show_progress=False, callback=lambda *args: epochs.append(args))
    assert [e[0] for e in epochs] == [0, 1, 2]
    assert bpr.user_factors.shape == (counts.shape[0], 4) and (bpr.user_factors[:, 3] != 0).any()
    bad = bi.als.AlternatingLeastSquares(factors=2)
    bad.user_factors = np.full((counts.shape[0], 2), np.nan, np.float32)
    with pytest.raises(ModelFitError):
        bad._check_fit_errors() if bad.item_factors is not None else bad._check_factors(
            bad.user_factors, bad.user_factors
        )


def test_factor_files_interchange_with_implicit():
    counts = _counts()
    ours = bi.als.AlternatingLeastSquares(factors=3, iterations=2, random_state=4)
    ours.fit(counts, show_progress=False)
    buffer = io.BytesIO()
    ours.save(buffer)
    buffer.seek(0)
    theirs = implicit.cpu.als.AlternatingLeastSquares.load(buffer)
    np.testing.assert_array_equal(theirs.item_factors, ours.item_factors)
    buffer = io.BytesIO()
    theirs.save(buffer)
    buffer.seek(0)
    back = bi.als.AlternatingLeastSquares.load(buffer)
    assert back.factors == 3 and back.dtype == np.float32
    np.testing.assert_array_equal(back.recommend(1, counts[1])[0], ours.recommend(1, counts[1])[0])
    unfitted = io.BytesIO()
    bi.bpr.BayesianPersonalizedRanking(factors=7).save(unfitted)
    unfitted.seek(0)
    assert bi.bpr.BayesianPersonalizedRanking.load(unfitted).factors == 7


def test_partial_fit_grows_the_model():
    counts = _counts()
    model = bi.als.AlternatingLeastSquares(factors=3, iterations=3, random_state=2)
    model.fit(counts, show_progress=False)
    n_users, n_items = counts.shape
    model.partial_fit_users([n_users + 2], counts[:1])
    assert model.user_factors.shape[0] == n_users + 3 and not model.user_factors[n_users].any()
    model.partial_fit_items([n_items], counts.T.tocsr()[:1])
    assert model.item_factors.shape[0] == n_items + 1
    # rows as wide as the old catalogue still work after the model grew
    ids, _ = model.recommend(n_users + 2, counts[:1], N=n_items + 1)
    assert n_items in ids


def test_metrics_and_splits_match_implicit():
    counts = _counts(200, 50, 0.15, seed=11)
    train, test = bi.evaluation.train_test_split(counts, 0.7, random_state=5)
    want_train, want_test = implicit_evaluation.train_test_split(counts, 0.7, random_state=5)
    assert (train != want_train).nnz == 0 and (test != want_test).nnz == 0
    model = bi.nearest_neighbours.CosineRecommender(K=10)
    model.fit(train, show_progress=False)
    got = bi.evaluation.ranking_metrics_at_k(model, train, test, K=5, show_progress=False)
    want = implicit_evaluation.ranking_metrics_at_k(model, train, test, K=5, show_progress=False)
    assert got.keys() == want.keys()
    for key in got:
        assert got[key] == pytest.approx(want[key], rel=1e-9), key
    assert bi.evaluation.ndcg_at_k(model, train, test, K=5, show_progress=False) == pytest.approx(want["ndcg"])
    for K, share in ((1, 0.0), (2, 0.5)):
        train, test = bi.evaluation.leave_k_out_split(counts, K=K, train_only_size=share, random_state=3)
        assert ((train + test) != counts).nnz == 0
        per_user = np.diff(test.indptr)
        eligible = np.diff(counts.indptr) > K + 1
        assert set(per_user[per_user > 0].tolist()) == {K} and not per_user[~eligible].any()
        if share:
            assert (~eligible | (per_user == 0)).sum() >= int(counts.shape[0] * share)
    for bad in ({"K": 0}, {"K": 1, "train_only_size": 1.0}, {"K": 1, "train_only_size": -0.1}):
        with pytest.raises(ValueError):
            bi.evaluation.leave_k_out_split(counts, **bad)


def test_item_item_base_and_weighting_helpers_match_implicit():
    counts = _counts(80, 40, 0.15, seed=21)
    for ours_fn, theirs_fn in (
        (bi.nearest_neighbours.normalize, implicit.nearest_neighbours.normalize),
        (bi.nearest_neighbours.tfidf_weight, implicit.nearest_neighbours.tfidf_weight),
        (
            lambda X: bi.nearest_neighbours.bm25_weight(X, 1.2, 0.75),
            lambda X: implicit.nearest_neighbours.bm25_weight(X, 1.2, 0.75),
        ),
    ):
        np.testing.assert_allclose(ours_fn(counts).toarray(), theirs_fn(counts).toarray(), rtol=1e-12)
    weighted = bi.nearest_neighbours.tfidf_weight(counts).tocsr()
    for K in (1, 3, 40):
        ours = bi.nearest_neighbours.all_pairs_knn(weighted, K, show_progress=False).toarray()
        theirs = implicit.nearest_neighbours.all_pairs_knn(weighted, K, show_progress=False).toarray()
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    model = bi.nearest_neighbours.ItemItemRecommender(K=4)
    model.fit(weighted, show_progress=False)
    reference = implicit.nearest_neighbours.ItemItemRecommender(K=4)
    reference.fit(weighted, show_progress=False)
    np.testing.assert_allclose(model.similarity.toarray(), reference.similarity.toarray(), rtol=1e-12)
    ids, scores = model.recommend(2, counts[2], N=5)
    want_ids, want_scores = reference.recommend(2, counts[2], N=5)
    _same_ranking(ids, scores, want_ids, want_scores)
