"""Built-in algorithms: every recommender Backpack ships, registered as a third party's would be.

The code of each lives in ``backpack.algorithms``; this module is only the table of contents.
"""

from backpack.algorithms.als import ALS
from backpack.algorithms.bpr import BPR
from backpack.algorithms.ease import EASE
from backpack.algorithms.embeddings import EmbeddingModel
from backpack.algorithms.hybrid import HybridRecommender
from backpack.algorithms.itemknn import ItemKNN, RP3Beta
from backpack.algorithms.popularity import Popularity
from backpack.algorithms.userknn import UserKNN
from backpack.hookspecs import hookimpl


@hookimpl
def register_algorithms(register):
    register(
        "itemknn", ItemKNN, description="item-item k-nearest neighbours (cosine, BM25, TF-IDF, Jaccard, co-occurrence)"
    )
    register("rp3beta", RP3Beta, description="RP3beta: popularity-penalised item -> user -> item random walk")
    register("userknn", UserKNN, description="user-user k-nearest neighbours from the live bag")
    register("als", ALS, description="ALS for implicit feedback (Hu, Koren & Volinsky), conjugate gradient in C++")
    register("bpr", BPR, description="Bayesian personalised ranking, parallel SGD in C++")
    register("ease", EASE, description="EASE: closed-form item-item regression (dense; up to max_items items)")
    register(
        "popularity",
        Popularity,
        description="most popular items, optionally decayed by age (half_life_days); per kind via item_kind",
    )
    register(
        "embeddings",
        EmbeddingModel,
        description="your own item vectors: a bag scores items by its mean vector (item_vectors=)",
    )
    register(
        "hybrid",
        HybridRecommender,
        description="a factor model blended with content similarity of item descriptions "
        "(content_weight=, collaborative=als); needs engine.fit_content()",
    )
