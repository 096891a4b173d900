"""Built-in plugin: the hybrid recommender (collaborative + content, ``engine.fit("hybrid")``)."""

from backpack.hookspecs import hookimpl
from backpack.hybrid import HybridRecommender


@hookimpl
def register_algorithms(register):
    register("hybrid", HybridRecommender,
             description="a factor model blended with content similarity of item descriptions "
                         "(content_weight=, collaborative=als); needs engine.fit_content()")
