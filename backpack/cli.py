"""The ``backpack`` command."""

from __future__ import annotations

import argparse
import sys

from . import __version__
from .errors import BackpackError


def _parser() -> argparse.ArgumentParser:
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
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "demo":
            from . import demo

            demo.run(args.size, seed=args.seed, k=args.k, similarity=args.similarity,
                     threads=args.threads, show_progress=not args.no_progress)
    except BackpackError as exc:
        print(f"backpack: error [{exc.code}]: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("backpack: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
