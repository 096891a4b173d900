"""Timestamps, item kinds and the popularity algorithm, against plain Python references."""

from __future__ import annotations

from datetime import datetime, timezone

import numpy as np
import pytest
import scipy.sparse as sp

from backpack import Engine, InvalidInputError, Popularity
from backpack.core.timestamps import TimestampLog, timestamp_array
from backpack.evaluation import holdout_split, leave_last_out, time_cut

DAY = 86_400.0


# -- the timestamp log ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_the_log_keeps_the_latest_time_since_the_last_removal(seed):
    rng = np.random.default_rng(seed)
    log, reference = TimestampLog(), {}
    for _ in range(40):
        n = int(rng.integers(1, 30))
        users, items = rng.integers(0, 6, n), rng.integers(0, 6, n)
        if rng.random() < 0.3:
            log.forget(users, items)
            for pair in zip(users.tolist(), items.tolist()):
                reference.pop(pair, None)
            continue
        times = rng.integers(0, 50, n).astype(float)
        times[rng.random(n) < 0.2] = np.nan  # no time: adds nothing
        log.record(users, items, times)
        for u, i, t in zip(users.tolist(), items.tolist(), times.tolist()):
            if t == t:
                reference[u, i] = max(reference.get((u, i), -np.inf), t)
    pairs = log.snapshot()
    got = {(u, i): t for u, i, t in zip(*(a.tolist() for a in pairs.entries()))}
    assert got == reference
    keys = list(zip(pairs.users.tolist(), pairs.items.tolist()))
    assert keys == sorted(keys)


def test_aligned_follows_the_entries_of_a_snapshot():
    log = TimestampLog()
    log.record(np.array([0, 1, 1]), np.array([2, 0, 3]), np.array([5.0, 6.0, 7.0]))
    m = sp.csr_matrix((np.ones(4, np.float32), ([0, 0, 1, 1], [1, 2, 0, 3])), shape=(3, 4))
    times = log.as_csr(m)
    assert np.array_equal(times.indptr, m.indptr) and np.array_equal(times.indices, m.indices)
    np.testing.assert_array_equal(times.data, [np.nan, 5.0, 6.0, 7.0])
    np.testing.assert_array_equal(log.aligned(m[:1]), [np.nan, 5.0])  # pairs outside the matrix are ignored


def test_timestamps_take_numbers_datetimes_and_none():
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    t = timestamp_array([1.5, None, when, datetime(2026, 1, 2, 3, 4, 5), np.datetime64("2026-01-02T03:04:05")], 5)
    np.testing.assert_array_equal(t, [1.5, np.nan, when.timestamp(), when.timestamp(), when.timestamp()])
    np.testing.assert_array_equal(timestamp_array(7, 3), [7.0, 7.0, 7.0])
    for bad in (["yesterday"], [True], [np.inf], [[1.0, 2.0]], [1.0, 2.0]):
        with pytest.raises(InvalidInputError):
            timestamp_array(bad, 1)


def test_engine_records_times_and_a_removal_forgets_them():
    engine = Engine()
    engine.add_interactions(["a", "a", "b"], ["x", "y", "x"], timestamps=[10, 20, 30])
    engine.add_interaction("a", "x", timestamp=5)  # older: the pair keeps 10
    engine.add_interaction("b", "y")  # no time
    m = engine.bags.to_csr()
    assert engine.timestamps.aligned(m).shape == (4,)
    times = engine.timestamps.as_csr(m).toarray()  # NaN reads as "no time"
    assert times[0, 0] == 10 and times[0, 1] == 20 and times[1, 0] == 30 and np.isnan(times[1, 1])
    assert engine.remove_interaction("a", "x")
    engine.add_interaction("a", "x")  # back, but without a time now
    assert np.isnan(engine.timestamps.as_csr(engine.bags.to_csr()).toarray()[0, 0])


def test_a_bad_timestamp_stores_nothing():
    engine = Engine()
    with pytest.raises(InvalidInputError, match="timestamp"):
        engine.add_interactions(["a", "b"], ["x", "y"], timestamps=[1.0, "soon"])
    with pytest.raises(InvalidInputError, match="2 interactions but 3 timestamps"):
        engine.add_interactions(["a", "b"], ["x", "y"], timestamps=[1.0, 2.0, 3.0])
    assert engine.bags.nnz == 0 and len(engine.timestamps) == 0


def test_load_matrix_takes_times_per_stored_entry():
    m = sp.csr_matrix(np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32))
    engine = Engine()
    engine.load_matrix(m, ["a", "b"], ["x", "y", "z"], timestamps=[100, 200, 300])
    np.testing.assert_array_equal(engine.timestamps.aligned(engine.bags.to_csr()), [100, 200, 300])
    engine.load_matrix(m, ["a", "b"], ["x", "y", "z"])  # new bags without times: the old times go
    assert len(engine.timestamps) == 0


# -- item kinds -----------------------------------------------------------------


def kinds_engine():
    rng = np.random.default_rng(3)
    engine = Engine()
    users = [f"u{i}" for i in rng.integers(0, 40, 600)]
    items = [f"i{i}" for i in rng.integers(0, 30, 600)]
    engine.add_interactions(users, items)
    engine.set_item_kinds([f"i{i}" for i in range(30)], ["avatar" if i % 3 == 0 else "world" for i in range(30)])
    return engine


@pytest.mark.parametrize(
    "algorithm,params",
    [
        ("itemknn", {"k": 10}),
        ("als", {"factors": 4, "iterations": 2}),
        ("ease", {}),
        ("popularity", {}),
        ("userknn", {"k": 10}),
    ],
)
def test_item_kind_restricts_every_call_and_equals_an_explicit_item_list(algorithm, params):
    engine = kinds_engine()
    engine.fit(algorithm, **params)
    avatars = [f"i{i}" for i in range(0, 30, 3)]
    for user in ("u1", "u7", "nobody"):
        got = engine.recommend(user, n=4, item_kind="avatar")
        assert got == engine.recommend(user, n=4, items=avatars)
        assert len(got) == min(4, len(set(avatars) - set(engine.bags.bag(user))))
        assert all(engine.item_kinds.get(r.item) == "avatar" for r in got)
    similar = engine.similar_items("i1", n=3, item_kind="avatar")
    assert similar == engine.similar_items("i1", n=3, items=avatars) and len(similar) == 3
    bag = engine.recommend_bag(["i0", "i4"], n=5, item_kind="world")
    assert all(engine.item_kinds.get(r.item) == "world" for r in bag) and len(bag) == 5
    both = engine.recommend("u1", n=30, item_kind="avatar", items=["i0", "i3", "i4"])
    assert {r.item for r in both} <= {"i0", "i3"}


def test_an_unknown_kind_is_a_clear_error():
    engine = kinds_engine()
    engine.fit("popularity")
    with pytest.raises(InvalidInputError, match="no item has kind 'vehicle'; known kinds: \\['avatar', 'world'\\]"):
        engine.recommend("u1", item_kind="vehicle")
    with pytest.raises(InvalidInputError, match="3 items but 2 kinds"):
        engine.set_item_kinds(["a", "b", "c"], ["x", "y"])


def test_kinds_of_items_nobody_holds_yet_apply_once_they_arrive():
    engine = kinds_engine()
    engine.set_item_kinds(["brand-new"], "avatar")
    engine.fit("popularity")
    assert "brand-new" not in {r.item for r in engine.recommend("u1", n=30, item_kind="avatar")}
    engine.add_interaction("u2", "brand-new", 50.0)
    engine.fit("popularity", max_user_weight=None)  # one user's weight counted in full (the default caps it)
    assert engine.recommend("u1", n=1, item_kind="avatar")[0].item == "brand-new"


# -- popularity -------------------------------------------------------------------


def reference_popularity(m: sp.csr_matrix, times=None, half_life=None, now=None, binary=False):
    dense = m.toarray().astype(np.float64)
    w = (dense != 0).astype(np.float64) if binary else dense
    if half_life is not None:
        t = times.toarray()
        now = t[dense != 0].max() if now is None else now
        w = w * np.where(dense != 0, 0.5 ** (np.maximum(now - t, 0) / DAY / half_life), 0.0)
    return w.sum(axis=0)


def reference_top(pop: np.ndarray, owned: set, n: int) -> list[int]:
    order = sorted(range(pop.size), key=lambda i: (-np.float32(pop[i]), i))
    return [i for i in order if i not in owned][:n]


@pytest.mark.parametrize("half_life,binary", [(None, False), (None, True), (3.0, False), (0.5, True)])
def test_popularity_matches_a_reference(half_life, binary):
    rng = np.random.default_rng(7)
    m = sp.random(50, 40, density=0.15, random_state=1, format="csr", dtype=np.float32)
    m.data = rng.integers(1, 4, m.nnz).astype(np.float32)
    times = sp.csr_matrix((rng.uniform(0, 20 * DAY, m.nnz), m.indices, m.indptr), shape=m.shape)
    model = Popularity(half_life_days=half_life, binary=binary).fit(m, timestamps=times)
    pop = reference_popularity(m, times, half_life, binary=binary)
    np.testing.assert_allclose(model.scores, pop, rtol=1e-5)
    ids, scores = model.recommend(np.arange(50), m, N=8)
    for u in range(50):
        want = reference_top(model.scores.astype(np.float64), set(m[u].indices.tolist()), 8)
        assert ids[u].tolist() == want
        np.testing.assert_array_equal(scores[u], model.scores[want])
    ids, _ = model.recommend(np.arange(50), m, N=8, filter_already_liked_items=False)
    assert (ids == ids[0]).all()


def test_popularity_fills_exactly_n_and_pads_only_when_nothing_is_left():
    m = sp.csr_matrix(np.array([[1, 1, 0, 0], [0, 1, 1, 1]], dtype=np.float32))
    model = Popularity().fit(m)
    ids, scores = model.recommend(np.arange(2), m, N=3)
    assert ids[0].tolist() == [2, 3, -1] and ids[1].tolist() == [0, -1, -1]
    assert np.isneginf(scores[0, 2])
    ids, _ = model.recommend(0, m, N=3, items=[0, 3], filter_items=[3])
    assert ids.tolist() == []  # a single user gets its valid ids only, implicit-style
    assert model.similar_items(1, N=2)[0].tolist() == [0, 2]  # ties: lower id first


def test_recency_decay_prefers_what_is_popular_lately():
    engine = Engine()
    # "old" had 4 users 60 days ago; "new" has 2 users today
    engine.add_interactions([f"u{i}" for i in range(4)], ["old"] * 4, timestamps=0.0)
    engine.add_interactions(["u8", "u9"], ["new"] * 2, timestamps=60 * DAY)
    engine.add_interaction("x", "other", timestamp=60 * DAY)
    engine.fit("popularity")
    assert engine.recommend("x", n=1)[0].item == "old"
    engine.fit("popularity", half_life_days=7)
    top = engine.recommend("x", n=2)
    assert [r.item for r in top] == ["new", "old"] and top[0].source == "popular"
    assert top[1].score == pytest.approx(4 * 0.5 ** (60 / 7), rel=1e-5)


def test_recency_decay_without_times_is_a_clear_error():
    engine = Engine()
    engine.add_interactions(["a", "b"], ["x", "y"], timestamps=[1.0, None])
    with pytest.raises(InvalidInputError, match="1 of 2 have none"):
        engine.fit("popularity", half_life_days=7)
    with pytest.raises(InvalidInputError, match="needs interaction timestamps"):
        Popularity(half_life_days=7).fit(engine.bags.to_csr())
    with pytest.raises(InvalidInputError, match="half_life_days"):
        Popularity(half_life_days=-1)


def test_popularity_saves_and_loads(tmp_path):
    m = sp.random(20, 15, density=0.3, random_state=2, format="csr", dtype=np.float32)
    times = sp.csr_matrix((np.arange(m.nnz, dtype=float) * DAY, m.indices, m.indptr), shape=m.shape)
    model = Popularity(half_life_days=2.0, now=40 * DAY).fit(m, timestamps=times)
    model.save(tmp_path / "pop")
    again = Popularity.load(tmp_path / "pop")
    assert again.half_life_days == 2.0 and again.now == 40 * DAY
    np.testing.assert_array_equal(again.scores, model.scores)


# -- splits carry the train part's times --------------------------------------------


def test_splits_hand_the_train_times_to_the_fit():
    rng = np.random.default_rng(0)
    m = sp.random(30, 20, density=0.3, random_state=4, format="csr", dtype=np.float32)
    t = rng.uniform(0, 100, m.nnz)
    for split in (time_cut(m, t, 60.0), leave_last_out(m, t, 1), holdout_split(m, 0.3, timestamps=t)):
        tt = split.train_timestamps
        assert np.array_equal(tt.indptr, split.train.indptr) and np.array_equal(tt.indices, split.train.indices)
        lookup = dict(zip(zip(*m.nonzero()), t))
        rows = np.repeat(np.arange(30), np.diff(tt.indptr))
        assert all(lookup[r, c] == v for r, c, v in zip(rows, tt.indices, tt.data))
    assert holdout_split(m, 0.3).train_timestamps is None
