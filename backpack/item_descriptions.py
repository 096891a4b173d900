"""Item descriptions kept by the engine: JSON-LD nodes by item IRI.

Descriptions are what cold start and content similarity work from: an item
someone uploaded a minute ago has a name, a description and tags long before
anyone has viewed it. The store is a dict behind a lock; a later description
of the same IRI replaces the earlier one.
"""

from __future__ import annotations

import threading

from .errors import InvalidInputError
from .importing import ItemDescription, item_nodes


class ItemDescriptions:
    """Thread-safe map of item IRI -> JSON-LD node."""

    def __init__(self) -> None:
        self._docs: dict[str, dict] = {}
        self._lock = threading.Lock()

    def put(self, documents) -> list[ItemDescription]:
        """Store item nodes (a node, a list of nodes or a document with ``@graph``); all or nothing."""
        if isinstance(documents, list):
            described = [d for number, doc in enumerate(documents)
                         for d in item_nodes(doc, f"item document {number}")]
        elif isinstance(documents, dict):
            described = item_nodes(documents, "item document")
        else:
            raise InvalidInputError(f"items must be JSON-LD nodes (dicts) or a list of them, not "
                                    f"{type(documents).__name__}")
        with self._lock:
            for d in described:
                self._docs[d.id] = d.document
        return described

    def get(self, item: str) -> dict | None:
        """The description of ``item``, or None."""
        return self._docs.get(item)

    def snapshot(self) -> dict[str, dict]:
        """A copy of all descriptions (id -> node), consistent at one moment."""
        with self._lock:
            return dict(self._docs)

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, item: str) -> bool:
        return item in self._docs
