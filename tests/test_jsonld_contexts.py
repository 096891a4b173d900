"""Offline JSON-LD: bundled contexts, the document loader, vocabularies registered by plugins."""

import json

import pytest
from conftest import vocabulary_plugins
from pyld import jsonld as pyld

from backpack import InvalidInputError
from backpack.errors import UnknownContextError
from backpack.jsonld.contexts import (
    AS2_CONTEXT,
    BACKPACK_CONTEXT,
    BACKPACK_NS,
    BUNDLED,
    SCHEMA_CONTEXT,
    SECURITY_V1_CONTEXT,
)
from backpack.jsonld.loader import ContextLoader
from backpack.jsonld.processing import compact, expand, normalize

pytestmark = pytest.mark.usefixtures("no_network")

AS = "https://www.w3.org/ns/activitystreams#"
SCHEMA = "http://schema.org/"
SEC = "https://w3id.org/security#"
XSD = "http://www.w3.org/2001/XMLSchema#"


def test_an_activitystreams_like_expands_to_as2_iris(jsonld_loader):
    like = {
        "@context": AS2_CONTEXT,
        "type": "Like",
        "id": "https://social.example/likes/1",
        "actor": "https://social.example/alice",
        "object": "https://worlds.example/items/hat",
        "published": "2026-05-01T12:00:00Z",
        "nameMap": {"en": "hat", "fr": "chapeau"},
    }
    [node] = expand(like, loader=jsonld_loader)
    assert node["@type"] == [AS + "Like"] and node["@id"] == "https://social.example/likes/1"
    assert node[AS + "actor"] == [{"@id": "https://social.example/alice"}]
    assert node[AS + "object"] == [{"@id": "https://worlds.example/items/hat"}]
    assert node[AS + "published"] == [{"@type": XSD + "dateTime", "@value": "2026-05-01T12:00:00Z"}]
    assert sorted(node[AS + "name"], key=lambda v: v["@language"]) == [
        {"@value": "hat", "@language": "en"},
        {"@value": "chapeau", "@language": "fr"},
    ]


def test_ordered_items_keep_their_order_and_unknown_terms_stay_out_of_the_graph(jsonld_loader):
    doc = {
        "@context": AS2_CONTEXT,
        "type": "OrderedCollection",
        "totalItems": 2,
        "orderedItems": ["https://x.example/b", "https://x.example/a"],
        "notAnAs2Term": 1,
    }
    [node] = expand(doc, loader=jsonld_loader)
    assert node[AS + "items"] == [{"@list": [{"@id": "https://x.example/b"}, {"@id": "https://x.example/a"}]}]
    assert node[AS + "totalItems"] == [{"@type": XSD + "nonNegativeInteger", "@value": 2}]
    # AS2's "@vocab": "_:" makes an unknown term a blank-node property: never an IRI, not in the RDF graph
    assert "_:notAnAs2Term" in node and "notAnAs2Term" not in normalize(doc, loader=jsonld_loader)


@pytest.mark.parametrize(
    "url",
    [
        SCHEMA_CONTEXT,
        "https://schema.org/",
        "http://schema.org",
        "http://schema.org/",
        "https://schema.org/docs/jsonldcontext.jsonld",
    ],
)
def test_every_spelling_of_schema_org_serves_the_one_document(jsonld_loader, url):
    model = {
        "@context": url,
        "@type": "3DModel",
        "@id": "https://worlds.example/items/hat",
        "name": "Hat",
        "keywords": "hat, red",
        "author": "https://worlds.example/users/bob",
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "dateCreated": "2026-01-02T03:04:05Z",
        "encodingFormat": "model/gltf-binary",
        "contentUrl": "https://cdn.example/hat.glb",
    }
    [node] = expand(model, loader=jsonld_loader)
    assert node["@type"] == [SCHEMA + "3DModel"]
    assert node[SCHEMA + "author"] == [{"@id": "https://worlds.example/users/bob"}]
    assert node[SCHEMA + "license"] == [{"@id": "https://creativecommons.org/licenses/by/4.0/"}]
    assert node[SCHEMA + "contentUrl"] == [{"@id": "https://cdn.example/hat.glb"}]
    assert node[SCHEMA + "dateCreated"] == [{"@type": XSD + "dateTime", "@value": "2026-01-02T03:04:05Z"}]
    assert node[SCHEMA + "name"] == [{"@value": "Hat"}]
    assert jsonld_loader.context(url) is jsonld_loader.context(SCHEMA_CONTEXT)  # parsed once, one cached document


def test_schema_org_actions_expand_with_agent_object_and_times(jsonld_loader):
    for action in (
        "LikeAction",
        "DislikeAction",
        "WatchAction",
        "ViewAction",
        "ReadAction",
        "ListenAction",
        "PlayAction",
        "BuyAction",
        "ShareAction",
        "FollowAction",
        "AddAction",
    ):
        doc = {
            "@context": "https://schema.org",
            "@type": action,
            "agent": "https://p.example/u",
            "object": "https://p.example/i",
            "startTime": "2026-03-01T10:00:00Z",
        }
        [node] = expand(doc, loader=jsonld_loader)
        assert node["@type"] == [SCHEMA + action]
        assert node[SCHEMA + "agent"] == [{"@id": "https://p.example/u"}]
        assert node[SCHEMA + "object"] == [{"@id": "https://p.example/i"}]
        assert node[SCHEMA + "startTime"][0]["@type"] == XSD + "dateTime"


def test_a_mastodon_style_actor_with_security_context_expands(jsonld_loader):
    actor = {
        "@context": [
            "https://www.w3.org/ns/activitystreams",
            "https://w3id.org/security/v1",
            {
                "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
                "sensitive": "as:sensitive",
                "toot": "http://joinmastodon.org/ns#",
                "featured": {"@id": "toot:featured", "@type": "@id"},
                "schema": "http://schema.org#",
                "PropertyValue": "schema:PropertyValue",
                "value": "schema:value",
            },
        ],
        "id": "https://social.example/users/alice",
        "type": "Person",
        "preferredUsername": "alice",
        "inbox": "https://social.example/users/alice/inbox",
        "featured": "https://social.example/users/alice/f",
        "publicKey": {
            "id": "https://social.example/users/alice#main-key",
            "owner": "https://social.example/users/alice",
            "publicKeyPem": "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----\n",
        },
        "attachment": [{"type": "PropertyValue", "name": "Website", "value": "https://alice.example"}],
    }
    [node] = expand(actor, loader=jsonld_loader)
    assert node["@type"] == [AS + "Person"]
    assert node["http://www.w3.org/ns/ldp#inbox"] == [{"@id": "https://social.example/users/alice/inbox"}]
    assert node["http://joinmastodon.org/ns#featured"] == [{"@id": "https://social.example/users/alice/f"}]
    [key] = node[SEC + "publicKey"]
    assert key["@id"] == "https://social.example/users/alice#main-key"
    assert key[SEC + "owner"] == [{"@id": "https://social.example/users/alice"}]
    assert key[SEC + "publicKeyPem"][0]["@value"].startswith("-----BEGIN PUBLIC KEY-----")
    [field] = node[AS + "attachment"]
    assert field["@type"] == ["http://schema.org#PropertyValue"]


def test_security_v2_imports_v1_offline(jsonld_loader):
    doc = {
        "@context": "https://w3id.org/security/v2",
        "id": "https://k.example/1",
        "owner": "https://k.example/o",
        "verificationMethod": "https://k.example/key",
    }
    [node] = expand(doc, loader=jsonld_loader)
    assert node[SEC + "owner"] == [{"@id": "https://k.example/o"}]
    assert node[SEC + "verificationMethod"] == [{"@id": "https://k.example/key"}]


def test_backpack_terms_expand_in_the_backpack_namespace(jsonld_loader):
    doc = {
        "@context": [AS2_CONTEXT, BACKPACK_CONTEXT],
        "type": "OrderedCollection",
        "recommendedFor": "https://p.example/u",
        "orderedItems": [{"id": "https://p.example/i", "score": 0.75, "rank": 1, "itemKind": "hat"}],
    }
    [node] = expand(doc, loader=jsonld_loader)
    assert node[BACKPACK_NS + "recommendedFor"] == [{"@id": "https://p.example/u"}]
    [item] = node[AS + "items"][0]["@list"]
    assert item[BACKPACK_NS + "score"] == [{"@type": XSD + "double", "@value": 0.75}]
    assert item[BACKPACK_NS + "rank"] == [{"@type": XSD + "nonNegativeInteger", "@value": 1}]
    assert item[BACKPACK_NS + "itemKind"] == [{"@value": "hat"}]


def test_an_unknown_remote_context_is_refused_with_how_to_register_it(jsonld_loader):
    doc = {"@context": "https://unknown.example/ctx.jsonld", "name": "x"}
    with pytest.raises(UnknownContextError) as caught:
        expand(doc, loader=jsonld_loader)
    message = str(caught.value)
    assert "https://unknown.example/ctx.jsonld" in message
    assert "register_vocabularies" in message and "contexts=" in message
    assert caught.value.code == "unknown_context" and isinstance(caught.value, InvalidInputError)
    with pytest.raises(pyld.JsonLdError) as wrapped:  # PyLD called directly wraps the loader's error
        pyld.expand({"@context": "https://unknown.example/other", "a": 1}, jsonld_loader.options())
    assert isinstance(wrapped.value.__cause__, UnknownContextError)


@pytest.mark.parametrize(
    "url",
    [
        "https://backpack.dev/ns/v1/",
        "http://backpack.dev/ns/v1",
        "https://www.w3.org/ns/activitystreams/",
        "https://w3id.org/security/v1/",
    ],
)
def test_no_spelling_is_guessed_that_the_real_server_does_not_answer(jsonld_loader, url):
    assert not jsonld_loader.serves(url)
    with pytest.raises(UnknownContextError):
        jsonld_loader.document(url)


def test_a_fragment_never_reaches_a_server_so_it_is_ignored(jsonld_loader):
    assert jsonld_loader.context(AS2_CONTEXT + "#") is jsonld_loader.context(AS2_CONTEXT)


def test_the_loader_works_as_pyld_document_loader_directly(jsonld_loader):
    remote = jsonld_loader("https://www.w3.org/ns/activitystreams", {})
    assert remote["documentUrl"] == "https://www.w3.org/ns/activitystreams"
    assert remote["document"]["@context"]["Like"] == "as:Like"
    remote["document"]["@context"]["Like"] = "changed"  # callers get a copy, the cache is untouched
    [node] = pyld.expand({"@context": AS2_CONTEXT, "type": "Like"}, {"documentLoader": jsonld_loader})
    assert node["@type"] == [AS + "Like"]


def test_a_vocabulary_registered_by_a_plugin_is_served():
    plugins = vocabulary_plugins("game_vocabulary")
    game_loader = ContextLoader(plugins)
    assert (
        game_loader.source("https://games.example/ns/v1") == "<https://games.example/ns/v1> (plugin 'game_vocabulary')"
    )
    for url in ("https://games.example/ns/v1", "http://games.example/ns/v1"):  # the alias it registered
        doc = {"@context": [AS2_CONTEXT, url], "type": "Level", "difficulty": 3, "spawnPoint": "https://g.example/s/1"}
        [node] = expand(doc, loader=game_loader)
        assert node["@type"] == ["https://games.example/ns#Level"]
        assert node["https://games.example/ns#difficulty"] == [{"@type": XSD + "integer", "@value": 3}]
        assert node["https://games.example/ns#spawnPoint"] == [{"@id": "https://g.example/s/1"}]
    assert plugins.registry("vocabularies")["https://games.example/ns/v1"].plugin == "game_vocabulary"
    assert not ContextLoader(vocabulary_plugins()).serves("https://games.example/ns/v1")


def test_contexts_given_explicitly_are_served_and_json_text_is_parsed():
    given = ContextLoader(
        vocabulary_plugins(),
        contexts={"https://local.example/ctx": json.dumps({"@context": {"hue": "https://local.example/ns#hue"}})},
    )
    [node] = expand({"@context": "https://local.example/ctx", "@id": "https://i.example/1", "hue": "red"}, loader=given)
    assert node["https://local.example/ns#hue"] == [{"@value": "red"}]
    with pytest.raises(InvalidInputError, match="not JSON"):
        ContextLoader(vocabulary_plugins(), contexts={"https://local.example/bad": "{oops"})


def test_a_plugin_with_a_malformed_vocabulary_is_reported_and_the_rest_served():
    class Broken:
        from backpack import hookimpl

        @hookimpl
        def register_vocabularies(self, register):
            register("https://broken.example/ctx", {"no": "context"})

    plugins = vocabulary_plugins()
    plugins.register(Broken(), name="broken_vocab")
    broken_loader = ContextLoader(plugins)
    assert not broken_loader.serves("https://broken.example/ctx") and broken_loader.serves(AS2_CONTEXT)
    [info] = [p for p in plugins.describe() if p["name"] == "broken_vocab"]
    assert any("@context" in e for e in info["errors"])


@pytest.mark.parametrize("bundled", BUNDLED, ids=lambda b: b.filename)
def test_each_bundled_context_is_a_valid_json_ld_context(jsonld_loader, bundled):
    active = pyld.JsonLdProcessor().process_context(
        {"mappings": {}, "processingMode": "json-ld-1.1"}, bundled.iri, jsonld_loader.options()
    )
    assert len(active["mappings"]) > 10
    assert all(m["@id"] for m in active["mappings"].values())


SAMPLES = {
    AS2_CONTEXT: {
        "@context": AS2_CONTEXT,
        "id": "https://s.example/a/1",
        "type": "Create",
        "actor": {"id": "https://s.example/u", "type": "Person", "name": "Ünïcode"},
        "object": {
            "type": "Note",
            "contentMap": {"en": "hi", "de": "hallo"},
            "tag": [{"type": "Mention", "href": "https://s.example/v"}],
            "published": "2026-01-01T00:00:00Z",
        },
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "orderedItems": ["https://s.example/x"],
    },
    SCHEMA_CONTEXT: {
        "@context": SCHEMA_CONTEXT,
        "@type": "VideoGame",
        "@id": "https://g.example/game",
        "name": "Kart",
        "gamePlatform": "PC",
        "author": {"@type": "Person", "name": "Ana"},
        "offers": {"@type": "Offer", "price": "4.99", "priceCurrency": "EUR"},
        "image": {"@type": "ImageObject", "contentUrl": "https://g.example/i.png"},
        "dateModified": "2026-02-02T02:02:02Z",
        "isFamilyFriendly": True,
    },
    SECURITY_V1_CONTEXT: {
        "@context": SECURITY_V1_CONTEXT,
        "id": "https://k.example/key",
        "owner": "https://k.example/",
        "publicKeyPem": "PEM",
        "created": "2026-01-01T00:00:00Z",
    },
    "https://w3id.org/security/v2": {
        "@context": "https://w3id.org/security/v2",
        "id": "https://k.example/d",
        "assertionMethod": ["https://k.example/k1", "https://k.example/k2"],
        "controller": "https://k.example/",
    },
    BACKPACK_CONTEXT: {
        "@context": BACKPACK_CONTEXT,
        "id": "https://b.example/r",
        "type": "RecommendationList",
        "recommendedFor": "https://b.example/u",
        "algorithm": "itemknn",
        "children": ["https://b.example/n1", "https://b.example/n2"],
        "score": 0.5,
        "rank": 3,
        "generatedAt": "2026-01-01T00:00:00Z",
    },
}


@pytest.mark.parametrize("iri", list(SAMPLES))
def test_a_sample_document_round_trips_through_compaction(jsonld_loader, iri):
    """expand -> compact -> expand gives the same RDF graph (URDNA2015 canonical N-Quads)."""
    document = SAMPLES[iri]
    expanded = expand(document, loader=jsonld_loader)
    compacted = compact(expanded, iri, loader=jsonld_loader)
    again = expand(compacted, loader=jsonld_loader)
    before, after = normalize(expanded, loader=jsonld_loader), normalize(again, loader=jsonld_loader)
    assert before and before == after
    assert before.count("\n") >= 3  # the sample really produced a graph


def test_two_loaders_serving_one_url_differently_do_not_share_processed_contexts():
    # PyLD's default cache is process-wide and keyed by URL: each loader must use its own
    red = ContextLoader(
        vocabulary_plugins(), contexts={"https://local.example/c": {"@context": {"hue": "https://red.example/hue"}}}
    )
    blue = ContextLoader(
        vocabulary_plugins(), contexts={"https://local.example/c": {"@context": {"hue": "https://blue.example/hue"}}}
    )
    doc = {"@context": "https://local.example/c", "@id": "https://i.example/1", "hue": "x"}
    assert "https://red.example/hue" in expand(doc, loader=red)[0]
    assert "https://blue.example/hue" in expand(doc, loader=blue)[0]


def test_one_loader_serves_many_threads(jsonld_loader):
    from concurrent.futures import ThreadPoolExecutor

    def expand_one(i):
        doc = {"@context": [AS2_CONTEXT, {"n": f"https://t.example/{i % 5}#n"}], "type": "Note", "n": i}
        return expand(doc, loader=jsonld_loader)[0]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(expand_one, range(200)))
    assert all(
        r["@type"] == [AS + "Note"] and r[f"https://t.example/{i % 5}#n"] == [{"@value": i}]
        for i, r in enumerate(results)
    )


def test_the_default_loader_follows_plugins_registered_later(monkeypatch):
    from plugin_samples import game_vocabulary

    import backpack.jsonld.loader as loader_module

    plugins = vocabulary_plugins()
    monkeypatch.setattr(loader_module, "get_plugins", lambda: plugins)
    monkeypatch.setattr(loader_module, "_default", None)
    assert not loader_module.default_loader().serves(game_vocabulary.GAME_CONTEXT)
    assert loader_module.default_loader() is loader_module.default_loader()  # built once while nothing changes
    plugins.register(game_vocabulary, name="game_vocabulary")
    assert loader_module.default_loader().serves(game_vocabulary.GAME_CONTEXT)
