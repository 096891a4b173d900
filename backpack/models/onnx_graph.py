"""A small builder for ONNX graphs written as code: named constants, one call per node.

``onnx.helper`` asks for a name for every intermediate tensor; this keeps
the naming out of the way so a graph reads like the NumPy it replaces.
Names are numbered in creation order, so building the same graph twice
gives the same bytes (model caches are keyed by those bytes).
"""

from __future__ import annotations

import numpy as np


class GraphBuilder:
    """Collects nodes, constants, inputs and outputs, then makes an ``onnx.ModelProto``."""

    def __init__(self, name: str):
        from onnx import helper, numpy_helper

        self._helper, self._numpy_helper = helper, numpy_helper
        self.name = name
        self.nodes: list = []
        self.initializers: list = []
        self.inputs: list = []
        self.outputs: list = []
        self._count = 0

    def _fresh(self, stem: str) -> str:
        self._count += 1
        return f"{stem}_{self._count}"

    def input(self, name: str, dtype, shape) -> str:
        """Declare a graph input (``shape``: ints for fixed, strings for named dynamic dimensions)."""
        elem = self._helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self.inputs.append(self._helper.make_tensor_value_info(name, elem, list(shape)))
        return name

    def output(self, value: str, name: str, dtype, shape) -> None:
        """Expose ``value`` as the graph output ``name``."""
        self.nodes.append(self._helper.make_node("Identity", [value], [name]))
        elem = self._helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
        self.outputs.append(self._helper.make_tensor_value_info(name, elem, list(shape)))

    def const(self, value, stem: str = "const") -> str:
        """A constant tensor (kept as an initializer)."""
        name = self._fresh(stem)
        self.initializers.append(
            self._numpy_helper.from_array(np.asarray(value, order="C"), name)
        )  # asarray keeps 0-d shapes
        return name

    def ints(self, *values: int) -> str:
        """An int64 vector constant (axes, shapes, indices)."""
        return self.const(np.array(values, dtype=np.int64), "ints")

    def scalar_index(self, value: int) -> str:
        """A 0-d int64 constant: Gather with it drops the gathered axis."""
        return self.const(np.array(value, dtype=np.int64), "index")

    def op(self, op_type: str, *inputs: str, **attrs) -> str:
        """Add a one-output node and return its output's name."""
        return self.op_n(op_type, inputs, 1, **attrs)[0]

    def op_n(self, op_type: str, inputs, n_outputs: int, **attrs) -> list[str]:
        """Add a node with ``n_outputs`` outputs and return their names."""
        outs = [self._fresh(op_type.lower()) for _ in range(n_outputs)]
        self.nodes.append(self._helper.make_node(op_type, list(inputs), outs, **attrs))
        return outs

    def model(self, opset: int = 17):
        """The finished model, checked by ``onnx.checker``."""
        import onnx

        graph = self._helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, initializer=self.initializers)
        proto = self._helper.make_model(
            graph, opset_imports=[self._helper.make_opsetid("", opset)], producer_name="backpack"
        )
        proto.ir_version = 8  # readable by every ONNX Runtime and importer of opset 17
        onnx.checker.check_model(proto)
        return proto
