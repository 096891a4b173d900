"""implicit's ``implicit.bpr``: Bayesian personalised ranking on Backpack's parallel SGD kernel.

Same layout as implicit: both factor matrices have ``factors + 1`` columns (users' last column
starts at 1, items' last column is the item bias), so a score is one inner product; users and
items without interactions start at zero. ``fit(callback=)`` is called once per epoch with
``(epoch, seconds, correct, skipped)``: ``correct`` is the number of sampled triples the model
ranked right before its update, ``skipped`` is ``None`` (the kernel does not count them).
BPR has no closed form for a new user, so ``recalculate_user`` raises ``NotImplementedError``,
as in implicit.
"""

from __future__ import annotations

import time

import numpy as np
from tqdm.auto import tqdm

from backpack.algorithms.implicit_kernels import bpr_epoch
from backpack.implicit.als import cpu_dtype
from backpack.implicit.matrix_factorization import MatrixFactorizationBase
from backpack.implicit.utils import check_csr, check_random_state

__all__ = ["BayesianPersonalizedRanking"]


class BayesianPersonalizedRanking(MatrixFactorizationBase):
    """implicit's ``BayesianPersonalizedRanking`` (arguments in the order of implicit's factory function)."""

    def __init__(
        self,
        factors=100,
        learning_rate=0.01,
        regularization=0.01,
        dtype=np.float32,
        iterations=100,
        use_gpu=False,
        num_threads=0,
        verify_negative_samples=True,
        random_state=None,
    ):
        super().__init__(num_threads=num_threads)
        self.factors = factors
        self.learning_rate = learning_rate
        self.regularization = regularization
        self.dtype = cpu_dtype(dtype, use_gpu)
        self.iterations = iterations
        self.verify_negative_samples = verify_negative_samples
        self.random_state = random_state

    def fit(self, user_items, show_progress=True, callback=None):
        """Train on ``user_items`` (non-zero entries are held pairs; their weights are ignored, as in implicit)."""
        rs = check_random_state(self.random_state)
        user_items = check_csr(user_items).astype(np.float32)
        user_items.sum_duplicates()
        user_items.eliminate_zeros()
        users, items = user_items.shape
        f = int(self.factors)
        if self.item_factors is None or self.item_factors.shape != (items, f + 1):
            item_factors = (rs.random((items, f + 1), dtype=self.dtype) - 0.5) / f
            item_factors[np.bincount(user_items.indices, minlength=items) == 0] = 0.0
            self.item_factors = item_factors
        if self.user_factors is None or self.user_factors.shape != (users, f + 1):
            user_factors = (rs.random((users, f + 1), dtype=self.dtype) - 0.5) / f
            user_factors[np.diff(user_items.indptr) == 0] = 0.0
            user_factors[:, f] = 1.0
            self.user_factors = user_factors
        self._user_norms = self._item_norms = None
        X = np.ascontiguousarray(self.user_factors, np.float32)
        Y = np.ascontiguousarray(self.item_factors, np.float32)
        with tqdm(total=self.iterations, disable=not show_progress) as progress:
            for epoch in range(self.iterations):
                start = time.time()
                accuracy = 0.0
                if user_items.nnz:
                    seed = int(rs.integers(0, 2**63 - 1))
                    accuracy = bpr_epoch(
                        user_items,
                        X,
                        Y,
                        self.learning_rate,
                        self.regularization,
                        seed,
                        self.verify_negative_samples,
                        self.num_threads,
                    )
                progress.update(1)
                if callback:
                    callback(epoch, time.time() - start, int(round(accuracy * user_items.nnz)), None)
        self.user_factors = X.astype(self.dtype, copy=False)
        self.item_factors = Y.astype(self.dtype, copy=False)
        self._check_fit_errors()

    def save(self, fileobj_or_path):
        """``numpy.savez`` of the factors and parameters, as implicit writes them (path or open file)."""
        args = {
            "user_factors": self.user_factors,
            "item_factors": self.item_factors,
            "regularization": self.regularization,
            "factors": self.factors,
            "learning_rate": self.learning_rate,
            "verify_negative_samples": self.verify_negative_samples,
            "num_threads": self.num_threads,
            "iterations": self.iterations,
            "dtype": self.dtype.name,
            "random_state": self.random_state,
        }
        np.savez(fileobj_or_path, **{k: v for k, v in args.items() if v is not None})
