"""Factor models as ONNX graphs: bag -> user vector -> scores -> top-N with exclusion.

The exported graph does in one model call what the native core does for a
batch of live bags, so any ONNX backend (ONNX Runtime, IREE, a plugin's) can
serve an ALS, BPR or embedding model:

inputs
  ``bag_items``   int64 [batch, bag]   the bags' item indices, padded with 0
  ``bag_weights`` float32 [batch, bag] their weights; 0 marks padding
  ``exclude``     int64 [batch, excluded] items never to return per row, padded
                  with ``n_items`` (a sentinel column that is always -inf)
  ``eligible``    bool [items]         items a result may hold at all
  ``k``           int64 [1]            list length (at most ``n_items``)
outputs
  ``scores`` float32 [batch, k] and ``items`` int64 [batch, k], best first;
  a slot with score -inf holds no eligible item.

How a bag becomes a user vector is the model's own business, so each model
class has a builder here (:data:`USER_VECTOR_BUILDERS`, open to subclasses
and plugins):

- ALS: the exact least-squares solve the native core does (Cholesky in
  double there). ONNX has no linear solver, so the graph runs Gauss-Jordan
  elimination unrolled over the ``factors`` pivots, in float64; the system is
  symmetric positive definite, so no pivot search is needed.
- BPR: the learned linear fold-in map applied to the bag's mean item vector.
- embeddings: the weighted mean of the bag's item vectors.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from .errors import InvalidInputError, NotFittedError
from .onnx_graph import GraphBuilder

INPUT_NAMES = ("bag_items", "bag_weights", "exclude", "eligible", "k")


def export_factor_model(model, *, opset: int = 17):
    """The ONNX model (``onnx.ModelProto``) that serves ``model`` (an ALS, BPR or embedding model)."""
    from .model_backends import require

    require("onnx", "onnx", "exporting a model to ONNX", "onnx")
    builder = _builder_for(model)
    items = model.item_factors
    if items is None:
        raise NotFittedError("fit the model before exporting it")
    n_items = items.shape[0]
    g = GraphBuilder(f"backpack_{type(model).__name__.lower()}")
    bag_items = g.input("bag_items", np.int64, ["batch", "bag"])
    bag_weights = g.input("bag_weights", np.float32, ["batch", "bag"])
    exclude = g.input("exclude", np.int64, ["batch", "excluded"])
    eligible = g.input("eligible", np.bool_, [n_items])
    k = g.input("k", np.int64, [1])

    users = builder(g, model, bag_items, bag_weights)  # [batch, width] float32
    scores = g.op("MatMul", users, g.const(np.ascontiguousarray(items.T, dtype=np.float32), "item_factors_t"))
    minus_inf = g.const(np.array(-np.inf, dtype=np.float32), "minus_inf")
    scores = g.op("Where", eligible, scores, minus_inf)
    # one -inf sentinel column after the items, so padded exclusions land somewhere harmless
    widened = g.op("Concat", scores, _column(g, scores, -np.inf), axis=1)
    blocked = g.op("Expand", minus_inf, g.op("Shape", exclude))
    masked = g.op("ScatterElements", widened, exclude, blocked, axis=1)
    top_scores, top_items = g.op_n("TopK", [masked, k], 2, axis=1, largest=1, sorted=1)
    g.output(top_scores, "scores", np.float32, ["batch", "k"])
    g.output(top_items, "items", np.int64, ["batch", "k"])
    return g.model(opset)


# -- bag -> user vector, per model class --------------------------------------

UserVectorBuilder = Callable[[GraphBuilder, object, str, str], str]
#: model class -> builder(graph, model, bag_items, bag_weights) returning the user vectors' name
USER_VECTOR_BUILDERS: dict[type, UserVectorBuilder] = {}


def user_vector_builder(cls: type):
    """Register the builder of ``cls``'s user vectors (subclasses inherit it)."""
    def register(fn: UserVectorBuilder) -> UserVectorBuilder:
        USER_VECTOR_BUILDERS[cls] = fn
        return fn
    return register


def _builder_for(model) -> UserVectorBuilder:
    for cls in type(model).__mro__:
        if cls in USER_VECTOR_BUILDERS:
            return USER_VECTOR_BUILDERS[cls]
    known = ", ".join(sorted(c.__name__ for c in USER_VECTOR_BUILDERS))
    raise InvalidInputError(f"{type(model).__name__} models cannot be exported to ONNX; exportable: {known} "
                            "(register a builder with backpack.factor_export.user_vector_builder)")


def _held(g: GraphBuilder, weights: str, dtype) -> str:
    """1 where a bag slot holds an item (weight != 0), 0 for padding."""
    zero = g.const(np.array(0, dtype=np.float32), "zero")
    return g.op("Cast", g.op("Not", g.op("Equal", weights, zero)), to=_onnx_type(dtype))


def _column(g: GraphBuilder, like: str, value: float) -> str:
    """A float32 [batch, 1] column of ``value``, batch taken from ``like`` [batch, ...]."""
    batch_one = g.op("Concat", g.op("Slice", g.op("Shape", like), g.ints(0), g.ints(1)), g.ints(1), axis=0)
    return g.op("Expand", g.const(np.full((1, 1), value, dtype=np.float32), "fill"), batch_one)


def _onnx_type(dtype) -> int:
    from onnx import helper

    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def _gather_bag(g: GraphBuilder, table: np.ndarray, bag_items: str, dtype=np.float32) -> str:
    """The bag's rows of ``table``: [batch, bag, width]."""
    return g.op("Gather", g.const(np.ascontiguousarray(table, dtype=dtype), "item_table"), bag_items, axis=0)


def _weighted_sum(g: GraphBuilder, rows: str, weights: str) -> str:
    """sum over the bag of weights * rows: [batch, width]."""
    return g.op("ReduceSum", g.op("Mul", rows, g.op("Unsqueeze", weights, g.ints(2))), g.ints(1), keepdims=0)


def _mean_vectors(g: GraphBuilder, table: np.ndarray, bag_items: str, weights: str) -> str:
    """sum(w * row) / max(sum(w), tiny) over each bag (zero for an empty bag)."""
    total = g.op("ReduceSum", weights, g.ints(1), keepdims=1)
    total = g.op("Max", total, g.const(np.array(1e-30, dtype=np.float32), "tiny"))
    return g.op("Div", _weighted_sum(g, _gather_bag(g, table, bag_items), weights), total)


def _solve_spd(g: GraphBuilder, matrix: str, rhs: str, size: int) -> str:
    """x with matrix @ x = rhs per batch row, by Gauss-Jordan over ``size`` unrolled pivots.

    ``matrix`` [batch, size, size] is symmetric positive definite, so every
    pivot is positive without row exchanges.
    """
    m = g.op("Concat", matrix, g.op("Unsqueeze", rhs, g.ints(2)), axis=2)  # [batch, size, size + 1]
    for k in range(size):
        pivot_index = g.scalar_index(k)
        row = g.op("Gather", m, pivot_index, axis=1)                      # [batch, size + 1]
        pivot = g.op("Gather", row, pivot_index, axis=1)                  # [batch]
        row = g.op("Div", row, g.op("Unsqueeze", pivot, g.ints(1)))
        column = g.op("Gather", m, pivot_index, axis=2)                   # [batch, size]
        update = g.op("Mul", g.op("Unsqueeze", column, g.ints(2)), g.op("Unsqueeze", row, g.ints(1)))
        is_pivot_row = np.zeros((1, size, 1), dtype=bool)
        is_pivot_row[0, k, 0] = True
        m = g.op("Where", g.const(is_pivot_row, "pivot_row"), g.op("Unsqueeze", row, g.ints(1)),
                 g.op("Sub", m, update))
    return g.op("Gather", m, g.scalar_index(size), axis=2)


def _als_users(g: GraphBuilder, model, bag_items: str, bag_weights: str) -> str:
    """ALS: (Y'Y + reg I + sum (c - 1) y y') x = sum c y over held items, c = alpha * w."""
    items = model.item_factors.astype(np.float64)
    f = items.shape[1]
    gram = items.T @ items + model.regularization * np.eye(f)
    rows = _gather_bag(g, items, bag_items, np.float64)                  # [batch, bag, f]
    weights = g.op("Cast", bag_weights, to=_onnx_type(np.float64))
    held = _held(g, bag_weights, np.float64)
    confidence = g.op("Mul", weights, g.const(np.array(model.alpha, dtype=np.float64), "alpha"))
    extra = g.op("Mul", g.op("Sub", confidence, g.const(np.array(1.0), "one")), held)
    scaled = g.op("Mul", rows, g.op("Unsqueeze", extra, g.ints(2)))
    matrix = g.op("Add", g.op("MatMul", g.op("Transpose", scaled, perm=[0, 2, 1]), rows), g.const(gram, "gram"))
    rhs = _weighted_sum(g, rows, g.op("Mul", confidence, held))
    return g.op("Cast", _solve_spd(g, matrix, rhs, f), to=_onnx_type(np.float32))


def _bpr_users(g: GraphBuilder, model, bag_items: str, bag_weights: str) -> str:
    """BPR: [mean of the held items' vectors, 1] @ fold-in map."""
    if model.fold_in_map is None:
        raise NotFittedError("this BPR model has no fold-in map: fit it before exporting")
    held = _held(g, bag_weights, np.float32)
    mean = _mean_vectors(g, model.item_factors, bag_items, held)
    summary = g.op("Concat", mean, _column(g, mean, 1.0), axis=1)
    return g.op("MatMul", summary, g.const(model.fold_in_map.astype(np.float32), "fold_in_map"))


def _embedding_users(g: GraphBuilder, model, bag_items: str, bag_weights: str) -> str:
    """Embeddings: the weighted mean of the bag's item vectors."""
    return _mean_vectors(g, model.item_factors, bag_items, bag_weights)


def _register_builtins() -> None:
    from .als import ALS
    from .bpr import BPR
    from .embedding_model import EmbeddingModel

    user_vector_builder(ALS)(_als_users)
    user_vector_builder(BPR)(_bpr_users)
    user_vector_builder(EmbeddingModel)(_embedding_users)


_register_builtins()
