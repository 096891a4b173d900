"""Registers the algorithm 'twice' two times."""

from backpack import ItemKNN, hookimpl


@hookimpl
def register_algorithms(register):
    register("twice", ItemKNN, description="the first")
    register("twice", dict, description="the second")
