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
- hybrid: the collaborative model's vector beside the unit content profile.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from backpack.core.arrays import check_count
from backpack.errors import InvalidInputError, NotFittedError
from backpack.models.onnx_graph import GraphBuilder

INPUT_NAMES = ("bag_items", "bag_weights", "exclude", "eligible", "k")


def export_factor_model(model, *, selection: str = "topk", max_n: int = 100, opset: int = 17):
    """The ONNX model (``onnx.ModelProto``) that serves ``model`` (an ALS, BPR or embedding model).

    ``selection`` is how the best ``k`` items are picked: ``"topk"`` uses the
    ONNX TopK operator (any ``k``); ``"blocks"`` avoids it for backends whose
    TopK is slow (IREE lowers it to a full sort): the scores are cut into
    blocks, the best ``max_n`` blocks by their maxima are kept, and ``max_n``
    arg-max passes over those candidates pick the items, exactly. ``k`` may
    then not exceed ``max_n``.
    """
    from backpack.models.backends import require

    require("onnx", "onnx", "exporting a model to ONNX", "onnx")
    if selection not in ("topk", "blocks"):
        raise InvalidInputError(f"selection must be 'topk' or 'blocks', got {selection!r}")
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
    if selection == "blocks" and not 1 <= check_count(max_n, "max_n", n_items + 1):
        raise InvalidInputError("max_n must be >= 1")
    size, n_blocks = _block_shape(n_items + 1, max_n)
    # -inf columns after the items (one for "topk", up to a whole block for "blocks"), so padded
    # exclusions (index n_items) land somewhere harmless
    extra = 1 if selection == "topk" else n_blocks * size - n_items
    widened = g.op("Pad", scores, g.ints(0, 0, 0, extra), minus_inf)
    blocked = g.op("Expand", minus_inf, g.op("Shape", exclude))
    masked = g.op("ScatterElements", widened, exclude, blocked, axis=1)
    if selection == "topk":
        top_scores, top_items = g.op_n("TopK", [masked, k], 2, axis=1, largest=1, sorted=1)
    else:
        top_scores, top_items = _block_top(g, masked, size, n_blocks, max_n, k)
    g.output(top_scores, "scores", np.float32, ["batch", "k"])
    g.output(top_items, "items", np.int64, ["batch", "k"])
    return g.model(opset)


def _block_shape(width: int, max_n: int) -> tuple[int, int]:
    """Block size and count for selecting ``max_n`` of ``width`` scores (sizes balance the two stages)."""
    size = max(8, int(np.sqrt(width / max(max_n, 1))))
    return size, -(-width // size)


def _block_top(g: GraphBuilder, scores: str, size: int, n_blocks: int, max_n: int, k: str) -> tuple[str, str]:
    """The best ``k`` (<= ``max_n``) of each row of ``scores`` [batch, n_blocks * size], best first, without TopK.

    Every item of the top ``max_n`` lies in one of the ``max_n`` blocks with
    the highest maxima, so ``max_n`` arg-max passes over the blocks' maxima and
    then over those blocks' items find them exactly (equal scores may come in
    another order than TopK's lower-index-first).
    """
    blocks = g.op("Reshape", scores, g.ints(-1, n_blocks, size))  # [batch, blocks, size]
    maxima = g.op("ReduceMax", blocks, axes=[2], keepdims=0)  # [batch, blocks] (axes: an attribute in opset 17)
    chosen, chosen_max = _argmax_passes(g, maxima, min(max_n, n_blocks))  # [batch, picks] each
    index = g.op(
        "Expand", g.op("Unsqueeze", chosen, g.ints(2)), g.op("Concat", g.op("Shape", chosen), g.ints(size), axis=0)
    )  # [batch, picks, size]
    candidates = g.op("GatherElements", blocks, index, axis=1)
    # A block picked once every block left was -inf may repeat an earlier pick: blank it.
    minus_inf = g.const(np.array(-np.inf, np.float32), "minus_inf")
    empty = g.op("Unsqueeze", g.op("Equal", chosen_max, minus_inf), g.ints(2))
    candidates = g.op("Where", empty, minus_inf, candidates)
    ids = g.op(
        "Add",
        g.op("Mul", index, g.const(np.array(size, np.int64), "size")),
        g.const(np.arange(size, dtype=np.int64).reshape(1, 1, size), "offsets"),
    )
    flat_shape = g.ints(0, -1)
    best, best_score = _argmax_passes(g, g.op("Reshape", candidates, flat_shape), max_n)
    best_ids = g.op("GatherElements", g.op("Reshape", ids, flat_shape), best, axis=1)
    zero = g.ints(0)
    return (g.op("Slice", best_score, zero, k, g.ints(1)), g.op("Slice", best_ids, zero, k, g.ints(1)))


def _argmax_passes(g: GraphBuilder, values: str, passes: int) -> tuple[str, str]:
    """``passes`` times: take each row's arg-max and blank it. Returns positions and values [batch, passes]."""
    blank = g.const(np.full((1, 1), -np.inf, dtype=np.float32), "blank")
    positions, found = [], []
    for _ in range(passes):
        at = g.op("ArgMax", values, axis=1, keepdims=1, select_last_index=0)  # [batch, 1]
        positions.append(at)
        found.append(g.op("GatherElements", values, at, axis=1))
        values = g.op("ScatterElements", values, at, g.op("Expand", blank, g.op("Shape", at)), axis=1)
    return g.op("Concat", *positions, axis=1), g.op("Concat", *found, axis=1)


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
    raise InvalidInputError(
        f"{type(model).__name__} models cannot be exported to ONNX; exportable: {known} "
        "(register a builder with backpack.models.export.user_vector_builder)"
    )


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
        row = g.op("Gather", m, pivot_index, axis=1)  # [batch, size + 1]
        pivot = g.op("Gather", row, pivot_index, axis=1)  # [batch]
        row = g.op("Div", row, g.op("Unsqueeze", pivot, g.ints(1)))
        column = g.op("Gather", m, pivot_index, axis=2)  # [batch, size]
        update = g.op("Mul", g.op("Unsqueeze", column, g.ints(2)), g.op("Unsqueeze", row, g.ints(1)))
        is_pivot_row = np.zeros((1, size, 1), dtype=bool)
        is_pivot_row[0, k, 0] = True
        m = g.op("Where", g.const(is_pivot_row, "pivot_row"), g.op("Unsqueeze", row, g.ints(1)), g.op("Sub", m, update))
    return g.op("Gather", m, g.scalar_index(size), axis=2)


def _als_users(g: GraphBuilder, model, bag_items: str, bag_weights: str) -> str:
    """ALS: (Y'Y + reg I + sum (c - 1) y y') x = sum c y over held items, c = alpha * w."""
    items = model.item_factors.astype(np.float64)
    f = items.shape[1]
    gram = items.T @ items + model.regularization * np.eye(f)
    rows = _gather_bag(g, items, bag_items, np.float64)  # [batch, bag, f]
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


def _hybrid_users(g: GraphBuilder, model, bag_items: str, bag_weights: str) -> str:
    """Hybrid: [share * collaborative vector, weight * unit weighted-mean content vector]."""
    cf = _builder_for(model.cf)(g, model.cf, bag_items, bag_weights)
    cf = g.op("Mul", cf, g.const(np.array(model._cf_share(), dtype=np.float32), "cf_share"))
    profile = _weighted_sum(g, _gather_bag(g, model.content_factors, bag_items), bag_weights)
    norm = g.op("Sqrt", g.op("ReduceSum", g.op("Mul", profile, profile), g.ints(1), keepdims=1))
    one = g.const(np.array(1.0, dtype=np.float32), "one")
    norm = g.op("Where", g.op("Greater", norm, g.const(np.array(0.0, np.float32), "zero")), norm, one)
    profile = g.op(
        "Mul", g.op("Div", profile, norm), g.const(np.array(model.content_weight, dtype=np.float32), "content_weight")
    )
    return g.op("Concat", cf, profile, axis=1)


def _register_builtins() -> None:
    from backpack.algorithms.als import ALS
    from backpack.algorithms.bpr import BPR
    from backpack.algorithms.embeddings import EmbeddingModel
    from backpack.algorithms.hybrid import HybridRecommender

    user_vector_builder(ALS)(_als_users)
    user_vector_builder(BPR)(_bpr_users)
    user_vector_builder(EmbeddingModel)(_embedding_users)
    user_vector_builder(HybridRecommender)(_hybrid_users)


_register_builtins()
