"""Recommendations out as AS2 OrderedCollections; items re-emitted compacted; round trips keep the graph."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

import backpack
from backpack.jsonld.activities import ActivityMapper
from backpack.jsonld.as2_output import OUTPUT_CONTEXT, compact_item, recommendations_collection
from backpack.jsonld.processing import compact, expand, normalize

ANA = "https://social.example/users/ana"
ITEMS = [f"https://assets.example/items/{n}" for n in range(6)]


def same_graph(a, b) -> bool:
    return normalize(a) == normalize(b)


def test_a_collection_lists_items_with_scores_and_ranks_in_order():
    when = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
    doc = recommendations_collection(
        [(ITEMS[2], 0.9), (ITEMS[0], 0.4)],
        for_user=ANA,
        algorithm="als",
        generated_at=when,
        collection_id="https://bp.example/lists/1",
    )
    assert doc["@context"] == OUTPUT_CONTEXT
    assert doc["type"] == "OrderedCollection" and doc["totalItems"] == 2 and doc["id"].endswith("/lists/1")
    assert doc["recommendedFor"] == ANA and doc["generatedAt"] == "2026-11-23T12:00:00Z"
    assert [(e["recommendedItem"], e["score"], e["rank"]) for e in doc["orderedItems"]] == [
        (ITEMS[2], 0.9, 1),
        (ITEMS[0], 0.4, 2),
    ]
    # the order survives expansion (an @list), and compacting the expansion gives the same graph
    [expanded] = expand(doc)
    listed = expanded["https://www.w3.org/ns/activitystreams#items"][0]["@list"]
    assert [e["https://backpack.dev/ns#recommendedItem"][0]["@id"] for e in listed] == [ITEMS[2], ITEMS[0]]
    assert same_graph(compact([expanded], OUTPUT_CONTEXT), doc)


def test_ids_must_be_iris():
    with pytest.raises(backpack.InvalidInputError, match="not an absolute IRI"):
        recommendations_collection([("hat", 1.0)])
    with pytest.raises(backpack.InvalidInputError, match="for_user"):
        recommendations_collection([], for_user="ana")


def test_the_engine_streams_activities_in_and_collections_out():
    engine = backpack.Engine()
    mapper = ActivityMapper()
    activities = [
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": f"https://social.example/a/{k}",
            "type": kind,
            "actor": actor,
            "object": item,
        }
        for k, (kind, actor, item) in enumerate(
            [
                ("Like", ANA, ITEMS[0]),
                ("View", ANA, ITEMS[1]),
                ("Like", "https://social.example/users/bo", ITEMS[0]),
                ("Like", "https://social.example/users/bo", ITEMS[2]),
                ("Announce", "https://social.example/users/cy", ITEMS[1]),
                ("Like", "https://social.example/users/cy", ITEMS[2]),
            ]
        )
    ]
    engine.apply_activities(mapper.map([node for doc in activities for node in expand(doc)]))
    engine.fit("itemknn", k=10)
    out = engine.recommend_collection(ANA, n=2)
    assert [e["recommendedItem"] for e in out["orderedItems"]] == [r.item for r in engine.recommend(ANA, n=2)]
    assert out["algorithm"] == "itemknn" and out["recommendedFor"] == ANA
    similar = engine.similar_collection(ITEMS[0], n=2)
    assert similar["similarTo"] == ITEMS[0] and len(similar["orderedItems"]) == 2


@pytest.mark.parametrize(
    "document",
    [
        {
            "@context": "https://schema.org",
            "@id": "https://assets.example/items/hat",
            "@type": "3DModel",
            "name": "Pirate hat",
            "keywords": "hat, pirate",
            "dateCreated": "2026-01-02T03:04:05Z",
            "creator": {"@id": "https://social.example/users/ana", "@type": "Person", "name": "Ana"},
        },
        {
            "@context": "https://www.w3.org/ns/activitystreams",
            "id": "https://social.example/notes/1",
            "type": "Note",
            "nameMap": {"en": "A hat", "fr": "Un chapeau"},
            "attributedTo": ANA,
            "tag": [{"type": "Hashtag", "name": "#hat"}],
        },
        [
            {
                "@id": "https://assets.example/items/x",
                "@type": ["http://schema.org/Product"],
                "http://schema.org/name": [{"@value": "Expanded already"}],
            }
        ],
    ],
)
def test_items_are_re_emitted_compacted_with_the_same_graph(document):
    out = compact_item(document)
    assert out["@context"][-1] == "https://backpack.dev/ns/v1"
    assert same_graph(out, document)
    assert same_graph(expand(out), expand(document))


def test_cli_imports_activities_and_items_from_one_jsonld_file(tmp_path, capsys):
    import json

    from backpack.cli.main import main

    doc = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "@graph": [
            {"id": ITEMS[0], "type": "Note", "name": "a hat"},
            {"id": "https://social.example/a/1", "type": "Like", "actor": ANA, "object": ITEMS[0]},
            {
                "id": "https://social.example/a/2",
                "type": "Like",
                "actor": ANA,
                "object": ITEMS[1],
                "published": "2026-11-01T00:00:00Z",
            },
            {
                "id": "https://social.example/a/3",
                "type": "Undo",
                "actor": ANA,
                "object": {"id": "https://social.example/a/1", "type": "Like", "actor": ANA, "object": ITEMS[0]},
            },
        ],
    }
    path = tmp_path / "outbox.jsonld"
    path.write_text(json.dumps(doc))
    data = tmp_path / "data"
    assert main(["import", str(path), "--data-dir", str(data), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert (summary["activities"], summary["items"]) == (3, 1)
    engine = backpack.Engine.open(data)
    assert engine.bags.bag(ANA) == {ITEMS[1]: 3.0}  # liked twice, one undone
    bad = tmp_path / "bad.jsonld"
    bad.write_text(
        json.dumps(
            {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": "https://s.example/a/9",
                "type": "Like",
                "object": ITEMS[0],
            }
        )
    )
    assert main(["import", str(bad), "--data-dir", str(data)]) == 2
    assert "has no actor" in capsys.readouterr().err
    assert backpack.Engine.open(data).bags.bag(ANA) == {ITEMS[1]: 3.0}  # nothing of the bad file stored
