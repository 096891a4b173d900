"""EASE (Steck 2019): closed-form item-item regression with a zero diagonal.

``B = argmin |X - X B|^2 + reg |B|^2, diag(B) = 0`` has the closed form
``P = (X^T X + reg I)^-1, B = -P / diag(P)`` (off the diagonal). One of the
strongest simple baselines in recent reproducibility studies, and exact;
the price is a dense items x items matrix, so the model refuses catalogues
above ``max_items`` (default 50,000: ~10 GiB in float32 while fitting)
instead of exhausting memory.

Scores can be negative and every item gets one: ``is_fill`` is always False.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack

from backpack.algorithms._shared import top_n
from backpack.algorithms.bag_scoring import BagScoringModel
from backpack.algorithms.factor_model import eligible_mask
from backpack.core.arrays import as_user_items, check_count, check_result_size
from backpack.core.files import npz_path, open_npz, save_npz
from backpack.errors import InvalidInputError, ModelFileError, NotFittedError

_FORMAT_VERSION = 1
# Rows scored at once: bounds the dense (rows x items) block to ~64 MiB.
_BLOCK_CELLS = 1 << 24


class EASE(BagScoringModel):
    """Embarrassingly shallow autoencoder.

    Parameters
    ----------
    regularization : L2 penalty (``lambda``; hundreds to thousands is typical).
    max_items : largest catalogue this model accepts (memory ~ 4 * items^2 bytes).
    binary : fit on held / not held instead of the weights.
    """

    def __init__(
        self, regularization: float = 500.0, max_items: int = 50_000, binary: bool = True, num_threads: int = 0
    ):
        if not (np.isfinite(regularization) and regularization > 0):
            raise InvalidInputError("regularization must be finite and > 0")
        self.regularization = float(regularization)
        self.max_items = check_count(max_items, "max_items", 1_000_000)
        self.binary = bool(binary)
        self.num_threads = check_count(num_threads, "num_threads")
        self.weights: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return self._fitted().shape[0]

    def is_fill(self, scores: np.ndarray) -> np.ndarray:
        """Never: EASE scores every item (and scores may be negative)."""
        return np.zeros(np.shape(scores), dtype=bool)

    def fit(self, user_items, show_progress: bool = True) -> EASE:
        """Solve for the item-item weight matrix."""
        x = self._input(as_user_items(user_items))
        n = x.shape[1]
        if n > self.max_items:
            raise InvalidInputError(
                f"EASE is configured for at most max_items={self.max_items:,} items and the data has {n:,}: "
                f"it needs a dense {n:,} x {n:,} matrix (~{4 * n * n / 2**30:.1f} GiB). Raise max_items if "
                "the memory is there, or use itemknn, rp3beta or als for large catalogues"
            )
        gram = (x.T @ x).toarray().astype(np.float32)
        gram[np.diag_indices(n)] += np.float32(self.regularization)
        # In-place Cholesky and inverse: one n x n buffer, no identity matrix.
        factor, info = lapack.spotrf(gram, lower=1, overwrite_a=1, clean=0)
        if info != 0:
            raise InvalidInputError(
                f"EASE could not factorise X^T X + reg I (LAPACK info {info}); raise regularization"
            )
        inverse, info = lapack.spotri(factor, lower=1, overwrite_c=1)
        if info != 0:
            raise InvalidInputError(f"EASE could not invert X^T X + reg I (LAPACK info {info}); raise regularization")
        upper = np.triu_indices(n, 1)
        inverse[upper] = inverse.T[upper]  # spotri fills the lower triangle only
        diag = inverse.diagonal().copy()
        inverse /= -diag[None, :]
        inverse[np.diag_indices(n)] = 0.0
        # LAPACK hands back Fortran order; rows must be contiguous for bag x weights.
        self.weights = np.ascontiguousarray(inverse)
        return self

    def save(self, path) -> None:
        """Write the model to ``path`` (``.npz``) atomically."""
        save_npz(
            path,
            "ease",
            _FORMAT_VERSION,
            regularization=np.float64(self.regularization),
            max_items=np.int64(self.max_items),
            binary=np.bool_(self.binary),
            weights=self._fitted(),
        )

    @classmethod
    def load(cls, path, num_threads: int = 0) -> EASE:
        """Read a model written by :meth:`save`."""
        with open_npz(path, "ease", _FORMAT_VERSION, "EASE") as f:
            model = cls(float(f["regularization"]), int(f["max_items"]), bool(f["binary"]), num_threads)
            weights = f["weights"]
        if weights.ndim != 2 or weights.shape[0] != weights.shape[1] or not np.isfinite(weights).all():
            raise ModelFileError(f"{npz_path(path)} is corrupt: the weight matrix is not square and finite")
        model.weights = np.ascontiguousarray(weights, dtype=np.float32)
        return model

    # -- internals -----------------------------------------------------------

    def _fitted(self) -> np.ndarray:
        if self.weights is None:
            raise NotFittedError("this model is not fitted yet: call fit(user_items) first")
        return self.weights

    def _input(self, csr: sp.csr_matrix) -> sp.csr_matrix:
        if self.binary:
            csr = sp.csr_matrix((np.ones_like(csr.data), csr.indices, csr.indptr), shape=csr.shape)
        return csr

    def _score(self, csr: sp.csr_matrix, N, filter_owned: bool, allowed, denied):
        weights = self._fitted()
        N = check_count(N, "N")
        check_result_size(csr.shape[0], N)
        eligible = eligible_mask(weights.shape[0], allowed, denied)
        x = self._input(csr)
        owned = csr if filter_owned else None  # held with weight 0 still counts as held
        block = max(1, _BLOCK_CELLS // max(1, weights.shape[0]))
        ids = np.empty((csr.shape[0], N), dtype=np.int32)
        scores = np.empty((csr.shape[0], N), dtype=np.float32)
        for start in range(0, csr.shape[0], block):
            stop = min(csr.shape[0], start + block)
            dense = np.asarray(x[start:stop] @ weights, dtype=np.float32)
            ids[start:stop], scores[start:stop] = top_n(
                dense, N, None if owned is None else owned[start:stop], eligible
            )
        return ids, scores
