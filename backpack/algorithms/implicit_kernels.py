"""The core calls behind ``backpack.implicit`` (only ``core/`` and ``algorithms/`` load the extension).

implicit's models need the kernels in shapes Backpack's own classes do not: an item-item matrix
holding each item's self-similarity, scoring without the popularity fill, one ALS side per call
(CG or exact, ``regularization=0`` allowed), one BPR epoch per call (for per-epoch callbacks).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.itemknn import ItemKNN
from backpack.core import _core
from backpack.core.arrays import core_errors

__all__ = ["ReachScorer", "als_sweep", "bpr_epoch", "gramian", "neighbours_with_self"]


def neighbours_with_self(csr: sp.csr_matrix, K: int, kind: str, num_threads: int, show_progress: bool, **params):
    """implicit's similarity matrix for ``kind``: per item its best ``K`` neighbours, itself included.

    The core builds the best ``K`` other items; each item's self-similarity (the sum of its
    squared weights) is then merged in, displacing the weakest when it scores higher.
    """
    model = ItemKNN(k=max(K, 1), similarity=kind, num_threads=num_threads, **params)
    model.fit(csr, show_progress=show_progress)
    indptr, indices, data = model._fitted().matrix()
    user_items = model_input(csr)
    with core_errors():
        weights = _core.similarity_weights(
            np.ascontiguousarray(user_items.indptr, np.int64),
            np.ascontiguousarray(user_items.indices, np.int32),
            np.ascontiguousarray(user_items.data, np.float32),
            user_items.shape[1],
            kind,
            **params_for_weights(params),
        )
    n = csr.shape[1]
    self_scores = np.bincount(user_items.indices, weights=weights.astype(np.float64) ** 2, minlength=n)
    has_users = np.bincount(user_items.indices, minlength=n) > 0
    return _with_self(indptr, indices, data, self_scores, has_users, K)


def gramian(factors: np.ndarray, num_threads: int = 0) -> np.ndarray:
    """``factors.T @ factors`` in float64."""
    with core_errors():
        return _core.gramian(np.ascontiguousarray(factors, np.float32), int(num_threads))


def als_sweep(confidence: sp.csr_matrix, other, target, gram, regularization, cg_steps, exact, num_threads) -> None:
    """Solve every row of ``target`` (float32, in place) against ``other`` for the confidences' rows.

    ``exact`` solves by Cholesky against ``gram`` (``other``'s Gramian, without the penalty);
    otherwise ``cg_steps`` conjugate-gradient steps refine the current rows.
    """
    with core_errors():
        _core.als_solve(
            np.ascontiguousarray(confidence.indptr, np.int64),
            np.ascontiguousarray(confidence.indices, np.int32),
            np.ascontiguousarray(confidence.data, np.float32),
            other,
            target,
            gram,
            float(regularization),
            int(cg_steps),
            bool(exact),
            int(num_threads),
            None,
        )


def bpr_epoch(user_items: sp.csr_matrix, users, items, learning_rate, regularization, seed, verify, threads):
    """One BPR epoch on the factors (float32, in place); returns the share of triples ranked right."""
    with core_errors():
        return _core.bpr_train(
            np.ascontiguousarray(user_items.indptr, np.int64),
            np.ascontiguousarray(user_items.indices, np.int32),
            np.ascontiguousarray(user_items.data, np.float32),
            users,
            items,
            float(learning_rate),
            float(regularization),
            1,
            int(seed),
            bool(verify),
            int(threads),
            None,
        )


class ReachScorer:
    """The core's neighbour index over an implicit-style similarity matrix, scored by implicit's rules.

    Only items the bag reaches come back (no popularity fill), and held items stay candidates
    with score 0 rather than being dropped, as implicit's scorer does.
    """

    def __init__(self, similarity: sp.csr_matrix):
        n = similarity.shape[0]
        self.n_items = n
        self.index = _core.ItemNeighbours(
            np.ascontiguousarray(similarity.indptr, np.int64),
            np.ascontiguousarray(similarity.indices, np.int32),
            np.ascontiguousarray(similarity.data, np.float32),
            np.arange(n, dtype=np.int32),  # never used: the fill is off
            np.full(n, -np.inf, dtype=np.float32),
        )

    def top(self, held: np.ndarray, weights: np.ndarray, n: int, allowed=None, zero_held: bool = True):
        """``(ids, float64 scores)`` of the best ``n`` items the bag reaches, held ones scored 0 with ``zero_held``."""
        with core_errors():
            ids, scores = self.index.recommend_one(
                np.ascontiguousarray(held, np.int32),
                np.ascontiguousarray(weights, np.float32),
                int(n),
                False,
                allowed,
                None,
                zero_owned=bool(zero_held),
                fill=False,
            )
        return ids, scores.astype(np.float64)


def model_input(csr: sp.csr_matrix) -> sp.csr_matrix:
    """The canonical float32 users x items matrix the core weighs (duplicates summed, zeros dropped)."""
    m = csr.astype(np.float32)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def params_for_weights(params: dict) -> dict:
    """ItemKNN's BM25 keywords (``K1``, ``B``) as the core's weighting function names them."""
    return {"k1": params["K1"], "b": params["B"]} if "K1" in params else {}


def _with_self(indptr, indices, data, self_scores, has_users, K: int) -> sp.csr_matrix:
    """Neighbour rows (other items only) with each item's self entry merged in.

    An item with users gets its self-similarity; where its row already holds ``K`` others, the
    self entry replaces the weakest one when it scores higher, so the row keeps the best ``K``.
    """
    n = indptr.size - 1
    counts = np.diff(indptr)
    rows = np.repeat(np.arange(n), counts)
    keep = np.ones(indices.size, dtype=bool)
    add_self = has_users.copy()
    full = (counts >= K) & has_users
    if full.any():
        row_min = np.full(n, np.inf)
        np.minimum.at(row_min, rows, data)
        # the first entry of each full row that holds its minimum
        at_min = np.flatnonzero(full[rows] & (data == row_min[rows]))
        first_rows, first = np.unique(rows[at_min], return_index=True)
        weakest = at_min[first]
        wins = self_scores[first_rows] > row_min[first_rows]
        keep[weakest[wins]] = False
        add_self[first_rows[~wins]] = False
    selfs = np.flatnonzero(add_self)
    r = np.concatenate([rows[keep], selfs])
    c = np.concatenate([indices[keep].astype(np.int64), selfs])
    v = np.concatenate([data[keep].astype(np.float64), self_scores[selfs]])
    return sp.csr_matrix((v, (r, c)), shape=(n, n))
