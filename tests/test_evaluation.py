"""Splits and ranking metrics against plain per-user reference code."""

import math

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import random_user_items

from backpack import InvalidInputError, ItemKNN
from backpack.evaluation import evaluate, holdout_split, leave_last_out, ranking_metrics, time_cut


def reference_metrics(recommended, test_sets, k, n_items, popularity):
    per_user = {name: [] for name in ("precision", "recall", "ndcg", "map", "mrr", "hit_rate")}
    for recs, relevant in zip(recommended, test_sets):
        if not relevant:
            continue
        recs = [int(r) for r in recs[:k]]
        hits = [r in relevant and r not in recs[:i] for i, r in enumerate(recs)]  # a repeat is no new hit
        per_user["precision"].append(sum(hits) / k)
        per_user["recall"].append(sum(hits) / len(relevant))
        dcg = sum(1 / math.log2(i + 2) for i, h in enumerate(hits) if h)
        idcg = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
        per_user["ndcg"].append(dcg / idcg)
        precisions = [sum(hits[: i + 1]) / (i + 1) for i, h in enumerate(hits) if h]
        per_user["map"].append(sum(precisions) / min(len(relevant), k))
        per_user["mrr"].append(next((1 / (i + 1) for i, h in enumerate(hits) if h), 0.0))
        per_user["hit_rate"].append(float(any(hits)))
    out = {name: sum(v) / len(v) for name, v in per_user.items()}
    shown = [
        r
        for recs in recommended
        for i, r in enumerate(int(r) for r in recs[:k])
        if r >= 0 and r not in [int(x) for x in recs[:i]]
    ]
    out["coverage"] = len(set(shown)) / n_items
    out["popularity_bias"] = (sum(popularity[r] for r in shown) / len(shown)) / (sum(popularity) / n_items)
    return out


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("k", [1, 5, 10])
def test_metrics_match_the_reference(seed, k):
    rng = np.random.default_rng(seed)
    n_users, n_items = 40, 30
    test = random_user_items(n_users, n_items, 0.1, seed=seed)
    train = random_user_items(n_users, n_items, 0.2, seed=seed + 100)
    recommended = np.array([rng.permutation(n_items)[:k] for _ in range(n_users)], dtype=np.int32)
    recommended[rng.random(recommended.shape) < 0.1] = -1  # some padding
    got = ranking_metrics(recommended, test, k, train=train)
    test_sets = [set(test[u].indices.tolist()) for u in range(n_users)]
    popularity = np.bincount(train.indices, minlength=n_items)
    want = reference_metrics(recommended, test_sets, k, n_items, popularity)
    assert got.keys() == want.keys()
    for name in want:
        assert got[name] == pytest.approx(want[name], rel=1e-9, abs=1e-12), name


def test_perfect_and_useless_recommendations():
    test = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 0]], np.float32))
    perfect = ranking_metrics(np.array([[1, 2], [0, 3]]), test, 2)
    assert perfect["ndcg"] == pytest.approx(1.0) and perfect["hit_rate"] == 1.0 and perfect["mrr"] == 1.0
    useless = ranking_metrics(np.array([[0, 3], [1, 2]]), test, 2)
    assert useless["ndcg"] == 0 and useless["recall"] == 0 and useless["map"] == 0


def test_holdout_split_partitions_every_user():
    m = random_user_items(200, 50, 0.1, seed=1)
    split = holdout_split(m, 0.25, seed=3)
    assert (split.train + split.test != m).nnz == 0
    assert split.train.multiply(split.test).nnz == 0
    counts, held = np.diff(m.indptr), np.diff(split.test.indptr)
    eligible = counts >= 2
    assert (
        held[eligible] == np.minimum(np.maximum(1, np.floor(counts[eligible] * 0.25 + 0.5)), counts[eligible] - 1)
    ).all()
    assert (held[~eligible] == 0).all() and (np.diff(split.train.indptr) >= 1)[counts > 0].all()
    again = holdout_split(m, 0.25, seed=3)
    assert (again.test != split.test).nnz == 0  # seeded


def test_leave_last_out_holds_out_the_newest():
    m = random_user_items(60, 40, 0.15, seed=2)
    t = np.random.default_rng(0).integers(0, 10**6, m.nnz)
    split = leave_last_out(m, t, n=2)
    stamps = sp.csr_matrix((t.astype(np.float64) + 1, m.indices, m.indptr), shape=m.shape)
    for u in range(m.shape[0]):
        items = m[u].indices
        if items.size < 2:
            assert split.test[u].nnz == 0
            continue
        newest_first = items[np.lexsort((-items, -stamps[u, items].toarray().ravel()))]
        assert set(split.test[u].indices) == set(newest_first[: min(2, items.size - 1)])


def test_time_cut():
    m = random_user_items(50, 30, 0.2, seed=4)
    t = np.arange(m.nnz)
    split = time_cut(m, t, cut=m.nnz // 2)
    assert split.test.nnz == m.nnz - m.nnz // 2 and split.train.nnz == m.nnz // 2


def test_evaluate_a_model_on_a_split():
    from backpack.data import synthetic

    cat = synthetic.generate_size("tiny", seed=2)
    split = holdout_split(cat.user_items, 0.2, seed=0)
    model = ItemKNN(k=50).fit(split.train, show_progress=False)
    result = evaluate(model, split, k=10)
    # topic structure makes item-kNN clearly better than chance (10 of 1,000 items)
    assert result["hit_rate"] > 0.2 and 0 < result["ndcg"] <= 1 and 0 < result["coverage"] <= 1


@pytest.mark.parametrize(
    "call",
    [
        lambda m: holdout_split(m, 1.5),
        lambda m: leave_last_out(m, np.zeros(3)),
        lambda m: time_cut(m, np.full(m.nnz, np.nan), 0),
        lambda m: ranking_metrics(np.zeros((2, 2)), m, 3),
        lambda m: ranking_metrics(np.zeros((m.shape[0], 2)), m, 0),
        lambda m: ranking_metrics(np.zeros((m.shape[0], 2)), sp.csr_matrix(m.shape), 2),
    ],
)
def test_bad_arguments(call):
    with pytest.raises(InvalidInputError):
        call(random_user_items(10, 8, 0.3, seed=5))


def test_evaluate_command_json_equals_the_python_api(capsys):
    import json

    from backpack.cli import main as cli
    from backpack.data import synthetic

    assert (
        cli.main(
            [
                "evaluate",
                "--size",
                "tiny",
                "--json",
                "--algorithms",
                "itemknn",
                "-p",
                "itemknn.k=20",
                "-p",
                "itemknn.similarity=bm25",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    (row,) = report["results"]
    assert row["params"] == {"k": 20, "similarity": "bm25"}
    split = holdout_split(synthetic.generate_size("tiny").user_items, 0.2, seed=0)
    expected = evaluate(ItemKNN(k=20, similarity="bm25").fit(split.train, show_progress=False), split, 10)
    for name, value in expected.items():
        assert row[name] == pytest.approx(value)


def test_evaluate_command_table_and_errors(capsys):
    from backpack.cli import main as cli

    assert cli.main(["evaluate", "--size", "tiny", "--algorithms", "itemknn"]) == 0
    out = capsys.readouterr().out
    assert "| algorithm | fit s | precision |" in out and "| itemknn |" in out
    for bad in (["--algorithms", "nope"], ["-p", "k=5"], ["-p", "other.k=5"], ["--algorithms", " , "]):
        assert cli.main(["evaluate", "--size", "tiny", *bad]) == 2
        assert "error [" in capsys.readouterr().err


def test_a_model_that_recommends_nothing_scores_zero():
    test = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 0]], np.float32))
    got = ranking_metrics(np.full((2, 3), -1), test, 3, train=test)
    assert all(value == 0.0 for value in got.values()), got
    assert got.keys() == {"precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage", "popularity_bias"}


def test_a_repeated_id_in_a_row_counts_once():
    test = sp.csr_matrix(np.array([[0, 1, 1, 0], [1, 0, 0, 0]], np.float32))
    recommended = np.array([[1, 1, 2], [0, 0, 0]])
    got = ranking_metrics(recommended, test, 3, train=test)
    assert got["recall"] == pytest.approx(1.0)  # not 3/2 and 3/1
    assert got["precision"] == pytest.approx((2 / 3 + 1 / 3) / 2)
    test_sets = [{1, 2}, {0}]
    want = reference_metrics(recommended, test_sets, 3, 4, np.bincount(test.indices, minlength=4))
    for name in want:
        assert got[name] == pytest.approx(want[name]), name
    assert 0 <= got["ndcg"] <= 1 and 0 <= got["map"] <= 1


def test_only_positive_entries_of_the_test_matrix_are_relevant():
    # row 0 stores an explicit zero for item 3 and item 1 twice; row 1 holds only a zero
    test = sp.csr_matrix(
        (np.array([1.0, 0.0, 1.0, 1.0, 0.0], np.float32), np.array([1, 3, 1, 2, 0]), np.array([0, 4, 5])), shape=(2, 4)
    )
    before = (test.data.copy(), test.indices.copy(), test.indptr.copy())
    got = ranking_metrics(np.array([[3, 1, 2], [0, 1, 2]]), test, 3, train=test)
    # only row 0 is evaluated, with relevant items {1, 2}; item 3 is no hit
    assert got["recall"] == pytest.approx(1.0) and got["precision"] == pytest.approx(2 / 3)
    assert got["mrr"] == pytest.approx(0.5)
    # popularity counts users holding an item: item 1 once, item 2 once, items 0 and 3 never
    assert got["popularity_bias"] == pytest.approx((0 + 1 + 1 + 1 + 0 + 1) / 6 / (2 / 4))
    for kept, now in zip(before, (test.data, test.indices, test.indptr)):
        assert np.array_equal(kept, now)  # the caller's matrix is not touched
    with pytest.raises(InvalidInputError):
        ranking_metrics(np.zeros((2, 3)), sp.csr_matrix(([0.0], [1], [0, 1, 1]), shape=(2, 4)), 3)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint32, np.uint64, np.int64])
def test_leave_last_out_orders_timestamps_of_any_integer_type(dtype):
    # -t would wrap: 0 for unsigned zero, and INT64_MIN stays INT64_MIN
    low = np.iinfo(dtype).min
    m = sp.csr_matrix(np.ones((2, 4), np.float32))
    t = np.array([low, 5, 3, low, 7, 7, 7, low], dtype)
    split = leave_last_out(m, t, n=2)
    assert split.test[0].indices.tolist() == [1, 2]
    assert split.test[1].indices.tolist() == [1, 2]  # a three-way tie at 7: higher ids count as newer
    assert split.train[1].indices.tolist() == [0, 3]


def test_timestamps_follow_the_entries_as_the_caller_stored_them():
    # an interaction log: user, item, time; item 1 of user 0 twice (latest at 50)
    users = np.array([1, 0, 0, 1, 0, 0])
    items = np.array([2, 1, 0, 0, 3, 1])
    times = np.array([10, 20, 40, 30, 5, 50])
    log = sp.coo_matrix((np.ones(6, np.float32), (users, items)), shape=(2, 4))
    split = leave_last_out(log, times, n=1)
    assert split.test[0].indices.tolist() == [1] and split.test[1].indices.tolist() == [0]
    assert split.train[0].toarray().tolist() == [[1, 0, 0, 1]]  # duplicates were summed into the test entry
    assert split.test[0].data.tolist() == [2.0]
    assert time_cut(log, times, cut=45).test.nnz == 1  # user 0's item 1, last seen at 50

    # a CSR matrix with unsorted indices: timestamps follow its .data, not a sorted copy
    unsorted = sp.csr_matrix((np.ones(3, np.float32), np.array([2, 0, 1]), np.array([0, 3])), shape=(1, 3))
    assert leave_last_out(unsorted, np.array([3, 1, 2]), n=1).test.indices.tolist() == [2]
    assert time_cut(unsorted, np.array([3, 1, 2]), cut=2).test.indices.tolist() == [1, 2]
    assert time_cut(unsorted.tocsc(), np.array([1, 2, 3]), cut=3).test.indices.tolist() == [2]

    # a stored zero is no interaction: its timestamp goes with it
    with_zero = sp.csr_matrix((np.array([1, 0, 1], np.float32), np.array([0, 1, 2]), np.array([0, 3])), shape=(1, 3))
    split = leave_last_out(with_zero, np.array([1, 9, 2]), n=1)
    assert split.test.indices.tolist() == [2] and split.train.indices.tolist() == [0]

    # formats without a defined entry order are refused with a typed error
    with pytest.raises(InvalidInputError):
        leave_last_out(unsorted.tolil(), np.array([3, 1, 2]))
    with pytest.raises(InvalidInputError):
        time_cut(log, times[:5], cut=0)


def test_holdout_rounds_half_up():
    dense = np.ones((3, 10), np.float32)
    dense[1, 8:] = dense[2, 6:] = 0
    m = sp.csr_matrix(dense)  # rows of 10, 8 and 6 items: 2.5, 2.0 and 1.5 to hold out at 25%
    assert np.diff(holdout_split(m, 0.25).test.indptr).tolist() == [3, 2, 2]
