"""Hybrid recommender: collaborative scores blended with content similarity.

score(bag, item) = (1 - w) * cf(bag, item) / scale + w * cos(profile(bag), content(item))

``cf`` is any factor model (ALS by default, BPR, embeddings), ``scale`` the
typical size of its best scores (measured at fit, so both halves live on the
scale of a cosine), ``profile`` the bag's weighted mean content vector and
``content`` the text-embedding of the item's description or, without a text
model, the item's feature vector (``content_source="features"``: its types,
keywords, tags, creator and licence, reduced by a truncated SVD). An item nobody has
interacted with has no collaborative signal (its factors stay near zero) but
a full content score, so it can be recommended from its description alone.

Because both halves are inner products, the blend is one too: item vectors
are ``[cf item factors, content vectors]`` and a bag's vector is
``[(1 - w) / scale * cf user vector, w * unit profile]``. The hybrid is a
:class:`FactorModel`, so the dense top-k core serves it and it exports to
ONNX like any other factor model.

In the engine: ``engine.fit_content()`` then ``engine.fit("hybrid",
content_weight=0.3, collaborative="als", factors=64)``; the engine passes the
content vectors (aligned to item indices) to ``fit``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.factor_model import FactorModel
from backpack.core.arrays import as_user_items
from backpack.core.files import npz_path
from backpack.errors import InvalidInputError, ModelFileError, NotFittedError


class HybridRecommender(FactorModel):
    """A factor model (``collaborative``) blended with content vectors.

    Parameters
    ----------
    collaborative : algorithm name of a factor model (``als``, ``bpr``, ``embeddings``).
    content_weight : share of the content half, in [0, 1].
    content_source : which content the engine blends in: ``"text"`` (the text-embedding index of
        ``engine.fit_content()``), ``"features"`` (the feature index of ``engine.fit_features()``:
        types, keywords, tags, creator, licence, scene features; no neural model needed) or
        ``"auto"`` (text if fitted, else features).
    num_threads : threads for fit and batch calls; 0 means all cores.
    **collaborative_params : passed to the collaborative model (``factors=64``, ...).
    """

    kind = "hybrid"

    def __init__(
        self,
        collaborative: str = "als",
        content_weight: float = 0.3,
        num_threads: int = 0,
        plugins=None,
        content_source: str = "auto",
        **collaborative_params,
    ):
        super().__init__(num_threads)
        if not (isinstance(content_weight, (int, float)) and 0.0 <= content_weight <= 1.0):
            raise InvalidInputError(f"content_weight must be a number in [0, 1], got {content_weight!r}")
        if content_source not in ("auto", "text", "features"):
            raise InvalidInputError(f"content_source must be 'auto', 'text' or 'features', got {content_source!r}")
        self.content_source = content_source
        self.collaborative = collaborative
        self.content_weight = float(content_weight)
        self.collaborative_params = dict(collaborative_params)
        self._plugins = plugins
        self.cf = self._make_cf(num_threads)
        self.content_factors: np.ndarray | None = None  # items x dim, unit rows (zero: no description)
        self.scale = 1.0

    def _registry(self):
        from backpack.plugins import get_plugins

        return self._plugins if self._plugins is not None else get_plugins()

    def _make_cf(self, num_threads: int) -> FactorModel:
        params = {"num_threads": num_threads, **self.collaborative_params}
        return self._registry().create("algorithms", self.collaborative, params, FactorModel)

    def fit(self, user_items, show_progress: bool = True, item_embeddings=None) -> HybridRecommender:
        """Fit the collaborative model and blend it with ``item_embeddings`` (items x dim)."""
        if item_embeddings is None:
            raise NotFittedError(
                "the hybrid recommender needs content vectors: call engine.fit_content() "
                "or engine.fit_features() first (or pass item_embeddings=)"
            )
        csr = as_user_items(user_items)
        content = np.asarray(item_embeddings, dtype=np.float32)
        if content.ndim != 2 or content.shape[0] != csr.shape[1] or not np.isfinite(content).all():
            raise InvalidInputError(
                f"item_embeddings must be a finite {csr.shape[1]} x dim matrix, got {content.shape}"
            )
        norms = np.linalg.norm(content, axis=1, keepdims=True)
        self.content_factors = content / np.where(norms > 0, norms, 1.0)
        self.cf.fit(csr, show_progress=show_progress)
        self.scale = self._typical_top_score(csr)
        self._blend()
        return self

    def _typical_top_score(self, csr: sp.csr_matrix, sample: int = 2000) -> float:
        """Median of users' best collaborative score (a sample of users who hold something)."""
        users = np.flatnonzero(np.diff(csr.indptr))
        if users.size == 0:
            return 1.0
        users = np.random.default_rng(0).choice(users, size=min(sample, users.size), replace=False)
        ids, scores = self.cf.recommend_rows(csr[np.sort(users)], 1, filter_owned=False)
        best = np.abs(scores[:, 0][np.isfinite(scores[:, 0])])
        return float(np.median(best)) if best.size and np.median(best) > 0 else 1.0

    def _blend(self) -> None:
        self.item_factors = np.ascontiguousarray(
            np.hstack([self.cf.item_factors, self.content_factors]).astype(np.float32)
        )
        # stored users: their collaborative vectors with the content half of their stored bags unknown
        self.user_factors = np.hstack(
            [
                self.cf.user_factors * self._cf_share(),
                np.zeros((self.cf.user_factors.shape[0], self.content_factors.shape[1]), np.float32),
            ]
        ).astype(np.float32)

    def _cf_share(self) -> float:
        return (1.0 - self.content_weight) / self.scale

    def user_vectors(self, rows: sp.csr_matrix) -> np.ndarray:
        """[(1 - w) / scale * collaborative vector, w * unit mean content vector] for each bag."""
        if self.content_factors is None:
            raise NotFittedError("this hybrid model is not fitted yet")
        rows = rows[:, : self.content_factors.shape[0]]
        cf = self.cf.user_vectors(rows) * self._cf_share()
        profile = unit_profiles(rows, self.content_factors) * self.content_weight
        return np.hstack([cf, profile]).astype(np.float32)

    # -- persistence: the collaborative model in its own file beside ours ----------------

    def save(self, path) -> None:
        """Write the model: ``path`` (blend, content vectors) and ``path.collaborative.npz`` (the factor model)."""
        self._fitted_items()
        self.cf.save(_cf_path(path))
        super().save(path)

    def _extra_arrays(self) -> dict:
        meta = {
            "collaborative": self.collaborative,
            "content_weight": self.content_weight,
            "collaborative_params": self.collaborative_params,
            "scale": self.scale,
            "content_source": self.content_source,
        }
        return {"content_factors": self.content_factors, "hybrid": np.array(json.dumps(meta))}

    def _load_extra(self, f, path) -> None:
        if "hybrid" not in f or "content_factors" not in f:
            raise ModelFileError(f"{npz_path(path)} is not a hybrid model file")
        meta = json.loads(str(f["hybrid"]))
        self.collaborative, self.content_weight = meta["collaborative"], float(meta["content_weight"])
        self.collaborative_params, self.scale = dict(meta["collaborative_params"]), float(meta["scale"])
        self.content_source = meta.get("content_source", "auto")  # files from before it was a choice: auto
        self.content_factors = np.asarray(f["content_factors"], dtype=np.float32)
        # loaded the way the data directory loads any saved model: by its factory's load()
        factory = self._registry().algorithm(self.collaborative).value
        self.cf = factory.load(_cf_path(path), num_threads=self.num_threads)


def unit_profiles(rows: sp.csr_matrix, content: np.ndarray) -> np.ndarray:
    """Each bag's weighted mean content vector, scaled to unit length (zero for a bag with no content)."""
    sums = rows.astype(np.float32) @ content
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _cf_path(path) -> Path:
    p = npz_path(path)
    return p.with_name(p.name[: -len(".npz")] + ".collaborative.npz")
