"""Offline evaluation: train/test splits and ranking metrics at k.

Metrics are computed vectorised over all users at once (NumPy/SciPy) and are
checked in the tests against a plain per-user reference. Relevance is binary:
an item is relevant to a user if the test matrix holds a positive weight for
it (stored zeros are not interactions). Averages are over users with at least
one test item.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from backpack.core.arrays import as_user_items, check_count
from backpack.errors import InvalidInputError

METRICS = ("precision", "recall", "ndcg", "map", "mrr", "hit_rate", "coverage", "popularity_bias")


@dataclass
class Split:
    """Train and test interactions over the same users x items shape.

    ``train_timestamps`` (time splits, or a hold-out given times) has exactly
    the structure of ``train`` and holds each entry's time, for algorithms
    that learn from recency.
    """

    train: sp.csr_matrix
    test: sp.csr_matrix
    train_timestamps: sp.csr_matrix | None = None


# -- splits -------------------------------------------------------------------


def holdout_split(
    user_items, test_fraction: float = 0.2, *, seed: int = 0, min_items: int = 2, timestamps=None
) -> Split:
    """Per user, hold out a random ``test_fraction`` of the items (at least one).

    Users with fewer than ``min_items`` items keep everything in train. The
    count held out is ``items * test_fraction`` rounded half up (10 items at
    25% hold out 3), and at least one item always stays in train.
    ``timestamps`` (optional, as for :func:`time_cut`) go with the train part.
    """
    if timestamps is None:
        m, t = as_user_items(user_items), None
    else:
        m, t = _with_timestamps(user_items, timestamps)
    if not 0 < test_fraction < 1:
        raise InvalidInputError("test_fraction must be between 0 and 1")
    rng = np.random.default_rng(seed)
    counts = np.diff(m.indptr)
    # half up, not np.round's half to even, which held out 2 of 10 at 25% but 4 of 14
    n_test = np.where(counts >= min_items, np.maximum(1, np.floor(counts * test_fraction + 0.5)), 0).astype(np.int64)
    n_test = np.minimum(n_test, np.maximum(counts - 1, 0))  # keep at least one item in train
    # a random rank within each row: the n_test lowest ranks go to test
    keys = rng.random(m.nnz)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    order = np.lexsort((keys, rows))
    rank = np.empty(m.nnz, np.int64)
    rank[order] = np.arange(m.nnz) - np.repeat(m.indptr[:-1], counts)
    return _split_by(m, rank < np.repeat(n_test, counts), t)


def leave_last_out(user_items, timestamps, n: int = 1, *, min_items: int = 2) -> Split:
    """Per user, hold out the ``n`` most recent items.

    ``timestamps`` holds one number per stored entry of ``user_items``, in the
    order the caller stored them (see :func:`time_cut`). Among equal
    timestamps the higher item id counts as the more recent.
    """
    m, t = _with_timestamps(user_items, timestamps)
    n = check_count(n, "n")
    counts = np.diff(m.indptr)
    n_test = np.where(counts >= min_items, np.minimum(n, counts - 1), 0)
    rows = np.repeat(np.arange(m.shape[0]), counts)
    # Oldest first within each row, then ranked from the row's end, rather than
    # sorting -t: negation wraps for unsigned integers and for INT64_MIN.
    order = np.lexsort((m.indices, t, rows))
    rank = np.empty(m.nnz, np.int64)
    rank[order] = np.repeat(m.indptr[1:], counts) - 1 - np.arange(m.nnz)  # 0 = newest
    return _split_by(m, rank < np.repeat(n_test, counts), t)


def time_cut(user_items, timestamps, cut) -> Split:
    """Everything at or after ``cut`` goes to test, everything before to train.

    ``timestamps`` holds one number (any real dtype) per stored entry of
    ``user_items``, in the order the caller stored them: the order of
    ``user_items.data`` for a CSR, CSC or COO matrix (so a COO matrix built
    straight from an interaction log takes the log's timestamps as they
    are), or of the non-zeros in row-major order for a dense array. The
    matrix need not be canonical: entries are sorted with their timestamps,
    a pair stored more than once becomes one interaction with the summed
    weight and the latest timestamp, and stored zeros are dropped with
    theirs. Other sparse formats have no defined entry order and are refused.
    """
    m, t = _with_timestamps(user_items, timestamps)
    return _split_by(m, t >= cut, t)


def _with_timestamps(user_items, timestamps) -> tuple[sp.csr_matrix, np.ndarray]:
    """The canonical matrix to split and its timestamps, one per stored entry in its order."""
    as_user_items(user_items)  # the same type and value checks as every other entry point
    if sp.issparse(user_items) and user_items.format not in ("csr", "csc", "coo"):
        raise InvalidInputError(
            f"timestamps follow the stored entries of a CSR, CSC or COO matrix (or a dense array); "
            f"convert the {user_items.format.upper()} matrix first"
        )
    entries = sp.coo_matrix(user_items)  # keeps the stored order of CSR, CSC and COO
    t = np.asarray(timestamps)
    if t.shape != (entries.nnz,):
        raise InvalidInputError(
            f"timestamps must have one entry per stored interaction ({entries.nnz}), got shape {t.shape}"
        )
    if (
        not np.issubdtype(t.dtype, np.number)
        or np.issubdtype(t.dtype, np.complexfloating)
        or (np.issubdtype(t.dtype, np.floating) and not np.isfinite(t).all())
    ):
        raise InvalidInputError("timestamps must be finite real numbers")
    held = entries.data != 0  # a stored zero is no interaction: its timestamp goes with it
    rows, cols, weights, t = entries.row[held], entries.col[held], entries.data[held], t[held]
    order = np.lexsort((cols, rows))  # canonical CSR order; a repeated pair stays together
    rows, cols, weights, t = rows[order], cols[order], weights[order].astype(np.float64), t[order]
    if rows.size:  # one interaction per pair: summed weight, latest timestamp
        first = np.flatnonzero(np.r_[True, (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])])
        weights, t = np.add.reduceat(weights, first).astype(np.float32), np.maximum.reduceat(t, first)
        rows, cols = rows[first], cols[first]
    keep = weights != 0
    rows, cols, weights, t = rows[keep], cols[keep], weights[keep], t[keep]
    indptr = np.r_[0, np.cumsum(np.bincount(rows, minlength=entries.shape[0]))]
    # canonical, float32 and without zeros already: checked, neither copied nor reordered
    m = as_user_items(sp.csr_matrix((weights.astype(np.float32), cols, indptr), shape=entries.shape))
    return m, t


def _split_by(m: sp.csr_matrix, to_test: np.ndarray, times: np.ndarray | None = None) -> Split:
    rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))

    def part(values, mask, dtype):
        return sp.csr_matrix((values[mask], (rows[mask], m.indices[mask])), shape=m.shape, dtype=dtype)

    train_times = None if times is None else part(times.astype(np.float64), ~to_test, np.float64)
    return Split(part(m.data, ~to_test, np.float32), part(m.data, to_test, np.float32), train_times)


# -- metrics ------------------------------------------------------------------


def ranking_metrics(recommended: np.ndarray, test, k: int, *, train=None) -> dict[str, float]:
    """All metrics at ``k`` for a (users x >=k) array of recommended ids (-1 = none).

    ``train`` (users x items) gives item popularity for ``popularity_bias``:
    the mean popularity of recommended items over the mean popularity of all
    items (1.0 = as popular as the average item).
    """
    test = _positive(test, "test")
    k = check_count(k, "k")
    if k < 1:
        raise InvalidInputError("k must be >= 1")
    ids = np.asarray(recommended)
    if ids.ndim != 2 or ids.shape[0] != test.shape[0] or ids.shape[1] < k:
        raise InvalidInputError(f"recommended must be (users={test.shape[0]}, >= k={k}), got {ids.shape}")
    ids = ids[:, :k].astype(np.int64)
    n_items = test.shape[1]
    # an id repeated within a row is shown once: only its first slot can be a hit
    valid = (ids >= 0) & (ids < n_items) & _first_occurrence(ids)
    users = np.repeat(np.arange(ids.shape[0]), k).reshape(ids.shape)
    hits = np.zeros(ids.shape, bool)
    hits[valid] = _stored(test, users[valid], ids[valid]) != 0
    n_relevant = np.diff(test.indptr)
    evaluated = n_relevant > 0
    if not evaluated.any():
        raise InvalidInputError("no user has a test item: nothing to evaluate")
    hits, n_rel = hits[evaluated], n_relevant[evaluated]

    ranks = np.arange(1, k + 1)
    discounts = 1.0 / np.log2(ranks + 1)
    ideal = np.cumsum(discounts)[np.minimum(n_rel, k) - 1]
    cum_hits = np.cumsum(hits, axis=1)
    first = np.where(hits.any(axis=1), hits.argmax(axis=1) + 1, 0)
    out = {
        "precision": hits.sum(axis=1) / k,
        "recall": hits.sum(axis=1) / n_rel,
        "ndcg": (hits * discounts).sum(axis=1) / ideal,
        "map": (hits * cum_hits / ranks).sum(axis=1) / np.minimum(n_rel, k),
        "mrr": np.where(first > 0, 1.0 / np.maximum(first, 1), 0.0),
        "hit_rate": hits.any(axis=1).astype(np.float64),
    }
    result = {name: float(values.mean()) for name, values in out.items()}
    shown = ids[valid]
    result["coverage"] = float(np.unique(shown).size / n_items) if n_items else 0.0
    if train is not None:
        popularity = np.bincount(_positive(train, "train").indices, minlength=n_items).astype(np.float64)
        mean_pop = popularity.mean() if n_items else 0.0
        result["popularity_bias"] = float(popularity[shown].mean() / mean_pop) if shown.size and mean_pop else 0.0
    return result


def _positive(matrix, name: str) -> sp.csr_matrix:
    """A private canonical copy of ``matrix`` holding 1 where it holds a positive weight.

    Stored zeros (and duplicates summing to zero or less) are not interactions,
    and duplicates of one pair are one interaction; the caller's matrix is not
    modified.
    """
    try:
        m = sp.csr_matrix(matrix, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a users x items matrix: {exc}") from None
    m.sum_duplicates()
    m.data = (m.data > 0).astype(np.float64)
    m.eliminate_zeros()
    return m


def _first_occurrence(ids: np.ndarray) -> np.ndarray:
    """True where an id appears in its row for the first time (left to right)."""
    order = np.argsort(ids, axis=1, kind="stable")  # equal ids stay in slot order
    ranked = np.take_along_axis(ids, order, axis=1)
    first_ranked = np.ones(ids.shape, bool)
    first_ranked[:, 1:] = ranked[:, 1:] != ranked[:, :-1]
    first = np.empty(ids.shape, bool)
    np.put_along_axis(first, order, first_ranked, axis=1)
    return first


def _stored(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``m[rows[i], cols[i]]`` as a flat array, whatever SciPy returns for the index."""
    if rows.size == 0:  # SciPy answers an empty index with a sparse matrix, not an array
        return np.zeros(0, m.dtype)
    values = m[rows, cols]
    if sp.issparse(values):
        values = values.toarray()
    return np.asarray(values).ravel()


def evaluate(model, split: Split, k: int = 10) -> dict[str, float]:
    """Fit-free evaluation of a fitted :class:`backpack.Recommender` on ``split``: metrics at ``k``."""
    ids, _ = model.recommend_rows(split.train, k, True)
    return ranking_metrics(ids, split.test, k, train=split.train)
