"""Neighbour blocks: pieces of the similarity build made apart (on Ray workers,
say) and stacked into the model a single fit gives; models that pickle."""

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from backpack import ItemKNN
from backpack.errors import InvalidInputError


def _matrix(n_users=120, n_items=60, density=0.08, seed=0):
    rng = np.random.default_rng(seed)
    m = sp.random(n_users, n_items, density=density, format="csr", random_state=rng, dtype=np.float32)
    m.data = np.ceil(m.data * 5).astype(np.float32)
    return m


def _same_neighbours(a: ItemKNN, b: ItemKNN):
    for x, y in zip(a._index.matrix(), b._index.matrix()):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert np.array_equal(a.item_popularity, b.item_popularity)


@pytest.mark.parametrize("similarity", ["cosine", "jaccard", "rp3beta"])
def test_stacked_blocks_equal_the_full_build(similarity):
    m = _matrix(seed=7)
    blocks = [
        ItemKNN(k=6, similarity=similarity).neighbour_block(m, s, min(s + 11, 60), num_threads=1)
        for s in range(0, 60, 11)
    ]
    _same_neighbours(
        ItemKNN(k=6, similarity=similarity).fit(m, show_progress=False),
        ItemKNN(k=6, similarity=similarity).fit_from_blocks(m, blocks),
    )


def test_a_block_of_neighbours_is_that_slice_of_the_full_build():
    m = _matrix(seed=1)
    model = ItemKNN(k=6)
    full = model.neighbour_block(m, 0, m.shape[1])
    block = model.neighbour_block(m, 10, 13, num_threads=1)
    rows = slice(full[0][10], full[0][13])
    assert np.array_equal(block[0], full[0][10:14] - full[0][10])
    assert np.array_equal(block[1], full[1][rows]) and np.array_equal(block[2], full[2][rows])


def test_blocks_that_do_not_cover_the_catalogue_are_refused():
    m = _matrix()
    model = ItemKNN(k=4)
    with pytest.raises(InvalidInputError):
        model.fit_from_blocks(m, [model.neighbour_block(m, 0, 30)])
    with pytest.raises(InvalidInputError):
        model.neighbour_block(m, 10, 61)


def test_blocks_out_of_order_give_another_model():
    # what a merge that lost the block order would produce: caught by the equality checks above
    m = _matrix()
    model = ItemKNN(k=4)
    a, b = model.neighbour_block(m, 0, 30), model.neighbour_block(m, 30, 60)
    swapped = ItemKNN(k=4).fit_from_blocks(m, [b, a])
    assert not np.array_equal(
        swapped.similarity.toarray(), ItemKNN(k=4).fit(m, show_progress=False).similarity.toarray()
    )


def test_an_item_model_pickles_to_an_equal_model():
    m = _matrix()
    model = ItemKNN(k=5, similarity="bm25").fit(m, show_progress=False)
    _same_neighbours(model, pickle.loads(pickle.dumps(model)))


def test_params_rebuild_a_model_with_the_same_neighbours():
    from backpack import RP3Beta

    m = _matrix(seed=9)
    model = RP3Beta(k=4, alpha=0.7, beta=0.3)
    clone = ItemKNN(**model.get_params())
    _same_neighbours(model.fit(m, show_progress=False), clone.fit(m, show_progress=False))


def test_a_user_knn_model_pickles_to_an_equal_model():
    from backpack import UserKNN

    m = _matrix(seed=8)
    model = UserKNN(k=7).fit(m, show_progress=False)
    copy = pickle.loads(pickle.dumps(model))
    for a, b in zip(model.recommend_rows(m, 5), copy.recommend_rows(m, 5)):
        assert np.array_equal(a, b)
    assert pickle.loads(pickle.dumps(UserKNN(k=3)))._index is None
