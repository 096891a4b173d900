"""One machine to its limit: time and peak memory against the number of interactions, Backpack and implicit.

The synthetic catalogue (backpack.data.synthetic) grows from about 1M to 25M
interactions, users scaled with it (40 per 1,000 events: 40k -> 1M users) over
200k items. At every size, for both libraries, in the same run:

1. import: the interactions are written once as a CSV file (streamed, in
   chunks, to a scratch folder under /tmp that is deleted at the end), then
   read back into a users x items CSR. Backpack reads it the way
   ``backpack import`` does (backpack.data.readers.read_interactions, chunks of
   100k rows, into an Engine's bags); the baseline is a whole-file
   ``pandas.read_csv`` with categorical id columns (implicit has no importer).
2. item-kNN fit, cosine, K=50 (backpack.ItemKNN vs implicit CosineRecommender).
3. ALS fit, 64 factors, 10 iterations, regularization 0.01, alpha 1, 3 CG
   steps (backpack.ALS vs implicit.cpu.als.AlternatingLeastSquares).
4. batch recommend, N=10, owned items filtered: item-kNN for *all* users
   (in blocks of 100k) and ALS for a fixed sample of users (``--als-users``;
   scoring all 1M users against 200k items densely is ~26 TFLOP, which on two
   shared cores is not a benchmark but a wait). Models come from step 2/3's
   saved files, so the fit is not in these steps' memory.
5. serving (Backpack only, largest size): an Engine holding the bags and the
   item-kNN model answers single-user ``recommend`` calls; p50 / p99 and the
   resident size of the whole serving process.

Every step runs in a fresh spawned process and reports its own peak resident
memory (Linux VmHWM, which includes the data the step loads), so no step's
allocations show up in another's number.

    python benchmarks/bench_scale.py                       # 1M, 3M, 6M, 12M, 25M (long: about an hour)
    python benchmarks/bench_scale.py --quick               # tiny sizes, < 2 minutes
    python benchmarks/bench_scale.py --sizes 1M,3M --markdown docs/benchmarks.md --plot docs/bench_scale.png

Needs ``pip install ".[bench]"`` (implicit, psutil, pandas, matplotlib).
implicit asks for a single BLAS thread, so OPENBLAS_NUM_THREADS=1 is set
before NumPy loads (Backpack's kernels use no BLAS).
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # implicit's advice; inherited by the spawned steps

import argparse  # noqa: E402
import json  # noqa: E402
import multiprocessing as mp  # noqa: E402
import re  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402

LIBRARIES = ("backpack", "implicit")
STEPS = ("import", "knn_fit", "als_fit", "knn_batch", "als_batch")
STEP_LABELS = {
    "import": "import CSV -> CSR",
    "knn_fit": "item-kNN fit (cosine, K=50)",
    "als_fit": "ALS fit (64 f, 10 it)",
    "knn_batch": "item-kNN recommend, all users",
    "als_batch": "ALS recommend, user sample",
}
MARK_START = "<!-- bench_scale:start -->"
MARK_END = "<!-- bench_scale:end -->"
BLOCK_USERS = 100_000


def parse_count(text: str) -> int:
    """``25M`` -> 25_000_000, ``300k`` -> 300_000, ``1500000`` -> 1_500_000."""
    match = re.fullmatch(r"\s*([0-9.]+)\s*([kKmM]?)\s*", text)
    if not match:
        raise argparse.ArgumentTypeError(f"not a count: {text!r}")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[match.group(2).lower()]
    return int(float(match.group(1)) * scale)


def label(count: int) -> str:
    if count >= 1_000_000:
        return f"{count / 1e6:g}M"
    return f"{count / 1e3:g}k" if count >= 1_000 else str(count)


# -- memory -----------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def peak_mib() -> float:
    """This process's peak resident memory (VmHWM; ru_maxrss where /proc is missing)."""
    kib = _status_kib("VmHWM") or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024


def rss_mib() -> float:
    return _status_kib("VmRSS") / 1024


# -- data ---------------------------------------------------------------------------------


def prepare(size: dict, folder: str) -> dict:
    """Generate the catalogue, save its CSR (npz) and write the CSV, streamed in chunks of users."""
    from backpack.data import synthetic

    start = time.perf_counter()
    cat = synthetic.generate(size["users"], size["items"], size["events"], seed=size["seed"])
    m = cat.user_items
    generated = time.perf_counter() - start
    folder = Path(folder)
    sp.save_npz(folder / "matrix.npz", m, compressed=False)
    user_ids = np.array(cat.user_ids, dtype=object)
    item_ids = np.array(cat.item_ids, dtype=object)
    start = time.perf_counter()
    with open(folder / "interactions.csv", "w", encoding="utf-8", newline="") as out:
        out.write("user,item,weight\n")
        for first in range(0, m.shape[0], 50_000):
            block = m[first : first + 50_000]
            users = user_ids[first : first + block.shape[0]][
                np.repeat(np.arange(block.shape[0]), np.diff(block.indptr))
            ]
            items = item_ids[block.indices]
            weights = [f"{w:g}" for w in block.data.tolist()]
            out.write("".join(f"{u},{i},{w}\n" for u, i, w in zip(users.tolist(), items.tolist(), weights)))
    written = time.perf_counter() - start
    return {
        "users": m.shape[0],
        "items": m.shape[1],
        "nnz": int(m.nnz),
        "generate_s": generated,
        "csv_s": written,
        "csv_mib": (folder / "interactions.csv").stat().st_size / 2**20,
        "peak_mib": peak_mib(),
    }


def load_matrix(folder) -> sp.csr_matrix:
    return sp.load_npz(Path(folder) / "matrix.npz").tocsr()


# -- steps (each runs in a fresh process) ---------------------------------------------------


def step_import(library: str, folder: Path, args) -> dict:
    path = folder / "interactions.csv"
    if library == "backpack":
        from backpack import Engine
        from backpack.data.readers import read_interactions

        engine = Engine()
        base = rss_mib()
        start = time.perf_counter()
        for chunk in read_interactions(path, chunk_size=100_000):  # what `backpack import` does
            engine.add_interactions(chunk.users, chunk.items, chunk.weights)
        m = engine.bags.to_csr()
    else:
        import pandas as pd

        base = rss_mib()
        start = time.perf_counter()
        frame = pd.read_csv(path, dtype={"user": "category", "item": "category", "weight": np.float32})
        m = sp.csr_matrix(
            (frame["weight"].to_numpy(), (frame["user"].cat.codes.to_numpy(), frame["item"].cat.codes.to_numpy())),
            shape=(len(frame["user"].cat.categories), len(frame["item"].cat.categories)),
        )
        m.sum_duplicates()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "base_mib": base, "nnz": int(m.nnz)}


def _knn(library: str, args):
    if library == "backpack":
        from backpack import ItemKNN

        return ItemKNN(k=args.k, similarity="cosine", num_threads=args.threads)
    from implicit.nearest_neighbours import CosineRecommender

    return CosineRecommender(K=args.k, num_threads=args.threads)


def _als(library: str, args):
    settings = dict(factors=args.factors, iterations=args.iterations, regularization=0.01, alpha=1.0, random_state=0)
    if library == "backpack":
        from backpack import ALS

        return ALS(cg_steps=3, num_threads=args.threads, **settings)
    from implicit.cpu.als import AlternatingLeastSquares

    model = AlternatingLeastSquares(use_cg=True, num_threads=args.threads, calculate_training_loss=False, **settings)
    model.cg_steps = 3  # implicit's default, set here so both sides say it
    return model


def _model_path(folder: Path, library: str, kind: str) -> Path:
    return folder / f"{library}-{kind}.npz"


def step_fit(kind: str, library: str, folder: Path, args) -> dict:
    m = load_matrix(folder)
    model = _knn(library, args) if kind == "knn" else _als(library, args)
    base = rss_mib()
    start = time.perf_counter()
    model.fit(m, show_progress=False)
    seconds = time.perf_counter() - start
    model.save(str(_model_path(folder, library, kind)))
    return {"seconds": seconds, "base_mib": base}


def _load_model(kind: str, library: str, folder: Path, args):
    path = str(_model_path(folder, library, kind))
    if library == "backpack":
        from backpack import ALS, ItemKNN

        return (ItemKNN if kind == "knn" else ALS).load(path, num_threads=args.threads)
    if kind == "knn":
        from implicit.nearest_neighbours import CosineRecommender

        return CosineRecommender.load(path)
    from implicit.cpu.als import AlternatingLeastSquares

    return AlternatingLeastSquares.load(path)


def step_batch(kind: str, library: str, folder: Path, args) -> dict:
    m = load_matrix(folder)
    model = _load_model(kind, library, folder, args)
    scale = 1.0
    if kind == "knn":
        users = np.arange(m.shape[0], dtype=np.int32)
        if library == "implicit" and users.size > args.implicit_knn_users:
            scale = users.size / args.implicit_knn_users
            users = np.sort(np.random.default_rng(0).choice(users, args.implicit_knn_users, replace=False))
    else:
        users = np.sort(
            np.random.default_rng(0).choice(m.shape[0], min(args.als_users, m.shape[0]), replace=False)
        ).astype(np.int32)
    model.recommend(users[:10], m[users[:10]], N=10)  # warm-up (lazy norms, thread pools)
    base = rss_mib()
    start = time.perf_counter()
    filled = 0
    for first in range(0, users.size, BLOCK_USERS):
        block = users[first : first + BLOCK_USERS]
        ids, _ = model.recommend(block, m[block], N=10)
        filled += int((np.asarray(ids) >= 0).sum())
    seconds = (time.perf_counter() - start) * scale
    return {
        "seconds": seconds,
        "base_mib": base,
        "users": int(users.size),
        "filled": filled,
        "extrapolated": scale != 1.0,
    }


def step_serve(folder: Path, args) -> dict:
    """An Engine with every bag and the item-kNN model, answering single-user calls."""
    from backpack import Engine, ItemKNN

    m = load_matrix(folder)
    engine = Engine(num_threads=args.threads)
    user_ids = [f"u{u}" for u in range(m.shape[0])]
    engine.load_matrix(m, user_ids, [f"i{i}" for i in range(m.shape[1])])
    del m
    engine.install_model("itemknn", ItemKNN.load(str(_model_path(folder, "backpack", "knn")), num_threads=args.threads))
    rng = np.random.default_rng(1)
    picks = rng.choice(len(user_ids), args.serve_calls, replace=False)
    for u in picks[:20]:
        engine.recommend(user_ids[u], 10)
    latencies = []
    for u in picks:
        start = time.perf_counter()
        engine.recommend(user_ids[u], 10)
        latencies.append(time.perf_counter() - start)
    return {
        "p50_ms": float(np.percentile(latencies, 50) * 1e3),
        "p99_ms": float(np.percentile(latencies, 99) * 1e3),
        "calls": len(latencies),
        "rss_mib": rss_mib(),
    }


def _child(name: str, library: str, folder: str, args, queue) -> None:
    import warnings

    warnings.filterwarnings("ignore", message="Method expects CSR input")  # implicit, about its own transpose
    try:
        folder = Path(folder)
        if name == "prepare":
            result = prepare(library, str(folder))  # library carries the size dict here
        elif name == "import":
            result = step_import(library, folder, args)
        elif name in ("knn_fit", "als_fit"):
            result = step_fit(name.split("_")[0], library, folder, args)
        elif name in ("knn_batch", "als_batch"):
            result = step_batch(name.split("_")[0], library, folder, args)
        elif name == "serve":
            result = step_serve(folder, args)
        else:
            raise ValueError(name)
        result["peak_mib"] = peak_mib()
        queue.put(result)
    except BaseException as exc:  # reported, not raised: the run goes on with the other steps
        queue.put({"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()})


def run_step(name: str, library, folder: Path, args, timeout: float | None = None) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_child, args=(name, library, str(folder), args, queue))
    proc.start()
    try:
        result = queue.get(timeout=timeout)
    except Exception:  # queue.Empty: too slow
        proc.kill()
        result = {"error": f"no result within {timeout:.0f} s (killed)"}
    proc.join()
    if proc.exitcode not in (0, None) and "error" not in result:
        result = {"error": f"exit code {proc.exitcode}"}
    return result


# -- output ---------------------------------------------------------------------------------


def fmt_s(result: dict | None) -> str:
    if not result:
        return "—"
    if "error" in result:
        return "failed"
    return f"{result['seconds']:.1f}" + ("*" if result.get("extrapolated") else "")


def fmt_mib(result: dict | None) -> str:
    if not result:
        return "—"
    return "failed" if "error" in result else f"{result['peak_mib']:,.0f}"


def ratio(ours: dict | None, theirs: dict | None, key: str) -> str:
    if not ours or not theirs or "error" in ours or "error" in theirs or not ours.get(key):
        return "—"
    return f"{theirs[key] / ours[key]:.2f}x"


def table(runs: list[dict]) -> str:
    lines = [
        "| interactions | users | step | Backpack s | implicit s | implicit / Backpack time | "
        "Backpack peak MiB | implicit peak MiB | implicit / Backpack memory |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for step in STEPS:
            ours, theirs = run["steps"].get((step, "backpack")), run["steps"].get((step, "implicit"))
            name = STEP_LABELS[step]
            if step == "import":
                name += " (implicit column: pandas.read_csv)"
            if step == "als_batch" and ours and "users" in ours:
                name = f"ALS recommend, {ours['users']:,} users"
            lines.append(
                f"| {run['nnz']:,} | {run['users']:,} | {name} | {fmt_s(ours)} | {fmt_s(theirs)} | "
                f"{ratio(ours, theirs, 'seconds')} | {fmt_mib(ours)} | {fmt_mib(theirs)} | "
                f"{ratio(ours, theirs, 'peak_mib')} |"
            )
    return "\n".join(lines)


def plot(runs: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(STEPS), figsize=(4 * len(STEPS), 7), sharex=True)
    x = [run["nnz"] / 1e6 for run in runs]
    for column, step in enumerate(STEPS):
        for row, key in enumerate(("seconds", "peak_mib")):
            ax = axes[row][column]
            for library, style in (("backpack", "o-"), ("implicit", "s--")):
                points = [(xi, run["steps"].get((step, library), {}).get(key)) for xi, run in zip(x, runs)]
                points = [(xi, y / (1024 if key == "peak_mib" else 1)) for xi, y in points if y is not None]
                if points:
                    name = "pandas" if (step == "import" and library == "implicit") else library
                    if any(run["steps"].get((step, library), {}).get("extrapolated") for run in runs):
                        name += " (sampled, scaled to all users)"
                    ax.plot(*zip(*points), style, label=name)
            if row == 0:
                ax.set_title(STEP_LABELS[step], fontsize=10)
            ax.set_ylabel("seconds" if key == "seconds" else "peak RSS (GiB)")
            if row == 1:
                ax.set_xlabel("interactions (millions)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle(
        f"bench_scale: time and peak memory against interactions ({runs[-1]['items']:,} items, users scaled "
        "with interactions); each step in a fresh process"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_markdown(path: Path, section: str) -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    block = f"{MARK_START}\n{section.rstrip()}\n{MARK_END}"
    if MARK_START in text and MARK_END in text:
        before, rest = text.split(MARK_START, 1)
        after = rest.split(MARK_END, 1)[1]
        text = before + block + after
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)


# -- main -----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        default="1M,3M,6M,12M,25M",
        help="comma-separated interaction counts (distinct user-item pairs, about), e.g. 1M,3M,25M",
    )
    parser.add_argument("--items", type=parse_count, default=200_000)
    parser.add_argument(
        "--users-per-1k", type=float, default=40.0, help="users per 1,000 interactions (40: 25M -> 1M users)"
    )
    parser.add_argument(
        "--events-per-interaction",
        type=float,
        default=1.34,
        help="events generated per distinct (user, item) pair wanted: repeats fold into one "
        "pair (about 1 in 4 at 200k items)",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (100k, 300k events, 20k items): < 2 min")
    parser.add_argument("--libraries", default="backpack,implicit")
    parser.add_argument(
        "--implicit-max",
        type=parse_count,
        default=None,
        help="run implicit only up to this many interactions (the table shows — above)",
    )
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--als-users", type=int, default=5_000, help="users in the ALS batch recommend")
    parser.add_argument(
        "--implicit-knn-users",
        type=int,
        default=50_000,
        help="implicit's item-kNN batch recommend scores one user per Python call: above this "
        "many users it runs on a sample of this size and the time is scaled to all users "
        "(marked * in the table)",
    )
    parser.add_argument("--serve-calls", type=int, default=2_000, help="single-user calls for p50/p99")
    parser.add_argument("--threads", type=int, default=0, help="0 = all cores")
    parser.add_argument("--step-timeout", type=float, default=3600.0, help="seconds before a step is killed")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--scratch", default=None, help="scratch folder parent (default: the system temp)")
    parser.add_argument("--markdown", help="replace the 'Scale (bench_scale)' section of this file")
    parser.add_argument("--plot", help="write the scaling curves to this PNG")
    parser.add_argument("--json", help="also dump the raw results here")
    parser.add_argument(
        "--from-json", metavar="FILE", help="measure nothing: redraw --plot and rewrite --markdown from a --json dump"
    )
    parser.add_argument("--elapsed-min", type=float, default=0.0, help="with --from-json: the run's length")
    args = parser.parse_args()
    if args.from_json:
        runs = json.loads(Path(args.from_json).read_text())
        for run in runs:
            run["steps"] = {tuple(key.split("/")): value for key, value in run["steps"].items()}
        args.json = None
        report(sorted(runs, key=lambda r: r["nnz"]), args, args.elapsed_min * 60, final=True)
        return
    if args.quick:
        args.sizes, args.items, args.als_users, args.serve_calls = "100k,300k", 20_000, 2_000, 500
    events = [parse_count(s) for s in args.sizes.split(",") if s.strip()]
    libraries = [lib.strip() for lib in args.libraries.split(",") if lib.strip()]

    print(
        f"bench_scale: sizes {', '.join(map(label, events))} events; {args.items:,} items; K={args.k}; "
        f"ALS {args.factors} factors x {args.iterations} iterations; {os.cpu_count()} cores; "
        f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS')}",
        flush=True,
    )
    scratch = Path(tempfile.mkdtemp(prefix="bench_scale-", dir=args.scratch))
    runs: list[dict] = []
    started = time.perf_counter()
    try:
        for n_events in events:
            size = {
                "users": max(1, int(round(n_events * args.users_per_1k / 1000))),
                "items": args.items,
                "events": int(round(n_events * args.events_per_interaction)),
                "seed": args.seed,
            }
            folder = scratch / label(n_events)
            folder.mkdir()
            info = run_step("prepare", size, folder, args)
            if "error" in info:
                raise SystemExit(f"generating {label(n_events)} failed: {info['error']}\n{info.get('trace', '')}")
            print(
                f"\n{label(n_events)} events: {info['users']:,} users x {info['items']:,} items, "
                f"{info['nnz']:,} interactions (distinct pairs, from {size['events']:,} events); "
                f"generated in {info['generate_s']:.1f} s, "
                f"CSV {info['csv_mib']:,.0f} MiB written in {info['csv_s']:.1f} s",
                flush=True,
            )
            run = {
                "events": n_events,
                "users": info["users"],
                "items": info["items"],
                "nnz": info["nnz"],
                "steps": {},
                "prepare": info,
            }
            for step in STEPS:
                for library in libraries:
                    if library == "implicit" and args.implicit_max and n_events > args.implicit_max:
                        continue
                    result = run_step(step, library, folder, args, timeout=args.step_timeout)
                    run["steps"][step, library] = result
                    if "error" in result:
                        print(f"  {step:10s} {library:9s} FAILED: {result['error']}", flush=True)
                        if result.get("trace"):
                            print(result["trace"], flush=True)
                    else:
                        print(
                            f"  {step:10s} {library:9s} {result['seconds']:8.2f} s   "
                            f"peak {result['peak_mib']:8,.0f} MiB"
                            f"   (step start {result['base_mib']:,.0f} MiB)",
                            flush=True,
                        )
                ours, theirs = run["steps"].get((step, "backpack")), run["steps"].get((step, "implicit"))
                if ours and theirs:
                    print(
                        f"  {step:10s} ratios    implicit/Backpack: time {ratio(ours, theirs, 'seconds')}, "
                        f"memory {ratio(ours, theirs, 'peak_mib')}",
                        flush=True,
                    )
            if n_events == max(events) and "backpack" in libraries:
                serve = run_step("serve", None, folder, args, timeout=args.step_timeout)
                run["serve"] = serve
                if "error" in serve:
                    print(f"  serve FAILED: {serve['error']}\n{serve.get('trace', '')}", flush=True)
                else:
                    print(
                        f"  serve      backpack  p50 {serve['p50_ms']:.2f} ms  p99 {serve['p99_ms']:.2f} ms over "
                        f"{serve['calls']:,} single-user calls; process RSS {serve['rss_mib']:,.0f} MiB, "
                        f"peak {serve['peak_mib']:,.0f} MiB",
                        flush=True,
                    )
            runs.append(run)
            shutil.rmtree(folder, ignore_errors=True)  # the CSV of 25M rows is about a gigabyte
            # Written after every size, so a run stopped part-way still leaves its numbers.
            report(sorted(runs, key=lambda r: r["nnz"]), args, time.perf_counter() - started, final=False)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    report(sorted(runs, key=lambda r: r["nnz"]), args, time.perf_counter() - started, final=True)


def report(runs: list[dict], args, total: float, final: bool) -> None:
    result_table = table(runs)
    if final:
        print("\n" + result_table)
        print(f"\ntotal {total / 60:.1f} min")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                [
                    {
                        **{k: v for k, v in run.items() if k != "steps"},
                        "steps": {f"{s}/{lib}": r for (s, lib), r in run["steps"].items()},
                    }
                    for run in runs
                ],
                indent=2,
            )
        )
    if args.plot:
        plot(runs, Path(args.plot))
    if args.markdown:
        write_markdown(Path(args.markdown), section(runs, args, result_table, total))
    if final and (args.plot or args.markdown):
        print(f"written: {', '.join(filter(None, (args.plot, args.markdown, args.json)))}")


def section(runs, args, result_table: str, total: float) -> str:
    largest = runs[-1] if runs else {}
    serve = largest.get("serve") or {}
    sizes = ", ".join(label(run["events"]) for run in runs)
    lines = [
        "## Scale (bench_scale)",
        "",
        f"`python benchmarks/bench_scale.py --sizes {args.sizes} --markdown docs/benchmarks.md "
        f"--plot docs/bench_scale.png` (sizes done: {sizes}; {os.cpu_count()} cores, "
        f"{_total_ram_gib():.0f} GiB RAM, shared with other builds and test runs while it ran, so times are "
        f"noisy; whole run {total / 60:.0f} min). Synthetic catalogue (`backpack.data.synthetic`), "
        f"{args.items:,} items, {args.users_per_1k:g} users per 1,000 interactions; *interactions* are "
        "distinct (user, item) pairs. Item-kNN cosine "
        f"K={args.k}; ALS {args.factors} factors, {args.iterations} iterations, regularization 0.01, alpha 1, "
        "3 CG steps, on both sides; all cores on both sides, `OPENBLAS_NUM_THREADS=1`.",
        "",
        "Every step runs in a fresh spawned process; *peak MiB* is that process's peak resident memory "
        "(VmHWM), including the interpreter, the libraries and the matrix it loads (about 8 bytes per "
        "interaction). Import: the CSV is read by Backpack the way `backpack import` reads it (chunks of "
        "100k rows into an Engine's bags, then the CSR), against a whole-file `pandas.read_csv` with "
        "categorical ids (implicit has no importer). Batch steps load the model the fit step saved. "
        "ALS batch recommend runs on a fixed user sample (scoring every user against every item is "
        f"{largest.get('users', 0) * largest.get('items', 0) * args.factors * 2 / 1e12:.3g} TFLOP at the "
        "largest size on both sides alike). * implicit's item-kNN batch recommend answers one user per "
        f"Python call (a SciPy row slice and a scorer call each); above {args.implicit_knn_users:,} users it "
        f"ran on a random sample of {args.implicit_knn_users:,} and its time is scaled to all users.",
        "",
        "![time and peak memory against interactions](bench_scale.png)",
        "",
        result_table,
        "",
    ]
    if serve and "error" not in serve:
        lines += [
            f"Serving at {largest['nnz']:,} interactions ({largest['users']:,} users): an Engine holding "
            f"every bag and the item-kNN model answers single-user `recommend` in p50 {serve['p50_ms']:.2f} "
            f"ms, p99 {serve['p99_ms']:.2f} ms ({serve['calls']:,} calls, in process); the whole serving "
            f"process is {serve['rss_mib']:,.0f} MiB resident (peak {serve['peak_mib']:,.0f} MiB, loading "
            "included).",
            "",
        ]
    if largest:
        peaks = [r["peak_mib"] for (step, lib), r in largest["steps"].items() if lib == "backpack" and "peak_mib" in r]
        if peaks:
            lines += [
                f"The largest Backpack step at {largest['nnz']:,} interactions peaks at {max(peaks):,.0f} MiB "
                f"({max(peaks) / 1024 / max(_total_ram_gib(), 1e-9):.0%} of this machine's RAM).",
                "",
            ]
    lines += [
        "Where the memory goes:",
        "",
        "- **Import** streams: `read_interactions` yields chunks of 100k rows (the CSV module parses them and "
        "whole columns are checked at once), each goes into the bags and is dropped, so the file is never held; "
        "what grows is the bags themselves (per user a vector of 8-byte (item, weight) entries, plus the id "
        "maps). `pandas.read_csv` holds the whole file's columns before the CSR exists.",
        "- **Item-kNN build** (`cpp/core/similarity.cpp`): the weighted matrix laid out by user and by item (8 bytes "
        "per interaction each, plus 4 bytes of weights while the layout is built), the result as items x K "
        "slots (8 bytes each, compacted in place), and per thread one float accumulator, one int32 touched-list "
        "and at most one 8-byte candidate per item: at most 16 bytes x items per thread (3.2 MB at 200k items). "
        "Nothing scales with items x items or with interactions x threads, so the scratch needs no further cap; "
        "a catalogue of 10M items on 64 threads would need 10 GB of it, and a range build "
        "(`ItemKNN.neighbour_block`, the Ray path) bounds the output to the block." + _knn_measured(largest, args),
        "- **ALS**: the matrix in both orientations (confidence CSR and its transpose) and two factor tables "
        "((users + items) x factors x 4 bytes); nothing per thread beyond a few factor-sized vectors.",
        "- **Batch recommend** runs in blocks of 100k users, so the result and the block's scores are the only "
        "extra memory.",
        "",
    ]
    return "\n".join(lines)


def _knn_measured(largest: dict, args) -> str:
    fit = (largest.get("steps") or {}).get(("knn_fit", "backpack")) or {}
    if "peak_mib" not in fit:
        return ""
    nnz, items = largest["nnz"], largest["items"]
    expected = (20 * nnz + 8 * items * args.k) / 2**20
    return (
        f" Measured at {nnz:,} interactions: the fit process peaks {fit['peak_mib'] - fit['base_mib']:,.0f} MiB "
        f"above the loaded matrix, against {expected:,.0f} MiB from that arithmetic (20 bytes x interactions "
        f"+ 8 bytes x items x K)."
    )


def _total_ram_gib() -> float:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        return 0.0


if __name__ == "__main__":
    main()
