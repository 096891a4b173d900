"""Recommendation scoring against the reference, and the two guarantees
implicit's item-kNN lacks: no owned item when filtering, exactly N results."""

import numpy as np
import pytest
import reference
import scipy.sparse as sp
from conftest import random_user_items

from backpack import ItemKNN


def check_rows(model, m, ids, scores, n, *, filter_owned=True, allowed=None, denied=None):
    S = model.similarity.toarray().astype(np.float64)
    popularity = model.item_popularity
    X = m.toarray().astype(np.float64)
    for r in range(X.shape[0]):
        ref_ids, ref_scores, n_scored = reference.recommend(
            S, X[r], n, filter_owned=filter_owned, popularity=popularity, allowed=allowed, denied=denied
        )
        got = ids[r][ids[r] >= 0]
        assert got.size == ref_ids.size, f"row {r}: {got.size} results, expected {ref_ids.size}"
        np.testing.assert_allclose(scores[r][: got.size], ref_scores, rtol=2e-4, atol=1e-6)
        # ids may differ only inside exact ties of the personal part
        full = X[r] @ S
        np.testing.assert_allclose(full[got[:n_scored]], ref_scores[:n_scored], rtol=2e-4, atol=1e-6)
        assert got[n_scored:].tolist() == ref_ids[n_scored:].tolist(), "popularity fill order"
        assert (scores[r][:n_scored] >= 0).all() and (scores[r][n_scored : got.size] < 0).all()
        if filter_owned:
            assert not set(got) & set(np.flatnonzero(X[r])), "an owned item came back"
        assert (ids[r][got.size :] == -1).all() and np.isneginf(scores[r][got.size :]).all()


@pytest.mark.parametrize("kind", ["cosine", "bm25", "jaccard"])
@pytest.mark.parametrize("n", [1, 5, 40])
def test_recommend_matches_reference(kind, n):
    m = random_user_items(100, 50, 0.06, seed=n)
    model = ItemKNN(k=6, similarity=kind).fit(m, show_progress=False)
    ids, scores = model.recommend(np.arange(100), m, N=n)
    assert ids.shape == scores.shape == (100, n)
    check_rows(model, m, ids, scores, n)


def test_unfiltered_scores_include_owned_items():
    m = random_user_items(60, 30, 0.1, seed=2)
    model = ItemKNN(k=8).fit(m, show_progress=False)
    ids, scores = model.recommend(np.arange(60), m, N=30, filter_already_liked_items=False)
    check_rows(model, m, ids, scores, 30, filter_owned=False)


def test_allow_and_deny_lists():
    m = random_user_items(80, 40, 0.08, seed=3)
    model = ItemKNN(k=8).fit(m, show_progress=False)
    allowed, denied = np.arange(0, 40, 2), np.array([0, 4, 5, 7])
    ids, scores = model.recommend(np.arange(80), m, N=12, items=allowed, filter_items=denied)
    check_rows(model, m, ids, scores, 12, allowed=allowed, denied=denied)
    returned = ids[ids >= 0]
    assert np.isin(returned, allowed).all() and not np.isin(returned, denied).any()


def test_exactly_n_when_neighbours_are_scarce():
    m = random_user_items(200, 100, 0.02, seed=4)  # sparse: few neighbours per item
    model = ItemKNN(k=2).fit(m, show_progress=False)
    ids, scores = model.recommend(np.arange(200), m, N=20)
    owned = np.diff(m.indptr)
    for r in range(200):
        assert (ids[r] >= 0).sum() == min(20, 100 - owned[r])
    assert (scores < 0).any(), "scarce neighbours must be filled by popularity"


def test_scalar_call_returns_only_real_results_and_batch_pads():
    m = sp.csr_matrix(np.array([[1, 1, 0], [0, 1, 0]], np.float32))
    model = ItemKNN(k=5).fit(m, show_progress=False)
    ids, scores = model.recommend(0, m[0], N=10)
    assert ids.tolist() == [2] and scores[0] < 0  # item 2: nobody holds it, popularity fill
    ids, scores = model.recommend(np.array([0, 1]), m, N=4)
    assert ids.shape == (2, 4)
    assert ids[0].tolist() == [2, -1, -1, -1] and ids[1].tolist() == [0, 2, -1, -1]
    assert np.isneginf(scores[0, 1:]).all()


def test_user_items_may_be_the_whole_matrix():
    m = random_user_items(30, 20, 0.2, seed=5)
    model = ItemKNN(k=5).fit(m, show_progress=False)
    a = model.recommend(np.array([3, 7]), m, N=5)
    b = model.recommend(np.array([3, 7]), m[[3, 7]], N=5)
    np.testing.assert_array_equal(a[0], b[0])


def test_similar_items_batch_excludes_self_and_fills_to_n():
    m = random_user_items(100, 40, 0.05, seed=6)
    model = ItemKNN(k=3).fit(m, show_progress=False)
    ids, scores = model.similar_items(np.arange(40), N=10)
    S = model.similarity
    for i in range(40):
        assert i not in ids[i] and (ids[i] >= 0).all()
        neigh = S.indices[S.indptr[i] : S.indptr[i + 1]]
        scores_by_rank = S.data[S.indptr[i] : S.indptr[i + 1]]
        best_first = neigh[np.lexsort((neigh, -scores_by_rank))]
        assert ids[i][: neigh.size].tolist() == best_first.tolist()
        assert (scores[i][neigh.size :] < 0).all()


def test_recommend_for_ad_hoc_bag():
    m = random_user_items(100, 40, 0.08, seed=7)
    model = ItemKNN(k=10).fit(m, show_progress=False)
    ids, scores = model.recommend_bag([1, 2, 3], [1.0, 2.0, 0.5], N=5)
    row = sp.csr_matrix(([1.0, 2.0, 0.5], [1, 2, 3], [0, 3]), shape=(1, 40), dtype=np.float32)
    ref_ids, ref_scores = model.recommend(0, row, N=5)
    np.testing.assert_array_equal(ids, ref_ids)
    assert not {1, 2, 3} & set(ids.tolist())


def test_n_zero_and_n_beyond_catalogue():
    m = random_user_items(20, 8, 0.3, seed=8)
    model = ItemKNN(k=3).fit(m, show_progress=False)
    ids, _ = model.recommend(np.arange(20), m, N=0)
    assert ids.shape == (20, 0)
    ids, _ = model.recommend(np.arange(20), m, N=50)
    assert ids.shape == (20, 50)
    assert ((ids >= 0).sum(axis=1) == 8 - np.diff(m.indptr)).all()
