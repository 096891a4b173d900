"""implicit's public modules on Backpack's core: ``import backpack.implicit as implicit`` is the whole switch.

Every class here behaves as implicit 0.7.3's does (defaults, arguments, return shapes and dtypes,
filtering and padding, exceptions), so code written for implicit and implicit's own test suite run
unchanged. Backpack's own classes (``backpack.ItemKNN``, ``backpack.ALS``, ...) keep Backpack's
guarantees instead: exactly ``N`` results whenever ``N`` are eligible, owned items never returned.

The submodules are imported here, as implicit's ``__init__`` does, because ported code reaches
them as attributes (``implicit.als.AlternatingLeastSquares``, ``implicit.gpu.HAS_CUDA``).
"""

from backpack.implicit import als, bpr, cpu, datasets, evaluation, gpu, nearest_neighbours, recommender_base, utils

__version__ = "0.7.3"  # the implicit release whose behaviour this package follows

__all__ = ["als", "bpr", "cpu", "datasets", "evaluation", "gpu", "nearest_neighbours", "recommender_base", "utils"]
