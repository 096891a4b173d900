"""The implicit-style calls for models that score bags directly.

A model that can score any bag (user-kNN, EASE) needs only ``_score``; the
per-user, ad-hoc-bag and similar-item calls are all bags: a user's row, a
list of items, or a bag holding one item (whose own item is then "owned"
and never returned).
"""

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import scipy.sparse as sp

from backpack.algorithms._shared import as_ids, unbatch
from backpack.algorithms.base import Recommender
from backpack.core.arrays import as_index_array, as_user_items
from backpack.errors import InvalidInputError


class BagScoringModel(Recommender):
    """Base of models whose every answer is "score these bags"."""

    @abstractmethod
    def _score(self, csr: sp.csr_matrix, N, filter_owned: bool, allowed, denied):
        """Top-``N`` ``(ids, scores)`` for rows over exactly the model's items."""

    def recommend_rows(self, rows: sp.csr_matrix, N: int, filter_owned: bool = True, allowed=None, denied=None):
        """Top-``N`` for each row of live bags (columns past the model's items are ignored)."""
        return self._score(
            fit_columns(as_user_items(rows, allow_zero=True), self.n_items), N, filter_owned, allowed, denied
        )

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
        """implicit-style: top-``N`` for users from their rows of ``user_items`` (one per id, or all)."""
        csr = user_rows(userid, user_items, self.n_items)
        ids, scores = self._score(csr, N, filter_already_liked_items, items, filter_items)
        return unbatch(ids, scores, np.ndim(userid) == 0)

    def recommend_bag(self, items, weights=None, N: int = 10, *, filter_owned: bool = True, allowed=None, denied=None):
        """Top-``N`` for an ad-hoc bag of item indices (and weights)."""
        idx, _ = as_index_array(items, "items", self.n_items)
        w = np.ones(idx.size, dtype=np.float32) if weights is None else np.asarray(weights, np.float32).reshape(-1)
        if w.shape != idx.shape:
            raise InvalidInputError("weights must have one entry per item")
        row = as_user_items(sp.csr_matrix((w, idx, [0, idx.size]), shape=(1, self.n_items)), "bag")
        ids, scores = self._score(row, N, filter_owned, allowed, denied)
        return unbatch(ids, scores, True)

    def similar_items(
        self, itemid, N: int = 10, recalculate_item: bool = False, item_users=None, filter_items=None, items=None
    ):
        """What the model recommends for a bag holding only ``itemid`` (never the item itself)."""
        idx, scalar = as_index_array(itemid, "itemid", self.n_items)
        bags = sp.csr_matrix(
            (np.ones(idx.size, np.float32), idx, np.arange(idx.size + 1)), shape=(idx.size, self.n_items)
        )
        ids, scores = self._score(bags, N, True, items, filter_items)
        return unbatch(ids, scores, scalar)


def fit_columns(csr: sp.csr_matrix, n_items: int) -> sp.csr_matrix:
    """Bags over exactly ``n_items`` columns: later items (new since the fit) dropped, missing ones empty."""
    if csr.shape[1] > n_items:
        return csr[:, :n_items]
    if csr.shape[1] < n_items:
        return sp.csr_matrix((csr.data, csr.indices, csr.indptr), shape=(csr.shape[0], n_items))
    return csr


def user_rows(userid, user_items, n_items: int) -> sp.csr_matrix:
    """implicit's convention: ``user_items`` has one row per id, or is the whole matrix to take them from."""
    userids, _ = as_ids(userid, "userid")
    csr = as_user_items(user_items, allow_zero=True)
    if csr.shape[1] != n_items:
        raise InvalidInputError(
            f"user_items has {csr.shape[1]} columns but the model was fitted on {n_items} items "
            "(pass users x items, not items x users)"
        )
    if csr.shape[0] != userids.size:
        if userids.size and (userids.min() < 0 or userids.max() >= csr.shape[0]):
            raise InvalidInputError(f"user_items has {csr.shape[0]} rows: pass one row per userid, or the whole matrix")
        csr = csr[userids]
    return csr
