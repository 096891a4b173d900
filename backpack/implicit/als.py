"""implicit's ``implicit.als``: implicit-feedback ALS on Backpack's C++ solver.

Same model, defaults and calls as implicit 0.7.3's CPU ``AlternatingLeastSquares``: confidence
``alpha * weight``, conjugate-gradient sweeps (``use_cg=True``) or exact solves (``use_cg=False``),
``regularization=0`` allowed, float32 or float64 factors, ``fit(callback=)`` once per iteration
with ``(iteration, seconds, loss)``, ``recalculate_user`` / ``recalculate_item``, growing
``partial_fit_users`` / ``partial_fit_items``, ``explain``, ``numpy.savez`` files.
``use_native`` only chose between implicit's two CPU implementations; both values run the native
solver here. ``use_gpu=True`` raises (no CUDA build).
"""

from __future__ import annotations

import heapq
import logging
import time

import numpy as np
import scipy.linalg
import scipy.sparse as sp
from tqdm.auto import tqdm

from backpack.algorithms.implicit_kernels import als_sweep, gramian
from backpack.errors import UnsupportedOptionError
from backpack.implicit.matrix_factorization import MatrixFactorizationBase
from backpack.implicit.utils import check_csr, check_random_state, nonzeros

__all__ = ["AlternatingLeastSquares", "calculate_loss"]

log = logging.getLogger("backpack.implicit")


def cpu_dtype(dtype, use_gpu: bool) -> np.dtype:
    """The factor dtype for a CPU model; GPU requests and float16 (GPU-only in implicit) are refused."""
    if use_gpu:
        raise UnsupportedOptionError("use_gpu=True: this build has no CUDA support (pass use_gpu=False)")
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise UnsupportedOptionError(f"dtype {dtype} is not supported on the CPU (use float32 or float64)")
    return dtype


class AlternatingLeastSquares(MatrixFactorizationBase):
    """implicit's ``AlternatingLeastSquares`` (arguments in the order of implicit's factory function)."""

    def __init__(
        self,
        factors=100,
        regularization=0.01,
        alpha=1.0,
        dtype=np.float32,
        use_native=True,
        use_cg=True,
        use_gpu=False,
        iterations=15,
        calculate_training_loss=False,
        num_threads=0,
        random_state=None,
    ):
        super().__init__(num_threads=num_threads)
        self.factors = factors
        self.regularization = regularization
        self.alpha = alpha
        self.dtype = cpu_dtype(dtype, use_gpu)
        self.use_native = use_native
        self.use_cg = use_cg
        self.iterations = iterations
        self.calculate_training_loss = calculate_training_loss
        self.fit_callback = None
        self.cg_steps = 3
        self.random_state = random_state
        self._YtY = None
        self._XtX = None

    def fit(self, user_items, show_progress=True, callback=None):
        """Factorise ``user_items`` (users x items confidences); existing factors of the right shape are refined."""
        if not (np.isfinite(self.regularization) and self.regularization >= 0):
            raise ValueError("regularization must be finite and >= 0")
        random_state = check_random_state(self.random_state)
        Cui = _confidence(check_csr(user_items), self.alpha)
        Ciu = Cui.T.tocsr()
        Ciu.sort_indices()
        n_users, n_items = Cui.shape
        f = int(self.factors)
        users = self.user_factors
        if users is None or users.shape != (n_users, f):
            users = random_state.random((n_users, f), dtype=self.dtype) * 0.01
        items = self.item_factors
        if items is None or items.shape != (n_items, f):
            items = random_state.random((n_items, f), dtype=self.dtype) * 0.01
        users = np.ascontiguousarray(users, np.float32)
        items = np.ascontiguousarray(items, np.float32)
        self._item_norms = self._user_norms = self._YtY = self._XtX = None
        loss = None
        with tqdm(total=self.iterations, disable=not show_progress) as progress:
            for iteration in range(self.iterations):
                start = time.time()
                self._sweep(Cui, items, users)
                self._sweep(Ciu, users, items)
                progress.update(1)
                if self.calculate_training_loss:
                    loss = calculate_loss(Cui, users, items, self.regularization)
                    progress.set_postfix({"loss": loss})
                hook = callback or self.fit_callback
                if hook:
                    hook(iteration, time.time() - start, loss)
        if self.calculate_training_loss and loss is not None:
            log.info("Final training loss %.4f", loss)
        self.user_factors = users.astype(self.dtype, copy=False)
        self.item_factors = items.astype(self.dtype, copy=False)
        self._check_fit_errors()

    def _sweep(self, confidence: sp.csr_matrix, other: np.ndarray, target: np.ndarray) -> None:
        """One side's solve: CG steps from the current vectors, or exact solves against ``other``'s Gramian."""
        gram = None if self.use_cg else gramian(other, self.num_threads)
        als_sweep(
            confidence, other, target, gram, self.regularization, self.cg_steps, not self.use_cg, self.num_threads
        )

    def recalculate_user(self, userid, user_items):
        """Exact user vectors for rows of ``user_items`` (one per id), not stored."""
        return self._recalculate(userid, user_items, self.item_factors, "YtY", "user_items")

    def recalculate_item(self, itemid, item_users):
        """Exact item vectors for rows of ``item_users`` (items x users, one per id), not stored."""
        return self._recalculate(itemid, item_users, self.user_factors, "XtX", "item_users")

    def _recalculate(self, ids, rows, other, gram_name: str, name: str):
        rows = check_csr(rows)
        count = 1 if np.isscalar(ids) else len(ids)
        if rows.shape[0] != count:
            raise ValueError(f"{name} should have one row for every id")
        conf = _confidence(rows, self.alpha)
        other32 = np.ascontiguousarray(other, np.float32)
        if conf.shape[1] > other32.shape[0]:
            raise IndexError(f"{name} has {conf.shape[1]} columns but the model has {other32.shape[0]} rows")
        if conf.shape[1] < other32.shape[0]:  # rows written before the model grew: the new ids are simply unheld
            conf = sp.csr_matrix((conf.data, conf.indices, conf.indptr), shape=(count, other32.shape[0]))
        out = np.zeros((count, int(self.factors)), dtype=np.float32)
        als_sweep(conf, other32, out, getattr(self, gram_name), self.regularization, 0, True, 1)
        out = out.astype(self.dtype, copy=False)
        return out[0] if np.isscalar(ids) else out

    def partial_fit_users(self, userids, user_items):
        """Recompute and store the vectors of ``userids`` (ids past the end grow the model with zero rows)."""
        if len(userids) != user_items.shape[0]:
            raise ValueError("user_items must contain 1 row for every user in userids")
        vectors = self.recalculate_user(userids, user_items)
        self.user_factors = _grown(self.user_factors, max(userids))
        self.user_factors[userids] = vectors
        self._user_norms = None
        self._XtX = None

    def partial_fit_items(self, itemids, item_users):
        """Recompute and store the vectors of ``itemids`` from their users (ids past the end grow the model)."""
        if len(itemids) != item_users.shape[0]:
            raise ValueError("item_users must contain 1 row for every user in itemids")
        vectors = self.recalculate_item(itemids, item_users)
        self.item_factors = _grown(self.item_factors, max(itemids))
        self.item_factors[itemids] = vectors
        self._item_norms = None
        self._YtY = None

    def explain(self, userid, user_items, itemid, user_weights=None, N=10):
        """Why ``itemid`` scores for ``userid``: ``(score, [(held item, contribution)] best first, user_weights)``.

        ``user_items`` is the users x items matrix (row ``userid`` is read). The score is the
        recalculated user vector's; it splits into one term per held item. ``user_weights`` (the
        Cholesky factor of the user's system) can be passed back to speed up further calls.
        """
        user_items = _confidence(check_csr(user_items), self.alpha)
        Y = np.asarray(self.item_factors, dtype=np.float64)
        if user_weights is None:
            A = self.YtY.astype(np.float64) + float(self.regularization) * np.eye(int(self.factors))
            for other, confidence in nonzeros(user_items, userid):
                A += (abs(confidence) - 1.0) * np.outer(Y[other], Y[other])
            user_weights = scipy.linalg.cho_factor(A)
        weighted_item = scipy.linalg.cho_solve(user_weights, Y[itemid])
        total, heap = 0.0, []
        for other, confidence in nonzeros(user_items, userid):
            if confidence < 0:
                continue
            score = float(weighted_item.dot(Y[other]) * confidence)
            total += score
            entry = (score, int(other))
            if len(heap) < N:
                heapq.heappush(heap, entry)
            else:
                heapq.heappushpop(heap, entry)
        top = [(i, s) for s, i in sorted(heap, reverse=True)]
        return total, top, user_weights

    @property
    def YtY(self) -> np.ndarray:
        """Gramian of the item factors (float64), cached until the item factors change."""
        if self._YtY is None:
            self._YtY = gramian(self.item_factors, self.num_threads)
        return self._YtY

    @property
    def XtX(self) -> np.ndarray:
        """Gramian of the user factors (float64), cached until the user factors change."""
        if self._XtX is None:
            self._XtX = gramian(self.user_factors, self.num_threads)
        return self._XtX

    def save(self, fileobj_or_path):
        """``numpy.savez`` of the factors and parameters, as implicit writes them (path or open file)."""
        args = {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "regularization": self.regularization,
            "factors": self.factors,
            "num_threads": self.num_threads,
            "iterations": self.iterations,
            "use_native": self.use_native,
            "use_cg": self.use_cg,
            "cg_steps": self.cg_steps,
            "calculate_training_loss": self.calculate_training_loss,
            "dtype": self.dtype.name,
            "random_state": self.random_state,
            "alpha": self.alpha,
        }
        np.savez(fileobj_or_path, **{k: v for k, v in args.items() if v is not None})


def calculate_loss(Cui, user_factors, item_factors, regularization, num_threads=0) -> float:
    """implicit's ALS training loss: weighted squared error plus L2, per unit of confidence.

    ``sum_ui c_ui (p_ui - x_u . y_i)^2 + reg (|X|^2 + |Y|^2)`` over all pairs (``c = 1, p = 0``
    where ``Cui`` holds nothing), divided by ``sum(c over held pairs) + users * items - nnz``.
    """
    Cui = check_csr(Cui)
    X = np.asarray(user_factors, dtype=np.float64)
    Y = np.asarray(item_factors, dtype=np.float64)
    # every pair as unheld: sum_u x_u^T (Y^T Y) x_u
    loss = float(np.einsum("ij,jk,ik->", X, Y.T @ Y, X))
    coo = Cui.tocoo()
    pred = np.einsum("ij,ij->i", X[coo.row], Y[coo.col])
    c = coo.data.astype(np.float64)
    held = c > 0
    # held pairs replace their "unheld" term; a negative value is a dislike with confidence |c|
    loss += float(np.sum(np.where(held, c * (pred - 1.0) ** 2, -c * pred**2) - pred**2))
    total_confidence = float(np.sum(np.abs(c)))
    loss += float(regularization) * (float(np.sum(X * X)) + float(np.sum(Y * Y)))
    return loss / (total_confidence + Cui.shape[0] * Cui.shape[1] - Cui.nnz)


def _confidence(csr: sp.csr_matrix, alpha) -> sp.csr_matrix:
    """Canonical float32 confidences ``alpha * weight`` (explicit zeros dropped: they carry nothing)."""
    m = csr.astype(np.float32)
    if alpha != 1.0:
        m = m * np.float32(alpha)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def _grown(matrix: np.ndarray, max_id: int) -> np.ndarray:
    """``matrix`` extended with zero rows so that row ``max_id`` exists (a copy when it grows)."""
    rows, width = matrix.shape
    if max_id < rows:
        return matrix
    return np.concatenate([matrix, np.zeros((max_id - rows + 1, width), dtype=matrix.dtype)])
