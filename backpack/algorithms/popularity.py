"""Popularity: the most held items, globally or decayed by age, per item kind at serving time.

The baseline every recommender must beat, and what a brand-new user sees.
With ``half_life_days`` an interaction counts ``0.5 ** (age / half_life)``
of its weight, where age is measured back from ``now`` (default: the latest
interaction in the data, so a refit on the same data gives the same model
whatever the wall clock says). Per-kind lists ("most popular avatars") come
from the engine's ``item_kind=`` filter, which applies to this model like to
any other.

Every result is the popularity ranking itself, so :meth:`is_fill` is always
True and the engine reports the source as ``"popular"``.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.bag_scoring import BagScoringModel
from backpack.algorithms.factor_model import eligible_mask
from backpack.core.arrays import as_user_items, check_count, check_result_size
from backpack.core.files import npz_path, open_npz, save_npz
from backpack.errors import InvalidInputError, ModelFileError, NotFittedError

_FORMAT_VERSION = 1
_DAY = 86_400.0
# Rows ranked at once: bounds the (rows x candidates) ownership block.
_BLOCK_CELLS = 1 << 24


class Popularity(BagScoringModel):
    """Items ranked by (optionally recency-decayed) total weight.

    Parameters
    ----------
    half_life_days : decay interactions by age with this half-life (None: no decay).
    binary : count users holding an item instead of summing weights.
    now : the time ages are measured from, in seconds since the epoch (default: the data's latest).
    max_user_weight : the most one user's weight on one item counts (None: uncapped). What
        everyone is served must not be one user's to set: without a cap one user token adding
        weight 1e6 (or the same item a million times) tops every list. The default, 10, is above
        the heaviest default interaction kind (purchase, 8): ordinary signals count in full.
    """

    def __init__(
        self,
        half_life_days: float | None = None,
        binary: bool = False,
        now: float | None = None,
        max_user_weight: float | None = 10.0,
    ):
        if half_life_days is not None and not (np.isfinite(half_life_days) and half_life_days > 0):
            raise InvalidInputError(f"half_life_days must be finite and > 0 (or None), got {half_life_days!r}")
        if now is not None and not np.isfinite(now):
            raise InvalidInputError(f"now must be a finite number of seconds, got {now!r}")
        self.half_life_days = None if half_life_days is None else float(half_life_days)
        if max_user_weight is not None and not (np.isfinite(max_user_weight) and max_user_weight > 0):
            raise InvalidInputError(f"max_user_weight must be finite and > 0 (or None), got {max_user_weight!r}")
        self.binary = bool(binary)
        self.now = None if now is None else float(now)
        self.max_user_weight = None if max_user_weight is None else float(max_user_weight)
        self.scores: np.ndarray | None = None
        self._order: np.ndarray | None = None

    @property
    def n_items(self) -> int:
        return self._fitted().size

    def is_fill(self, scores: np.ndarray) -> np.ndarray:
        """Always: every result is the popularity ranking."""
        return np.ones(np.shape(scores), dtype=bool)

    def fit(self, user_items, show_progress: bool = True, timestamps: sp.spmatrix | None = None) -> Popularity:
        """Score each item; ``timestamps`` (same structure as ``user_items``) is needed with a half-life."""
        m = as_user_items(user_items, allow_zero=True)
        weights = np.ones_like(m.data, dtype=np.float64) if self.binary else m.data.astype(np.float64)
        if self.max_user_weight is not None:  # a (user, item) pair is one stored entry: capping it caps the user
            weights = np.minimum(weights, self.max_user_weight)
        if self.half_life_days is not None:
            weights = weights * self._decay(m, timestamps)
        self._set_scores(np.bincount(m.indices, weights=weights, minlength=m.shape[1]).astype(np.float32))
        return self

    def save(self, path) -> None:
        """Write the model to ``path`` (``.npz``) atomically."""
        save_npz(
            path,
            "popularity",
            _FORMAT_VERSION,
            scores=self._fitted(),
            binary=np.bool_(self.binary),
            half_life_days=np.float64(np.nan if self.half_life_days is None else self.half_life_days),
            now=np.float64(np.nan if self.now is None else self.now),
            max_user_weight=np.float64(np.nan if self.max_user_weight is None else self.max_user_weight),
        )

    @classmethod
    def load(cls, path, num_threads: int = 0) -> Popularity:
        """Read a model written by :meth:`save` (``num_threads`` is accepted and unused)."""
        with open_npz(path, "popularity", _FORMAT_VERSION, "popularity") as f:
            half_life, now = float(f["half_life_days"]), float(f["now"])
            cap = float(f["max_user_weight"]) if "max_user_weight" in f else np.nan  # older files: uncapped
            model = cls(
                None if np.isnan(half_life) else half_life,
                bool(f["binary"]),
                None if np.isnan(now) else now,
                None if np.isnan(cap) else cap,
            )
            scores = f["scores"]
        if scores.ndim != 1 or not np.isfinite(scores).all():
            raise ModelFileError(f"{npz_path(path)} is corrupt: the scores are not a finite vector")
        model._set_scores(scores.astype(np.float32))
        return model

    # -- internals -----------------------------------------------------------

    def _decay(self, m: sp.csr_matrix, timestamps) -> np.ndarray:
        if timestamps is None:
            raise InvalidInputError(
                "popularity with half_life_days needs interaction timestamps: record them "
                "(add_interactions(..., timestamps=...), a 'timestamp' column on import) "
                "or drop half_life_days"
            )
        t = timestamps.tocsr() if sp.issparse(timestamps) else None
        if (
            t is None
            or t.shape != m.shape
            or t.nnz != m.nnz
            or not np.array_equal(t.indptr, m.indptr)
            or not np.array_equal(t.indices, m.indices)
        ):
            raise InvalidInputError("timestamps must be a sparse matrix with exactly the structure of user_items")
        times = np.asarray(t.data, dtype=np.float64)
        missing = int(np.isnan(times).sum())
        if missing:
            raise InvalidInputError(
                f"popularity with half_life_days needs a timestamp on every interaction; "
                f"{missing:,} of {times.size:,} have none"
            )
        if times.size == 0:
            return times
        now = times.max() if self.now is None else self.now
        age_days = np.maximum(now - times, 0.0) / _DAY  # an interaction "after now" counts in full
        return np.exp2(-age_days / self.half_life_days)

    def _set_scores(self, scores: np.ndarray) -> None:
        self.scores = scores
        self._order = np.argsort(-scores, kind="stable").astype(np.int32)  # ties: lower index first

    def _fitted(self) -> np.ndarray:
        if self.scores is None:
            raise NotFittedError("this model is not fitted yet: call fit(user_items) first")
        return self.scores

    def _score(self, csr: sp.csr_matrix, N, filter_owned: bool, allowed, denied):
        scores = self._fitted()
        N = check_count(N, "N")
        check_result_size(csr.shape[0], N)
        rows = csr.shape[0]
        ids = np.full((rows, N), -1, dtype=np.int32)
        out = np.full((rows, N), -np.inf, dtype=np.float32)
        eligible = eligible_mask(scores.size, allowed, denied)
        order = self._order if eligible is None else self._order[eligible[self._order] == 1]
        if N == 0 or rows == 0 or order.size == 0:
            return ids, out
        counts = np.diff(csr.indptr)
        # Each row's answer lies within the first N + (items it owns) of the ranking.
        width = min(order.size, N + (int(counts.max()) if filter_owned and csr.nnz else 0))
        candidates = order[:width]
        rank = np.full(scores.size, -1, dtype=np.int64)
        rank[candidates] = np.arange(width)
        block = max(1, _BLOCK_CELLS // width)
        for start in range(0, rows, block):
            stop = min(rows, start + block)
            owned = np.zeros((stop - start, width), dtype=bool)
            if filter_owned:
                lo, hi = csr.indptr[start], csr.indptr[stop]
                r = np.repeat(np.arange(stop - start), counts[start:stop])
                at = rank[csr.indices[lo:hi]]
                owned[r[at >= 0], at[at >= 0]] = True
            # stable: the unowned candidates first, in ranking order
            picked = np.argsort(owned, axis=1, kind="stable")[:, :N]
            ok = ~np.take_along_axis(owned, picked, axis=1)
            chosen = candidates[picked]
            take = picked.shape[1]
            ids[start:stop, :take] = np.where(ok, chosen, -1)
            out[start:stop, :take] = np.where(ok, scores[chosen], -np.inf)
        return ids, out
