"""One interface for running models: a backend loads a model, a session runs it.

A :class:`ModelBackend` (ONNX Runtime, IREE, or a plugin's own) turns a model
(a path or the bytes of an ONNX file) into a :class:`ModelSession` with named,
typed inputs and outputs. ``session.run({"name": array, ...})`` checks every
input against the model's declared dtype and shape *before* the backend sees
it, so a mistake comes back as a :class:`~backpack.errors.ModelInputError`
that names the input and what was expected, never as a backend crash.

Backends are plugins (hook ``register_model_backends``); the built-in ones are
``onnx`` and ``iree``. :func:`get_backend` finds one by name and, when its
optional packages are missing, raises
:class:`~backpack.errors.BackendUnavailableError` with the ``pip install``
that provides them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backpack.errors import BackendUnavailableError, InvalidInputError, ModelInputError, ModelLoadError, ModelRunError

#: largest model file a backend reads (a protobuf cannot exceed 2 GiB anyway)
MAX_MODEL_BYTES = 2**31 - 1


@dataclass(frozen=True)
class TensorSpec:
    """A named input or output: dtype and shape (an ``int`` per fixed dimension,
    a ``str`` naming a dynamic one, ``None`` for an unnamed dynamic one)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | str | None, ...]

    def describe(self) -> str:
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{self.name}: {self.dtype.name}[{dims}]"


@dataclass(frozen=True)
class ModelSource:
    """A model's bytes and their SHA-256 (what caches are keyed by)."""

    data: bytes
    sha256: str
    origin: str  # a path, or "<bytes>"


class ModelSession(ABC):
    """A loaded model. ``run`` is safe to call from several threads at once."""

    #: the backend's registered name
    backend: str = ""

    def __init__(self, inputs: tuple[TensorSpec, ...], outputs: tuple[TensorSpec, ...]):
        self.inputs = inputs
        self.outputs = outputs

    def run(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run the model on ``inputs`` (one array per declared input) and return every output by name."""
        arrays = check_inputs(self.inputs, inputs)
        try:
            results = self._run(arrays)
        except (ModelInputError, ModelRunError):
            raise
        except Exception as exc:  # the backend's own error type: give it ours, keep the cause
            raise ModelRunError(f"{self.backend}: running the model failed: {exc}") from exc
        return dict(zip((spec.name for spec in self.outputs), results))

    @abstractmethod
    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        """Run with checked arrays in declared input order; return outputs in declared order."""

    def describe(self) -> dict:
        """Inputs and outputs as text, for listings and error messages."""
        return {
            "backend": self.backend,
            "inputs": [s.describe() for s in self.inputs],
            "outputs": [s.describe() for s in self.outputs],
        }


class ModelBackend(ABC):
    """Loads models into sessions. Subclasses set ``name`` and implement :meth:`_load`."""

    name: str = ""
    #: whether the ONNX TopK operator is fast here (exports pick another top-k method if not)
    fast_topk: bool = True

    def load(self, model) -> ModelSession:
        """A session for ``model``: a path to an ONNX file, its bytes, or an ``onnx.ModelProto``."""
        return self._load(read_model(model))

    @abstractmethod
    def _load(self, source: ModelSource) -> ModelSession:
        """A session for the model in ``source`` (raise ModelLoadError if it is not loadable)."""


def read_model(model) -> ModelSource:
    """The bytes of ``model`` (a path, bytes or an ``onnx.ModelProto``), checked to be an ONNX model."""
    if isinstance(model, (bytes, bytearray, memoryview)):
        data, origin = bytes(model), "<bytes>"
    elif isinstance(model, (str, os.PathLike)):
        path = Path(model)
        try:
            size = path.stat().st_size
            if size > MAX_MODEL_BYTES:
                raise ModelLoadError(f"{path}: {size:,} bytes is larger than an ONNX file can be")
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelLoadError(f"model file {path} does not exist") from None
        except IsADirectoryError:
            raise ModelLoadError(f"{path} is a directory, not a model file") from None
        except OSError as exc:
            raise ModelLoadError(f"cannot read model file {path}: {exc.strerror or exc}") from None
        origin = str(path)
    elif hasattr(model, "SerializeToString"):
        data, origin = model.SerializeToString(), "<ModelProto>"
    else:
        raise InvalidInputError(f"a model is a path, bytes or an onnx.ModelProto, not {type(model).__name__}")
    if not data:
        raise ModelLoadError(f"{origin}: the model is empty (0 bytes)")
    return ModelSource(data, hashlib.sha256(data).hexdigest(), origin)


def parse_onnx(source: ModelSource):
    """The ``onnx.ModelProto`` in ``source``, or ModelLoadError saying why it is not one."""
    onnx = require("onnx", "onnx", "the ONNX model format")
    try:
        proto = onnx.load_from_string(source.data)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise ModelLoadError(f"{source.origin} is not an ONNX model (corrupt or truncated): {exc}") from None
    if not proto.graph.node and not proto.graph.output:
        raise ModelLoadError(f"{source.origin} is not an ONNX model: it has no graph")
    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        raise ModelLoadError(f"{source.origin} is not a valid ONNX model: {exc}") from None
    return proto


def onnx_specs(proto) -> tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]:
    """Declared graph inputs (initializers excluded) and outputs of an ONNX model."""
    from onnx import helper

    initialised = {t.name for t in proto.graph.initializer}

    def spec(value) -> TensorSpec:
        tensor = value.type.tensor_type
        if not value.type.HasField("tensor_type"):
            raise ModelLoadError(f"input or output {value.name!r} is not a tensor; only tensors are supported")
        dims = tuple(d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor.shape.dim)
        return TensorSpec(value.name, np.dtype(helper.tensor_dtype_to_np_dtype(tensor.elem_type)), dims)

    inputs = tuple(spec(v) for v in proto.graph.input if v.name not in initialised)
    return inputs, tuple(spec(v) for v in proto.graph.output)


def check_inputs(specs: tuple[TensorSpec, ...], inputs: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """``inputs`` as contiguous arrays in declared order, or ModelInputError naming what is wrong.

    A dtype that converts without loss (int32 into int64, float16 into
    float32) is converted; anything else is refused rather than silently
    changed. Dynamic dimensions sharing a name must agree across inputs.
    """
    if not isinstance(inputs, Mapping):
        raise ModelInputError(f"inputs must be a dict of name -> array, got {type(inputs).__name__}")
    expected = {s.name for s in specs}
    missing = [s.describe() for s in specs if s.name not in inputs]
    if missing:
        raise ModelInputError(f"missing input(s) {missing}; the model takes {[s.describe() for s in specs]}")
    unknown = sorted(set(inputs) - expected)
    if unknown:
        raise ModelInputError(f"unknown input(s) {unknown}; the model takes {[s.describe() for s in specs]}")
    bound: dict[str, tuple[int, str]] = {}
    out = []
    for spec in specs:
        value = inputs[spec.name]
        try:
            array = np.asarray(value)
        except Exception as exc:
            raise ModelInputError(f"input {spec.name!r} is not an array: {exc}") from None
        if array.dtype != spec.dtype:
            if not np.can_cast(array.dtype, spec.dtype, "safe"):
                raise ModelInputError(
                    f"input {spec.name!r} is {array.dtype.name} but the model takes "
                    f"{spec.dtype.name} (convert it explicitly if the loss is intended)"
                )
            array = array.astype(spec.dtype)
        if array.ndim != len(spec.shape):
            raise ModelInputError(
                f"input {spec.name!r} has shape {array.shape} (rank {array.ndim}) but the "
                f"model takes rank {len(spec.shape)}: {spec.describe()}"
            )
        for axis, (size, dim) in enumerate(zip(array.shape, spec.shape)):
            if isinstance(dim, int) and dim > 0 and size != dim:
                raise ModelInputError(
                    f"input {spec.name!r} has shape {array.shape}; axis {axis} must be {dim}: {spec.describe()}"
                )
            if isinstance(dim, str):
                seen = bound.setdefault(dim, (size, spec.name))
                if seen[0] != size:
                    raise ModelInputError(
                        f"dimension {dim!r} is {seen[0]} in input {seen[1]!r} but {size} in input {spec.name!r}"
                    )
        if array.dtype.kind == "f" and array.size and not np.isfinite(array).all():
            raise ModelInputError(f"input {spec.name!r} holds NaN or infinite values")
        out.append(np.asarray(array, order="C"))  # (ascontiguousarray would make 0-d arrays 1-d)
    return out


def require(module: str, package: str, purpose: str, extra: str | None = None):
    """Import an optional dependency or raise BackendUnavailableError saying how to install it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        how = f"pip install 'backpack-engine[{extra}]'" if extra else f"pip install {package}"
        raise BackendUnavailableError(
            f"{purpose} needs the Python package {package!r}, which is not installed ({exc}); install it with: {how}"
        ) from None


def importable(*modules: str) -> bool:
    """Whether every one of ``modules`` imports (an optional backend's packages are installed and work)."""
    import importlib

    try:
        for module in modules:
            importlib.import_module(module)
    except ImportError:
        return False
    return True


def default_threads(threads: int) -> int:
    """Thread count for a backend: ``threads`` if > 0, else the machine's cores."""
    if not isinstance(threads, (int, np.integer)) or isinstance(threads, bool) or threads < 0:
        raise InvalidInputError(f"threads must be an int >= 0 (0: all cores), got {threads!r}")
    return int(threads) or (os.cpu_count() or 1)


def get_backend(name: str, plugins=None, **options) -> ModelBackend:
    """The model backend registered as ``name`` (``onnx``, ``iree``, ...), made with ``options``.

    Unknown names raise the plugin registry's error listing the known ones;
    a backend whose packages are missing raises BackendUnavailableError.
    """
    from backpack.plugins import get_plugins

    return (plugins if plugins is not None else get_plugins()).create("model_backends", name, options, ModelBackend)


def available_backends(plugins=None) -> dict[str, str]:
    """Registered backends that can run here: name -> description (those whose packages are missing are left out)."""
    from backpack.plugins import get_plugins

    plugins = plugins if plugins is not None else get_plugins()
    out = {}
    for name, registration in sorted(plugins.registry("model_backends").items()):
        probe = getattr(registration.value, "available", None)
        try:
            ok = probe() if callable(probe) else True
        except Exception:
            ok = False
        if ok:
            out[name] = registration.description
    return out


class PerThread:
    """One object per calling thread, made on first use by ``factory`` (for runtimes whose
    call state must not be shared between threads)."""

    def __init__(self, factory):
        self._factory = factory
        self._local = threading.local()

    def get(self):
        value = getattr(self._local, "value", None)
        if value is None:
            value = self._local.value = self._factory()
        return value
