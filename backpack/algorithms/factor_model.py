"""What every latent-factor model shares: scoring, similarity and persistence.

A factor model scores item ``i`` for user ``u`` as ``user_factors[u] .
item_factors[i]``. Subclasses (ALS, BPR) say how the factors are learnt and
how a live bag becomes a user vector (:meth:`FactorModel.user_vectors`); this
class turns vectors into top-N lists through the core's dense top-k, which
skips owned and filtered items inside the scan, so a result holds exactly
``N`` items whenever ``N`` are eligible.
"""

from __future__ import annotations

import ast
from abc import abstractmethod

import numpy as np
import scipy.sparse as sp

from backpack.algorithms._shared import as_ids, unbatch
from backpack.algorithms.bag_scoring import fit_columns, user_rows
from backpack.algorithms.base import Recommender
from backpack.core import _core
from backpack.core.arrays import (
    as_float_array,
    as_index_array,
    as_user_items,
    check_count,
    check_result_size,
    core_errors,
    item_mask,
)
from backpack.core.files import npz_path, open_npz, save_npz
from backpack.errors import InvalidInputError, ModelFileError, NotFittedError

_FORMAT_VERSION = 1


class FactorModel(Recommender):
    """Base of models that keep ``user_factors`` (users x f) and ``item_factors`` (items x f)."""

    #: saved with the model, checked on load
    kind = "factors"
    #: constructor parameters saved with the model
    param_names: tuple[str, ...] = ()

    def __init__(self, num_threads: int = 0):
        self.num_threads = check_count(num_threads, "num_threads")
        self.user_factors: np.ndarray | None = None
        self.item_factors: np.ndarray | None = None
        self._item_norms: np.ndarray | None = None

    # -- what subclasses provide ---------------------------------------------

    @abstractmethod
    def user_vectors(self, rows: sp.csr_matrix) -> np.ndarray:
        """User vectors computed from bags (one per row), without storing them."""

    # -- the Recommender interface -------------------------------------------

    @property
    def n_items(self) -> int:
        return self._fitted_items().shape[0]

    @property
    def n_users(self) -> int:
        """Users the model holds factors for."""
        self._fitted_items()
        return self.user_factors.shape[0]

    def is_fill(self, scores: np.ndarray) -> np.ndarray:
        """Never: a factor model scores every item, and scores may be negative."""
        return np.zeros(np.shape(scores), dtype=bool)

    def recommend_rows(self, rows: sp.csr_matrix, N: int, filter_owned: bool = True, allowed=None, denied=None):
        """Top-``N`` for live bags: user vectors are recomputed from the rows (real time)."""
        rows = self._rows(rows)
        return self._top(self.user_vectors(rows), N, rows if filter_owned else None, allowed, denied)

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
        """implicit-style: top-``N`` for users from their stored factors.

        ``user_items`` holds one row per entry of ``userid`` or the whole
        users x items matrix; its rows are the owned items to filter, and
        with ``recalculate_user`` the bags the vectors are recomputed from.
        """
        csr = user_rows(userid, user_items, self.n_items)
        userids, scalar = as_ids(userid, "userid")
        if recalculate_user:
            vectors = self.user_vectors(csr)
        else:
            if userids.size and (userids.min() < 0 or userids.max() >= self.user_factors.shape[0]):
                raise InvalidInputError(
                    f"userid outside [0, {self.user_factors.shape[0]}): unknown users need recalculate_user=True"
                )
            vectors = self.user_factors[userids]
        ids, scores = self._top(vectors, N, csr if filter_already_liked_items else None, items, filter_items)
        return unbatch(ids, scores, scalar)

    def recommend_bag(self, items, weights=None, N: int = 10, *, filter_owned: bool = True, allowed=None, denied=None):
        """Top-``N`` for an ad-hoc bag of item indices (and weights) stored nowhere."""
        n = self.n_items
        item_ids, _ = as_index_array(items, "items", n)
        w = np.ones(item_ids.size) if weights is None else as_float_array(weights, "weights").reshape(-1)
        if w.shape != item_ids.shape:
            raise InvalidInputError("weights must have one entry per item")
        row = sp.csr_matrix((w, item_ids, [0, item_ids.size]), shape=(1, n))
        row = self._rows(as_user_items(row, "bag"))
        ids, scores = self._top(self.user_vectors(row), N, row if filter_owned else None, allowed, denied)
        return unbatch(ids, scores, True)

    def similar_items(
        self, itemid, N: int = 10, recalculate_item: bool = False, item_users=None, filter_items=None, items=None
    ):
        """The ``N`` items whose factors are closest (cosine) to each of ``itemid``, never itself."""
        matrix = self._fitted_items()
        return self._similar(matrix, itemid, "itemid", N, filter_items, items)

    def similar_users(self, userid, N: int = 10, filter_users=None, users=None):
        """The ``N`` users whose factors are closest (cosine) to each of ``userid``, never itself."""
        self._fitted_items()
        return self._similar(self.user_factors, userid, "userid", N, filter_users, users)

    # -- persistence ---------------------------------------------------------

    def save(self, path) -> None:
        """Write the model to ``path`` (``.npz``) atomically: a crash leaves the old file."""
        self._fitted_items()
        values = [repr(getattr(self, name)) for name in self.param_names]
        save_npz(
            path,
            self.kind,
            _FORMAT_VERSION,
            param_names=np.array(list(self.param_names), dtype=str),
            param_values=np.array(values, dtype=str),
            user_factors=self.user_factors,
            item_factors=self.item_factors,
            **self._extra_arrays(),
        )

    @classmethod
    def load(cls, path, num_threads: int = 0):
        """Read a model written by :meth:`save`."""
        with open_npz(path, cls.kind, _FORMAT_VERSION, cls.kind.upper()) as f:
            params = {str(n): ast.literal_eval(str(v)) for n, v in zip(f["param_names"], f["param_values"])}
            users, items = f["user_factors"], f["item_factors"]
            model = cls(**params, num_threads=num_threads)
            model._load_extra(f, path)
        if (
            users.ndim != 2
            or items.ndim != 2
            or users.shape[1] != items.shape[1]
            or not (np.isfinite(users).all() and np.isfinite(items).all())
        ):
            raise ModelFileError(f"{npz_path(path)} is corrupt: factor matrices do not match")
        model.user_factors = np.ascontiguousarray(users, dtype=np.float32)
        model.item_factors = np.ascontiguousarray(items, dtype=np.float32)
        return model

    def _extra_arrays(self) -> dict:
        """Arrays a subclass saves beside the factors (read back by :meth:`_load_extra`)."""
        return {}

    def _load_extra(self, f, path) -> None:
        """Read what :meth:`_extra_arrays` saved from the open model file ``f``."""

    # -- internals -----------------------------------------------------------

    def _fitted_items(self) -> np.ndarray:
        if self.item_factors is None:
            raise NotFittedError("this model is not fitted yet: call fit(user_items) first")
        return self.item_factors

    def _rows(self, rows) -> sp.csr_matrix:
        return fit_columns(as_user_items(rows, allow_zero=True), self.n_items)

    def _top(self, vectors: np.ndarray, N, exclude: sp.csr_matrix | None, allowed, denied):
        N = check_count(N, "N")
        items = self._fitted_items()
        check_result_size(vectors.shape[0], N)
        eligible = eligible_mask(items.shape[0], allowed, denied)
        extra = {}
        if exclude is not None:
            extra = {
                "exclude_indptr": np.ascontiguousarray(exclude.indptr, np.int64),
                "exclude_indices": np.ascontiguousarray(exclude.indices, np.int32),
            }
        with core_errors():
            return _core.dense_topk(
                np.ascontiguousarray(vectors, np.float32), items, N, "ip", self.num_threads, eligible=eligible, **extra
            )

    def _similar(self, matrix: np.ndarray, ids, name: str, N, denied, allowed):
        N = check_count(N, "N")
        n = matrix.shape[0]
        idx, scalar = as_index_array(ids, name, n)
        check_result_size(idx.size, N)
        own = {"exclude_indptr": np.arange(idx.size + 1, dtype=np.int64), "exclude_indices": idx}
        with core_errors():
            found, scores = _core.dense_topk(
                matrix[idx], matrix, N, "cosine", self.num_threads, eligible=eligible_mask(n, allowed, denied), **own
            )
        return unbatch(found, scores, scalar)


def eligible_mask(n: int, allowed, denied) -> np.ndarray | None:
    """One uint8 mask of the items a result may hold (None: all)."""
    allowed_mask = item_mask(allowed, n, "items")
    denied_mask = item_mask(denied, n, "filter_items")
    if denied_mask is None:
        return allowed_mask
    keep = 1 - denied_mask
    return keep if allowed_mask is None else (keep & allowed_mask)


def random_factors(rows: int, factors: int, seed, scale: float) -> np.ndarray:
    """Small random float32 starting factors in [0, scale)."""
    rng = np.random.default_rng(seed)
    return rng.random((rows, factors), dtype=np.float32) * np.float32(scale)
