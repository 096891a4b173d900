"""The factor-model kernels against plain NumPy: dense top-k with exclusions,
the ALS row solves, the gramian, and BPR's training signal."""

import numpy as np
import pytest
import scipy.sparse as sp

from backpack.core import _core
from backpack.core.arrays import csr_arrays


def random_csr(rng, rows, cols, density, low=0.5, high=3.0):
    m = sp.random(rows, cols, density=density, random_state=rng, format="csr", dtype=np.float32)
    m.data = rng.uniform(low, high, m.nnz).astype(np.float32)
    m.sort_indices()
    return m


def reference_topk(q, m, k, exclude=None, eligible=None):
    scores = q.astype(np.float64) @ m.astype(np.float64).T
    ids_out = np.full((q.shape[0], k), -1)
    for r in range(q.shape[0]):
        ok = np.ones(m.shape[0], bool)
        if exclude is not None:
            ok[exclude[r].indices] = False
        if eligible is not None:
            ok &= eligible.astype(bool)
        cand = np.flatnonzero(ok)
        order = cand[np.lexsort((cand, -scores[r, cand]))][:k]
        ids_out[r, : order.size] = order
    return ids_out


@pytest.mark.parametrize("seed", range(4))
def test_dense_topk_skips_excluded_rows_and_pads_only_when_too_few_are_eligible(seed):
    rng = np.random.default_rng(seed)
    n, d, m = rng.integers(1, 1200), rng.integers(1, 20), rng.integers(1, 40)
    items = rng.normal(size=(n, d)).astype(np.float32)
    queries = rng.normal(size=(m, d)).astype(np.float32)
    exclude = random_csr(rng, m, n, 0.3)
    eligible = (rng.random(n) < 0.7).astype(np.uint8)
    for k in (1, 5, n, n + 3):
        ids, scores = _core.dense_topk(
            queries,
            items,
            k,
            "ip",
            2,
            exclude_indptr=exclude.indptr.astype(np.int64),
            exclude_indices=exclude.indices,
            eligible=eligible,
        )
        want = reference_topk(queries, items, k, exclude, eligible)
        np.testing.assert_array_equal(ids, want)
        real = ids >= 0
        expect = np.take_along_axis(queries @ items.T, np.where(real, ids, 0), axis=1)
        np.testing.assert_allclose(scores[real], expect[real], rtol=1e-4, atol=1e-4)
        assert np.isneginf(scores[~real]).all()


def test_dense_topk_rejects_exclusions_out_of_range():
    items = np.ones((3, 2), np.float32)
    with pytest.raises(ValueError):
        _core.dense_topk(
            items[:1],
            items,
            2,
            "ip",
            1,
            exclude_indptr=np.array([0, 1], np.int64),
            exclude_indices=np.array([7], np.int32),
        )
    with pytest.raises(ValueError):
        _core.dense_topk(items[:1], items, 2, "ip", 1, exclude_indptr=np.array([0, 1], np.int64), exclude_indices=None)


def test_gramian_matches_numpy():
    rng = np.random.default_rng(1)
    y = rng.normal(size=(10_001, 13)).astype(np.float32)
    np.testing.assert_allclose(_core.gramian(y, 2), y.astype(np.float64).T @ y, rtol=1e-5, atol=1e-3)


def exact_solution(conf_row, other, reg):
    """argmin sum_i c_i (p_i - x.y_i)^2 over all items (p=1, c=conf where held, else p=0, c=1) + reg |x|^2."""
    d = other.shape[1]
    c = np.ones(other.shape[0])
    p = np.zeros(other.shape[0])
    c[conf_row.indices] = conf_row.data
    p[conf_row.indices] = 1.0
    Y = other.astype(np.float64)
    A = Y.T @ (c[:, None] * Y) + reg * np.eye(d)
    return np.linalg.solve(A, Y.T @ (c * p))


@pytest.mark.parametrize("exact, steps", [(True, 0), (False, 40)])
def test_als_row_solve_equals_the_normal_equations(exact, steps):
    rng = np.random.default_rng(2)
    other = rng.normal(scale=0.3, size=(300, 8)).astype(np.float32)
    conf = random_csr(rng, 25, 300, 0.05, 0.2, 20.0)  # confidences below 1 too
    conf = conf.tolil()
    conf[3] = 0  # an empty row
    conf = conf.tocsr()
    conf.eliminate_zeros()
    target = np.zeros((25, 8), np.float32)
    _core.als_solve(*csr_arrays(conf), other, target, None, 0.1, steps, exact, 2, None)
    for r in range(25):
        want = np.zeros(8) if conf[r].nnz == 0 else exact_solution(conf[r], other, 0.1)
        np.testing.assert_allclose(target[r], want, rtol=2e-3, atol=2e-3)


def test_als_solve_rejects_bad_arguments():
    other = np.ones((4, 2), np.float32)
    conf = sp.csr_matrix(np.array([[1.0, 0, 0, 2.0]], np.float32))
    with pytest.raises(ValueError, match="target"):
        _core.als_solve(*csr_arrays(conf), other, np.zeros((2, 2), np.float32), None, 0.1, 3, False, 1, None)
    for reg in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="regularization"):
            _core.als_solve(*csr_arrays(conf), other, np.zeros((1, 2), np.float32), None, reg, 3, False, 1, None)
    # 0 is allowed, as implicit allows it: the solves stay finite even on a singular system
    for exact in (False, True):
        target = np.full((1, 2), 0.01, np.float32)
        gram = _core.gramian(other, 1) if exact else None
        _core.als_solve(*csr_arrays(conf), other, target, gram, 0.0, 3, exact, 1, None)
        assert np.isfinite(target).all()
    bad = conf.copy()
    bad.data[0] = -1
    with pytest.raises(ValueError, match="confidences"):
        _core.als_solve(*csr_arrays(bad), other, np.zeros((1, 2), np.float32), None, 0.1, 3, False, 1, None)


def test_bpr_learns_to_rank_held_items_above_others():
    rng = np.random.default_rng(3)
    # two communities holding disjoint halves of the catalogue
    rows = [rng.choice(np.arange(0, 50) if u < 100 else np.arange(50, 100), 10, replace=False) for u in range(200)]
    m = sp.csr_matrix((np.ones(2000, np.float32), np.concatenate(rows), np.arange(0, 2001, 10)), shape=(200, 100))
    m.sort_indices()
    users = (rng.random((200, 9), dtype=np.float32) - 0.5) / 8
    items = (rng.random((100, 9), dtype=np.float32) - 0.5) / 8
    users[:, 8], items[:, 8] = 1, 0
    accuracy = _core.bpr_train(*csr_arrays(m), users, items, 0.05, 0.001, 60, 7, True, 2, None)
    assert accuracy > 0.9
    scores = users @ items.T
    assert (scores[:100, :50].mean() - scores[:100, 50:].mean()) > 0.5
    assert (scores[100:, 50:].mean() - scores[100:, :50].mean()) > 0.5


def test_bpr_needs_sorted_rows_to_verify_negatives():
    m = sp.csr_matrix((np.ones(2, np.float32), np.array([3, 1], np.int32), np.array([0, 2])), shape=(1, 4))
    users, items = np.ones((1, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(ValueError, match="sorted"):
        _core.bpr_train(*csr_arrays(m), users, items, 0.01, 0.01, 1, 0, True, 1, None)
