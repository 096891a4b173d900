"""Seeded synthetic catalogues that look like a UGC platform's traffic.

Item popularity follows a Zipf law, user activity a log-normal one, and users
lean towards one topic (a style: cyberpunk, fantasy, ...), so that "more like
this" has something real to find. The same seed always gives the same data;
the demo, the tests and the benchmarks all draw from here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

TOPICS = (
    "cyberpunk",
    "fantasy",
    "cozy",
    "horror",
    "retro",
    "anime",
    "space",
    "nature",
    "medieval",
    "steampunk",
    "vaporwave",
    "pirate",
    "western",
    "underwater",
    "neon",
    "gothic",
)
ITEM_KINDS = ("avatar", "hat", "outfit", "prop", "world", "emote", "shader", "pet")
# How each kind of interaction counts towards a bag, and how often it happens.
INTERACTION_KINDS = {"view": (1.0, 0.70), "visit": (2.0, 0.10), "like": (3.0, 0.13), "equip": (5.0, 0.07)}

SIZES = {
    "tiny": (2_000, 1_000, 30_000),
    "small": (20_000, 20_000, 390_000),
    "default": (200_000, 200_000, 3_900_000),  # ~3M distinct pairs after folding repeats
}


@dataclass
class Catalogue:
    """A generated data set: the user x item matrix and the ids behind it."""

    user_items: sp.csr_matrix  # float32 weights, duplicates summed
    user_ids: list[str]
    item_ids: list[str]
    item_topics: np.ndarray  # topic index of every item

    @property
    def n_interactions(self) -> int:
        return int(self.user_items.nnz)


def generate(
    n_users: int = 200_000,
    n_items: int = 200_000,
    n_interactions: int = 3_000_000,
    *,
    seed: int = 0,
    zipf_exponent: float = 1.0,
    topic_affinity: float = 0.8,
    n_topics: int = 48,
) -> Catalogue:
    """Generate a catalogue of about ``n_interactions`` distinct (user, item) pairs' worth of events.

    ``topic_affinity`` is the share of a user's events that fall in the user's
    favourite topic; the rest follow global popularity.
    """
    if min(n_users, n_items, n_interactions, n_topics) < 1:
        raise ValueError("sizes must be >= 1")
    rng = np.random.default_rng(seed)
    item_topics = rng.integers(0, n_topics, n_items)
    # Popularity rank is a random permutation, so popular items are spread over
    # the index range as they are on a real platform.
    popularity = 1.0 / np.power(rng.permutation(n_items) + 1.0, zipf_exponent)

    activity = rng.lognormal(mean=0.0, sigma=1.2, size=n_users)
    events_per_user = np.maximum(1, np.round(activity / activity.sum() * n_interactions)).astype(np.int64)
    users = np.repeat(np.arange(n_users, dtype=np.int32), events_per_user)
    favourite = rng.integers(0, n_topics, n_users)[users]
    in_topic = rng.random(users.size) < topic_affinity

    items = np.empty(users.size, dtype=np.int32)
    items[~in_topic] = _draw(rng, np.arange(n_items), popularity, int((~in_topic).sum()))
    order = np.argsort(item_topics, kind="stable")
    bounds = np.searchsorted(item_topics[order], np.arange(n_topics + 1))
    for topic in range(n_topics):
        members = order[bounds[topic] : bounds[topic + 1]]
        where = np.flatnonzero(in_topic & (favourite == topic))
        if members.size == 0:
            members = np.arange(n_items)
        items[where] = _draw(rng, members, popularity[members], where.size)

    kinds = list(INTERACTION_KINDS.values())
    kind = rng.choice(len(kinds), size=users.size, p=[share for _, share in kinds])
    weights = np.array([w for w, _ in kinds], dtype=np.float32)[kind]
    matrix = sp.csr_matrix((weights, (users, items)), shape=(n_users, n_items), dtype=np.float32)
    matrix.sum_duplicates()

    width_u, width_i = len(str(n_users - 1)), len(str(n_items - 1))
    user_ids = [f"user-{u:0{width_u}d}" for u in range(n_users)]
    item_ids = [
        f"{TOPICS[t % len(TOPICS)]}{t // len(TOPICS) or ''}/{ITEM_KINDS[i % len(ITEM_KINDS)]}-{i:0{width_i}d}"
        for i, t in enumerate(item_topics.tolist())
    ]
    return Catalogue(matrix, user_ids, item_ids, item_topics)


def generate_size(size: str, seed: int = 0) -> Catalogue:
    """Generate one of the named sizes: ``tiny``, ``small`` or ``default``."""
    try:
        n_users, n_items, n_interactions = SIZES[size]
    except KeyError:
        raise ValueError(f"unknown size {size!r}; choose one of {', '.join(SIZES)}") from None
    return generate(n_users, n_items, n_interactions, seed=seed)


def _draw(rng: np.random.Generator, ids: np.ndarray, weights: np.ndarray, count: int) -> np.ndarray:
    cumulative = np.cumsum(weights)
    picks = np.searchsorted(cumulative, rng.random(count) * cumulative[-1], side="right")
    return ids[np.minimum(picks, ids.size - 1)]
