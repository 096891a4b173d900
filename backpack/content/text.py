"""The text of an item description: what the engine embeds for a cold-start item.

An item with no interactions yet is known only by its description, a JSON-LD
node in one of three shapes:

- compacted with schema.org terms (a ``CreativeWork``, ``VideoGame``,
  ``Product``): ``name``, ``headline``, ``description``, ``keywords``;
- compacted with ActivityStreams 2.0 terms (a ``Note``, ``Article``,
  ``Page``): ``name``, ``summary``, ``content`` (HTML), ``tag`` (``Hashtag``
  objects), and the language maps ``nameMap``, ``summaryMap``, ``contentMap``;
- expanded: every key a full IRI, every value a list of
  ``{"@value": ..., "@language": ...}`` objects or nested nodes.

:func:`item_text` reads all three without a JSON-LD processor, so no context
is ever fetched: it knows each property under its compact term, its prefixed
form (``schema:name``, ``as:name``) and its IRIs (schema.org over http and
https, the ActivityStreams namespace). The text is the titles, then the
descriptions, then one comma-separated list of keywords and tag names, each
part ending in a full stop. The order is fixed and does not depend on the
order of keys in the document, so the same item always gives the same text
(and the same vector).

A property given in several languages (a language map, or ``@value``
objects tagged with ``@language``) contributes the values in the preferred
language (``"en"`` by default, regional variants included, as the bundled
model reads English), else the untagged ones, else all of them. HTML in
ActivityStreams ``summary`` and ``content`` is reduced to its text.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

from backpack.errors import InvalidInputError

_SCHEMA = ("http://schema.org/", "https://schema.org/")
_AS2 = ("https://www.w3.org/ns/activitystreams#", "http://www.w3.org/ns/activitystreams#")

#: a BCP 47 tag's shape ("en", "pt-BR", "zh-Hant-TW"): how a language map's keys are told from a node's terms
_LANGUAGE_TAG = re.compile(r"^[a-zA-Z]{2,3}(-[a-zA-Z0-9]{1,8})*$")
_UNTAGGED = {"@none", "und"}
_SENTENCE_END = (".", "!", "?", "…", ":", ";")


def term_keys(term: str, schema: bool = False, as2: bool = False) -> tuple[str, ...]:
    """Every key ``term`` can appear under: compact, prefixed, full IRI, and AS2's language map."""
    keys = [term]
    if schema:
        keys += [f"schema:{term}", *(base + term for base in _SCHEMA)]
    if as2:
        keys += [f"as:{term}", *(base + term for base in _AS2), f"{term}Map", f"as:{term}Map"]
    return tuple(keys)


_TITLES = (term_keys("name", schema=True, as2=True), term_keys("headline", schema=True))
_BODIES = (term_keys("description", schema=True), term_keys("summary", as2=True), term_keys("content", as2=True))
_HTML_BODIES = {"summary", "content"}  # AS2 says these are HTML unless mediaType says otherwise
_KEYWORDS = term_keys("keywords", schema=True)
TAG_KEYS = term_keys("tag", as2=True)
_NAME = _TITLES[0]
TYPE_KEYS = ("@type", "type")
_MENTION = {"Mention", "as:Mention", *(base + "Mention" for base in _AS2)}


def item_text(document, *, language: str | None = "en") -> str:
    """The text to embed for the item that ``document`` (a JSON-LD node, as a dict) describes.

    Titles (``name``, ``headline``), descriptions (``description``,
    ``summary``, ``content``), then keywords (a comma-separated string, a
    list, or ``DefinedTerm`` nodes) and ActivityStreams tag names (``#`` and
    ``Mention`` tags left out) as one list, duplicates removed. A one-node
    list (what JSON-LD expansion returns) is accepted too. ``language``
    picks among translations (None: keep them all). Returns ``""`` when the
    node has none of these properties.
    """
    node = single_node(document)
    language = language.lower() if language else None
    parts = []
    for keys in (*_TITLES, *_BODIES):
        html = keys[0] in _HTML_BODIES
        parts += [_html_to_text(t) if html else t for t in language_texts(property_values(node, keys), language)]
    terms = [term for value in property_values(node, _KEYWORDS) for term in keyword_texts(value, language)]
    terms += [name.lstrip("#") for tag in property_values(node, TAG_KEYS) for name in tag_names(tag, language)]
    parts = _unique(" ".join(p.split()) for p in parts)
    terms = _unique(" ".join(t.split()) for t in terms)
    if terms:
        parts.append(", ".join(terms))
    return " ".join(p if p.endswith(_SENTENCE_END) else p + "." for p in parts)


def single_node(document) -> dict:
    if isinstance(document, list) and len(document) == 1:
        document = document[0]
    if not isinstance(document, dict):
        raise InvalidInputError(f"an item description is a JSON-LD node (a dict), got {type(document).__name__}")
    return document


def property_values(node: dict, keys: tuple[str, ...]) -> list:
    """The values of a property under any of its ``keys``, in the order of ``keys``; lists flattened."""
    out = []
    for key in keys:
        value = node.get(key)
        out += value if isinstance(value, list) else [] if value is None else [value]
    return out


def _literals(value, language: str | None = None):
    """``(text, language tag or None)`` for each string in ``value``: a string, ``@value``, language map or list."""
    if isinstance(value, str):
        yield value, language
    elif isinstance(value, list):
        for item in value:
            yield from _literals(item, language)
    elif isinstance(value, dict):
        if "@value" in value:
            if isinstance(value["@value"], str):
                yield value["@value"], value.get("@language", language)
        elif _is_language_map(value):
            for tag in sorted(value):  # sorted: key order in a JSON object carries no meaning
                yield from _literals(value[tag], None if tag in _UNTAGGED else tag)


def _is_language_map(value: dict) -> bool:
    """Whether ``value`` maps language tags to text (``{"en": "..."}``), not a node such as ``{"id": iri}``."""
    if not value or "://" in str(value.get("id", "")):  # "id" is Indonesian, and AS2's alias of @id
        return False
    return all(
        isinstance(k, str)
        and (k in _UNTAGGED or _LANGUAGE_TAG.match(k))
        and (isinstance(v, str) or isinstance(v, list) and all(isinstance(x, str) for x in v))
        for k, v in value.items()
    )


def language_texts(values: list, language: str | None) -> list[str]:
    """The strings among ``values``, narrowed to ``language`` if some are in it, else to untagged ones."""
    pairs = [(text, tag.lower() if isinstance(tag, str) else None) for text, tag in _literals(values)]
    pairs = [(text, tag) for text, tag in pairs if text.strip()]
    if language:
        preferred = [text for text, tag in pairs if tag and (tag == language or tag.startswith(language + "-"))]
        if preferred:
            return preferred
    untagged = [text for text, tag in pairs if tag is None]
    return untagged if language and untagged else [text for text, _ in pairs]


def _is_node(value) -> bool:
    return isinstance(value, dict) and "@value" not in value and not _is_language_map(value)


def keyword_texts(value, language: str | None) -> list[str]:
    """A ``keywords`` value: comma-separated text, or a ``DefinedTerm`` node's name."""
    if _is_node(value):
        return language_texts(property_values(value, _NAME), language)
    return [term for text in language_texts([value], language) for term in text.split(",")]


def tag_names(tag, language: str | None) -> list[str]:
    """An AS2 tag's name, unless the tag is a Mention (a handle, not a topic); a bare string is a link."""
    if not _is_node(tag):
        return []
    types = property_values(tag, TYPE_KEYS)
    if any(t in _MENTION for t in types if isinstance(t, str)):
        return []
    return language_texts(property_values(tag, _NAME), language)


def _unique(texts) -> list[str]:
    """Non-empty ``texts`` in order, each kept once (case-insensitively)."""
    seen, out = set(), []
    for text in texts:
        key = text.casefold()
        if text and key not in seen:
            seen.add(key)
            out.append(text)
    return out


class _TextOfHtml(HTMLParser):
    _SKIPPED = {"script", "style"}
    #: tags that separate words (inline ones such as <b> may sit inside a word)
    _BREAKS = {
        "br",
        "p",
        "div",
        "li",
        "ul",
        "ol",
        "blockquote",
        "pre",
        "hr",
        "tr",
        "td",
        "th",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
    }

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.chunks, self._skipping = [], 0

    def handle_starttag(self, tag, attrs):
        self._skipping += tag in self._SKIPPED
        if tag in self._BREAKS:
            self.chunks.append(" ")  # a space too many is collapsed later

    def handle_endtag(self, tag):
        self._skipping -= tag in self._SKIPPED and self._skipping > 0
        if tag in self._BREAKS:
            self.chunks.append(" ")

    def handle_data(self, data):
        if not self._skipping:
            self.chunks.append(data)


def _html_to_text(text: str) -> str:
    """The text of an HTML fragment, entities decoded; plain text comes back as it was."""
    if "<" not in text and "&" not in text:
        return text
    parser = _TextOfHtml()
    parser.feed(text)
    parser.close()
    return "".join(parser.chunks)
