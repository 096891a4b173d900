"""``backpack evaluate``: several algorithms, one split, one table."""

from __future__ import annotations

import json
import time

from . import synthetic
from .errors import InvalidInputError
from .evaluation import METRICS, evaluate, holdout_split
from .plugins import Plugins, call_plugin, create_algorithm


def parse_params(pairs: list[str], algorithms: list[str]) -> dict[str, dict]:
    """``["itemknn.k=50", ...]`` -> ``{"itemknn": {"k": 50}}`` (ints, floats, else strings)."""
    params: dict[str, dict] = {name: {} for name in algorithms}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        algo, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise InvalidInputError(f"parameter {pair!r} must look like ALGORITHM.NAME=VALUE")
        if algo not in params:
            raise InvalidInputError(f"parameter {pair!r} names {algo!r}, which is not in --algorithms")
        params[algo][name] = _value(raw)
    return params


def _value(raw: str):
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return raw


def run_evaluate(args, plugins: Plugins) -> int:
    names = [n.strip() for n in args.algorithms.split(",") if n.strip()]
    if not names:
        raise InvalidInputError("--algorithms names no algorithm")
    params = parse_params(args.param, names)
    registrations = {name: plugins.algorithm(name) for name in names}  # fail fast on unknown names
    catalogue = synthetic.generate_size(args.size, seed=args.seed)
    split = holdout_split(catalogue.user_items, args.test_fraction, seed=args.seed)
    rows = []
    for name in names:
        reg = registrations[name]
        model = create_algorithm(reg, params[name])
        start = time.perf_counter()
        call_plugin(reg, "fit", model.fit, split.train, show_progress=not args.json)
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        metrics = call_plugin(reg, "recommend", evaluate, model, split, args.k)
        rows.append({"algorithm": name, "params": params[name], "fit_seconds": fit_seconds,
                     "evaluate_seconds": time.perf_counter() - start, **metrics})
    if args.json:
        print(json.dumps({"size": args.size, "split": args.split, "k": args.k, "results": rows}, indent=2))
        return 0
    m = catalogue.user_items
    print(f"{m.shape[0]:,} users x {m.shape[1]:,} items, {m.nnz:,} interactions; "
          f"{args.split} split ({split.test.nnz:,} held out); metrics @{args.k}")
    header = ["algorithm", "fit s", *METRICS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [row["algorithm"], f"{row['fit_seconds']:.2f}"] + [f"{row.get(metric, float('nan')):.4f}" for metric in METRICS]
        print("| " + " | ".join(cells) + " |")
    return 0
