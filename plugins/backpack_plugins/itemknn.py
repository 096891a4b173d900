"""Built-in plugin: the item-kNN algorithm."""

from backpack.hookspecs import hookimpl
from backpack.itemknn import ItemKNN


@hookimpl
def register_algorithms(register):
    register("itemknn", ItemKNN,
             description="item-item k-nearest neighbours (cosine, BM25, TF-IDF, Jaccard, co-occurrence)")
