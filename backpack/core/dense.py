"""Dense top-k over an embedding matrix (inner product or cosine)."""

from __future__ import annotations

import numpy as np

from backpack.core import _core
from backpack.core.arrays import check_count, check_result_size, core_errors
from backpack.errors import InvalidInputError

METRICS = ("ip", "cosine")


class DenseIndex:
    """An embedding matrix checked once, searched many times.

    ``matrix`` is (n, d); it is kept as C-contiguous float32 (no copy when it
    already is). Searching validates only the queries, so a single query costs
    the scan and not a re-check of the whole matrix.
    """

    def __init__(self, matrix, *, metric: str = "ip", num_threads: int = 0):
        if metric not in METRICS:
            raise InvalidInputError(f"metric must be one of {METRICS}, got {metric!r}")
        self.matrix = _as_matrix(np.asarray(matrix), "matrix")
        self.metric = metric
        self.num_threads = check_count(num_threads, "num_threads")

    def search(self, queries, k: int = 10):
        """The best ``k`` rows for each query: ``(ids, scores)`` shaped (m, k), or (k,) for one query.

        Best first, ties by lower row; past ``n`` rows the result is padded with
        -1 / -inf. Cosine treats a zero vector as scoring 0 against everything.
        """
        k = check_count(k, "k")
        q = np.asarray(queries)
        single = q.ndim == 1
        q = _as_matrix(q.reshape(1, -1) if single else q, "queries")
        check_result_size(q.shape[0], k)
        if q.shape[1] != self.matrix.shape[1]:
            raise InvalidInputError(f"queries have {q.shape[1]} dimensions but the matrix has {self.matrix.shape[1]}")
        with core_errors():
            ids, scores = _core.dense_topk(q, self.matrix, k, self.metric, self.num_threads)
        return (ids[0], scores[0]) if single else (ids, scores)


def dense_topk(queries, matrix, k: int = 10, *, metric: str = "ip", num_threads: int = 0):
    """One-off search: the best ``k`` rows of ``matrix`` for each query.

    Checks the whole matrix on every call; build a :class:`DenseIndex` to
    search the same matrix repeatedly.
    """
    return DenseIndex(matrix, metric=metric, num_threads=num_threads).search(queries, k)


def _as_matrix(a: np.ndarray, name: str) -> np.ndarray:
    if a.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-dimensional, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise InvalidInputError(f"{name} must be real numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise InvalidInputError(f"{name} holds NaN or infinite values")
    return a
