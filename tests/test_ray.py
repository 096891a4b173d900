"""Ray runs (backpack.ray.cluster) give exactly the single-process results."""

import sys

import numpy as np
import pytest
import scipy.sparse as sp

ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'backpack-engine[ray]'")

import backpack
from backpack import ItemKNN, RP3Beta
from backpack.errors import (
    BackendUnavailableError,
    ClusterUnreachableError,
    InvalidInputError,
    RayUnavailableError,
)
from backpack.ray.cluster import connect, fit_on_ray, recommend_all_on_ray


def _matrix(n_users=120, n_items=60, density=0.08, seed=0):
    """Random weights, with items nobody touched (the last 5) and empty users (every 7th)."""
    rng = np.random.default_rng(seed)
    m = sp.random(n_users, n_items, density=density, format="lil", random_state=rng, dtype=np.float32)
    m[:, n_items - 5 :] = 0
    m[::7, :] = 0
    m = m.tocsr()
    m.data = np.ceil(m.data * 5).astype(np.float32)
    m.eliminate_zeros()
    return m


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    # Local Ray workers start in the driver's directory, where the source
    # tree's backpack (without the built core) would shadow the installed one.
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(tmp_path_factory.mktemp("ray"))
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
        yield ray
        ray.shutdown()


def _same_neighbours(a: ItemKNN, b: ItemKNN):
    for x, y in zip(a._index.matrix(), b._index.matrix()):  # raw arrays: row order and float bits too
        assert x.dtype == y.dtype and np.array_equal(x, y)
    assert np.array_equal(a.item_popularity, b.item_popularity)


def test_without_a_cluster_the_error_says_how_to_get_one(monkeypatch):
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(ClusterUnreachableError) as info:
        connect()
    assert info.value.code == "cluster_unreachable" and "ray.init()" in str(info.value)


def test_an_address_nobody_answers_at_fails_at_once():
    if ray.is_initialized():
        pytest.skip("a Ray instance is already running in this process")
    with pytest.raises(ClusterUnreachableError, match="127.0.0.1:1"):
        connect("127.0.0.1:1")  # port 1: refused at once
    assert not ray.is_initialized()


def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(RayUnavailableError) as info:
        connect()
    assert isinstance(info.value, BackendUnavailableError)
    assert info.value.code == "ray_unavailable" and "backpack-engine[ray]" in str(info.value)


@pytest.mark.parametrize("similarity", ["cosine", "bm25", "tfidf", "jaccard", "rp3beta"])
@pytest.mark.parametrize("block_size", [1, 7, 60, 1000])
def test_similarity_built_by_item_blocks_equals_the_single_process_build(cluster, similarity, block_size):
    m = _matrix()
    local = ItemKNN(k=8, similarity=similarity).fit(m, show_progress=False)
    remote = fit_on_ray(ItemKNN(k=8, similarity=similarity), m, block_size=block_size)
    _same_neighbours(local, remote)


def test_refitting_a_fitted_model_on_ray_replaces_its_neighbours(cluster):
    old, new = _matrix(seed=10), _matrix(seed=11)
    model = fit_on_ray(ItemKNN(k=6).fit(old, show_progress=False), new, block_size=9)
    _same_neighbours(ItemKNN(k=6).fit(new, show_progress=False), model)


def test_default_blocks_and_a_subclass(cluster):
    m = _matrix(seed=3)
    local = RP3Beta(k=5, alpha=0.8, beta=0.4).fit(m, show_progress=False)
    remote = fit_on_ray(RP3Beta(k=5, alpha=0.8, beta=0.4), m)
    assert type(remote) is RP3Beta
    _same_neighbours(local, remote)


@pytest.mark.parametrize("block_size", [1, 13, 120, 10_000])
def test_recommendations_for_all_users_equal_the_single_process_batch(cluster, block_size):
    m = _matrix(seed=2)
    model = ItemKNN(k=10).fit(m, show_progress=False)
    ids, scores = model.recommend_rows(m, 7)
    remote_ids, remote_scores = recommend_all_on_ray(model, m, 7, block_size=block_size)
    assert np.array_equal(ids, remote_ids) and np.array_equal(scores, remote_scores)
    assert remote_ids.dtype == ids.dtype and remote_scores.dtype == scores.dtype


def test_filters_reach_the_workers(cluster):
    m = _matrix(seed=4)
    model = ItemKNN(k=10).fit(m, show_progress=False)
    allowed, denied = np.arange(0, 40), np.array([1, 2, 3])
    local = model.recommend_rows(m, 5, False, allowed, denied)
    remote = recommend_all_on_ray(model, m, 5, block_size=17, filter_owned=False, allowed=allowed, denied=denied)
    assert np.array_equal(local[0], remote[0]) and np.array_equal(local[1], remote[1])


@pytest.mark.parametrize("algorithm", ["ALS", "EASE", "UserKNN", "Popularity"])
def test_other_models_score_all_users_on_ray_too(cluster, algorithm):
    m = _matrix(seed=6)
    model = getattr(backpack, algorithm)()
    model.fit(m, show_progress=False)
    ids, scores = model.recommend_rows(m, 6)
    remote_ids, remote_scores = recommend_all_on_ray(model, m, 6, block_size=33)
    assert np.array_equal(ids, remote_ids) and np.array_equal(scores, remote_scores)


def test_a_model_that_does_not_pickle_is_refused(cluster):
    import threading

    m = _matrix()
    model = backpack.Popularity().fit(m, show_progress=False)
    model.lock = threading.Lock()  # what pickle cannot carry
    with pytest.raises(InvalidInputError, match="cannot be sent to Ray workers"):
        recommend_all_on_ray(model, m, 3)


def test_an_engine_scores_its_own_bags(cluster):
    engine = backpack.Engine(num_threads=1)
    m = _matrix(seed=5)
    engine.load_matrix(m, [f"u{i}" for i in range(m.shape[0])], [f"i{j}" for j in range(m.shape[1])])
    engine.fit("itemknn", k=10)
    ids, scores = engine.model.recommend_rows(engine.bags.to_csr(), 4)
    remote_ids, remote_scores = recommend_all_on_ray(engine, n=4, block_size=25)
    assert np.array_equal(ids, remote_ids) and np.array_equal(scores, remote_scores)


def test_no_users_gives_an_empty_result(cluster):
    m = _matrix()
    model = ItemKNN(k=5).fit(m, show_progress=False)
    ids, scores = recommend_all_on_ray(model, m[:0], 3)
    assert ids.shape == (0, 3) and scores.shape == (0, 3)


def test_bad_arguments(cluster):
    m = _matrix()
    with pytest.raises(InvalidInputError):
        fit_on_ray(backpack.ALS(factors=4), m)
    with pytest.raises(InvalidInputError):
        fit_on_ray(ItemKNN(k=3), m, block_size=0)
    with pytest.raises(InvalidInputError):
        recommend_all_on_ray(ItemKNN(k=3).fit(m, show_progress=False), None, 3)
