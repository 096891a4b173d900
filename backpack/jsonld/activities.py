"""ActivityStreams activities and schema.org actions as interactions, from expanded JSON-LD.

Mapping works on *expanded* JSON-LD (absolute IRIs, every value in an
array, ``@id`` / ``@type`` / ``@value`` keywords), which is what any context
expands to, so one mapper serves AS2 documents, schema.org documents and
mixtures alike:

- ``Like``, ``View``, ``Add`` (to a collection), ``Announce``, ``Follow``,
  ``Create`` (AS2) and ``LikeAction``, ``WatchAction``, ``ViewAction``,
  ``ReadAction``, ``PlayAction``, ``BuyAction``, ``ShareAction``,
  ``FollowAction``, ``AddAction`` (schema.org) become an interaction of the
  actor (AS2 ``actor``, schema.org ``agent``) with the object, weighted by
  the activity type (:data:`DEFAULT_WEIGHTS`, configurable) and timed by
  ``published`` / ``startTime`` / ``endTime`` when present;
- ``Undo`` removes what the activity it names did: the undone activity may be
  embedded or referenced by IRI (then it must have been mapped before).

Every id must be an absolute IRI. A node without an id, with a relative one,
of an unknown type, or without its actor or object is refused with a
:class:`MappingError` that names the node; nothing of a refused batch is
returned, so callers apply all or nothing.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from backpack.core.timestamps import parse_timestamp
from backpack.errors import InvalidInputError, MappingError

AS = "https://www.w3.org/ns/activitystreams#"
SCHEMA = "http://schema.org/"
XSD_DATETIME = "http://www.w3.org/2001/XMLSchema#dateTime"

#: activity type IRI -> (kind name, default weight)
DEFAULT_WEIGHTS: dict[str, float] = {
    AS + "View": 1.0,
    AS + "Like": 3.0,
    AS + "Announce": 2.0,
    AS + "Add": 4.0,
    AS + "Follow": 2.0,
    AS + "Create": 5.0,
    SCHEMA + "ViewAction": 1.0,
    SCHEMA + "WatchAction": 1.0,
    SCHEMA + "ReadAction": 1.0,
    SCHEMA + "ListenAction": 1.0,
    SCHEMA + "PlayAction": 2.0,
    SCHEMA + "LikeAction": 3.0,
    SCHEMA + "ShareAction": 2.0,
    SCHEMA + "FollowAction": 2.0,
    SCHEMA + "AddAction": 4.0,
    SCHEMA + "BuyAction": 8.0,
    SCHEMA + "CreateAction": 5.0,
}
UNDO = AS + "Undo"
_ACTOR = (AS + "actor", SCHEMA + "agent")
_OBJECT = (AS + "object", SCHEMA + "object")
_TIME = (AS + "published", SCHEMA + "startTime", SCHEMA + "endTime", AS + "updated")


@dataclass(frozen=True)
class Interaction:
    """One mapped activity: ``user`` did ``kind`` to ``item`` (IRIs), with a weight and a time."""

    user: str
    item: str
    kind: str
    weight: float
    timestamp: float | None
    activity: str  # the activity's own IRI (Undo refers to it)


@dataclass(frozen=True)
class Removal:
    """An Undo: the interaction of ``user`` with ``item`` made by ``undone`` goes away."""

    user: str
    item: str
    undone: str
    activity: str


@dataclass
class Mapped:
    """What a batch of activities became, in document order."""

    interactions: list[Interaction] = field(default_factory=list)
    removals: list[Removal] = field(default_factory=list)


class ActivityMapper:
    """Maps expanded activities to interactions and removals.

    ``weights`` overrides :data:`DEFAULT_WEIGHTS` per type, by full IRI or by
    the short name (``{"Like": 5}``). The mapper remembers the activities it
    mapped (IRI -> user and item) so a later ``Undo`` may name one by IRI.
    """

    def __init__(self, weights: dict[str, float] | None = None):
        self.weights = dict(DEFAULT_WEIGHTS)
        for name, weight in (weights or {}).items():
            iri = name if ":" in name else _type_iri(name)
            if not (isinstance(weight, (int, float)) and weight > 0):
                raise InvalidInputError(f"the weight of {name!r} must be a number > 0, got {weight!r}")
            self.weights[iri] = float(weight)
        self._seen: dict[str, tuple[str, str]] = {}
        self._lock = threading.Lock()

    def map(self, expanded: list) -> Mapped:
        """Map expanded JSON-LD nodes (PyLD's ``expand`` output; ``@graph`` wrappers are opened)."""
        out = Mapped()
        new: dict[str, tuple[str, str]] = {}
        for number, node in enumerate(top_nodes(expanded)):
            where = f"node {number}"
            types = node_types(node, where)
            activity = node_iri(node.get("@id"), f"{where} (a {short_types(types)})")
            where = f"{where} <{activity}>"
            if UNDO in types:
                out.removals.append(self._undo(node, activity, where, new))
                continue
            known = [t for t in types if t in self.weights]
            if not known:
                raise MappingError(
                    f"{where} has type {short_types(types)}, which maps to no interaction; "
                    f"known: {sorted(short_types([t]) for t in self.weights)} and Undo"
                )
            user = _ref(node, _ACTOR, "actor", where)
            item = _ref(node, _OBJECT, "object", where)
            kind = short_types([known[0]])
            out.interactions.append(Interaction(user, item, kind, self.weights[known[0]], _time(node, where), activity))
            new[activity] = (user, item)
        with self._lock:
            self._seen.update(new)
        return out

    def _undo(self, node: dict, activity: str, where: str, new: dict) -> Removal:
        undone_node = _one(node, _OBJECT, "object", where)
        if not isinstance(undone_node, dict) or "@id" not in undone_node:
            raise MappingError(f"{where}: an Undo's object must be the undone activity (embedded or by IRI)")
        undone = node_iri(undone_node["@id"], f"{where}: the undone activity")
        if len(undone_node) > 1:  # embedded: it says who did what
            user = _ref(undone_node, _ACTOR, "actor", f"{where}: the undone activity <{undone}>")
            item = _ref(undone_node, _OBJECT, "object", f"{where}: the undone activity <{undone}>")
        else:
            pair = new.get(undone) or self._seen.get(undone)
            if pair is None:
                raise MappingError(
                    f"{where} undoes <{undone}>, which was never mapped: embed the undone "
                    "activity (with its actor and object) or send it first"
                )
            user, item = pair
        undoer = _ref(node, _ACTOR, "actor", where) if any(k in node for k in _ACTOR) else user
        if undoer != user:
            raise MappingError(f"{where}: <{undoer}> cannot undo an activity of <{user}>")
        return Removal(user, item, undone, activity)


def _type_iri(name: str) -> str:
    for iri in DEFAULT_WEIGHTS:
        if short_types([iri]) == name:
            return iri
    raise InvalidInputError(
        f"unknown activity type {name!r}; give a full IRI or one of "
        f"{sorted({short_types([i]) for i in DEFAULT_WEIGHTS})}"
    )


def top_nodes(expanded) -> list:
    if not isinstance(expanded, list):
        raise MappingError("expected expanded JSON-LD (a list of nodes)")
    out = []
    for node in expanded:
        if isinstance(node, dict) and "@graph" in node and "@type" not in node:
            out.extend(top_nodes(node["@graph"]))
        else:
            out.append(node)
    return out


def node_types(node, where: str) -> list[str]:
    if not isinstance(node, dict):
        raise MappingError(f"{where} is {type(node).__name__}, not a JSON-LD node")
    types = node.get("@type")
    if not types:
        ident = node.get("@id")
        named = f"{where} <{ident}>" if isinstance(ident, str) else where
        raise MappingError(
            f"{named} has no @type: Backpack needs it to tell an activity (as:Like) from an "
            "item (schema:3DModel, as:Note) or an actor (as:Person)"
        )
    return list(types)


def short_types(types) -> str:
    names = [t.rsplit("#", 1)[-1].rsplit("/", 1)[-1] for t in types]
    return names[0] if len(names) == 1 else repr(names)


def is_absolute_iri(value) -> bool:
    """Whether ``value`` is an absolute IRI (a scheme, and something after it)."""
    if not isinstance(value, str) or not value or value.startswith("_:"):
        return False
    if value.startswith(("https://", "http://")):  # the common case, without parsing
        return len(value) > value.index("//") + 2
    parts = urlsplit(value)
    return bool(parts.scheme) and len(value) > len(parts.scheme) + 1


def node_iri(value, where: str) -> str:
    if value is None:
        raise MappingError(f"{where} has no @id: every activity, actor and object needs an IRI")
    if not is_absolute_iri(value):
        raise MappingError(
            f"{where} has the id {value!r}, which is not an absolute IRI (relative ids and "
            "blank nodes cannot name users or items)"
        )
    return value


def _one(node: dict, keys: tuple[str, ...], name: str, where: str):
    for key in keys:
        values = node.get(key)
        if values:
            if len(values) != 1:
                raise MappingError(f"{where} has {len(values)} values for {name}; exactly one is needed")
            return values[0]
    raise MappingError(f"{where} has no {name}")


def _ref(node: dict, keys: tuple[str, ...], name: str, where: str) -> str:
    value = _one(node, keys, name, where)
    if not isinstance(value, dict) or "@value" in value:
        raise MappingError(f"{where}: its {name} must be a node or an IRI, not a literal")
    return node_iri(value.get("@id"), f"{where}: its {name}")


def _time(node: dict, where: str) -> float | None:
    for key in _TIME:
        for value in node.get(key, ()):
            raw = value.get("@value") if isinstance(value, dict) else None
            if not isinstance(raw, str):
                continue
            try:
                return parse_timestamp(raw, f"{where}: {short_types([key])}")  # naive times are UTC
            except InvalidInputError as exc:
                raise MappingError(str(exc)) from None
    return None
