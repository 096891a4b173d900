"""Namespace collisions: detected at load time, named precisely, resolved by a policy that logs what it did."""

import importlib.metadata as metadata
import logging
import socket

import pytest

from backpack import InvalidInputError, Plugins, get_plugins
from backpack.contexts import AS2_CONTEXT, BACKPACK_CONTEXT
from backpack.errors import NamespaceCollisionError
from backpack.jsonld import check_vocabularies, compact, effective_context, expand
from backpack.jsonld_collisions import POLICIES
from backpack.jsonld_loader import ContextLoader

AS = "https://www.w3.org/ns/activitystreams#"
BP = "https://backpack.dev/ns#"
FOAF_NAME = "http://xmlns.com/foaf/0.1/name"
ACME = "https://acme.example/ns/v1"
AS2_SOURCE = "<https://www.w3.org/ns/activitystreams> (plugin 'vocabularies')"
BACKPACK_SOURCE = "<https://backpack.dev/ns/v1> (plugin 'vocabularies')"
ACME_SOURCE = "<https://acme.example/ns/v1> (plugin 'clashing_vocabulary')"


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        pytest.fail(f"JSON-LD code tried to use the network: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def plugins_with(*modules) -> Plugins:
    plugins = Plugins(load_entry_points=False)
    eps = [metadata.EntryPoint("vocabularies", "backpack_plugins.vocabularies", "backpack")]
    eps += [metadata.EntryPoint(m, f"plugin_samples.{m}", "backpack") for m in modules]
    plugins.load_entry_points(eps)
    return plugins


@pytest.fixture(scope="module")
def loader() -> ContextLoader:
    return ContextLoader(plugins_with())


def collision_records(caplog):
    return [r for r in caplog.records if r.name == "backpack.jsonld" and "namespace collision" in r.getMessage()]


def assert_logged(caplog, *, term, first_iri, new_iri, first_source, new_source, action):
    [record] = collision_records(caplog)
    message = record.getMessage()
    assert record.levelno == logging.WARNING
    for part in (repr(term), f"<{first_iri}>", f"<{new_iri}>", first_source, new_source, action):
        assert part in message, (part, message)


# -- a term rebound by an inline context ------------------------------------------

FOAF_DOC = {"@context": [AS2_CONTEXT, {"name": FOAF_NAME}], "type": "Note", "id": "https://n.example/1", "name": "N"}
FOAF_SOURCE = "inline context #2 of the document"


def test_a_rebound_term_is_an_error_naming_term_iris_and_sources(loader, caplog):
    with pytest.raises(NamespaceCollisionError) as caught:
        expand(FOAF_DOC, loader=loader)
    message = str(caught.value)
    for part in ("'name'", f"<{AS}name>", f"<{FOAF_NAME}>", AS2_SOURCE, FOAF_SOURCE, "keep_first"):
        assert part in message
    assert caught.value.code == "namespace_collision" and isinstance(caught.value, InvalidInputError)
    collision = caught.value.collision
    assert (collision.term, collision.kind, collision.first_iri, collision.new_iri) == ("name", "term", AS + "name",
                                                                                      FOAF_NAME)
    assert not collision_records(caplog)  # an error is raised, not logged


@pytest.mark.parametrize("policy, expected_key, action", [
    ("keep_first", AS + "name", "kept first"),
    ("keep_last", FOAF_NAME, "kept last"),
    ("namespace", AS + "name", "renamed to 'doc2:name'"),
])
def test_a_rebound_term_under_each_policy(loader, caplog, policy, expected_key, action):
    caplog.set_level(logging.WARNING, "backpack.jsonld")
    [node] = expand(FOAF_DOC, loader=loader, policy=policy)
    assert node[expected_key] == [{"@value": "N"}]
    assert_logged(caplog, term="name", first_iri=AS + "name", new_iri=FOAF_NAME, first_source=AS2_SOURCE,
                  new_source=FOAF_SOURCE, action=action)


def test_the_namespace_policy_keeps_the_newcomer_usable_under_its_prefix(loader):
    merged = effective_context(FOAF_DOC, loader=loader, policy="namespace")
    [collision] = merged.collisions
    assert collision.action == "renamed to 'doc2:name'"
    assert merged.context["doc2"]["@id"] == "http://xmlns.com/foaf/0.1/"
    doc = {"@context": merged.context, "id": "https://n.example/1", "name": "as", "doc2:name": "foaf"}
    [node] = expand(doc, loader=loader)
    assert node[AS + "name"] == [{"@value": "as"}] and node[FOAF_NAME] == [{"@value": "foaf"}]


def test_the_same_binding_twice_is_no_collision(loader, caplog):
    doc = {"@context": [AS2_CONTEXT, {"sensitive": "as:sensitive", "name": "as:name", "Like": AS + "Like"}],
           "type": "Like", "sensitive": True}
    merged = effective_context(doc, loader=loader)
    assert merged.collisions == [] and not collision_records(caplog)
    [node] = expand(doc, loader=loader)
    assert node["@type"] == [AS + "Like"] and node[AS + "sensitive"] == [{"@value": True}]


# -- a prefix rebound --------------------------------------------------------------

PREFIX_DOC = {"@context": [AS2_CONTEXT, {"as": "http://activitystrea.ms/2.0/"}], "type": "as:Note", "id": "https://n.example/2"}


def test_a_rebound_prefix_is_an_error(loader):
    with pytest.raises(NamespaceCollisionError, match=r"prefix 'as' is bound to <https://www.w3.org/ns/activitystreams#>"
                       r" by .* and to <http://activitystrea.ms/2.0/> by inline context #2"):
        expand(PREFIX_DOC, loader=loader)


@pytest.mark.parametrize("policy, expected_type, action", [
    ("keep_first", AS + "Note", "kept first"),
    ("keep_last", "http://activitystrea.ms/2.0/Note", "kept last"),
    ("namespace", AS + "Note", "renamed to 'doc2_as'"),
])
def test_a_rebound_prefix_under_each_policy(loader, caplog, policy, expected_type, action):
    caplog.set_level(logging.WARNING, "backpack.jsonld")
    [node] = expand(PREFIX_DOC, loader=loader, policy=policy)
    assert node["@type"] == [expected_type]
    assert_logged(caplog, term="as", first_iri=AS, new_iri="http://activitystrea.ms/2.0/", first_source=AS2_SOURCE,
                  new_source="inline context #2 of the document", action=action)
    if policy == "namespace":
        merged = effective_context(PREFIX_DOC, loader=loader, policy=policy)
        doc = {"@context": merged.context, "type": "doc2_as:Note"}
        assert expand(doc, loader=loader)[0]["@type"] == ["http://activitystrea.ms/2.0/Note"]


# -- a protected term redefined by a document ------------------------------------------

PROTECTED_DOC = {"@context": [AS2_CONTEXT, BACKPACK_CONTEXT, {"score": "https://evil.example/score"}],
                 "type": "Note", "id": "https://n.example/3", "score": 0.5}


def test_redefining_a_protected_backpack_term_is_an_error_naming_it(loader):
    with pytest.raises(NamespaceCollisionError) as caught:
        expand(PROTECTED_DOC, loader=loader)
    assert caught.value.collision.kind == "protected"
    message = str(caught.value)
    for part in ("protected term 'score'", f"<{BP}score>", "<https://evil.example/score>", BACKPACK_SOURCE,
                 "inline context #3 of the document"):
        assert part in message


def test_even_a_coercion_change_to_a_protected_term_is_a_collision(loader):
    doc = {"@context": [BACKPACK_CONTEXT, {"score": {"@id": BP + "score", "@type": "http://www.w3.org/2001/XMLSchema#string"}}],
           "score": "high"}
    with pytest.raises(NamespaceCollisionError, match="protected term 'score'"):
        expand(doc, loader=loader)


@pytest.mark.parametrize("policy, expected_key, action", [
    ("keep_first", BP + "score", "kept first"),
    ("keep_last", "https://evil.example/score", "kept last"),
    ("namespace", BP + "score", "renamed to 'doc3:score'"),
])
def test_a_protected_term_redefinition_under_each_policy(loader, caplog, policy, expected_key, action):
    caplog.set_level(logging.WARNING, "backpack.jsonld")
    [node] = expand(PROTECTED_DOC, loader=loader, policy=policy)
    assert expected_key in node
    assert_logged(caplog, term="score", first_iri=BP + "score", new_iri="https://evil.example/score",
                  first_source=BACKPACK_SOURCE, new_source="inline context #3 of the document", action=action)


def test_a_compaction_context_is_checked_too(loader):
    with pytest.raises(NamespaceCollisionError, match="protected term 'rank'"):
        compact({"@id": "https://n.example/4"}, [BACKPACK_CONTEXT, {"rank": "https://evil.example/rank"}],
                loader=loader)


def test_pyld_protected_term_errors_in_scoped_contexts_become_typed_errors(loader):
    # a type-scoped context is PyLD's to check: its cryptic error comes out typed, naming the context's terms
    doc = {"@context": [BACKPACK_CONTEXT, {"Thing": {"@id": "https://x.example/Thing",
                                                     "@context": {"rank": "https://evil.example/rank"}}}],
           "@type": "Thing", "rank": 1}
    with pytest.raises(NamespaceCollisionError, match="protected term") as caught:
        expand(doc, loader=loader)
    assert "'rank'" in str(caught.value) and caught.value.code == "namespace_collision"


# -- a plugin vocabulary against a bundled one (at plugin load time) ----------------------

def test_check_vocabularies_names_the_plugin_the_term_and_both_iris():
    with pytest.raises(NamespaceCollisionError) as caught:
        check_vocabularies(plugins_with("clashing_vocabulary"))
    message = str(caught.value)
    for part in ("'Like'", f"<{AS}Like>", "<https://acme.example/ns#Like>", AS2_SOURCE, ACME_SOURCE):
        assert part in message


def test_under_error_the_colliding_plugin_vocabulary_is_refused_and_reported_the_rest_served():
    plugins = plugins_with("clashing_vocabulary", "game_vocabulary")
    refusing = ContextLoader(plugins)
    assert refusing.serves(AS2_CONTEXT) and refusing.serves("https://games.example/ns/v1")
    with pytest.raises(NamespaceCollisionError, match="'Like'"):
        expand({"@context": ACME, "stars": 5}, loader=refusing)
    [info] = [p for p in plugins.describe() if p["name"] == "clashing_vocabulary"]
    assert any("is not served" in e and "'Like'" in e for e in info["errors"])


@pytest.mark.parametrize("policy", ["keep_first", "keep_last", "namespace"])
def test_a_plugin_vocabulary_collision_under_each_policy(caplog, policy):
    caplog.set_level(logging.WARNING, "backpack.jsonld")
    collisions = check_vocabularies(plugins_with("clashing_vocabulary"), policy=policy)
    assert {(c.term, c.kind) for c in collisions} == {("Like", "term"), ("schema", "prefix")}
    assert all(c.first_source.endswith("(plugin 'vocabularies')") and c.new_source == ACME_SOURCE for c in collisions)
    records = collision_records(caplog)
    assert len(records) == 2 and all(r.levelno == logging.WARNING and ACME_SOURCE in r.getMessage() for r in records)

    served = ContextLoader(plugins_with("clashing_vocabulary"), policy=policy).document(ACME)["@context"]
    if policy == "keep_first":  # the newcomer's clashing bindings are dropped, the rest kept
        assert "Like" not in served and "schema" not in served and "stars" in served
    elif policy == "keep_last":  # each vocabulary is served as registered; a document naming both gets the later
        assert served["Like"] == "https://acme.example/ns#Like"
    else:  # renamed under the plugin's prefix, still usable
        assert "Like" not in served and served["acme:Like"]["@id"] == "https://acme.example/ns#Like"
        assert served["acme_schema"]["@id"] == "https://acme.example/schema/"
        doc = {"@context": ACME, "@type": "acme:Like", "stars": 4}
        loader = ContextLoader(plugins_with("clashing_vocabulary"), policy=policy)
        assert expand(doc, loader=loader)[0]["@type"] == ["https://acme.example/ns#Like"]


def test_a_plugin_vocabulary_that_only_adds_terms_passes_the_check():
    assert check_vocabularies(plugins_with("game_vocabulary")) == []


def test_the_installed_vocabularies_do_not_collide():
    assert check_vocabularies(get_plugins()) == []
    assert ContextLoader(get_plugins()).collisions == []


def test_an_unknown_policy_is_refused(loader):
    assert POLICIES == ("error", "keep_first", "keep_last", "namespace")
    with pytest.raises(InvalidInputError, match="keep_first"):
        expand(FOAF_DOC, loader=loader, policy="first")
