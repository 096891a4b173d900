"""Claims the command 'hello' (as plugin_samples.command does) and the model backend 'onnx'."""

from backpack import hookimpl


@hookimpl
def register_commands(register):
    register("hello", None, lambda args: 0)


@hookimpl
def register_model_backends(register):
    register("onnx", object)
