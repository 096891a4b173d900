"""One scene file -> one item description: the JSON-LD node and its content features.

Both scene readers (:mod:`backpack.scenes.gltf`, :mod:`backpack.scenes.tscn`)
reduce a file to a :class:`SceneSummary`; :func:`scene_item` turns that into
the item the engine stores, so glTF and Godot scenes describe themselves in
one shape and their features live in one space (a glTF camera node and a
Godot ``Camera3D`` are both ``node:Camera3D``).

The item's IRI is ``urn:backpack:scene:<sha256 of the file's bytes>``: the
same file gives the same item wherever it lies and whatever it is called,
and a re-import replaces rather than duplicates it. An edited file is a new
item (a new version, as a re-upload would be on a platform).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

from backpack.errors import InvalidInputError


@dataclass
class ItemDescription:
    """An item from a JSON-LD document: its IRI, its kind (from its type) and the node as given."""

    id: str
    kind: str | None
    document: dict


def item_from_node(node, where: str, context=None) -> ItemDescription:
    """One item node checked and described: its IRI, its kind (the first type's last segment) and the node.

    ``context`` (the enclosing document's ``@context``) is copied into a node
    that has none, so the node stays meaningful on its own.
    """
    if not isinstance(node, dict):
        raise InvalidInputError(f"{where} is {type(node).__name__}, not an object")
    iri = node.get("@id", node.get("id"))
    if not isinstance(iri, str) or not iri:
        raise InvalidInputError(f"{where} has no @id: every item needs an IRI")
    types = node.get("@type", node.get("type"))
    first = types[0] if isinstance(types, list) and types else types
    if first is not None and not isinstance(first, str):
        raise InvalidInputError(f"{where} ({iri}): @type must be a string or an array of strings")
    kind = first.replace("#", "/").replace(":", "/").rstrip("/").rsplit("/", 1)[-1] if first else None
    if context is not None and "@context" not in node:
        node = {"@context": context, **node}
    return ItemDescription(iri, kind or None, node)


#: Backpack's vocabulary for what schema.org has no term for (node counts, features, packets).
BACKPACK_VOCAB = "https://backpack.dev/ns#"

#: the context of every scene item: schema.org terms by default (``http://``, as schema.org's own
#: context and the rest of Backpack expand them), ``backpack:`` for Backpack's own,
#: JSON literals where the value is a tree of the file's own data (node trees, Godot metadata).
SCENE_CONTEXT = {
    "@vocab": "http://schema.org/",
    "backpack": BACKPACK_VOCAB,
    **{f"backpack:{term}": {"@type": "@json"} for term in ("nodes", "meshes", "materials", "resources", "metadata")},
}

#: nodes kept in ``backpack:nodes`` (the count is always exact): a summary, not the scene
MAX_LISTED_NODES = 1000

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_GENERIC_WORDS = {
    "node",
    "root",
    "scene",
    "mesh",
    "material",
    "instance",
    "object",
    "default",
    "untitled",
    "new",
    "the",
    "and",
    "with",
    "for",
    "mat",
    "obj",
    "geo",
    "geometry",
    "primitive",
}


def scene_iri(data: bytes) -> str:
    """The item IRI of a scene file with these bytes."""
    return f"urn:backpack:scene:{hashlib.sha256(data).hexdigest()}"


def file_iri(file) -> str:
    """The item IRI of an open binary file, hashed from its start in blocks (the file is not held)."""
    file.seek(0)
    digest = hashlib.sha256()
    while block := file.read(1 << 20):
        digest.update(block)
    return f"urn:backpack:scene:{digest.hexdigest()}"


def name_words(names) -> list[str]:
    """Search words from object names: ``"PirateShip_Hull.001"`` -> ``["pirate", "ship", "hull"]``.

    camelCase, snake_case, dots and digits split words; numbers, words under
    three letters and generic ones (node, mesh, material, ...) are left out.
    Each word once, in order of first appearance.
    """
    words: dict[str, None] = {}
    for name in names:
        for word in _WORD.findall(str(name)):
            word = word.lower()
            if len(word) >= 3 and not word.isdigit() and word not in _GENERIC_WORDS:
                words.setdefault(word)
    return list(words)


@dataclass
class SceneSummary:
    """What a reader found in one scene file, before it becomes an item.

    ``types`` are JSON-LD types (the first one is the item's kind);
    ``nodes`` lists ``{"path": ..., "type": ...}`` (plus anything else worth
    keeping per node) in file order; ``features`` maps flat feature strings
    (``"node:Camera3D"``) to weights (how often they occur); ``extra`` holds
    format-specific properties copied into the item as they are.
    """

    path: Path
    iri: str
    size: int
    encoding_format: str
    types: list[str]
    fallback_name: str | None = None
    title: str | None = None
    description: str | None = None
    creators: list[str] = field(default_factory=list)
    subjects: list[str] = field(default_factory=list)
    license: str | None = None
    object_names: list[str] = field(default_factory=list)
    nodes: list[dict] = field(default_factory=list)
    features: dict[str, float] = field(default_factory=dict)
    extra: dict = field(default_factory=dict)

    def count(self, feature: str, weight: float = 1.0) -> None:
        """Add ``weight`` to ``feature``."""
        self.features[feature] = self.features.get(feature, 0.0) + weight


@dataclass
class SceneDescription(ItemDescription):
    """An item description read from a scene file, with its content features and where it came from."""

    features: dict[str, float] = field(default_factory=dict)
    path: Path | None = None


def scene_item(summary: SceneSummary) -> SceneDescription:
    """The item description of a summarised scene file.

    Its ``name`` is the metadata title, else the scene's own name (glTF
    scene, Godot root node), else the file's stem; ``keywords`` are the
    metadata subjects then words from object names, in the order the reader
    met them (meshes, materials, nodes, groups: :func:`name_words`).
    """
    name = summary.title or summary.fallback_name or summary.path.stem
    subjects = _unique(s.strip() for s in summary.subjects if s.strip())
    keywords = _unique([*subjects, *name_words(summary.object_names)])
    for kind in summary.types:
        summary.count(f"type:{kind.rsplit(':', 1)[-1]}")
    for subject in subjects:
        summary.count(f"tag:{subject.lower()}")
    for creator in summary.creators:
        summary.count(f"creator:{creator}")
    if summary.license:
        summary.count(f"license:{summary.license}")
    document = {
        "@context": SCENE_CONTEXT,
        "@id": summary.iri,
        "@type": summary.types if len(summary.types) > 1 else summary.types[0],
        "name": name,
        "encodingFormat": summary.encoding_format,
        "contentSize": f"{summary.size} B",
    }
    optional = {
        "description": summary.description,
        "creator": summary.creators or None,
        "keywords": keywords or None,
        "license": summary.license,
    }
    document.update({key: value for key, value in optional.items() if value is not None})
    document.update(summary.extra)
    document["backpack:nodeCount"] = len(summary.nodes)
    document["backpack:nodes"] = summary.nodes[:MAX_LISTED_NODES]
    features = dict(sorted(summary.features.items()))
    document["backpack:features"] = list(features)
    base = item_from_node(document, str(summary.path))
    return SceneDescription(base.id, base.kind, base.document, features=features, path=summary.path)


def _unique(values) -> list[str]:
    seen: dict[str, None] = {}
    for value in values:
        seen.setdefault(value)
    return list(seen)
