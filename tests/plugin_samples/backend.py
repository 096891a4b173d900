"""Registers the model backends 'onnx' (command_twin claims it too) and 'iree'."""

from backpack import hookimpl


@hookimpl
def register_model_backends(register):
    register("onnx", object)
    register("iree", object)
