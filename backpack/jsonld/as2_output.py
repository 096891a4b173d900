"""Recommendations out as ActivityStreams: an ``OrderedCollection`` a Fediverse server can read.

A list becomes::

    {"@context": ["https://www.w3.org/ns/activitystreams", "https://backpack.dev/ns/v1"],
     "type": "OrderedCollection", "totalItems": 2, "recommendedFor": "https://social.example/users/ana",
     "algorithm": "als", "generatedAt": "2026-11-23T16:00:00Z",
     "orderedItems": [{"type": "Recommendation", "rank": 1, "score": 0.93,
                       "recommendedItem": "https://assets.example/hat"}, ...]}

Each entry is a ``bp:Recommendation`` node carrying the item, its score and
its rank rather than a score on the item itself: a score belongs to this
list, not to the item. The document is built expanded (absolute IRIs) and
compacted by PyLD with the AS2 context plus Backpack's, both served offline,
so what comes out is what a JSON-LD processor would write.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone

from backpack.errors import InvalidInputError
from backpack.jsonld.activities import AS, is_absolute_iri
from backpack.jsonld.contexts import AS2_CONTEXT, BACKPACK_CONTEXT, BACKPACK_NS

OUTPUT_CONTEXT = [AS2_CONTEXT, BACKPACK_CONTEXT]
_XSD = "http://www.w3.org/2001/XMLSchema#"


def recommendations_collection(
    recommendations: Sequence,
    *,
    for_user: str | None = None,
    similar_to: str | None = None,
    algorithm: str | None = None,
    collection_id: str | None = None,
    generated_at: datetime | None = None,
    loader=None,
) -> dict:
    """A compacted AS2 ``OrderedCollection`` of ``recommendations`` (``Recommendation`` tuples or
    ``(item, score)`` pairs), best first. Item ids must be absolute IRIs."""
    from backpack.jsonld.processing import compact

    entries = []
    for rank, rec in enumerate(recommendations, 1):
        item, score = (rec.item, rec.score) if hasattr(rec, "item") else rec
        if not is_absolute_iri(item):
            raise InvalidInputError(f"item {item!r} is not an absolute IRI: AS2 output needs IRIs as item ids")
        entries.append(
            {
                "@type": [BACKPACK_NS + "Recommendation"],
                BACKPACK_NS + "recommendedItem": [{"@id": item}],
                BACKPACK_NS + "score": [{"@value": float(score), "@type": _XSD + "double"}],
                BACKPACK_NS + "rank": [{"@value": rank, "@type": _XSD + "nonNegativeInteger"}],
            }
        )
    node: dict = {
        "@type": [AS + "OrderedCollection"],
        AS + "totalItems": [{"@value": len(entries), "@type": _XSD + "nonNegativeInteger"}],
        AS + "items": [{"@list": entries}],
    }  # AS2's orderedItems is as:items as an @list
    if collection_id is not None:
        node["@id"] = _iri(collection_id, "collection_id")
    if for_user is not None:
        node[BACKPACK_NS + "recommendedFor"] = [{"@id": _iri(for_user, "for_user")}]
    if similar_to is not None:
        node[BACKPACK_NS + "similarTo"] = [{"@id": _iri(similar_to, "similar_to")}]
    if algorithm is not None:
        node[BACKPACK_NS + "algorithm"] = [{"@value": str(algorithm)}]
    when = (generated_at or datetime.now(timezone.utc)).astimezone(timezone.utc)
    node[BACKPACK_NS + "generatedAt"] = [{"@value": when.strftime("%Y-%m-%dT%H:%M:%SZ"), "@type": _XSD + "dateTime"}]
    return compact([node], OUTPUT_CONTEXT, loader=loader)


def compact_item(document, *, loader=None) -> dict:
    """An item description re-emitted compacted, whatever shape it came in: with schema.org's context
    if its types are schema.org's, else with AS2's, plus Backpack's in both cases.

    (AS2 and schema.org both define ``name``, ``Person``, ... differently, so
    one compaction context cannot hold both without a collision policy.)
    """
    from backpack.jsonld.activities import SCHEMA
    from backpack.jsonld.contexts import SCHEMA_CONTEXT
    from backpack.jsonld.processing import compact, expand

    expanded = expand(document, loader=loader)
    types = [t for node in expanded if isinstance(node, dict) for t in node.get("@type", ())]
    vocabulary = SCHEMA_CONTEXT if any(t.startswith(SCHEMA) for t in types) else AS2_CONTEXT
    return compact(expanded, [vocabulary, BACKPACK_CONTEXT], loader=loader)


def _iri(value, name: str) -> str:
    if not is_absolute_iri(value):
        raise InvalidInputError(f"{name} {value!r} is not an absolute IRI")
    return value
