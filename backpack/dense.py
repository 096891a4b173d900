"""Dense top-k over an embedding matrix (inner product or cosine)."""

from __future__ import annotations

import numpy as np

from . import _core
from ._arrays import check_count, core_errors
from .errors import InvalidInputError


def dense_topk(queries, matrix, k: int = 10, *, metric: str = "ip", num_threads: int = 0):
    """The best ``k`` rows of ``matrix`` for each query vector.

    ``queries`` is (m, d) or (d,), ``matrix`` is (n, d); both are used as
    float32 (C-contiguous float32 input is not copied). Returns ``(ids,
    scores)`` shaped (m, k) (or (k,) for one query), best first, ties by
    lower row; rows past ``n`` are padded with -1 / -inf. Cosine treats a
    zero vector as scoring 0 against everything.
    """
    k = check_count(k, "k")
    if metric not in ("ip", "cosine"):
        raise InvalidInputError("metric must be 'ip' or 'cosine'")
    q = np.asarray(queries)
    single = q.ndim == 1
    q = _as_matrix(q.reshape(1, -1) if single else q, "queries")
    x = _as_matrix(np.asarray(matrix), "matrix")
    if q.shape[1] != x.shape[1]:
        raise InvalidInputError(f"queries have {q.shape[1]} dimensions but the matrix has {x.shape[1]}")
    with core_errors():
        ids, scores = _core.dense_topk(q, x, k, metric, num_threads)
    return (ids[0], scores[0]) if single else (ids, scores)


def _as_matrix(a: np.ndarray, name: str) -> np.ndarray:
    if a.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-dimensional, got shape {a.shape}")
    if not np.issubdtype(a.dtype, np.number) or np.issubdtype(a.dtype, np.complexfloating):
        raise InvalidInputError(f"{name} must be real numbers, got dtype {a.dtype}")
    a = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(a).all():
        raise InvalidInputError(f"{name} holds NaN or infinite values")
    return a
