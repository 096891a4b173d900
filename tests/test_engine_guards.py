"""Engine guards: a fit racing load_matrix, weights checked before writing, plugin failures at serve time."""

import threading

import numpy as np
import pytest
import scipy.sparse as sp
from plugin_samples import observer

from backpack import Engine, InvalidInputError, ItemKNN, NotFittedError, Plugins, StaleModelError, hookimpl
from backpack.errors import PluginError


def engine_with(*algorithms, observe: bool = False) -> Engine:
    """An engine whose plugin manager holds only the given (name, factory) algorithms."""

    class Plugin:
        @hookimpl
        def register_algorithms(self, register):
            for name, factory in algorithms:
                register(name, factory)

    plugins = Plugins(load_entry_points=False)
    plugins.register(Plugin(), name="test-algorithms")
    if observe:
        plugins.register(observer, name="observer")
    engine = Engine(plugins=plugins)
    engine.add_interactions(["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"])
    return engine


# -- a fit racing load_matrix ---------------------------------------------------


class PausedFit(ItemKNN):
    """Fits normally, but only once the test lets it finish."""

    started = threading.Event()
    proceed = threading.Event()

    def fit(self, user_items, show_progress=True):
        PausedFit.started.set()
        assert PausedFit.proceed.wait(30)
        return super().fit(user_items, show_progress=show_progress)


def test_a_fit_finishing_after_load_matrix_is_refused_and_not_installed():
    PausedFit.started.clear()
    PausedFit.proceed.clear()
    engine = engine_with(("paused", PausedFit), ("itemknn", ItemKNN))
    outcome = {}

    def fit():
        try:
            engine.fit("paused", k=5)
        except Exception as exc:  # noqa: BLE001 - handed to the assertions below
            outcome["error"] = exc

    thread = threading.Thread(target=fit)
    thread.start()
    assert PausedFit.started.wait(30)
    # the fit holds a snapshot of the old item space; the bags now change meaning
    engine.load_matrix(sp.csr_matrix(np.ones((2, 2), np.float32)), ["p", "q"], ["new-1", "new-2"])
    PausedFit.proceed.set()
    thread.join(30)
    assert isinstance(outcome.get("error"), StaleModelError)
    assert outcome["error"].code == "stale_model"
    with pytest.raises(NotFittedError):
        engine.recommend("p")
    engine.fit("itemknn", k=5)  # a fit of the new bags goes in
    assert [r.item for r in engine.recommend("p", n=2, filter_owned=False)] == ["new-1", "new-2"]


def test_a_fit_without_a_concurrent_load_matrix_goes_in():
    PausedFit.proceed.set()
    engine = engine_with(("paused", PausedFit))
    engine.fit("paused", k=5)
    assert isinstance(engine.model, PausedFit)


# -- weights are checked before anything is written -------------------------------


def test_a_column_of_weights_is_flattened_and_observers_see_it():
    observer.EVENTS.clear()
    engine = engine_with(observe=True)
    engine.add_interactions(["d", "e"], ["x", "y"], np.array([[2.0], [4.0]]))
    assert engine.bags.bag("d") == {"x": 2.0} and engine.bags.bag("e") == {"y": 4.0}
    assert observer.EVENTS[-1] == ("recorded", ["d", "e"], ["x", "y"], [2.0, 4.0])
    engine.add_interactions(["f", "g"], ["x", "y"], np.array([[1.0, 3.0]]))  # a row vector too
    assert engine.bags.bag("g") == {"y": 3.0}


@pytest.mark.parametrize("weights", [np.ones((2, 2)), np.ones(3), np.ones((4, 1)), [[1.0], [np.nan]], "heavy"])
def test_misshaped_or_bad_weights_store_nothing(weights):
    engine = engine_with(observe=True)
    observer.EVENTS.clear()
    before = engine.bags.nnz
    users, items = ["d", "d"], ["x", "q"]
    with pytest.raises(InvalidInputError):
        engine.add_interactions(users, items, weights)
    assert engine.bags.nnz == before and engine.bags.user_index("d") == -1
    assert engine.bags.item_index("q") == -1
    assert not observer.EVENTS


# -- a plugin model failing at serve time -------------------------------------------


class BrokenAtServeTime(ItemKNN):
    """Fits, then fails in the call named by ``fails``."""

    fails = ""

    def _maybe_fail(self, call):
        if call == BrokenAtServeTime.fails:
            raise RuntimeError(f"{call} exploded")

    def recommend_rows(self, *args, **kwargs):
        self._maybe_fail("recommend_rows")
        return super().recommend_rows(*args, **kwargs)

    def is_fill(self, scores):
        self._maybe_fail("is_fill")
        return super().is_fill(scores)

    def similar_items(self, *args, **kwargs):
        self._maybe_fail("similar_items")
        return super().similar_items(*args, **kwargs)


@pytest.mark.parametrize("call", ["recommend_rows", "is_fill", "similar_items"])
@pytest.mark.parametrize("request_kind", ["users", "bag"])
def test_a_plugin_model_raising_at_serve_time_is_a_plugin_error_naming_the_plugin(call, request_kind):
    engine = engine_with(("broken", BrokenAtServeTime))
    BrokenAtServeTime.fails = ""
    engine.fit("broken", k=5)
    BrokenAtServeTime.fails = call
    requests = {  # an ad-hoc bag is scored through recommend_rows like a stored user's
        ("recommend_rows", "users"): lambda: engine.recommend_batch(["a", "b"], n=2),
        ("recommend_rows", "bag"): lambda: engine.recommend_bag(["x"], n=2),
        ("is_fill", "users"): lambda: engine.recommend("a", n=2),
        ("is_fill", "bag"): lambda: engine.recommend_bag(["x"], n=2),
        ("similar_items", "users"): lambda: engine.similar_items("x", n=2),
        ("similar_items", "bag"): lambda: engine.similar_items("x", n=2, item_kind=None),
    }
    with pytest.raises(PluginError) as err:
        requests[call, request_kind]()
    assert "'test-algorithms'" in str(err.value) and f"{call} exploded" in str(err.value)
    BrokenAtServeTime.fails = ""
    assert len(engine.recommend("a", n=1)) == 1  # the engine itself keeps serving
