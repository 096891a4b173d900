"""The item-item neighbour build against the dense NumPy reference."""

import numpy as np
import pytest
import reference
import scipy.sparse as sp
from conftest import random_user_items

from backpack import ItemKNN
from backpack.core import _core
from backpack.core.arrays import csr_arrays

KINDS = ["cosine", "bm25", "tfidf", "jaccard", "cooccurrence"]


def assert_matches_reference(model: ItemKNN, X: np.ndarray, kind: str, k: int, **params):
    S_ref = reference.similarity(X, kind, **params)
    S = model.similarity
    assert S.shape == S_ref.shape
    for i in range(S.shape[0]):
        ids = S.indices[S.indptr[i] : S.indptr[i + 1]]
        got = S.data[S.indptr[i] : S.indptr[i + 1]]
        assert np.all(np.diff(ids) > 0), "rows are canonical CSR (sorted column indices)"
        order = np.argsort(-got, kind="stable")
        ids, got = ids[order], got[order]
        expected = np.sort(S_ref[i][S_ref[i] > 0])[::-1][:k]
        assert i not in ids, "an item is never its own neighbour"
        assert got.size == expected.size, f"row {i}: {got.size} neighbours, expected {expected.size}"
        np.testing.assert_allclose(got, expected, rtol=2e-4, atol=1e-6)
        # each returned id really has the score reported for it (ties may pick either id)
        np.testing.assert_allclose(got, S_ref[i, ids], rtol=2e-4, atol=1e-6)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_each_similarity_matches_reference_on_random_matrices(kind, seed):
    m = random_user_items(150, 70, 0.07, seed=seed)
    k = [5, 20, 200][seed]
    model = ItemKNN(k=k, similarity=kind, K1=1.5, B=0.6).fit(m, show_progress=False)
    assert_matches_reference(model, m.toarray(), kind, k, **({"K1": 1.5, "B": 0.6} if kind == "bm25" else {}))


@pytest.mark.parametrize("kind", KINDS)
def test_integer_weights_with_many_ties(kind):
    m = random_user_items(80, 30, 0.2, seed=3, integer=True)
    model = ItemKNN(k=4, similarity=kind).fit(m, show_progress=False)
    assert_matches_reference(model, m.toarray(), kind, 4)


@pytest.mark.parametrize("kind", KINDS)
def test_weights_match_reference(kind):
    m = random_user_items(60, 25, 0.15, seed=4)
    indptr, indices, data = csr_arrays(m)
    got = _core.similarity_weights(indptr, indices, data, m.shape[1], kind, 1.2, 0.75)
    ref = reference.weights(m.toarray(), kind)
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
    np.testing.assert_allclose(got, ref[rows, m.indices], rtol=1e-5)


def test_ties_break_on_lower_item_id():
    # items 1..4 each co-occur with item 0 in exactly one (separate) user
    rows = [0, 0, 1, 1, 2, 2, 3, 3]
    cols = [0, 4, 0, 2, 0, 1, 0, 3]
    m = sp.csr_matrix((np.ones(8, np.float32), (rows, cols)), shape=(4, 5))
    model = ItemKNN(k=2, similarity="cooccurrence").fit(m, show_progress=False)
    ids, _ = model.similar_items(0, N=2)
    assert ids.tolist() == [1, 2]


def test_results_do_not_depend_on_thread_count():
    m = random_user_items(300, 200, 0.05, seed=5)
    a = ItemKNN(k=10, num_threads=1).fit(m, show_progress=False).similarity
    b = ItemKNN(k=10, num_threads=2).fit(m, show_progress=False).similarity
    assert (a != b).nnz == 0


def test_edge_cases_empty_and_isolated_items():
    # no interactions at all
    empty = sp.csr_matrix((5, 4), dtype=np.float32)
    assert ItemKNN(k=3).fit(empty, show_progress=False).similarity.nnz == 0
    # one item only: no neighbours possible
    one = sp.csr_matrix(np.ones((3, 1), np.float32))
    assert ItemKNN(k=3).fit(one, show_progress=False).similarity.nnz == 0
    # K larger than the catalogue keeps every positive pair
    m = random_user_items(40, 6, 0.5, seed=6)
    model = ItemKNN(k=1000).fit(m, show_progress=False)
    assert_matches_reference(model, m.toarray(), "cosine", 1000)


@pytest.mark.filterwarnings("ignore:Method expects CSR input")  # implicit converts its own COO
def test_matches_implicit_cosine_neighbours():
    implicit_nn = pytest.importorskip("implicit.nearest_neighbours")
    m = random_user_items(400, 150, 0.04, seed=8)
    ours = ItemKNN(k=10).fit(m, show_progress=False)
    theirs = implicit_nn.CosineRecommender(K=11)
    theirs.fit(m, show_progress=False)
    agree = total = 0
    for i in range(m.shape[1]):
        t_ids, t_scores = theirs.similar_items(i, N=11)
        keep = (t_ids != i) & (t_scores > 0)
        t_ids = t_ids[keep][:10]
        o_ids, _ = ours.similar_items(i, N=10)
        o_ids = o_ids[: t_ids.size]
        agree += np.intersect1d(o_ids, t_ids).size
        total += t_ids.size
    assert total > 0 and agree / total >= 0.97


@pytest.mark.parametrize("kind", KINDS)
def test_long_rows_with_ties_at_the_cutoff(kind):
    # rows touch far more than 4K items, and binary weights make many exact
    # ties at the K-th score: the pre-selection cut-off must keep all of them
    m = random_user_items(300, 200, 0.15, seed=9)
    m.data[:] = 1.0
    model = ItemKNN(k=3, similarity=kind).fit(m, show_progress=False)
    assert_matches_reference(model, m.toarray(), kind, 3)
    ours = model.similar_items(np.arange(200), N=3)[0]
    S = reference.similarity(m.toarray(), kind)
    expected = reference.top_k_rows(S, 3)
    assert all(ours[i].tolist() == expected[i].tolist() for i in range(200)), "ties break on the lower id"


def test_users_holding_all_but_one_item_get_exactly_zero_idf():
    # idf = log(n / (1 + held)) is exactly 0 here; log(n) - log1p(held) was 1e-16
    m = sp.csr_matrix(np.array([[1, 1, 1, 0], [0, 0, 1, 1]], np.float32))
    w = _core.similarity_weights(*csr_arrays(m), 4, "tfidf", 1.2, 0.75)
    assert (w[:3] == 0).all()


@pytest.mark.parametrize("alpha,beta", [(1.0, 0.6), (0.5, 0.0), (1.5, 1.0)])
@pytest.mark.parametrize("seed", [0, 1])
def test_rp3beta_matches_reference(alpha, beta, seed):
    from backpack import RP3Beta

    m = random_user_items(150, 70, 0.07, seed=seed)
    model = RP3Beta(k=[5, 200][seed], alpha=alpha, beta=beta).fit(m, show_progress=False)
    assert_matches_reference(model, m.toarray(), "rp3beta", [5, 200][seed], alpha=alpha, beta=beta)


def test_rp3beta_is_asymmetric_and_penalises_popular_items():
    from backpack import RP3Beta

    m = random_user_items(300, 40, 0.1, seed=3)
    S = RP3Beta(k=39, beta=1.0).fit(m, show_progress=False).similarity.toarray()
    assert not np.allclose(S, S.T)
    plain = RP3Beta(k=39, beta=0.0).fit(m, show_progress=False).similarity.toarray()
    popularity = np.bincount(m.indices, minlength=40)
    np.testing.assert_allclose(S, plain / np.where(popularity > 0, popularity, 1)[None, :], rtol=1e-5, atol=1e-9)
