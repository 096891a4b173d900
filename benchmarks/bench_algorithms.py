"""User-item algorithms: Backpack's ALS and BPR against implicit's, same data, same split, same run.

For each pair the hyper-parameters are the same, and the script reports
NDCG@10 on the held-out split, fit time, and the time to recommend 10 items
for every test user in one batch call (stored user factors on both sides,
owned items filtered). Backpack's other algorithms (item-kNN, RP3beta,
user-kNN, EASE, popularity where installed) are evaluated on the same split
for the "best of each library" line.

    python benchmarks/bench_algorithms.py                       # synthetic 200k x 200k x ~3M
    python benchmarks/bench_algorithms.py --data synthetic --size small
    python benchmarks/bench_algorithms.py --data <name>         # a real data set, see backpack.data.datasets

Needs ``pip install ".[bench]"`` (implicit). implicit asks for a single BLAS
thread, so this script sets ``OPENBLAS_NUM_THREADS=1`` before NumPy loads.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice; Backpack's ALS/BPR use no BLAS

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import backpack  # noqa: E402
from backpack.algorithms.fitting import create_algorithm  # noqa: E402
from backpack.data import synthetic  # noqa: E402
from backpack.evaluation import holdout_split, ranking_metrics  # noqa: E402


def load_data(args):
    if args.data == "synthetic":
        c = synthetic.generate_size(args.size, seed=args.seed)
        return f"synthetic ({args.size})", c.user_items
    from backpack.data import datasets

    ds = datasets.load(args.data)
    return ds.name, ds.user_items


def timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - start


def run_pair(label, ours, theirs, split, users, k):
    rows = []
    for library, model in (("backpack", ours), ("implicit", theirs)):
        _, fit_s = timed(lambda: model.fit(split.train, show_progress=False))
        train_rows = split.train[users]
        model.recommend(users[:10], train_rows[:10], N=k)  # warm-up (allocations, lazy norms)
        (ids, _), rec_s = timed(lambda: model.recommend(users, train_rows, N=k))
        metrics = ranking_metrics(ids, split.test[users], k)
        rows.append(
            {
                "algorithm": label,
                "library": library,
                "fit_s": fit_s,
                "recommend_s": rec_s,
                "ndcg": metrics["ndcg"],
                "recall": metrics["recall"],
                "map": metrics["map"],
            }
        )
        print(
            f"  {label:5s} {library:9s} fit {fit_s:7.2f} s  recommend {rec_s:6.2f} s  NDCG@{k} {metrics['ndcg']:.4f}",
            flush=True,
        )
    ours_row, theirs_row = rows
    ratios = {
        "ndcg_ratio": ours_row["ndcg"] / theirs_row["ndcg"] if theirs_row["ndcg"] else float("inf"),
        "fit_speedup": theirs_row["fit_s"] / ours_row["fit_s"],
        "recommend_speedup": theirs_row["recommend_s"] / ours_row["recommend_s"],
    }
    print(
        f"  {label:5s} ratios: NDCG {ratios['ndcg_ratio']:.3f}x  fit {ratios['fit_speedup']:.2f}x faster  "
        f"batch recommend {ratios['recommend_speedup']:.2f}x faster",
        flush=True,
    )
    return rows, ratios


def engine_path(model, split, users, k):
    """Backpack's serving path: vectors recomputed from the live bag (real time)."""
    (ids, _), seconds = timed(lambda: model.recommend_rows(split.train[users], k))
    return ranking_metrics(ids, split.test[users], k)["ndcg"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default="synthetic", help="'synthetic' or a name from backpack.data.datasets")
    parser.add_argument("--size", default="default", choices=["tiny", "small", "default"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--als-iterations", type=int, default=15)
    parser.add_argument("--als-regularization", type=float, default=0.01)
    parser.add_argument("--alpha", type=float, default=1.0)
    parser.add_argument("--bpr-iterations", type=int, default=100)
    parser.add_argument("--bpr-learning-rate", type=float, default=0.01)
    parser.add_argument("--test-users", type=int, default=20_000, help="evaluate on at most this many users")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument(
        "--others",
        default="popularity,itemknn,rp3beta,userknn,ease",
        help="other Backpack algorithms to evaluate on the same split",
    )
    parser.add_argument("--pairs", default="als,bpr", help="which of als,bpr to run against implicit")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args()

    from implicit.als import AlternatingLeastSquares
    from implicit.bpr import BayesianPersonalizedRanking

    name, matrix = load_data(args)
    split = holdout_split(matrix, 0.2, seed=args.seed)
    tested = np.flatnonzero(np.diff(split.test.indptr) > 0)
    rng = np.random.default_rng(args.seed)
    users = np.sort(rng.choice(tested, min(args.test_users, tested.size), replace=False))
    print(
        f"{name}: {matrix.shape[0]:,} users x {matrix.shape[1]:,} items, {matrix.nnz:,} interactions; "
        f"hold-out 20 %, {users.size:,} test users, {os.cpu_count()} cores",
        flush=True,
    )

    results, ratios = [], {}
    als = dict(
        factors=args.factors,
        regularization=args.als_regularization,
        alpha=args.alpha,
        iterations=args.als_iterations,
        random_state=args.seed,
    )
    pairs = args.pairs.split(",")
    if "als" in pairs:
        rows, ratios["als"] = run_pair("ALS", backpack.ALS(**als), AlternatingLeastSquares(**als), split, users, args.k)
        results += rows
    bpr = dict(
        factors=args.factors,
        learning_rate=args.bpr_learning_rate,
        iterations=args.bpr_iterations,
        random_state=args.seed,
    )
    if "bpr" in pairs:
        ours_bpr = backpack.BPR(**bpr)
        rows, ratios["bpr"] = run_pair("BPR", ours_bpr, BayesianPersonalizedRanking(**bpr), split, users, args.k)
        results += rows
        ndcg, seconds = engine_path(ours_bpr, split, users, args.k)
        print(f"  BPR   backpack serving path (fold-in from the live bag): NDCG@{args.k} {ndcg:.4f}, {seconds:.2f} s")
        results.append({"algorithm": "BPR (live bag)", "library": "backpack", "ndcg": ndcg, "recommend_s": seconds})

    plugins = backpack.get_plugins()
    for other in [o for o in args.others.split(",") if o]:
        try:
            model = create_algorithm(plugins.algorithm(other), {})
        except backpack.BackpackError as exc:
            print(f"  {other}: skipped ({exc})")
            continue
        try:
            _, fit_s = timed(lambda: model.fit(split.train, show_progress=False))
        except backpack.InvalidInputError as exc:  # EASE above its item limit
            print(f"  {other}: skipped ({exc})")
            continue
        (ids, _), rec_s = timed(lambda: model.recommend_rows(split.train[users], args.k))
        ndcg = ranking_metrics(ids, split.test[users], args.k)["ndcg"]
        print(
            f"  {other:9s} backpack  fit {fit_s:7.2f} s  recommend {rec_s:6.2f} s  NDCG@{args.k} {ndcg:.4f}", flush=True
        )
        results.append({"algorithm": other, "library": "backpack", "fit_s": fit_s, "recommend_s": rec_s, "ndcg": ndcg})

    best_ours = max((r for r in results if r["library"] == "backpack"), key=lambda r: r["ndcg"])
    best_theirs = max((r for r in results if r["library"] == "implicit"), key=lambda r: r["ndcg"])
    gain = best_ours["ndcg"] / best_theirs["ndcg"] - 1 if best_theirs["ndcg"] else float("inf")
    print(
        f"best Backpack: {best_ours['algorithm']} NDCG@{args.k} {best_ours['ndcg']:.4f}; best implicit: "
        f"{best_theirs['algorithm']} {best_theirs['ndcg']:.4f}; Backpack {gain:+.1%}"
    )
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"data": name, "results": results, "ratios": ratios, "best_gain": gain}, f, indent=2)


if __name__ == "__main__":
    main()
