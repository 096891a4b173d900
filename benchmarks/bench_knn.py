"""Item-kNN: Backpack against implicit's CosineRecommender and BM25Recommender.

Same synthetic data (backpack.data.synthetic, seeded), same K, same run. Each
library fits and runs its batch calls in its own forked child process so that
its peak memory can be measured on its own (Linux VmHWM, reset at the start of
the child). Single queries are timed in one more child holding all three cosine
models at once (Backpack's ``ItemKNN``, ``backpack.implicit``'s
``CosineRecommender`` and implicit's), their calls interleaved query by query in
a rotating order, so that all three meet the same caches, clock and neighbours'
load: p50 and p99 of single-user ``recommend`` and single-item ``similar_items``.

    python benchmarks/bench_knn.py                 # 200k x 200k x ~3M, K=100
    python benchmarks/bench_knn.py --size small    # quick look
    python benchmarks/bench_knn.py --markdown docs/benchmarks-knn.md

Needs ``pip install ".[bench]"`` (implicit, psutil).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from backpack import ItemKNN
from backpack.data import synthetic


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> None:
    try:  # writing 5 resets the peak-RSS watermark (Linux >= 4.0)
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _make_model(library: str, similarity: str, k: int, threads: int):
    if library == "backpack":
        return ItemKNN(k=k, similarity=similarity, num_threads=threads)
    from implicit.nearest_neighbours import BM25Recommender, CosineRecommender

    cls = {"cosine": CosineRecommender, "bm25": BM25Recommender}[similarity]
    return cls(K=k, num_threads=threads)


def _run(library, similarity, m, args, users, single, items, out_path, queue):
    _reset_peak()
    base = _rss_kib("VmRSS")
    fits = []
    for _ in range(args.fit_runs):  # median of several: one fit is at the mercy of the machine
        model = _make_model(library, similarity, args.k, args.threads)
        t = time.perf_counter()
        model.fit(m, show_progress=False)
        fits.append(time.perf_counter() - t)
    fit = float(np.median(fits))

    t = time.perf_counter()
    model.recommend(users, m[users], N=10)
    batch = time.perf_counter() - t

    t = time.perf_counter()
    model.similar_items(items, N=10)
    similar = time.perf_counter() - t

    peak = (_rss_kib("VmHWM") - base) / 1024
    sim = model.similarity.tocsr()
    sp.save_npz(out_path, sp.csr_matrix((sim.data.astype(np.float32), sim.indices, sim.indptr), shape=sim.shape))
    queue.put(
        dict(
            fit=fit,
            batch=batch,
            similar=similar,
            peak_mib=peak,
        )
    )


SINGLE_MODELS = ("backpack ItemKNN", "backpack.implicit", "implicit")


def _single_queries(m, args, single, queue):
    """p50 / p99 (ms) of single-user recommend and single-item similar_items, the three models interleaved."""
    import implicit.nearest_neighbours

    import backpack.implicit.nearest_neighbours as compat

    models = [
        ItemKNN(k=args.k, similarity="cosine", num_threads=args.threads),
        compat.CosineRecommender(K=args.k, num_threads=args.threads),
        implicit.nearest_neighbours.CosineRecommender(K=args.k, num_threads=args.threads),
    ]
    for model in models:
        model.fit(m, show_progress=False)
    rows = [m[int(u)] for u in single]  # the caller's CSR rows, sliced before timing (as a server holds them)
    rng = np.random.default_rng(args.seed)
    query_items = rng.choice(m.shape[1], len(single)).tolist()
    rec = [[] for _ in models]
    sim = [[] for _ in models]
    for _ in range(2):  # a first pass warms every model's caches and pools; only the second is kept
        for lists in (rec, sim):
            for entries in lists:
                entries.clear()
        for q, (u, row, item) in enumerate(zip(single, rows, query_items)):
            for k in np.roll(np.arange(len(models)), q):  # rotate who goes first
                model = models[k]
                t = time.perf_counter()
                model.recommend(int(u), row, N=10)
                rec[k].append(time.perf_counter() - t)
                t = time.perf_counter()
                model.similar_items(int(item), N=10)
                sim[k].append(time.perf_counter() - t)
    out = {}
    for k, name in enumerate(SINGLE_MODELS):
        out[name] = {
            "recommend p50": np.percentile(rec[k], 50) * 1e3,
            "recommend p99": np.percentile(rec[k], 99) * 1e3,
            "similar_items p50": np.percentile(sim[k], 50) * 1e3,
            "similar_items p99": np.percentile(sim[k], 99) * 1e3,
        }
    queue.put(out)


def neighbour_agreement(ours: sp.csr_matrix, theirs: sp.csr_matrix) -> float:
    """Share of implicit's (non-self) neighbours that Backpack also lists.

    implicit keeps the item itself among its K, so it holds K-1 others; we
    compare against our first K-1. A neighbour we miss only because it ties
    with our last kept score counts as agreeing (either choice is exact).
    """
    agree = total = 0
    for i in range(theirs.shape[0]):
        t_ids = theirs.indices[theirs.indptr[i] : theirs.indptr[i + 1]]
        t_sc = theirs.data[theirs.indptr[i] : theirs.indptr[i + 1]]
        keep = (t_ids != i) & (t_sc > 0)
        t_ids, t_sc = t_ids[keep], t_sc[keep]
        o_ids = ours.indices[ours.indptr[i] : ours.indptr[i + 1]][: t_ids.size]
        o_sc = ours.data[ours.indptr[i] : ours.indptr[i + 1]][: t_ids.size]
        if t_ids.size == 0:
            continue
        missed = ~np.isin(t_ids, o_ids)
        tied = missed & (o_sc.size > 0) & np.isclose(t_sc, o_sc[-1] if o_sc.size else 0, rtol=1e-4)
        agree += t_ids.size - missed.sum() + tied.sum()
        total += t_ids.size
    return agree / max(total, 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="default", choices=list(synthetic.SIZES))
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--users", type=int, default=10_000, help="users in the batch recommend")
    parser.add_argument("--single", type=int, default=1_000, help="single-user calls for p50/p99")
    parser.add_argument("--items", type=int, default=10_000, help="items in the similar_items batch")
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--fit-runs", type=int, default=3, help="fits per library; the median is reported")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args()

    cat = synthetic.generate_size(args.size, seed=args.seed)
    m = cat.user_items
    rng = np.random.default_rng(args.seed)
    users = rng.choice(m.shape[0], min(args.users, m.shape[0]), replace=False)
    single = rng.choice(m.shape[0], min(args.single, m.shape[0]), replace=False)
    items = rng.choice(m.shape[1], min(args.items, m.shape[1]), replace=False).astype(np.int32)
    print(
        f"data: {m.shape[0]:,} users x {m.shape[1]:,} items, {m.nnz:,} interactions; K={args.k}; {os.cpu_count()} cores"
    )

    ctx = mp.get_context("fork")
    results, lines = {}, []
    with tempfile.TemporaryDirectory() as tmp:
        for similarity in ("cosine", "bm25"):
            for library in ("backpack", "implicit"):
                queue = ctx.Queue()
                path = Path(tmp) / f"{library}-{similarity}.npz"
                proc = ctx.Process(target=_run, args=(library, similarity, m, args, users, single, items, path, queue))
                proc.start()
                results[library, similarity] = queue.get()
                proc.join()
                results[library, similarity]["matrix"] = path
            agreement = neighbour_agreement(
                sp.load_npz(results["backpack", similarity]["matrix"]),
                sp.load_npz(results["implicit", similarity]["matrix"]),
            )
            results["backpack", similarity]["agreement"] = agreement

    header = "| similarity | metric | Backpack | implicit | implicit / Backpack |\n|---|---|---:|---:|---:|"
    lines.append(header)
    metrics = [
        (f"fit, median of {args.fit_runs} (s)", "fit"),
        (f"batch recommend {len(users):,} users (s)", "batch"),
        (f"similar_items {len(items):,} items (s)", "similar"),
        ("peak extra memory (MiB)", "peak_mib"),
    ]
    for similarity in ("cosine", "bm25"):
        ours, theirs = results["backpack", similarity], results["implicit", similarity]
        for label, key in metrics:
            ratio = theirs[key] / ours[key] if ours[key] > 0 else float("inf")
            lines.append(f"| {similarity} | {label} | {ours[key]:.3f} | {theirs[key]:.3f} | {ratio:.2f}x |")
        lines.append(f"| {similarity} | top-K neighbour agreement with implicit | {ours['agreement']:.4f} | | |")
    queue = ctx.Queue()
    proc = ctx.Process(target=_single_queries, args=(m, args, single, queue))
    proc.start()
    single_results = queue.get()
    proc.join()
    lines.append("")
    lines.append(
        f"Single queries (cosine, K={args.k}, N=10), {len(single):,} each, one process, interleaved; times in ms:"
    )
    lines.append("")
    lines.append(
        "| call | Backpack ItemKNN | backpack.implicit | implicit | implicit / ItemKNN | implicit / backpack.implicit |"
    )
    lines.append("|---|---:|---:|---:|---:|---:|")
    ours, compat, theirs = (single_results[name] for name in SINGLE_MODELS)
    for key in ours:
        lines.append(
            f"| {key} | {ours[key]:.4f} | {compat[key]:.4f} | {theirs[key]:.4f} "
            f"| {theirs[key] / ours[key]:.2f}x | {theirs[key] / compat[key]:.2f}x |"
        )
    table = "\n".join(lines)
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")


if __name__ == "__main__":
    main()
