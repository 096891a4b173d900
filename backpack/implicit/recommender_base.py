"""implicit's ``implicit.recommender_base``: the interface every model here implements."""

from __future__ import annotations

import warnings
from abc import ABCMeta, abstractmethod

import numpy as np

from backpack.errors import ModelFitError

__all__ = ["ModelFitError", "RecommenderBase"]


class RecommenderBase(metaclass=ABCMeta):
    """implicit's common model interface (``fit``, ``recommend``, ``similar_items``, ``similar_users``, ``save``)."""

    @abstractmethod
    def fit(self, user_items, show_progress: bool = True, callback=None):
        """Learn from a users x items CSR matrix of confidences."""

    @abstractmethod
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
        """Top-``N`` ``(ids, scores)`` for a user id (1-d arrays) or an array of them (2-d)."""

    @abstractmethod
    def similar_users(self, userid, N=10, filter_users=None, users=None):
        """The ``N`` users most like each of ``userid`` (the user itself first)."""

    @abstractmethod
    def similar_items(self, itemid, N=10, recalculate_item=False, item_users=None, filter_items=None, items=None):
        """The ``N`` items most like each of ``itemid`` (the item itself first)."""

    @abstractmethod
    def save(self, fileobj_or_path):
        """Write the model with ``numpy.savez`` to a path or an open binary file."""

    def rank_items(self, userid, user_items, selected_items, recalculate_user=False):
        """Deprecated in implicit: ``recommend(..., items=selected_items, filter_already_liked_items=False)``."""
        warnings.warn(
            "rank_items is deprecated. Use recommend with the 'items' parameter instead",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.recommend(
            userid,
            user_items,
            recalculate_user=recalculate_user,
            items=selected_items,
            filter_already_liked_items=False,
        )

    @staticmethod
    def _check_factors(user_factors, item_factors) -> None:
        if np.isnan(user_factors).any() or np.isnan(item_factors).any():
            raise ModelFitError("NaN encountered in factors")


def npz_source(fileobj_or_path):
    """What ``numpy.load`` should open: a path gains ``.npz`` as ``numpy.savez`` added it; a file object is kept."""
    if isinstance(fileobj_or_path, str) and not fileobj_or_path.endswith(".npz"):
        return fileobj_or_path + ".npz"
    return fileobj_or_path
