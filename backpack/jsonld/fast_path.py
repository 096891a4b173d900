"""A fast path for the commonest activity: a flat, compact AS2 activity with IRIs for actor and object.

Federated servers send millions of documents shaped exactly like::

    {"@context": "https://www.w3.org/ns/activitystreams", "id": "https://...", "type": "Like",
     "actor": "https://...", "object": "https://...", "published": "2026-11-23T12:00:00Z"}

PyLD expands each through the full JSON-LD algorithm (about 360 a second
here). This module decodes such documents with msgspec into a typed struct
and writes the expanded node directly, using term definitions read from the
bundled AS2 context (not typed in here), so the result is exactly what PyLD
produces (``tests/test_jsonld_fast.py`` proves it on the whole corpus).
Anything else (another context, a nested object, an extra property, a
relative or prefixed IRI, an unknown type) falls back to PyLD.
"""

from __future__ import annotations

import json
from importlib import resources

import msgspec

from backpack.jsonld.contexts import AS2_CONTEXT

_HTTP = ("https://", "http://")


class _FlatActivity(msgspec.Struct, forbid_unknown_fields=True, rename={"context": "@context"}):
    """The one shape the fast path takes; any other key, or a value of another type, does not decode."""

    context: str
    id: str
    type: str
    actor: str
    object: str
    published: str | None = None


def _as2_terms() -> tuple[str, dict[str, str], dict[str, str]]:
    """From the bundled AS2 context: the namespace, class terms -> IRIs, and the three properties' IRIs."""
    path = resources.files("backpack.jsonld.contexts") / "activitystreams.jsonld"
    context = json.loads(path.read_text(encoding="utf-8"))["@context"]
    ns = context["as"]

    def iri(term: str) -> str:
        value = context[term]
        value = value["@id"] if isinstance(value, dict) else value
        return ns + value[3:] if value.startswith("as:") else value

    for term, coercion in (("actor", "@id"), ("object", "@id"), ("published", "xsd:dateTime")):
        if context[term].get("@type") != coercion:  # the expansion below relies on these coercions
            raise RuntimeError(f"the bundled AS2 context no longer types {term!r} as {coercion}")
    classes = {
        term: iri(term)
        for term, value in context.items()
        if isinstance(value, str) and value.startswith("as:") and term[:1].isupper()
    }
    properties = {term: iri(term) for term in ("actor", "object", "published")}
    properties["dateTime"] = context["xsd"] + "dateTime"
    return ns, classes, properties


_NS, _CLASSES, _PROPS = _as2_terms()
_DECODER = msgspec.json.Decoder(_FlatActivity)


def fast_expand(raw: bytes | str) -> list | None:
    """The expanded form of a flat compact AS2 activity in ``raw`` JSON, or None if it is not one."""
    try:
        a = _DECODER.decode(raw)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    if (
        a.context != AS2_CONTEXT
        or a.type not in _CLASSES
        or not (a.id.startswith(_HTTP) and a.actor.startswith(_HTTP) and a.object.startswith(_HTTP))
    ):
        return None
    node = {
        "@id": a.id,
        "@type": [_CLASSES[a.type]],
        _PROPS["actor"]: [{"@id": a.actor}],
        _PROPS["object"]: [{"@id": a.object}],
    }
    if a.published is not None:
        node[_PROPS["published"]] = [{"@type": _PROPS["dateTime"], "@value": a.published}]
    return [node]


def expand_many(raws, *, stats: dict | None = None) -> list:
    """Expanded nodes of many JSON documents (bytes or str): the fast path where it applies, PyLD
    for the rest. ``stats``, if given, counts ``fast`` and ``pyld`` documents."""
    from backpack.errors import InvalidInputError
    from backpack.jsonld.processing import expand

    out = []
    fast = slow = 0
    for raw in raws:
        nodes = fast_expand(raw)
        if nodes is None:
            try:
                doc = json.loads(raw)
            except ValueError as exc:
                raise InvalidInputError(f"not JSON: {exc}") from None
            nodes = expand(doc)
            slow += 1
        else:
            fast += 1
        out.extend(nodes)
    if stats is not None:
        stats["fast"] = stats.get("fast", 0) + fast
        stats["pyld"] = stats.get("pyld", 0) + slow
    return out
