"""Content similarity: items compared by what their descriptions say, not by who used them.

A :class:`ContentIndex` holds one unit-length vector per described item (the
text-embedding task's output for the item's name, description and keywords)
and answers "similar items" by cosine through the dense top-k core. It works
for items nobody has interacted with yet, which is what a collaborative model
cannot do (cold start), and it gives the hybrid recommender its content half.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from backpack.core.dense import DenseIndex
from backpack.errors import InvalidInputError, UnknownItemError


class ContentIndex:
    """Unit-length content vectors of described items, searchable by cosine."""

    def __init__(self, item_ids: Sequence[str], vectors: np.ndarray, *, task: str = "", num_threads: int = 0):
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[0] != len(item_ids):
            raise InvalidInputError(f"need one vector per item: {len(item_ids)} ids, vectors {vectors.shape}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        self.vectors = np.ascontiguousarray(vectors / np.maximum(norms, 1e-12))
        self.item_ids = list(item_ids)
        self.task = task
        self._row = {item: r for r, item in enumerate(self.item_ids)}
        if len(self._row) != len(self.item_ids):
            raise InvalidInputError("item ids of a content index must be unique")
        self._index = DenseIndex(self.vectors, metric="ip", num_threads=num_threads) if self.item_ids else None

    def __contains__(self, item: str) -> bool:
        return item in self._row

    def __len__(self) -> int:
        return len(self.item_ids)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    def similar(
        self, item: str, n: int = 10, *, allowed: Sequence[str] | None = None, denied: Sequence[str] = ()
    ) -> list[tuple[str, float]]:
        """The ``n`` described items closest to ``item`` by cosine (never ``item``), as (id, score)."""
        if item not in self._row:
            raise UnknownItemError(
                f"item {item!r} has no description in the content index (put_items it, then fit_content)"
            )
        row = self._row[item]
        banned = {row} | {self._row[d] for d in denied if d in self._row}
        keep = None if allowed is None else {self._row[a] for a in allowed if a in self._row}
        # with an allow-list the best allowed items may rank anywhere: search them all
        k = len(self.item_ids) if keep is not None else min(len(self.item_ids), n + len(banned))
        ids, scores = self._index.search(self.vectors[row : row + 1], k)
        out = []
        for i, s in zip(ids[0].tolist(), scores[0].tolist()):
            if i < 0 or i in banned or (keep is not None and i not in keep):
                continue
            out.append((self.item_ids[i], s))
            if len(out) == n:
                break
        return out

    def aligned(self, item_ids: Sequence[str]) -> np.ndarray:
        """Vectors for ``item_ids`` in that order (zero rows for items without a description)."""
        return aligned_rows(self.vectors, self._row, item_ids)


def aligned_rows(vectors: np.ndarray, row_of: dict[str, int], item_ids: Sequence[str]) -> np.ndarray:
    """Rows of ``vectors`` for ``item_ids`` in that order (``row_of``: id -> row); zero rows for ids
    without one."""
    out = np.zeros((len(item_ids), vectors.shape[1]), dtype=np.float32)
    rows = [(k, row_of[i]) for k, i in enumerate(item_ids) if i in row_of]
    if rows:
        at, src = np.array(rows).T
        out[at] = vectors[src]
    return out
