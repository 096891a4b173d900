"""Commands whose run(args) returns None, a string and an int-like number."""

import numpy as np

from backpack import hookimpl


@hookimpl
def register_commands(register):
    register("says-nothing", None, lambda args: None)
    register("says-done", None, lambda args: "done")
    register("says-four", None, lambda args: np.int64(4))
