"""The bridge's declarations of the GDExtension ABI held against Godot's own header.

``cpp/godot/abi_check.cpp`` includes Godot's ``gdextension_interface.h`` and
the bridge's ``gdextension_abi.hpp`` / ``godot_api.hpp`` and checks with
static_assert, for the 4.2 and 4.5 headers in ``../shared/godot``: the size,
alignment and every field's offset (and size and kind) of each struct the
bridge declares, every enum value it uses, and for each interface function it
resolves, that Godot's function-pointer typedef and the bridge's field have the
same number of parameters and the same size and kind of each parameter and of
the result. Here it is compiled for both headers, then compiled again from a
scratch copy with one mismatch planted, which must fail with the
static_assert that names it. The mapping it checks (godot_api.hpp's lists) is
also held against the header's own ``@name`` for each typedef.

Skipped with the reason when the headers or a C++ compiler are missing, except
under CI, which must have both.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from godot_header import VERSIONS, functions, header_path, in_ci, require_headers

REPO = Path(__file__).resolve().parents[1]
BRIDGE = REPO / "cpp" / "godot"
CHECK_FILES = ("abi_check.cpp", "gdextension_abi.hpp", "godot_api.hpp")


@pytest.fixture(scope="module")
def compiler() -> str:
    require_headers()
    for name in (os.environ.get("CXX"), "g++", "c++", "clang++"):
        if name and shutil.which(name):
            return shutil.which(name)
    if in_ci():
        pytest.fail("no C++ compiler (g++, c++, clang++ or $CXX): CI must compile the ABI check")
    pytest.skip("no C++ compiler (g++, c++, clang++ or $CXX) to compile the ABI check with")


def compile_check(compiler: str, version: str, folder: Path = BRIDGE) -> subprocess.CompletedProcess:
    """abi_check.cpp from ``folder`` against Godot's header of ``version``, syntax only."""
    minor = version.split(".")[1]
    return subprocess.run(
        [
            compiler,
            "-std=c++17",
            "-fsyntax-only",
            f'-DBACKPACK_GODOT_HEADER="{header_path(version)}"',
            f"-DBACKPACK_GODOT_MINOR={minor}",
            str(folder / "abi_check.cpp"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("version", VERSIONS)
def test_the_bridge_matches_godots_header(compiler, version):
    done = compile_check(compiler, version)
    assert done.returncode == 0, f"the bridge differs from Godot {version}'s header:\n{done.stderr}"


# (file, what is there, what is planted, the header it fails against, the message expected)
PLANTS = {
    "field offset": (
        "gdextension_abi.hpp",
        "    uint32_t flags;\n    Bool has_return_value;\n",
        "    Bool has_return_value;\n    uint32_t flags;\n",
        "4.2",
        "MethodInfo::flags: offset differs from GDExtensionClassMethodInfo::method_flags",
    ),
    "field size": (
        "gdextension_abi.hpp",
        "    uint32_t hint;\n",
        "    uint64_t hint;\n",
        "4.5",
        "PropertyInfo::hint: size or kind differs from GDExtensionPropertyInfo::hint",
    ),
    "struct size": (
        "gdextension_abi.hpp",
        "    void *get_rid_func;\n",
        "    void *get_rid_func;\n    void *extra;\n",
        "4.5",
        "ClassCreationInfo2: size differs from GDExtensionClassCreationInfo2",
    ),
    "parameter size": (
        "godot_api.hpp",
        "char *r_text, Int max_bytes)",
        "char *r_text, int32_t max_bytes)",
        "4.2",
        "Api::string_to_utf8_chars: a parameter differs in size or kind from GDExtensionInterfaceStringToUtf8Chars",
    ),
    "parameter kind": (
        "godot_api.hpp",
        "Ptr (*packed_string_array_operator_index)(Ptr self, Int index);",
        "Ptr (*packed_string_array_operator_index)(Ptr self, double index);",
        "4.5",
        "Api::packed_string_array_operator_index: a parameter differs in size or kind from "
        "GDExtensionInterfacePackedStringArrayOperatorIndex",
    ),
    "arity": (
        "godot_api.hpp",
        "(VariantType type, int32_t index)",
        "(VariantType type)",
        "4.2",
        "Api::variant_get_ptr_constructor: number of parameters differs from "
        "GDExtensionInterfaceVariantGetPtrConstructor",
    ),
    "result": (
        "godot_api.hpp",
        "    VariantType (*variant_get_type)",
        "    Int (*variant_get_type)",
        "4.5",
        "Api::variant_get_type: result differs in size or kind from GDExtensionInterfaceVariantGetType",
    ),
    "callback parameter": (
        "gdextension_abi.hpp",
        "const ConstPtr *args, Int argc,",
        "const ConstPtr *args, int argc,",
        "4.2",
        "MethodCall: a parameter differs in size or kind from GDExtensionClassMethodCall",
    ),
    "enum value": (
        "gdextension_abi.hpp",
        "    Dictionary = 27,",
        "    Dictionary = 26,",
        "4.2",
        "VariantType::Dictionary differs from GDEXTENSION_VARIANT_TYPE_DICTIONARY",
    ),
    "newer struct": (
        "gdextension_abi.hpp",
        "(void *class_userdata, Bool notify_postinitialize)",
        "(void *class_userdata)",
        "4.5",
        "ClassCreationInfo4::create_instance_func: size or kind differs from "
        "GDExtensionClassCreationInfo5::create_instance_func",
    ),
    "newer function": (
        "godot_api.hpp",
        "    Int (*string_new_with_utf8_chars_and_len2)",
        "    void (*string_new_with_utf8_chars_and_len2)",
        "4.5",
        "Api::string_new_with_utf8_chars_and_len2: result differs in size or kind from "
        "GDExtensionInterfaceStringNewWithUtf8CharsAndLen2",
    ),
}


@pytest.mark.parametrize("plant", PLANTS, ids=str)
def test_a_planted_mismatch_fails_the_check_with_its_message(compiler, tmp_path, plant):
    file, original, planted, version, message = PLANTS[plant]
    for name in CHECK_FILES:
        shutil.copy(BRIDGE / name, tmp_path / name)
    text = (tmp_path / file).read_text()
    assert text.count(original) == 1, f"{file} no longer holds {original!r}: update this plant"
    (tmp_path / file).write_text(text.replace(original, planted))
    done = compile_check(compiler, version, tmp_path)
    assert done.returncode != 0, f"planting {planted!r} in {file} did not fail the check"
    assert f"static assertion failed: {message}" in done.stderr, done.stderr


def mapping(list_name: str) -> dict[str, str]:
    """godot_api.hpp's list ``list_name``: Api field (= the name Godot looks it up by) -> Godot's typedef."""
    text = (BRIDGE / "godot_api.hpp").read_text()
    body = re.search(rf"#define {list_name}\(X\)(.*?)(?:\n\n|\Z)", text, re.S).group(1)
    return dict(re.findall(r"X\((\w+), (\w+)\)", body))


def test_the_mapping_names_godots_typedef_for_each_function():
    require_headers()
    old, newer = mapping("BACKPACK_GODOT_FUNCTIONS_4_2"), mapping("BACKPACK_GODOT_FUNCTIONS_NEWER")
    assert len(old) == 21 and len(newer) == 3
    for version in VERSIONS:
        declared = functions(version)
        for name, typedef in old.items():
            assert name in declared, f"Godot {version} has no interface function {name}"
            assert declared[name].typedef == typedef, f"{name} is declared as {declared[name].typedef} in {version}"
    declared_42, declared_45 = functions("4.2"), functions("4.5")
    for name, typedef in newer.items():
        assert name not in declared_42, f"{name} is in 4.2's header: it needs no fallback"
        assert declared_45[name].typedef == typedef and declared_45[name].deprecated is None


def test_the_functions_45_deprecates_are_those_the_bridge_replaces():
    """Of the 4.2 functions the bridge resolves, 4.5 deprecates exactly three; each has its replacement."""
    require_headers()
    declared = functions("4.5")
    deprecated = {name for name in mapping("BACKPACK_GODOT_FUNCTIONS_4_2") if declared[name].deprecated}
    assert deprecated == {
        "classdb_register_extension_class2",
        "classdb_construct_object",
        "string_new_with_utf8_chars_and_len",
    }
    assert set(mapping("BACKPACK_GODOT_FUNCTIONS_NEWER")) == {
        "classdb_register_extension_class5",
        "classdb_construct_object2",
        "string_new_with_utf8_chars_and_len2",
    }
