"""Expanded JSON-LD to Backpack records: items, users, and (through the activity mapper) interactions.

A JSON-LD document may hold activities, the objects they are about and the
actors who did them, in any mixture (a ``@graph``, an array, one node, or an
activity with its actor and object embedded). :class:`RecordMapper` sorts
its *expanded* nodes (absolute IRIs only, so one mapper serves every
vocabulary and context) into:

- **items**: AS2 objects (``Note``, ``Image``, ``Video``, ``Page``, ...),
  schema.org creative works, products, places, events and software
  (``CreativeWork``, ``3DModel``, ``Product``, ``VideoGame``, ...) and
  Backpack's own ``Item``, ``SceneNode`` and ``GodotScene``: an :class:`ItemRecord` keeps the
  expanded node as it is (nested nodes included) with its kind and its
  content features (:func:`backpack.content.features.item_features`);
- **users**: actors (AS2 ``Person``, ``Service``, ``Application``, ``Group``,
  ``Organization``; schema.org ``Person``, ``Organization``) as
  :class:`UserRecord`;
- **activities** (AS2 activities, schema.org actions): handed to
  :class:`~backpack.jsonld.activities.ActivityMapper`; an actor or object
  embedded in one with more than its id is also taken as a user or item.

Every node needs an ``@id`` that is an absolute IRI and a ``@type`` the
mapper knows (plugins and callers may add types); anything else is a
:class:`~backpack.jsonld.activities.MappingError` naming the node, and a
refused batch yields nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from backpack.errors import MappingError
from backpack.jsonld.activities import (
    AS,
    SCHEMA,
    UNDO,
    ActivityMapper,
    Mapped,
    node_iri,
    node_types,
    short_types,
    top_nodes,
)
from backpack.jsonld.contexts import BACKPACK_NS

_AS_OBJECTS = (
    "Object",
    "Article",
    "Audio",
    "Document",
    "Event",
    "Image",
    "Note",
    "Page",
    "Place",
    "Video",
    "Collection",
    "OrderedCollection",
)
_SCHEMA_ITEMS = (
    "Thing",
    "CreativeWork",
    "3DModel",
    "VideoGame",
    "Game",
    "SoftwareApplication",
    "WebApplication",
    "MobileApplication",
    "Product",
    "ProductModel",
    "IndividualProduct",
    "MediaObject",
    "ImageObject",
    "VideoObject",
    "AudioObject",
    "Dataset",
    "Collection",
    "Clip",
    "Episode",
    "Movie",
    "MusicRecording",
    "Book",
    "Article",
    "SocialMediaPosting",
    "DigitalDocument",
    "Photograph",
    "Painting",
    "Sculpture",
    "VisualArtwork",
    "WebPage",
    "WebSite",
    "Place",
    "VirtualLocation",
    "Event",
)
#: type IRIs whose nodes become items
# schema.org's own context says http://schema.org/, but documents written by hand often say https:
# both name the same class, so both are taken
_SCHEMAS = (SCHEMA, "https://schema.org/")
ITEM_TYPES = frozenset(
    [AS + t for t in _AS_OBJECTS]
    + [ns + t for t in _SCHEMA_ITEMS for ns in _SCHEMAS]
    + [BACKPACK_NS + t for t in ("Item", "SceneNode", "GodotScene")]
)
#: type IRIs whose nodes become users
ACTOR_TYPES = frozenset(
    [AS + t for t in ("Person", "Service", "Application", "Group", "Organization")]
    + [ns + t for t in ("Person", "Organization") for ns in _SCHEMAS]
)
_EMBEDDING = (AS + "actor", SCHEMA + "agent", AS + "object", SCHEMA + "object")


def _kind(types: list[str]) -> str:
    return short_types(types[:1])


@dataclass(frozen=True)
class ItemRecord:
    """An item: its IRI, its kind (the first type's local name), and the expanded node."""

    id: str
    kind: str
    node: dict

    @cached_property
    def features(self) -> list[str]:
        """Content features of the item (types, keywords, tags, creator, licence, genre, scene features)."""
        from backpack.content.features import item_features

        return item_features(self.node)


@dataclass(frozen=True)
class UserRecord:
    """A user (an actor): its IRI, its kind (``Person``, ``Service``, ...) and the expanded node."""

    id: str
    kind: str
    node: dict


@dataclass
class Records:
    """What a batch of documents became: activities' interactions and removals, items and users."""

    activities: Mapped = field(default_factory=Mapped)
    items: list[ItemRecord] = field(default_factory=list)
    users: list[UserRecord] = field(default_factory=list)


class RecordMapper:
    """Sorts expanded nodes into items, users and activities.

    ``item_types`` and ``actor_types`` add type IRIs to :data:`ITEM_TYPES`
    and :data:`ACTOR_TYPES`; ``activities`` is the activity mapper to use
    (default: a new :class:`ActivityMapper` with the default weights).
    """

    def __init__(self, *, item_types=(), actor_types=(), activities: ActivityMapper | None = None):
        self.item_types = ITEM_TYPES | frozenset(item_types)
        self.actor_types = ACTOR_TYPES | frozenset(actor_types)
        self.activities = activities if activities is not None else ActivityMapper()
        self._activity_types = frozenset(self.activities.weights) | {UNDO}

    def map(self, expanded: list, *, only: str | None = None) -> Records:
        """Map expanded JSON-LD nodes; ``only`` (``"items"``, ``"users"`` or ``"activities"``) refuses
        nodes of the other sorts, naming them."""
        out = Records()
        activity_nodes = []
        for number, node in enumerate(top_nodes(expanded)):
            types = node_types(node, f"node {number}")
            where = f"node {number} (a {short_types(types)})"
            sort = self._sort(types, where)
            if only is not None and sort != only:
                raise MappingError(f"{where} is {_article(sort)}, but only {only} are taken here")
            if sort == "activities":
                activity_nodes.append(node)
                for key in _EMBEDDING:
                    for inner in node.get(key, ()):
                        self._embedded(inner, f"{where}: its {short_types([key])}", out)
            else:
                self._add(sort, node, types, where, out)
        if activity_nodes:
            out.activities = self.activities.map(activity_nodes)
        return out

    def _sort(self, types: list[str], where: str) -> str:
        if any(t in self._activity_types for t in types):
            return "activities"
        if any(t in self.actor_types for t in types):
            return "users"
        if any(t in self.item_types for t in types):
            return "items"
        raise MappingError(
            f"{where} has type {short_types(types)}, which is no activity, actor or item type Backpack "
            "knows; use one of AS2's or schema.org's (Note, Image, 3DModel, Product, Person, ...) "
            "or register the type with RecordMapper(item_types=..., actor_types=...)"
        )

    def _add(self, sort: str, node: dict, types: list[str], where: str, out: Records) -> None:
        iri = node_iri(node.get("@id"), where)
        if sort == "users":
            out.users.append(UserRecord(iri, _kind([t for t in types if t in self.actor_types]), node))
        else:
            out.items.append(ItemRecord(iri, _kind([t for t in types if t in self.item_types]), node))

    def _embedded(self, inner, where: str, out: Records) -> None:
        """An actor or object described inside an activity (more than a bare reference) becomes a record."""
        if not isinstance(inner, dict) or "@value" in inner or set(inner) <= {"@id"}:
            return
        types = inner.get("@type")
        if not types:
            return  # a reference with a name only: nothing to classify it by
        sort = self._sort(list(types), where)
        if sort != "activities":  # an embedded activity is an Undo's object: the activity mapper reads it
            self._add(sort, inner, list(types), where, out)


def _article(sort: str) -> str:
    return {"activities": "an activity", "users": "an actor (a user)", "items": "an item"}[sort]
