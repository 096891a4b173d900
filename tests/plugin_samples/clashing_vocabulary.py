"""A vocabulary plugin that rebinds an ActivityStreams term and the schema.org prefix.

It hands its context over as JSON text, which the loader parses once.
"""

import json

from backpack import hookimpl

ACME_TERMS = {
    "Like": "https://acme.example/ns#Like",  # as:Like in ActivityStreams
    "schema": "https://acme.example/schema/",  # http://schema.org/ in schema.org's context
    "stars": "https://acme.example/ns#stars",
}


@hookimpl
def register_vocabularies(register):
    register("https://acme.example/ns/v1", json.dumps({"@context": ACME_TERMS}), prefix="acme")
