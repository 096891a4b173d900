"""item_text: the text embedded for an item, from its JSON-LD description in any of the three shapes."""

import pytest

from backpack.content.text import item_text
from backpack.errors import InvalidInputError

SCHEMA = "https://schema.org/"
AS = "https://www.w3.org/ns/activitystreams#"

GAME = {
    "@context": "https://schema.org",
    "@type": "VideoGame",
    "name": "Space Miner",
    "description": "Mine asteroids with your friends",
    "keywords": "sci-fi, mining,  co-op",
}


def test_schema_org_compacted():
    assert item_text(GAME) == "Space Miner. Mine asteroids with your friends. sci-fi, mining, co-op."


def test_the_text_does_not_depend_on_key_order():
    assert item_text(dict(reversed(list(GAME.items())))) == item_text(GAME)


def test_headline_keyword_lists_and_defined_terms():
    article = {
        "@type": "Article",
        "headline": "Caves of Qud review",
        "keywords": ["roguelike", {"@type": "DefinedTerm", "name": "Science fiction"}, "Roguelike"],
    }
    assert item_text(article) == "Caves of Qud review. roguelike, Science fiction."


def test_activitystreams_note_with_html_tags_and_language_maps():
    note = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "type": "Note",
        "nameMap": {"fr": "Mon niveau", "en": "My level"},
        "summary": "<p>A <b>hard</b> platformer&nbsp;level &amp; more</p><p>Try it!</p>",
        "content": "<p>Jump over the lava.</p><script>alert(1)</script>",
        "tag": [
            {"type": "Hashtag", "name": "#platformer", "href": "https://example.org/tags/platformer"},
            {"type": "Mention", "name": "@ana@example.org", "href": "https://example.org/users/ana"},
            "https://example.org/tags/linked-only",
        ],
    }
    assert item_text(note) == "My level. A hard platformer level & more Try it! Jump over the lava. platformer."


def test_expanded_form_with_full_iris_and_language_tags():
    expanded = [
        {
            "@id": "https://example.org/items/1",
            "@type": [SCHEMA + "VideoGame"],
            SCHEMA + "name": [
                {"@value": "Le Mineur", "@language": "fr"},
                {"@value": "Space Miner", "@language": "en-GB"},
            ],
            SCHEMA + "description": [{"@value": "Mine asteroids"}],
            SCHEMA + "keywords": [{"@value": "sci-fi,mining"}],
            AS + "tag": [
                {"@type": [AS + "Hashtag"], AS + "name": [{"@value": "#coop"}]},
                {"@type": [AS + "Mention"], AS + "name": [{"@value": "@bob"}]},
            ],
        }
    ]
    assert item_text(expanded) == "Space Miner. Mine asteroids. sci-fi, mining, coop."


def test_http_schema_iris_and_prefixed_terms_are_read_too():
    assert item_text({"http://schema.org/name": "A", "schema:description": "B", "as:summary": "C"}) == "A. B. C."


def test_language_preference():
    node = {"name": [{"@value": "Spiel", "@language": "de"}, {"@value": "Jeu", "@language": "fr"}]}
    assert item_text(node) == "Spiel. Jeu."  # no English and nothing untagged: every translation
    assert item_text(node, language="fr") == "Jeu."
    assert item_text({"name": "Game", "nameMap": {"de": "Spiel"}}) == "Game."  # untagged beats other languages
    assert item_text({"name": "Game", "nameMap": {"de": "Spiel"}}, language=None) == "Game. Spiel."


def test_sentence_ends_and_duplicates():
    node = {"name": "Why?", "summary": "Why?", "content": "Because.", "keywords": ["a", "A", " "]}
    assert item_text(node) == "Why? Because. a."


def test_a_node_without_text_gives_an_empty_string():
    assert item_text({"@id": "https://example.org/x", "@type": "Thing", "url": "https://example.org"}) == ""
    assert item_text({"name": {"id": "https://example.org/n"}}) == ""  # a link, not a language map


@pytest.mark.parametrize("bad", [None, "text", 3, [], [{}, {}]])
def test_a_description_is_a_node(bad):
    with pytest.raises(InvalidInputError):
        item_text(bad)
