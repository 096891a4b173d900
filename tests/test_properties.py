"""Property-based checks of the two guarantees implicit's item-kNN lacks."""

import numpy as np
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from backpack import ItemKNN


@st.composite
def problems(draw):
    n_users, n_items = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    cells = draw(
        st.lists(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1), st.floats(0.01, 100, allow_nan=False)),
            max_size=60,
        )
    )
    rows, cols, vals = zip(*cells) if cells else ((), (), ())
    m = sp.csr_matrix(
        (np.array(vals, np.float32), (np.array(rows, int), np.array(cols, int))), shape=(n_users, n_items)
    )
    m.sum_duplicates()
    k = draw(st.integers(1, 15))
    n = draw(st.integers(0, 15))
    kind = draw(st.sampled_from(["cosine", "bm25", "tfidf", "jaccard", "cooccurrence"]))
    allowed = draw(st.none() | st.lists(st.integers(0, n_items - 1), unique=True))
    denied = draw(st.none() | st.lists(st.integers(0, n_items - 1), unique=True))
    return m, k, n, kind, allowed, denied


@settings(max_examples=300, deadline=None)
@given(problems(), st.booleans())
def test_exactly_n_and_never_an_owned_item(problem, filter_owned):
    m, k, n, kind, allowed, denied = problem
    model = ItemKNN(k=k, similarity=kind).fit(m, show_progress=False)
    ids, scores = model.recommend(
        np.arange(m.shape[0]), m, N=n, filter_already_liked_items=filter_owned, items=allowed, filter_items=denied
    )
    assert ids.shape == (m.shape[0], n)
    for u in range(m.shape[0]):
        eligible = set(range(m.shape[1]))
        if filter_owned:
            eligible -= set(m[u].indices.tolist())
        if allowed is not None:
            eligible &= set(allowed)
        if denied is not None:
            eligible -= set(denied)
        got = ids[u][ids[u] >= 0].tolist()
        assert len(got) == min(n, len(eligible)), "exactly N whenever N are eligible"
        assert set(got) <= eligible and len(set(got)) == len(got)
        real = scores[u][: len(got)]
        assert np.all(np.diff(real) <= 1e-6), "best first"
