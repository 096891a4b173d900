"""The ``backpack`` command. Subcommands from plugins are added to it."""

from __future__ import annotations

import argparse
import json
import operator
import sys

from backpack._version import __version__
from backpack.engine.data_dir import default_data_dir
from backpack.errors import BackpackError, PluginError
from backpack.plugins import Plugins, call_plugin, get_plugins

_STATE_COMMANDS = ("import", "fit", "embed", "models", "recommend", "similar", "bench")

#: exit codes: 0 done; 1 done, with problems to look at (e.g. broken plugins listed);
#: 2 bad usage or input; 3 the data directory, its store or a saved model is missing or unusable;
#: 4 a plugin failed; 130 interrupted. A plugin command's own code is passed through.
EXIT_USAGE, EXIT_STATE, EXIT_PLUGIN = 2, 3, 4


def exit_code(exc: BackpackError) -> int:
    """The exit code for an error: what a shell script can branch on."""
    from backpack.errors import (
        DataDirError,
        ModelFileError,
        NotFittedError,
        PluginConflictError,
        StaleModelError,
        StoreError,
    )

    if isinstance(exc, (DataDirError, ModelFileError, NotFittedError, StaleModelError, StoreError)):
        return EXIT_STATE
    if isinstance(exc, (PluginError, PluginConflictError)):
        return EXIT_PLUGIN
    return EXIT_USAGE


def _parser(plugins: Plugins) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backpack", description="Backpack recommendation engine")
    parser.add_argument("--version", action="version", version=f"backpack {__version__}")
    parser.add_argument("--data-dir", default=None, metavar="DIR", help="data directory (see each command)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the engine end to end on a synthetic catalogue")
    demo.add_argument(
        "--size",
        choices=["tiny", "small", "default"],
        default="default",
        help="catalogue size (default: 200k users x 200k items x ~3M interactions)",
    )
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--k", type=int, default=100, help="neighbours kept per item")
    demo.add_argument("--similarity", default="cosine", choices=["cosine", "bm25", "tfidf", "jaccard", "cooccurrence"])
    demo.add_argument("--threads", type=int, default=0, help="0 = all cores")
    demo.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS, help="hide progress bars")

    # --data-dir and --no-progress work before or after the subcommand
    state = argparse.ArgumentParser(add_help=False)
    state.add_argument(
        "--data-dir",
        default=argparse.SUPPRESS,
        metavar="DIR",
        help=f"where imported data and models live (default: $BACKPACK_DATA_DIR or {default_data_dir()})",
    )
    state.add_argument("--no-progress", action="store_true", default=argparse.SUPPRESS, help="hide progress bars")
    output = argparse.ArgumentParser(add_help=False)
    output.add_argument("--json", action="store_true", help="machine-readable output")

    importing = commands.add_parser(
        "import",
        parents=[state, output],
        help="import interactions (CSV, TSV, JSON Lines), items (JSON-LD) and scenes (glTF, GLB, .tscn)",
        description="Interaction files need user and item columns (CSV header or JSON keys) and may have "
        "weight, kind (view, like, ...) and timestamp (epoch seconds or ISO 8601). JSON-LD files "
        "(.jsonld) hold item nodes with @id and @type. An import is all or nothing, except for "
        "scenes: a FOLDER imports every .gltf, .glb and .tscn file under it (as does a scene file "
        "named alone); bad scene files are listed and left out, and the exit code is then 1.",
    )
    importing.add_argument("files", nargs="+", metavar="FILE_OR_FOLDER")
    importing.add_argument(
        "--format", choices=["csv", "tsv", "jsonl", "jsonld"], help="file format (default: from each file's suffix)"
    )
    importing.add_argument(
        "--replace", action="store_true", help="drop the stored interactions, items and models first"
    )
    importing.add_argument("--chunk-size", type=int, default=100_000, help=argparse.SUPPRESS)

    fit = commands.add_parser("fit", parents=[state, output], help="fit an algorithm on the imported data")
    fit.add_argument("algorithm", help="algorithm name (see `backpack plugins`)")
    fit.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="algorithm parameter, e.g. -p factors=64 (repeatable)",
    )
    fit.add_argument("--label", help="save the model under this name (default: the algorithm's)")
    fit.add_argument("--no-activate", action="store_true", help="save without making it the active model")
    fit.add_argument("--threads", type=int, default=0, help="0 = all cores")

    embed = commands.add_parser(
        "embed", parents=[state, output], help="embed the imported item descriptions (cold-start similar items, hybrid)"
    )
    embed.add_argument("--task", default="text-embedding", help="model task with embed() (default text-embedding)")
    embed.add_argument("--backend", default="onnx", help="model backend (onnx, iree; see `backpack models`)")
    embed.add_argument("--batch-size", type=int, default=32)
    embed.add_argument("--threads", type=int, default=0, help="0 = all cores")

    models = commands.add_parser(
        "models", parents=[state, output], help="list the fitted models, the model backends and the model tasks"
    )
    del models  # no options of its own

    recommend = commands.add_parser("recommend", parents=[state, output], help="items for users")
    recommend.add_argument("users", nargs="+", metavar="USER")
    similar = commands.add_parser("similar", parents=[state, output], help="items like items")
    similar.add_argument("items", nargs="+", metavar="ITEM")
    for sub in (recommend, similar):
        sub.add_argument("-n", type=int, default=10, help="how many (default 10)")
        sub.add_argument("--model", help="label of the model to use (default: the active one)")
        sub.add_argument("--item-kind", help="only items of this kind (from imported JSON-LD types)")
        sub.add_argument("--threads", type=int, default=0, help="0 = all cores")
    similar.add_argument(
        "--based-on",
        choices=["auto", "interactions", "content", "features"],
        default="auto",
        help="the fitted model, the embedded descriptions (backpack embed), the descriptions' "
        "features, or auto: descriptions for items nobody has interacted with yet",
    )
    recommend.add_argument("--keep-owned", action="store_true", help="allow items already in the user's bag")
    recommend.add_argument(
        "--backend",
        help="serve a factor model (als, bpr, embeddings) on this model backend (onnx, iree; see `backpack models`)",
    )

    evaluate = commands.add_parser(
        "evaluate", parents=[state, output], help="compare algorithms (or settings of one) on one train/test split"
    )
    evaluate.add_argument(
        "--algorithms", default="itemknn", help="comma-separated NAME or LABEL=NAME entries, e.g. als,als-big=als"
    )
    source = evaluate.add_mutually_exclusive_group()
    source.add_argument(
        "--size",
        choices=["tiny", "small", "default"],
        help="evaluate on a synthetic catalogue instead of the data directory",
    )
    source.add_argument("--dataset", help="evaluate on a packaged public data set (see backpack.data.datasets)")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument(
        "--split",
        choices=["holdout", "last", "time"],
        default="holdout",
        help="random per-user hold-out, leave-last-n-out or a global time cut",
    )
    evaluate.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        help="hold-out share (holdout), or share after the default time cut (time)",
    )
    evaluate.add_argument("--last-n", type=int, default=1, help="items held out per user (--split last)")
    evaluate.add_argument("--cut", help="time cut, epoch seconds or ISO 8601 (--split time)")
    evaluate.add_argument("--k", type=int, default=10, help="cut-off of the metrics")
    evaluate.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="LABEL.NAME=VALUE",
        help="algorithm parameter, e.g. -p itemknn.k=50 (repeatable)",
    )

    bench = commands.add_parser(
        "bench", parents=[state, output], help="fit time and serving latency of algorithms on this machine"
    )
    bench.add_argument("--algorithms", default="itemknn,als", help="comma-separated algorithm names")
    bench.add_argument(
        "--size", choices=["tiny", "small", "default"], help="a synthetic catalogue instead of the data directory"
    )
    bench.add_argument("--queries", type=int, default=1000, help="users (and items) queried")
    bench.add_argument("-n", type=int, default=10, help="list length")
    bench.add_argument("--seed", type=int, default=0)
    bench.add_argument("--threads", type=int, default=0, help="0 = all cores")

    from backpack.cli.serve import add_serve_parser

    add_serve_parser(commands, state)

    from backpack.cli.admin import configure_jobs, configure_token

    configure_token(commands, [state, output])
    configure_jobs(commands, [state, output])

    godot = commands.add_parser("godot", help="the Godot addon (GDExtension library and scripts)")
    godot_commands = godot.add_subparsers(dest="godot_command", required=True)
    godot_install = godot_commands.add_parser(
        "install",
        parents=[output],
        help="copy the addon and this platform's library into a Godot project",
        description="Copies the addon into PATH/addons/backpack/ and the GDExtension library for this "
        "platform into PATH/addons/backpack/bin/. Running it again updates the addon's own files.",
    )
    godot_install.add_argument("path", metavar="PATH", help="the Godot project folder (holds project.godot)")
    godot_install.add_argument("--force", action="store_true", help="install even without a project.godot")

    listing = commands.add_parser("plugins", help="list plugins, where they come from and what they add")
    listing.add_argument("--json", action="store_true", help="machine-readable output")

    for name, reg in sorted(plugins.registry("commands").items()):
        if name in commands.choices:
            plugins.report_error(reg.plugin, f"command {name!r} clashes with a built-in command")
            continue
        configure, run = reg.value, reg.extra.get("args", (None,))[0]
        sub = commands.add_parser(name, help=reg.extra.get("help", reg.description) or f"(from plugin {reg.plugin})")
        try:
            if configure is not None:
                call_plugin(reg, f"configuring command {name!r}", configure, sub)
        except (BackpackError, SystemExit) as exc:  # SystemExit: e.g. parser.error() in configure
            # One broken command must not break every other one, `backpack plugins` included.
            plugins.report_error(
                reg.plugin,
                str(exc)
                if isinstance(exc, BackpackError)
                else f"plugin {reg.plugin!r} exited while configuring command {name!r}",
            )
            _drop_subcommand(commands, name)
            continue
        sub.set_defaults(plugin_command=(reg, run))
    return parser


def _drop_subcommand(commands: argparse._SubParsersAction, name: str) -> None:
    """Take back a sub-parser added by ``add_parser`` (argparse has no public way)."""
    commands.choices.pop(name, None)
    commands._choices_actions[:] = [a for a in commands._choices_actions if a.dest != name]


def _exit_code(reg, name: str, code) -> int:
    """What a plugin command's run() returned as an exit code: None is 0, an int is itself."""
    if code is None:
        return 0
    try:
        return operator.index(code)  # ints and NumPy integers, not floats or strings
    except TypeError:
        raise PluginError(
            f"plugin {reg.plugin!r}: command {name!r} returned {code!r:.80}; "
            "run(args) must return an int exit code or None"
        ) from None


def _print_plugins(plugins: Plugins, as_json: bool) -> int:
    described = plugins.describe()
    if as_json:
        print(json.dumps(described, indent=2))
    else:
        for p in described:
            origin = p["distribution"] and f"{p['distribution']} {p['version']}" or p["source"]
            print(f"{p['name']}  ({origin}; {p['module']})")
            for kind, names in sorted(p["registered"].items()):
                print(f"    {kind}: {', '.join(names)}")
            for error in p["errors"]:
                print(f"    ERROR: {error}")
    return 1 if any(p["errors"] for p in described) else 0


def main(argv: list[str] | None = None, *, plugins: Plugins | None = None) -> int:
    plugins = plugins if plugins is not None else get_plugins()
    try:
        args = _parser(plugins).parse_args(argv)
        if args.command == "demo":
            from backpack.cli import demo

            demo.run(
                args.size,
                seed=args.seed,
                k=args.k,
                similarity=args.similarity,
                threads=args.threads,
                show_progress=not args.no_progress,
            )
        elif args.command == "plugins":
            return _print_plugins(plugins, args.json)
        elif args.command == "godot":
            from backpack.cli.godot import run_godot

            return run_godot(args)
        elif args.command == "evaluate":
            from backpack.cli.evaluate import run_evaluate

            return run_evaluate(args, plugins)
        elif args.command == "serve":
            from backpack.cli.serve import run_serve

            return run_serve(args, plugins)
        elif args.command in _STATE_COMMANDS:
            from backpack.cli import data_commands as commands

            return getattr(commands, f"run_{args.command}")(args, plugins)
        elif args.command in ("token", "jobs"):
            from backpack.cli import admin as store_commands

            return getattr(store_commands, f"run_{args.command}")(args, plugins)
        elif hasattr(args, "plugin_command"):
            reg, run = args.plugin_command
            return _exit_code(reg, args.command, call_plugin(reg, f"command {args.command!r}", run, args))
    except BackpackError as exc:
        print(f"backpack: error [{exc.code}]: {exc}", file=sys.stderr)
        return exit_code(exc)
    except KeyboardInterrupt:
        print("backpack: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
