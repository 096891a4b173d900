"""Example Backpack plugin: a most-popular recommender and a ``top-items`` command."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import scipy.sparse as sp

from backpack.data import synthetic
from backpack import InvalidInputError
from backpack import ModelFileError
from backpack import NotFittedError
from backpack import Recommender
from backpack import hookimpl


class MostPopular(Recommender):
    """Recommends the items most users hold (the same list for everyone, minus their own)."""

    def __init__(self) -> None:
        self.popularity: np.ndarray | None = None

    def fit(self, user_items, show_progress: bool = True) -> "MostPopular":
        m = sp.csr_matrix(user_items)
        self.popularity = np.bincount(m.indices, minlength=m.shape[1]).astype(np.float32)
        return self

    @property
    def n_items(self) -> int:
        return self._popularity().size

    def recommend_rows(self, rows, N, filter_owned=True, allowed=None, denied=None):
        popularity = self._popularity()
        rows = sp.csr_matrix(rows)
        ids = np.full((rows.shape[0], N), -1, np.int32)
        scores = np.full((rows.shape[0], N), -np.inf, np.float32)
        eligible = np.ones(popularity.size, bool)
        if allowed is not None:
            eligible[:] = False
            eligible[np.asarray(allowed, int)] = True
        if denied is not None:
            eligible[np.asarray(denied, int)] = False
        order = np.argsort(-popularity, kind="stable")  # most popular first, ties by lower id
        for r in range(rows.shape[0]):
            ok = eligible.copy()
            if filter_owned:
                owned = rows.indices[rows.indptr[r]:rows.indptr[r + 1]]
                ok[owned[owned < popularity.size]] = False
            best = order[ok[order]][:N]
            ids[r, : best.size] = best
            scores[r, : best.size] = popularity[best]
        return ids, scores

    def recommend(self, userid, user_items, N=10, filter_already_liked_items=True, filter_items=None,
                  recalculate_user=False, items=None):
        scalar = np.isscalar(userid)
        rows = sp.csr_matrix(user_items)
        ids, scores = self.recommend_rows(rows, N, filter_already_liked_items, items, filter_items)
        return (ids[0][ids[0] >= 0], scores[0][ids[0] >= 0]) if scalar else (ids, scores)

    def similar_items(self, itemid, N=10, recalculate_item=False, item_users=None, filter_items=None,
                      items=None):
        scalar = np.isscalar(itemid)
        item_ids = np.atleast_1d(np.asarray(itemid, int))
        if item_ids.size and (item_ids.min() < 0 or item_ids.max() >= self.n_items):
            raise InvalidInputError("itemid out of range")
        bags = sp.csr_matrix((np.ones(item_ids.size), item_ids, np.arange(item_ids.size + 1)),
                             shape=(item_ids.size, self.n_items))
        ids, scores = self.recommend_rows(bags, N, True, items, filter_items)
        return (ids[0][ids[0] >= 0], scores[0][ids[0] >= 0]) if scalar else (ids, scores)

    def save(self, path) -> None:
        path = str(path)
        directory = os.path.dirname(os.path.abspath(path))
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, self._popularity())
        os.replace(tmp, path)

    @classmethod
    def load(cls, path) -> "MostPopular":
        model = cls()
        try:
            model.popularity = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ModelFileError(f"{path} is not a most-popular model: {exc}") from exc
        return model

    def _popularity(self) -> np.ndarray:
        if self.popularity is None:
            raise NotFittedError("call fit() first")
        return self.popularity


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)  # argparse turns this into "invalid _positive_int value"
    return value


def _configure_top_items(parser) -> None:
    parser.add_argument("--n", type=_positive_int, default=10, help="how many items to show (at least 1)")
    parser.add_argument("--size", default="tiny", choices=["tiny", "small", "default"])


def _run_top_items(args) -> int:
    catalogue = synthetic.generate_size(args.size)
    model = MostPopular().fit(catalogue.user_items)
    ids, scores = model.recommend_rows(sp.csr_matrix((1, model.n_items)), args.n)
    for i, s in zip(ids[0], scores[0]):
        if i < 0:  # padding: the catalogue has fewer items than asked for
            break
        print(f"{catalogue.item_ids[i]}\t{int(s)} users")
    return 0


@hookimpl
def register_algorithms(register):
    register("most-popular", MostPopular, description="items ranked by how many users hold them")


@hookimpl
def register_commands(register):
    register("top-items", _configure_top_items, _run_top_items,
             help="show the most popular items of a synthetic catalogue")
