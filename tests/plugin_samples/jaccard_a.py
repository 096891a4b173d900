"""Registers an algorithm called 'jaccard-knn' (and 'shared' which jaccard_b also claims)."""

from backpack import ItemKNN, hookimpl


def jaccard(**params):
    return ItemKNN(similarity="jaccard", **params)


@hookimpl
def register_algorithms(register):
    register("jaccard-knn", jaccard, description="item-kNN on Jaccard")
    register("shared", jaccard)
