"""Serialization error rate: a generated corpus of valid and invalid JSON-LD documents, plus fuzzing.

Every valid document must survive expand -> compact (in its own context) ->
expand with the same RDF graph (URDNA2015); every invalid one must be refused
with a typed error, never silently altered. The counts are printed.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backpack.errors import BackpackError
from backpack.jsonld.activities import ActivityMapper
from backpack.jsonld.contexts import AS2_CONTEXT, BACKPACK_CONTEXT, SCHEMA_CONTEXT
from backpack.jsonld.processing import compact, expand, normalize

ACTIVITIES = ["Like", "View", "Add", "Announce", "Follow", "Create"]
ACTIONS = ["LikeAction", "WatchAction", "ViewAction", "PlayAction", "BuyAction", "ShareAction"]
TEXTS = [
    "pirate hat",
    "Zauberhut mit Sternen",
    "шляпа пирата",
    "海賊の帽子",
    "🎩 top hat",
    'a "quoted" name',
    "tab\tand\nnewline",
    "",
]
DATES = ["2026-11-23T12:00:00Z", "2026-01-02T03:04:05+02:00", "1999-12-31T23:59:59.123Z"]


def as2_document(rng: np.random.Generator, n: int) -> dict:
    """An AS2 document of one of several shapes, varied by ``n`` and ``rng``."""
    kind = ACTIVITIES[(n // 2) % len(ACTIVITIES)]  # n is odd here: halve it so every type comes round
    actor = f"https://social.example/users/u{n}"
    obj: dict | str = f"https://assets.example/items/{n}"
    if n % 3 == 0:  # a nested object with a language map, tags and an attachment
        obj = {
            "id": obj,
            "type": "Note",
            "nameMap": {"en": TEXTS[n % 8], "de": TEXTS[(n + 1) % 8]},
            "attributedTo": actor,
            "published": DATES[n % 3],
            "tag": [{"type": "Hashtag", "name": f"#t{n}"}, {"type": "Mention", "href": actor}],
            "attachment": {"type": "Image", "url": f"https://cdn.example/{n}.png", "width": 64 + n},
        }
    doc = {
        "@context": AS2_CONTEXT,
        "id": f"https://social.example/activities/{n}",
        "type": kind,
        "actor": actor,
        "object": obj,
        "published": DATES[(n + 1) % 3],
    }
    if n % 4 == 1:
        doc["to"] = ["https://www.w3.org/ns/activitystreams#Public", f"{actor}/followers"]
    if n % 5 == 2:  # a blank-node object and a compact IRI
        doc["object"] = {"type": "Note", "content": TEXTS[n % 8], "as:summary": "compact IRI key"}
    if n % 7 == 3:  # several activities in a @graph
        doc = {
            "@context": AS2_CONTEXT,
            "@graph": [dict(doc, **{"@context": None}) for _ in range(1)]
            + [
                {
                    "id": f"https://social.example/activities/{n}-b",
                    "type": "Undo",
                    "actor": actor,
                    "object": f"https://social.example/activities/{n}",
                }
            ],
        }
        for node in doc["@graph"]:
            node.pop("@context", None)
    return doc


def schema_document(rng: np.random.Generator, n: int) -> dict:
    """A schema.org item or action, some mixed with Backpack's vocabulary."""
    if (n // 2) % 2:  # n is even here
        doc = {
            "@context": SCHEMA_CONTEXT,
            "@id": f"https://assets.example/models/{n}",
            "@type": "3DModel",
            "name": TEXTS[n % 8],
            "keywords": ["hat", "pirate", str(n)],
            "dateCreated": DATES[n % 3],
            "creator": {"@type": "Person", "name": TEXTS[(n + 3) % 8], "@id": f"https://people.example/{n}"},
            "license": "https://creativecommons.org/licenses/by/4.0/",
            "contentSize": int(rng.integers(1, 10**6)),
            "aggregateRating": {"@type": "AggregateRating", "ratingValue": round(float(rng.random()) * 5, 3)},
        }
    else:
        doc = {
            "@context": SCHEMA_CONTEXT,
            "@id": f"https://social.example/actions/{n}",
            "@type": ACTIONS[(n // 4) % len(ACTIONS)],
            "agent": {"@id": f"https://people.example/{n}"},
            "object": {"@id": f"https://assets.example/models/{n}", "@type": "VideoGame", "name": TEXTS[n % 8]},
            "startTime": DATES[n % 3],
        }
    if n % 6 == 0:
        doc["@context"] = [SCHEMA_CONTEXT, BACKPACK_CONTEXT]
        doc["score"] = float(rng.random())
        doc["itemKind"] = "avatar"
    return doc


def corpus(size: int = 320) -> list[dict]:
    rng = np.random.default_rng(42)
    return [as2_document(rng, n) if n % 2 else schema_document(rng, n) for n in range(size)]


def context_of(doc: dict):
    return doc["@context"]


def round_trips(doc: dict) -> bool:
    expanded = expand(doc)
    again = expand(compact(expanded, context_of(doc)))
    return normalize(expanded) == normalize(again) == normalize(doc)


def test_the_corpus_round_trips_with_no_loss(capsys):
    docs = corpus()
    failures = [n for n, doc in enumerate(docs) if not round_trips(doc)]
    mapper, interactions, undone, refused = ActivityMapper(), 0, 0, []
    for n, doc in enumerate(docs):
        nodes = [
            node
            for node in expand(doc)
            if any(t.endswith(tuple(ACTIVITIES + ACTIONS + ["Undo"])) for t in node.get("@type", ()))
        ]
        if not nodes:
            continue
        try:
            mapped = mapper.map(nodes)
        except BackpackError:
            refused.append(n)
            continue
        interactions, undone = interactions + len(mapped.interactions), undone + len(mapped.removals)
    with capsys.disabled():
        print(
            f"\nJSON-LD corpus: {len(docs)} valid documents, {len(failures)} round-trip errors "
            f"({100 * len(failures) / len(docs):.1f} %); {interactions} activities mapped, {undone} undone, "
            f"{len(refused)} refused for a blank-node object"
        )
    assert failures == []
    # the only activities the mapper refuses are those whose object is a blank node (no IRI to name the item)
    assert refused == [n for n, doc in enumerate(docs) if n % 2 and n % 5 == 2]
    assert interactions >= 100 and undone >= 5


def invalid_documents() -> list[tuple[str, dict]]:
    base = {
        "@context": AS2_CONTEXT,
        "id": "https://s.example/a/1",
        "type": "Like",
        "actor": "https://s.example/u/1",
        "object": "https://a.example/i/1",
    }
    return [
        ("remote context", dict(base, **{"@context": "https://evil.example/context.jsonld"})),
        ("context not a string or object", dict(base, **{"@context": 42})),
        ("@id not a string", {"@context": SCHEMA_CONTEXT, "@id": 5, "name": "x"}),
        ("@type not a string", {"@context": SCHEMA_CONTEXT, "@id": "https://a.example/1", "@type": {"x": 1}}),
        ("invalid @language", {"@context": SCHEMA_CONTEXT, "name": {"@value": "x", "@language": 3}}),
        ("@value with a node", {"@context": SCHEMA_CONTEXT, "name": {"@value": {"a": 1}}}),
        (
            "redefined protected term",
            {"@context": [BACKPACK_CONTEXT, {"score": "https://other.example/score"}], "score": 1},
        ),
        ("colliding contexts", {"@context": [AS2_CONTEXT, SCHEMA_CONTEXT], "name": "x"}),
        ("@list of lists in 1.0 mode", {"@context": {"@version": 2.0}, "https://x.example/p": 1}),
    ]


@pytest.mark.parametrize("reason, doc", invalid_documents(), ids=[r for r, _ in invalid_documents()])
def test_invalid_documents_are_refused_with_a_typed_error(reason, doc):
    before = copy.deepcopy(doc)
    with pytest.raises(BackpackError):
        normalize(expand(doc))
    assert doc == before  # never altered


def test_invalid_activities_are_refused_by_the_mapper():
    bad = [
        {
            "@context": AS2_CONTEXT,
            "id": "activities/1",
            "type": "Like",
            "actor": "https://s.example/u",
            "object": "https://a.example/i",
        },
        {
            "@context": AS2_CONTEXT,
            "id": "https://s.example/a/2",
            "type": "Wave",
            "actor": "https://s.example/u",
            "object": "https://a.example/i",
        },
        {"@context": AS2_CONTEXT, "id": "https://s.example/a/3", "type": "Like", "object": "https://a.example/i"},
    ]
    for doc in bad:
        with pytest.raises(BackpackError):
            ActivityMapper().map(expand(doc))


# -- fuzzing: random values in every slot of a document ----------------------------------

_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
_scalar = st.one_of(
    _text, st.integers(-(10**12), 10**12), st.floats(allow_nan=False, allow_infinity=False, width=64), st.booleans()
)
_iri = st.sampled_from(["https://a.example/1", "https://a.example/2", "urn:uuid:7", "did:example:ana"])


@st.composite
def fuzzed_document(draw) -> dict:
    doc: dict = {
        "@context": draw(st.sampled_from([AS2_CONTEXT, SCHEMA_CONTEXT, [SCHEMA_CONTEXT, BACKPACK_CONTEXT]])),
        "@id": draw(_iri),
    }
    terms = (
        ["name", "summary", "content", "published", "url", "tag"]
        if doc["@context"] == AS2_CONTEXT
        else ["name", "description", "keywords", "dateCreated", "url", "creator"]
    )
    for term in draw(st.lists(st.sampled_from(terms), unique=True, max_size=5)):
        doc[term] = draw(
            st.one_of(
                _scalar,
                st.lists(_scalar, max_size=3),
                _iri,
                st.fixed_dictionaries({"@id": _iri}),
                st.fixed_dictionaries({"@value": _text, "@language": st.sampled_from(["en", "de", "ja"])}),
            )
        )
    return doc


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(fuzzed_document())
def test_fuzzed_documents_round_trip_or_are_refused(doc):
    try:
        expanded = expand(doc)
    except BackpackError:
        return  # refused with a typed error: never silently altered
    assert normalize(expand(compact(expanded, doc["@context"]))) == normalize(expanded)


def test_every_activity_type_is_in_the_corpus():
    kinds = {doc.get("type") or doc.get("@type") for doc in corpus()}
    kinds |= {node.get("type") for doc in corpus() for node in doc.get("@graph", [])}
    assert set(ACTIVITIES + ["Undo"]) <= kinds and set(ACTIONS) <= kinds and "3DModel" in kinds
