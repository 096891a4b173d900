"""The CLI commands that work on a data directory: import, fit, recommend, similar, models, bench.

Each ``run_*`` takes the parsed arguments and returns an exit code; errors
are raised as typed Backpack errors and turned into messages and exit codes
by :mod:`backpack.cli.main`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from backpack.cli.evaluate import parse_value
from backpack.core.files import crash_point
from backpack.data.readers import file_format, read_interactions, read_json
from backpack.engine.data_dir import DataDir
from backpack.engine.engine import Engine
from backpack.engine.snapshot_files import NewModel, check_label
from backpack.errors import DataDirError, InvalidInputError
from backpack.jsonld.processing import expand_documents
from backpack.plugins import Plugins
from backpack.scenes.ingest import ScanReport, import_scene_folder, is_scene_file, read_scene
from backpack.store.base import WriteBatch


def parse_assignments(pairs: list[str]) -> dict:
    """``["k=50", "similarity=bm25"]`` -> ``{"k": 50, "similarity": "bm25"}``."""
    params = {}
    for pair in pairs:
        name, sep, raw = pair.partition("=")
        if not sep or not name.strip():
            raise InvalidInputError(f"parameter {pair!r} must look like NAME=VALUE")
        params[name.strip()] = parse_value(raw)
    return params


def _bar(args, **kwargs):
    return tqdm(disable=args.no_progress or args.json, **kwargs)


def _data_dir(args, *, create: bool = False) -> DataDir:
    data = DataDir(args.data_dir, create=create)
    if not create:
        data.require()
    return data


def _engine(args, plugins: Plugins, *, load_model: bool = True) -> tuple[DataDir, Engine]:
    data = _data_dir(args)
    engine = Engine.open(
        data.path,
        model=getattr(args, "model", None),
        load_model=load_model,
        plugins=plugins,
        num_threads=getattr(args, "threads", 0),
    )
    if engine.bags.nnz == 0:
        raise DataDirError(f"{data.path} holds no interactions: import some first (backpack import FILE)")
    return data, engine


def _print(args, value, text: str) -> None:
    print(json.dumps(value, indent=2) if args.json else text)


# -- import ---------------------------------------------------------------------


def run_import(args, plugins: Plugins) -> int:
    """Interactions from CSV / TSV / JSON Lines and items from JSON-LD, all or nothing; scenes as items.

    A folder argument imports the scene files under it (``.gltf``, ``.glb``,
    ``.tscn``), as does a scene file named alone. Scenes are the exception to
    all or nothing: the good ones are imported, the bad ones listed, and the
    exit code is 1 when any failed. A bad interaction or JSON-LD file still
    stops the whole import before anything is written.
    """
    paths = [Path(p) for p in args.files]
    for path in paths:
        if not (path.is_file() or path.is_dir()):
            raise InvalidInputError(f"{path}: no such file or folder")
    data = _data_dir(args, create=True)
    scenes, pending, tables = [], [], []
    with data.writing("import"):
        engine = Engine(plugins=plugins) if args.replace else Engine.open(data.path, load_model=False, plugins=plugins)
        before_users, before_items, before_nnz = engine.bags.n_users, engine.bags.n_items, engine.bags.nnz
        counted = {"interactions": 0, "items": 0, "users": 0, "activities": 0}
        for path in paths:  # descriptions and scenes are read (and checked) first; tables stream below
            if path.is_dir() or (args.format is None and is_scene_file(path)):
                scenes.append(_read_scenes(args, path))
                continue
            fmt = file_format(path, args.format)
            if fmt != "jsonld":
                tables.append((path, fmt))
                continue
            records = engine.mapper.map(expand_documents(read_json(path)))  # activities, items and actors
            pending.append(records)
            counted["activities"] += len(records.activities.interactions) + len(records.activities.removals)
            counted["users"] += len(records.users)
        items = {r.id: r.node for records in pending for r in records.items}
        for report in scenes:  # scenes that failed are reported and left out; the rest is all or nothing
            described = engine.mapper.map(expand_documents([i.document for i in report.items]), only="items")
            items.update({r.id: r.node for r in described.items})
        counted["items"] = len(items)
        users = {u.id: u.node for records in pending for u in records.users}
        removals = [r for records in pending for r in records.activities.removals]

        def adds():
            """Every interaction, as the store's log gets them, applied to the engine on the way."""
            for path, fmt in tables:
                with _bar(args, total=path.stat().st_size, unit="B", unit_scale=True, desc=path.name) as bar:
                    for chunk in read_interactions(path, fmt=fmt, chunk_size=args.chunk_size, progress=bar):
                        weights = engine.interaction_weights(len(chunk), chunk.weights, chunk.kinds).tolist()
                        engine.add_interactions(chunk.users, chunk.items, weights, timestamps=chunk.timestamps)
                        counted["interactions"] += len(chunk)
                        yield chunk.users, chunk.items, weights, chunk.timestamps
                        crash_point("import:chunk-written")
            engine.put_items(list(items.values()), expanded=True)
            engine.put_users(list(users.values()), expanded=True)
            for records in pending:
                activity = records.activities.interactions
                if activity:
                    times = [a.timestamp for a in activity]
                    engine.add_interactions(
                        [a.user for a in activity],
                        [a.item for a in activity],
                        [a.weight for a in activity],
                        timestamps=None if all(t is None for t in times) else times,
                    )
                    yield [a.user for a in activity], [a.item for a in activity], [a.weight for a in activity], times
            for r in removals:
                engine.remove_interaction(r.user, r.item)

        # One store transaction: a bad row anywhere (it raises while the stream is read) stores nothing.
        batch = WriteBatch(
            items=items,
            users=users,
            adds=adds(),
            clear=args.replace,
            removals=([r.user for r in removals], [r.item for r in removals]),
        )
        data.store.write_batch(batch)
        crash_point("import:committed")
        data.commit_snapshot(engine)  # derived: the next command starts from it instead of replaying the log
    summary = {
        "data_dir": str(data.path),
        "files": len(paths),
        **counted,
        "new_users": engine.bags.n_users - before_users,
        "new_items": engine.bags.n_items - before_items,
        "users": engine.bags.n_users,
        "items_with_interactions": engine.bags.n_items,
        "stored_pairs": engine.bags.nnz,
        "new_pairs": engine.bags.nnz - before_nnz,
    }
    failed = [problem for report in scenes for problem in report.as_dict()["failed"]]
    if scenes:
        summary["scenes"] = {
            "files": sum(r.files for r in scenes),
            "imported": sum(r.imported for r in scenes),
            "failed": failed,
        }
    text = (
        f"imported {counted['interactions']:,} interactions and {counted['items']:,} item descriptions "
        f"into {data.path}\n  now {engine.bags.n_users:,} users x {engine.bags.n_items:,} items, "
        f"{engine.bags.nnz:,} (user, item) pairs; fit a model with: backpack fit ALGORITHM"
    )
    if failed:
        text += f"\n{len(failed):,} scene file(s) failed and were left out:\n" + "\n".join(
            f"  {problem['error']}" for problem in failed
        )
    _print(args, summary, text)
    return 1 if failed else 0


def _read_scenes(args, path: Path) -> ScanReport:
    """A folder of scenes, or one scene file, read into a report (bad files listed, not raised)."""
    if path.is_dir():
        return import_scene_folder(path, progress=not (args.no_progress or args.json))
    report = ScanReport(path.parent)
    try:
        report.items.append(read_scene(path))
    except InvalidInputError as exc:
        report.errors.append((path, str(exc)))
    return report


# -- fit ----------------------------------------------------------------------------


def run_fit(args, plugins: Plugins) -> int:
    """Fit an algorithm on the imported interactions and save it as the active model."""
    label = check_label(args.label or args.algorithm)
    params = parse_assignments(args.param)
    plugins.algorithm(args.algorithm)  # unknown names fail before the data is read
    data = _data_dir(args)
    with data.writing("fit"):
        data, engine = _engine(args, plugins, load_model=False)
        start = time.perf_counter()
        engine.fit(args.algorithm, show_progress=not (args.no_progress or args.json), **params)
        seconds = time.perf_counter() - start
        crash_point("fit:fitted")
        data.commit_snapshot(engine, model=NewModel(label, params, seconds, activate=not args.no_activate))
    manifest = data.manifest(label)
    _print(
        args,
        {**manifest.as_dict(), "active": not args.no_activate},
        f"fitted {args.algorithm} ({', '.join(f'{k}={v}' for k, v in params.items()) or 'defaults'}) on "
        f"{manifest.n_interactions:,} interactions in {seconds:.2f} s; saved as model {label!r}"
        + ("" if args.no_activate else " (active)"),
    )
    return 0


def run_models(args, plugins: Plugins) -> int:
    """List the saved models, the model backends that run here and the model tasks."""
    from backpack.models.backends import available_backends
    from backpack.models.tasks import task_status

    data = DataDir(args.data_dir)  # an empty directory lists no models, and still the backends and tasks
    active = data.active_model
    rows = [{**m.as_dict(), "active": m.label == active} for m in data.models()]
    backends = [{"name": name, "description": text} for name, text in available_backends(plugins).items()]
    tasks = [{"name": name, **status} for name, status in task_status(plugins).items()]
    lines = [
        f"{'*' if r['active'] else ' '} {r['label']}: {r['algorithm']} {r['params']} on "
        f"{r['n_interactions']:,} interactions, fitted "
        f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(r['fitted_at']))} in {r['fit_seconds']:.2f} s"
        for r in rows
    ] or [f"no models in {data.path} (backpack fit ALGORITHM)"]
    lines += ["", "model backends (recommend --backend NAME):"]
    lines += [f"  {b['name']}: {b['description']}" for b in backends] or ["  none installed"]
    lines += ["", "model tasks:"]
    lines += [
        f"  {t['name']}: {t['description'] if t['available'] else 'unavailable: ' + t['reason']}" for t in tasks
    ] or ["  none registered"]
    _print(args, {"models": rows, "backends": backends, "tasks": tasks}, "\n".join(lines))
    return 0


# -- embed -------------------------------------------------------------------------


def run_embed(args, plugins: Plugins) -> int:
    """Embed the imported item descriptions (content index for cold start and the hybrid model)."""
    data = _data_dir(args)
    with data.writing("embed"):
        engine = Engine.open(data.path, load_model=False, plugins=plugins, num_threads=args.threads)
        start = time.perf_counter()
        content = engine.fit_content(
            args.task,
            backend=args.backend,
            batch_size=args.batch_size,
            show_progress=not (args.no_progress or args.json),
        )
        seconds = time.perf_counter() - start
        data.commit_snapshot(engine)  # the models of the current snapshot are carried on
    _print(
        args,
        {"items": len(content), "dim": content.dim, "task": args.task, "backend": args.backend, "seconds": seconds},
        f"embedded {len(content):,} item descriptions ({content.dim} dimensions, {args.task} on "
        f"{args.backend}) in {seconds:.1f} s; try: backpack similar ITEM --based-on content",
    )
    return 0


# -- recommend / similar ---------------------------------------------------------------


def _kind_filter(args) -> dict:
    return {"item_kind": args.item_kind} if args.item_kind else {}


def _stale_note(args, data: DataDir, engine: Engine) -> None:
    label = args.model or data.active_model
    if label is None:
        raise DataDirError(f"no fitted model in {data.path}: run backpack fit ALGORITHM first")
    seen = data.manifest(label).n_interactions
    if engine.bags.nnz != seen and not args.json:
        tqdm.write(
            f"note: model {label!r} was fitted on {seen:,} (user, item) pairs; there are "
            f"{engine.bags.nnz:,} now (recommendations use every bag as it is; refit to learn from them)"
        )


def _listing(rows) -> list[dict]:
    return [{"item": r.item, "score": float(r.score), "source": r.source} for r in rows]


def _text(title: str, rows) -> str:
    lines = [title] + [
        f"  {i:>3}. {r.item}  {r.score:.4f}" + ("  (popular)" if r.source == "popular" else "")
        for i, r in enumerate(rows, 1)
    ]
    return "\n".join(lines if rows else [title, "  (nothing eligible)"])


def run_recommend(args, plugins: Plugins) -> int:
    """Top-n items for each user named (unknown users get popular items)."""
    data, engine = _engine(args, plugins)
    _stale_note(args, data, engine)
    if args.backend:
        engine.serve_on(args.backend, threads=args.threads)
    lists = engine.recommend_batch(args.users, n=args.n, filter_owned=not args.keep_owned, **_kind_filter(args))
    _print(
        args,
        [{"user": u, "items": _listing(rows)} for u, rows in zip(args.users, lists)],
        "\n".join(_text(f"for {u}:", rows) for u, rows in zip(args.users, lists)),
    )
    return 0


def _any_untouched(engine: Engine, items: list[str]) -> bool:
    """Whether any of ``items`` has no interaction yet (a cold item the model cannot place)."""
    return any(engine.bags.item_user_count(item) == 0 for item in items)


def run_similar(args, plugins: Plugins) -> int:
    """Top-n items most like each item named."""
    data, engine = _engine(args, plugins)
    if args.model or data.active_model or not len(engine.item_descriptions):
        _stale_note(args, data, engine)  # without any model, only descriptions can answer (cold start)
    if len(engine.item_descriptions) and (
        args.based_on == "features"
        or (args.based_on == "auto" and engine.content is None and _any_untouched(engine, args.items))
    ):
        engine.fit_features()  # built per call: fast, and always in step with the imported descriptions
    results = [
        engine.similar_items(item, n=args.n, based_on=args.based_on, **_kind_filter(args)) for item in args.items
    ]
    _print(
        args,
        [{"item": i, "similar": _listing(rows)} for i, rows in zip(args.items, results)],
        "\n".join(_text(f"more like {i}:", rows) for i, rows in zip(args.items, results)),
    )
    return 0


# -- bench ------------------------------------------------------------------------


def run_bench(args, plugins: Plugins) -> int:
    """Fit time and serving latency of each algorithm on this engine (data directory or synthetic)."""
    from backpack.data import synthetic

    names = [n.strip() for n in args.algorithms.split(",") if n.strip()]
    if not names:
        raise InvalidInputError("--algorithms names no algorithm")
    for name in names:
        plugins.algorithm(name)
    if args.size:
        cat = synthetic.generate_size(args.size, seed=args.seed)
        engine = Engine(plugins=plugins, num_threads=args.threads)
        engine.load_matrix(cat.user_items, cat.user_ids, cat.item_ids)
        source = f"synthetic '{args.size}'"
    else:
        data, engine = _engine(args, plugins, load_model=False)
        source = str(data.path)
    n_users, n_items = engine.bags.n_users, engine.bags.n_items
    rng = np.random.default_rng(args.seed)
    users = engine.bags.user_ids(rng.integers(0, n_users, args.queries))
    items = engine.bags.item_ids(rng.integers(0, n_items, args.queries))
    rows = []
    for name in names:
        start = time.perf_counter()
        engine.fit(name, show_progress=not (args.no_progress or args.json))
        fit_seconds = time.perf_counter() - start
        single = _latencies(lambda u: engine.recommend(u, n=args.n), users)
        start = time.perf_counter()
        engine.recommend_batch(users, n=args.n)
        batch_seconds = time.perf_counter() - start
        try:
            similar = _latencies(lambda i: engine.similar_items(i, n=args.n), items)
        except Exception as exc:  # noqa: BLE001 - an algorithm without item similarity is reported, not fatal
            similar = {"error": f"{type(exc).__name__}: {exc}"}
        rows.append(
            {
                "algorithm": name,
                "fit_seconds": fit_seconds,
                "recommend_ms": single,
                "batch_users_per_second": len(users) / batch_seconds,
                "similar_ms": similar,
            }
        )
    result = {
        "data": source,
        "users": n_users,
        "items": n_items,
        "interactions": engine.bags.nnz,
        "queries": args.queries,
        "n": args.n,
        "results": rows,
    }
    if args.json:
        print(json.dumps(result, indent=2))
        return 0
    print(
        f"{source}: {n_users:,} users x {n_items:,} items, {engine.bags.nnz:,} interactions; "
        f"{args.queries:,} queries, n={args.n}"
    )
    print("| algorithm | fit s | recommend p50 ms | p99 ms | batch users/s | similar p50 ms | p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        sim = r["similar_ms"]
        sim_cells = [f"{sim['p50']:.3f}", f"{sim['p99']:.3f}"] if "p50" in sim else ["n/a", "n/a"]
        print(
            f"| {r['algorithm']} | {r['fit_seconds']:.2f} | {r['recommend_ms']['p50']:.3f} | "
            f"{r['recommend_ms']['p99']:.3f} | {r['batch_users_per_second']:,.0f} | " + " | ".join(sim_cells) + " |"
        )
    return 0


def _latencies(call, keys) -> dict[str, float]:
    times = np.empty(len(keys))
    for i, key in enumerate(keys):
        start = time.perf_counter()
        call(key)
        times[i] = time.perf_counter() - start
    ms = times * 1e3
    return {"p50": float(np.percentile(ms, 50)), "p99": float(np.percentile(ms, 99)), "max": float(ms.max())}
