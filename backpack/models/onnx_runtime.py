"""The ``onnx`` model backend: ONNX Runtime on the CPU.

ONNX Runtime's ``InferenceSession.run`` is documented as safe to call from
several threads at once, so one session serves every thread; the thread
settings are the session's intra-op (threads inside one operator) and
inter-op (operators run side by side) pools.
"""

from __future__ import annotations

import numpy as np

from backpack.errors import InvalidInputError, ModelLoadError
from backpack.models.backends import (
    ModelBackend,
    ModelSession,
    ModelSource,
    default_threads,
    importable,
    onnx_specs,
    parse_onnx,
    require,
)


class OnnxRuntimeBackend(ModelBackend):
    """Runs ONNX models with onnxruntime's CPU execution provider.

    Parameters
    ----------
    threads : intra-op threads (0: all cores).
    inter_op_threads : inter-op threads (0: ONNX Runtime's default); only used
        with ``sequential=False``.
    sequential : run operators one after another (ONNX Runtime's default and
        the fastest for small graphs).
    optimization : graph optimisation level: ``"all"``, ``"extended"``, ``"basic"`` or ``"none"``.
    """

    name = "onnx"

    @staticmethod
    def available() -> bool:
        """Whether onnxruntime and onnx are importable."""
        return importable("onnx", "onnxruntime")

    def __init__(self, threads: int = 0, inter_op_threads: int = 0, sequential: bool = True, optimization: str = "all"):
        self._ort = require("onnxruntime", "onnxruntime", "the onnx model backend", "onnx")
        require("onnx", "onnx", "the onnx model backend", "onnx")
        self.threads = default_threads(threads)
        self.inter_op_threads = default_threads(inter_op_threads) if inter_op_threads else 0
        self.sequential = bool(sequential)
        levels = {
            "all": "ORT_ENABLE_ALL",
            "extended": "ORT_ENABLE_EXTENDED",
            "basic": "ORT_ENABLE_BASIC",
            "none": "ORT_DISABLE_ALL",
        }
        if optimization not in levels:
            raise InvalidInputError(f"optimization must be one of {sorted(levels)}, got {optimization!r}")
        self.optimization = optimization
        self._level = getattr(self._ort.GraphOptimizationLevel, levels[optimization])

    def _load(self, source: ModelSource) -> OnnxRuntimeSession:
        proto = parse_onnx(source)
        options = self._ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        if self.inter_op_threads:
            options.inter_op_num_threads = self.inter_op_threads
        options.execution_mode = (
            self._ort.ExecutionMode.ORT_SEQUENTIAL if self.sequential else self._ort.ExecutionMode.ORT_PARALLEL
        )
        options.graph_optimization_level = self._level
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        try:
            session = self._ort.InferenceSession(source.data, options, providers=["CPUExecutionProvider"])
        except Exception as exc:
            raise ModelLoadError(f"ONNX Runtime cannot load {source.origin}: {exc}") from None
        return OnnxRuntimeSession(session, *onnx_specs(proto))


class OnnxRuntimeSession(ModelSession):
    """A model loaded in ONNX Runtime."""

    backend = "onnx"

    def __init__(self, session, inputs, outputs):
        super().__init__(inputs, outputs)
        self._session = session
        self._input_names = [s.name for s in inputs]
        self._output_names = [s.name for s in outputs]

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        return self._session.run(self._output_names, dict(zip(self._input_names, arrays)))
