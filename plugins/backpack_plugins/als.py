"""Built-in plugin: the ALS algorithm."""

from backpack.als import ALS
from backpack.hookspecs import hookimpl


@hookimpl
def register_algorithms(register):
    register("als", ALS, description="ALS for implicit feedback (Hu, Koren & Volinsky), conjugate gradient in C++")
