"""User-based k-nearest neighbours, computed from the live bag at request time.

For a bag, the core finds the ``k`` fitted users whose bags are most alike
(cosine), then scores every item they hold by the sum of their similarities
times their weights. Nothing about the asking user is precomputed, so a new
interaction counts immediately and a user who was not in the fit is served
like anyone else. Items no neighbour holds are filled by popularity with
negative scores, as in item-kNN, so a result holds exactly ``N`` items
whenever ``N`` are eligible.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from backpack.algorithms._shared import as_ids, popularity_order, unbatch
from backpack.algorithms.bag_scoring import BagScoringModel
from backpack.core import _core
from backpack.core.arrays import (
    as_index_array,
    as_user_items,
    check_count,
    check_result_size,
    core_errors,
    csr_arrays,
    item_mask,
)
from backpack.core.files import npz_path, open_npz, save_npz
from backpack.errors import InvalidInputError, ModelFileError, NotFittedError

_FORMAT_VERSION = 1


class UserKNN(BagScoringModel):
    """User-user cosine neighbours.

    Parameters
    ----------
    k : neighbours consulted per request.
    num_threads : threads for batch calls; 0 means all cores.
    """

    def __init__(self, k: int = 50, num_threads: int = 0):
        self.k = check_count(k, "k")
        if self.k < 1:
            raise InvalidInputError("k must be >= 1")
        self.num_threads = check_count(num_threads, "num_threads")
        self._index: _core.UserNeighbours | None = None

    @property
    def n_items(self) -> int:
        return self._fitted().n_items

    @property
    def n_users(self) -> int:
        """Users whose bags were fitted."""
        return self._fitted().n_users

    def fit(self, user_items, show_progress: bool = True) -> UserKNN:
        """Keep the users' bags (and their item-side transpose) for request-time neighbours."""
        csr = as_user_items(user_items)
        counts = np.bincount(csr.indices, minlength=csr.shape[1]).astype(np.int32)
        with core_errors():
            self._index = _core.UserNeighbours(*csr_arrays(csr), csr.shape[1], self.k, *popularity_order(counts))
        return self

    def similar_users(self, userid, N: int = 10, user_items=None):
        """The ``N`` fitted users nearest (cosine) to each of ``userid``'s bag.

        Bags come from ``user_items`` (one row per userid) or, by default, from
        the fit. Users with the same items in the same proportions (the user
        itself among them) are skipped: they would add nothing to a list.
        """
        index = self._fitted()
        N = check_count(N, "N")
        if user_items is None:
            ids, scalar = as_index_array(userid, "userid", index.n_users)
            indptr, indices, data = index.matrix()
            fitted = sp.csr_matrix((data, indices, indptr), shape=(index.n_users, index.n_items))
            csr = fitted[ids]
        else:
            ids, scalar = as_ids(userid, "userid")
            csr = as_user_items(user_items, allow_zero=True)
            if csr.shape[0] != ids.size:
                raise InvalidInputError("user_items must hold one row per userid")
        check_result_size(csr.shape[0], N)
        with core_errors():
            found, scores = index.similar_users(*csr_arrays(csr), csr.shape[1], N, self.num_threads)
        return unbatch(found, scores, scalar)

    def save(self, path) -> None:
        """Write the model (the fitted bags) to ``path`` (``.npz``) atomically."""
        indptr, indices, data = self._fitted().matrix()
        save_npz(
            path,
            "userknn",
            _FORMAT_VERSION,
            k=np.int64(self.k),
            n_items=np.int64(self.n_items),
            indptr=indptr,
            indices=indices,
            data=data,
        )

    @classmethod
    def load(cls, path, num_threads: int = 0) -> UserKNN:
        """Read a model written by :meth:`save`."""
        with open_npz(path, "userknn", _FORMAT_VERSION, "user-kNN") as f:
            model = cls(int(f["k"]), num_threads)
            n_items = int(f["n_items"])
            indptr, indices, data = (f[name] for name in ("indptr", "indices", "data"))
        try:
            model.fit(sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, n_items)), show_progress=False)
        except (InvalidInputError, ValueError) as exc:
            raise ModelFileError(f"{npz_path(path)} is corrupt: {exc}") from exc
        return model

    # Pickling (Ray ships models to its workers this way) carries the fitted
    # bags; the core index is rebuilt from them on arrival, as load() does.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if self._index is not None:
            state["_index"] = (*self._index.matrix(), self._index.n_items)
        return state

    def __setstate__(self, state: dict) -> None:
        bags = state.pop("_index")
        self.__dict__.update(state, _index=None)
        if bags is not None:
            indptr, indices, data, n_items = bags
            self.fit(sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, n_items)), show_progress=False)

    def _fitted(self) -> _core.UserNeighbours:
        if self._index is None:
            raise NotFittedError("this model is not fitted yet: call fit(user_items) first")
        return self._index

    def _score(self, csr: sp.csr_matrix, N, filter_owned: bool, allowed, denied):
        index = self._fitted()
        N = check_count(N, "N")
        check_result_size(csr.shape[0], N)
        with core_errors():
            return index.recommend(
                *csr_arrays(csr),
                csr.shape[1],
                N,
                bool(filter_owned),
                item_mask(allowed, index.n_items, "items"),
                item_mask(denied, index.n_items, "filter_items"),
                self.num_threads,
            )
