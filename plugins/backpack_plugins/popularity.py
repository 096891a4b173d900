"""Built-in plugin: popularity (global or recency-decayed; per item kind through ``item_kind=``)."""

from backpack.hookspecs import hookimpl
from backpack.popularity import Popularity


@hookimpl
def register_algorithms(register):
    register("popularity", Popularity,
             description="most popular items, optionally decayed by age (half_life_days); per kind via item_kind")
