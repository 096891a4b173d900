"""Descriptions kept by the engine: expanded JSON-LD nodes by IRI, one map for items and one for users.

Descriptions are what cold start and content similarity work from: an item
someone uploaded a minute ago has a name, a description and tags long before
anyone has viewed it. The map sits behind a lock; a later description of the
same IRI replaces the earlier one. Nodes arrive already checked and expanded
(:mod:`backpack.jsonld.records`).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping


class Descriptions:
    """Thread-safe map of IRI -> expanded JSON-LD node."""

    def __init__(self) -> None:
        self._docs: dict[str, dict] = {}
        self._lock = threading.Lock()

    def put(self, nodes: Mapping[str, dict]) -> None:
        """Store nodes (IRI -> node); a snapshot sees all of them or none."""
        with self._lock:
            self._docs.update(nodes)

    def get(self, iri: str) -> dict | None:
        """The description of ``iri``, or None."""
        return self._docs.get(iri)

    def snapshot(self) -> dict[str, dict]:
        """A copy of all descriptions (IRI -> node), consistent at one moment."""
        with self._lock:
            return dict(self._docs)

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, iri: str) -> bool:
        return iri in self._docs
