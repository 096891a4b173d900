"""JSON-LD documents in: items kept expanded, actors as users, activities as interactions, typed errors."""

from __future__ import annotations

import json
from importlib import resources

import pytest

import backpack
from backpack.content.features import item_features
from backpack.errors import MappingError
from backpack.jsonld.activities import AS, SCHEMA
from backpack.jsonld.contexts import AS2_CONTEXT, SCHEMA_CONTEXT, SECURITY_V1_CONTEXT
from backpack.jsonld.processing import expand_documents
from backpack.jsonld.records import ACTOR_TYPES, ITEM_TYPES, RecordMapper

ANA = "https://social.example/users/ana"
BOT = "https://social.example/users/curator-bot"
HAT = "https://assets.example/items/hat"
BOOT = "https://assets.example/items/boot"

HAT_COMPACT = {
    "@context": SCHEMA_CONTEXT,
    "@id": HAT,
    "@type": "3DModel",
    "name": "Wizard hat",
    "keywords": "hat, wizard",
    "creator": {"@id": ANA, "@type": "Person", "name": "Ana"},
    "license": "https://creativecommons.org/licenses/by/4.0/",
}


def mixed_graph() -> dict:
    """A Fediverse-style document: an actor, an item, and activities with embedded nodes."""
    return {
        "@context": AS2_CONTEXT,
        "@graph": [
            {"id": ANA, "type": "Person", "name": "Ana", "preferredUsername": "ana"},
            {"id": BOOT, "type": "Image", "name": "Leather boot", "tag": [{"type": "Hashtag", "name": "#pirate"}]},
            {"id": "https://social.example/activities/1", "type": "Like", "actor": ANA, "object": BOOT},
            {
                "id": "https://social.example/activities/2",
                "type": "Create",
                "actor": {"id": BOT, "type": "Service", "name": "Curator"},
                "object": {"id": HAT, "type": "Note", "content": "<p>A <b>wizard</b> hat</p>"},
            },
        ],
    }


def test_a_mixed_document_becomes_users_items_and_interactions():
    engine = backpack.Engine()
    counts = engine.ingest(mixed_graph())
    assert counts == {"interactions": 2, "undone": 0, "removed": 0, "items": 2, "users": 2}
    assert engine.bags.bag(ANA) == {BOOT: 3.0} and engine.bags.bag(BOT) == {HAT: 5.0}
    assert set(engine.user_descriptions.snapshot()) == {ANA, BOT}
    assert engine.item_kinds.get(BOOT) == "Image" and engine.item_kinds.get(HAT) == "Note"
    # kept expanded: absolute IRIs as keys, every value a list
    boot = engine.item_descriptions.get(BOOT)
    assert boot["@type"] == [AS + "Image"] and boot[AS + "name"] == [{"@value": "Leather boot"}]
    assert all(key.startswith(("@", "http")) for key in boot)
    assert engine.user_descriptions.get(BOT)["@type"] == [AS + "Service"]
    assert "keyword:pirate" in item_features(boot)


def test_items_are_kept_expanded_and_their_features_match_the_compact_form():
    engine = backpack.Engine()
    assert engine.put_items(HAT_COMPACT) == 1
    node = engine.item_descriptions.get(HAT)
    assert node == expand_documents(HAT_COMPACT)[0]
    assert node[SCHEMA + "creator"][0]["@id"] == ANA  # nested nodes stay inside the item
    assert item_features(node) == item_features(HAT_COMPACT)
    assert {
        "type:3DModel",
        "keyword:wizard",
        f"creator:{ANA}",
        "license:https://creativecommons.org/licenses/by/4.0/",
    } <= set(item_features(node))


def test_a_node_without_context_is_read_with_schema_org_and_backpack_terms():
    engine = backpack.Engine()
    engine.put_items({"@id": "urn:item:1", "@type": "Product", "name": "Boat", "feature": "sails"})
    node = engine.item_descriptions.get("urn:item:1")
    assert node["@type"] == [SCHEMA + "Product"] and node[SCHEMA + "name"] == [{"@value": "Boat"}]
    assert node["https://backpack.dev/ns#feature"] == [{"@value": "sails"}]


BAD_NODES = [
    ({"@context": SCHEMA_CONTEXT, "@type": "3DModel", "name": "anonymous"}, r"node 1 \(a 3DModel\) has no @id"),
    ({"@context": SCHEMA_CONTEXT, "@id": "items/7", "@type": "3DModel"}, r"'items/7', which is not an absolute IRI"),
    ({"@context": SCHEMA_CONTEXT, "@id": "_:b0", "@type": "3DModel"}, "not an absolute IRI"),
    ({"@context": SCHEMA_CONTEXT, "@id": HAT, "name": "no type"}, f"node 1 <{HAT}> has no @type"),
    ({"@context": SCHEMA_CONTEXT, "@id": HAT, "@type": "Offer"}, r"node 1 \(a Offer\) has type Offer, which is no "),
    (
        {"@context": [SCHEMA_CONTEXT, {"Gizmo": "https://vendor.example/Gizmo"}], "@id": HAT, "@type": "Gizmo"},
        "register the type",
    ),
    ({"@context": AS2_CONTEXT, "id": "https://s.example/a/1", "type": "Like", "actor": ANA}, "has no object"),
    (
        {"@context": AS2_CONTEXT, "id": "https://s.example/a/1", "type": "Like", "actor": "ana", "object": HAT},
        "its actor has the id 'ana', which is not an absolute IRI",
    ),
]


@pytest.mark.parametrize("bad, message", BAD_NODES)
def test_bad_nodes_get_a_typed_error_naming_them_and_nothing_is_stored(bad, message):
    engine = backpack.Engine()
    good = {"@context": SCHEMA_CONTEXT, "@id": BOOT, "@type": "3DModel"}
    with pytest.raises(MappingError, match=message) as caught:
        engine.ingest([good, bad])
    assert caught.value.code == "jsonld_mapping"
    assert len(engine.item_descriptions) == 0 and engine.bags.nnz == 0 and engine.bags.n_items == 0


def test_put_items_and_put_users_take_only_their_own_sort():
    engine = backpack.Engine()
    person = {"@context": AS2_CONTEXT, "id": ANA, "type": "Person"}
    with pytest.raises(MappingError, match=r"is an actor \(a user\), but only items are taken here"):
        engine.put_items(person)
    with pytest.raises(MappingError, match="is an item, but only users are taken here"):
        engine.put_users(HAT_COMPACT)
    assert engine.put_users([person, {"@context": SCHEMA_CONTEXT, "@id": BOT, "@type": "Organization"}]) == 2
    assert engine.user_descriptions.get(BOT)["@type"] == [SCHEMA + "Organization"]


def test_a_fediverse_actor_document_with_security_context_becomes_a_user():
    actor = {
        "@context": [AS2_CONTEXT, SECURITY_V1_CONTEXT],
        "id": ANA,
        "type": "Person",
        "preferredUsername": "ana",
        "inbox": f"{ANA}/inbox",
        "publicKey": {"id": f"{ANA}#main-key", "owner": ANA, "publicKeyPem": "-----BEGIN PUBLIC KEY-----"},
    }
    engine = backpack.Engine()
    assert engine.ingest(actor)["users"] == 1
    node = engine.user_descriptions.get(ANA)
    assert node["https://w3id.org/security#publicKey"][0]["@id"] == f"{ANA}#main-key"


def test_raw_activities_take_the_fast_path_and_undo_removes():
    engine = backpack.Engine()
    like = {
        "@context": AS2_CONTEXT,
        "id": "https://s.example/a/1",
        "type": "Like",
        "actor": ANA,
        "object": HAT,
        "published": "2026-11-23T12:00:00Z",
    }
    assert engine.ingest(json.dumps(like))["interactions"] == 1
    assert engine.bags.bag(ANA) == {HAT: 3.0}
    undo = {
        "@context": AS2_CONTEXT,
        "id": "https://s.example/a/2",
        "type": "Undo",
        "actor": ANA,
        "object": "https://s.example/a/1",
    }
    assert engine.ingest(undo) == {"interactions": 0, "undone": 1, "removed": 1, "items": 0, "users": 0}
    assert engine.bags.bag(ANA) == {}


def test_activity_weights_are_configurable_on_the_engine():
    engine = backpack.Engine(activity_weights={"Like": 7})
    engine.ingest({"@context": AS2_CONTEXT, "id": "https://s.example/a/1", "type": "Like", "actor": ANA, "object": HAT})
    assert engine.bags.bag(ANA) == {HAT: 7.0}


def test_extra_types_can_be_registered():
    gizmo = {"@context": {"@vocab": "https://vendor.example/"}, "@id": HAT, "@type": "Gizmo"}
    with pytest.raises(MappingError):
        RecordMapper().map(expand_documents(gizmo))
    records = RecordMapper(item_types=["https://vendor.example/Gizmo"]).map(expand_documents(gizmo))
    assert [(r.id, r.kind) for r in records.items] == [(HAT, "Gizmo")]


def test_users_and_items_survive_save_and_open(tmp_path):
    engine = backpack.Engine()
    engine.ingest(mixed_graph())
    engine.save(tmp_path / "state")
    reopened = backpack.Engine.open(tmp_path / "state")
    assert reopened.user_descriptions.snapshot() == engine.user_descriptions.snapshot()
    assert reopened.item_descriptions.snapshot() == engine.item_descriptions.snapshot()
    assert reopened.item_kinds.get(HAT) == "Note"


def bundled(name: str) -> dict:
    return json.loads((resources.files("backpack.jsonld.contexts") / name).read_text(encoding="utf-8"))["@context"]


def test_the_type_tables_name_only_types_the_bundled_contexts_define():
    schema, as2, bp = bundled("schemaorg.jsonld"), bundled("activitystreams.jsonld"), bundled("backpack-v1.jsonld")
    for iri in ITEM_TYPES | ACTOR_TYPES:
        name = iri.rsplit("/", 1)[-1].rsplit("#", 1)[-1]
        table = schema if "schema.org/" in iri else as2 if iri.startswith(AS) else bp
        if name != "GodotScene":  # written by scene ingestion under its own backpack: prefix
            assert name in table, iri
