"""Built-in plugin: the EASE algorithm."""

from backpack.ease import EASE
from backpack.hookspecs import hookimpl


@hookimpl
def register_algorithms(register):
    register("ease", EASE, description="EASE: closed-form item-item regression (dense; up to max_items items)")
