"""Scene ingestion: glTF / GLB (with KHR_xmp_json_ld packets) and Godot .tscn files become items.

Every scene here is written by the tests: a small GLB writer (header, padded
JSON chunk, BIN chunk with one triangle), glTF JSON with external and data:
URI buffers, and .tscn text in Godot 4 (format 3) and Godot 3 (format 2).
"""

import base64
import hashlib
import json
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backpack import Engine
from backpack.cli import main as cli
from backpack.content.features import item_features
from backpack.engine.data_dir import DataDir
from backpack.errors import InvalidInputError, SceneFileError
from backpack.scenes.godot_resource import Call, ExtRef, NodePath, StringName, SubRef, parse_sections
from backpack.scenes.ingest import ScanReport, import_scene_folder, read_scene, scene_files
from backpack.scenes.items import name_words

DC = "http://purl.org/dc/elements/1.1/"
RIGHTS = "http://ns.adobe.com/xap/1.0/rights/"
TRIANGLE = struct.pack("<9f", 0, 0, 0, 1, 0, 0, 0, 1, 0)  # three vec3 positions, 36 bytes


# -- writers --------------------------------------------------------------------------------


def glb(doc: dict, binary: bytes | None = TRIANGLE) -> bytes:
    """A GLB file: 12-byte header, JSON chunk padded with spaces, BIN chunk padded with zeros."""
    text = json.dumps(doc).encode()
    text += b" " * (-len(text) % 4)
    chunks = struct.pack("<II", len(text), 0x4E4F534A) + text
    if binary is not None:
        padded = binary + b"\0" * (-len(binary) % 4)
        chunks += struct.pack("<II", len(padded), 0x004E4942) + padded
    return b"glTF" + struct.pack("<II", 2, 12 + len(chunks)) + chunks


def triangle_doc(buffer: dict | None = None, **parts) -> dict:
    """A one-triangle glTF document; ``parts`` replace or add top-level properties."""
    doc = {
        "asset": {"version": "2.0", "generator": "backpack tests"},
        "scene": 0,
        "scenes": [{"name": "Deck", "nodes": [0]}],
        "nodes": [{"name": "ShipRoot", "children": [1]}, {"name": "HullMesh", "mesh": 0}],
        "meshes": [{"name": "Hull", "primitives": [{"attributes": {"POSITION": 0}, "material": 0}]}],
        "materials": [{"name": "Brass", "pbrMetallicRoughness": {"baseColorFactor": [1, 0.8, 0.2, 1]}}],
        "accessors": [
            {"bufferView": 0, "componentType": 5126, "count": 3, "type": "VEC3", "min": [0, 0, 0], "max": [1, 1, 0]}
        ],
        "bufferViews": [{"buffer": 0, "byteLength": 36}],
        "buffers": [buffer or {"byteLength": 36}],
    }
    doc.update(parts)
    return doc


def packet(**properties) -> dict:
    return {
        "@context": {"dc": DC, "xmpRights": RIGHTS, "rdf": "http://www.w3.org/1999/02/22-rdf-syntax-ns#"},
        "@id": "",
        **properties,
    }


def alt(*pairs) -> dict:
    """An XMP language alternative: ("en-us", "Lamp"), ("fr", "Lampe") -> rdf:Alt with rdf:_1, rdf:_2."""
    return {
        "@type": "rdf:Alt",
        **{f"rdf:_{n}": {"@language": lang, "@value": text} for n, (lang, text) in enumerate(pairs, 1)},
    }


def xmp_doc() -> dict:
    """The triangle with packets on the asset, scene, a node, the mesh and the material (one shared)."""
    doc = triangle_doc()
    doc["extensionsUsed"] = ["KHR_xmp_json_ld", "KHR_materials_emissive"]
    doc["extensions"] = {
        "KHR_xmp_json_ld": {
            "packets": [
                packet(
                    **{
                        "dc:title": alt(("fr", "Bateau pirate"), ("en-us", "Pirate Ship")),
                        "dc:creator": {"@list": ["ana", "bo"]},
                        "dc:description": alt(("x-default", "A small pirate ship.")),
                        "dc:subject": {"@set": ["pirate", "ship"]},
                        "xmpRights:UsageTerms": alt(("x-default", "CC-BY-4.0")),
                    }
                ),
                packet(**{"dc:title": alt(("en", "The deck")), "dc:subject": {"@set": ["deck"]}}),
                packet(**{"dc:subject": {"@set": ["wood"]}, "dc:creator": {"@list": ["carla"]}}),
                packet(**{"dc:subject": {"@set": ["metal"]}}),
                packet(**{"dc:subject": ["unused"]}),
            ]
        }
    }
    doc["asset"]["extensions"] = {"KHR_xmp_json_ld": {"packet": 0}}
    doc["scenes"][0]["extensions"] = {"KHR_xmp_json_ld": {"packet": 1}}
    doc["nodes"][1]["extensions"] = {"KHR_xmp_json_ld": {"packet": 2}}
    doc["meshes"][0]["extensions"] = {"KHR_xmp_json_ld": {"packet": 2}}
    doc["materials"][0]["extensions"] = {"KHR_xmp_json_ld": {"packet": 3}, "KHR_materials_emissive": {}}
    return doc


TSCN = """[gd_scene load_steps=5 format=3 uid="uid://c8pirate"]

; a comment line
[ext_resource type="Texture2D" uid="uid://btex" path="res://textures/planks.png" id="1_tex"]
[ext_resource type="PackedScene" uid="uid://bcan" path="res://props/cannon.tscn" id="2_can"]
[ext_resource type="Script" path="res://ship.gd" id="3_scr"]

[sub_resource type="StandardMaterial3D" id="StandardMaterial3D_brass"]
resource_name = "Brass"
albedo_texture = ExtResource("1_tex")
albedo_color = Color(1, 0.8, 0.2, 1)

[sub_resource type="BoxMesh" id="BoxMesh_hull"]
material = SubResource("StandardMaterial3D_brass")
size = Vector3(4, 1.5, -2e-1)

[node name="PirateShip" type="Node3D"]
script = ExtResource("3_scr")
metadata/title = "The \\"Black\\" Pearl"
metadata/description = "A ship with
two lines of description."
metadata/author = "ana"
metadata/license = "CC-BY-4.0"
metadata/tags = PackedStringArray("pirate", "ship")
metadata/_edit_lock_ = true
metadata/stats = {
"speed": 12.5,
&"crew": [1, 2,
  3],
"home": NodePath("Ports/Tortuga")
}

[node name="Hull" type="MeshInstance3D" parent="." groups=["wooden", "hittable"]]
mesh = SubResource("BoxMesh_hull")
metadata/tags = ["hull"]

[node name="Cannon" parent="Hull" instance=ExtResource("2_can")]
transform = Transform3D(1, 0, 0, 0, 1, 0, 0, 0, 1, 0.5, 1, 0)

[node name="Lookout" type="Camera3D" parent="Hull/Cannon"]
fov = 60.0

[node name="Player" type="AnimationPlayer" parent="."]
autoplay = &"sail"

[connection signal="animation_finished" from="Player" to="." method="_on_finished"]
"""

TSCN_GODOT3 = """[gd_scene load_steps=2 format=2]

[ext_resource path="res://crate.png" type="Texture" id=1]

[node name="Crate" type="Spatial"]
__meta__ = {
"_edit_lock_": true,
"tags": "crate, loot"
}

[node name="Sprite" type="Sprite3D" parent="."]
texture = ExtResource( 1 )
"""


@pytest.fixture
def scenes(tmp_path):
    """A folder with one good scene of each format, two bad ones and files that are not scenes."""
    folder = tmp_path / "scenes"
    (folder / "props" / "deep").mkdir(parents=True)
    (folder / ".godot").mkdir()
    (folder / "ship.glb").write_bytes(glb(xmp_doc()))
    (folder / "props" / "plain.gltf").write_text(
        json.dumps(
            triangle_doc(
                {"byteLength": 36, "uri": "data:application/octet-stream;base64," + base64.b64encode(TRIANGLE).decode()}
            )
        )
    )
    (folder / "props" / "deep" / "ship.tscn").write_text(TSCN)
    (folder / "props" / "broken.glb").write_bytes(glb(xmp_doc())[:-10])
    (folder / "props" / "deep" / "broken.tscn").write_text(
        '[gd_scene format=3]\n\n[node name="A" type="Node3D"]\nmetadata/x = "unterminated\n'
    )
    (folder / "notes.txt").write_text("not a scene")
    (folder / ".godot" / "cached.tscn").write_text("editor cache, never read")
    return folder


# -- glTF / GLB items --------------------------------------------------------------------------


def test_glb_with_xmp_packets_becomes_one_3d_model_item(tmp_path):
    data = glb(xmp_doc())
    (tmp_path / "ship.glb").write_bytes(data)
    item = read_scene(tmp_path / "ship.glb")
    doc = item.document
    assert item.id == doc["@id"] == "urn:backpack:scene:" + hashlib.sha256(data).hexdigest()
    assert item.kind == "3DModel" and doc["@type"] == "3DModel"
    assert doc["name"] == "Pirate Ship"  # the asset packet's English alternative beats the French one
    assert doc["description"] == "A small pirate ship."
    assert doc["creator"] == ["ana", "bo"]  # the asset's (and default scene's) packets: not the node's
    assert doc["license"] == "CC-BY-4.0"
    assert doc["encodingFormat"] == "model/gltf-binary"
    # subjects of every packet, in packet order, then words from mesh, material and node names
    assert doc["keywords"] == ["pirate", "ship", "deck", "wood", "metal", "unused", "hull", "brass"]
    assert doc["backpack:nodeCount"] == 2 and doc["backpack:meshCount"] == 1
    assert doc["backpack:materialNames"] == ["Brass"]
    assert doc["backpack:materials"][0]["baseColorFactor"] == [1, 0.8, 0.2, 1]
    assert doc["backpack:meshes"] == [{"name": "Hull", "primitives": 1, "attributes": ["POSITION"], "materials": [0]}]
    assert [n["path"] for n in doc["backpack:nodes"]] == ["ShipRoot", "ShipRoot/HullMesh"]
    assert doc["backpack:nodeTypes"] == ["MeshInstance3D", "Node3D"]
    assert doc["backpack:hasAnimations"] is False
    assert doc["backpack:extensionsUsed"] == ["KHR_xmp_json_ld", "KHR_materials_emissive"]
    for feature in (
        "type:3DModel",
        "format:glb",
        "material:Brass",
        "node:MeshInstance3D",
        "node:Node3D",
        "tag:pirate",
        "tag:wood",
        "creator:ana",
        "creator:bo",
        "ext:KHR_materials_emissive",
    ):
        assert feature in item.features, feature
    assert "creator:carla" not in item.features
    assert doc["backpack:features"] == sorted(item.features)


def test_every_xmp_packet_is_kept_with_the_objects_it_applies_to(tmp_path):
    doc = xmp_doc()
    (tmp_path / "ship.glb").write_bytes(glb(doc))
    kept = read_scene(tmp_path / "ship.glb").document["backpack:xmp"]
    assert [k["backpack:appliesTo"] for k in kept] == [
        ["/asset"],
        ["/scenes/0"],
        ["/nodes/1", "/meshes/0"],
        ["/materials/0"],
        [],
    ]
    assert [k["backpack:packet"] for k in kept] == doc["extensions"]["KHR_xmp_json_ld"]["packets"]
    assert all("@context" in k["backpack:packet"] for k in kept)


def test_the_name_falls_back_from_xmp_title_to_scene_packet_to_scene_name_to_file_stem(tmp_path):
    doc = xmp_doc()
    del doc["asset"]["extensions"]
    (tmp_path / "a.glb").write_bytes(glb(doc))
    assert read_scene(tmp_path / "a.glb").document["name"] == "The deck"
    (tmp_path / "b.glb").write_bytes(glb(triangle_doc()))
    assert read_scene(tmp_path / "b.glb").document["name"] == "Deck"
    plain = triangle_doc()
    del plain["scenes"][0]["name"]
    (tmp_path / "crate_v2.glb").write_bytes(glb(plain))
    assert read_scene(tmp_path / "crate_v2.glb").document["name"] == "crate_v2"


def test_xmp_properties_are_found_under_the_packets_own_prefix_or_full_iri(tmp_path):
    doc = triangle_doc(
        extensions={
            "KHR_xmp_json_ld": {
                "packets": [
                    {
                        "@context": {"d": DC, "r": {"@id": RIGHTS}},
                        "d:title": "Lamp",
                        "r:WebStatement": "https://example.org/l",
                    },
                    {DC + "subject": ["glow"], DC + "creator": "eve"},
                ]
            }
        }
    )
    doc["asset"]["extensions"] = {"KHR_xmp_json_ld": {"packet": 0}}
    doc["scenes"][0]["extensions"] = {"KHR_xmp_json_ld": {"packet": 1}}
    (tmp_path / "lamp.glb").write_bytes(glb(doc))
    item = read_scene(tmp_path / "lamp.glb").document
    assert item["name"] == "Lamp" and item["license"] == "https://example.org/l"
    assert item["creator"] == ["eve"] and item["keywords"][0] == "glow"


def test_gltf_json_without_xmp_names_node_types_as_godot_would(tmp_path):
    doc = triangle_doc(
        {"byteLength": 36, "uri": "hull.bin"},
        asset={"version": "2.0", "copyright": "2026 ana"},
        extensionsUsed=["KHR_lights_punctual"],
        extensions={"KHR_lights_punctual": {"lights": [{"type": "point"}, {"type": "directional"}]}},
        cameras=[{"type": "perspective", "perspective": {"yfov": 1.0, "znear": 0.1}}],
        animations=[{"name": "Bob", "channels": [], "samplers": []}],
    )
    doc["nodes"][0]["children"] = [1, 2, 3, 4]
    doc["nodes"] += [
        {"name": "Lookout", "camera": 0},
        {"name": "Lantern", "extensions": {"KHR_lights_punctual": {"light": 0}}},
        {
            "name": "Sun",
            "extensions": {"KHR_lights_punctual": {"light": 1}},
            "extras": {"tags": ["sunny"], "intensity": 3},
        },
    ]
    (tmp_path / "ship.gltf").write_text(json.dumps(doc))
    item = read_scene(tmp_path / "ship.gltf")
    d = item.document
    assert d["encodingFormat"] == "model/gltf+json" and d["name"] == "Deck"
    assert d["license"] == d["copyrightNotice"] == "2026 ana"
    assert "backpack:xmp" not in d
    assert d["backpack:nodeTypes"] == ["Camera3D", "DirectionalLight3D", "MeshInstance3D", "Node3D", "OmniLight3D"]
    assert d["backpack:animations"] == ["Bob"] and d["backpack:hasAnimations"] is True
    assert [n["path"] for n in d["backpack:nodes"]][2:] == ["ShipRoot/Lookout", "ShipRoot/Lantern", "ShipRoot/Sun"]
    for feature in (
        "format:gltf",
        "node:Camera3D",
        "node:OmniLight3D",
        "animation:Bob",
        "ext:KHR_lights_punctual",
        "meta:tags=sunny",
        "meta:intensity=3",
        "tag:sunny",
        "license:2026 ana",
    ):
        assert feature in item.features, feature
    assert d["keywords"][0] == "sunny" and "lookout" in d["keywords"] and "lantern" in d["keywords"]


def test_the_item_iri_depends_on_the_bytes_only(tmp_path):
    data = glb(triangle_doc())
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.glb").write_bytes(data)
    (tmp_path / "y.glb").write_bytes(data)
    (tmp_path / "z.glb").write_bytes(glb(xmp_doc()))
    ids = [read_scene(tmp_path / p).id for p in ("a/x.glb", "y.glb", "z.glb")]
    assert ids[0] == ids[1] != ids[2]


def test_name_words_split_names_and_drop_noise():
    assert name_words(["PirateShip_Hull.001", "Material.002", "HTTPServer", "Cube", "node7"]) == [
        "pirate",
        "ship",
        "hull",
        "http",
        "server",
        "cube",
    ]


# -- broken GLB / glTF -----------------------------------------------------------------------


def test_every_truncation_of_a_glb_is_a_scene_file_error_with_a_byte_offset(tmp_path):
    data = glb(xmp_doc())
    path = tmp_path / "cut.glb"
    for length in range(len(data)):
        path.write_bytes(data[:length])
        with pytest.raises(SceneFileError) as caught:
            read_scene(path)
        error = caught.value
        assert error.code == "bad_scene_file" and isinstance(error, InvalidInputError)
        assert str(path) in str(error) and error.offset is not None and 0 <= error.offset <= length
        assert f"at byte {error.offset}" in str(error)


def _header(data: bytes, **fields) -> bytes:
    magic, version, length = struct.unpack_from("<4sII", data)
    values = {"magic": magic, "version": version, "length": length, **fields}
    return struct.pack("<4sII", values["magic"], values["version"], values["length"]) + data[12:]


@pytest.mark.parametrize(
    "change, offset, words",
    [
        (lambda d: _header(d, magic=b"gLTF"), 0, "magic"),
        (lambda d: _header(d, version=1), 4, "version 1"),
        (lambda d: d + b"\0\0\0\0", None, "after the end"),
        (lambda d: d[:12] + struct.pack("<I", struct.unpack_from("<I", d, 12)[0] + 2) + d[16:], 12, "multiple of 4"),
        (lambda d: d[:12] + struct.pack("<I", struct.unpack_from("<I", d, 12)[0] + 4000) + d[16:], 12, "past the end"),
        (lambda d: d[:16] + struct.pack("<I", 0x004E4942) + d[20:], 16, "must be JSON"),
        (lambda d: _header(d[:12])[:8] + struct.pack("<I", 12), 12, "no JSON chunk"),
    ],
)
def test_malformed_glb_headers_and_chunks_name_the_offset(tmp_path, change, offset, words):
    data = glb(triangle_doc())
    broken = change(data)
    if offset is None:
        offset = len(data)
    path = tmp_path / "bad.glb"
    path.write_bytes(broken)
    with pytest.raises(SceneFileError, match=words) as caught:
        read_scene(path)
    assert caught.value.offset == offset


def test_broken_json_inside_a_glb_names_the_byte_in_the_file(tmp_path):
    text = json.dumps(triangle_doc()).encode()
    bad_at = text.index(b'"nodes"')
    text = text[:bad_at] + b"@" + text[bad_at + 1 :]
    text += b" " * (-len(text) % 4)
    chunk = struct.pack("<II", len(text), 0x4E4F534A) + text
    (tmp_path / "bad.glb").write_bytes(b"glTF" + struct.pack("<II", 2, 12 + len(chunk)) + chunk)
    with pytest.raises(SceneFileError, match="malformed JSON") as caught:
        read_scene(tmp_path / "bad.glb")
    assert caught.value.offset == 20 + bad_at


@pytest.mark.parametrize("binary, words", [(None, "there is none"), (b"\0" * 8, "needs 36 bytes")])
def test_a_buffer_in_a_missing_or_short_bin_chunk_is_an_error(tmp_path, binary, words):
    (tmp_path / "bad.glb").write_bytes(glb(triangle_doc(), binary=binary))
    with pytest.raises(SceneFileError, match=words):
        read_scene(tmp_path / "bad.glb")


@pytest.mark.parametrize(
    "mutate, pointer",
    [
        (lambda d: d["nodes"][1].update(mesh=3), "/nodes/1/mesh"),
        (lambda d: d["nodes"][1].update(children=[0]), "/nodes/0/children"),  # a cycle
        (lambda d: d["nodes"][0].update(children=[0]), "/nodes/0/children/0"),
        (lambda d: d["meshes"][0]["primitives"][0].update(material=True), "/meshes/0/primitives/0/material"),
        (lambda d: d["asset"].update(version="1.0"), "/asset/version"),
        (lambda d: d.pop("asset"), "/asset"),
        (lambda d: d.update(scene=4), "/scene"),
        (lambda d: d.update(nodes={}), "/nodes"),
        (
            lambda d: d["asset"].update(extensions={"KHR_xmp_json_ld": {"packet": 0}}),
            "/asset/extensions/KHR_xmp_json_ld/packet",
        ),
        (lambda d: d["buffers"][0].update(byteLength=-1), "/buffers/0/byteLength"),
    ],
)
def test_inconsistent_gltf_json_names_the_json_pointer(tmp_path, mutate, pointer):
    doc = triangle_doc({"byteLength": 36, "uri": "tri.bin"})
    mutate(doc)
    (tmp_path / "bad.gltf").write_text(json.dumps(doc))
    with pytest.raises(SceneFileError) as caught:
        read_scene(tmp_path / "bad.gltf")
    assert f"{pointer}:" in str(caught.value) and caught.value.offset == 0


def test_a_gltf_that_is_not_json_names_the_byte(tmp_path):
    data = '{"asset": {"version": "2.0", "generator": "Blénder"},\n "nodes": [1, 2,, 3]}'.encode()
    (tmp_path / "bad.gltf").write_bytes(data)
    with pytest.raises(SceneFileError, match="malformed JSON") as caught:
        read_scene(tmp_path / "bad.gltf")
    assert caught.value.offset == data.index(b",,") + 1  # bytes, not characters (é is two)


def test_nan_is_not_json(tmp_path):
    (tmp_path / "nan.gltf").write_text('{"asset": {"version": "2.0"}, "materials": [{"emissiveFactor": [NaN, 0, 0]}]}')
    with pytest.raises(SceneFileError, match="NaN is not a JSON number"):
        read_scene(tmp_path / "nan.gltf")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 255)), min_size=1, max_size=4),
    cut=st.one_of(st.none(), st.integers(0, 10_000)),
)
def test_random_damage_to_a_glb_never_raises_anything_but_the_typed_error(tmp_path, edits, cut):
    data = bytearray(glb(xmp_doc()))
    for position, value in edits:
        data[position % len(data)] = value
    if cut is not None:
        data = data[: cut % (len(data) + 1)]
    path = tmp_path / "damaged.glb"
    path.write_bytes(bytes(data))
    try:
        item = read_scene(path)
    except SceneFileError as error:
        assert error.offset is not None
    else:
        assert item.kind == "3DModel" and item.id.startswith("urn:backpack:scene:")


# -- Godot text scenes ----------------------------------------------------------------------------


def test_godot_values_parse_to_python_values(tmp_path):
    sections = parse_sections(
        """[gd_resource type="Resource" format=3]

[resource]
a = "tab\\tquote\\" \\u00e9"
b = &"name"
c = ^"A/B"
d = [1, -2.5, 1e3, inf, -inf, true, false, null, ]
e = { "k": Vector2(1, 2), 3: [ExtResource("x"), SubResource( "y" )], }
f = Array[StringName]([&"a", &"b"])
g = PackedStringArray("x", "y")
h = NodePath("C/D")
0:0/0/terrain = 1
"quoted key" = 2
""",
        "values.tres",
    )
    props = sections[1].properties
    assert props["a"] == 'tab\tquote" é'
    assert isinstance(props["b"], StringName) and props["b"] == "name"
    assert isinstance(props["c"], NodePath) and isinstance(props["h"], NodePath) and props["h"] == "C/D"
    assert props["d"][:3] == [1, -2.5, 1000.0] and props["d"][3] == float("inf") and props["d"][4] < 0
    assert props["d"][5:] == [True, False, None]
    assert props["e"] == {"k": Call("Vector2", (1, 2)), 3: [ExtRef("x"), SubRef("y")]}
    assert props["f"] == ["a", "b"] and props["g"] == ["x", "y"]
    assert props["0:0/0/terrain"] == 1 and props["quoted key"] == 2


def test_tscn_becomes_one_item_with_its_tree_metadata_and_resources(tmp_path):
    path = tmp_path / "pirate_ship.tscn"
    path.write_text(TSCN)
    item = read_scene(path)
    d = item.document
    assert item.kind == "3DModel" and d["@type"] == ["3DModel", "backpack:GodotScene"]
    assert item.id == "urn:backpack:scene:" + hashlib.sha256(TSCN.encode()).hexdigest()
    assert d["name"] == 'The "Black" Pearl'
    assert d["description"] == "A ship with\ntwo lines of description."
    assert d["creator"] == ["ana"] and d["license"] == "CC-BY-4.0"
    assert d["identifier"] == "uid://c8pirate" and d["backpack:godotFormat"] == 3
    assert d["encodingFormat"] == "application/x-godot-scene"
    assert d["keywords"][:3] == ["pirate", "ship", "hull"]
    assert {"wooden", "hittable", "cannon", "lookout", "player", "brass"} <= set(d["keywords"])
    assert [(n["path"], n["type"]) for n in d["backpack:nodes"]] == [
        ("PirateShip", "Node3D"),
        ("PirateShip/Hull", "MeshInstance3D"),
        ("PirateShip/Hull/Cannon", None),
        ("PirateShip/Hull/Cannon/Lookout", "Camera3D"),
        ("PirateShip/Player", "AnimationPlayer"),
    ]
    assert d["backpack:nodes"][2]["instance"] == "res://props/cannon.tscn"
    assert d["backpack:nodes"][1]["groups"] == ["wooden", "hittable"]
    assert d["backpack:resources"][0] == {"path": "res://textures/planks.png", "type": "Texture2D", "uid": "uid://btex"}
    assert d["backpack:subResourceTypes"] == ["BoxMesh", "StandardMaterial3D"]
    assert d["backpack:materialNames"] == ["Brass"] and d["backpack:hasAnimations"] is True
    assert d["backpack:connectionCount"] == 1
    assert d["backpack:metadata"]["stats"] == {"speed": 12.5, "crew": [1, 2, 3], "home": "Ports/Tortuga"}
    assert "_edit_lock_" not in d["backpack:metadata"]
    for feature in (
        "type:3DModel",
        "type:GodotScene",
        "format:tscn",
        "node:MeshInstance3D",
        "node:Camera3D",
        "node:AnimationPlayer",
        "resource:Texture2D",
        "resource:Script",
        "resource:BoxMesh",
        "resource:StandardMaterial3D",
        "instance:res://props/cannon.tscn",
        "meta:tags=pirate",
        "meta:tags=hull",
        "tag:pirate",
        "tag:hull",
        "group:wooden",
        "material:Brass",
        "creator:ana",
        "signal:animation_finished",
    ):
        assert feature in item.features, feature
    assert not any("_edit_lock_" in f for f in item.features)


def test_godot3_format2_scenes_are_read_too(tmp_path):
    (tmp_path / "crate.tscn").write_text(TSCN_GODOT3)
    item = read_scene(tmp_path / "crate.tscn")
    d = item.document
    assert d["name"] == "Crate" and d["backpack:godotFormat"] == 2
    assert d["keywords"][:2] == ["crate", "loot"]
    assert d["@type"] == ["3DModel", "backpack:GodotScene"]  # Sprite3D is a 3D node
    assert {"node:Spatial", "node:Sprite3D", "resource:Texture", "tag:loot"} <= set(item.features)


def test_a_scene_without_3d_nodes_is_a_godot_scene_only(tmp_path):
    (tmp_path / "menu.tscn").write_text(
        '[gd_scene format=3]\n\n[node name="Menu" type="Control"]\n\n'
        '[node name="Play" type="Button" parent="."]\ntext = "Play"\n'
    )
    item = read_scene(tmp_path / "menu.tscn")
    assert item.kind == "GodotScene" and item.document["@type"] == "backpack:GodotScene"


@pytest.mark.parametrize(
    "text, line, column, words",
    [
        ('[gd_scene format=3]\n\n[node name="A" type="Node3D"]\nmetadata/x = "never closed\n', 4, 14, "unterminated"),
        ('[gd_scene format=3]\n[node name="A" type="Node3D"]\n[node name="B" parent="Nope"]\n', 3, 1, "'Nope'"),
        ('[gd_scene format=3]\n[node name="A" type="Node3D"]\n[node name="B" type="Node3D"]\n', 3, 1, "needs parent"),
        ('[gd_scene format=3]\n[node name="A" type="Node3D"]\nscript = ExtResource("9")\n', 3, 10, "not declared"),
        ('[gd_scene format=3]\n[node name="A" type="Node3D"]\nmesh = SubResource("m")\n', 3, 8, "not declared"),
        ('title = "x"\n[gd_scene format=3]\n', 1, 1, "before the first"),
        ('[gd_scene format=3]\n[node name="A" type="Node3D"]\nvisible false\n', 3, 1, "name = value"),
        ('[gd_resource type="Theme" format=3]\n[resource]\n', 1, 1, "not a Godot scene"),
        ('[gd_scene format=9]\n[node name="A"]\n', 1, 1, "format=9"),
        ('[gd_scene format=3]\n[node name="A" type="Node3D"]\nposition = Vector3(1, 2 3)\n', 3, 25, "','"),
        ('[gd_scene format=3]\n[node name="A" type="Node3D"]\ntags = [1, 2\n', 4, 1, "end of the file"),
        ('[gd_scene format=3]\n[node name="A" type="Node3D"]\nx = "bad \\q escape"\n', 3, 10, "escape"),
        ('[gd_scene format=3]\n[node name="A" type="Node3D"]\nx = $\n', 3, 5, "unexpected character"),
        ('[gd_scene format=3]\n[ext_resource path="a" id="1"]\n[ext_resource path="b" id="1"]\n', 3, 1, "twice"),
        ('[gd_scene format=3]\n[node type="Node3D"]\n', 2, 1, "needs name="),
        ("[gd_scene format=3]\n\n", 1, None, r"no \[node\]"),
        ("", 1, None, "empty"),
        (
            '[gd_scene format=3]\n[node name="A" type="Node3D"]\n'
            '[node name="B" parent="." instance=ExtResource("1")]\n',
            3,
            36,
            "not declared",
        ),
    ],
)
def test_malformed_tscn_names_the_line_and_column(tmp_path, text, line, column, words):
    path = tmp_path / "bad.tscn"
    path.write_text(text)
    with pytest.raises(SceneFileError, match=words) as caught:
        read_scene(path)
    error = caught.value
    assert (error.line, error.column) == (line, column)
    assert str(error).startswith(f"{path}:{line}")


def test_a_tscn_that_is_not_utf8_names_the_line(tmp_path):
    (tmp_path / "bad.tscn").write_bytes(b'[gd_scene format=3]\n[node name="\xff" type="Node3D"]\n')
    with pytest.raises(SceneFileError, match="UTF-8") as caught:
        read_scene(tmp_path / "bad.tscn")
    assert (caught.value.line, caught.value.column) == (2, 13)


def test_other_suffixes_are_not_scenes(tmp_path):
    (tmp_path / "x.obj").write_text("v 0 0 0")
    with pytest.raises(InvalidInputError, match="not a scene file"):
        read_scene(tmp_path / "x.obj")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    edits=st.lists(
        st.tuples(
            st.integers(0, 10_000),
            st.integers(0, 8),
            st.sampled_from(
                [
                    '"',
                    "[",
                    "]",
                    "(",
                    ")",
                    "{",
                    "}",
                    ",",
                    ":",
                    "=",
                    "\n",
                    ";",
                    "\\",
                    "&",
                    "^",
                    "-",
                    "inf",
                    'ExtResource("zz")',
                    'parent="."',
                    "é",
                ]
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_random_damage_to_a_tscn_never_raises_anything_but_the_typed_error(tmp_path, edits):
    text = TSCN
    for position, cut, insert in edits:
        position %= len(text)
        text = text[:position] + insert + text[position + cut :]
    path = tmp_path / "damaged.tscn"
    path.write_text(text)
    try:
        item = read_scene(path)
    except SceneFileError as error:
        assert error.line is not None and error.line >= 1
    else:
        assert item.id.startswith("urn:backpack:scene:")


# -- folders ----------------------------------------------------------------------------------------


def test_a_folder_import_keeps_going_past_bad_files(scenes, capsys):
    assert [p.relative_to(scenes).as_posix() for p in scene_files(scenes)] == [
        "props/broken.glb",
        "props/deep/broken.tscn",
        "props/deep/ship.tscn",
        "props/plain.gltf",
        "ship.glb",
    ]
    engine = Engine()
    report = import_scene_folder(scenes, engine=engine, progress=True)
    assert isinstance(report, ScanReport)
    assert report.files == 5 and report.imported == report.stored == 3 and not report.ok
    assert [p.name for p, _ in report.errors] == ["broken.glb", "broken.tscn"]
    assert "at byte" in report.errors[0][1] and "broken.tscn:4:" in report.errors[1][1]
    assert {i.document["name"] for i in report.items} == {"Pirate Ship", "Deck", 'The "Black" Pearl'}
    assert len(engine.item_descriptions) == 3
    assert all(item.id in engine.item_descriptions for item in report.items)
    err = capsys.readouterr().err
    assert "5/5" in err and "file" in err  # the progress bar counts files
    assert report.as_dict()["failed"][0]["file"].endswith("broken.glb")


def test_scene_features_feed_the_feature_index_for_cold_items(tmp_path):
    """A GLB ship and a .tscn ship share material, tags and node types; a menu shares almost nothing."""
    ship = xmp_doc()
    ship["nodes"].append({"name": "Lookout", "camera": 0})
    ship["nodes"][0]["children"].append(2)
    ship["cameras"] = [{"type": "perspective", "perspective": {"yfov": 1.0, "znear": 0.1}}]
    (tmp_path / "ship.glb").write_bytes(glb(ship))
    (tmp_path / "ship.tscn").write_text(TSCN)
    (tmp_path / "menu.tscn").write_text('[gd_scene format=3]\n\n[node name="Menu" type="Control"]\n')
    engine = Engine()
    report = import_scene_folder(tmp_path, engine=engine, progress=False)
    ids = {item.path.name: item.id for item in report.items}
    assert {"material:Brass", "node:Camera3D", "tag:pirate"} <= set(
        item_features(engine.item_descriptions.get(ids["ship.glb"]))
    )
    engine.fit_features()
    similar = engine.similar_items(ids["ship.glb"], n=2, based_on="features")
    assert similar[0].item == ids["ship.tscn"] and similar[0].score > 0
    assert all(r.item != ids["menu.tscn"] or r.score < similar[0].score for r in similar)


def test_scene_items_are_json_ld_the_offline_processor_reads(tmp_path):
    """Expanded by PyLD with Backpack's loader (nothing fetched) and re-emitted compacted, nothing is lost."""
    from backpack.jsonld.as2_output import compact_item

    (tmp_path / "ship.glb").write_bytes(glb(xmp_doc()))
    (tmp_path / "ship.tscn").write_text(TSCN)
    for name in ("ship.glb", "ship.tscn"):
        item = read_scene(tmp_path / name)
        out = compact_item(item.document)
        assert out["id"] == item.id and out["name"] == item.document["name"]
        assert out["bp:features"] == item.document["backpack:features"]
        nodes = out["bp:nodes"]  # a JSON literal, kept as is ({"type": "@json", "@value": ...} in this context)
        assert (nodes["@value"] if "@value" in nodes else nodes) == item.document["backpack:nodes"]
    assert out["type"] == ["3DModel", "bp:GodotScene"]


def test_the_progress_bar_can_be_hidden(scenes, capsys):
    report = import_scene_folder(scenes, progress=False)
    assert report.imported == 3 and report.stored == 0
    assert capsys.readouterr().err == ""


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(InvalidInputError, match="no such folder"):
        import_scene_folder(tmp_path / "nope")


def test_cli_imports_a_scene_folder_and_lists_the_failures(scenes, tmp_path, capsys):
    data_dir = tmp_path / "state"
    code = cli.main(["import", str(scenes), "--json", "--data-dir", str(data_dir)])
    out, _ = capsys.readouterr()
    summary = json.loads(out)
    assert code == 1  # done, with problems listed
    assert summary["items"] == 3
    assert summary["scenes"]["files"] == 5 and summary["scenes"]["imported"] == 3
    assert [f["file"].rsplit("/", 1)[-1] for f in summary["scenes"]["failed"]] == ["broken.glb", "broken.tscn"]
    engine = Engine.open(data_dir)
    name = "http://schema.org/name"  # descriptions are kept expanded
    names = {doc[name][0]["@value"] for doc in engine.item_descriptions.snapshot().values()}
    assert names == {"Pirate Ship", "Deck", 'The "Black" Pearl'}
    with DataDir(data_dir) as data:  # the store holds them: the truth every command reads
        assert data.store.counts()["items"] == 3
    ship = next(d for d in engine.item_descriptions.snapshot().values() if d[name][0]["@value"] == "Pirate Ship")
    assert engine.bags.n_items == 3
    assert {"@value": "material:Brass"} in ship["https://backpack.dev/ns#features"]
    assert "material:Brass" in item_features(ship)


def test_cli_text_output_names_the_bad_files_and_a_clean_folder_exits_zero(scenes, tmp_path, capsys):
    code = cli.main(["import", str(scenes), "--no-progress", "--data-dir", str(tmp_path / "a")])
    out, _ = capsys.readouterr()
    assert code == 1 and "2 scene file(s) failed" in out and "broken.glb: at byte" in out
    for bad in ("props/broken.glb", "props/deep/broken.tscn"):
        (scenes / bad).unlink()
    code = cli.main(["import", str(scenes), "--no-progress", "--data-dir", str(tmp_path / "b")])
    out, _ = capsys.readouterr()
    assert code == 0 and "3 item descriptions" in out and "failed" not in out


def test_a_bad_interaction_file_still_stops_everything(scenes, tmp_path, capsys):
    (tmp_path / "log.csv").write_text("user,item\nu1\n")
    code = cli.main(["import", str(scenes), str(tmp_path / "log.csv"), "--json", "--data-dir", str(tmp_path / "state")])
    assert code == 2 and "log.csv:2" in capsys.readouterr().err
    with DataDir(tmp_path / "state") as data:  # nothing of the import was stored
        assert data.store.counts()["items"] == 0 and data.store.watermark() == 0 and data.latest() is None


def test_a_scene_file_can_be_imported_alone_next_to_interactions(tmp_path, capsys):
    (tmp_path / "ship.tscn").write_text(TSCN)
    (tmp_path / "log.csv").write_text("user,item\nu1,x\n")
    code = cli.main(
        [
            "import",
            str(tmp_path / "ship.tscn"),
            str(tmp_path / "log.csv"),
            "--json",
            "--data-dir",
            str(tmp_path / "state"),
        ]
    )
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["items"] == 1 and summary["interactions"] == 1
    assert summary["scenes"] == {"files": 1, "imported": 1, "failed": []}
    engine = Engine.open(tmp_path / "state")
    assert len(engine.item_descriptions) == 1
