"""The ``backpack`` command. Subcommands from plugins are added to it."""

from __future__ import annotations

import argparse
import json
import operator
import sys

from . import __version__
from .errors import BackpackError
from .plugins import PluginError, Plugins, call_plugin, get_plugins


def _parser(plugins: Plugins) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="backpack", description="Backpack recommendation engine")
    parser.add_argument("--version", action="version", version=f"backpack {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    demo = commands.add_parser("demo", help="run the engine end to end on a synthetic catalogue")
    demo.add_argument("--size", choices=["tiny", "small", "default"], default="default",
                      help="catalogue size (default: 200k users x 200k items x ~3M interactions)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--k", type=int, default=100, help="neighbours kept per item")
    demo.add_argument("--similarity", default="cosine",
                      choices=["cosine", "bm25", "tfidf", "jaccard", "cooccurrence"])
    demo.add_argument("--threads", type=int, default=0, help="0 = all cores")
    demo.add_argument("--no-progress", action="store_true", help="hide progress bars")

    evaluate = commands.add_parser("evaluate", help="compare algorithms on one train/test split")
    evaluate.add_argument("--algorithms", default="itemknn",
                          help="comma-separated algorithm names (see `backpack plugins`)")
    evaluate.add_argument("--size", choices=["tiny", "small", "default"], default="small",
                          help="synthetic catalogue to evaluate on")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--split", choices=["holdout"], default="holdout",
                          help="per-user random hold-out (time-based splits need timestamps: Python API)")
    evaluate.add_argument("--test-fraction", type=float, default=0.2)
    evaluate.add_argument("--k", type=int, default=10, help="cut-off of the metrics")
    evaluate.add_argument("-p", "--param", action="append", default=[], metavar="ALGO.NAME=VALUE",
                          help="algorithm parameter, e.g. -p itemknn.k=50 (repeatable)")
    evaluate.add_argument("--json", action="store_true", help="machine-readable output")

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
            plugins.report_error(reg.plugin, str(exc) if isinstance(exc, BackpackError) else
                                 f"plugin {reg.plugin!r} exited while configuring command {name!r}")
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
        raise PluginError(f"plugin {reg.plugin!r}: command {name!r} returned {code!r:.80}; "
                          "run(args) must return an int exit code or None") from None


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
            from . import demo

            demo.run(args.size, seed=args.seed, k=args.k, similarity=args.similarity,
                     threads=args.threads, show_progress=not args.no_progress)
        elif args.command == "plugins":
            return _print_plugins(plugins, args.json)
        elif args.command == "evaluate":
            from .evaluate_command import run_evaluate

            return run_evaluate(args, plugins)
        elif hasattr(args, "plugin_command"):
            reg, run = args.plugin_command
            return _exit_code(reg, args.command, call_plugin(reg, f"command {args.command!r}", run, args))
    except BackpackError as exc:
        print(f"backpack: error [{exc.code}]: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("backpack: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
