"""The GDExtension bridge, loaded into a fake Godot (tests/godot_host.py).

The host plays Godot's side of the C ABI, as Godot 4.2 (the oldest version the
bridge supports) and as 4.5, each offering the functions of its own interface
header with that header's signatures; these tests check that the library
asks only for functions the host knows (the newer ones where 4.5 deprecates
the 4.2 ones, and those where the host is 4.2), registers BackpackEngine with the
documented methods at the scene level, answers through both the Variant
`call` and the typed `ptrcall` entry points exactly as backpack.Engine
answers on the same data, reports bad input through Godot's error channels,
and leaves no value alive or destroyed twice.
"""

from __future__ import annotations

import ctypes
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from godot_host import (
    ARRAY,
    BOOL,
    CALL_INVALID_ARGUMENT,
    CALL_OK,
    CALL_TOO_FEW,
    CALL_TOO_MANY,
    DICTIONARY,
    FALLBACK_SINCE,
    FLOAT,
    IMPLEMENTED,
    INT,
    LEVELS,
    PACKED_FLOAT32_ARRAY,
    PACKED_STRING_ARRAY,
    STRING,
    STRING_NAME,
    Host,
    Initialization,
    Instance,
)

import backpack
from backpack.cli.godot import library_path

REPO = Path(__file__).resolve().parents[1]
GODOT_VERSIONS = ("4.2", "4.5")


def bridge_functions(list_name: str) -> set[str]:
    """The interface functions in one of godot_api.hpp's lists (BACKPACK_GODOT_FUNCTIONS_4_2 / _NEWER)."""
    text = (REPO / "cpp/godot/godot_api.hpp").read_text()
    body = re.search(rf"#define {list_name}\(X\)(.*?)(?:\n\n|\Z)", text, re.S).group(1)
    return set(re.findall(r"X\((\w+),", body))


FUNCTIONS_4_2 = bridge_functions("BACKPACK_GODOT_FUNCTIONS_4_2")
NEWER = bridge_functions("BACKPACK_GODOT_FUNCTIONS_NEWER")
# What the bridge resolves instead of a 4.2 function when Godot offers it.
REPLACES = {
    "classdb_register_extension_class5": "classdb_register_extension_class2",
    "string_new_with_utf8_chars_and_len2": "string_new_with_utf8_chars_and_len",
}

# The documented surface: name -> ([(argument, type)], return type or None, trailing defaults).
SIGNATURES = {
    "add_interaction": ([("user", STRING), ("item", STRING), ("weight", FLOAT)], None, [1.0]),
    "add_interactions": (
        [("users", PACKED_STRING_ARRAY), ("items", PACKED_STRING_ARRAY), ("weights", PACKED_FLOAT32_ARRAY)],
        None,
        [[]],
    ),
    "remove_interaction": ([("user", STRING), ("item", STRING)], BOOL, []),
    "fit_item_knn": ([("similarity", STRING), ("k", INT)], None, ["cosine", 100]),
    "recommend": ([("user", STRING), ("n", INT)], DICTIONARY, [10]),
    "recommend_bag": (
        [("items", PACKED_STRING_ARRAY), ("weights", PACKED_FLOAT32_ARRAY), ("n", INT)],
        DICTIONARY,
        [[], 10],
    ),
    "similar_items": ([("item", STRING), ("n", INT)], DICTIONARY, [10]),
    "get_user_count": ([], INT, []),
    "get_item_count": ([], INT, []),
}


class Loaded:
    """One library load: entry symbol called, every level initialised."""

    def __init__(self, version="4.5", omit=()):
        self.host = Host(version=version, omit=omit)
        # RTLD_LOCAL and a fresh handle per path: nothing leaks between loads.
        self.lib = ctypes.CDLL(str(library_path()))
        entry = self.lib.backpack_library_init
        entry.restype = ctypes.c_uint8
        entry.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.POINTER(Initialization)]
        self.init = Initialization()
        self.library_token = ctypes.create_string_buffer(8)
        self.ok = entry(
            ctypes.cast(self.host.get_proc_address, ctypes.c_void_p),
            ctypes.addressof(self.library_token),
            ctypes.byref(self.init),
        )

    def initialize(self):
        from godot_host import LEVEL_FUNC

        self._init_fn, self._deinit_fn = LEVEL_FUNC(self.init.initialize), LEVEL_FUNC(self.init.deinitialize)
        for level in LEVELS:
            self._init_fn(self.init.userdata, level)
        return self.host.classes["BackpackEngine"]

    def deinitialize(self):
        for level in reversed(LEVELS):
            self._deinit_fn(self.init.userdata, level)


def newer_than(version):
    """The newer functions the bridge asks for first that a Godot of ``version`` does not offer."""

    def as_tuple(v):
        return tuple(int(part) for part in v.split("."))

    return {name for name in REPLACES if as_tuple(FALLBACK_SINCE[name]) > as_tuple(version)}


@pytest.fixture(params=GODOT_VERSIONS, ids=lambda v: f"godot-{v}")
def loaded(request):
    lib = Loaded(version=request.param)
    # a 4.2 Godot answers null for the newer functions (the bridge then asks for the 4.2 ones)
    assert set(lib.host.unknown) == newer_than(request.param), (
        f"the extension asked for functions this host does not offer: {lib.host.unknown}"
    )
    assert lib.ok == 1
    yield lib
    assert not lib.host.errors, "\n".join(lib.host.errors)


def random_data(seed=3, n_users=40, n_items=30, n=400):
    rng = np.random.default_rng(seed)
    users = [f"user-{u}" for u in rng.integers(0, n_users, n)]
    items = [f"item-{i}" for i in (rng.zipf(1.6, n) % n_items)]
    weights = rng.uniform(0.5, 3.0, n).astype(np.float32)
    return users, items, weights


def python_engine(users, items, weights, **fit):
    engine = backpack.Engine()
    engine.add_interactions(users, items, weights)
    engine.fit("itemknn", **fit)
    return engine


def expected(recs):
    return [r.item for r in recs], [r.score for r in recs]


def assert_same(got, recs):
    items, scores = expected(recs)
    assert got["items"] == items
    np.testing.assert_allclose(got["scores"], scores, atol=1e-5, rtol=0)


def test_requests_only_known_functions_and_registers_at_scene_level(loaded):
    host = loaded.host
    if host.version == "4.5":  # the newer functions, and not the 4.2 ones they replace
        assert set(host.requested) == (FUNCTIONS_4_2 - set(REPLACES.values())) | NEWER
    else:  # asked for the newer ones first, given null, then the 4.2 ones
        assert set(host.requested) == FUNCTIONS_4_2 | set(REPLACES)
    assert set(host.requested) <= set(IMPLEMENTED)
    assert loaded.init.minimum_initialization_level == 2
    cls = loaded.initialize()
    assert (cls.name, cls.parent) == ("BackpackEngine", "RefCounted")
    assert cls.info_version == (4 if host.version == "4.5" else 2)
    assert {name: (m.arguments, m.returns, m.defaults) for name, m in cls.methods.items()} == SIGNATURES
    for name in ("recommend", "recommend_bag", "similar_items", "get_user_count", "get_item_count"):
        assert cls.methods[name].flags & 4, f"{name} should be registered const"
    loaded.deinitialize()
    assert host.unregistered == ["BackpackEngine"]
    assert host.values == {}, "values left alive after deinitialisation"


@pytest.mark.parametrize("version", GODOT_VERSIONS)
def test_missing_interface_function_refuses_to_load_and_is_named(version):
    lib = Loaded(version=version, omit=("variant_call", "dictionary_operator_index"))
    assert lib.ok == 0
    assert set(lib.host.unknown) == {"dictionary_operator_index", "variant_call"} | newer_than(version)
    assert any("variant_call" in message and "dictionary_operator_index" in message for _, message in lib.host.printed)


def test_a_godot_without_the_newer_function_or_the_old_one_is_told_the_old_ones_name():
    # a 4.2 Godot lacking classdb_register_extension_class2: the bridge names what 4.2 should have
    lib = Loaded(version="4.2", omit=("classdb_register_extension_class2",))
    assert lib.ok == 0
    assert any(message == "missing: classdb_register_extension_class2" for _, message in lib.host.printed)


@pytest.mark.parametrize("version", GODOT_VERSIONS)
def test_the_newer_functions_are_used_where_godot_offers_them(version):
    lib = Loaded(version=version)
    cls = lib.initialize()
    engine = Instance(lib.host, cls)
    engine.ptrcall("add_interaction", "ana", "hat", 1.0)
    engine.ptrcall("fit_item_knn", "cosine", 10)
    assert engine.ptrcall("similar_items", "hat", 3) == {"items": [], "scores": []}
    got = engine.call("recommend", "ben", 1)[0]  # an unknown user: the popularity fill, a String made by the bridge
    assert got["items"] == ["hat"] and got["scores"][0] < 0
    called = lib.host.called
    if version == "4.5":
        assert called["classdb_register_extension_class5"] == 1 and called["string_new_with_utf8_chars_and_len2"]
        assert not called["classdb_register_extension_class2"] and not called["string_new_with_utf8_chars_and_len"]
    else:
        assert called["classdb_register_extension_class2"] == 1 and called["string_new_with_utf8_chars_and_len"]
    engine.free()
    lib.deinitialize()
    assert lib.host.values == {} and not lib.host.errors


@pytest.mark.parametrize(
    ("version", "notify", "constructed_by"),
    [
        ("4.2", True, "classdb_construct_object"),  # Info2's create: the old function notifies
        ("4.5", True, "classdb_construct_object"),  # Godot asks the bridge to notify: the old function does
        ("4.5", False, "classdb_construct_object2"),  # Godot will notify itself: construct without notifying
    ],
)
def test_every_object_gets_notification_postinitialize_once(version, notify, constructed_by):
    lib = Loaded(version=version)
    host = lib.host
    engine = Instance(host, lib.initialize(), notify_postinitialize=notify)
    assert host.constructed[engine.object] == constructed_by
    assert host.postinitialized[engine.object] == 1
    assert engine.ptrcall("get_user_count") == 0
    engine.free()
    lib.deinitialize()
    assert not host.errors


@pytest.mark.parametrize("fit", [{}, {"similarity": "bm25", "k": 5}, {"similarity": "jaccard", "k": 3}])
def test_call_and_ptrcall_equal_the_python_engine(loaded, fit):
    users, items, weights = random_data()
    py = python_engine(users, items, weights, **fit)
    cls = loaded.initialize()
    engine = Instance(loaded.host, cls)

    half = len(users) // 2
    _, err = engine.call("add_interactions", users[:half], items[:half], weights[:half].tolist())
    assert err.error == CALL_OK
    assert engine.ptrcall("add_interactions", users[half:-1], items[half:-1], weights[half:-1].tolist()) is None
    _, err = engine.call("add_interaction", users[-1], items[-1], float(weights[-1]))
    assert err.error == CALL_OK
    assert engine.ptrcall("get_user_count") == py.bags.n_users
    assert engine.call("get_item_count")[0] == py.bags.n_items

    # no arguments: the defaults, which are Python's
    _, err = engine.call("fit_item_knn", *([fit["similarity"], fit["k"]] if fit else []))
    assert err.error == CALL_OK

    for user in sorted(set(users))[:12] + ["nobody"]:
        want = py.recommend(user, 7)
        got, err = engine.call("recommend", user, 7)
        assert err.error == CALL_OK
        assert_same(got, want)
        assert_same(engine.ptrcall("recommend", user, 7), want)
    for user in sorted(set(users))[:3]:
        assert_same(engine.call("recommend", user)[0], py.recommend(user))  # n = 10
    for item in sorted(set(items))[:10]:
        want = py.similar_items(item, 6)
        assert_same(engine.call("similar_items", item, 6)[0], want)
        assert_same(engine.ptrcall("similar_items", item, 6), want)

    bag = [items[0], items[5], items[0], items[9]]
    bag_weights = [1.0, 2.5, 0.5, 1.5]
    want = py.recommend_bag(bag, bag_weights, n=8)
    assert_same(engine.call("recommend_bag", bag, bag_weights, 8)[0], want)
    assert_same(engine.ptrcall("recommend_bag", bag, bag_weights, 8), want)
    # no weights: 1 each
    assert_same(engine.ptrcall("recommend_bag", bag, [], 8), py.recommend_bag(bag, n=8))
    assert_same(engine.call("recommend_bag", bag)[0], py.recommend_bag(bag))

    engine.free()
    loaded.deinitialize()
    assert loaded.host.values == {}, "values leaked or left alive"


def test_edge_cases_match_the_python_engine(loaded):
    users, items, weights = random_data(seed=5)
    py = python_engine(users, items, weights)
    engine = Instance(loaded.host, loaded.initialize())
    engine.ptrcall("add_interactions", users, items, weights.tolist())
    engine.ptrcall("fit_item_knn", "cosine", 100)

    # unknown user: the popularity fill, negative scores, as in Python
    got = engine.ptrcall("recommend", "stranger", 5)
    assert_same(got, py.recommend("stranger", 5))
    assert all(s < 0 for s in got["scores"])
    # empty bag: popular items too
    assert_same(engine.call("recommend_bag", [], [], 4)[0], py.recommend_bag([], n=4))
    # n = 0 and n beyond the catalogue
    assert engine.call("recommend", users[0], 0)[0] == {"items": [], "scores": []}
    assert_same(engine.ptrcall("similar_items", items[0], 10_000), py.similar_items(items[0], 10_000))
    # what Godot's own methods accept in a Variant call: StringName for String, Array for packed arrays
    assert_same(engine.call("recommend", users[1], 5, types=[STRING_NAME, INT])[0], py.recommend(users[1], 5))
    bag = [items[2], items[3]]
    assert_same(
        engine.call("recommend_bag", bag, [2.0, 1], 6, types=[ARRAY, ARRAY, INT])[0],
        py.recommend_bag(bag, [2.0, 1.0], n=6),
    )
    _, err = engine.call("recommend_bag", {"not": "a list"}, [], 6, types=[DICTIONARY, ARRAY, INT])
    assert (err.error, err.argument, err.expected) == (CALL_INVALID_ARGUMENT, 0, PACKED_STRING_ARRAY)
    # removing a pair: True once (through call), then False (through ptrcall); the next fit agrees with Python's
    user = users[0]
    item = min(py.bags.bag(user))
    result, err = engine.call("remove_interaction", user, item)
    assert (result, err.error) == (True, CALL_OK)
    assert engine.ptrcall("remove_interaction", user, item) is False
    assert engine.call("remove_interaction", "stranger", item)[0] is False
    assert py.remove_interaction(user, item)
    engine.ptrcall("fit_item_knn", "cosine", 100)
    py.fit("itemknn")
    assert_same(engine.ptrcall("recommend", user, 8), py.recommend(user, 8))
    # non-ASCII ids survive both directions
    engine.ptrcall("add_interaction", "jürgen", "höhle-🎒", 2.0)
    engine.ptrcall("add_interaction", "jürgen", items[0], 1.0)
    engine.ptrcall("add_interaction", "zoë", "höhle-🎒", 1.0)
    engine.ptrcall("fit_item_knn", "cosine", 100)
    assert "höhle-🎒" in engine.ptrcall("similar_items", items[0], 50)["items"]

    engine.free()
    loaded.deinitialize()
    assert loaded.host.values == {}


def test_an_engine_without_interactions_fits_and_answers_empty(loaded):
    engine = Instance(loaded.host, loaded.initialize())
    assert engine.call("fit_item_knn", "bm25", 10)[1].error == CALL_OK
    assert engine.call("recommend", "anyone", 5)[0] == {"items": [], "scores": []}
    assert engine.ptrcall("recommend_bag", [], [], 5) == {"items": [], "scores": []}
    _, err = engine.call("similar_items", "anything", 5)
    assert (err.error, err.argument) == (CALL_INVALID_ARGUMENT, 0)
    engine.free()
    loaded.deinitialize()
    assert loaded.host.values == {}


def test_errors_go_through_the_call_error_struct_not_a_crash(loaded):
    host = loaded.host
    engine = Instance(host, loaded.initialize())

    # not fitted yet
    result, err = engine.call("recommend", "u", 3)
    assert (err.error, err.argument, err.expected) == (CALL_INVALID_ARGUMENT, 0, STRING)
    assert result is None and "fit_item_knn" in host.printed[-1][1]

    engine.ptrcall("add_interactions", ["u1", "u1", "u2"], ["a", "b", "b"], [])
    engine.ptrcall("fit_item_knn", "cosine", 10)

    # unknown item in a bag / for similar items
    result, err = engine.call("recommend_bag", ["a", "nope"], [], 3)
    assert (err.error, err.argument, err.expected) == (CALL_INVALID_ARGUMENT, 0, PACKED_STRING_ARRAY)
    assert "unknown item 'nope'" in host.printed[-1][1]
    _, err = engine.call("similar_items", "nope", 3)
    assert (err.error, err.argument) == (CALL_INVALID_ARGUMENT, 0)
    # ptrcall has no error channel: logged, the return stays the empty Dictionary Godot passed
    printed = len(host.printed)
    assert engine.ptrcall("similar_items", "nope", 3) == {}
    assert len(host.printed) == printed + 1 and "unknown item" in host.printed[-1][1]

    # wrong Variant types and counts are refused before anything runs
    _, err = engine.call("recommend", 7, 3, types=[INT, INT])
    assert (err.error, err.argument, err.expected) == (CALL_INVALID_ARGUMENT, 0, STRING)
    _, err = engine.call("similar_items")
    assert (err.error, err.argument) == (CALL_TOO_FEW, 1)
    _, err = engine.call("get_user_count", 1, types=[INT])
    assert (err.error, err.argument) == (CALL_TOO_MANY, 0)
    _, err = engine.call("add_interaction", "u3", "a")  # weight 1
    assert err.error == CALL_OK
    _, err = engine.call("add_interaction", "u3", "a", 2)  # an int where a float is declared is fine
    assert err.error == CALL_OK

    # bad values: blamed on the argument that carries them, nothing stored
    before = engine.ptrcall("get_user_count")
    _, err = engine.call("add_interactions", ["x", "y"], ["a"], [])
    assert (err.error, err.argument) == (CALL_INVALID_ARGUMENT, 1)
    _, err = engine.call("add_interactions", ["x"], ["a"], [-1.0])
    assert (err.error, err.argument) == (CALL_INVALID_ARGUMENT, 2)
    _, err = engine.call("add_interactions", ["x", "y"], ["a", "b"], [1.0])
    assert (err.error, err.argument) == (CALL_INVALID_ARGUMENT, 2)
    _, err = engine.call("add_interaction", "", "a", 1.0)
    assert (err.error, err.argument) == (CALL_INVALID_ARGUMENT, 0)
    assert engine.ptrcall("get_user_count") == before
    _, err = engine.call("recommend", "u1", -1)
    assert (err.error, err.argument, err.expected) == (CALL_INVALID_ARGUMENT, 1, INT)
    _, err = engine.call("fit_item_knn", "euclid", 10)
    assert (err.error, err.argument) == (CALL_INVALID_ARGUMENT, 0)
    _, err = engine.call("fit_item_knn", "cosine", 0)
    assert (err.error, err.argument) == (CALL_INVALID_ARGUMENT, 1)
    # the engine still works after all that
    assert engine.call("recommend", "u2", 2)[0]["items"] == ["a"]

    engine.free()
    loaded.deinitialize()
    assert host.values == {}


def test_only_the_entry_symbol_is_exported():
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not available")
    out = subprocess.run(
        [nm, "-D", "--defined-only", str(library_path())], capture_output=True, text=True, check=True
    ).stdout
    exported = {line.split()[-1] for line in out.splitlines() if line.split()[-2:-1] == ["T"]}
    assert exported == {"backpack_library_init"}


def test_gdextension_file_names_the_entry_symbol_and_this_platforms_library():
    text = (REPO / "godot_addon/addons/backpack/backpack.gdextension").read_text()
    assert 'entry_symbol = "backpack_library_init"' in text
    assert 'compatibility_minimum = "4.2"' in text
    assert f'"res://addons/backpack/bin/{library_path().name}"' in text


def test_gdscript_files_parse_and_lint():
    files = sorted((REPO / "godot_addon").rglob("*.gd")) + sorted((REPO / "examples/godot_demo").rglob("*.gd"))
    for path in files:
        for tool in ("gdparse", "gdlint"):
            exe = shutil.which(tool, path=str(Path(sys.executable).parent)) or shutil.which(tool)
            assert exe, f"{tool} (gdtoolkit) is not installed"
            done = subprocess.run([exe, str(path)], check=False, capture_output=True, text=True)
            assert done.returncode == 0, f"{tool} {path}:\n{done.stdout}{done.stderr}"


# -- backpack godot install -------------------------------------------------------


def test_godot_install_refuses_a_folder_without_project_godot(tmp_path, capsys):
    from backpack.cli.main import main

    assert main(["godot", "install", str(tmp_path)]) == 2
    assert "project.godot" in capsys.readouterr().err
    assert not (tmp_path / "addons").exists()


def test_godot_install_copies_addon_and_library_idempotently(tmp_path, capsys):
    from backpack.cli.main import main

    (tmp_path / "project.godot").write_text("config_version=5\n")
    assert main(["godot", "install", str(tmp_path), "--json"]) == 0
    first = sorted(json.loads(capsys.readouterr().out)["installed"])
    target = tmp_path / "addons" / "backpack"
    assert str(target / "backpack.gdextension") in first
    library = target / "bin" / library_path().name
    assert library.read_bytes() == library_path().read_bytes()
    assert (target / "backpack.gdextension").read_text() == (
        REPO / "godot_addon/addons/backpack/backpack.gdextension"
    ).read_text()

    (target / "my_notes.txt").write_text("mine")
    (target / "backpack.gdextension").write_text("stale")
    assert main(["godot", "install", str(tmp_path), "--json"]) == 0
    assert sorted(json.loads(capsys.readouterr().out)["installed"]) == first
    assert (target / "my_notes.txt").read_text() == "mine"
    assert "backpack_library_init" in (target / "backpack.gdextension").read_text()


def test_godot_install_force_skips_the_project_check(tmp_path, capsys):
    from backpack.cli.main import main

    assert main(["godot", "install", str(tmp_path / "new"), "--force"]) == 0
    assert (tmp_path / "new/addons/backpack/bin" / library_path().name).is_file()
    assert "installed" in capsys.readouterr().out


def test_godot_install_without_a_built_library_says_how_to_build_it(tmp_path, monkeypatch, capsys):
    import backpack.cli.godot as addon
    from backpack.cli.main import main

    shutil.copytree(addon.PACKAGED / "addon", tmp_path / "packaged" / "addon")
    monkeypatch.setattr(addon, "PACKAGED", tmp_path / "packaged")  # addon files, no library
    (tmp_path / "game").mkdir()
    (tmp_path / "game" / "project.godot").write_text("")
    assert main(["godot", "install", str(tmp_path / "game")]) == 2
    assert "BACKPACK_GDEXTENSION" in capsys.readouterr().err
    assert not (tmp_path / "game" / "addons").exists()
