"""Godot's own GDExtension interface headers (``../shared/godot``), read for the tests.

The repository is checked out with ``../shared`` beside it; ``shared/godot``
holds ``gdextension_interface-<version>.h`` for 4.2 (the oldest version the
bridge supports) and 4.5, unmodified. From a header this module reads every
interface function (the ``@name`` Godot looks it up by, the typedef of its
pointer, its result and parameter types, ``@since`` and ``@deprecated``) and
turns a signature into a ctypes prototype, so the fake Godot of
``godot_host.py`` can call and be called with Godot's signatures rather than
ones written by hand.

Tests that need the headers call :func:`require_headers`: it skips with the
reason when they are absent, and fails instead under CI (``CI`` set), where
they must be.
"""

from __future__ import annotations

import ctypes as C
import os
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared" / "godot"
VERSIONS = ("4.2", "4.5")


def header_path(version: str) -> Path:
    return SHARED / f"gdextension_interface-{version}.h"


def headers_available() -> bool:
    return all(header_path(v).is_file() for v in VERSIONS)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def require_headers() -> None:
    """Skip the calling test when Godot's headers are absent; fail under CI, which must have them."""
    import pytest

    if headers_available():
        return
    missing = ", ".join(str(header_path(v)) for v in VERSIONS if not header_path(v).is_file())
    reason = f"Godot's GDExtension interface headers are not in ../shared/godot (missing {missing})"
    if in_ci():
        pytest.fail(f"{reason}: CI must check the bridge against them")
    pytest.skip(reason)


@dataclass(frozen=True)
class Function:
    """One interface function as Godot's header declares it."""

    name: str  # what get_proc_address is asked for
    typedef: str  # GDExtensionInterface...
    result: str  # C type, whitespace normalised
    parameters: tuple[str, ...]  # C types, parameter names dropped
    since: str
    deprecated: str | None  # the version that deprecated it


def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _split_parameters(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
            continue
        depth += ch == "("
        depth -= ch == ")"
        current += ch
    parts.append(current)
    parts = [_squash(p) for p in parts]
    return [] if parts in ([""], ["void"]) else parts


def _drop_name(parameter: str) -> str:
    # Godot names every parameter p_... or r_...; a bare type has none to drop.
    match = re.fullmatch(r"(.*?[\s*])([pr]_\w+)", parameter)
    return _squash(match.group(1)) if match else parameter


_DOC_BLOCK = re.compile(r"/\*\*\s*\n\s*\*\s*@name (\w+)\s*\n((?:(?!\*/).)*)\*/\s*typedef\s+([^;]*);", re.S)
_POINTER_TYPEDEF = re.compile(r"^(.*?)\(\*\s*(\w+)\)\s*\((.*)\)$", re.S)


@cache
def functions(version: str) -> dict[str, Function]:
    """Every interface function in the header of ``version``, by name."""
    text = header_path(version).read_text()
    found = {}
    for name, doc, declaration in _DOC_BLOCK.findall(text):
        match = _POINTER_TYPEDEF.match(_squash(declaration))
        if not match:
            raise ValueError(f"{name}: not a function-pointer typedef: {declaration!r}")
        result, typedef, parameters = match.groups()
        since = re.search(r"@since (\d+\.\d+)", doc)
        deprecated = re.search(r"@deprecated in Godot (\d+\.\d+)", doc)
        found[name] = Function(
            name,
            typedef,
            _squash(result),
            tuple(_drop_name(p) for p in _split_parameters(parameters)),
            since.group(1) if since else "",
            deprecated.group(1) if deprecated else None,
        )
    return found


@cache
def _type_aliases(version: str) -> dict[str, str]:
    """Godot's type names -> "pointer", "enum", "struct" or the integer type they alias."""
    text = header_path(version).read_text()
    aliases = {}
    for name in re.findall(r"typedef\s+(?:const\s+)?void\s*\*\s*(\w+);", text):
        aliases[name] = "pointer"
    for name in re.findall(r"typedef\s+[^;{}]*?\(\*\s*(\w+)\)\s*\(", text):
        aliases[name] = "pointer"  # a function pointer
    for target, name in re.findall(r"typedef\s+(u?int\d+_t)\s+(\w+);", text):
        aliases[name] = target
    for name in re.findall(r"typedef\s+enum\s*\{[^}]*\}\s*(\w+);", text):
        aliases[name] = "enum"
    for name in re.findall(r"typedef\s+struct\s*\{[^}]*\}\s*(\w+);", text):
        aliases[name] = "struct"
    for name, target in re.findall(r"typedef\s+(GDExtension\w+)\s+(GDExtension\w+);", text):
        aliases[target] = aliases.get(name, "struct")
    return aliases


_BUILTIN = {
    "void": None,
    "int": C.c_int,
    "int8_t": C.c_int8,
    "uint8_t": C.c_uint8,
    "int16_t": C.c_int16,
    "uint16_t": C.c_uint16,
    "int32_t": C.c_int32,
    "uint32_t": C.c_uint32,
    "int64_t": C.c_int64,
    "uint64_t": C.c_uint64,
    "size_t": C.c_size_t,
    "float": C.c_float,
    "double": C.c_double,
}


def ctype(version: str, c_type: str, structs: dict[str, type] | None = None):
    """The ctypes type that crosses a call as ``c_type`` does (``structs``: Godot struct name -> ctypes class).

    Pointers are ``c_void_p`` (a pointer to pointers is ``POINTER(c_void_p)``, a
    pointer to a struct in ``structs`` ``POINTER`` of it); enums are 32-bit
    integers (C enums of small values); anything else is an error, so a type
    the host cannot model is noticed rather than guessed.
    """
    aliases = _type_aliases(version)
    bare = _squash(re.sub(r"\bconst\b", " ", c_type))
    if "(*" in bare:  # a function pointer spelt out in place
        return C.c_void_p
    if bare.endswith("*"):
        pointee = bare[:-1].strip()
        if structs and pointee in structs:
            return C.POINTER(structs[pointee])
        if aliases.get(pointee) == "pointer" or pointee.endswith("*"):
            return C.POINTER(C.c_void_p)
        return C.c_void_p
    if bare in _BUILTIN:
        return _BUILTIN[bare]
    kind = aliases.get(bare)
    if kind == "pointer":
        return C.c_void_p
    if kind == "enum":
        return C.c_int32
    if kind in _BUILTIN:
        return _BUILTIN[kind]
    raise ValueError(f"no ctypes type for {c_type!r} ({kind or 'unknown'}) in Godot {version}'s header")


def prototype(version: str, name: str, structs: dict[str, type] | None = None):
    """``CFUNCTYPE`` of interface function ``name`` as the header of ``version`` declares it."""
    f = functions(version)[name]
    return C.CFUNCTYPE(ctype(version, f.result, structs), *(ctype(version, p, structs) for p in f.parameters))
