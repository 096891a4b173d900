"""Serving a factor model through a model backend (ONNX Runtime, IREE, ...).

:class:`BackendServedModel` wraps a fitted ALS, BPR or embedding model: the
model is exported to ONNX once (:mod:`backpack.models.export`), loaded on
the chosen backend, and ``recommend_rows`` becomes one model call per batch
of bags. Everything else (``similar_items``, ``save``, fills) is the native
model's, so an engine can switch backends without refitting or re-saving.

Results match the native core's to float32 rounding (ALS's solve runs in
float64 on both sides); ``tests/test_backend_serving.py`` states the
tolerance and checks it on both built-in backends.
"""

from __future__ import annotations

import threading

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.bag_scoring import fit_columns
from backpack.algorithms.base import Recommender
from backpack.algorithms.factor_model import FactorModel, eligible_mask
from backpack.core.arrays import check_count, check_result_size
from backpack.errors import ModelFileError
from backpack.models.backends import ModelBackend, get_backend
from backpack.models.export import export_factor_model


class BackendServedModel(Recommender):
    """A fitted factor model whose bag -> top-N runs on a model backend.

    ``backend`` is a registered name (``"onnx"``, ``"iree"``) or a
    :class:`ModelBackend`; ``backend_options`` go to its constructor. On a
    backend without a fast TopK the graph selects by blocks, exported for
    lists of up to ``max_n`` items; a longer list exports (and, on IREE,
    compiles) a wider graph once.
    """

    def __init__(
        self,
        model: FactorModel,
        backend: str | ModelBackend = "onnx",
        *,
        max_n: int = 20,
        plugins=None,
        **backend_options,
    ):
        if not isinstance(backend, ModelBackend):
            backend = get_backend(backend, plugins, **backend_options)
        self.native = model
        self.backend = backend
        self.max_n = min(check_count(max_n, "max_n"), model.n_items) or 1
        self._lock = threading.Lock()
        self._export()

    def _export(self) -> None:
        selection = "topk" if self.backend.fast_topk else "blocks"
        session = self.backend.load(export_factor_model(self.native, selection=selection, max_n=self.max_n))
        self.session, self._all_eligible = session, np.ones(self.native.n_items, dtype=bool)

    def _capacity(self, n: int) -> None:
        """Make sure the exported graph can return ``n`` items (block selection has a fixed width)."""
        if self.backend.fast_topk or n <= self.max_n:
            return
        with self._lock:
            if n > self.max_n:
                self.max_n = min(max(n, 2 * self.max_n), self.native.n_items)
                self._export()

    # -- served by the backend ------------------------------------------------

    def recommend_rows(self, rows: sp.csr_matrix, N: int, filter_owned: bool = True, allowed=None, denied=None):
        """Top-``N`` for each bag (row), computed by the backend in one call."""
        N = check_count(N, "N")
        n_items = self.native.n_items
        rows = fit_columns(rows, n_items)
        check_result_size(rows.shape[0], N)
        ids = np.full((rows.shape[0], N), -1, dtype=np.int32)
        scores = np.full((rows.shape[0], N), -np.inf, dtype=np.float32)
        k = min(N, n_items)
        if rows.shape[0] == 0 or k == 0:
            return ids, scores
        self._capacity(k)
        eligible = eligible_mask(n_items, allowed, denied)
        bag_items, bag_weights = _padded(rows, 0, 0.0, np.float32)
        exclude = (
            _padded(rows, n_items, None, None)[0]
            if filter_owned
            else np.full((rows.shape[0], 1), n_items, dtype=np.int64)
        )
        out = self.session.run(
            {
                "bag_items": bag_items,
                "bag_weights": bag_weights,
                "exclude": exclude,
                "eligible": self._all_eligible if eligible is None else eligible.astype(bool),
                "k": np.array([k], dtype=np.int64),
            }
        )
        found, best = out["items"], out["scores"]
        empty = ~np.isfinite(best) | (found >= n_items)  # -inf slots: fewer than k eligible items
        ids[:, :k] = np.where(empty, -1, found)
        scores[:, :k] = np.where(empty, -np.inf, best)
        return ids, scores

    # -- the native model's -----------------------------------------------------

    def fit(self, user_items, show_progress: bool = True):
        """Refit the native model and export it again."""
        self.native.fit(user_items, show_progress=show_progress)
        self._export()
        return self

    @property
    def n_items(self) -> int:
        return self.native.n_items

    def is_fill(self, scores: np.ndarray) -> np.ndarray:
        return self.native.is_fill(scores)

    def recommend(self, *args, **kwargs):
        return self.native.recommend(*args, **kwargs)

    def similar_items(self, *args, **kwargs):
        return self.native.similar_items(*args, **kwargs)

    def save(self, path) -> None:
        self.native.save(path)

    @classmethod
    def load(cls, path, backend: str | ModelBackend = "onnx", **options) -> BackendServedModel:
        """Read a factor model saved by :meth:`save` (ALS, BPR, embeddings, hybrid) and serve it on ``backend``."""
        from backpack.core.files import npz_path
        from backpack.models.export import USER_VECTOR_BUILDERS

        try:
            with np.load(npz_path(path), allow_pickle=False) as f:
                kind = str(f["kind"]) if "kind" in f else None
        except Exception:
            kind = None  # the model class's own load reports what is wrong with the file
        classes = {c.kind: c for c in USER_VECTOR_BUILDERS if isinstance(getattr(c, "kind", None), str)}
        if kind not in classes:
            raise ModelFileError(
                f"{npz_path(path)} is not a saved factor model that exports to ONNX "
                f"(kinds: {', '.join(sorted(classes))})"
            )
        return cls(classes[kind].load(path), backend, **options)


def _padded(rows: sp.csr_matrix, index_pad: int, weight_pad, weight_dtype):
    """Rows' (indices, weights) as dense [rows, max(1, longest)] arrays padded with the given values."""
    lengths = np.diff(rows.indptr)
    width = max(1, int(lengths.max()) if lengths.size else 1)
    slot = np.arange(rows.nnz) - np.repeat(rows.indptr[:-1], lengths)
    owner = np.repeat(np.arange(rows.shape[0]), lengths)
    indices = np.full((rows.shape[0], width), index_pad, dtype=np.int64)
    indices[owner, slot] = rows.indices
    if weight_dtype is None:
        return indices, None
    weights = np.full((rows.shape[0], width), weight_pad, dtype=weight_dtype)
    weights[owner, slot] = rows.data
    return indices, weights
