"""Top-N from dense score rows, for models that score every item (EASE).

Owned items of each row, and items outside ``eligible``, never come back; a
row is padded with -1 / -inf only when fewer than N items are eligible.
Order: higher score first, lower item index on ties among those kept.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp


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
