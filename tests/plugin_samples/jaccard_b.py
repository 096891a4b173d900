"""Claims 'shared' too: a conflict with jaccard_a."""

from backpack import ItemKNN, hookimpl


@hookimpl
def register_algorithms(register):
    register("shared", ItemKNN)
