"""Built-in model backends: ONNX Runtime (extra ``backpack[onnx]``) and IREE (extra ``backpack[iree]``).

Their runtimes are imported only when a backend is created, so a missing extra fails there, named.
"""

from backpack.hookspecs import hookimpl
from backpack.models.iree import IreeBackend
from backpack.models.onnx_runtime import OnnxRuntimeBackend


@hookimpl
def register_model_backends(register):
    register("onnx", OnnxRuntimeBackend, description="ONNX Runtime on the CPU (threads=, optimization=)")
    register("iree", IreeBackend, description="IREE llvm-cpu, compiled modules cached on disk (threads=, cache_dir=)")
