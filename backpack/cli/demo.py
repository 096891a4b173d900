"""``backpack demo``: a synthetic platform, end to end, with timings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from backpack.data import synthetic
from backpack.engine.engine import Engine


@contextmanager
def _step(name: str, timings: list[tuple[str, float]]) -> Iterator[None]:
    print(f"• {name} ...", flush=True)
    start = time.perf_counter()
    yield
    timings.append((name, time.perf_counter() - start))
    print(f"  done in {timings[-1][1]:.2f} s", flush=True)


def run(
    size: str = "default",
    *,
    seed: int = 0,
    k: int = 100,
    similarity: str = "cosine",
    threads: int = 0,
    show_progress: bool = True,
) -> dict[str, float]:
    """Generate, load, fit and query a synthetic catalogue; returns step timings."""
    timings: list[tuple[str, float]] = []
    with _step(f"generating the '{size}' catalogue (seed {seed})", timings):
        cat = synthetic.generate_size(size, seed=seed)
    m = cat.user_items
    print(f"  {m.shape[0]:,} users x {m.shape[1]:,} items, {m.nnz:,} interactions")

    engine = Engine(num_threads=threads)
    with _step("loading bags", timings):
        engine.load_matrix(m, cat.user_ids, cat.item_ids)
    print(
        f"  bags hold {engine.bags.memory_bytes() / 2**20:.1f} MiB "
        f"({engine.bags.memory_bytes() / max(m.nnz, 1):.1f} bytes per interaction incl. id maps)"
    )

    with _step(f"fitting item-kNN ({similarity}, K={k})", timings):
        engine.fit("itemknn", k=k, similarity=similarity, show_progress=show_progress)

    rng = np.random.default_rng(seed)
    active = np.flatnonzero(np.diff(m.indptr) >= 3)
    users = [cat.user_ids[u] for u in rng.choice(active, size=min(3, active.size), replace=False)]
    for user in users:
        bag = sorted(engine.bags.bag(user).items(), key=lambda kv: -kv[1])[:4]
        print(f"\n  {user} holds {', '.join(f'{i} ({w:g})' for i, w in bag)}")
        for rec in engine.recommend(user, n=5):
            print(f"    -> {rec.item:32s} {rec.score:8.4f}  {rec.source}")

    popular = np.argsort(-np.diff(m.tocsc().indptr))[:3]
    for item in (cat.item_ids[i] for i in popular):
        print(f"\n  more like {item}:")
        for rec in engine.similar_items(item, n=5):
            print(f"    ~ {rec.item:32s} {rec.score:8.4f}")

    batch = [cat.user_ids[u] for u in rng.choice(m.shape[0], size=min(10_000, m.shape[0]), replace=False)]
    print()
    with _step(f"recommending for {len(batch):,} users (N=10)", timings):
        engine.recommend_batch(batch, n=10)

    user, new_item = users[0], engine.recommend(users[0], n=1)[0].item
    print(f"\n  real time: {user} equips {new_item}")
    engine.add_interaction(user, new_item, kind="equip")
    for rec in engine.recommend(user, n=3):
        print(f"    -> {rec.item:32s} {rec.score:8.4f}  {rec.source}")

    print("\n  step                                         seconds")
    for name, seconds in timings:
        print(f"  {name:44s} {seconds:8.2f}")
    return dict(timings)
