"""Engine: string ids, real-time updates, unknown ids, concurrent refits."""

import threading

import numpy as np
import pytest

from backpack import Engine, InvalidInputError, NotFittedError, UnknownItemError
from backpack.data import synthetic


@pytest.fixture(scope="module")
def catalogue():
    return synthetic.generate_size("tiny", seed=1)


@pytest.fixture
def engine(catalogue):
    e = Engine()
    e.load_matrix(catalogue.user_items, catalogue.user_ids, catalogue.item_ids)
    e.fit("itemknn", k=20)
    return e


def test_recommend_equals_itemknn_on_the_same_rows(engine, catalogue):
    users = catalogue.user_ids[:50]
    batch = engine.recommend_batch(users, n=10)
    ids, scores = engine.model.recommend(np.arange(50), catalogue.user_items[:50], N=10)
    for r, recs in enumerate(batch):
        assert [x.item for x in recs] == [catalogue.item_ids[i] for i in ids[r]]
        np.testing.assert_allclose([x.score for x in recs], scores[r], rtol=1e-6)
        assert all((x.source == "popular") == (x.score < 0) for x in recs)


def test_a_new_interaction_changes_the_next_recommendation_without_refit(engine, catalogue):
    user = catalogue.user_ids[5]
    before = engine.recommend(user, n=10)
    new_item = before[0].item
    engine.add_interaction(user, new_item, kind="equip")
    after = engine.recommend(user, n=10)
    assert new_item not in [r.item for r in after], "an owned item never comes back"
    assert [r.item for r in after] != [r.item for r in before]
    # scores come from the live bag: they equal scoring the updated bag directly
    bag = engine.bags.bag(user)
    direct = engine.recommend_bag(list(bag), list(bag.values()), n=10)
    assert [r.item for r in after] == [r.item for r in direct]
    assert engine.remove_interaction(user, new_item) is True
    assert engine.remove_interaction(user, new_item) is False
    assert [r.item for r in engine.recommend(user, n=10)] == [r.item for r in before]


def test_unknown_user_gets_popular_items(engine, catalogue):
    recs = engine.recommend("nobody-at-all", n=5)
    counts = np.diff(catalogue.user_items.tocsc().indptr)
    top = [catalogue.item_ids[i] for i in np.argsort(-counts, kind="stable")[:5]]
    assert [r.item for r in recs] == top
    assert all(r.source == "popular" and r.score < 0 for r in recs)


def test_unknown_item_raises_typed_error(engine):
    with pytest.raises(UnknownItemError) as err:
        engine.similar_items("no-such-item")
    assert err.value.code == "unknown_item" and "no-such-item" in str(err.value)


def test_items_added_after_fit_are_unknown_until_refit(engine):
    engine.add_interaction("ana", "brand-new-hat", 1.0)
    with pytest.raises(UnknownItemError):
        engine.similar_items("brand-new-hat")
    assert len(engine.recommend("ana", n=5)) == 5  # the bag's unknown item is simply ignored
    engine.fit("itemknn", k=20)
    engine.similar_items("brand-new-hat")


def test_similar_items_respect_filters(engine, catalogue):
    item = catalogue.item_ids[0]
    recs = engine.similar_items(item, n=8)
    assert len(recs) == 8 and item not in [r.item for r in recs]
    excluded = [r.item for r in recs[:3]]
    again = engine.similar_items(item, n=8, exclude=excluded)
    assert not set(excluded) & {r.item for r in again}
    allowed = catalogue.item_ids[:30]
    only = engine.similar_items(item, n=5, items=allowed)
    assert {r.item for r in only} <= set(allowed)


def test_errors_before_fit_and_for_bad_arguments():
    e = Engine()
    e.add_interactions(["a", "b"], ["x", "y"], kinds=["view", "like"])
    assert e.bags.bag("b") == {"y": 3.0}
    with pytest.raises(NotFittedError):
        e.recommend("a")
    with pytest.raises(InvalidInputError):
        e.fit("no-such-algorithm")
    with pytest.raises(InvalidInputError):
        e.add_interaction("a", "x", kind="teleport")
    with pytest.raises(InvalidInputError):
        e.add_interaction("a", "x", float("nan"))


def test_reads_continue_during_refit(engine, catalogue):
    errors, served = [], []
    done = threading.Event()

    def reader():
        while not done.is_set():
            try:
                served.append(len(engine.recommend(catalogue.user_ids[1], n=5)))
            except Exception as exc:  # noqa: BLE001 - any error fails the test
                errors.append(exc)

    threads = [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in range(3):
        engine.fit("itemknn", k=15)
    done.set()
    for t in threads:
        t.join()
    assert not errors and served and set(served) == {5}


def test_load_matrix_drops_the_model_whose_indices_it_invalidates(catalogue):
    e = Engine()
    e.load_matrix(catalogue.user_items, catalogue.user_ids, catalogue.item_ids)
    e.fit("itemknn", k=5)
    e.load_matrix(catalogue.user_items[:, ::-1].tocsr(), catalogue.user_ids, catalogue.item_ids[::-1])
    with pytest.raises(NotFittedError):
        e.recommend(catalogue.user_ids[0])


def test_accumulated_weights_saturate_instead_of_becoming_infinite():
    e = Engine()
    with pytest.raises(InvalidInputError, match="at most"):  # above MAX_WEIGHT: refused where it arrives
        e.add_interaction("a", "x", 3e38)
    # the core below that rule still saturates instead of overflowing to inf
    e.bags._store.write(["a", "a"], ["x", "x"], np.array([3e38, 3e38], dtype=np.float32), False)
    e.add_interaction("b", "x", 1.0)
    e.add_interaction("b", "y", 1.0)
    assert np.isfinite(e.bags.bag("a")["x"])
    e.fit("itemknn", k=5)
    assert [r.item for r in e.recommend("a", n=1)] == ["y"]


def test_add_interactions_accepts_any_sequence_and_a_single_pair():
    e = Engine()
    e.add_interactions((f"u{i}" for i in range(3)), iter(["x", "y", "x"]), weights=[1, 2, 3])
    assert e.bags.bag("u2") == {"x": 3.0}
    e.add_interactions("ana", "hat")
    assert e.bags.bag("ana") == {"hat": 1.0}
    with pytest.raises(InvalidInputError):
        e.add_interactions(42, ["x"])
