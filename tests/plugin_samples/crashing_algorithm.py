"""An algorithm whose fit crashes, and a factory that returns the wrong type."""

from backpack import ItemKNN, hookimpl


class Crashing(ItemKNN):
    def fit(self, user_items, show_progress=True):
        raise ZeroDivisionError("fit went wrong")


@hookimpl
def register_algorithms(register):
    register("crashing", Crashing)
    register("not-a-recommender", lambda **params: object())
