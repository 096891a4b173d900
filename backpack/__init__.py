"""Backpack: an embeddable recommendation engine for user-generated-content platforms.

>>> import backpack
>>> engine = backpack.Engine()
>>> engine.add_interactions(["ana", "ana", "bo"], ["hat", "cape", "hat"])
>>> engine.fit("itemknn", k=50)
>>> engine.recommend("bo", n=5)
"""

try:
    from backpack.core import _core
except ImportError as exc:  # pragma: no cover - depends on how Python was started
    raise ImportError(
        "backpack's C++ core (backpack.core._core) is not importable. Install the package with "
        "`pip install .` and run Python outside the source tree (or use `pytest`, not "
        "`python -m pytest`, from the repository root)."
    ) from exc
from backpack._version import __version__
from backpack.algorithms.als import ALS
from backpack.algorithms.base import Recommender
from backpack.algorithms.bpr import BPR
from backpack.algorithms.ease import EASE
from backpack.algorithms.embeddings import EmbeddingModel
from backpack.algorithms.itemknn import BM25Recommender, CosineRecommender, ItemKNN, RP3Beta, TFIDFRecommender
from backpack.algorithms.popularity import Popularity
from backpack.algorithms.userknn import UserKNN
from backpack.core.bags import Bags
from backpack.core.dense import DenseIndex, dense_topk
from backpack.engine.engine import Engine
from backpack.engine.results import Recommendation
from backpack.errors import (
    BackendUnavailableError,
    BackpackError,
    CancelledError,
    DatasetUnavailableError,
    InvalidInputError,
    ModelFileError,
    ModelInputError,
    ModelLoadError,
    ModelRunError,
    NotFittedError,
    PluginConflictError,
    PluginError,
    StaleModelError,
    UnknownItemError,
    UnknownUserError,
)
from backpack.hookspecs import hookimpl
from backpack.models.backends import ModelBackend, ModelSession, TensorSpec, get_backend
from backpack.models.export import export_factor_model
from backpack.models.served import BackendServedModel
from backpack.models.tasks import ModelTask, available_tasks, get_task
from backpack.plugins import Plugins, get_plugins

__all__ = [
    "_core",
    "Bags",
    "DenseIndex",
    "dense_topk",
    "Engine",
    "Recommendation",
    "ItemKNN",
    "CosineRecommender",
    "BM25Recommender",
    "TFIDFRecommender",
    "RP3Beta",
    "BackpackError",
    "CancelledError",
    "InvalidInputError",
    "DatasetUnavailableError",
    "ModelFileError",
    "NotFittedError",
    "StaleModelError",
    "UnknownItemError",
    "UnknownUserError",
    "__version__",
    "hookimpl",
    "Plugins",
    "get_plugins",
    "PluginConflictError",
    "PluginError",
    "Recommender",
    "ALS",
    "BPR",
    "EASE",
    "UserKNN",
    "Popularity",
    "EmbeddingModel",
    "BackendServedModel",
    "export_factor_model",
    "ModelBackend",
    "ModelSession",
    "TensorSpec",
    "get_backend",
    "ModelTask",
    "get_task",
    "available_tasks",
    "BackendUnavailableError",
    "ModelInputError",
    "ModelLoadError",
    "ModelRunError",
]
