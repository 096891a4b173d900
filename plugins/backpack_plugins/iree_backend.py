"""Built-in model backend: IREE, ONNX compiled ahead of time for this CPU (extra ``backpack[iree]``)."""

from backpack.hookspecs import hookimpl
from backpack.iree_backend import IreeBackend


@hookimpl
def register_model_backends(register):
    register("iree", IreeBackend, description="IREE llvm-cpu, compiled modules cached on disk (threads=, cache_dir=)")
