"""Built-in model backend: ONNX Runtime (extra ``backpack[onnx]``)."""

from backpack.hookspecs import hookimpl
from backpack.onnx_backend import OnnxRuntimeBackend


@hookimpl
def register_model_backends(register):
    register("onnx", OnnxRuntimeBackend, description="ONNX Runtime on the CPU (threads=, optimization=)")
