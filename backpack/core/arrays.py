"""Input checking and conversion shared by the public API.

Everything the C++ core receives passes through here first: the right dtype,
C-contiguous, finite, in range. Arrays that already fit are passed through
without a copy.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from backpack.core import _core
from backpack.errors import CancelledError, InvalidInputError


def as_user_items(matrix, name: str = "user_items", *, allow_zero: bool = False) -> sp.csr_matrix:
    """Return ``matrix`` as a canonical float32 CSR matrix with non-negative finite values.

    With ``allow_zero`` (the query path) a matrix that is already canonical
    float32 CSR is returned as it is: the core checks its values anyway, and
    this keeps a single-user request cheap.
    """
    if allow_zero and type(matrix) is sp.csr_matrix and matrix.dtype == np.float32 and matrix.has_canonical_format:
        return matrix
    if not sp.issparse(matrix):
        if isinstance(matrix, np.ndarray) and matrix.ndim == 2:
            if matrix.dtype == bool or not np.issubdtype(matrix.dtype, np.number):
                raise InvalidInputError(f"{name} must hold real numbers, got dtype {matrix.dtype}")
            matrix = sp.csr_matrix(matrix)
        else:
            raise InvalidInputError(
                f"{name} must be a scipy.sparse matrix (users x items), got {type(matrix).__name__}"
            )
    if matrix.ndim != 2:
        raise InvalidInputError(f"{name} must be 2-dimensional")
    if not np.issubdtype(matrix.dtype, np.number) or np.issubdtype(matrix.dtype, np.complexfloating):
        raise InvalidInputError(f"{name} must hold real numbers, got dtype {matrix.dtype}")
    csr = matrix.tocsr()
    if csr.dtype != np.float32:
        csr = csr.astype(np.float32)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    data = csr.data
    if data.size and not np.isfinite(data).all():
        raise InvalidInputError(f"{name} holds NaN or infinite values")
    if data.size and (data.min() < 0):
        raise InvalidInputError(f"{name} holds negative weights; weights must be >= 0")
    if not allow_zero and data.size and (data == 0).any():
        csr = csr.copy()
        csr.eliminate_zeros()
    return csr


def csr_arrays(csr: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The (int64 indptr, int32 indices, float32 data) triple the core takes."""
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.int64)
    indices = np.ascontiguousarray(csr.indices, dtype=np.int32)
    data = np.ascontiguousarray(csr.data, dtype=np.float32)
    return indptr, indices, data


def as_index_array(ids, name: str, upper: int) -> tuple[np.ndarray, bool]:
    """Validate integer ids in [0, upper); returns (int32 array, was_scalar)."""
    scalar = np.isscalar(ids) or (isinstance(ids, np.ndarray) and ids.ndim == 0)
    arr = np.asarray(ids)
    if arr.dtype == bool or not (np.issubdtype(arr.dtype, np.integer) or arr.size == 0):
        raise InvalidInputError(f"{name} must be integers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr.reshape(-1), dtype=np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        bad = arr[(arr < 0) | (arr >= upper)][0]
        raise InvalidInputError(f"{name} holds {bad}, outside [0, {upper})")
    return arr.astype(np.int32), scalar


def item_mask(ids, n_items: int, name: str) -> np.ndarray | None:
    """A uint8 mask over items from a list of item indices (None stays None)."""
    if ids is None:
        return None
    arr, _ = as_index_array(ids, name, n_items)
    mask = np.zeros(n_items, dtype=np.uint8)
    mask[arr] = 1
    return mask


# Largest N (results per query) or K (neighbours per item) accepted, and the
# largest result one call may return, so a typo cannot ask for terabytes.
MAX_COUNT = 100_000
MAX_RESULT_CELLS = 1 << 28


def check_count(value, name: str, upper: int = MAX_COUNT) -> int:
    """A non-negative integer count such as N or K, at most ``upper``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name} must be an integer, got {value!r}")
    if value < 0:
        raise InvalidInputError(f"{name} must be >= 0, got {value}")
    if value > upper:
        raise InvalidInputError(f"{name} must be <= {upper:,}, got {value:,}")
    return int(value)


def check_result_size(rows: int, n: int) -> None:
    """Refuse a batch whose (rows x n) result would not fit in memory sensibly."""
    if rows * n > MAX_RESULT_CELLS:
        raise InvalidInputError(
            f"{rows:,} queries x N={n:,} is more than {MAX_RESULT_CELLS:,} results: split the batch"
        )


def as_float_array(values, name: str) -> np.ndarray:
    """A 1-D float64 array from a scalar or sequence of numbers (typed error otherwise)."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be numbers, got {values!r:.80}") from None
    return arr


class _CoreErrors:
    """Context manager turning the core's built-in exceptions into Backpack's typed ones.

    A class rather than @contextmanager: it sits on every request's path and
    costs a fraction of a generator-based one.
    """

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind, exc, tb) -> bool:
        if exc is None or isinstance(exc, InvalidInputError):
            return False
        if isinstance(exc, _core.Cancelled):
            raise CancelledError("the computation was cancelled") from exc
        if isinstance(exc, (ValueError, IndexError, TypeError)):
            raise InvalidInputError(str(exc)) from exc
        return False


_CORE_ERRORS = _CoreErrors()


def core_errors() -> _CoreErrors:
    """``with core_errors(): ...`` around calls into the core."""
    return _CORE_ERRORS


def finite_number(value, what: str) -> float:
    """``value`` as a finite float, else an InvalidInputError starting with ``what`` (``"row 3: weight"``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{what} {value!r:.80} is not a number") from None
    if not math.isfinite(number):
        raise InvalidInputError(f"{what} {value!r} is not finite")
    return number
