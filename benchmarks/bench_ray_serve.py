"""Ray Serve replicas against the in-process engine: single-user ``recommend`` latency and throughput.

Same synthetic catalogue (backpack.data.synthetic, seeded), same fitted item-kNN
saved once; the in-process engine and every replica open that snapshot. For
each replica count the requests go through the :class:`RayServeClient`
handle (``serve_on_ray``), one at a time (latency: p50/p99) and from
``--concurrency`` threads at once (throughput). Answers are checked equal to
the engine's before any time is printed.

    python benchmarks/bench_ray_serve.py                        # tiny catalogue, 1 and 2 replicas
    python benchmarks/bench_ray_serve.py --size small --replicas 1 2 4 --cpus 8

Needs ``pip install ".[ray]"``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import ray
from ray import serve

from backpack import Engine
from backpack.data import synthetic
from backpack.ray.serve import serve_on_ray


def _latencies(call, users) -> np.ndarray:
    """Seconds per call, one call at a time."""
    times = []
    for user in users:
        start = time.perf_counter()
        call(user)
        times.append(time.perf_counter() - start)
    return np.array(times)


def _throughput(call, users, concurrency: int) -> float:
    """Calls per second with ``concurrency`` callers at once."""
    with ThreadPoolExecutor(concurrency) as pool:
        start = time.perf_counter()
        list(pool.map(call, users))
        return len(users) / (time.perf_counter() - start)


def _row(name: str, lat: np.ndarray, rps: float, ups: float, base: tuple | None) -> str:
    p50, p99 = np.percentile(lat, 50) * 1e3, np.percentile(lat, 99) * 1e3
    ratios = "" if base is None else f"{p50 / base[0]:>10.1f}x{base[1] / rps:>9.1f}x{base[2] / ups:>9.1f}x"
    return f"{name:22}{p50:>9.3f}{p99:>9.3f}{rps:>9.0f}{ups:>11.0f}{ratios}"


def _batches(users, size: int) -> list:
    return [users[i : i + size] for i in range(0, len(users), size)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="tiny", choices=list(synthetic.SIZES))
    parser.add_argument("--requests", type=int, default=400, help="per measurement")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--replicas", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--n", type=int, default=10)
    parser.add_argument("--batch", type=int, default=50, help="users per recommend_batch request")
    args = parser.parse_args()

    cat = synthetic.generate_size(args.size, seed=0)
    folder = tempfile.mkdtemp(prefix="bp-bench-serve-")
    engine = Engine(num_threads=1)
    engine.load_matrix(cat.user_items, cat.user_ids, cat.item_ids)
    engine.fit("itemknn", k=100)
    engine.save(os.path.join(folder, "snapshot"))
    engine = Engine.open(os.path.join(folder, "snapshot"), num_threads=1)
    users = list(np.random.default_rng(0).choice(cat.user_ids, size=args.requests))
    print(
        f"catalogue {args.size}: {cat.user_items.shape[0]:,} users x {cat.user_items.shape[1]:,} items, "
        f"{cat.user_items.nnz:,} entries; item-kNN k=100; recommend n={args.n}; {args.requests} requests; "
        f"concurrency {args.concurrency}; {args.cpus} CPUs"
    )

    # Local Ray workers start in the driver's directory: leave the source tree
    # so they import the installed backpack, not the one without a built core.
    os.chdir(tempfile.gettempdir())
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    try:
        # columns: one-at-a-time latency; recommend calls/s and users/s through recommend_batch with
        # --concurrency callers; then each as a multiple of the in-process engine's
        print(
            f"{'':22}{'p50 ms':>9}{'p99 ms':>9}{'req/s':>9}{'batch u/s':>11}"
            f"{'p50 × in':>11}{'req ÷':>10}{'batch ÷':>10}"
        )
        batches = _batches(users * 5, args.batch)
        local = lambda user: engine.recommend(user, args.n)  # noqa: E731
        lat = _latencies(local, users)
        rps = _throughput(local, users, args.concurrency)
        ups = _throughput(lambda b: engine.recommend_batch(b, args.n), batches, args.concurrency) * args.batch
        base = (np.percentile(lat, 50) * 1e3, rps, ups)
        print(_row("in-process engine", lat, rps, ups, None))
        for replicas in args.replicas:
            start = time.perf_counter()
            client = serve_on_ray(
                os.path.join(folder, "snapshot"),
                num_replicas=replicas,
                name="bench",
                cpus_per_replica=min(1.0, args.cpus / replicas),
            )
            deploy = time.perf_counter() - start
            for user in users[:50]:  # warm-up, and the check that answers are the engine's
                assert client.recommend(user, args.n) == engine.recommend(user, args.n)
            assert client.recommend_batch(batches[0], args.n) == engine.recommend_batch(batches[0], args.n)
            remote = lambda user: client.recommend(user, args.n)  # noqa: E731
            lat = _latencies(remote, users)
            rps = _throughput(remote, users, args.concurrency)
            ups = _throughput(lambda b: client.recommend_batch(b, args.n), batches, args.concurrency) * args.batch
            print(_row(f"Serve, {replicas} replica(s)", lat, rps, ups, base) + f"   (deploy {deploy:.1f} s)")
            client.close()
    finally:
        serve.shutdown()
        ray.shutdown()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
