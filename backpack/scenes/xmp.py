"""``KHR_xmp_json_ld`` packets of a glTF file: which packet applies to what, and what it says.

The file's top-level ``extensions.KHR_xmp_json_ld.packets`` holds JSON-LD
objects (XMP as JSON-LD: Dublin Core ``dc:``, ``xmpRights:``, ...); an
object (the asset, a scene, node, mesh, material, animation or image) points
at one with ``extensions.KHR_xmp_json_ld.packet``. Several objects may share
a packet; a packet nobody points at is still the file's metadata and is kept.

Properties are found under whatever prefix the packet's own ``@context``
binds to the namespace (``dc:title`` usually, ``dcterms``-style aliases too)
or under the full IRI; values may be plain strings, ``@value`` objects,
``@list`` / ``@set`` containers or ``rdf:Alt`` / ``rdf:Bag`` / ``rdf:Seq``
nodes with ``rdf:_1``, ``rdf:_2``, ... members, as the extension's examples
write them. For a single text (a title) the ``x-default`` or English
alternative wins, else the first.
"""

from __future__ import annotations

import re

DC = "http://purl.org/dc/elements/1.1/"
XMP_RIGHTS = "http://ns.adobe.com/xap/1.0/rights/"
_DEFAULT_PREFIXES = {DC: "dc", XMP_RIGHTS: "xmpRights"}
_MEMBER = re.compile(r"^(?:rdf:)?_(\d+)$")
_PREFERRED_LANGUAGES = ("x-default", "en")


class XmpPackets:
    """The packets of one file and the JSON pointers (``/asset``, ``/nodes/3``) of the objects using each."""

    def __init__(self, packets: list[dict]):
        self.packets = packets
        self.users: list[list[str]] = [[] for _ in packets]

    def attach(self, number: int, pointer: str) -> None:
        """Record that the object at ``pointer`` uses packet ``number``."""
        self.users[number].append(pointer)

    def kept(self) -> list[dict]:
        """Every packet as given (with its own ``@context``) and the objects it applies to."""
        return [
            {"backpack:appliesTo": users, "backpack:packet": packet} for packet, users in zip(self.packets, self.users)
        ]

    def _packets_of(self, pointers) -> list[dict]:
        """Packets used by ``pointers`` in that order (None: every packet, used or not)."""
        if pointers is None:
            return list(self.packets)
        found = []
        for pointer in pointers:
            for packet, users in zip(self.packets, self.users):
                if pointer in users and packet not in found:
                    found.append(packet)
        return found

    def first_text(self, pointers, name: str, namespace: str = DC) -> str | None:
        """The first text of property ``name`` in the packets of ``pointers`` (preferred language first)."""
        for packet in self._packets_of(pointers):
            entries = _entries(_property(packet, namespace, name))
            if entries:
                return _preferred(entries)
        return None

    def all_texts(self, pointers, name: str, namespace: str = DC) -> list[str]:
        """Every text of property ``name`` in those packets, each once, in order."""
        texts: dict[str, None] = {}
        for packet in self._packets_of(pointers):
            for text, _ in _entries(_property(packet, namespace, name)):
                texts.setdefault(text)
        return list(texts)

    def licence(self, pointers) -> str | None:
        """The usage terms: ``xmpRights:WebStatement`` (a URL), ``xmpRights:UsageTerms``, else ``dc:rights``."""
        return (
            self.first_text(pointers, "WebStatement", XMP_RIGHTS)
            or self.first_text(pointers, "UsageTerms", XMP_RIGHTS)
            or self.first_text(pointers, "rights")
        )


def _prefixes(packet: dict, namespace: str) -> list[str]:
    """The prefixes the packet's ``@context`` binds to ``namespace`` (the usual one if it binds none)."""
    contexts = packet.get("@context")
    contexts = contexts if isinstance(contexts, list) else [contexts]
    bound, taken = [], set()
    for context in contexts:
        if not isinstance(context, dict):
            continue
        for prefix, value in context.items():
            iri = value.get("@id") if isinstance(value, dict) else value
            taken.add(prefix)
            if iri == namespace:
                bound.append(prefix)
    default = _DEFAULT_PREFIXES.get(namespace)
    if not bound and default and default not in taken:
        bound.append(default)
    return bound


def _property(packet: dict, namespace: str, name: str):
    for key in [f"{prefix}:{name}" for prefix in _prefixes(packet, namespace)] + [namespace + name]:
        if key in packet:
            return packet[key]
    return None


def _entries(value) -> list[tuple[str, str | None]]:
    """(text, language) pairs of an XMP value, in document order."""
    if value is None:
        return []
    if isinstance(value, bool):
        return [(str(value).lower(), None)]
    if isinstance(value, (str, int, float)):
        text = str(value).strip()
        return [(text, None)] if text else []
    if isinstance(value, list):
        return [entry for item in value for entry in _entries(item)]
    if not isinstance(value, dict):
        return []
    if "@value" in value:
        language = value.get("@language")
        return [(text, language if isinstance(language, str) else None) for text, _ in _entries(value["@value"])]
    for container in ("@list", "@set"):
        if container in value:
            return _entries(value[container])
    members = sorted((int(m.group(1)), item) for key, item in value.items() if (m := _MEMBER.match(key)))
    if members:
        return [entry for _, item in members for entry in _entries(item)]
    return _entries(value.get("rdf:li"))


def _preferred(entries: list[tuple[str, str | None]]) -> str:
    for wanted in _PREFERRED_LANGUAGES:
        for text, language in entries:
            if language and (language.lower() == wanted or language.lower().startswith(wanted + "-")):
                return text
    return entries[0][0]
