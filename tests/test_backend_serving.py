"""Factor models exported to ONNX and served by ONNX Runtime and IREE: parity with the native core.

Tolerance: scores agree within 1e-4 relative to the largest score of the
batch (float32 rounding in a different summation order; ALS's solve runs in
float64 on every side), and the top-N ids are identical wherever neighbouring
scores differ by more than that tolerance (a near-tie may swap places).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

pytest.importorskip("onnx", reason="serving on model backends needs onnx (pip install '.[test]')")

import backpack  # noqa: E402
from backpack import (
    BackendServedModel,
    EmbeddingModel,
    export_factor_model,  # noqa: E402
)
from backpack.models.backends import get_backend  # noqa: E402

RELATIVE_TOLERANCE = 1e-4
N_USERS, N_ITEMS = 240, 400


@pytest.fixture(scope="module")
def user_items():
    rng = np.random.default_rng(3)
    m = sp.random(N_USERS, N_ITEMS, density=0.04, random_state=4, format="csr", dtype=np.float32)
    m.data[:] = rng.integers(1, 6, m.nnz)
    return m


@pytest.fixture(scope="module")
def models(user_items):
    rng = np.random.default_rng(5)
    return {
        "als": backpack.ALS(factors=8, iterations=4, alpha=2.0, random_state=0).fit(user_items, show_progress=False),
        "bpr": backpack.BPR(factors=8, iterations=15, random_state=0).fit(user_items, show_progress=False),
        "embeddings": EmbeddingModel(rng.standard_normal((N_ITEMS, 8))),
    }


@pytest.fixture(scope="module")
def backends(tmp_path_factory):
    return {"onnx": get_backend("onnx"), "iree": get_backend("iree", cache_dir=tmp_path_factory.mktemp("iree"))}


@pytest.fixture(scope="module")
def served(models, backends):
    return {(m, b): BackendServedModel(models[m], backends[b]) for m in models for b in backends}


def assert_same_lists(native, other):
    (nid, nsc), (oid, osc) = native, other
    assert nid.shape == oid.shape and nsc.shape == osc.shape
    finite = np.isfinite(nsc)
    assert (finite == np.isfinite(osc)).all(), "the backend filled different slots"
    assert (nid[~finite] == -1).all() and (oid[~finite] == -1).all()
    scale = max(float(np.abs(nsc[finite]).max()), 1e-6) if finite.any() else 1.0
    tol = RELATIVE_TOLERANCE * scale
    np.testing.assert_allclose(osc[finite], nsc[finite], atol=tol)
    # ids must agree except inside a run of near-tied scores
    with np.errstate(invalid="ignore"):  # -inf - -inf in the padding
        gaps = np.abs(np.diff(nsc, axis=1))
    tied = np.zeros_like(finite)
    tied[:, 1:] |= gaps <= 2 * tol
    tied[:, :-1] |= gaps <= 2 * tol
    assert (nid[finite & ~tied] == oid[finite & ~tied]).all()


MODELS = ["als", "bpr", "embeddings"]
BACKENDS = ["onnx", "iree"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", MODELS)
def test_top_n_matches_the_native_core(models, served, user_items, model, backend):
    rows = user_items[:60]
    for n in (1, 10, 20):  # 20: the widest list IREE's graph is exported for by default
        assert_same_lists(models[model].recommend_rows(rows, n), served[model, backend].recommend_rows(rows, n))


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("model", MODELS)
def test_edge_cases_match_the_native_core(models, served, user_items, model, backend):
    native, other = models[model], served[model, backend]
    empty = sp.csr_matrix((3, N_ITEMS), dtype=np.float32)
    allowed = np.arange(0, N_ITEMS, 7)
    denied = np.arange(0, N_ITEMS, 3)
    rows = user_items[60:80]
    cases = [
        (rows, 10, True, None, None),
        (rows, 10, False, None, None),  # owned items may come back
        (rows, 10, True, allowed, None),  # only these
        (rows, 10, True, None, denied),  # never these
        (rows, 10, True, allowed, denied),
        (rows, 12, True, allowed[:8], None),  # fewer eligible than asked: padded with -1 / -inf
        (user_items[:0], 5, True, None, None),  # no rows at all
    ]
    if model != "embeddings":  # an empty bag scores every item 0 there: a pure tie, any order is right
        cases.append((empty, 5, True, None, None))
    for rows_, n, owned, allow, deny in cases:
        want = native.recommend_rows(rows_, n, owned, allow, deny)
        got = other.recommend_rows(rows_, n, owned, allow, deny)
        assert_same_lists(want, got)
        if owned:
            held = rows_.tolil().rows
            for r, ids in enumerate(got[0]):
                assert not set(ids.tolist()) & set(held[r])


@pytest.mark.parametrize("backend", BACKENDS)
def test_lists_longer_than_the_export_and_than_the_catalogue(backend, backends):
    """IREE's graph selects by blocks for up to max_n items; a longer list re-exports it once."""
    rng = np.random.default_rng(9)
    model = EmbeddingModel(rng.standard_normal((30, 4)))
    rows = sp.csr_matrix(rng.random((4, 30)) < 0.2, dtype=np.float32)
    served = BackendServedModel(model, backends[backend], max_n=5)
    for n in (3, 5, 12, 35):  # 35 > 30 items: padded
        assert_same_lists(model.recommend_rows(rows, n), served.recommend_rows(rows, n))
    assert served.max_n == (5 if backend == "onnx" else 30)


@pytest.mark.parametrize("model", MODELS)
def test_onnx_runtime_and_iree_agree_with_each_other(served, user_items, model):
    rows = user_items[100:140]
    assert_same_lists(served[model, "onnx"].recommend_rows(rows, 20), served[model, "iree"].recommend_rows(rows, 20))


def test_the_export_is_deterministic_so_the_iree_cache_hits(models):
    for model in models.values():
        assert export_factor_model(model).SerializeToString() == export_factor_model(model).SerializeToString()


def test_a_saved_model_loads_straight_onto_a_backend(models, backends, user_items, tmp_path):
    for name in ("als", "bpr"):
        models[name].save(tmp_path / name)
        served = BackendServedModel.load(tmp_path / name, backends["onnx"])
        assert_same_lists(models[name].recommend_rows(user_items[:20], 10), served.recommend_rows(user_items[:20], 10))
    backpack.ItemKNN(k=5).fit(user_items, show_progress=False).save(tmp_path / "knn")
    with pytest.raises(backpack.ModelFileError, match="not a saved factor model that exports to ONNX"):
        BackendServedModel.load(tmp_path / "knn")


def test_models_without_an_export_say_which_can(user_items):
    knn = backpack.ItemKNN(k=10).fit(user_items, show_progress=False)
    with pytest.raises(backpack.InvalidInputError, match="ItemKNN models cannot be exported to ONNX; exportable: "):
        export_factor_model(knn)
    with pytest.raises(backpack.NotFittedError):
        export_factor_model(backpack.ALS())


def test_embedding_model_checks_its_vectors(user_items):
    with pytest.raises(backpack.InvalidInputError, match="NaN"):
        EmbeddingModel(np.full((3, 2), np.nan))
    with pytest.raises(backpack.InvalidInputError, match="2-d matrix"):
        EmbeddingModel(np.ones(5))
    with pytest.raises(backpack.InvalidInputError, match="give a vector for every item"):
        EmbeddingModel(np.ones((N_ITEMS - 1, 4))).fit(user_items)


def test_embedding_model_scores_by_the_bags_mean_vector():
    vectors = np.array([[1, 0], [0, 1], [1, 1], [-1, 0]], dtype=np.float32)
    model = EmbeddingModel(vectors)
    ids, scores = model.recommend_bag([0], [2.0], N=3)
    # mean vector (1, 0): item 2 scores 1, item 1 scores 0, item 3 scores -1
    assert ids.tolist() == [2, 1, 3]
    np.testing.assert_allclose(scores, [1, 0, -1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_engine_serves_factor_models_on_a_backend(backend, backends, tmp_path):
    rng = np.random.default_rng(11)
    users = [f"u{i}" for i in rng.integers(0, 60, 900)]
    items = [f"i{i}" for i in rng.integers(0, 80, 900)]
    native = backpack.Engine(num_threads=1)
    native.add_interactions(users, items)
    native.fit("als", factors=8, iterations=3, random_state=1)
    on_backend = backpack.Engine(num_threads=1)
    on_backend.add_interactions(users, items)
    on_backend.serve_on(backends[backend])
    on_backend.fit("als", factors=8, iterations=3, random_state=1)
    assert on_backend.serving == {"algorithm": "als", "backend": backend}

    for user in ["u1", "u7", "nobody-yet"]:
        want = [(r.item, r.score) for r in native.recommend(user, n=8)]
        got = [(r.item, r.score) for r in on_backend.recommend(user, n=8)]
        assert [i for i, _ in got] == [i for i, _ in want] or user == "nobody-yet"
        np.testing.assert_allclose([s for _, s in got], [s for _, s in want], atol=1e-4)
    # the live bag counts at once, on the backend too
    on_backend.add_interaction("u1", "i3")
    native.add_interaction("u1", "i3")
    assert [r.item for r in on_backend.recommend("u1", n=5)] == [r.item for r in native.recommend("u1", n=5)]
    # filters go through the backend as well
    kinds = {f"i{i}": ("hat" if i % 2 else "cape") for i in range(80)}
    for engine in (native, on_backend):
        engine.set_item_kinds(list(kinds), list(kinds.values()))
    got = on_backend.recommend("u2", n=5, item_kind="hat", exclude=["i1"])
    assert [r.item for r in got] == [r.item for r in native.recommend("u2", n=5, item_kind="hat", exclude=["i1"])]
    assert all(kinds[r.item] == "hat" and r.item != "i1" for r in got)
    # similar items and saving stay the native model's
    assert on_backend.similar_items("i3", n=4) == native.similar_items("i3", n=4)
    on_backend.save(tmp_path / "data")
    reopened = backpack.Engine.open(tmp_path / "data")
    assert reopened.serving == {"algorithm": "als", "backend": "native"}
    # back to the native core
    on_backend.serve_on(None)
    assert on_backend.serving["backend"] == "native"


def test_engine_serves_other_models_natively_with_a_warning(backends, caplog):
    engine = backpack.Engine()
    engine.add_interactions(["a", "a", "b"], ["x", "y", "x"])
    engine.serve_on(backends["onnx"])
    with caplog.at_level("WARNING", logger="backpack.engine.engine"):
        engine.fit("itemknn", k=5)
    assert engine.serving == {"algorithm": "itemknn", "backend": "native"}
    assert "only factor models" in caplog.text
    assert [r.item for r in engine.recommend("b", n=1)] == ["y"]
