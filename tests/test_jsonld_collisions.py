"""Namespace collisions: detected at load time, named precisely, resolved by a policy that logs what it did."""

import logging

import pytest
from conftest import vocabulary_plugins

from backpack import InvalidInputError, get_plugins
from backpack.errors import NamespaceCollisionError
from backpack.jsonld.collisions import POLICIES
from backpack.jsonld.contexts import AS2_CONTEXT, BACKPACK_CONTEXT
from backpack.jsonld.loader import ContextLoader
from backpack.jsonld.processing import check_vocabularies, compact, effective_context, expand

pytestmark = pytest.mark.usefixtures("no_network")

AS = "https://www.w3.org/ns/activitystreams#"
BP = "https://backpack.dev/ns#"
FOAF_NAME = "http://xmlns.com/foaf/0.1/name"
ACME = "https://acme.example/ns/v1"
AS2_SOURCE = "<https://www.w3.org/ns/activitystreams> (plugin 'vocabularies')"
BACKPACK_SOURCE = "<https://backpack.dev/ns/v1> (plugin 'vocabularies')"
ACME_SOURCE = "<https://acme.example/ns/v1> (plugin 'clashing_vocabulary')"


def collision_records(caplog):
    return [
        r for r in caplog.records if r.name == "backpack.jsonld.processing" and "namespace collision" in r.getMessage()
    ]


def assert_logged(caplog, *, term, first_iri, new_iri, first_source, new_source, action):
    [record] = collision_records(caplog)
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    for part in (repr(term), f"<{first_iri}>", f"<{new_iri}>", first_source, new_source, action):
        assert part in message, (part, message)


# -- a term rebound by an inline context ------------------------------------------

FOAF_DOC = {"@context": [AS2_CONTEXT, {"name": FOAF_NAME}], "type": "Note", "id": "https://n.example/1", "name": "N"}
FOAF_SOURCE = "inline context #2 of the document"


def test_a_rebound_term_is_an_error_naming_term_iris_and_sources(jsonld_loader, caplog):
    with pytest.raises(NamespaceCollisionError) as caught:
        expand(FOAF_DOC, loader=jsonld_loader)
    message = str(caught.value)
    for part in ("'name'", f"<{AS}name>", f"<{FOAF_NAME}>", AS2_SOURCE, FOAF_SOURCE, "keep_first"):
        assert part in message
    assert caught.value.code == "namespace_collision" and isinstance(caught.value, InvalidInputError)
    collision = caught.value.collision
    assert (collision.term, collision.kind, collision.first_iri, collision.new_iri) == (
        "name",
        "term",
        AS + "name",
        FOAF_NAME,
    )
    assert not collision_records(caplog)  # an error is raised, not logged


def test_the_namespace_policy_keeps_the_newcomer_usable_under_its_prefix(jsonld_loader):
    merged = effective_context(FOAF_DOC, loader=jsonld_loader, policy="namespace")
    [collision] = merged.collisions
    assert collision.action == "renamed to 'doc2:name'"
    assert merged.context["doc2"]["@id"] == "http://xmlns.com/foaf/0.1/"
    doc = {"@context": merged.context, "id": "https://n.example/1", "name": "as", "doc2:name": "foaf"}
    [node] = expand(doc, loader=jsonld_loader)
    assert node[AS + "name"] == [{"@value": "as"}] and node[FOAF_NAME] == [{"@value": "foaf"}]


def test_the_same_binding_twice_is_no_collision(jsonld_loader, caplog):
    doc = {
        "@context": [AS2_CONTEXT, {"sensitive": "as:sensitive", "name": "as:name", "Like": AS + "Like"}],
        "type": "Like",
        "sensitive": True,
    }
    merged = effective_context(doc, loader=jsonld_loader)
    assert merged.collisions == [] and not collision_records(caplog)
    [node] = expand(doc, loader=jsonld_loader)
    assert node["@type"] == [AS + "Like"] and node[AS + "sensitive"] == [{"@value": True}]


# -- a prefix rebound --------------------------------------------------------------

PREFIX_DOC = {
    "@context": [AS2_CONTEXT, {"as": "http://activitystrea.ms/2.0/"}],
    "type": "as:Note",
    "id": "https://n.example/2",
}


def test_a_rebound_prefix_is_an_error(jsonld_loader):
    with pytest.raises(
        NamespaceCollisionError,
        match=r"prefix 'as' is bound to <https://www.w3.org/ns/activitystreams#>"
        r" by .* and to <http://activitystrea.ms/2.0/> by inline context #2",
    ):
        expand(PREFIX_DOC, loader=jsonld_loader)


# -- a protected term redefined by a document ------------------------------------------

PROTECTED_DOC = {
    "@context": [AS2_CONTEXT, BACKPACK_CONTEXT, {"score": "https://evil.example/score"}],
    "type": "Note",
    "id": "https://n.example/3",
    "score": 0.5,
}


def test_redefining_a_protected_backpack_term_is_an_error_naming_it(jsonld_loader):
    with pytest.raises(NamespaceCollisionError) as caught:
        expand(PROTECTED_DOC, loader=jsonld_loader)
    assert caught.value.collision.kind == "protected"
    message = str(caught.value)
    for part in (
        "protected term 'score'",
        f"<{BP}score>",
        "<https://evil.example/score>",
        BACKPACK_SOURCE,
        "inline context #3 of the document",
    ):
        assert part in message


def test_even_a_coercion_change_to_a_protected_term_is_a_collision(jsonld_loader):
    doc = {
        "@context": [
            BACKPACK_CONTEXT,
            {"score": {"@id": BP + "score", "@type": "http://www.w3.org/2001/XMLSchema#string"}},
        ],
        "score": "high",
    }
    with pytest.raises(NamespaceCollisionError, match="protected term 'score'"):
        expand(doc, loader=jsonld_loader)


def test_a_compaction_context_is_checked_too(jsonld_loader):
    with pytest.raises(NamespaceCollisionError, match="protected term 'rank'"):
        compact(
            {"@id": "https://n.example/4"},
            [BACKPACK_CONTEXT, {"rank": "https://evil.example/rank"}],
            loader=jsonld_loader,
        )


def test_pyld_protected_term_errors_in_scoped_contexts_become_typed_errors(jsonld_loader):
    # a type-scoped context is PyLD's to check: its cryptic error comes out typed, naming the context's terms
    doc = {
        "@context": [
            BACKPACK_CONTEXT,
            {"Thing": {"@id": "https://x.example/Thing", "@context": {"rank": "https://evil.example/rank"}}},
        ],
        "@type": "Thing",
        "rank": 1,
    }
    with pytest.raises(NamespaceCollisionError, match="protected term") as caught:
        expand(doc, loader=jsonld_loader)
    assert "'rank'" in str(caught.value) and caught.value.code == "namespace_collision"


# -- each document case under each policy -------------------------------------------------

# case -> (document, term, first IRI, new IRI, first source, newcomer's source, where the value lands per policy)
CASES = {
    "term": (
        FOAF_DOC,
        "name",
        AS + "name",
        FOAF_NAME,
        AS2_SOURCE,
        FOAF_SOURCE,
        {"keep_first": AS + "name", "keep_last": FOAF_NAME, "namespace": AS + "name"},
    ),
    "prefix": (
        PREFIX_DOC,
        "as",
        AS,
        "http://activitystrea.ms/2.0/",
        AS2_SOURCE,
        "inline context #2 of the document",
        {"keep_first": AS + "Note", "keep_last": "http://activitystrea.ms/2.0/Note", "namespace": AS + "Note"},
    ),
    "protected": (
        PROTECTED_DOC,
        "score",
        BP + "score",
        "https://evil.example/score",
        BACKPACK_SOURCE,
        "inline context #3 of the document",
        {"keep_first": BP + "score", "keep_last": "https://evil.example/score", "namespace": BP + "score"},
    ),
}
RENAMED = {"term": "doc2:name", "prefix": "doc2_as", "protected": "doc3:score"}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("policy", ["keep_first", "keep_last", "namespace"])
def test_each_document_collision_under_each_policy(jsonld_loader, caplog, case, policy):
    document, term, first_iri, new_iri, first_source, new_source, lands = CASES[case]
    caplog.set_level(logging.WARNING, "backpack.jsonld.processing")
    [node] = expand(document, loader=jsonld_loader, policy=policy)
    if case == "prefix":
        assert node["@type"] == [lands[policy]]
    else:
        assert lands[policy] in node
    action = {"keep_first": "kept first", "keep_last": "kept last", "namespace": f"renamed to {RENAMED[case]!r}"}
    assert_logged(
        caplog,
        term=term,
        first_iri=first_iri,
        new_iri=new_iri,
        first_source=first_source,
        new_source=new_source,
        action=action[policy],
    )
    [collision] = effective_context(document, loader=jsonld_loader, policy=policy).collisions
    assert collision.kind == case and collision.action == action[policy]


def test_the_namespace_policy_renames_a_prefix_so_it_still_works(jsonld_loader):
    merged = effective_context(PREFIX_DOC, loader=jsonld_loader, policy="namespace")
    doc = {"@context": merged.context, "type": "doc2_as:Note"}
    assert expand(doc, loader=jsonld_loader)[0]["@type"] == ["http://activitystrea.ms/2.0/Note"]


# -- a plugin vocabulary against a bundled one (at plugin load time) ----------------------


def test_check_vocabularies_names_the_plugin_the_term_and_both_iris():
    with pytest.raises(NamespaceCollisionError) as caught:
        check_vocabularies(vocabulary_plugins("clashing_vocabulary"))
    message = str(caught.value)
    for part in ("'Like'", f"<{AS}Like>", "<https://acme.example/ns#Like>", AS2_SOURCE, ACME_SOURCE):
        assert part in message


def test_under_error_the_colliding_plugin_vocabulary_is_refused_and_reported_the_rest_served():
    plugins = vocabulary_plugins("clashing_vocabulary", "game_vocabulary")
    refusing = ContextLoader(plugins)
    assert refusing.serves(AS2_CONTEXT) and refusing.serves("https://games.example/ns/v1")
    with pytest.raises(NamespaceCollisionError, match="'Like'"):
        expand({"@context": ACME, "stars": 5}, loader=refusing)
    [info] = [p for p in plugins.describe() if p["name"] == "clashing_vocabulary"]
    assert any("is not served" in e and "'Like'" in e for e in info["errors"])


@pytest.mark.parametrize("policy", ["keep_first", "keep_last", "namespace"])
def test_a_plugin_vocabulary_collision_under_each_policy(caplog, policy):
    caplog.set_level(logging.WARNING, "backpack.jsonld.processing")
    collisions = check_vocabularies(vocabulary_plugins("clashing_vocabulary"), policy=policy)
    assert {(c.term, c.kind) for c in collisions} == {("Like", "term"), ("schema", "prefix")}
    assert all(c.first_source.endswith("(plugin 'vocabularies')") and c.new_source == ACME_SOURCE for c in collisions)
    records = collision_records(caplog)
    assert len(records) == 2 and all(r.levelno == logging.WARNING and ACME_SOURCE in r.getMessage() for r in records)

    served = ContextLoader(vocabulary_plugins("clashing_vocabulary"), policy=policy).document(ACME)["@context"]
    if policy == "keep_first":  # the newcomer's clashing bindings are dropped, the rest kept
        assert "Like" not in served and "schema" not in served and "stars" in served
    elif policy == "keep_last":  # each vocabulary is served as registered; a document naming both gets the later
        assert served["Like"] == "https://acme.example/ns#Like"
    else:  # renamed under the plugin's prefix, still usable
        assert "Like" not in served and served["acme:Like"]["@id"] == "https://acme.example/ns#Like"
        assert served["acme_schema"]["@id"] == "https://acme.example/schema/"
        doc = {"@context": ACME, "@type": "acme:Like", "stars": 4}
        acme_loader = ContextLoader(vocabulary_plugins("clashing_vocabulary"), policy=policy)
        assert expand(doc, loader=acme_loader)[0]["@type"] == ["https://acme.example/ns#Like"]


def test_a_plugin_vocabulary_that_only_adds_terms_passes_the_check():
    assert check_vocabularies(vocabulary_plugins("game_vocabulary")) == []


def test_the_installed_vocabularies_do_not_collide():
    assert check_vocabularies(get_plugins()) == []
    assert ContextLoader(get_plugins()).collisions == []


def test_an_unknown_policy_is_refused(jsonld_loader):
    assert POLICIES == ("error", "keep_first", "keep_last", "namespace")
    with pytest.raises(InvalidInputError, match="keep_first"):
        expand(FOAF_DOC, loader=jsonld_loader, policy="first")
