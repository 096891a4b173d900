"""The heavy work on a Ray cluster (``pip install 'backpack-engine[ray]'``).

Two jobs split into independent Ray tasks, each running the same C++ core a
single process runs:

* :func:`fit_on_ray` builds an item-neighbour model (:class:`~backpack.ItemKNN`
  with any similarity, its implicit-style subclasses, :class:`~backpack.RP3Beta`)
  one block of items per task, and stacks the blocks into the model;
* :func:`recommend_all_on_ray` scores every user, one block of users per task,
  with any fitted model that pickles.

The user-item matrix goes into the object store once (``ray.put``) and every
task takes the reference, so a node fetches it at most once however many of
its tasks read it. Results equal the single-process ones exactly: the same
neighbour ids and float32 scores, the same recommendations in user order.
``docs/scaling.md`` gives the costs and how to point this at a real cluster.
"""

from __future__ import annotations

import math
import os
import socket
from functools import cache

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.base import Recommender
from backpack.algorithms.itemknn import ItemKNN
from backpack.core.arrays import as_user_items, check_count
from backpack.errors import ClusterUnreachableError, InvalidInputError, RayUnavailableError

# Blocks per CPU when the caller gives no block size: item costs follow
# popularity, so a few blocks per CPU let fast tasks make up for slow ones.
BLOCKS_PER_CPU = 4


def connect(address: str | None = None):
    """Return the ``ray`` module, connected to a cluster.

    An already initialised Ray (``ray.init(...)`` by the caller) is used as it
    is. Otherwise ``address`` (or the ``RAY_ADDRESS`` environment variable) is
    passed to ``ray.init``: ``"host:6379"`` or ``"ray://host:10001"`` for a
    running cluster, ``"auto"`` for the one on this node, ``"local"`` to start
    one here.
    """
    ray = _import_ray()
    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS")
    if not address:
        raise ClusterUnreachableError(
            "no Ray cluster to run on: call ray.init() first, pass address='host:port' "
            "('local' starts one on this machine), or set RAY_ADDRESS"
        )
    _check_reachable(address)
    try:
        ray.init(address=address)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ClusterUnreachableError(f"could not reach the Ray cluster at {address!r}: {exc}") from exc
    return ray


def fit_on_ray(
    model: ItemKNN, user_items, *, block_size: int | None = None, cpus_per_task: int = 1, address: str | None = None
) -> ItemKNN:
    """Fit ``model`` on ``user_items`` with one Ray task per block of ``block_size`` items.

    The result equals ``model.fit(user_items)``. Every task reads the whole
    matrix (from the object store) and builds its items' top-K neighbours
    with ``cpus_per_task`` threads. ``block_size`` defaults to
    ``BLOCKS_PER_CPU`` blocks per CPU of the cluster. Returns ``model``.
    """
    if not isinstance(model, ItemKNN):
        raise InvalidInputError(
            f"fit_on_ray builds item-neighbour models (ItemKNN, RP3Beta, ...), not {type(model).__name__}"
        )
    ray = connect(address)
    csr = as_user_items(user_items)
    n_items = csr.shape[1]
    if block_size is None:
        block_size = math.ceil(n_items / (BLOCKS_PER_CPU * _cluster_cpus(ray)))
    blocks = _blocks(n_items, positive_count(block_size, "block_size"))
    matrix = ray.put(_shareable(csr))
    task = _remote(ray, _neighbour_block).options(num_cpus=positive_count(cpus_per_task, "cpus_per_task"))
    params = model.get_params()  # not the model: a refit would ship its old index to every task
    refs = [task.remote(params, matrix, start, stop, cpus_per_task) for start, stop in blocks]
    return model.fit_from_blocks(csr, ray.get(refs))


def recommend_all_on_ray(
    engine_or_model,
    user_items=None,
    n: int = 10,
    *,
    block_size: int = 10_000,
    filter_owned: bool = True,
    allowed=None,
    denied=None,
    cpus_per_task: int = 1,
    address: str | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Top-``n`` for every row of ``user_items``, one Ray task per block of ``block_size`` users.

    ``engine_or_model`` is a fitted :class:`~backpack.Recommender` or an
    :class:`~backpack.Engine` (its model in service; ``user_items`` then
    defaults to its bags). Returns ``(ids, scores)`` shaped (users, n) in
    user order, equal to ``model.recommend_rows(user_items, n, filter_owned,
    allowed, denied)``: item indices padded with -1 / -inf.
    """
    model, user_items = _model_and_rows(engine_or_model, user_items)
    ray = connect(address)
    n = check_count(n, "n")
    csr = as_user_items(user_items, allow_zero=True)
    blocks = _blocks(csr.shape[0], positive_count(block_size, "block_size"))
    try:
        model_ref = ray.put(model)
    except TypeError as exc:  # what pickle raises for objects it cannot serialise
        raise InvalidInputError(f"a {type(model).__name__} cannot be sent to Ray workers: {exc}") from exc
    matrix = ray.put(_shareable(csr))
    task = _remote(ray, _recommend_block).options(num_cpus=positive_count(cpus_per_task, "cpus_per_task"))
    refs = [
        task.remote(model_ref, matrix, start, stop, n, filter_owned, allowed, denied, cpus_per_task)
        for start, stop in blocks
    ]
    results = ray.get(refs)
    return np.concatenate([ids for ids, _ in results]), np.concatenate([scores for _, scores in results])


# -- the tasks (plain functions: Ray wraps them on first use, so importing
# -- this module never needs Ray) ---------------------------------------------


def _neighbour_block(params: dict, matrix, start: int, stop: int, threads: int):
    return ItemKNN(**params).neighbour_block(_rows(matrix, 0, matrix[3][0]), start, stop, num_threads=threads)


def _recommend_block(
    model: Recommender, matrix, start: int, stop: int, n: int, filter_owned: bool, allowed, denied, threads: int
):
    # The unpickled model would otherwise use every core of the node while
    # the node's other tasks do the same; results do not depend on threads.
    if hasattr(model, "num_threads"):
        model.num_threads = threads
    return model.recommend_rows(_rows(matrix, start, stop), n, filter_owned, allowed, denied)


# -- helpers ------------------------------------------------------------------


def _import_ray():
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError("running on Ray needs the ray package: pip install 'backpack-engine[ray]'") from exc
    return ray


def _check_reachable(address: str, timeout: float = 5.0) -> None:
    """Fail fast on a ``host:port`` that does not answer: ``ray.init`` would
    retry it for minutes before giving up."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():  # "auto", "local": Ray resolves those itself
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as exc:
        raise ClusterUnreachableError(
            f"no Ray cluster answers at {address!r} ({exc}): check the address and that the head node "
            "is running (`ray start --head` prints it)"
        ) from exc


@cache
def _remote(ray, function):
    return ray.remote(function)


def _cluster_cpus(ray) -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1)))


def positive_count(value, name: str) -> int:
    value = check_count(value, name)
    if value < 1:
        raise InvalidInputError(f"{name} must be >= 1")
    return value


def _blocks(total: int, block_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering ``0 .. total - 1``; one empty block when ``total`` is 0,
    so the result still comes back with the right shape and dtypes."""
    return [(start, min(start + block_size, total)) for start in range(0, max(total, 1), block_size)]


def _shareable(csr: sp.csr_matrix) -> tuple:
    """The matrix as plain arrays: Ray hands NumPy arrays to tasks on the same node without copying.

    scipy's own index dtypes are kept (int32 up to 2**31 entries): mixing
    int64 offsets with int32 indices would make scipy copy both on arrival.
    """
    return csr.indptr, csr.indices, csr.data, csr.shape


def _rows(matrix, start: int, stop: int) -> sp.csr_matrix:
    """Rows ``[start, stop)`` of a shared matrix; indices and data stay views of the object store."""
    indptr, indices, data, shape = matrix
    begin, end = indptr[start], indptr[stop]
    return sp.csr_matrix(
        (data[begin:end], indices[begin:end], indptr[start : stop + 1] - begin),
        shape=(stop - start, shape[1]),
        copy=False,
    )


def _model_and_rows(engine_or_model, user_items):
    from backpack.engine.engine import (
        Engine,  # the engine imports the plugin machinery: only when given one
    )

    if isinstance(engine_or_model, Engine):
        model = engine_or_model.model
        return model, engine_or_model.bags.to_csr() if user_items is None else user_items
    if not isinstance(engine_or_model, Recommender):
        raise InvalidInputError(
            f"recommend_all_on_ray needs an Engine or a fitted Recommender, got {type(engine_or_model).__name__}"
        )
    if user_items is None:
        raise InvalidInputError("recommend_all_on_ray needs user_items with a model (an Engine has its bags)")
    return engine_or_model, user_items
