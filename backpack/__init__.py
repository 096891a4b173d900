"""Backpack: an embeddable recommendation engine for user-generated-content platforms.

    >>> import backpack
    >>> engine = backpack.Engine()
    >>> engine.add_interactions(["ana", "ana", "bo"], ["hat", "cape", "hat"])
    >>> engine.fit("itemknn", k=50)
    >>> engine.recommend("bo", n=5)
"""

try:
    from . import _core
except ImportError as exc:  # pragma: no cover - depends on how Python was started
    raise ImportError(
        "backpack's C++ core (backpack._core) is not importable. Install the package with "
        "`pip install .` and run Python outside the source tree (or use `pytest`, not "
        "`python -m pytest`, from the repository root)."
    ) from exc
from .als import ALS
from .backend_serving import BackendServedModel
from .bags import Bags
from .bpr import BPR
from .dense import DenseIndex, dense_topk
from .ease import EASE
from .embedding_model import EmbeddingModel
from .engine import Engine, Recommendation
from .errors import (
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
    StaleModelError,
    UnknownItemError,
    UnknownUserError,
)
from .hookspecs import hookimpl
from .factor_export import export_factor_model
from .itemknn import BM25Recommender, CosineRecommender, ItemKNN, RP3Beta, TFIDFRecommender
from .model_backends import ModelBackend, ModelSession, TensorSpec, get_backend
from .model_tasks import ModelTask, available_tasks, get_task
from .popularity import Popularity
from .plugins import PluginConflictError, PluginError, Plugins, get_plugins
from .recommender import Recommender
from .userknn import UserKNN

__version__ = "0.1.0"

__all__ = [
    "_core", "Bags", "DenseIndex", "dense_topk", "Engine", "Recommendation", "ItemKNN", "CosineRecommender",
    "BM25Recommender", "TFIDFRecommender", "RP3Beta", "BackpackError", "CancelledError", "InvalidInputError",
    "DatasetUnavailableError", "ModelFileError", "NotFittedError", "StaleModelError", "UnknownItemError",
    "UnknownUserError", "hookimpl", "Plugins", "get_plugins", "PluginConflictError", "PluginError", "Recommender",
    "ALS", "BPR", "EASE", "UserKNN", "Popularity", "EmbeddingModel", "BackendServedModel", "export_factor_model",
    "ModelBackend", "ModelSession", "TensorSpec", "get_backend", "ModelTask", "get_task", "available_tasks",
    "BackendUnavailableError", "ModelInputError", "ModelLoadError", "ModelRunError",
]
