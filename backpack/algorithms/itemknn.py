"""Item-based k-nearest-neighbour recommender, API-compatible with implicit's
``CosineRecommender`` / ``BM25Recommender`` / ``TFIDFRecommender``.

Differences a switching user should know (each is on purpose):

* ``recommend`` returns exactly ``N`` items whenever ``N`` items are eligible.
  Items no neighbour reaches are ranked after the scored ones by popularity,
  with *negative* scores (``-1 / (1 + number of users holding the item)``),
  while neighbour scores are always ``>= 0``: ``scores < 0`` marks the fill.
* With ``filter_already_liked_items=True`` an item of the bag never comes back.
* ``similar_items`` never returns the query item itself.
* Scalar calls return only real results; batch calls pad rows with id ``-1``
  and score ``-inf`` when fewer than ``N`` items are eligible.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from backpack.algorithms._shared import as_ids, item_counts, popularity_order, unbatch
from backpack.algorithms.base import Recommender
from backpack.core import _core
from backpack.core.arrays import (
    MAX_COUNT,
    MAX_RESULT_CELLS,
    as_float_array,
    as_index_array,
    as_user_items,
    check_count,
    check_result_size,
    core_errors,
    csr_arrays,
    item_mask,
)
from backpack.core.files import npz_path, open_npz, save_npz
from backpack.core.progress import run_with_progress
from backpack.errors import InvalidInputError, ModelFileError, NotFittedError

SIMILARITIES = ("cosine", "bm25", "tfidf", "jaccard", "cooccurrence", "rp3beta")
_FORMAT_VERSION = 1
_FAST_N = min(MAX_COUNT, MAX_RESULT_CELLS)  # the largest N a single-query call accepts
_ONE = np.ones(1, np.float32)


class ItemKNN(Recommender):
    """Top-K item-item neighbours, scored as ``bag x neighbours``.

    Parameters
    ----------
    k : neighbours kept per item (``K`` is accepted as an alias, as in implicit).
    similarity : ``"cosine"``, ``"bm25"``, ``"tfidf"``, ``"jaccard"``, ``"cooccurrence"``
        or ``"rp3beta"``.
    K1, B : BM25 parameters.
    alpha, beta : RP3beta parameters (exponent on the walk's probabilities;
        popularity penalty ``score / popularity ** beta``).
    num_threads : threads for ``fit`` and batch calls; 0 means all cores.
    """

    def __init__(
        self,
        k: int = 100,
        similarity: str = "cosine",
        *,
        K: int | None = None,
        K1: float = 1.2,
        B: float = 0.75,
        alpha: float = 1.0,
        beta: float = 0.6,
        num_threads: int = 0,
    ):
        if K is not None:
            k = K
        k = check_count(k, "k")
        if k < 1:
            raise InvalidInputError("k must be >= 1")
        if similarity not in SIMILARITIES:
            raise InvalidInputError(f"unknown similarity {similarity!r}; choose one of {', '.join(SIMILARITIES)}")
        if not (np.isfinite(K1) and K1 >= 0 and np.isfinite(B) and 0 <= B <= 1):
            raise InvalidInputError("BM25 needs K1 >= 0 and 0 <= B <= 1")
        if not (np.isfinite(alpha) and alpha > 0 and np.isfinite(beta)):
            raise InvalidInputError("RP3beta needs alpha > 0 and a finite beta")
        self.k = k
        self.similarity_kind = similarity
        self.K1 = float(K1)
        self.B = float(B)
        self.alpha = float(alpha)
        self.beta = float(beta)
        self.num_threads = check_count(num_threads, "num_threads")
        self._index: _core.ItemNeighbours | None = None
        self._item_counts: np.ndarray | None = None

    # implicit calls the neighbour count K
    @property
    def K(self) -> int:
        return self.k

    @property
    def n_items(self) -> int:
        """Number of items the model was fitted on."""
        return self._fitted().n_items

    @property
    def similarity(self) -> sp.csr_matrix:
        """The neighbour matrix (row i: i's top-K neighbours), canonical CSR as in implicit."""
        indptr, indices, data = self._fitted().matrix()
        n = self.n_items
        matrix = sp.csr_matrix((data, indices, indptr), shape=(n, n))
        matrix.sort_indices()
        return matrix

    @property
    def item_popularity(self) -> np.ndarray:
        """Number of users holding each item at fit time (drives the popularity fill)."""
        self._fitted()
        return self._item_counts

    def fit(self, user_items, show_progress: bool = True) -> ItemKNN:
        """Build the neighbour matrix from a users x items matrix of weights."""
        csr = as_user_items(user_items)
        indptr, indices, data = csr_arrays(csr)
        n_items = csr.shape[1]

        counts = item_counts(csr)
        order, scores = popularity_order(counts)

        def build(progress):
            with core_errors():
                return _core.fit_item_neighbours(
                    indptr,
                    indices,
                    data,
                    n_items,
                    self.similarity_kind,
                    self.k,
                    self.K1,
                    self.B,
                    self.alpha,
                    self.beta,
                    self.num_threads,
                    progress,
                    order,
                    scores,
                )

        self._index = run_with_progress(
            build, description=f"item-kNN ({self.similarity_kind})", show=show_progress, unit="item"
        )
        self._item_counts = counts
        return self

    def get_params(self) -> dict:
        """Constructor arguments of an unfitted ``ItemKNN`` that builds the same neighbours.

        What a distributed build sends its workers instead of the model
        (which may carry a fitted index they do not need).
        """
        return {
            "k": self.k,
            "similarity": self.similarity_kind,
            "K1": self.K1,
            "B": self.B,
            "alpha": self.alpha,
            "beta": self.beta,
            "num_threads": self.num_threads,
        }

    def neighbour_block(self, user_items, start: int, stop: int, num_threads: int | None = None):
        """Rows ``[start, stop)`` of the neighbour matrix :meth:`fit` would build on ``user_items``.

        Returns CSR arrays ``(indptr, indices, data)`` with ``stop - start``
        rows, row ``r`` holding item ``start + r``'s neighbours, bit for bit
        what the full build puts there (whatever the thread count): blocks
        built on different machines and passed in order to
        :meth:`fit_from_blocks` give the model :meth:`fit` gives. Every block
        still reads the whole of ``user_items`` (the weights need every
        user's and every item's totals). ``num_threads`` defaults to the
        model's.
        """
        csr = as_user_items(user_items)
        threads = self.num_threads if num_threads is None else check_count(num_threads, "num_threads")
        with core_errors():
            return _core.item_neighbours(
                *csr_arrays(csr),
                csr.shape[1],
                self.similarity_kind,
                self.k,
                self.K1,
                self.B,
                self.alpha,
                self.beta,
                threads,
                start=check_count(start, "start"),
                stop=check_count(stop, "stop"),
            )

    def fit_from_blocks(self, user_items, blocks) -> ItemKNN:
        """Install the neighbour matrix stacked from :meth:`neighbour_block` results.

        ``blocks`` are ``(indptr, indices, data)`` triples covering items
        ``0 .. n_items - 1`` in order (each block's rows follow the previous
        block's); ``user_items`` is the matrix they were built on, which
        gives the popularity fill. The model then equals ``fit(user_items)``.
        """
        csr = as_user_items(user_items)
        blocks = list(blocks)
        rows = sum(len(indptr) - 1 for indptr, _, _ in blocks)
        if rows != csr.shape[1]:
            raise InvalidInputError(f"the blocks hold {rows} rows but user_items has {csr.shape[1]} items")
        # Stacking CSR blocks: each block's offsets start at 0, so they are
        # shifted by the entries of the blocks before it.
        offsets = np.cumsum([0] + [int(indptr[-1]) for indptr, _, _ in blocks])
        indptr = np.concatenate(
            [np.zeros(1, np.int64)] + [np.asarray(p[1:], np.int64) + offsets[b] for b, (p, _, _) in enumerate(blocks)]
        )
        indices = np.concatenate([np.zeros(0, np.int32)] + [i[: p[-1]] for p, i, _ in blocks])
        data = np.concatenate([np.zeros(0, np.float32)] + [d[: p[-1]] for p, _, d in blocks])
        counts = item_counts(csr)
        self._index = _neighbour_index(indptr, indices, data, counts)
        self._item_counts = counts
        return self

    def recommend(
        self,
        userid,
        user_items,
        N: int = 10,
        filter_already_liked_items: bool = True,
        filter_items=None,
        recalculate_user: bool = False,
        items=None,
    ):
        """Top-``N`` items for users, scored from their rows of ``user_items``.

        ``user_items`` holds one row per entry of ``userid`` (implicit >= 0.5),
        or the whole users x items matrix, from which the rows are taken.
        ``items`` restricts results to those items, ``filter_items`` excludes
        them. ``recalculate_user`` is accepted for compatibility: scores always
        come from the given rows.
        """
        index = self._index
        # The serving call (one id, its own float32 CSR row, no item lists) goes straight to the
        # core's single-bag path: the model knows its width, and the core checks the row's values.
        if (
            index is not None
            and filter_items is None
            and items is None
            and type(user_items) is sp.csr_matrix
            and user_items.shape[0] == 1
            and user_items.shape[1] == index.n_items
            and user_items.dtype == np.float32
            and user_items.indices.dtype == np.int32
            and type(N) is int
            and 0 <= N <= _FAST_N
            and (type(userid) is int or isinstance(userid, np.integer))
        ):
            start, end = user_items.indptr[0], user_items.indptr[1]
            with core_errors():
                return index.recommend_one(
                    user_items.indices[start:end],
                    user_items.data[start:end],
                    N,
                    bool(filter_already_liked_items),
                    None,
                    None,
                )
        index = self._fitted()
        N = check_count(N, "N")
        userids, scalar = as_ids(userid, "userid")
        csr = as_user_items(user_items, allow_zero=True)
        if csr.shape[1] != index.n_items:
            raise InvalidInputError(
                f"user_items has {csr.shape[1]} columns but the model was fitted on {index.n_items} items "
                "(pass users x items, not items x users)"
            )
        if csr.shape[0] != len(userids):
            if userids.size and (userids.min() < 0 or userids.max() >= csr.shape[0]):
                raise InvalidInputError(
                    f"user_items has {csr.shape[0]} rows: pass one row per userid, or the whole matrix"
                )
            csr = csr[userids]
        ids, scores = self._score(csr, N, filter_already_liked_items, items, filter_items)
        return unbatch(ids, scores, scalar)

    def similar_items(
        self,
        itemid,
        N: int = 10,
        recalculate_item: bool = False,
        item_users=None,
        filter_items=None,
        items=None,
    ):
        """The ``N`` items most similar to each of ``itemid`` (never the item itself)."""
        index = self._index
        if (
            index is not None
            and filter_items is None
            and items is None
            and (type(itemid) is int or isinstance(itemid, np.integer))
            and 0 <= itemid < index.n_items
            and type(N) is int
            and 0 <= N <= _FAST_N
        ):
            # one item's neighbours are what a bag of that item alone scores, the item itself owned
            with core_errors():
                return index.recommend_one(np.array([itemid], np.int32), _ONE, N, True, None, None)
        index = self._fitted()
        N = check_count(N, "N")
        itemids, scalar = as_index_array(itemid, "itemid", index.n_items)
        check_result_size(itemids.size, N)
        allowed = item_mask(items, index.n_items, "items")
        denied = item_mask(filter_items, index.n_items, "filter_items")
        with core_errors():
            ids, scores = index.similar_items(itemids, N, allowed, denied, self.num_threads)
        return unbatch(ids, scores, scalar)

    def recommend_bag(self, items, weights=None, N: int = 10, *, filter_owned: bool = True, allowed=None, denied=None):
        """Top-``N`` for an ad-hoc bag that is not stored anywhere: item indices and weights."""
        index = self._fitted()
        item_ids, _ = as_index_array(items, "items", index.n_items)
        w = np.ones(item_ids.size) if weights is None else as_float_array(weights, "weights").reshape(-1)
        if w.shape != item_ids.shape:
            raise InvalidInputError("weights must have one entry per item")
        if w.size and not (np.isfinite(w).all() and (w >= 0).all()):
            raise InvalidInputError("bag weights must be finite and >= 0")
        row = sp.csr_matrix((w, item_ids, [0, item_ids.size]), shape=(1, index.n_items))
        ids, scores = self._score(
            as_user_items(row, "bag", allow_zero=True), check_count(N, "N"), filter_owned, allowed, denied
        )
        return unbatch(ids, scores, True)

    # -- persistence ---------------------------------------------------------

    def save(self, path) -> None:
        """Write the model to ``path`` (``.npz``) atomically: a crash leaves the old file."""
        indptr, indices, data = self._fitted().matrix()
        save_npz(
            path,
            "itemknn",
            _FORMAT_VERSION,
            similarity=np.array(self.similarity_kind),
            k=np.int64(self.k),
            K1=np.float64(self.K1),
            B=np.float64(self.B),
            alpha=np.float64(self.alpha),
            beta=np.float64(self.beta),
            indptr=indptr,
            indices=indices,
            data=data,
            item_counts=self._item_counts,
        )

    @classmethod
    def load(cls, path, num_threads: int = 0) -> ItemKNN:
        """Read a model written by :meth:`save`."""
        path = npz_path(path)
        with open_npz(path, "itemknn", _FORMAT_VERSION, "item-kNN") as f:
            # the subclasses (CosineRecommender, ...) have their own __init__
            # signatures: build through ItemKNN's so any of them loads
            model = cls.__new__(cls)
            ItemKNN.__init__(
                model,
                k=int(f["k"]),
                similarity=str(f["similarity"]),
                K1=float(f["K1"]),
                B=float(f["B"]),
                alpha=float(f["alpha"]) if "alpha" in f else 1.0,
                beta=float(f["beta"]) if "beta" in f else 0.6,
                num_threads=num_threads,
            )
            arrays = {name: f[name] for name in ("indptr", "indices", "data", "item_counts")}
        n = arrays["indptr"].size - 1
        if arrays["item_counts"].shape != (n,):
            raise ModelFileError(f"{path} is corrupt: item counts do not match the matrix")
        try:
            index = _neighbour_index(arrays["indptr"], arrays["indices"], arrays["data"], arrays["item_counts"])
        except InvalidInputError as exc:
            raise ModelFileError(f"{path} is corrupt: {exc}") from exc
        model._index = index
        model._item_counts = arrays["item_counts"].astype(np.int32)
        return model

    # Pickling (Ray ships models to its workers this way) carries the
    # neighbour arrays; the core index is rebuilt, and checked, on arrival.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self._index is not None:
            state["_index"] = self._index.matrix()
        return state

    def __setstate__(self, state: dict) -> None:
        if state["_index"] is not None:
            state["_index"] = _neighbour_index(*state["_index"], state["_item_counts"])
        self.__dict__.update(state)

    # -- internals -----------------------------------------------------------

    def _fitted(self) -> _core.ItemNeighbours:
        if self._index is None:
            raise NotFittedError("this model is not fitted yet: call fit(user_items) first")
        return self._index

    def recommend_rows(self, rows: sp.csr_matrix, N: int, filter_owned: bool = True, allowed=None, denied=None):
        """Top-``N`` for each row of bags (see :class:`Recommender`)."""
        return self._score(rows, N, filter_owned, allowed, denied)

    def _score(self, csr: sp.csr_matrix, N: int, filter_owned: bool, allowed, denied):
        index = self._fitted()
        N = check_count(N, "N")
        check_result_size(csr.shape[0], N)
        indptr, indices, data = csr_arrays(csr)
        allowed_mask = item_mask(allowed, index.n_items, "items")
        denied_mask = item_mask(denied, index.n_items, "filter_items")
        with core_errors():
            return index.recommend(
                indptr, indices, data, csr.shape[1], N, bool(filter_owned), allowed_mask, denied_mask, self.num_threads
            )


class CosineRecommender(ItemKNN):
    """Drop-in for ``implicit.nearest_neighbours.CosineRecommender``."""

    def __init__(self, K: int = 20, num_threads: int = 0):
        super().__init__(k=K, similarity="cosine", num_threads=num_threads)


class BM25Recommender(ItemKNN):
    """Drop-in for ``implicit.nearest_neighbours.BM25Recommender``."""

    def __init__(self, K: int = 20, K1: float = 1.2, B: float = 0.75, num_threads: int = 0):
        super().__init__(k=K, similarity="bm25", K1=K1, B=B, num_threads=num_threads)


class TFIDFRecommender(ItemKNN):
    """Drop-in for ``implicit.nearest_neighbours.TFIDFRecommender``."""

    def __init__(self, K: int = 20, num_threads: int = 0):
        super().__init__(k=K, similarity="tfidf", num_threads=num_threads)


class RP3Beta(ItemKNN):
    """RP3beta (Paudel et al.): a popularity-penalised item -> user -> item random walk.

    One of the strongest simple baselines in recent reproducibility studies;
    served through the same neighbour index as item-kNN.
    """

    def __init__(self, k: int = 100, alpha: float = 1.0, beta: float = 0.6, num_threads: int = 0):
        super().__init__(k=k, similarity="rp3beta", alpha=alpha, beta=beta, num_threads=num_threads)


def _neighbour_index(indptr, indices, data, counts: np.ndarray) -> _core.ItemNeighbours:
    """A checked core index over neighbour CSR arrays built elsewhere (a file, blocks, a pickle)."""
    with core_errors():
        return _core.ItemNeighbours(
            np.ascontiguousarray(indptr, np.int64),
            np.ascontiguousarray(indices, np.int32),
            np.ascontiguousarray(data, np.float32),
            *popularity_order(counts),
        )
