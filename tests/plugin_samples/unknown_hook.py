"""A plugin implementing a hook Backpack does not have."""

from backpack import hookimpl


@hookimpl
def register_teleporters(register):
    register("portal", object)
