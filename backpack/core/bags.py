"""Bags: every user's set of (item, weight), addressed by string ids.

A thin layer over the C++ ``BagStore``: it checks and normalises arguments;
the store does the work under a reader-writer lock, so a reader sees a batch
of writes entirely or not at all.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import scipy.sparse as sp

from backpack.core import _core
from backpack.core.arrays import as_float_array, as_user_items, core_errors, csr_arrays
from backpack.core.weights import WEIGHT_RULE, weights_ok
from backpack.errors import InvalidInputError


class Bags:
    """Users' bags with string ids for users and items."""

    def __init__(self) -> None:
        self._store = _core.BagStore()

    # -- writes --------------------------------------------------------------

    def add(self, users, items, weights=1.0) -> None:
        """Add interactions; weights of a (user, item) pair already held add up."""
        self._write(users, items, weights, replace=False)

    def set(self, users, items, weights) -> None:
        """Set the weight of (user, item) pairs, adding the pairs that are new."""
        self._write(users, items, weights, replace=True)

    def add_items(self, items) -> int:
        """Give items an index without any interaction (e.g. described, not yet seen); returns how many were new."""
        items = _check_ids(items, "items")
        with core_errors():
            return self._store.add_items(items)

    def remove(self, users, items) -> int:
        """Remove (user, item) pairs; returns how many were held and removed."""
        users, items = id_lists(users, items)
        with core_errors():
            return self._store.remove(users, items)

    def load(self, user_items, user_ids: Sequence[str], item_ids: Sequence[str]) -> None:
        """Replace everything with a users x items matrix and its id lists."""
        csr = as_user_items(user_items)
        user_ids, item_ids = _check_ids(user_ids, "user_ids"), _check_ids(item_ids, "item_ids")
        if csr.shape != (len(user_ids), len(item_ids)):
            raise InvalidInputError(
                f"matrix is {csr.shape[0]} x {csr.shape[1]} but there are {len(user_ids)} user ids "
                f"and {len(item_ids)} item ids"
            )
        with core_errors():
            self._store.load(*csr_arrays(csr), user_ids, item_ids)

    # -- reads ---------------------------------------------------------------

    def to_csr(self) -> sp.csr_matrix:
        """A consistent snapshot of all bags as a users x items CSR matrix."""
        indptr, indices, data, n_items = self._store.export_all()
        return sp.csr_matrix((data, indices, indptr), shape=(indptr.size - 1, n_items))

    def rows(self, user_indices: np.ndarray) -> sp.csr_matrix:
        """Bags of the given user indices (-1 gives an empty bag) as CSR rows."""
        idx = np.ascontiguousarray(user_indices, dtype=np.int32)
        with core_errors():
            indptr, indices, data, n_items = self._store.export_rows(idx)
        return sp.csr_matrix((data, indices, indptr), shape=(idx.size, n_items))

    def bag(self, user: str) -> dict[str, float]:
        """One user's bag as {item id: weight} (empty for an unknown user)."""
        row = self.rows(np.array([self.user_index(user)], dtype=np.int32))
        names = self.item_ids(row.indices)
        return dict(zip(names, row.data.tolist()))

    def user_index(self, user: str) -> int:
        """Dense index of a user, or -1 if unknown."""
        return int(self._store.find_users([_check_id(user, "user")])[0])

    def item_index(self, item: str) -> int:
        """Dense index of an item, or -1 if unknown."""
        return int(self._store.find_items([_check_id(item, "item")])[0])

    def user_indices(self, users: Iterable[str]) -> np.ndarray:
        return self._store.find_users(_check_ids(users, "users"))

    def item_indices(self, items: Iterable[str]) -> np.ndarray:
        return self._store.find_items(_check_ids(items, "items"))

    def user_ids(self, indices) -> list[str]:
        with core_errors():
            return self._store.user_names(np.ascontiguousarray(indices, dtype=np.int32))

    def item_ids(self, indices) -> list[str]:
        with core_errors():
            return self._store.item_names(np.ascontiguousarray(indices, dtype=np.int32))

    def item_user_count(self, item: str) -> int:
        """How many users hold ``item`` (0 for an unknown item): one lookup, not the whole array."""
        return int(self._store.item_user_count(self.item_index(item)))

    def item_user_counts(self) -> np.ndarray:
        """How many users hold each item."""
        return self._store.item_user_counts()

    @property
    def n_users(self) -> int:
        return self._store.n_users

    @property
    def n_items(self) -> int:
        return self._store.n_items

    @property
    def nnz(self) -> int:
        """Number of stored (user, item) pairs."""
        return self._store.nnz

    def memory_bytes(self) -> int:
        """Bytes held by bags and id maps (8 per stored pair plus per-id overhead)."""
        return self._store.memory_bytes()

    def _write(self, users, items, weights, replace: bool) -> None:
        users, items = id_lists(users, items)
        w = weight_array(weights, len(users))
        with core_errors():
            self._store.write(users, items, w, replace)


def _check_id(value, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"{what} ids must be non-empty strings, got {value!r}")
    return value


def _check_ids(values, what: str) -> list[str]:
    if isinstance(values, str):
        raise InvalidInputError(f"{what} must be a sequence of ids, not a single string")
    try:
        values = values.tolist() if isinstance(values, np.ndarray) else list(values)
    except TypeError:
        raise InvalidInputError(f"{what} must be a sequence of string ids, got {type(values).__name__}") from None
    for v in values:
        if not isinstance(v, str) or not v:
            raise InvalidInputError(f"{what} must be non-empty strings, got {v!r}")
    return values


def weight_array(weights, count: int) -> np.ndarray:
    """``count`` interaction weights as a float32 vector, each in (0, :data:`MAX_WEIGHT`] as stored.

    The check is on the value the engine and the store keep (float32), not on the float64
    the caller sent: ``1e-50`` is a positive float64 but 0.0 as float32, and must be refused
    here rather than by the engine after the store has made it durable.

    A scalar applies to every interaction. A column or row vector (``(count, 1)``
    or ``(1, count)``, as NumPy and pandas hand them out) is flattened; any
    other shape is refused rather than guessed at.
    """
    w = as_float_array(weights, "weights")
    if w.ndim == 0:
        w = np.full(count, float(w))
    elif w.ndim == 2 and 1 in w.shape:
        w = w.reshape(-1)
    if w.shape != (count,):
        raise InvalidInputError(f"got {count} interactions but weights of shape {w.shape}")
    bad = ~weights_ok(w)
    if bad.any():
        first = int(np.argmax(bad))
        raise InvalidInputError(
            f"weight #{first} ({w[first]!r}) refused: {WEIGHT_RULE} (remove an interaction to delete it)"
        )
    return np.ascontiguousarray(w, dtype=np.float32)


def id_lists(users, items) -> tuple[list[str], list[str]]:
    """Two equal-length lists of string ids from sequences (or a single pair of strings)."""
    if isinstance(users, str) and isinstance(items, str):
        return [users], [items]
    users, items = _check_ids(users, "users"), _check_ids(items, "items")
    if len(users) != len(items):
        raise InvalidInputError(f"got {len(users)} users but {len(items)} items")
    return users, items
