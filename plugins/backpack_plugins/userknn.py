"""Built-in plugin: the UserKNN algorithm."""

from backpack.userknn import UserKNN
from backpack.hookspecs import hookimpl


@hookimpl
def register_algorithms(register):
    register("userknn", UserKNN, description="user-user k-nearest neighbours from the live bag")
