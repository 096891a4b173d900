"""Dense top-k: Backpack's blocked kernel against plain NumPy (matmul + argpartition).

python benchmarks/bench_dense.py              # 200k x 64 float32 matrix
python benchmarks/bench_dense.py --rows 50000 --dim 128
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from backpack import DenseIndex


def numpy_topk(q: np.ndarray, x: np.ndarray, k: int):
    scores = q @ x.T
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    top = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-top, axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1), np.take_along_axis(top, order, axis=1)


def best_of(fn, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--k", type=int, default=10)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    x = rng.normal(size=(args.rows, args.dim)).astype(np.float32)
    index = DenseIndex(x)  # checked once, as a server would hold it
    print(f"matrix {args.rows:,} x {args.dim} float32, k={args.k}")
    print("| queries | Backpack (s) | NumPy (s) | NumPy / Backpack | same ids |")
    print("|---:|---:|---:|---:|---:|")
    for m in (1, 100, 2_000):
        q = rng.normal(size=(m, args.dim)).astype(np.float32)
        ours = best_of(lambda q=q: index.search(q, args.k))
        theirs = best_of(lambda q=q: numpy_topk(q, x, args.k))
        same = np.mean(index.search(q, args.k)[0] == numpy_topk(q, x, args.k)[0])
        print(f"| {m:,} | {ours:.4f} | {theirs:.4f} | {theirs / ours:.2f}x | {same:.4f} |")


if __name__ == "__main__":
    main()
