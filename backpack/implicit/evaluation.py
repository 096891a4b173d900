"""implicit's ``implicit.evaluation``: its random splits and its ranking metrics at K, same definitions.

The metrics ask the model for ``K`` items per test user (users with a test item), in batches of
1000, as implicit does, and score them against the test items: precision divides hits by
``min(K, test items)``; MAP, NDCG (binary gains, ideal DCG over ``min(K, test items)``) and AUC
(of the top-K ranking against all other items) are averaged over test users.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from backpack.implicit.utils import check_random_state

__all__ = [
    "AUC_at_k",
    "leave_k_out_split",
    "mean_average_precision_at_k",
    "ndcg_at_k",
    "precision_at_k",
    "ranking_metrics_at_k",
    "train_test_split",
]


def train_test_split(ratings, train_percentage=0.8, random_state=None):
    """Each entry goes to train with probability ``train_percentage``; negative test entries are dropped."""
    ratings = sp.coo_matrix(ratings)
    draw = check_random_state(random_state).random(len(ratings.data))
    train_at, test_at = draw < train_percentage, draw >= train_percentage
    train = sp.csr_matrix(
        (ratings.data[train_at], (ratings.row[train_at], ratings.col[train_at])),
        shape=ratings.shape,
        dtype=ratings.dtype,
    )
    test = sp.csr_matrix(
        (ratings.data[test_at], (ratings.row[test_at], ratings.col[test_at])), shape=ratings.shape, dtype=ratings.dtype
    )
    test.data[test.data < 0] = 0
    test.eliminate_zeros()
    return train, test


def leave_k_out_split(ratings, K=1, train_only_size=0.0, random_state=None):
    """``K`` random entries of each user with more than ``K + 1`` go to test, the rest to train.

    ``train_only_size`` is the share of users kept wholly in train. Raises ``ValueError`` for
    ``K < 1`` or a share outside ``[0, 1)``.
    """
    if K < 1:
        raise ValueError("The 'K' must be >= 1.")
    if not 0.0 <= train_only_size < 1.0:
        raise ValueError("The 'train_only_size' must be in the range (0.0 <= x < 1.0).")
    ratings = sp.coo_matrix(ratings)
    rng = check_random_state(random_state)
    users, items, data = ratings.row, ratings.col, ratings.data
    unique_users, counts = np.unique(users, return_counts=True)
    candidates = counts > K + 1
    if train_only_size > 0.0:
        size = max(1, int(len(unique_users) * train_only_size))
        candidates &= ~np.isin(unique_users, rng.choice(len(unique_users), size=size, replace=False))
    in_test_pool = np.isin(users, unique_users[candidates])
    pool = np.flatnonzero(in_test_pool)
    # a random order within each user, then each user's first K entries of that order
    order = pool[np.lexsort((rng.random(pool.size), users[pool]))]
    ranks = np.arange(order.size) - np.searchsorted(users[order], users[order], side="left")
    test_at = order[ranks < K]
    is_test = np.zeros(len(data), dtype=bool)
    is_test[test_at] = True
    test = sp.csr_matrix((data[is_test], (users[is_test], items[is_test])), shape=ratings.shape, dtype=ratings.dtype)
    train = sp.csr_matrix(
        (data[~is_test], (users[~is_test], items[~is_test])), shape=ratings.shape, dtype=ratings.dtype
    )
    return train, test


def ranking_metrics_at_k(model, train_user_items, test_user_items, K=10, show_progress=True, num_threads=1):
    """``{"precision", "map", "ndcg", "auc"}`` at ``K`` over the users that have test items."""
    train = sp.csr_matrix(train_user_items)
    test = sp.csr_matrix(test_user_items)
    n_items = test.shape[1]
    gains = 1.0 / np.log2(np.arange(2, K + 2))
    ideal = np.cumsum(gains)
    relevant = divisor = mean_ap = ndcg = mean_auc = 0.0
    total = 0
    users = np.flatnonzero(np.diff(test.indptr) > 0).astype(np.int32)
    with tqdm(total=len(users), disable=not show_progress) as progress:
        for start in range(0, len(users), 1000):
            batch = users[start : start + 1000]
            ids, _ = model.recommend(batch, train[batch], N=K)
            for row, u in enumerate(batch):
                likes = test.indices[test.indptr[u] : test.indptr[u + 1]]
                hits = np.isin(np.asarray(ids[row])[:K], likes)
                n_pos = len(np.unique(likes))
                n_neg = n_items - n_pos
                cutoff = min(K, n_pos)
                divisor += cutoff
                relevant += hits.sum()
                hit_count = np.cumsum(hits)
                mean_ap += float(np.sum((hit_count / np.arange(1, K + 1))[hits])) / cutoff
                ndcg += float(np.sum(gains[: hits.size][hits])) / ideal[cutoff - 1]
                misses = ~hits
                auc = float(np.sum(hit_count[misses])) + (hit_count[-1] + n_pos) / 2.0 * (n_neg - misses.sum())
                mean_auc += auc / (n_pos * n_neg)
                total += 1
            progress.update(len(batch))
    return {
        "precision": relevant / divisor,
        "map": mean_ap / total,
        "ndcg": ndcg / total,
        "auc": mean_auc / total,
    }


def precision_at_k(model, train_user_items, test_user_items, K=10, show_progress=True, num_threads=1):
    """Hits in the top ``K`` over ``min(K, test items)``, summed over test users."""
    return ranking_metrics_at_k(model, train_user_items, test_user_items, K, show_progress, num_threads)["precision"]


def mean_average_precision_at_k(model, train_user_items, test_user_items, K=10, show_progress=True, num_threads=1):
    """Mean over test users of average precision at ``K``."""
    return ranking_metrics_at_k(model, train_user_items, test_user_items, K, show_progress, num_threads)["map"]


def ndcg_at_k(model, train_user_items, test_user_items, K=10, show_progress=True, num_threads=1):
    """Mean over test users of binary-gain NDCG at ``K``."""
    return ranking_metrics_at_k(model, train_user_items, test_user_items, K, show_progress, num_threads)["ndcg"]


def AUC_at_k(model, train_user_items, test_user_items, K=10, show_progress=True, num_threads=1):
    """Mean over test users of the AUC of the top-``K`` ranking."""
    return ranking_metrics_at_k(model, train_user_items, test_user_items, K, show_progress, num_threads)["auc"]
