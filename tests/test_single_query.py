"""The single-query fast paths of ItemKNN (one id with its own CSR row; one item id) give what the general path gives.

The general path is taken for the same query by passing ``N`` as a NumPy integer, which the
fast path does not accept; both are checked against a plain SciPy reference.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from backpack import ItemKNN
from backpack.errors import InvalidInputError


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(4)
    m = sp.random(300, 80, density=0.06, format="csr", random_state=4, dtype=np.float32)
    m.data = rng.integers(1, 4, m.nnz).astype(np.float32)
    model = ItemKNN(k=5, similarity="cosine")
    model.fit(m, show_progress=False)
    return model, m


def _reference(model, row: sp.csr_matrix, N: int, filter_owned: bool):
    """Scores ``row @ S`` for reached items, best first (lower id on ties), owned ones dropped if asked."""
    scores = np.asarray((row @ model.similarity).todense()).ravel()
    reached = np.flatnonzero(np.asarray((row.astype(bool) @ model.similarity.astype(bool)).todense()).ravel())
    if filter_owned:
        reached = np.setdiff1d(reached, row.indices)
    order = reached[np.lexsort((reached, -scores[reached]))]
    return order[:N], scores[order[:N]]


@pytest.mark.parametrize("filter_owned", [True, False])
@pytest.mark.parametrize("N", [0, 1, 10, 80])
def test_fast_recommend_is_the_general_path_and_the_reference(fitted, filter_owned, N):
    model, m = fitted
    for u in range(0, 300, 13):
        row = m[u]
        fast = model.recommend(u, row, N=N, filter_already_liked_items=filter_owned)
        general = model.recommend(u, row, N=np.int64(N), filter_already_liked_items=filter_owned)
        np.testing.assert_array_equal(fast[0], general[0])
        np.testing.assert_array_equal(fast[1], general[1])
        assert fast[0].dtype == np.int32 and fast[1].dtype == np.float32
        ids, scores = _reference(model, row, N, filter_owned)
        real = fast[1] >= 0  # what is not popularity fill
        np.testing.assert_array_equal(fast[0][real], ids[: real.sum()])
        np.testing.assert_allclose(fast[1][real], scores[: real.sum()], rtol=1e-5)
        if filter_owned:
            assert not np.isin(fast[0], row.indices).any()
        assert len(fast[0]) == min(N, 80 - (row.nnz if filter_owned else 0))  # exactly N when N are eligible


def test_fast_similar_items_is_the_general_path(fitted):
    model, _ = fitted
    for i in range(80):
        for N in (0, 3, 79, 200):
            fast = model.similar_items(i, N=N)
            general = model.similar_items(i, N=np.int64(N))
            np.testing.assert_array_equal(fast[0], general[0])
            np.testing.assert_array_equal(fast[1], general[1])
            assert i not in fast[0]


def test_fast_path_refuses_what_the_general_path_refuses(fitted):
    model, m = fitted
    bad = m[3].copy()
    bad.data[:] = -1.0
    for N in (10, np.int64(10)):
        with pytest.raises(InvalidInputError):
            model.recommend(3, bad, N=N)
    with pytest.raises(InvalidInputError):
        model.similar_items(80, N=5)
    with pytest.raises(InvalidInputError):
        model.recommend(3, m[3], N=-1)
    # a wider row than the model (not a row of its matrix) takes the general path, which names the problem
    with pytest.raises(InvalidInputError, match="columns"):
        model.recommend(3, sp.csr_matrix((1, 81), dtype=np.float32), N=5)
