"""Built-in plugin: the RP3beta algorithm."""

from backpack.hookspecs import hookimpl
from backpack.itemknn import RP3Beta


@hookimpl
def register_algorithms(register):
    register("rp3beta", RP3Beta, description="RP3beta: popularity-penalised item -> user -> item random walk")
