"""Model backends: a factor model served by the native core, ONNX Runtime, IREE and plain NumPy;
the text-embedding model on ONNX Runtime and IREE.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_backends.py                  # ALS, 200k x 200k synthetic
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_backends.py --size small --model bpr
    python benchmarks/bench_backends.py --skip-scoring                          # text embedding only

Every path answers the same requests (live bags -> top-10, owned items
excluded) on the same fitted model; the table prints latency for one bag per
call (p50 / p99 over --requests calls), throughput for batches of --batch
bags, how many top-10 ids agree with the native core, and ratios against
NumPy. IREE's compile time (a one-off, cached on disk) is printed apart.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

import backpack  # noqa: E402
from backpack import BackendServedModel
from backpack.data import synthetic  # noqa: E402
from backpack.models.backends import get_backend  # noqa: E402

# -- the plain NumPy reference a user would write -------------------------------


def numpy_recommender(model):
    """bags -> top-N with owned items excluded, in plain NumPy (ALS solve / BPR map / mean)."""
    items = model.item_factors.astype(np.float32)
    if isinstance(model, backpack.ALS):
        y64 = model.item_factors.astype(np.float64)
        gram = y64.T @ y64 + model.regularization * np.eye(y64.shape[1])

        def users(rows):
            out = np.zeros((rows.shape[0], y64.shape[1]))
            for r in range(rows.shape[0]):
                idx = rows.indices[rows.indptr[r] : rows.indptr[r + 1]]
                if idx.size:
                    c = model.alpha * rows.data[rows.indptr[r] : rows.indptr[r + 1]].astype(np.float64)
                    yb = y64[idx]
                    out[r] = np.linalg.solve(gram + (yb.T * (c - 1)) @ yb, yb.T @ c)
            return out.astype(np.float32)
    elif isinstance(model, backpack.BPR):

        def users(rows):
            ones = sp.csr_matrix((np.ones(rows.nnz, np.float32), rows.indices, rows.indptr), shape=rows.shape)
            counts = np.maximum(np.diff(rows.indptr), 1)[:, None]
            summary = np.hstack([(ones @ items) / counts, np.ones((rows.shape[0], 1))])
            return (summary @ model.fold_in_map).astype(np.float32)
    else:

        def users(rows):
            return ((rows @ items) / np.maximum(rows.sum(axis=1), 1e-30)).astype(np.float32)

    def recommend(rows, n):
        scores = users(rows) @ items.T
        scores[np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)), rows.indices] = -np.inf
        part = np.argpartition(-scores, n - 1, axis=1)[:, :n]
        top = np.take_along_axis(scores, part, axis=1)
        order = np.argsort(-top, axis=1, kind="stable")
        return np.take_along_axis(part, order, axis=1), np.take_along_axis(top, order, axis=1)

    return recommend


def latency_ms(fn, rows: sp.csr_matrix, requests: int) -> tuple[float, float]:
    times = []
    for r in range(requests):
        row = rows[r % rows.shape[0] : r % rows.shape[0] + 1]
        start = time.perf_counter()
        fn(row)
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))


def throughput(fn, rows: sp.csr_matrix, batch: int, seconds: float = 3.0) -> float:
    done, start, r = 0, time.perf_counter(), 0
    while time.perf_counter() - start < seconds or done == 0:
        fn(rows[r : r + batch])
        done += batch
        r = (r + batch) % max(rows.shape[0] - batch, 1)
    return done / (time.perf_counter() - start)


def bench_scoring(args) -> None:
    catalogue = synthetic.generate_size(args.size, seed=0)
    m = catalogue.user_items
    params = {"factors": args.factors, "random_state": 0}
    if args.model == "als":
        model = backpack.ALS(iterations=3, **params)
    elif args.model == "bpr":
        model = backpack.BPR(iterations=10, **params)
    else:
        model = backpack.EmbeddingModel(np.random.default_rng(0).standard_normal((m.shape[1], args.factors)))
    start = time.perf_counter()
    model.fit(m, show_progress=False)
    print(
        f"{args.model} ({args.factors} factors) on {m.shape[0]:,} x {m.shape[1]:,}, {m.nnz:,} interactions; "
        f"fitted in {time.perf_counter() - start:.1f} s; {os.cpu_count()} cores"
    )
    rng = np.random.default_rng(1)
    rows = m[rng.choice(m.shape[0], size=max(args.requests, args.batch * 4), replace=False)]
    paths = {"native core": lambda r: model.recommend_rows(r, args.n)}
    cache = Path(args.cache_dir or tempfile.mkdtemp(prefix="bench-iree-"))
    for name in ("onnx", "iree"):
        start = time.perf_counter()
        served = BackendServedModel(model, get_backend(name, **({"cache_dir": cache} if name == "iree" else {})))
        print(
            f"{name}: export + load {time.perf_counter() - start:.1f} s"
            + (" (IREE compile included; cached for the next load)" if name == "iree" else "")
        )
        paths[{"onnx": "ONNX Runtime", "iree": "IREE"}[name]] = lambda r, s=served: s.recommend_rows(r, args.n)
    reference = numpy_recommender(model)
    paths["NumPy"] = lambda r: reference(r, args.n)

    check = rows[: args.batch]
    native_ids = model.recommend_rows(check, args.n)[0]
    results = {}
    for name, fn in paths.items():
        p50, p99 = latency_ms(fn, rows, args.requests)
        per_s = throughput(fn, rows, args.batch)
        agree = float(np.mean(fn(check)[0] == native_ids))
        results[name] = (p50, p99, per_s, agree)
    base = results["NumPy"]
    print(
        f"\n| path | p50 1 bag (ms) | p99 1 bag (ms) | bags/s (batches of {args.batch}) | "
        "vs NumPy: p50 | vs NumPy: bags/s | top-10 = native |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, (p50, p99, per_s, agree) in results.items():
        print(
            f"| {name} | {p50:.2f} | {p99:.2f} | {per_s:,.0f} | {base[0] / p50:.2f}x | {per_s / base[2]:.2f}x "
            f"| {agree:.4f} |"
        )


# -- text embedding: synthetic schema.org item descriptions, as the engine embeds them ---------

ADJECTIVES = ["tiny", "haunted", "floating", "neon", "ancient", "frozen", "clockwork", "endless", "quiet", "stormy"]
PLACES = ["castle", "space station", "forest", "city", "desert", "island", "dungeon", "submarine", "farm", "arena"]
ACTIVITIES = [
    "racing hovercars",
    "solving puzzles",
    "trading spices",
    "building bridges",
    "hunting ghosts",
    "growing crops",
    "fighting robots",
    "mapping caves",
    "brewing potions",
    "painting murals",
]
GENRES = ["platformer", "puzzle", "racing", "horror", "strategy", "simulation", "rpg", "co-op", "sandbox", "music"]


def items(n: int, seed: int = 0) -> list[dict]:
    """``n`` synthetic schema.org game-level descriptions (name, description, keywords)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        adjective, place, activity = rng.choice(ADJECTIVES), rng.choice(PLACES), rng.choice(ACTIVITIES)
        out.append(
            {
                "@context": "https://schema.org",
                "@type": "VideoGame",
                "@id": f"https://example.org/items/{i}",
                "name": f"The {adjective} {place}",
                "description": f"A level set in a {adjective} {place}, about {activity} with friends.",
                "keywords": ", ".join(rng.choice(GENRES, size=3, replace=False)),
            }
        )
    return out


def bench_text(args) -> None:
    from backpack.content.text import item_text
    from backpack.models.tasks import get_task, task_status

    status = task_status().get("text-embedding")
    if not status or not status["available"]:
        print(f"\ntext embedding: skipped ({status['reason'] if status else 'task not installed'})")
        return
    texts = [item_text(item) for item in items(args.texts)]
    cache = Path(args.cache_dir or tempfile.mkdtemp(prefix="bench-iree-"))
    print(f"\ntext embedding (all-MiniLM-L6-v2): {len(texts):,} item descriptions, e.g. {texts[0]!r}")
    print("| backend | load (s) | texts/s | max abs diff vs ONNX Runtime |")
    print("|---|---:|---:|---:|")
    first = None
    for name in ("onnx", "iree"):
        start = time.perf_counter()
        task = get_task("text-embedding", backend=name, **({"cache_dir": cache} if name == "iree" else {}))
        load = time.perf_counter() - start
        task.embed(texts[:32])  # warm-up: first-run allocations
        start = time.perf_counter()
        vectors = task.embed(texts)
        rate = len(texts) / (time.perf_counter() - start)
        first = vectors if first is None else first
        print(f"| {name} | {load:.1f} | {rate:,.0f} | {np.abs(vectors - first).max():.2e} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=list(synthetic.SIZES), default="default")
    parser.add_argument("--model", choices=["als", "bpr", "embeddings"], default="als")
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--requests", type=int, default=300, help="single-bag calls timed per path")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--texts", type=int, default=1000)
    parser.add_argument("--cache-dir", help="IREE compile cache (default: a fresh temporary folder)")
    parser.add_argument("--skip-scoring", action="store_true")
    parser.add_argument("--skip-text", action="store_true")
    args = parser.parse_args()
    if not args.skip_scoring:
        bench_scoring(args)
    if not args.skip_text:
        bench_text(args)


if __name__ == "__main__":
    main()
