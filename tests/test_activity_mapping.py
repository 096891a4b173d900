"""Expanded ActivityStreams activities and schema.org actions become interactions; Undo removes them."""

from __future__ import annotations

import pytest

import backpack
from backpack.errors import MappingError
from backpack.jsonld.activities import AS, SCHEMA, ActivityMapper, is_absolute_iri

ANA, BO = "https://social.example/users/ana", "https://social.example/users/bo"
HAT, CAPE = "https://assets.example/items/hat", "https://assets.example/items/cape"


def activity(kind: str, actor: str | None, obj, ident: str | None = "auto", *, vocab: str = AS, time=None) -> dict:
    """An expanded activity node, as PyLD's expand() returns it."""
    node: dict = {"@type": [vocab + kind]}
    if ident == "auto":
        ident = f"https://social.example/activities/{kind.lower()}-{abs(hash((actor, str(obj)))) % 10**8}"
    if ident is not None:
        node["@id"] = ident
    actor_key, object_key = (AS + "actor", AS + "object") if vocab == AS else (SCHEMA + "agent", SCHEMA + "object")
    if actor is not None:
        node[actor_key] = [{"@id": actor}]
    if obj is not None:
        node[object_key] = [obj if isinstance(obj, dict) else {"@id": obj}]
    if time is not None:
        key = AS + "published" if vocab == AS else SCHEMA + "startTime"
        node[key] = [{"@type": "http://www.w3.org/2001/XMLSchema#dateTime", "@value": time}]
    return node


@pytest.mark.parametrize(
    "kind, weight", [("Like", 3.0), ("View", 1.0), ("Add", 4.0), ("Announce", 2.0), ("Follow", 2.0), ("Create", 5.0)]
)
def test_every_as2_activity_type_becomes_a_weighted_interaction(kind, weight):
    mapped = ActivityMapper().map([activity(kind, ANA, HAT, time="2026-11-01T12:00:00Z")])
    [i] = mapped.interactions
    assert (i.user, i.item, i.kind, i.weight) == (ANA, HAT, kind, weight)
    assert i.timestamp == 1793534400.0


@pytest.mark.parametrize("kind", ["LikeAction", "WatchAction", "ViewAction", "PlayAction", "BuyAction"])
def test_schema_org_actions_map_likewise(kind):
    [i] = ActivityMapper().map([activity(kind, BO, CAPE, vocab=SCHEMA, time="2026-11-01T12:00:00")]).interactions
    assert (i.user, i.item, i.kind) == (BO, CAPE, kind)
    assert i.timestamp == 1793534400.0  # a naive time is UTC


def test_weights_are_configurable_by_short_name_or_iri():
    mapper = ActivityMapper({"Like": 7, SCHEMA + "WatchAction": 0.5})
    mapped = mapper.map([activity("Like", ANA, HAT), activity("WatchAction", ANA, CAPE, vocab=SCHEMA)])
    like, watch = mapped.interactions
    assert (like.weight, watch.weight) == (7.0, 0.5)
    with pytest.raises(backpack.InvalidInputError, match="unknown activity type 'Wave'"):
        ActivityMapper({"Wave": 1})
    with pytest.raises(backpack.InvalidInputError, match="must be a number > 0"):
        ActivityMapper({"Like": 0})


def test_undo_of_an_embedded_or_earlier_activity_is_a_removal():
    mapper = ActivityMapper()
    like = activity("Like", ANA, HAT, "https://social.example/activities/1")
    mapped = mapper.map([like])
    undo_by_iri = activity(
        "Undo", ANA, {"@id": "https://social.example/activities/1"}, "https://social.example/activities/2"
    )
    undo_embedded = activity(
        "Undo",
        BO,
        activity("Like", BO, CAPE, "https://social.example/activities/3"),
        "https://social.example/activities/4",
    )
    later = mapper.map([undo_by_iri, undo_embedded])
    assert [(r.user, r.item, r.undone) for r in later.removals] == [
        (ANA, HAT, "https://social.example/activities/1"),
        (BO, CAPE, "https://social.example/activities/3"),
    ]
    assert mapped.interactions and not later.interactions


def test_the_engine_applies_interactions_and_undos():
    engine = backpack.Engine()
    mapper = ActivityMapper()
    engine.apply_activities(
        mapper.map(
            [
                activity("Like", ANA, HAT, "https://s.example/a/1"),
                activity("View", ANA, CAPE, "https://s.example/a/2"),
                activity("Like", BO, HAT, "https://s.example/a/3"),
            ]
        )
    )
    assert engine.bags.bag(ANA) == {HAT: 3.0, CAPE: 1.0}
    counts = engine.apply_activities(
        mapper.map([activity("Undo", ANA, {"@id": "https://s.example/a/1"}, "https://s.example/a/4")])
    )
    assert counts == {"interactions": 0, "undone": 1, "removed": 1}
    assert engine.bags.bag(ANA) == {CAPE: 1.0}


@pytest.mark.parametrize(
    "node, message",
    [
        (activity("Like", ANA, HAT, None), "node 1 .* has no @id"),
        (activity("Like", ANA, HAT, "activities/1"), "'activities/1', which is not an absolute IRI"),
        (activity("Like", ANA, HAT, "_:b0"), "not an absolute IRI"),
        (activity("Like", None, HAT), "has no actor"),
        (activity("Like", ANA, None), "has no object"),
        (activity("Like", "users/ana", HAT), "its actor has the id 'users/ana'"),
        (activity("Like", ANA, {"@value": "a hat"}), "must be a node or an IRI, not a literal"),
        (activity("Wave", ANA, HAT), "has type Wave, which maps to no interaction"),
        ({"@id": "https://s.example/x", AS + "actor": [{"@id": ANA}]}, "has no @type"),
        (activity("Like", ANA, HAT, time="yesterday"), "'yesterday' is neither"),
        (activity("Undo", ANA, {"@id": "https://s.example/never"}), "was never mapped"),
        (activity("Undo", BO, activity("Like", ANA, HAT, "https://s.example/a/9")), "cannot undo an activity of"),
        ("just a string", "is str, not a JSON-LD node"),
    ],
)
def test_bad_nodes_are_refused_naming_the_node(node, message):
    mapper = ActivityMapper()
    good = activity("Like", BO, CAPE, "https://s.example/ok")
    with pytest.raises(MappingError, match=message):
        mapper.map([good, node])
    # nothing of the refused batch was remembered
    with pytest.raises(MappingError, match="was never mapped"):
        mapper.map([activity("Undo", BO, {"@id": "https://s.example/ok"})])


def test_graphs_are_opened_and_iris_checked():
    [i] = ActivityMapper().map([{"@graph": [activity("Like", ANA, HAT)]}]).interactions
    assert i.item == HAT
    assert is_absolute_iri("urn:uuid:1234") and is_absolute_iri("did:example:ana")
    assert not any(is_absolute_iri(v) for v in ("", "hat", "/items/hat", "_:b1", "http:", None, 3))
