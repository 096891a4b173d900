"""implicit's ``implicit.nearest_neighbours``: item-item models and the weighting helpers.

The similarity matrix is implicit's: row ``i`` holds item ``i``'s top ``K`` neighbours *including
the item itself* (its self-similarity, 1 for cosine and TF-IDF). The subclasses build it on
Backpack's multi-threaded core (the K best other items) and merge the self entry in, keeping the
best ``K``; scoring runs on the core too. Results follow implicit's rules: only items some held
item reaches are returned (no popularity fill), held items stay in the list with score 0 when
``filter_already_liked_items`` is on, batch rows are padded with -1 / -FLT_MAX, and
``similar_items`` returns the query item first.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.implicit_kernels import ReachScorer, neighbours_with_self
from backpack.implicit.recommender_base import RecommenderBase, npz_source
from backpack.implicit.utils import check_csr, pad_batch

__all__ = [
    "BM25Recommender",
    "CosineRecommender",
    "ItemItemRecommender",
    "TFIDFRecommender",
    "all_pairs_knn",
    "bm25_weight",
    "normalize",
    "tfidf_weight",
]

_MISSING = -np.finfo(np.float64).max  # implicit's score for an ``items`` entry nothing reached


class ItemItemRecommender(RecommenderBase):
    """implicit's item-item model on a weighting the caller already applied (``fit(weighted)``).

    Parameters
    ----------
    K : neighbours kept per item, the item itself included.
    num_threads : threads for ``fit``; 0 means all cores.
    """

    def __init__(self, K=20, num_threads=0):
        self.similarity = None
        self.K = K
        self.num_threads = num_threads
        self.scorer = None

    # -- fitting ---------------------------------------------------------------

    def fit(self, weighted, show_progress=True, callback=None):
        """Keep the top ``K`` of ``weighted.T @ weighted`` per item (the raw inner products)."""
        if callback:
            raise NotImplementedError("callback isn't support on ItemItemRecommender.fit")
        self._install(all_pairs_knn(weighted, self.K, self.num_threads, show_progress).tocsr())

    def _fit_kind(self, counts, kind: str, show_progress: bool, callback, **params) -> None:
        """Build with the core's ``kind`` weighting, the item itself among its ``K`` neighbours."""
        if callback:
            raise NotImplementedError("callback isn't support on ItemItemRecommender.fit")
        csr = check_csr(counts)
        self._install(neighbours_with_self(csr, int(self.K), kind, self.num_threads, show_progress, **params))

    def _install(self, similarity: sp.csr_matrix) -> None:
        similarity = similarity.astype(np.float64)
        similarity.sort_indices()
        self.similarity = similarity
        self.scorer = ReachScorer(similarity)

    # -- queries ---------------------------------------------------------------

    def recommend(
        self,
        userid,
        user_items,
        N=10,
        filter_already_liked_items=True,
        filter_items=None,
        recalculate_user=False,
        items=None,
    ):
        """Items the user's held items reach, best first (see the module docstring for the rules)."""
        if not isinstance(user_items, sp.csr_matrix):
            raise ValueError("user_items needs to be a CSR sparse matrix")
        if not np.isscalar(userid):
            if user_items.shape[0] != len(userid):
                raise ValueError("user_items must contain 1 row for every user in userids")
            rows = [
                self._recommend_row(user_items, r, N, filter_already_liked_items, filter_items, items)
                for r in range(len(userid))
            ]
            return pad_batch(rows, N, np.float64)
        return self._recommend_row(user_items, 0, N, filter_already_liked_items, filter_items, items)

    def _recommend_row(self, user_items, row, N, filter_liked, filter_items, items):
        if filter_items is not None and items is not None:
            raise ValueError("Can't specify both filter_items and items")
        scorer = self._scorer()
        n = scorer.n_items
        allowed = None
        want = N
        if items is not None:
            items = np.asarray(items)
            if items.size and (items.max() >= n or items.min() < 0):
                raise IndexError("Some of selected itemids are not in the model")
            allowed = np.zeros(n, np.uint8)
            allowed[items] = 1
            want = len(items)
        elif filter_items is not None:
            # implicit widens the list by the filter's length, then drops the filtered items:
            # a scalar call can return more than N items
            want = N + len(filter_items)
        start, end = user_items.indptr[row], user_items.indptr[row + 1]
        held, weights = user_items.indices[start:end], user_items.data[start:end]
        ids, scores = scorer.top(held, weights, min(want, n), allowed, filter_liked)  # never more than n reached
        if filter_items is not None:
            keep = np.isin(ids, filter_items, invert=True)
            ids, scores = ids[keep], scores[keep]
        if items is not None:
            missing = items[np.isin(items, ids, invert=True)]
            if missing.size:
                ids = np.append(ids, missing)  # int64 then, as in implicit
                scores = np.append(scores, np.full(missing.size, _MISSING))
        return ids, scores

    def similar_users(self, userid, N=10, filter_users=None, users=None):
        """Not available for item-item models (as in implicit)."""
        raise NotImplementedError("similar_users isn't implemented for item-item recommenders")

    def similar_items(self, itemid, N=10, recalculate_item=False, item_users=None, filter_items=None, items=None):
        """Item ``itemid``'s stored neighbours, best first (the item itself included)."""
        if recalculate_item:
            raise NotImplementedError("Recalculate_item isn't implemented")
        if not np.isscalar(itemid):
            rows = [self.similar_items(i, N=N, filter_items=filter_items, items=items) for i in itemid]
            return pad_batch(rows, N, np.float64)
        if filter_items is not None and items is not None:
            raise ValueError("Can't specify both filter_items and items")
        similarity = self._fitted()
        if itemid >= similarity.shape[0]:
            return np.array([]), np.array([])
        if itemid < 0:
            raise IndexError(f"itemid {itemid} is negative")
        start, end = similarity.indptr[itemid], similarity.indptr[itemid + 1]
        ids, scores = similarity.indices[start:end], similarity.data[start:end]
        if filter_items is not None:
            keep = np.isin(ids, filter_items, invert=True)
            ids, scores = ids[keep], scores[keep]
        elif items is not None:
            items = np.asarray(items)
            keep = np.isin(ids, items)
            ids, scores = ids[keep], scores[keep]
            missing = items[np.isin(items, ids, invert=True)]
            if missing.size:
                ids = np.append(ids, missing)
                scores = np.append(scores, np.full(missing.size, _MISSING))
        best = np.argsort(scores, kind="stable")[::-1][:N]
        return ids[best], scores[best]

    # -- persistence -----------------------------------------------------------

    def save(self, fileobj_or_path):
        """``numpy.savez`` of ``K`` and the similarity matrix (readable by implicit's ``load`` too)."""
        args = {"K": self.K}
        args.update({name: getattr(self, name) for name in ("K1", "B") if hasattr(self, name)})
        m = self.similarity
        if m is not None:
            args.update({"shape": m.shape, "data": m.data, "indptr": m.indptr, "indices": m.indices})
        np.savez(fileobj_or_path, **args)

    @classmethod
    def load(cls, fileobj_or_path):
        """Read a model written by :meth:`save` (or by implicit's) from a path or an open file."""
        with np.load(npz_source(fileobj_or_path), allow_pickle=False) as data:
            ret = cls()
            ret.K = int(data["K"])
            for name in ("K1", "B"):
                if name in data:
                    setattr(ret, name, float(data[name]))
            if "data" in data:
                shape = tuple(int(s) for s in data["shape"])
                ret._install(sp.csr_matrix((data["data"], data["indices"], data["indptr"]), shape=shape))
        return ret

    def __getstate__(self):
        state = self.__dict__.copy()
        state["scorer"] = None  # the core index is rebuilt from the similarity matrix on arrival
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if self.similarity is not None:
            self.scorer = ReachScorer(self.similarity)

    # -- internals -------------------------------------------------------------

    def _fitted(self) -> sp.csr_matrix:
        if self.similarity is None:
            raise ValueError("this model is not fitted yet: call fit(user_items) first")
        return self.similarity

    def _scorer(self) -> ReachScorer:
        self._fitted()
        return self.scorer


class CosineRecommender(ItemItemRecommender):
    """implicit's item-item model on cosine similarity."""

    def fit(self, counts, show_progress=True, callback=None):
        self._fit_kind(counts, "cosine", show_progress, callback)


class TFIDFRecommender(ItemItemRecommender):
    """implicit's item-item model on TF-IDF-weighted cosine similarity."""

    def fit(self, counts, show_progress=True, callback=None):
        self._fit_kind(counts, "tfidf", show_progress, callback)


class BM25Recommender(ItemItemRecommender):
    """implicit's item-item model on BM25-weighted similarity (``K1``, ``B`` as in implicit)."""

    def __init__(self, K=20, K1=1.2, B=0.75, num_threads=0):
        super().__init__(K, num_threads)
        self.K1 = K1
        self.B = B

    def fit(self, counts, show_progress=True, callback=None):
        self._fit_kind(counts, "bm25", show_progress, callback, K1=float(self.K1), B=float(self.B))


def all_pairs_knn(users, K=100, num_threads=0, show_progress=True) -> sp.coo_matrix:
    """The top ``K`` entries of each row of ``users.T @ users`` (item x item inner products), as COO.

    Computed with SciPy's sparse product, so memory grows with the number of co-occurring item
    pairs; the named models (cosine, TF-IDF, BM25) build on the core's bounded-memory kernel
    instead. ``num_threads`` and ``show_progress`` are accepted for implicit's signature.
    """
    users = check_csr(users).astype(np.float64)
    products = (users.T @ users).tocoo()
    n = products.shape[0]
    # best first within each row, then keep each row's first K
    order = np.lexsort((-products.data, products.row))
    rows = products.row[order]
    rank = np.arange(order.size) - np.searchsorted(rows, rows, side="left")
    keep = order[rank < K]
    return sp.coo_matrix(
        (products.data[keep], (products.row[keep].astype(np.int32), products.col[keep].astype(np.int32))),
        shape=(n, n),
    )


def tfidf_weight(X) -> sp.coo_matrix:
    """Entries ``sqrt(x) * idf(column)`` with ``idf = log(rows) - log(1 + column count)``."""
    X = sp.coo_matrix(X, dtype=np.float64)
    idf = np.log(float(X.shape[0])) - np.log1p(np.bincount(X.col, minlength=X.shape[1]))
    X.data = np.sqrt(X.data) * idf[X.col]
    return X


def normalize(X) -> sp.coo_matrix:
    """Each row scaled to unit L2 norm (sparse; empty rows stay empty)."""
    X = sp.coo_matrix(X, dtype=np.float64)
    norms = np.sqrt(np.bincount(X.row, weights=X.data**2, minlength=X.shape[0]))
    X.data = X.data / norms[X.row]
    return X


def bm25_weight(X, K1=100, B=0.8) -> sp.coo_matrix:
    """Okapi BM25 weights of each row (a document) over its columns (terms), implicit's defaults."""
    X = sp.coo_matrix(X, dtype=np.float64)
    idf = np.log(float(X.shape[0])) - np.log1p(np.bincount(X.col, minlength=X.shape[1]))
    lengths = np.ravel(X.sum(axis=1))
    length_norm = (1.0 - B) + B * lengths / lengths.mean()
    X.data = X.data * (K1 + 1.0) / (K1 * length_norm[X.row] + X.data) * idf[X.col]
    return X
