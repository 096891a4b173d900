"""Item kinds (avatar, prop, world, ...): what each item is, for per-kind results.

A platform's catalogue mixes kinds of things, and a "for you" shelf of
avatars must not offer worlds. Kinds are kept by item id (an item may be
described before anyone interacts with it) and turned into the item indices
of the bags on demand; that index list is cached until kinds change or new
items arrive, so a per-kind request costs one array intersection.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from backpack.errors import InvalidInputError


class ItemKinds:
    """Item id -> kind; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kinds: dict[str, str] = {}
        self._version = 0
        self._cache: dict[str, tuple[int, int, np.ndarray]] = {}

    def set(self, items: Sequence[str], kinds: Sequence[str] | str) -> None:
        """Give ``items`` their kinds (one per item, or one for all); replaces earlier kinds."""
        items = _strings(items, "items")
        kinds = [kinds] * len(items) if isinstance(kinds, str) else _strings(kinds, "kinds")
        if len(kinds) != len(items):
            raise InvalidInputError(f"got {len(items)} items but {len(kinds)} kinds")
        with self._lock:
            self._kinds.update(zip(items, kinds))
            self._version += 1

    def get(self, item: str) -> str | None:
        """The kind of ``item`` (None if it has none)."""
        return self._kinds.get(item)

    def kinds(self) -> list[str]:
        """Every kind some item has, sorted."""
        with self._lock:
            return sorted(set(self._kinds.values()))

    def table(self) -> tuple[list[str], list[str]]:
        """(item ids, their kinds), sorted by item id."""
        with self._lock:
            pairs = sorted(self._kinds.items())
        return [p[0] for p in pairs], [p[1] for p in pairs]

    def __len__(self) -> int:
        return len(self._kinds)

    def indices(self, kind: str, bags) -> np.ndarray:
        """Sorted indices in ``bags`` of the items of ``kind`` (items nobody holds yet have none)."""
        if not isinstance(kind, str) or not kind:
            raise InvalidInputError(f"item_kind must be a non-empty string, got {kind!r}")
        n_items = bags.n_items
        with self._lock:
            cached = self._cache.get(kind)
            if cached is not None and cached[0] == self._version and cached[1] == n_items:
                return cached[2]
            version = self._version
            members = [item for item, k in self._kinds.items() if k == kind]
            if not members:
                known = sorted(set(self._kinds.values()))
                raise InvalidInputError(f"no item has kind {kind!r}; known kinds: {known or 'none (set_item_kinds)'}")
        idx = bags.item_indices(members)
        idx = np.sort(idx[idx >= 0]).astype(np.int32)
        with self._lock:
            self._cache[kind] = (version, n_items, idx)
        return idx


def _strings(values, what: str) -> list[str]:
    if isinstance(values, str):
        raise InvalidInputError(f"{what} must be a sequence of strings, not a single string")
    values = list(values)
    for v in values:
        if not isinstance(v, str) or not v:
            raise InvalidInputError(f"{what} must be non-empty strings, got {v!r}")
    return values
