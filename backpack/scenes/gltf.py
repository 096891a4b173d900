"""glTF 2.0 scenes (``.gltf`` JSON, ``.glb`` binary) as item descriptions.

Only the JSON part is read: metadata, the node tree, meshes, materials and
the ``KHR_xmp_json_ld`` packets; buffers (external, ``data:`` URIs or the
GLB's BIN chunk) are checked for presence and size, never decoded.

A GLB is a 12-byte header (magic ``glTF``, version 2, total length), then
chunks of ``length, type, data``, each 4-byte aligned: the JSON chunk first,
then an optional BIN chunk; unknown chunk types after them are skipped, as
the specification asks. A truncated or malformed file raises
:class:`~backpack.errors.SceneFileError` with the byte offset where it went
wrong (for a problem inside the JSON: the offset of the JSON's first byte,
and a JSON pointer to the offending value).

Node types are named as Godot's importer would make them (a node with a mesh
is a ``MeshInstance3D``, a camera a ``Camera3D``, a punctual light a
``DirectionalLight3D`` / ``OmniLight3D`` / ``SpotLight3D``, anything else a
``Node3D``), so glTF and ``.tscn`` items share one feature space.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

from backpack.errors import SceneFileError
from backpack.scenes.items import SceneDescription, SceneSummary, file_iri, scene_item
from backpack.scenes.xmp import XmpPackets

GLB_MAGIC = b"glTF"
CHUNK_JSON = 0x4E4F534A
CHUNK_BIN = 0x004E4942
_LIGHT_TYPES = {"directional": "DirectionalLight3D", "point": "OmniLight3D", "spot": "SpotLight3D"}
#: the most names a node's path shows (the ones nearest the node): a chain of 16,000 nodes must not
#: make 16,000 paths of up to 16,000 names each
MAX_PATH_NAMES = 32
#: the glTF objects a ``KHR_xmp_json_ld`` packet reference may sit on (besides the asset)
_TAG_KEYS = ("tags", "tag", "keywords")
_PACKET_HOLDERS = ("scenes", "nodes", "meshes", "materials", "animations", "images")


def read_gltf(path) -> SceneDescription:
    """The item description of a ``.gltf`` or ``.glb`` file (binary when it starts with ``glTF``)."""
    path = Path(path)
    with open(path, "rb") as file:
        size = os.fstat(file.fileno()).st_size
        if file.read(4) == GLB_MAGIC or path.suffix.lower() == ".glb":
            json_bytes, json_offset, bin_length = split_glb(file, size, path)
            binary = True
        else:
            file.seek(0)
            json_bytes, json_offset, bin_length, binary = file.read(), 0, None, False
        iri = file_iri(file)  # the BIN chunk (often most of the file) is hashed in blocks, never held
    doc = parse_json(json_bytes, path, json_offset)
    return scene_item(_GltfReader(path, iri, size, doc, json_offset, bin_length, binary).summary())


def split_glb(file, size: int, path) -> tuple[bytes, int, int | None]:
    """The JSON chunk's bytes, its offset in the file and the BIN chunk's length (None: no BIN chunk).

    ``file`` is a seekable binary file of ``size`` bytes; only the header,
    the chunk headers and the JSON chunk are read.
    """

    def read(offset: int, count: int) -> bytes:
        file.seek(offset)
        return file.read(count)

    if size < 12:
        raise SceneFileError(path, f"the file ends after {size} bytes, inside the 12-byte GLB header", offset=size)
    magic, version, length = struct.unpack("<4sII", read(0, 12))
    if magic != GLB_MAGIC:
        raise SceneFileError(path, f"not a GLB file: magic is {magic!r}, not b'glTF'", offset=0)
    if version != 2:
        raise SceneFileError(path, f"GLB version {version} is not supported (only glTF 2.0)", offset=4)
    if length > size:
        raise SceneFileError(
            path, f"truncated: the header says {length} bytes, the file ends after {size}", offset=size
        )
    if length < size:
        raise SceneFileError(
            path, f"{size - length} bytes after the end the header gives ({length} bytes)", offset=length
        )
    json_chunk, bin_length, position, number = None, None, 12, 0
    while position < length:
        if length - position < 8:
            raise SceneFileError(
                path, f"chunk {number} header needs 8 bytes, only {length - position} left", offset=position
            )
        chunk_length, chunk_type = struct.unpack("<II", read(position, 8))
        if chunk_length % 4:
            raise SceneFileError(
                path,
                f"chunk {number} length {chunk_length} is not a multiple of 4 (chunks must stay 4-byte aligned)",
                offset=position,
            )
        start = position + 8
        if start + chunk_length > length:
            raise SceneFileError(
                path,
                f"chunk {number} of {chunk_length} bytes runs past the end of the file ({length - start} bytes left)",
                offset=position,
            )
        if number == 0 and chunk_type != CHUNK_JSON:
            raise SceneFileError(
                path, f"the first chunk must be JSON, its type is 0x{chunk_type:08x}", offset=position + 4
            )
        if number == 0:
            json_chunk = (read(start, chunk_length), start)
        elif chunk_type == CHUNK_JSON:
            raise SceneFileError(path, "a second JSON chunk", offset=position + 4)
        elif chunk_type == CHUNK_BIN:
            if number != 1:
                raise SceneFileError(path, "the BIN chunk must come right after the JSON chunk", offset=position + 4)
            bin_length = chunk_length
        position = start + chunk_length
        number += 1
    if json_chunk is None:
        raise SceneFileError(path, "no JSON chunk after the header", offset=12)
    return json_chunk[0], json_chunk[1], bin_length


def parse_json(raw: bytes, path, base_offset: int = 0) -> dict:
    """The glTF JSON object in ``raw`` (which starts at ``base_offset`` in the file)."""
    body = raw.rstrip(b" \t\r\n\x00")  # GLB pads its JSON chunk with spaces (some writers with zeros)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SceneFileError(path, f"the JSON is not UTF-8 ({exc.reason})", offset=base_offset + exc.start) from None

    def not_json(constant: str):
        raise SceneFileError(path, f"{constant} is not a JSON number (glTF is strict JSON)", offset=base_offset)

    try:
        doc = json.loads(text, parse_constant=not_json)
    except SceneFileError:
        raise
    except ValueError as exc:
        position = getattr(exc, "pos", 0)
        offset = base_offset + len(text[:position].encode("utf-8"))
        raise SceneFileError(path, f"malformed JSON ({getattr(exc, 'msg', exc)})", offset=offset) from None
    if not isinstance(doc, dict):
        raise SceneFileError(path, f"the glTF JSON must be an object, not {type(doc).__name__}", offset=base_offset)
    return doc


class _GltfReader:
    """Checks the parts of one parsed glTF document that an item needs, and summarises them."""

    def __init__(
        self, path: Path, iri: str, size: int, doc: dict, json_offset: int, bin_length: int | None, binary: bool
    ):
        self.path, self.iri, self.size, self.doc, self.json_offset = path, iri, size, doc, json_offset
        self.bin_length, self.binary = bin_length, binary

    def fail(self, pointer: str, problem: str):
        raise SceneFileError(self.path, f"{pointer}: {problem}", offset=self.json_offset)

    def objects(self, key: str, holder=None, pointer: str = "") -> list[dict]:
        """The array ``key`` of ``holder`` (default: the document), every entry an object."""
        value = (self.doc if holder is None else holder).get(key, [])
        if not isinstance(value, list):
            self.fail(f"{pointer}/{key}", f"must be an array, not {type(value).__name__}")
        for number, entry in enumerate(value):
            if not isinstance(entry, dict):
                self.fail(f"{pointer}/{key}/{number}", f"must be an object, not {type(entry).__name__}")
        return value

    def index(self, holder: dict, key: str, count: int, pointer: str, what: str) -> int | None:
        """``holder[key]`` checked as an index into ``count`` things (None when absent)."""
        return self.index_value(holder.get(key), count, f"{pointer}/{key}", what)

    def index_value(self, value, count: int, pointer: str, what: str) -> int | None:
        if value is None:
            return None
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < count:
            self.fail(pointer, f"{value!r} is not a {what} index (there are {count})")
        return value

    def text(self, holder: dict, key: str, pointer: str) -> str | None:
        value = holder.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(f"{pointer}/{key}", f"must be a string, not {type(value).__name__}")
        return value

    def extension(self, holder: dict, name: str, pointer: str) -> dict:
        extensions = holder.get("extensions", {})
        if not isinstance(extensions, dict):
            self.fail(f"{pointer}/extensions", "must be an object")
        value = extensions.get(name, {})
        if not isinstance(value, dict):
            self.fail(f"{pointer}/extensions/{name}", "must be an object")
        return value

    # -- the parts --------------------------------------------------------------------

    def summary(self) -> SceneSummary:
        asset = self.doc.get("asset")
        if not isinstance(asset, dict):
            self.fail("/asset", "missing: every glTF file needs an asset object with its version")
        version = self.text(asset, "version", "/asset")
        if version is None or not version.startswith("2."):
            self.fail("/asset/version", f"{version!r} is not a glTF 2.x version")
        self.check_buffers()
        encoding = "model/gltf-binary" if self.binary else "model/gltf+json"
        summary = SceneSummary(self.path, self.iri, self.size, encoding, ["3DModel"])
        summary.count(f"format:{'glb' if self.binary else 'gltf'}")
        packets = self.packets(asset)
        meshes, materials = self.meshes(summary), self.materials(summary)
        self.nodes(summary, meshes)
        scene_name = self.scenes(summary)
        animations = [
            self.text(a, "name", f"/animations/{n}") or f"animation{n}"
            for n, a in enumerate(self.objects("animations"))
        ]
        for name in animations:
            summary.count(f"animation:{name}")
        extensions = self.doc.get("extensionsUsed", [])
        if not isinstance(extensions, list) or not all(isinstance(e, str) for e in extensions):
            self.fail("/extensionsUsed", "must be an array of extension names")
        for name in extensions:
            summary.count(f"ext:{name}")
        summary.fallback_name = scene_name
        self.apply_packets(summary, packets, asset)
        copyright_ = self.text(asset, "copyright", "/asset")
        summary.license = summary.license or copyright_
        summary.extra = {
            key: value
            for key, value in {
                "copyrightNotice": copyright_,
                "backpack:generator": self.text(asset, "generator", "/asset"),
                "backpack:gltfVersion": version,
                "backpack:meshCount": len(meshes),
                "backpack:meshes": meshes,
                "backpack:materialNames": [m["name"] for m in materials],
                "backpack:materials": materials,
                "backpack:nodeTypes": sorted({n["type"] for n in summary.nodes}),
                "backpack:textureCount": len(self.objects("textures")),
                "backpack:imageCount": len(self.objects("images")),
                "backpack:skinCount": len(self.objects("skins")),
                "backpack:animations": animations,
                "backpack:hasAnimations": bool(animations),
                "backpack:extensionsUsed": extensions,
                "backpack:xmp": packets.kept() or None,
            }.items()
            if value is not None
        }
        return summary

    def check_buffers(self) -> None:
        for number, buffer in enumerate(self.objects("buffers")):
            pointer = f"/buffers/{number}"
            size = buffer.get("byteLength")
            if not isinstance(size, int) or isinstance(size, bool) or size < 1:
                self.fail(f"{pointer}/byteLength", f"{size!r} is not a positive byte count")
            if self.text(buffer, "uri", pointer) is not None:
                continue
            if not self.binary or number:
                self.fail(pointer, "has no uri (only a GLB's first buffer may live in its BIN chunk)")
            if self.bin_length is None:
                raise SceneFileError(
                    self.path, f"{pointer} lives in the BIN chunk, and there is none", offset=self.size
                )
            if size > self.bin_length:
                raise SceneFileError(
                    self.path, f"{pointer} needs {size} bytes, the BIN chunk holds {self.bin_length}", offset=self.size
                )

    def packets(self, asset: dict) -> XmpPackets:
        holder = self.extension(self.doc, "KHR_xmp_json_ld", "")
        packets = holder.get("packets", [])
        if not isinstance(packets, list) or not all(isinstance(p, dict) for p in packets):
            self.fail("/extensions/KHR_xmp_json_ld/packets", "must be an array of JSON-LD objects")
        found = XmpPackets(packets)
        sources = [("/asset", asset)] + [
            (f"/{key}/{n}", obj) for key in _PACKET_HOLDERS for n, obj in enumerate(self.objects(key))
        ]
        for pointer, obj in sources:
            ext = self.extension(obj, "KHR_xmp_json_ld", pointer)
            number = self.index(ext, "packet", len(packets), f"{pointer}/extensions/KHR_xmp_json_ld", "packet")
            if number is not None:
                found.attach(number, pointer)
        return found

    def meshes(self, summary: SceneSummary) -> list[dict]:
        n_materials = len(self.objects("materials"))
        meshes = []
        for number, mesh in enumerate(self.objects("meshes")):
            pointer = f"/meshes/{number}"
            primitives = self.objects("primitives", mesh, pointer)
            attributes: dict[str, None] = {}
            used = []
            for p_number, primitive in enumerate(primitives):
                where = f"{pointer}/primitives/{p_number}"
                names = primitive.get("attributes", {})
                if not isinstance(names, dict):
                    self.fail(f"{where}/attributes", "must be an object")
                attributes.update(dict.fromkeys(names))
                material = self.index(primitive, "material", n_materials, where, "material")
                if material is not None and material not in used:
                    used.append(material)
            name = self.text(mesh, "name", pointer)
            if name:
                summary.object_names.append(name)
            meshes.append(
                {
                    "name": name or f"mesh{number}",
                    "primitives": len(primitives),
                    "attributes": list(attributes),
                    "materials": used,
                }
            )
        return meshes

    def materials(self, summary: SceneSummary) -> list[dict]:
        materials = []
        for number, material in enumerate(self.objects("materials")):
            pointer = f"/materials/{number}"
            name = self.text(material, "name", pointer)
            pbr = material.get("pbrMetallicRoughness", {})
            colour = pbr.get("baseColorFactor") if isinstance(pbr, dict) else None
            if colour is not None and (
                not isinstance(colour, list) or len(colour) != 4 or not all(isinstance(c, (int, float)) for c in colour)
            ):
                self.fail(f"{pointer}/pbrMetallicRoughness/baseColorFactor", "must be 4 numbers")
            alpha = self.text(material, "alphaMode", pointer) or "OPAQUE"
            entry = {"name": name or f"material{number}", "alphaMode": alpha}
            if colour is not None:
                entry["baseColorFactor"] = colour
            materials.append(entry)
            if name:
                summary.object_names.append(name)
                summary.count(f"material:{name}")
            summary.count(f"alpha:{alpha}")
        return materials

    def node_type(self, node: dict, pointer: str, n_meshes: int, n_cameras: int, lights: list) -> str:
        if self.index(node, "mesh", n_meshes, pointer, "mesh") is not None:
            return "MeshInstance3D"
        if self.index(node, "camera", n_cameras, pointer, "camera") is not None:
            return "Camera3D"
        ext = self.extension(node, "KHR_lights_punctual", pointer)
        light = self.index(ext, "light", len(lights), f"{pointer}/extensions/KHR_lights_punctual", "light")
        if light is not None:
            kind = self.text(lights[light], "type", f"/extensions/KHR_lights_punctual/lights/{light}")
            return _LIGHT_TYPES.get(kind, "Light3D")
        return "Node3D"

    def nodes(self, summary: SceneSummary, meshes: list[dict]) -> None:
        nodes = self.objects("nodes")
        lights = self.objects(
            "lights", self.extension(self.doc, "KHR_lights_punctual", ""), "/extensions/KHR_lights_punctual"
        )
        n_cameras, n_skins = len(self.objects("cameras")), len(self.objects("skins"))
        parents: dict[int, int] = {}
        for number, node in enumerate(nodes):
            children = node.get("children", [])
            if not isinstance(children, list):
                self.fail(f"/nodes/{number}/children", "must be an array of node indices")
            for position in range(len(children)):
                child = self.index_value(children[position], len(nodes), f"/nodes/{number}/children/{position}", "node")
                if child is None:
                    self.fail(f"/nodes/{number}/children/{position}", "null is not a node index")
                if child in parents or child == number:
                    self.fail(
                        f"/nodes/{number}/children/{position}",
                        f"node {child} already has a parent (the nodes must form trees)",
                    )
                parents[child] = number
        names = [self.text(node, "name", f"/nodes/{n}") or f"node{n}" for n, node in enumerate(nodes)]
        paths = self.node_paths(parents, names)
        for number, node in enumerate(nodes):
            pointer = f"/nodes/{number}"
            kind = self.node_type(node, pointer, len(meshes), n_cameras, lights)
            entry = {"path": paths[number], "type": kind}
            mesh = node.get("mesh")
            if mesh is not None:
                entry["mesh"] = meshes[mesh]["name"]
            if self.index(node, "skin", n_skins, pointer, "skin") is not None:
                summary.count("node:Skeleton3D")
            extras = node.get("extras")
            if isinstance(extras, dict) and extras:
                entry["extras"] = extras
                _extras_features(summary, extras)
            summary.nodes.append(entry)
            summary.count(f"node:{kind}")
            if node.get("name"):
                summary.object_names.append(node["name"])

    def node_paths(self, parents: dict[int, int], names: list[str]) -> list[str]:
        """Every node's path from its root (``Root/Arm/Hand``), at most :data:`MAX_PATH_NAMES` names
        (deeper ones start with ``…/``). Built from the roots down, each node from its parent's
        tail: linear in the node count, where walking up from every node was quadratic for a chain."""
        children: dict[int, list[int]] = {}
        for child, parent in parents.items():
            children.setdefault(parent, []).append(child)
        tails: list[tuple[int, ...] | None] = [None] * len(names)
        deep = [False] * len(names)
        stack = [n for n in range(len(names)) if n not in parents]
        for root in stack:
            tails[root] = (root,)
        while stack:
            number = stack.pop()
            for child in children.get(number, ()):
                tail = tails[number] + (child,)
                deep[child] = deep[number] or len(tail) > MAX_PATH_NAMES
                tails[child] = tail[-MAX_PATH_NAMES:]
                stack.append(child)
        for number, tail in enumerate(tails):
            if tail is None:  # one parent each, so a node no root reaches sits on a cycle
                self.fail(f"/nodes/{number}/children", "the node hierarchy has a cycle")
        return [("…/" if deep[n] else "") + "/".join(names[k] for k in tails[n]) for n in range(len(names))]

    def scenes(self, summary: SceneSummary) -> str | None:
        """Checks the scenes; returns the default scene's name."""
        scenes = self.objects("scenes")
        n_nodes = len(self.objects("nodes"))
        for number, scene in enumerate(scenes):
            roots = scene.get("nodes", [])
            if not isinstance(roots, list):
                self.fail(f"/scenes/{number}/nodes", "must be an array of node indices")
            for position in range(len(roots)):
                self.index_value(roots[position], n_nodes, f"/scenes/{number}/nodes/{position}", "node")
            extras = scene.get("extras")
            if isinstance(extras, dict):
                _extras_features(summary, extras)
        default = self.index(self.doc, "scene", len(scenes), "", "scene")
        if scenes:
            chosen = scenes[default or 0]
            return self.text(chosen, "name", f"/scenes/{default or 0}")
        return None

    def apply_packets(self, summary: SceneSummary, packets: XmpPackets, asset: dict) -> None:
        """Title, description, creators and licence from the asset's packet, then the default scene's."""
        default = (self.doc.get("scene") or 0) if self.objects("scenes") else None
        main = ["/asset"] + ([f"/scenes/{default}"] if default is not None else [])
        summary.title = packets.first_text(main, "title")
        summary.description = packets.first_text(main, "description")
        summary.creators = packets.all_texts(main, "creator")
        summary.license = packets.licence(main)
        summary.subjects = packets.all_texts(None, "subject") + summary.subjects
        extras = asset.get("extras")
        if isinstance(extras, dict):
            _extras_features(summary, extras)


def _extras_features(summary: SceneSummary, extras: dict) -> None:
    """``meta:key=value`` for each short scalar (or list of scalars) in an ``extras`` object.

    ``tags`` / ``tag`` / ``keywords`` strings are also subjects (keywords), as in Godot metadata.
    """
    for key, value in extras.items():
        if key in _TAG_KEYS:
            summary.subjects += [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, str)]
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, bool):
                item = str(item).lower()
            if isinstance(item, (str, int, float)) and len(str(item)) <= 64:
                summary.count(f"meta:{key}={item}")
