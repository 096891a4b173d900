"""implicit's ``implicit.datasets`` namespace, served from data sets a package ships (nothing is downloaded)."""

from backpack.implicit.datasets import movielens

__all__ = ["movielens"]
