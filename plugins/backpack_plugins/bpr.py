"""Built-in plugin: the BPR algorithm."""

from backpack.bpr import BPR
from backpack.hookspecs import hookimpl


@hookimpl
def register_algorithms(register):
    register("bpr", BPR, description="Bayesian personalised ranking, parallel SGD in C++")
