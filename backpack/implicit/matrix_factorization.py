"""What implicit's factor models share: ``recommend``, ``similar_items`` / ``similar_users``, ``load``.

Scores are inner products (cosine for the similar-* calls) over every item; items excluded by
``filter_already_liked_items`` or ``filter_items`` keep their place in the ranking with the score
-FLT_MAX, so a list asks for ``N`` and holds ``N`` (zeros beyond the catalogue), as implicit's
``topk`` does. ``items`` ranks only those items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from backpack.implicit.recommender_base import RecommenderBase, npz_source

__all__ = ["MatrixFactorizationBase", "topk"]

_FILTERED = -np.finfo(np.float32).max


def topk(factors, queries, N, filter_query_items=None, filter_items=None, item_norms=None):
    """Best ``N`` rows of ``factors`` for each query vector, implicit's ``implicit.cpu.topk.topk``.

    ``filter_query_items`` (CSR, a row per query) and ``filter_items`` get the score -FLT_MAX;
    ``item_norms`` divides the scores. Returns int32 ids and scores shaped (queries, N).
    """
    queries = np.atleast_2d(queries)
    scores = queries @ factors.T
    if item_norms is not None:
        scores = scores / item_norms
    rows, n = scores.shape
    if filter_query_items is not None:
        fq = filter_query_items
        r = np.repeat(np.arange(fq.shape[0]), np.diff(fq.indptr))
        inside = (fq.indices < n) & (r < rows)
        scores[r[inside], fq.indices[inside]] = _FILTERED
    if filter_items is not None:
        fi = np.asarray(filter_items, dtype=np.int64).reshape(-1)
        scores[:, fi[(fi >= 0) & (fi < n)]] = _FILTERED
    take = min(int(N), n)
    ids = np.zeros((rows, int(N)), dtype=np.int32)
    out = np.zeros((rows, int(N)), dtype=scores.dtype)
    if take > 0:
        part = np.argpartition(-scores, take - 1, axis=1)[:, :take] if take < n else np.argsort(-scores, axis=1)
        picked = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-picked, axis=1, kind="stable")
        ids[:, :take] = np.take_along_axis(part, order, axis=1)
        out[:, :take] = np.take_along_axis(picked, order, axis=1)
    return ids, out


class MatrixFactorizationBase(RecommenderBase):
    """implicit's ``MatrixFactorizationBase``: ``user_factors`` and ``item_factors`` and the calls on them."""

    def __init__(self, num_threads=0):
        self.item_factors = None
        self.user_factors = None
        self._user_norms, self._item_norms = None, None
        self.num_threads = num_threads

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
        """Top-``N`` items by inner product; a user id gives 1-d arrays, an array of ids 2-d ones."""
        if filter_already_liked_items or recalculate_user:
            if not isinstance(user_items, sp.csr_matrix):
                raise ValueError("user_items needs to be a CSR sparse matrix")
            count = 1 if np.isscalar(userid) else len(userid)
            if user_items.shape[0] != count:
                raise ValueError("user_items must contain 1 row for every user in userids")
        user = self.recalculate_user(userid, user_items) if recalculate_user else self.user_factors[userid]
        item_factors = self.item_factors
        if items is not None:
            if filter_items is not None and len(filter_items):
                raise ValueError("Can't set both items and filter_items in recommend call")
            items = np.sort(np.asarray(items))
            if items.size and (items.max() >= item_factors.shape[0] or items.min() < 0):
                raise IndexError("Some itemids in the items parameter in are not in the model")
            N = min(N, len(items))
            item_factors = item_factors[items]
        filter_query_items = None
        if filter_already_liked_items:
            filter_query_items = user_items
            if items is not None:
                filter_query_items = _remap_to_items(items, user_items)
        ids, scores = topk(item_factors, user, N, filter_query_items, filter_items)
        if np.isscalar(userid):
            ids, scores = ids[0], scores[0]
        if items is not None:
            ids = items[ids]
        return ids, scores

    def recalculate_user(self, userid, user_items):
        raise NotImplementedError("recalculate_user is not supported with this model")

    def recalculate_item(self, itemid, item_users):
        raise NotImplementedError("recalculate_item is not supported with this model")

    def similar_users(self, userid, N=10, filter_users=None, users=None):
        """The ``N`` users with the closest factors (cosine), the user itself first."""
        factors, norms = self.user_factors, self.user_norms
        norm = norms[userid]
        if users is not None:
            if filter_users is not None and len(filter_users):
                raise ValueError("Can't set both users and filter_users in similar_users call")
            users = np.asarray(users)
            if users.max() >= self.user_factors.shape[0] or users.min() < 0:
                raise IndexError("Some userids in the users parameter are not in the model")
            factors, norms = factors[users], norms[users]
        ids, scores = self._similarity(self.user_factors[userid], norm, factors, norms, N, filter_users)
        return (users[ids] if users is not None else ids), scores

    def similar_items(self, itemid, N=10, recalculate_item=False, item_users=None, filter_items=None, items=None):
        """The ``N`` items with the closest factors (cosine), the item itself first.

        With ``recalculate_item`` the query vectors come from ``item_users`` (a row of users per id).
        """
        if recalculate_item:
            factor = self.recalculate_item(itemid, item_users)
            norm = np.linalg.norm(factor, axis=-1)
            norm = np.where(norm == 0, 1e-10, norm)
        else:
            factor = self.item_factors[itemid]
            norm = self.item_norms[itemid]
        factors, norms = self.item_factors, self.item_norms
        if items is not None:
            if filter_items is not None and len(filter_items):
                raise ValueError("Can't set both items and filter_items in similar_items call")
            items = np.asarray(items)
            if items.max() >= self.item_factors.shape[0] or items.min() < 0:
                raise IndexError("Some itemids in the items parameter are not in the model")
            factors, norms = factors[items], norms[items]
        ids, scores = self._similarity(factor, norm, factors, norms, N, filter_items)
        return (items[ids] if items is not None else ids), scores

    def _similarity(self, factor, norm, factors, norms, N, filter_items):
        ids, scores = topk(factors, factor, N, filter_items=filter_items, item_norms=norms)
        if np.ndim(factor) == 1:
            return ids[0], scores[0] / norm
        return ids, scores / np.asarray(norm)[:, None]

    @property
    def user_norms(self):
        """L2 norm of each user vector (0 replaced by 1e-10), cached until the factors change."""
        if self._user_norms is None:
            self._user_norms = np.linalg.norm(self.user_factors, axis=-1)
            self._user_norms[self._user_norms == 0] = 1e-10
        return self._user_norms

    @property
    def item_norms(self):
        """L2 norm of each item vector (0 replaced by 1e-10), cached until the factors change."""
        if self._item_norms is None:
            self._item_norms = np.linalg.norm(self.item_factors, axis=-1)
            self._item_norms[self._item_norms == 0] = 1e-10
        return self._item_norms

    def _check_fit_errors(self) -> None:
        self._check_factors(self.user_factors, self.item_factors)

    @classmethod
    def load(cls, fileobj_or_path):
        """Read a model written by ``save`` (this package's or implicit's) from a path or an open file."""
        with np.load(npz_source(fileobj_or_path), allow_pickle=False) as data:
            ret = cls()
            for key, value in data.items():
                if key == "dtype":
                    value = np.dtype(str(value))
                elif value.shape == ():
                    value = value.item()
                setattr(ret, key, value)
        return ret


def _remap_to_items(items: np.ndarray, query_items: sp.csr_matrix) -> sp.csr_matrix:
    """``query_items`` with columns renumbered to positions in the sorted ``items`` (others dropped)."""
    coo = query_items.tocoo()
    positions = np.clip(np.searchsorted(items, coo.col), 0, len(items) - 1)
    inside = items[positions] == coo.col
    return sp.csr_matrix(
        (coo.data[inside], (coo.row[inside], positions[inside])), shape=(query_items.shape[0], len(items))
    )
