"""Item features for content similarity: what an item *is*, as discrete tokens.

:func:`item_features` reads a JSON-LD item node (compacted with schema.org or
ActivityStreams terms, or expanded) and returns tokens such as
``type:3DModel``, ``keyword:pirate``, ``creator:https://ex.org/ana``,
``license:https://creativecommons.org/licenses/by/4.0/``, ``genre:racing``.
Features already extracted elsewhere (scene ingestion puts a ``features``
list on the node) are kept as they are.

:class:`FeatureIndex` stacks the tokens of all described items into an
item x feature sparse matrix and hands it to the C++ item-kNN core with the
features in the role of users: two items are similar when they share (rare)
features. That answers "similar items" for items nobody has interacted with,
without any model download.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import scipy.sparse as sp

from backpack.content.text import (
    TAG_KEYS,
    TYPE_KEYS,
    keyword_texts,
    language_texts,
    property_values,
    single_node,
    tag_names,
    term_keys,
)
from backpack.errors import UnknownItemError

_CREATOR = (*term_keys("creator", schema=True), *term_keys("author", schema=True), *term_keys("attributedTo", as2=True))
_LICENSE = term_keys("license", schema=True)
_GENRE = term_keys("genre", schema=True)
# Backpack's context names the term ``feature`` (bp:feature); scene items write ``backpack:features``.
_FEATURES = tuple(
    f"{prefix}{term}"
    for term in ("feature", "features")
    for prefix in ("", "bp:", "backpack:", "https://backpack.dev/ns#")
)


def item_features(document, *, language: str | None = "en") -> list[str]:
    """Sorted, unique feature tokens of the item that ``document`` (a JSON-LD node) describes."""
    node = single_node(document)
    out = {f"type:{_short(t)}" for t in property_values(node, TYPE_KEYS) if isinstance(t, str)}
    out |= {
        f"keyword:{k.strip().casefold()}"
        for value in property_values(node, term_keys("keywords", schema=True))
        for k in keyword_texts(value, language)
        if k.strip()
    }
    out |= {
        f"keyword:{name.lstrip('#').strip().casefold()}"
        for tag in property_values(node, TAG_KEYS)
        for name in tag_names(tag, language)
        if name.strip("# ")
    }
    for prefix, keys in (("creator", _CREATOR), ("license", _LICENSE), ("genre", _GENRE)):
        out |= {f"{prefix}:{ref}" for ref in _references(property_values(node, keys), language)}
    out |= {
        f
        for f in (v.get("@value") if isinstance(v, dict) else v for v in property_values(node, _FEATURES))
        if isinstance(f, str) and f
    }  # plain strings when compact, {"@value": ...} when expanded
    return sorted(out)


def _short(type_iri: str) -> str:
    return type_iri.replace("#", "/").replace(":", "/").rstrip("/").rsplit("/", 1)[-1]


def _references(values: list, language: str | None) -> list[str]:
    """A property's values as tokens: a node by its id (else its name), a literal by its text."""
    out = []
    for value in values:
        if isinstance(value, dict) and "@value" not in value:
            ref = value.get("@id", value.get("id"))
            out += (
                [ref]
                if isinstance(ref, str)
                else [
                    t.casefold()
                    for t in language_texts(property_values(value, term_keys("name", True, True)), language)
                ]
            )
        else:
            out += [t.strip().casefold() for t in language_texts([value], language)]
    return [r for r in out if r]


class FeatureIndex:
    """Items compared by shared features through the item-kNN core (cosine, BM25, TF-IDF or Jaccard)."""

    def __init__(
        self, features: Mapping[str, Sequence[str]], *, similarity: str = "cosine", k: int = 100, num_threads: int = 0
    ):
        from backpack.algorithms.itemknn import ItemKNN

        self.item_ids = list(features)
        self._row = {item: r for r, item in enumerate(self.item_ids)}
        vocabulary: dict[str, int] = {}
        cols, rows = [], []
        for r, item in enumerate(self.item_ids):
            for token in dict.fromkeys(features[item]):
                cols.append(vocabulary.setdefault(token, len(vocabulary)))
                rows.append(r)
        self.vocabulary = vocabulary
        # features play the users' part: feature x item, one per shared token
        self.matrix = sp.csr_matrix(
            (np.ones(len(rows), np.float32), (cols, rows)), shape=(max(len(vocabulary), 1), len(self.item_ids))
        )
        self._knn = ItemKNN(k=k, similarity=similarity, num_threads=num_threads).fit(self.matrix, show_progress=False)

    def vectors(self, dim: int = 64) -> np.ndarray:
        """Dense item vectors (items x at most ``dim``) whose inner products approximate the cosine of
        the items' TF-IDF weighted features: the exact unit rows when there are no more features than
        ``dim``, else a truncated SVD of them (latent semantic analysis). What the hybrid recommender
        blends in when there is no text-embedding index."""
        from scipy.sparse.linalg import svds

        items_by_features = self.matrix.T.tocsr()
        # rare features say more about an item than ones every item has (idf), then unit rows: cosine
        df = np.bincount(items_by_features.indices, minlength=items_by_features.shape[1])
        idf = np.log((1 + items_by_features.shape[0]) / (1 + df)).astype(np.float32) + 1.0
        weighted = items_by_features @ sp.diags(idf)
        norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1))).ravel()
        unit = sp.diags(1.0 / np.where(norms > 0, norms, 1.0)) @ weighted
        if unit.shape[1] <= dim or min(unit.shape) <= 1:
            return unit.toarray().astype(np.float32)
        k = min(dim, min(unit.shape) - 1)
        u, s, _ = svds(unit.astype(np.float64), k=k, random_state=0)  # a fixed start: the same vectors every fit
        return (u * s).astype(np.float32)

    def aligned(self, item_ids: Sequence[str], dim: int = 64) -> np.ndarray:
        """:meth:`vectors` for ``item_ids`` in that order (zero rows for items without features)."""
        from backpack.content.index import aligned_rows

        return aligned_rows(self.vectors(dim), self._row, item_ids)

    def __contains__(self, item: str) -> bool:
        return item in self._row

    def __len__(self) -> int:
        return len(self.item_ids)

    def similar(self, item: str, n: int = 10) -> list[tuple[str, float]]:
        """The ``n`` items sharing the most (weighted) features with ``item``, never ``item``; only
        items sharing at least one feature are returned."""
        if item not in self._row:
            raise UnknownItemError(f"item {item!r} has no features in the feature index")
        ids, scores = self._knn.similar_items(self._row[item], N=n)
        return [
            (self.item_ids[i], float(s))
            for i, s in zip(np.ravel(ids).tolist(), np.ravel(scores).tolist())
            if i >= 0 and s > 0 and i != self._row[item]
        ]
