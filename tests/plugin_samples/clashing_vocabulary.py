"""A vocabulary plugin that rebinds an ActivityStreams term and the schema.org prefix."""

from backpack import hookimpl

ACME_CONTEXT = "https://acme.example/ns/v1"


@hookimpl
def register_vocabularies(register):
    register(ACME_CONTEXT, {"@context": {
        "Like": "https://acme.example/ns#Like",
        "schema": "https://acme.example/schema/",
        "stars": "https://acme.example/ns#stars",
    }}, prefix="acme")
