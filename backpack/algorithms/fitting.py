"""One way to fit a model, shared by the engine, ``backpack evaluate`` and ``backpack fit``.

Most algorithms learn from weights alone (a hybrid recommender also takes
``item_embeddings``, the content vectors aligned to item indices, the same way). Those that also want *when*
(recency-decayed popularity) declare a ``timestamps`` keyword on ``fit``
and receive the times as a float64 matrix with exactly the structure of
``user_items`` (NaN where a pair has no time); the others never see them,
so a third-party ``fit(user_items, show_progress)`` keeps working.
"""

from __future__ import annotations

import inspect

import scipy.sparse as sp

from backpack.algorithms.base import Recommender
from backpack.plugins import Registration, call_plugin, create_registered


def fit_model(
    registration: Registration,
    model,
    user_items: sp.csr_matrix,
    *,
    timestamps: sp.csr_matrix | None = None,
    item_embeddings=None,
    show_progress: bool = False,
):
    """Fit ``model`` (made by ``registration``'s plugin) on ``user_items``; plugin failures name the plugin."""
    kwargs = {"show_progress": show_progress}
    if wants_timestamps(model):
        kwargs["timestamps"] = timestamps
    if wants(model, "item_embeddings"):
        kwargs["item_embeddings"] = item_embeddings
    return call_plugin(registration, "fit", model.fit, user_items, **kwargs)


def wants(model, keyword: str) -> bool:
    """Whether ``model.fit`` declares ``keyword`` (a bare ``**kwargs`` does not count: such a fit
    may forward its keywords somewhere that would choke on them)."""
    return accepts(model.fit, keyword, via_var_keyword=False)


def wants_timestamps(model) -> bool:
    """Whether ``model.fit`` declares a ``timestamps`` keyword."""
    return wants(model, "timestamps")


def accepts(fn, name: str, *, via_var_keyword: bool = True) -> bool:
    """Whether ``fn`` takes a keyword argument ``name`` (or, if ``via_var_keyword``, any keyword)."""
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return False
    return any(p.name == name or (via_var_keyword and p.kind is inspect.Parameter.VAR_KEYWORD) for p in params)


def create_algorithm(registration: Registration, params: dict):
    """An unfitted model from an algorithm registration, checked to be a Recommender."""
    return create_registered(registration, params, Recommender)
