"""The fake Godot's interface functions have Godot's signatures, not ones of its own.

With the headers in ``../shared/godot`` the host (tests/godot_host.py) builds
the ctypes prototype of every function it offers from the header of the Godot
version it plays; without them it uses ``FALLBACK_PROTOTYPES``. These tests
hold that fallback, and the versions it says each newer function appeared in,
equal to what the headers declare, so a checkout without ``../shared`` tests
the bridge against the same signatures.
"""

from __future__ import annotations

import pytest
from godot_header import VERSIONS, functions, prototype, require_headers
from godot_host import FALLBACK_PROTOTYPES, FALLBACK_SINCE, IMPLEMENTED, STRUCTS, Host


def shape(proto):
    return proto._restype_, tuple(proto._argtypes_)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_fallback_prototypes_are_the_headers(version):
    require_headers()
    declared = functions(version)
    for name in IMPLEMENTED:
        if name in declared:
            assert shape(FALLBACK_PROTOTYPES[name]) == shape(prototype(version, name, STRUCTS)), (
                f"{name}: the host's fallback prototype differs from Godot {version}'s {declared[name].typedef}"
            )


def test_the_fallback_knows_when_each_newer_function_appeared():
    require_headers()
    newest = functions(VERSIONS[-1])
    since = {name: newest[name].since for name in IMPLEMENTED if newest[name].since > "4.2"}
    assert since == FALLBACK_SINCE


@pytest.mark.parametrize("version", VERSIONS)
def test_a_host_offers_what_its_versions_header_declares(version):
    require_headers()
    host = Host(version=version)
    assert set(host.prototypes) == {name for name in IMPLEMENTED if name in functions(version)}
