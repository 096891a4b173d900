"""Alternating least squares for implicit feedback (Hu, Koren & Volinsky 2008).

API-compatible with ``implicit.als.AlternatingLeastSquares`` and fitted the
same way: confidence ``c = alpha * weight`` for held pairs, preference 1 for
them and 0 (with confidence 1) for every other pair, each side solved by a
few conjugate-gradient steps per row (Takács et al.) in the C++ core.

Serving recomputes a user's vector from the live bag with an exact solve
against the item factors, so an interaction recorded after the fit counts in
the next recommendation; ``partial_fit_users`` / ``partial_fit_items`` store
such recomputed vectors for new or changed users and items.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from backpack.algorithms.factor_model import FactorModel, random_factors
from backpack.core import _core
from backpack.core.arrays import as_index_array, as_user_items, check_count, core_errors, csr_arrays
from backpack.errors import InvalidInputError


class ALS(FactorModel):
    """Implicit-feedback matrix factorisation.

    Parameters
    ----------
    factors : latent dimensions.
    regularization : L2 penalty on every factor (> 0).
    alpha : confidence scale: a held pair with weight ``w`` has confidence ``alpha * w``.
    iterations : alternating sweeps over users and items.
    cg_steps : conjugate-gradient steps per row and sweep (3 is implicit's default).
    random_state : seed of the starting factors.
    num_threads : threads for fit and batch calls; 0 means all cores.
    """

    kind = "als"
    param_names = ("factors", "regularization", "alpha", "iterations", "cg_steps", "random_state")

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        alpha: float = 1.0,
        iterations: int = 15,
        cg_steps: int = 3,
        random_state: int | None = None,
        num_threads: int = 0,
    ):
        super().__init__(num_threads)
        self.factors = check_count(factors, "factors", 4096)
        if self.factors < 1:
            raise InvalidInputError("factors must be >= 1")
        if not (np.isfinite(regularization) and regularization > 0):
            raise InvalidInputError("regularization must be finite and > 0")
        if not (np.isfinite(alpha) and alpha > 0):
            raise InvalidInputError("alpha must be finite and > 0")
        self.regularization = float(regularization)
        self.alpha = float(alpha)
        self.iterations = check_count(iterations, "iterations", 10_000)
        self.cg_steps = check_count(cg_steps, "cg_steps", 1_000)
        if random_state is not None:
            random_state = check_count(random_state, "random_state", 2**63 - 1)
        self.random_state = random_state
        self._item_gram: np.ndarray | None = None
        self._user_gram: np.ndarray | None = None

    def fit(self, user_items, show_progress: bool = True) -> ALS:
        """Factorise a users x items matrix of weights (``iterations`` sweeps)."""
        cui = self._confidence(as_user_items(user_items))
        ciu = cui.T.tocsr()
        ciu.sort_indices()
        n_users, n_items = cui.shape
        rng = np.random.default_rng(self.random_state)
        users = random_factors(n_users, self.factors, rng, 0.01)
        items = random_factors(n_items, self.factors, rng, 0.01)
        cui_arrays, ciu_arrays = csr_arrays(cui), csr_arrays(ciu)
        with tqdm(total=self.iterations, desc="ALS", unit="sweep", disable=not show_progress, leave=False) as bar:
            for _ in range(self.iterations):
                with core_errors():
                    _core.als_solve(
                        *cui_arrays,
                        items,
                        users,
                        None,
                        self.regularization,
                        self.cg_steps,
                        False,
                        self.num_threads,
                        None,
                    )
                    _core.als_solve(
                        *ciu_arrays,
                        users,
                        items,
                        None,
                        self.regularization,
                        self.cg_steps,
                        False,
                        self.num_threads,
                        None,
                    )
                bar.update(1)
        self.user_factors, self.item_factors = users, items
        self._item_gram = self._user_gram = None
        return self

    def user_vectors(self, rows: sp.csr_matrix) -> np.ndarray:
        """Exact least-squares user vectors for bags (rows over the model's items)."""
        items = self._fitted_items()
        if self._item_gram is None:
            with core_errors():
                self._item_gram = _core.gramian(items, self.num_threads)
        return self._solve(rows, items, self._item_gram)

    def recalculate_user(self, userid, user_items) -> np.ndarray:
        """implicit-style: vectors for users' rows of ``user_items``, not stored."""
        ids = np.atleast_1d(np.asarray(userid))
        rows = self._rows(as_user_items(user_items))
        if rows.shape[0] != ids.size:
            raise InvalidInputError("user_items must hold one row per userid")
        vectors = self.user_vectors(rows)
        return vectors[0] if np.isscalar(userid) else vectors

    def recalculate_item(self, itemid, item_users) -> np.ndarray:
        """implicit-style: vectors for items' rows of ``item_users`` (items x users), not stored."""
        users = self._fitted_users()
        ids = np.atleast_1d(np.asarray(itemid))
        rows = self._side_rows(as_user_items(item_users, "item_users"), users.shape[0])
        if rows.shape[0] != ids.size:
            raise InvalidInputError("item_users must hold one row per itemid")
        if self._user_gram is None:
            with core_errors():
                self._user_gram = _core.gramian(users, self.num_threads)
        vectors = self._solve(rows, users, self._user_gram)
        return vectors[0] if np.isscalar(itemid) else vectors

    def partial_fit_users(self, userids, user_items) -> None:
        """Recompute and store the factors of ``userids`` (new ids extend the model)."""
        ids, _ = as_index_array(userids, "userids", 2**31 - 1)
        vectors = self.recalculate_user(ids, user_items)
        self.user_factors = _store_rows(self._fitted_users(), ids, vectors)
        self._user_gram = None

    def partial_fit_items(self, itemids, item_users) -> None:
        """Recompute and store the factors of ``itemids`` from their users (new ids extend the model)."""
        ids, _ = as_index_array(itemids, "itemids", 2**31 - 1)
        vectors = self.recalculate_item(ids, item_users)
        self.item_factors = _store_rows(self._fitted_items(), ids, vectors)
        self._item_gram = None

    # -- internals -----------------------------------------------------------

    def _fitted_users(self) -> np.ndarray:
        self._fitted_items()
        return self.user_factors

    def _confidence(self, csr: sp.csr_matrix) -> sp.csr_matrix:
        if csr.nnz and (csr.data == 0).any():
            csr = csr.copy()
            csr.eliminate_zeros()
        return csr * np.float32(self.alpha) if self.alpha != 1.0 else csr

    def _side_rows(self, csr: sp.csr_matrix, width: int) -> sp.csr_matrix:
        if csr.shape[1] != width:
            raise InvalidInputError(f"rows have {csr.shape[1]} columns but the other side has {width} factors rows")
        return csr

    def _solve(self, rows: sp.csr_matrix, other: np.ndarray, gram: np.ndarray) -> np.ndarray:
        conf = self._confidence(rows)
        out = np.zeros((conf.shape[0], self.factors), dtype=np.float32)
        with core_errors():
            _core.als_solve(
                *csr_arrays(conf), other, out, gram, self.regularization, self.cg_steps, True, self.num_threads, None
            )
        return out


def _store_rows(matrix: np.ndarray, ids: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """``matrix`` with rows ``ids`` replaced by ``vectors``, grown (zero rows) to reach new ids."""
    needed = int(ids.max()) + 1 if ids.size else 0
    if needed > matrix.shape[0]:
        grown = np.zeros((needed, matrix.shape[1]), dtype=np.float32)
        grown[: matrix.shape[0]] = matrix
        matrix = grown
    else:
        matrix = matrix.copy()  # readers of the old array keep a consistent model
    matrix[ids] = vectors
    return matrix
