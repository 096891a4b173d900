"""An event observer that always raises."""

from backpack import hookimpl


@hookimpl
def interactions_recorded(engine):
    raise ValueError("observer exploded")
