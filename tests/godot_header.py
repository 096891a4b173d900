"""Godot's own GDExtension interface headers (``../shared/godot``), read for the tests.

The repository is checked out with ``../shared`` beside it; ``shared/godot``
holds ``gdextension_interface-<version>.h`` for 4.2 (the oldest version the
bridge supports) and 4.5, unmodified. From a header this module reads every
interface function (the ``@name`` Godot looks it up by, the typedef of its
pointer, its result and parameter types, ``@since`` and ``@deprecated``).

Tests that need the headers call :func:`require_headers`: it skips with the
reason when they are absent, and fails instead under CI (``CI`` set), where
they must be.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from functools import lru_cache
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


@lru_cache(maxsize=None)
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
        found[name] = Function(name, typedef, _squash(result), tuple(_drop_name(p) for p in _split_parameters(parameters)),
                               since.group(1) if since else "", deprecated.group(1) if deprecated else None)
    return found
