"""Bad input gets a typed error or a well-defined result, never a crash."""

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import random_user_items

from backpack import InvalidInputError, ItemKNN, NotFittedError
from backpack.core import _core


@pytest.fixture(scope="module")
def fitted():
    m = random_user_items(50, 20, 0.2, seed=1)
    return ItemKNN(k=5).fit(m, show_progress=False), m


@pytest.mark.parametrize(
    "matrix",
    [
        np.ones(5),  # 1-D
        "not a matrix",
        sp.csr_matrix(np.array([[1.0, np.nan]])),  # NaN
        sp.csr_matrix(np.array([[1.0, np.inf]])),  # inf
        sp.csr_matrix(np.array([[1.0, -2.0]])),  # negative weight
        sp.csr_matrix(np.array([[1 + 1j, 0]])),  # complex
    ],
)
def test_fit_rejects_bad_matrices(matrix):
    with pytest.raises(InvalidInputError):
        ItemKNN(k=3).fit(matrix, show_progress=False)


def test_fit_accepts_other_layouts_and_dtypes():
    m = random_user_items(30, 10, 0.3, seed=2)
    expected = ItemKNN(k=3).fit(m, show_progress=False).similarity
    for variant in (m.tocoo(), m.tocsc(), m.astype(np.float64), m.toarray()):
        got = ItemKNN(k=3).fit(variant, show_progress=False).similarity
        np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-6)
    counts = random_user_items(30, 10, 0.3, seed=2, integer=True)
    as_int = ItemKNN(k=3).fit(counts.astype(np.int64), show_progress=False).similarity
    as_float = ItemKNN(k=3).fit(counts, show_progress=False).similarity
    np.testing.assert_allclose(as_int.toarray(), as_float.toarray(), rtol=1e-6)


def test_fit_with_explicit_zeros_and_duplicates():
    m = sp.coo_matrix(([1.0, 2.0, 0.0, 1.0], ([0, 0, 1, 1], [0, 0, 1, 2])), shape=(2, 3)).tocsr()
    model = ItemKNN(k=3).fit(m, show_progress=False)
    assert model.item_popularity.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(k=0),
        dict(k=-3),
        dict(k=2.5),
        dict(similarity="euclid"),
        dict(B=2.0),
        dict(K1=float("nan")),
        dict(num_threads=-1),
    ],
)
def test_bad_parameters(kwargs):
    with pytest.raises(InvalidInputError):
        ItemKNN(**kwargs)


def test_not_fitted():
    with pytest.raises(NotFittedError):
        ItemKNN().similar_items(0)
    with pytest.raises(NotFittedError):
        ItemKNN().save("/tmp/never-written")


@pytest.mark.parametrize(
    "call",
    [
        lambda mdl, m: mdl.similar_items(-1),
        lambda mdl, m: mdl.similar_items(20),
        lambda mdl, m: mdl.similar_items(np.array([0.5])),
        lambda mdl, m: mdl.similar_items(0, N=-1),
        lambda mdl, m: mdl.similar_items(0, N=2.0),
        lambda mdl, m: mdl.recommend(0, m[0], N=-2),
        lambda mdl, m: mdl.recommend(0, m.T.tocsr()),  # items x users by mistake
        lambda mdl, m: mdl.recommend(np.array([0, 99]), m),  # row out of range
        lambda mdl, m: mdl.recommend(np.array([0, 1]), m, items=[25]),  # allow-list out of range
        lambda mdl, m: mdl.recommend(np.array([0, 1]), m, filter_items=[-1]),
        lambda mdl, m: mdl.recommend_bag([1, 2], [1.0]),
    ],
)
def test_bad_query_arguments(fitted, call):
    model, m = fitted
    with pytest.raises(InvalidInputError):
        call(model, m)


def test_core_validates_raw_arrays_before_touching_memory():
    # calls that bypass the Python checks still get a Python exception
    indptr = np.array([0, 2], np.int64)
    with pytest.raises(ValueError):
        _core.item_neighbours(indptr, np.array([0, 7], np.int32), np.ones(2, np.float32), 3, "cosine", 2)
    with pytest.raises(ValueError):
        _core.item_neighbours(
            np.array([0, 5], np.int64), np.array([0], np.int32), np.ones(1, np.float32), 3, "cosine", 2
        )
    with pytest.raises(ValueError):
        _core.item_neighbours(
            np.array([0, 2, 1], np.int64), np.array([0, 1], np.int32), np.ones(2, np.float32), 3, "cosine", 2
        )
    with pytest.raises(TypeError):
        _core.item_neighbours(indptr, np.array(["a", "b"]), np.ones(2, np.float32), 3, "cosine", 2)
    with pytest.raises(ValueError):
        _core.ItemNeighbours(
            np.array([0, 1], np.int64),
            np.array([4], np.int32),
            np.ones(1, np.float32),
            np.array([0], np.int32),
            np.array([-1.0], np.float32),
        )
    store = _core.BagStore()
    with pytest.raises(IndexError):
        store.export_rows(np.array([3], np.int32))
    with pytest.raises(IndexError):
        store.item_names(np.array([0], np.int32))


def test_process_survives_a_thousand_bad_calls(fitted):
    model, m = fitted
    rng = np.random.default_rng(0)
    for _ in range(1000):
        bad = int(rng.choice([-(2**31), -1, 20, 2**31 - 1]))
        with pytest.raises(InvalidInputError):
            model.similar_items(bad)
    assert model.similar_items(0, N=3)[0].size == 3


def test_non_contiguous_and_odd_dtype_ids_give_the_same_result(fitted):
    model, m = fitted
    ids = np.arange(40)[::4]  # a strided view
    expected = model.recommend(ids.copy(), m, N=5)
    for variant in (ids, ids.astype(np.int16), ids.astype(np.uint64), list(ids)):
        got = model.recommend(variant, m, N=5)
        np.testing.assert_array_equal(got[0], expected[0])
    items = np.arange(20)[::-3]
    np.testing.assert_array_equal(model.similar_items(items, N=4)[0], model.similar_items(items.copy(), N=4)[0])


def test_string_ids_are_rejected_by_the_index_api(fitted):
    model, m = fitted
    with pytest.raises(InvalidInputError):
        model.recommend(np.array(["a", "b"]), m, N=3)
    with pytest.raises(InvalidInputError):
        model.similar_items("3")


# -- regressions from review: each of these crashed or misbehaved once ----------


def test_weights_whose_products_underflow_do_not_overrun_the_build():
    n = 2000
    m = sp.csr_matrix(
        (np.full(2 * n, 1e-25, np.float32), np.tile([0, 1], n), np.arange(0, 2 * n + 1, 2)), shape=(n, 10)
    )
    for kind in ("bm25", "cosine"):
        model = ItemKNN(k=10, similarity=kind).fit(m, show_progress=False)
        assert model.similarity.shape == (10, 10)
    tiny = sp.vstack([m, sp.csr_matrix(np.ones((1, 10), np.float32))]).tocsr()
    ItemKNN(k=10, similarity="cosine").fit(tiny, show_progress=False)


@pytest.mark.parametrize("n", [2**62, 10**12, 100_001])
def test_huge_n_or_k_is_a_typed_error(fitted, n):
    model, m = fitted
    from backpack import DenseIndex, Engine

    with pytest.raises(InvalidInputError):
        model.recommend(np.arange(4), m, N=n)
    with pytest.raises(InvalidInputError):
        model.similar_items(np.arange(4), N=n)
    with pytest.raises(InvalidInputError):
        DenseIndex(np.ones((5, 3))).search(np.ones((4, 3)), k=n)
    with pytest.raises(InvalidInputError):
        ItemKNN(k=n)
    e = Engine()
    e.add_interactions(["a", "b"], ["x", "y"])
    e.fit()
    with pytest.raises(InvalidInputError):
        e.recommend_batch(["a", "b"], n=n)


def test_core_refuses_result_sizes_that_overflow():
    model = ItemKNN(k=2).fit(random_user_items(10, 5, 0.5, seed=1), show_progress=False)
    with pytest.raises(ValueError):
        model._index.similar_items(np.arange(4, dtype=np.int32), 2**62, None, None, 0)
    with pytest.raises(ValueError):
        _core.dense_topk(np.ones((4, 3), np.float32), np.ones((5, 3), np.float32), 2**62, "ip", 0)


def test_absurd_thread_counts_are_capped_not_fatal():
    from backpack import dense_topk

    ids, _ = dense_topk(np.ones((1, 2)), np.ones((20_000, 2)), k=1, num_threads=50_000)
    assert ids.tolist() == [[0]]


def test_fallback_order_must_be_a_permutation():
    args = (np.array([0, 0, 0, 0], np.int64), np.array([], np.int32), np.array([], np.float32))
    for order in ([0, 0, 0], [0, 1], [0, 1, 3]):
        with pytest.raises(ValueError):
            _core.ItemNeighbours(*args, np.array(order, np.int32), np.full(len(order), -1.0, np.float32))


def test_untyped_errors_from_odd_arguments_are_now_typed():
    from backpack import Bags, Engine

    with pytest.raises(InvalidInputError):
        Bags().add(5, ["x"])
    with pytest.raises(InvalidInputError):
        Bags().add(["a"], ["x"], ["abc"])
    with pytest.raises(InvalidInputError):
        ItemKNN().fit(np.array([[object(), 1]], dtype=object), show_progress=False)
    e = Engine()
    e.add_interactions(["a", "b"], ["x", "y"])
    e.fit()
    with pytest.raises(InvalidInputError):
        e.recommend_batch(None)
    with pytest.raises(InvalidInputError):
        e.recommend_bag(["x"], weights=["q"])
