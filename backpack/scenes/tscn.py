"""Godot text scenes (``.tscn``, format 3 of Godot 4 and format 2 of Godot 3) as item descriptions.

A scene file is a ``[gd_scene]`` heading, its ``[ext_resource]`` (files it
uses: scripts, textures, other scenes), ``[sub_resource]`` (resources
embedded in it), ``[node]`` (the tree: the first node is the root, every
other names its ``parent`` path, ``"."`` for the root's children) and
``[connection]`` sections. Nodes carry metadata as ``metadata/key = value``
properties (Godot 4) or one ``metadata`` / ``__meta__`` dictionary.

The item: its ``name`` is the root node's ``title`` metadata, else the root
node's name; ``description``, ``creator`` (``author``) and ``license`` come
from the root's metadata; keywords are the ``tags`` / ``keywords``
metadata of every node, then words from node, group and material names.
Metadata keys that start with ``_`` are the editor's own and are skipped.
A scene with any 3D node is a ``3DModel``; every scene is also a
``backpack:GodotScene``. Errors (:class:`~backpack.errors.SceneFileError`) name
the line and column: syntax, a missing or misplaced heading, a node whose
parent does not exist, a reference to an undeclared resource.
"""

from __future__ import annotations

import math
from pathlib import Path

from backpack.errors import SceneFileError
from backpack.scenes.godot_resource import Call, ExtRef, NodePath, Section, SubRef, parse_sections
from backpack.scenes.items import SceneDescription, SceneSummary, scene_iri, scene_item

ENCODING_FORMAT = "application/x-godot-scene"
SUPPORTED_FORMATS = (2, 3)
_TAG_KEYS = ("tags", "tag", "keywords")
_CREATOR_KEYS = ("author", "authors", "creator")
_LICENSE_KEYS = ("license", "licence")


def read_tscn(path) -> SceneDescription:
    """The item description of a Godot ``.tscn`` file."""
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise SceneFileError(path, f"not UTF-8 text ({exc.reason})", line=line, column=column) from None
    return scene_item(_TscnReader(path, data, parse_sections(text, path)).summary())


def metadata(properties: dict) -> dict:
    """A node's metadata: ``metadata/key`` properties and a ``metadata`` / ``__meta__`` dictionary."""
    found = {}
    for key in ("__meta__", "metadata"):
        if isinstance(properties.get(key), dict):
            found.update({str(k): v for k, v in properties[key].items()})
    found.update({key[len("metadata/") :]: value for key, value in properties.items() if key.startswith("metadata/")})
    return found


def to_json(value):
    """A parsed Godot value as JSON: constructors and references become their Godot text."""
    if isinstance(value, bool) or value is None or isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, list):
        return [to_json(v) for v in value]
    if isinstance(value, dict):
        return {str(to_json(k)): to_json(v) for k, v in value.items()}
    if isinstance(value, ExtRef):
        return f'ExtResource("{value.id}")'
    if isinstance(value, SubRef):
        return f'SubResource("{value.id}")'
    if isinstance(value, tuple):
        return [to_json(v) for v in value]
    return str(value)


def _texts(value) -> list[str]:
    """Strings in a metadata value: a string (comma-separated allowed), or an array of them."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


class _TscnReader:
    """Checks the sections of one scene file and summarises them."""

    def __init__(self, path: Path, data: bytes, sections: list[Section]):
        self.path, self.data, self.sections = path, data, sections
        self.ext: dict[str, dict] = {}
        self.sub: dict[str, str] = {}
        self.node_types: dict[str, str | None] = {}

    def fail(self, section: Section, problem: str):
        raise SceneFileError(self.path, problem, line=section.line, column=section.column)

    def attribute(self, section: Section, name: str, kinds, required: bool = True):
        value = section.attributes.get(name)
        if value is None and not required:
            return None
        if not isinstance(value, kinds) or isinstance(value, bool):
            self.fail(
                section,
                f"[{section.tag}] needs {name}= ({'a string' if kinds is str else 'an id'})"
                + ("" if value is None else f", not {to_json(value)!r}"),
            )
        return value

    def check_references(self, value, sub_allowed: set) -> None:
        """Every ExtResource / SubResource in ``value`` names one declared earlier in the file."""
        if isinstance(value, ExtRef) and value.id not in self.ext:
            raise SceneFileError(
                self.path,
                f'ExtResource("{value.id}") is not declared by an earlier [ext_resource]',
                line=value.line,
                column=value.column,
            )
        if isinstance(value, SubRef) and value.id not in sub_allowed:
            raise SceneFileError(
                self.path,
                f'SubResource("{value.id}") is not declared by an earlier [sub_resource]',
                line=value.line,
                column=value.column,
            )
        children = (
            value.values()
            if isinstance(value, dict)
            else value
            if isinstance(value, list)
            else value.args
            if isinstance(value, Call)
            else ()
        )
        for child in children:
            self.check_references(child, sub_allowed)

    def summary(self) -> SceneSummary:
        if not self.sections:
            raise SceneFileError(self.path, "empty: a scene starts with a [gd_scene ...] heading", line=1)
        header = self.sections[0]
        if header.tag != "gd_scene":
            self.fail(header, f"not a Godot scene: the first heading is [{header.tag}], not [gd_scene]")
        version = header.attributes.get("format")
        if version not in SUPPORTED_FORMATS or isinstance(version, bool):
            self.fail(header, f"format={version!r} is not a scene format this reader knows (2 or 3)")
        summary = SceneSummary(
            self.path, scene_iri(self.data), len(self.data), ENCODING_FORMAT, ["backpack:GodotScene"]
        )
        summary.count("format:tscn")
        nodes, root_meta, connections = [], {}, 0
        for section in self.sections[1:]:
            for value in (*section.attributes.values(), *section.properties.values()):
                self.check_references(value, set(self.sub))
            if section.tag == "gd_scene":
                self.fail(section, "a second [gd_scene] heading")
            elif section.tag == "ext_resource":
                self.ext_resource(section, summary)
            elif section.tag == "sub_resource":
                self.sub_resource(section, summary)
            elif section.tag == "node":
                node = self.node(section, summary, root=not nodes)
                if not nodes:
                    root_meta = node.get("metadata", {})
                nodes.append(node)
            elif section.tag == "connection":
                connections += 1
                signal = section.attributes.get("signal")
                if isinstance(signal, str):
                    summary.count(f"signal:{signal}")
        if not nodes:
            raise SceneFileError(self.path, "the scene has no [node] sections", line=header.line)
        summary.nodes = nodes
        self.describe(summary, root_meta)
        if any((n["type"] or "").endswith("3D") for n in nodes):
            summary.types.insert(0, "3DModel")
        types = sorted({n["type"] for n in nodes if n["type"]})
        summary.extra = {
            key: value
            for key, value in {
                "identifier": header.attributes.get("uid") if isinstance(header.attributes.get("uid"), str) else None,
                "backpack:godotFormat": version,
                "backpack:nodeTypes": types,
                "backpack:resources": list(self.ext.values()),
                "backpack:subResourceTypes": sorted(set(self.sub.values())),
                "backpack:materialNames": sorted(
                    f[len("material:") :] for f in summary.features if f.startswith("material:")
                ),
                "backpack:connectionCount": connections,
                "backpack:hasAnimations": "AnimationPlayer" in types or "Animation" in self.sub.values(),
                "backpack:metadata": root_meta or None,
            }.items()
            if value is not None
        }
        return summary

    def ext_resource(self, section: Section, summary: SceneSummary) -> None:
        ident = str(self.attribute(section, "id", (str, int)))
        if ident in self.ext:
            self.fail(section, f'ext_resource id "{ident}" is declared twice')
        path = self.attribute(section, "path", str)
        kind = self.attribute(section, "type", str, required=False)
        entry = {"path": path, "type": kind}
        uid = section.attributes.get("uid")
        if isinstance(uid, str):
            entry["uid"] = uid
        self.ext[ident] = entry
        if kind:
            summary.count(f"resource:{kind}")
            if "Material" in kind:
                summary.count(f"material:{Path(path).stem}")

    def sub_resource(self, section: Section, summary: SceneSummary) -> None:
        ident = str(self.attribute(section, "id", (str, int)))
        if ident in self.sub:
            self.fail(section, f'sub_resource id "{ident}" is declared twice')
        kind = self.attribute(section, "type", str)
        self.sub[ident] = kind
        summary.count(f"resource:{kind}")
        name = section.properties.get("resource_name")
        if "Material" in kind and isinstance(name, str) and name:
            summary.count(f"material:{name}")
            summary.object_names.append(name)

    def node(self, section: Section, summary: SceneSummary, root: bool) -> dict:
        name = self.attribute(section, "name", str)
        if not name or "/" in name:
            self.fail(section, f"node name {name!r} must be non-empty and have no '/'")
        parent = section.attributes.get("parent")
        if root:
            if parent is not None:
                self.fail(section, f"the first [node] is the root and has no parent, this one names {parent!r}")
            path = "."
        else:
            if not isinstance(parent, str):
                self.fail(section, f"node {name!r} needs parent= (only the first node is the root)")
            parent = NodePath(parent)
            if parent not in self.node_types:
                self.fail(section, f"node {name!r}: its parent {str(parent)!r} is not an earlier node")
            path = name if parent == "." else f"{parent}/{name}"
            if path in self.node_types:
                self.fail(section, f"a second node at {path!r}")
        kind = self.attribute(section, "type", str, required=False)
        entry = {"path": name if root else f"{self.root_name}/{path}", "type": kind}
        self.node_types[path] = kind
        if root:
            self.root_name = name
            summary.fallback_name = name
        instance = section.attributes.get("instance")
        if instance is not None:
            if not isinstance(instance, ExtRef):
                self.fail(section, f'node {name!r}: instance= must be ExtResource("id")')
            entry["instance"] = self.ext[instance.id]["path"]
            summary.count(f"instance:{entry['instance']}")
        if kind:
            summary.count(f"node:{kind}")
        groups = section.attributes.get("groups", [])
        groups = [g for g in groups if isinstance(g, str)] if isinstance(groups, list) else []
        if groups:
            entry["groups"] = groups
        for group in groups:
            summary.count(f"group:{group}")
        summary.object_names += [name, *groups]
        found = {k: v for k, v in metadata(section.properties).items() if not k.startswith("_")}
        if found:
            entry["metadata"] = to_json(found)
        for key, value in found.items():
            for text in _texts(value) if isinstance(value, (str, list)) else [to_json(value)]:
                if isinstance(text, bool):
                    text = str(text).lower()
                if isinstance(text, (str, int, float)) and len(str(text)) <= 64:
                    summary.count(f"meta:{key}={text}")
            if key in _TAG_KEYS:
                summary.subjects += _texts(value)
        return entry

    def describe(self, summary: SceneSummary, root_meta: dict) -> None:
        """Title, description, creators and licence from the root node's metadata."""

        def first(keys):
            for key in keys:
                texts = root_meta.get(key)
                if isinstance(texts, str) and texts.strip():
                    return texts.strip()
            return None

        summary.title = first(("title", "display_name"))
        summary.description = first(("description",))
        summary.creators = [t for key in _CREATOR_KEYS for t in _texts(root_meta.get(key))]
        summary.license = first(_LICENSE_KEYS)
