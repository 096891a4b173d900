"""The interface every recommendation algorithm implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np
import scipy.sparse as sp


class Recommender(ABC):
    """Base class of algorithms (built-in or from plugins).

    Matches implicit's recommender API so models are interchangeable, plus
    :meth:`recommend_rows`, the engine-facing call. Every implementation keeps
    the two guarantees: with owned-item filtering an item of the bag never
    comes back, and a result holds exactly ``N`` items whenever ``N`` are
    eligible (:meth:`is_fill` tells the popularity fill apart).
    """

    @abstractmethod
    def fit(self, user_items: sp.csr_matrix, show_progress: bool = True) -> Recommender:
        """Learn from a users x items matrix of weights; returns ``self``."""

    @property
    @abstractmethod
    def n_items(self) -> int:
        """Number of items the model was fitted on."""

    @abstractmethod
    def recommend_rows(
        self, rows: sp.csr_matrix, N: int, filter_owned: bool = True, allowed=None, denied=None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-``N`` for each row of bags (columns beyond ``n_items`` are ignored).

        ``allowed`` / ``denied`` are item indices. Returns ``(ids, scores)``
        shaped (rows, N), padded with -1 / -inf.
        """

    def is_fill(self, scores: np.ndarray) -> np.ndarray:
        """Which of ``scores`` belong to the popularity fill rather than the model's own scoring.

        Neighbour models score only what the bag reaches and mark the fill
        with negative scores (the default here). A model that scores every
        item (factor models) never fills and returns all False.
        """
        return np.asarray(scores) < 0

    @abstractmethod
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
        """implicit-style: top-``N`` for users from their rows of ``user_items``."""

    @abstractmethod
    def similar_items(
        self, itemid, N: int = 10, recalculate_item: bool = False, item_users=None, filter_items=None, items=None
    ):
        """implicit-style: the ``N`` items most like each of ``itemid`` (never itself)."""

    @abstractmethod
    def save(self, path) -> None:
        """Write the fitted model to ``path`` atomically."""

    @classmethod
    @abstractmethod
    def load(cls, path) -> Recommender:
        """Read a model written by :meth:`save`."""
