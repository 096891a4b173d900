"""``backpack evaluate``: several algorithms (or one under several settings), one split, one table.

Each entry of ``--algorithms`` is ``NAME`` or ``LABEL=NAME``, so one algorithm
can be compared with itself: ``--algorithms als,big=als -p big.factors=256``.
Data comes from a synthetic catalogue (``--size``), a packaged public data
set (``--dataset``) or the data directory (the default when it holds
interactions).
"""

from __future__ import annotations

import json
import time

import numpy as np

from backpack.algorithms.fitting import create_algorithm, fit_model
from backpack.errors import InvalidInputError
from backpack.evaluation import METRICS, evaluate, holdout_split, leave_last_out, time_cut
from backpack.plugins import Plugins, call_plugin


def parse_value(raw: str):
    """A parameter value from the command line: int, float, true/false/none, else the string."""
    for convert in (int, float):
        try:
            return convert(raw)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(raw.lower(), raw)


def parse_algorithms(spec: str) -> dict[str, str]:
    """``"als,big=als"`` -> ``{"als": "als", "big": "als"}`` (label -> algorithm), labels unique."""
    out: dict[str, str] = {}
    for entry in (e.strip() for e in spec.split(",")):
        if not entry:
            continue
        label, sep, name = entry.partition("=")
        label, name = label.strip(), (name.strip() if sep else label.strip())
        if not label or not name:
            raise InvalidInputError(f"--algorithms entry {entry!r} must be NAME or LABEL=NAME")
        if label in out:
            raise InvalidInputError(
                f"label {label!r} appears twice in --algorithms; give each run its own label, e.g. als,als-big=als"
            )
        out[label] = name
    if not out:
        raise InvalidInputError("--algorithms names no algorithm")
    return out


def parse_params(pairs: list[str], labels) -> dict[str, dict]:
    """``["itemknn.k=50", ...]`` -> ``{"itemknn": {"k": 50}}`` for each label in ``labels``."""
    params: dict[str, dict] = {label: {} for label in labels}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        label, dot, name = key.partition(".")
        if not sep or not dot or not name:
            raise InvalidInputError(f"parameter {pair!r} must look like LABEL.NAME=VALUE")
        if label not in params:
            raise InvalidInputError(f"parameter {pair!r} names {label!r}, which is not in --algorithms")
        params[label][name] = parse_value(raw)
    return params


def _data(args, plugins: Plugins):
    """(description, users x items CSR, per-entry timestamps or None) from the chosen source."""
    from backpack.data import synthetic

    if args.size and args.dataset:
        raise InvalidInputError("choose one of --size and --dataset")
    if args.size:
        cat = synthetic.generate_size(args.size, seed=args.seed)
        return f"synthetic '{args.size}'", cat.user_items, None
    if args.dataset:
        from backpack.data import datasets

        ds = datasets.load(args.dataset)
        times = None if ds.timestamps is None else ds.timestamps.data
        return ds.name, ds.user_items, times  # the description repeats the shape printed below
    from backpack.engine.data_dir import DataDir
    from backpack.engine.engine import Engine
    from backpack.errors import DataDirError

    data = DataDir(args.data_dir)
    engine = Engine.open(data.path, load_model=False, plugins=plugins) if data.initialised else None
    if engine is None or engine.bags.nnz == 0:
        raise DataDirError(
            f"{data.path} holds no interactions: import some (backpack import FILE), "
            "or evaluate on --size tiny|small|default or --dataset NAME"
        )
    m = engine.bag_state().user_items
    times = engine.timestamps.aligned(m)
    return str(data.path), m, times


def _split(args, m, times):
    if times is not None and np.isnan(times).any():
        times = None  # times on only some interactions order nothing
    if args.split == "holdout":
        return holdout_split(m, args.test_fraction, seed=args.seed, timestamps=times), "random hold-out"
    if times is None:
        raise InvalidInputError(
            f"the {args.split!r} split needs a timestamp on every interaction; this data "
            "has none (or not all): use --split holdout"
        )
    if args.split == "last":
        return leave_last_out(m, times, args.last_n), f"leave last {args.last_n} out"
    if args.cut is not None:
        from backpack.core.timestamps import parse_timestamp

        cut = parse_timestamp(args.cut, "--cut")
    else:  # the time before which (1 - test_fraction) of the interactions happened
        cut = float(np.quantile(times, 1 - args.test_fraction)) if times.size else 0.0
    return time_cut(m, times, cut), f"time cut at {time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(cut))} UTC"


def run_evaluate(args, plugins: Plugins) -> int:
    """Fit each entry of ``--algorithms`` on the train part and print metrics on the test part."""
    labels = parse_algorithms(args.algorithms)
    params = parse_params(args.param, labels)
    registrations = {label: plugins.algorithm(name) for label, name in labels.items()}  # fail fast
    description, m, times = _data(args, plugins)
    split, split_name = _split(args, m, times)
    rows = []
    for label, name in labels.items():
        reg = registrations[label]
        model = create_algorithm(reg, params[label])
        start = time.perf_counter()
        fit_model(
            reg,
            model,
            split.train,
            timestamps=split.train_timestamps,
            show_progress=not (args.json or args.no_progress),
        )
        fit_seconds = time.perf_counter() - start
        start = time.perf_counter()
        metrics = call_plugin(reg, "recommend", evaluate, model, split, args.k)
        rows.append(
            {
                "label": label,
                "algorithm": name,
                "params": params[label],
                "fit_seconds": fit_seconds,
                "evaluate_seconds": time.perf_counter() - start,
                **metrics,
            }
        )
    if args.json:
        print(
            json.dumps(
                {"data": description, "size": args.size, "split": args.split, "k": args.k, "results": rows}, indent=2
            )
        )
        return 0
    print(
        f"{description}: {m.shape[0]:,} users x {m.shape[1]:,} items, {m.nnz:,} interactions; "
        f"{split_name} ({split.test.nnz:,} held out); metrics @{args.k}"
    )
    header = ["algorithm", "fit s", *METRICS]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        name = row["label"] if row["label"] == row["algorithm"] else f"{row['label']} ({row['algorithm']})"
        cells = [name, f"{row['fit_seconds']:.2f}"] + [f"{row.get(metric, float('nan')):.4f}" for metric in METRICS]
        print("| " + " | ".join(cells) + " |")
    return 0
