"""Dense top-k against NumPy."""

import numpy as np
import pytest

from backpack import DenseIndex, InvalidInputError, dense_topk


def reference(q, x, k, metric):
    if metric == "cosine":
        qn, xn = np.linalg.norm(q, axis=1, keepdims=True), np.linalg.norm(x, axis=1, keepdims=True)
        q = np.divide(q, qn, out=np.zeros_like(q), where=qn > 0)
        x = np.divide(x, xn, out=np.zeros_like(x), where=xn > 0)
    scores = q.astype(np.float64) @ x.astype(np.float64).T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(scores, order, axis=1)


@pytest.mark.parametrize("metric", ["ip", "cosine"])
@pytest.mark.parametrize("m,n,d,k", [(1, 1000, 16, 10), (37, 3001, 33, 5), (200, 700, 8, 50), (3, 5, 4, 9)])
def test_matches_numpy(metric, m, n, d, k):
    rng = np.random.default_rng(m + n)
    q, x = rng.normal(size=(m, d)).astype(np.float32), rng.normal(size=(n, d)).astype(np.float32)
    ids, scores = dense_topk(q, x, k, metric=metric)
    ref_ids, ref_scores = reference(q, x, min(k, n), metric)
    assert ids.shape == (m, k)
    np.testing.assert_allclose(scores[:, : min(k, n)], ref_scores, rtol=1e-4, atol=1e-4)
    all_ids, all_scores = reference(q, x, n, metric)
    kk = min(k, n)
    for r in range(m):  # each returned id carries its own score
        by_id = np.empty(n)
        by_id[all_ids[r]] = all_scores[r]
        np.testing.assert_allclose(scores[r, :kk], by_id[ids[r, :kk]], rtol=1e-4, atol=1e-4)
    if k > n:
        assert (ids[:, n:] == -1).all() and np.isneginf(scores[:, n:]).all()


def test_single_query_vector_and_zero_vectors():
    x = np.array([[1, 0], [0, 0], [0.5, 0.5]], np.float32)
    ids, scores = dense_topk(np.array([1, 0], np.float32), x, 3, metric="cosine")
    assert ids.tolist() == [0, 2, 1] and scores[2] == 0


def test_non_contiguous_and_float64_inputs_are_accepted():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 20))
    q = rng.normal(size=(20, 5)).T  # transposed: not C-contiguous
    ids, _ = dense_topk(q, x[:, ::1], 4)
    np.testing.assert_array_equal(ids, reference(q, x, 4, "ip")[0])


@pytest.mark.parametrize(
    "bad",
    [
        dict(queries=np.ones((2, 3)), matrix=np.ones((4, 5))),
        dict(queries=np.ones((2, 3)), matrix=np.ones(3)),
        dict(queries=np.full((1, 3), np.nan), matrix=np.ones((4, 3))),
        dict(queries=np.array([["a", "b"]]), matrix=np.ones((4, 2))),
        dict(queries=np.ones((1, 3)), matrix=np.ones((4, 3)), k=-1),
        dict(queries=np.ones((1, 3)), matrix=np.ones((4, 3)), metric="l2"),
    ],
)
def test_bad_input_raises(bad):
    with pytest.raises(InvalidInputError):
        dense_topk(**bad)


def test_index_searches_repeatedly_and_checks_queries():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 12)).astype(np.float32)
    index = DenseIndex(x, metric="cosine")
    assert index.matrix is x  # C-contiguous float32 is kept without a copy
    for _ in range(3):
        q = rng.normal(size=(4, 12)).astype(np.float32)
        np.testing.assert_array_equal(index.search(q, 7)[0], reference(q, x, 7, "cosine")[0])
    with pytest.raises(InvalidInputError):
        index.search(np.full(12, np.nan, np.float32))
    with pytest.raises(InvalidInputError):
        index.search(np.ones((1, 11), np.float32))
