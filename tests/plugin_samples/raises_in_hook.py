"""A plugin whose registration hook raises (after registering something)."""

from backpack import hookimpl


@hookimpl
def register_algorithms(register):
    register("half-registered", dict)
    raise RuntimeError("boom while registering")
