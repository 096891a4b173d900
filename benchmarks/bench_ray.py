"""Ray against one process: the item-kNN similarity build and the all-users batch.

Same synthetic catalogue (backpack.data.synthetic, seeded), same model, one run.
The single process uses every CPU Ray is given (``--cpus``); Ray runs
``fit_on_ray`` / ``recommend_all_on_ray`` on a local instance of that size.
Both results are checked equal before any time is printed.

    python benchmarks/bench_ray.py                          # 50k users x 20k items, 2 CPUs
    python benchmarks/bench_ray.py --users 200000 --items 200000 --interactions 3000000 --cpus 8
    RAY_ADDRESS=head:6379 python benchmarks/bench_ray.py    # a real cluster (--cpus then only sizes the single process)

Needs ``pip install ".[ray]"``.
"""

from __future__ import annotations

import argparse
import os
import pickle
import tempfile
import time

import numpy as np
import ray

from backpack import ItemKNN
from backpack.data import synthetic
from backpack.ray.cluster import fit_on_ray, recommend_all_on_ray


def _best(fn, repeat: int):
    """(best seconds, last result) of ``repeat`` calls: the machine is shared, the minimum is the signal."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--interactions", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--n", type=int, default=10, help="recommendations per user")
    parser.add_argument("--cpus", type=int, default=2)
    parser.add_argument("--user-block", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()

    m = synthetic.generate(args.users, args.items, args.interactions, seed=0).user_items
    store_bytes = m.indptr.nbytes + m.indices.nbytes + m.data.nbytes
    print(
        f"catalogue: {m.shape[0]:,} users x {m.shape[1]:,} items, {m.nnz:,} entries "
        f"({store_bytes / 1e6:.1f} MB as CSR), K={args.k}, N={args.n}, {args.cpus} CPUs"
    )

    # Local Ray workers start in the driver's directory: leave the source tree
    # so they import the installed backpack, not the one without a built core.
    os.chdir(tempfile.gettempdir())
    start = time.perf_counter()
    if os.environ.get("RAY_ADDRESS"):
        ray.init()
    else:
        ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    print(f"ray.init: {time.perf_counter() - start:.1f} s (once per process, not counted below)")
    put_seconds, _ = _best(lambda: ray.put((m.indptr, m.indices, m.data, m.shape)), args.repeat)
    print(f"ray.put of the matrix: {put_seconds * 1e3:.0f} ms")

    single_fit, local = _best(lambda: ItemKNN(k=args.k, num_threads=args.cpus).fit(m, show_progress=False), args.repeat)
    ray_fit, remote = _best(lambda: fit_on_ray(ItemKNN(k=args.k), m), args.repeat)
    for a, b in zip(local._index.matrix(), remote._index.matrix()):
        assert np.array_equal(a, b), "the Ray build differs from the single-process one"

    local.num_threads = args.cpus
    single_all, expected = _best(lambda: local.recommend_rows(m, args.n), args.repeat)
    ray_all, got = _best(lambda: recommend_all_on_ray(local, m, args.n, block_size=args.user_block), args.repeat)
    assert np.array_equal(expected[0], got[0]) and np.array_equal(expected[1], got[1])

    # The parts of the cost model in docs/scaling.md, measured here.
    noop = ray.remote(lambda matrix: matrix[3])
    matrix_ref = ray.put((m.indptr, m.indices, m.data, m.shape))
    round_trip, _ = _best(lambda: ray.get([noop.remote(matrix_ref) for _ in range(8)]), args.repeat)
    layout, _ = _best(lambda: ItemKNN(k=args.k).neighbour_block(m, 0, 1, num_threads=1), args.repeat)
    pickled, _ = _best(lambda: pickle.loads(pickle.dumps(local)), args.repeat)
    print(
        f"per task: scheduling + matrix ref {round_trip / 8 * 1e3:.1f} ms, "
        f"similarity layout of the whole matrix {layout * 1e3:.1f} ms, "
        f"model unpickle (rebuilt index, {len(pickle.dumps(local)) / 1e6:.1f} MB) {pickled * 1e3:.1f} ms"
    )

    print(f"{'':28}{'one process':>14}{'Ray':>10}{'Ray / one':>11}")
    for name, one, distributed in (
        ("similarity build", single_fit, ray_fit),
        (f"all-users top-{args.n}", single_all, ray_all),
    ):
        print(f"{name:28}{one:>12.2f} s{distributed:>8.2f} s{distributed / one:>10.2f}x")
    ray.shutdown()


if __name__ == "__main__":
    main()
