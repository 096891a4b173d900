"""Built-in plugin: the JSON-LD contexts bundled with Backpack, served offline."""

from backpack.hookspecs import hookimpl
from backpack.jsonld.contexts import BUNDLED


@hookimpl
def register_vocabularies(register):
    for bundled in BUNDLED:
        register(
            bundled.iri, bundled.load(), description=bundled.description, aliases=bundled.aliases, prefix=bundled.prefix
        )
