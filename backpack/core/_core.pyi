"""Backpack's C++ core: bags, item-item similarity, scoring, dense top-k."""

from collections.abc import Sequence
from typing import Annotated

import numpy
from numpy.typing import NDArray


class Cancelled(Exception):
    pass

class Progress:
    """Progress of a long call, readable from another thread."""

    def __init__(self) -> None: ...

    @property
    def done(self) -> int: ...

    @property
    def total(self) -> int: ...

    def cancel(self) -> None: ...

    def expect(self, arg: int, /) -> None:
        """
        Set the total for a call made of several kernel runs that each add to `done`.
        """

class BagStore:
    """Thread-safe per-user bags with string ids."""

    def __init__(self) -> None: ...

    def write(self, arg0: Sequence[str], arg1: Sequence[str], arg2: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], arg3: bool, /) -> None: ...

    def remove(self, arg0: Sequence[str], arg1: Sequence[str], /) -> int: ...

    def load(self, arg0: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], arg1: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], arg2: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], arg3: Sequence[str], arg4: Sequence[str], /) -> None: ...

    def export_all(self) -> tuple[NDArray[numpy.int64], NDArray[numpy.int32], NDArray[numpy.float32], int]: ...

    def export_rows(self, arg: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], /) -> tuple[NDArray[numpy.int64], NDArray[numpy.int32], NDArray[numpy.float32], int]: ...

    def find_users(self, arg: Sequence[str], /) -> NDArray[numpy.int32]: ...

    def add_items(self, arg: Sequence[str], /) -> int: ...

    def find_items(self, arg: Sequence[str], /) -> NDArray[numpy.int32]: ...

    def user_names(self, arg: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], /) -> list[str]: ...

    def item_names(self, arg: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], /) -> list[str]: ...

    def item_user_count(self, arg: int, /) -> int: ...

    def item_user_counts(self) -> NDArray[numpy.int32]: ...

    @property
    def n_users(self) -> int: ...

    @property
    def n_items(self) -> int: ...

    @property
    def nnz(self) -> int: ...

    def memory_bytes(self) -> int: ...

def similarity_weights(indptr: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], indices: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], data: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], n_cols: int, kind: str, k1: float = 1.2, b: float = 0.75, alpha: float = 1.0, beta: float = 0.6) -> NDArray[numpy.float32]: ...

def item_neighbours(indptr: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], indices: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], data: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], n_cols: int, kind: str, k: int, k1: float = 1.2, b: float = 0.75, alpha: float = 1.0, beta: float = 0.6, threads: int = 0, progress: Progress | None = None, start: int = 0, stop: int = -1) -> tuple[NDArray[numpy.int64], NDArray[numpy.int32], NDArray[numpy.float32]]:
    """
    Top-K neighbours of items [start, stop) (default: every item) as CSR arrays (indptr, indices, data): row r holds item start + r's, bit-identical to that row of the full build.
    """

def fit_item_neighbours(indptr: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], indices: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], data: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], n_cols: int, kind: str, k: int, k1: float, b: float, alpha: float, beta: float, threads: int, progress: Progress | None, fallback_order: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], fallback_scores: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)]) -> ItemNeighbours:
    """
    Build the neighbour index directly (no copy of the result through NumPy).
    """

class ItemNeighbours:
    """A fitted neighbour matrix with its popularity fill order."""

    def __init__(self, arg0: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], arg1: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], arg2: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], arg3: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], arg4: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], /) -> None: ...

    def recommend(self, indptr: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], indices: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], data: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], n_cols: int, n: int, filter_owned: bool, allowed: Annotated[NDArray[numpy.uint8], dict(shape=(None,), order='C', device='cpu', writable=False)] | None, denied: Annotated[NDArray[numpy.uint8], dict(shape=(None,), order='C', device='cpu', writable=False)] | None, threads: int = 0) -> tuple[NDArray[numpy.int32], NDArray[numpy.float32]]: ...

    def similar_items(self, items: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], n: int, allowed: Annotated[NDArray[numpy.uint8], dict(shape=(None,), order='C', device='cpu', writable=False)] | None, denied: Annotated[NDArray[numpy.uint8], dict(shape=(None,), order='C', device='cpu', writable=False)] | None, threads: int = 0) -> tuple[NDArray[numpy.int32], NDArray[numpy.float32]]: ...

    def matrix(self) -> tuple[NDArray[numpy.int64], NDArray[numpy.int32], NDArray[numpy.float32]]: ...

    @property
    def n_items(self) -> int: ...

def dense_topk(queries: Annotated[NDArray[numpy.float32], dict(shape=(None, None), order='C', device='cpu', writable=False)], matrix: Annotated[NDArray[numpy.float32], dict(shape=(None, None), order='C', device='cpu', writable=False)], k: int, metric: str = 'ip', threads: int = 0, exclude_indptr: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)] | None = None, exclude_indices: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)] | None = None, eligible: Annotated[NDArray[numpy.uint8], dict(shape=(None,), order='C', device='cpu', writable=False)] | None = None) -> tuple[NDArray[numpy.int32], NDArray[numpy.float32]]: ...

def gramian(factors: Annotated[NDArray[numpy.float32], dict(shape=(None, None), order='C', device='cpu', writable=False)], threads: int = 0) -> NDArray[numpy.float64]:
    """factors^T factors, accumulated in double."""

def als_solve(indptr: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], indices: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], data: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], other: Annotated[NDArray[numpy.float32], dict(shape=(None, None), order='C', device='cpu', writable=False)], target: Annotated[NDArray[numpy.float32], dict(shape=(None, None), order='C', device='cpu')], gram: Annotated[NDArray[numpy.float64], dict(shape=(None, None), order='C', device='cpu', writable=False)] | None, regularization: float, cg_steps: int, exact: bool, threads: int, progress: Progress | None) -> None:
    """
    Recompute rows of `target` by implicit-feedback least squares (CG or exact).
    """

def bpr_train(indptr: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], indices: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], data: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], users: Annotated[NDArray[numpy.float32], dict(shape=(None, None), order='C', device='cpu')], items: Annotated[NDArray[numpy.float32], dict(shape=(None, None), order='C', device='cpu')], learning_rate: float, regularization: float, epochs: int, seed: int, verify_negatives: bool, threads: int, progress: Progress | None) -> float:
    """
    BPR epochs by parallel SGD, updating users and items in place; returns the last epoch's accuracy.
    """

class UserNeighbours:
    """Fitted users' bags, scored by user-user cosine."""

    def __init__(self, arg0: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], arg1: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], arg2: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], arg3: int, arg4: int, arg5: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], arg6: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], /) -> None: ...

    def recommend(self, indptr: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], indices: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], data: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], n_cols: int, n: int, filter_owned: bool, allowed: Annotated[NDArray[numpy.uint8], dict(shape=(None,), order='C', device='cpu', writable=False)] | None, denied: Annotated[NDArray[numpy.uint8], dict(shape=(None,), order='C', device='cpu', writable=False)] | None, threads: int = 0) -> tuple[NDArray[numpy.int32], NDArray[numpy.float32]]: ...

    def similar_users(self, indptr: Annotated[NDArray[numpy.int64], dict(shape=(None,), order='C', device='cpu', writable=False)], indices: Annotated[NDArray[numpy.int32], dict(shape=(None,), order='C', device='cpu', writable=False)], data: Annotated[NDArray[numpy.float32], dict(shape=(None,), order='C', device='cpu', writable=False)], n_cols: int, n: int, threads: int = 0) -> tuple[NDArray[numpy.int32], NDArray[numpy.float32]]: ...

    def matrix(self) -> tuple[NDArray[numpy.int64], NDArray[numpy.int32], NDArray[numpy.float32]]: ...

    @property
    def n_users(self) -> int: ...

    @property
    def n_items(self) -> int: ...

    @property
    def k(self) -> int: ...
