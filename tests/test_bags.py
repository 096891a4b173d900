"""Bags against a dict-of-dicts model under random sequences of updates."""

import threading

import numpy as np
import pytest
import scipy.sparse as sp

from backpack import Bags, InvalidInputError


def snapshot(bags: Bags) -> dict:
    m = bags.to_csr()
    users, items = bags.user_ids(np.arange(bags.n_users)), bags.item_ids(np.arange(bags.n_items))
    out = {}
    for u in range(m.shape[0]):
        row = {
            items[j]: float(w)
            for j, w in zip(m.indices[m.indptr[u] : m.indptr[u + 1]], m.data[m.indptr[u] : m.indptr[u + 1]])
        }
        if row:
            out[users[u]] = row
    return out


@pytest.mark.parametrize("seed", range(5))
def test_random_updates_match_dict_model(seed):
    rng = np.random.default_rng(seed)
    bags, model = Bags(), {}
    for _ in range(300):
        op = rng.choice(["add", "set", "remove"], p=[0.5, 0.2, 0.3])
        count = int(rng.integers(1, 6))
        users = [f"u{x}" for x in rng.integers(0, 15, count)]
        items = [f"i{x}" for x in rng.integers(0, 25, count)]
        weights = np.round(rng.uniform(0.5, 3.0, count), 1)
        if op == "add":
            bags.add(users, items, weights)
            for u, i, w in zip(users, items, weights):
                model.setdefault(u, {})[i] = model.get(u, {}).get(i, 0.0) + float(np.float32(w))
        elif op == "set":
            bags.set(users, items, weights)
            for u, i, w in zip(users, items, weights):
                model.setdefault(u, {})[i] = float(np.float32(w))
        else:
            removed = bags.remove(users, items)
            expected = 0
            for u, i in zip(users, items):
                if i in model.get(u, {}):
                    del model[u][i]
                    expected += 1
            assert removed == expected
    got = snapshot(bags)
    want = {u: row for u, row in model.items() if row}
    assert got.keys() == want.keys()
    for u in want:
        assert got[u].keys() == want[u].keys()
        np.testing.assert_allclose([got[u][i] for i in want[u]], list(want[u].values()), rtol=1e-5)
    assert bags.nnz == sum(len(r) for r in want.values())
    counts = bags.item_user_counts()
    for j, name in enumerate(bags.item_ids(np.arange(bags.n_items))):
        assert counts[j] == sum(name in r for r in want.values())


def test_bulk_load_and_export_round_trip():
    m = sp.random(50, 30, density=0.1, format="csr", dtype=np.float32, random_state=1)
    m.data += 0.5
    bags = Bags()
    bags.load(m, [f"u{i}" for i in range(50)], [f"i{j}" for j in range(30)])
    assert (bags.to_csr() != m).nnz == 0
    assert bags.bag("u3") == {f"i{j}": pytest.approx(float(w)) for j, w in zip(m[3].indices, m[3].data)}


def test_memory_is_about_eight_bytes_per_interaction():
    n_users, n_items, nnz = 2000, 1000, 200_000
    m = sp.random(n_users, n_items, density=nnz / (n_users * n_items), format="csr", dtype=np.float32, random_state=2)
    m.data += 1
    bags = Bags()
    users, items = [f"user-{i:05d}" for i in range(n_users)], [f"item-{j:05d}" for j in range(n_items)]
    bags.load(m, users, items)
    per_id_overhead = 24 + 96  # row vector header + id map entry
    budget = 8 * m.nnz + per_id_overhead * (n_users + n_items) + 4 * n_items
    assert bags.memory_bytes() <= budget * 1.3
    assert bags.memory_bytes() >= 8 * m.nnz


def test_readers_never_see_half_a_batch():
    bags = Bags()
    batch = 200
    stop = threading.Event()
    torn = []

    def writer():
        for step in range(150):
            # each batch gives one user `batch` items at once
            bags.add([f"w{step}"] * batch, [f"i{j}" for j in range(batch)], 1.0)
        stop.set()

    def reader():
        while not stop.is_set():
            m = bags.to_csr()
            lengths = np.diff(m.indptr)
            if ((lengths != 0) & (lengths != batch)).any() or m.nnz % batch:
                torn.append(m.nnz)

    threads = [threading.Thread(target=writer)] + [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not torn
    assert bags.nnz == 150 * batch


@pytest.mark.parametrize("weights", [np.nan, np.inf, -1.0, 0.0])
def test_bad_weights_leave_the_store_untouched(weights):
    bags = Bags()
    bags.add(["a"], ["x"], 1.0)
    with pytest.raises(InvalidInputError):
        bags.add(["a", "b"], ["y", "z"], [1.0, weights])
    assert bags.nnz == 1 and bags.n_users == 1


def test_bad_ids_and_lengths():
    bags = Bags()
    with pytest.raises(InvalidInputError):
        bags.add(["a", "b"], ["x"], 1.0)
    with pytest.raises(InvalidInputError):
        bags.add(["a"], [3], 1.0)
    with pytest.raises(InvalidInputError):
        bags.add([""], ["x"], 1.0)
    with pytest.raises(InvalidInputError):
        bags.add(["a"], ["x"], [1.0, 2.0])
    with pytest.raises(InvalidInputError):
        bags.load(sp.csr_matrix((2, 2), dtype=np.float32), ["a", "a"], ["x", "y"])
    with pytest.raises(InvalidInputError):
        bags.load(sp.csr_matrix((2, 2), dtype=np.float32), ["a"], ["x", "y"])
