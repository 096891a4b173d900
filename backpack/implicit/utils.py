"""implicit's ``implicit.utils``: input conversion with a warning, random states, row iteration."""

from __future__ import annotations

import time
import warnings

import numpy as np
import scipy.sparse as sp

from backpack.errors import ParameterWarning

__all__ = ["ParameterWarning", "check_csr", "check_random_state", "nonzeros", "pad_batch"]

#: implicit pads short batch rows with this score (float32's lowest finite value)
PAD_SCORE = -np.finfo(np.float32).max


def nonzeros(m: sp.csr_matrix, row: int):
    """``(column, value)`` of the stored entries of one CSR row."""
    for index in range(m.indptr[row], m.indptr[row + 1]):
        yield m.indices[index], m.data[index]


def check_csr(user_items) -> sp.csr_matrix:
    """``user_items`` as CSR; any other format is converted with a :class:`ParameterWarning`, as implicit does."""
    if isinstance(user_items, sp.csr_matrix):
        return user_items
    if not sp.issparse(user_items):
        raise ValueError(f"expected a scipy sparse matrix, got {type(user_items).__name__}")
    start = time.time()
    converted = sp.csr_matrix(user_items)
    warnings.warn(
        f"Method expects CSR input, and was passed {type(user_items).__name__} instead. "
        f"Converting to CSR took {time.time() - start} seconds",
        ParameterWarning,
        stacklevel=3,
    )
    return converted


def check_random_state(random_state) -> np.random.Generator:
    """A NumPy Generator from a seed, ``None``, a ``RandomState`` or a ``Generator``."""
    if isinstance(random_state, np.random.RandomState):
        return np.random.default_rng(random_state.randint(2**31))
    return np.random.default_rng(random_state)


def pad_batch(rows, N: int, score_dtype) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-query ``(ids, scores)`` into (queries, N) arrays padded with -1 / PAD_SCORE, as implicit does."""
    ids_out = np.full((len(rows), N), -1, dtype=np.int32)
    scores_out = np.full((len(rows), N), PAD_SCORE, dtype=score_dtype)
    for r, (ids, scores) in enumerate(rows):
        n = min(N, len(ids))
        ids_out[r, :n] = ids[:n]
        scores_out[r, :n] = scores[:n]
    return ids_out, scores_out
