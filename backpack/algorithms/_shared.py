"""Helpers every built-in algorithm shares: the popularity fill, id checks, top-N from dense rows.

Top-N from dense score rows is for models that score every item (EASE).

Owned items of each row, and items outside ``eligible``, never come back; a
row is padded with -1 / -inf only when fewer than N items are eligible.
Order: higher score first, lower item index on ties among those kept.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from backpack.errors import InvalidInputError


def top_n(scores: np.ndarray, n: int, owned: sp.csr_matrix | None, eligible: np.ndarray | None):
    """``(ids, scores)`` shaped (rows, n) from a (rows, items) float32 array, changed in place."""
    rows, items = scores.shape
    ids_out = np.full((rows, n), -1, dtype=np.int32)
    scores_out = np.full((rows, n), -np.inf, dtype=np.float32)
    if n == 0 or rows == 0 or items == 0:
        return ids_out, scores_out
    if eligible is not None:
        scores[:, eligible == 0] = -np.inf
    if owned is not None and owned.nnz:
        r = np.repeat(np.arange(rows), np.diff(owned.indptr))
        scores[r, owned.indices] = -np.inf
    take = min(n, items)
    if take < items:
        part = np.argpartition(-scores, take - 1, axis=1)[:, :take]
    else:
        part = np.broadcast_to(np.arange(items), (rows, items)).copy()
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)
    part = np.take_along_axis(part, order, axis=1)
    picked = np.take_along_axis(picked, order, axis=1)
    keep = np.isfinite(picked)
    ids_out[:, :take] = np.where(keep, part, -1)
    scores_out[:, :take] = np.where(keep, picked, -np.inf)
    return ids_out, scores_out


def fallback_scores(counts: np.ndarray) -> np.ndarray:
    """The score a popularity-filled item gets: negative, higher for more popular items."""
    return (-1.0 / (1.0 + counts.astype(np.float64))).astype(np.float32)


def item_counts(user_items: sp.csr_matrix) -> np.ndarray:
    """Number of users holding each item of a canonical users x items matrix (int32)."""
    return np.bincount(user_items.indices, minlength=user_items.shape[1]).astype(np.int32)


def popularity_order(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Items by popularity (most held first) with their fill scores: the order a short list is filled in."""
    order = np.argsort(-counts.astype(np.int64), kind="stable").astype(np.int32)
    return order, fallback_scores(counts[order])


def as_ids(ids, name: str) -> tuple[np.ndarray, bool]:
    """``ids`` as an int64 array and whether a scalar was given (integers only: a float id is a mistake)."""
    scalar = np.isscalar(ids) or (isinstance(ids, np.ndarray) and ids.ndim == 0)
    arr = np.asarray(ids).reshape(-1)
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise InvalidInputError(f"{name} must be integers, got dtype {arr.dtype}")
    return arr.astype(np.int64), scalar


def unbatch(ids: np.ndarray, scores: np.ndarray, scalar: bool):
    """A batch of one back to plain rows when the caller passed a scalar, padding (-1) dropped."""
    if not scalar:
        return ids, scores
    keep = ids[0] >= 0
    return ids[0][keep], scores[0][keep]
