"""Plain NumPy references the C++ kernels are checked against.

Deliberately dense and slow: written to be obviously right, not fast.
"""

from __future__ import annotations

import numpy as np


def weights(X: np.ndarray, kind: str, K1: float = 1.2, B: float = 0.75) -> np.ndarray:
    """Per-interaction weights of a dense users x items matrix for each similarity."""
    X = X.astype(np.float64)
    held = X > 0
    n_users, n_items = X.shape
    if kind in ("jaccard", "cooccurrence"):
        return held.astype(np.float64)
    if kind == "cosine":
        return _unit_columns(X)
    idf = np.maximum(0.0, np.log(max(n_items, 1) / (1.0 + held.sum(axis=1))))[:, None]
    if kind == "tfidf":
        return _unit_columns(np.sqrt(X) * idf * held)
    if kind == "bm25":
        mass = X.sum(axis=0)
        average = mass.mean() if n_items else 1.0
        length = (1 - B) + B * mass / (average if average > 0 else 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            w = X * (K1 + 1) / (K1 * length[None, :] + X) * idf
        return np.where(held, w, 0.0)
    raise ValueError(kind)


def rp3beta(X: np.ndarray, alpha: float = 1.0, beta: float = 0.6) -> np.ndarray:
    """RP3beta as in the reproducibility studies' reference code, densely."""
    X = X.astype(np.float64)
    held = X > 0
    degree = held.sum(axis=0).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        item_to_user = np.where(held, (1.0 / degree[None, :]) ** alpha, 0.0)  # users x items
        user_to_item = np.where(held, (X / X.sum(axis=1, keepdims=True)) ** alpha, 0.0)
        penalty = np.where(degree > 0, degree**-beta, 0.0)
    S = (item_to_user.T @ user_to_item) * penalty[None, :]
    np.fill_diagonal(S, 0.0)
    return S


def similarity(X: np.ndarray, kind: str, **params) -> np.ndarray:
    """Full item x item similarity with a zero diagonal."""
    if kind == "rp3beta":
        return rp3beta(X, **params)
    W = weights(X, kind, **params)
    S = W.T @ W
    if kind == "jaccard":
        deg = (X > 0).sum(axis=0).astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            S = np.where(S > 0, S / (deg[:, None] + deg[None, :] - S), 0.0)
    np.fill_diagonal(S, 0.0)
    return S


def top_k_rows(S: np.ndarray, k: int) -> list[np.ndarray]:
    """For each row, the ids of its top-k positive entries (score desc, id asc).

    Scores equal to 12 significant digits count as ties: a mathematical tie can
    differ in the last bits depending on the BLAS summation order.
    """
    out = []
    for row in S:
        ids = np.flatnonzero(row > 0)
        scale = row[ids].max() if ids.size else 1.0
        order = np.lexsort((ids, -np.round(row[ids] / scale, 12)))
        out.append(ids[order][:k])
    return out


def recommend(
    neighbours: np.ndarray,
    bag: np.ndarray,
    n: int,
    *,
    filter_owned: bool,
    popularity: np.ndarray,
    allowed: np.ndarray | None = None,
    denied: np.ndarray | None = None,
):
    """Reference scoring of one dense bag against a dense neighbour matrix.

    Returns (ids, scores, n_scored): scored items first (score desc, id asc),
    then the popularity fill (popularity desc, id asc) with -1/(1+popularity).
    """
    n_items = neighbours.shape[0]
    scores = bag @ neighbours
    touched = ((bag != 0).astype(np.float64) @ (neighbours != 0).astype(np.float64)) > 0
    eligible = np.ones(n_items, bool)
    if filter_owned:
        eligible &= bag == 0
    if allowed is not None:
        eligible &= np.isin(np.arange(n_items), allowed)
    if denied is not None:
        eligible &= ~np.isin(np.arange(n_items), denied)
    scored = np.flatnonzero(touched & eligible)
    scored = scored[np.lexsort((scored, -scores[scored]))][:n]
    fill = np.flatnonzero(~touched & eligible)
    fill = fill[np.lexsort((fill, -popularity[fill]))][: n - scored.size]
    ids = np.concatenate([scored, fill])
    out_scores = np.concatenate([scores[scored], -1.0 / (1.0 + popularity[fill])])
    return ids, out_scores, scored.size


def _unit_columns(W: np.ndarray) -> np.ndarray:
    norms = np.sqrt((W**2).sum(axis=0))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(norms > 0, W / norms, 0.0)
