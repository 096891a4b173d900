"""Bayesian personalised ranking (Rendle et al. 2009), trained in the C++ core.

API-compatible with ``implicit.bpr.BayesianPersonalizedRanking`` and laid out
the same way: both factor matrices have ``factors + 1`` columns, the last one
being 1 for users and the item's bias for items, so a score is one inner
product. Training draws (user, held item, other item) triples, the other item
in proportion to its popularity, and runs lock-free SGD on all cores.

BPR has no closed form for a new bag. Serving folds a live bag in by least
squares against the item factors (the ALS user step with the bag as
preferences): deterministic, one small solve per user, and it follows the
bag in real time. ``recommend(..., recalculate_user=False)`` keeps using the
trained vectors.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from . import _core
from ._arrays import as_user_items, check_count, core_errors, csr_arrays
from .errors import InvalidInputError
from .factor_model import FactorModel
from .progress import run_with_progress


class BPR(FactorModel):
    """Pairwise-ranking matrix factorisation.

    Parameters
    ----------
    factors : latent dimensions (the item bias comes on top).
    learning_rate, regularization : SGD step and L2 penalty.
    iterations : epochs; each draws as many triples as there are stored pairs.
    verify_negative_samples : skip a triple whose "other" item the user holds.
    fold_in_regularization : L2 penalty of the least-squares fold-in of live bags.
    random_state : seed of the starting factors and of the sampling.
    num_threads : threads for fit and batch calls; 0 means all cores.
    """

    kind = "bpr"
    param_names = ("factors", "learning_rate", "regularization", "iterations", "verify_negative_samples",
                   "fold_in_regularization", "random_state")

    def __init__(self, factors: int = 64, learning_rate: float = 0.01, regularization: float = 0.01,
                 iterations: int = 100, verify_negative_samples: bool = True,
                 fold_in_regularization: float = 0.1, random_state: int | None = None, num_threads: int = 0):
        super().__init__(num_threads)
        self.factors = check_count(factors, "factors", 4096)
        if self.factors < 1:
            raise InvalidInputError("factors must be >= 1")
        for name, value in (("learning_rate", learning_rate), ("regularization", regularization)):
            if not (np.isfinite(value) and value >= 0):
                raise InvalidInputError(f"{name} must be finite and >= 0")
        if not (np.isfinite(fold_in_regularization) and fold_in_regularization > 0):
            raise InvalidInputError("fold_in_regularization must be finite and > 0")
        self.learning_rate = float(learning_rate)
        self.regularization = float(regularization)
        self.iterations = check_count(iterations, "iterations", 100_000)
        self.verify_negative_samples = bool(verify_negative_samples)
        self.fold_in_regularization = float(fold_in_regularization)
        if random_state is not None:
            random_state = check_count(random_state, "random_state", 2**63 - 1)
        self.random_state = random_state
        self._item_gram: np.ndarray | None = None
        self.last_accuracy: float | None = None

    def fit(self, user_items, show_progress: bool = True) -> "BPR":
        """Train on a users x items matrix (weights only mark held pairs)."""
        csr = as_user_items(user_items)
        n_users, n_items = csr.shape
        rng = np.random.default_rng(self.random_state)
        # implicit's start: small centred values, user bias column fixed at 1
        users = ((rng.random((n_users, self.factors + 1), dtype=np.float32) - 0.5) / self.factors)
        items = ((rng.random((n_items, self.factors + 1), dtype=np.float32) - 0.5) / self.factors)
        users[:, self.factors] = 1.0
        items[:, self.factors] = 0.0
        seed = int(rng.integers(0, 2**63 - 1))
        arrays = csr_arrays(csr)

        def train(progress):
            with core_errors():
                return _core.bpr_train(*arrays, users, items, self.learning_rate, self.regularization,
                                       self.iterations, seed, self.verify_negative_samples,
                                       self.num_threads, progress)

        self.last_accuracy = run_with_progress(train, description="BPR", show=show_progress, unit="epoch")
        self.user_factors, self.item_factors = users, items
        self._item_gram = None
        return self

    def user_vectors(self, rows: sp.csr_matrix) -> np.ndarray:
        """Fold-in vectors for bags: least squares on the factor part, bias column 1."""
        items = self._fitted_items()
        latent = np.ascontiguousarray(items[:, : self.factors])
        if self._item_gram is None:
            with core_errors():
                self._item_gram = _core.gramian(latent, self.num_threads)
        conf = rows
        if conf.nnz and (conf.data == 0).any():
            conf = conf.copy()
            conf.eliminate_zeros()
        # Preferences only: every held item counts once, whatever its weight.
        conf = sp.csr_matrix((np.ones_like(conf.data), conf.indices, conf.indptr), shape=conf.shape)
        out = np.zeros((conf.shape[0], self.factors + 1), dtype=np.float32)
        solved = np.zeros((conf.shape[0], self.factors), dtype=np.float32)
        with core_errors():
            _core.als_solve(*csr_arrays(conf), latent, solved, self._item_gram, self.fold_in_regularization,
                            0, True, self.num_threads, None)
        out[:, : self.factors] = solved
        out[:, self.factors] = 1.0
        return out
