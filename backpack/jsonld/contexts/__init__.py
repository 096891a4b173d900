"""The JSON-LD context documents bundled with Backpack (package data, never fetched).

Each entry of :data:`BUNDLED` is one context: the IRI documents name it by,
the other spellings its real server answers to (``aliases``), the file under
this folder, and the conventional prefix of its namespace. The built-in
``vocabularies`` plugin registers them through ``register_vocabularies``,
exactly as a third-party plugin registers its own; licences are in
``README.md`` next to the files.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

AS2_CONTEXT = "https://www.w3.org/ns/activitystreams"
SCHEMA_CONTEXT = "https://schema.org"
SECURITY_V1_CONTEXT = "https://w3id.org/security/v1"
SECURITY_V2_CONTEXT = "https://w3id.org/security/v2"
BACKPACK_CONTEXT = "https://backpack.dev/ns/v1"
#: the namespace of Backpack's own terms (``bp:score`` is ``https://backpack.dev/ns#score``)
BACKPACK_NS = "https://backpack.dev/ns#"


@dataclass(frozen=True)
class BundledContext:
    """One bundled context document and the IRIs it is served under."""

    iri: str
    filename: str
    prefix: str
    description: str
    aliases: tuple[str, ...] = ()

    def load(self) -> dict:
        """The parsed JSON document (a fresh dict on every call)."""
        return json.loads(resources.files(__package__).joinpath(self.filename).read_text(encoding="utf-8"))


# Aliases are only the spellings the real servers answer with the same
# document: w3.org serves AS2 over http and https and as ``.jsonld``;
# schema.org answers with and without the trailing slash, over both schemes,
# and names its context file in a Link header; w3id.org redirects http to https.
BUNDLED: tuple[BundledContext, ...] = (
    BundledContext(
        AS2_CONTEXT,
        "activitystreams.jsonld",
        "as",
        "ActivityStreams 2.0 (with the ActivityPub terms the W3C context carries)",
        (
            "http://www.w3.org/ns/activitystreams",
            "https://www.w3.org/ns/activitystreams.jsonld",
            "http://www.w3.org/ns/activitystreams.jsonld",
        ),
    ),
    BundledContext(
        SCHEMA_CONTEXT,
        "schemaorg.jsonld",
        "schema",
        "schema.org subset: creative works, 3D models, games, products, media, persons, actions",
        (
            "https://schema.org/",
            "http://schema.org",
            "http://schema.org/",
            "https://schema.org/docs/jsonldcontext.jsonld",
            "https://schema.org/docs/jsonldcontext.json",
            "http://schema.org/docs/jsonldcontext.jsonld",
            "http://schema.org/docs/jsonldcontext.json",
        ),
    ),
    BundledContext(
        SECURITY_V1_CONTEXT,
        "security-v1.jsonld",
        "sec",
        "W3C CCG security vocabulary v1 (publicKey, publicKeyPem, owner, ...)",
        ("http://w3id.org/security/v1",),
    ),
    BundledContext(
        SECURITY_V2_CONTEXT,
        "security-v2.jsonld",
        "sec",
        "W3C CCG security vocabulary v2 (proofs and verification methods; imports v1)",
        ("http://w3id.org/security/v2",),
    ),
    BundledContext(
        BACKPACK_CONTEXT,
        "backpack-v1.jsonld",
        "bp",
        "Backpack's own terms: scores, ranks, bags, item kinds, scene nodes (all @protected)",
    ),
)
