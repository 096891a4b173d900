"""A factor model from vectors you already have: your own item embeddings.

``EmbeddingModel(item_vectors)`` serves any embedding of the items (from a
two-tower model, a text or image encoder, an export from elsewhere): a bag's
user vector is the weighted mean of its items' vectors and items are ranked
by inner product with it, through the same dense top-k core, ONNX export and
persistence as ALS and BPR. Give ``user_vectors`` too if you have them for
stored users (``recommend(..., recalculate_user=False)`` uses them).

As an engine algorithm (``engine.fit("embeddings", item_vectors=V)``) row
``i`` of ``V`` belongs to the engine's item index ``i``; ``fit`` checks the
shapes and learns nothing.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.factor_model import FactorModel
from backpack.core.arrays import as_user_items
from backpack.errors import InvalidInputError


class EmbeddingModel(FactorModel):
    """Scores items for a bag by inner product with the bag's weighted mean item vector.

    Parameters
    ----------
    item_vectors : items x dim float matrix (finite values).
    user_vectors : optional users x dim matrix for stored users.
    num_threads : threads for batch calls; 0 means all cores.
    """

    kind = "embeddings"
    param_names = ()

    def __init__(self, item_vectors=None, user_vectors=None, num_threads: int = 0):
        super().__init__(num_threads)
        if item_vectors is not None:
            self.item_factors = _matrix(item_vectors, "item_vectors")
            dim = self.item_factors.shape[1]
            self.user_factors = (
                np.zeros((0, dim), np.float32) if user_vectors is None else _matrix(user_vectors, "user_vectors", dim)
            )

    def fit(self, user_items, show_progress: bool = True) -> EmbeddingModel:
        """Check that there is a vector for every item of ``user_items``; nothing is learnt."""
        csr = as_user_items(user_items)
        items = self._fitted_items()
        if csr.shape[1] > items.shape[0]:
            raise InvalidInputError(
                f"user_items has {csr.shape[1]} items but item_vectors only "
                f"{items.shape[0]} rows: give a vector for every item"
            )
        return self

    def user_vectors(self, rows: sp.csr_matrix) -> np.ndarray:
        """The weighted mean of each bag's item vectors (zero for an empty bag)."""
        items = self._fitted_items()
        totals = np.asarray(rows.sum(axis=1)).reshape(-1, 1)
        sums = rows.astype(np.float32) @ items
        return (sums / np.maximum(totals, 1e-30)).astype(np.float32)


def _matrix(value, name: str, dim: int | None = None) -> np.ndarray:
    try:
        m = np.ascontiguousarray(value, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be a numeric matrix: {exc}") from None
    if m.ndim != 2 or m.shape[1] == 0:
        raise InvalidInputError(f"{name} must be a 2-d matrix with at least one column, got shape {m.shape}")
    if dim is not None and m.shape[1] != dim:
        raise InvalidInputError(f"{name} has {m.shape[1]} columns but item_vectors has {dim}")
    if not np.isfinite(m).all():
        raise InvalidInputError(f"{name} holds NaN or infinite values")
    return m
