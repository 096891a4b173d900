"""Adds a 'hello' subcommand."""

from backpack import hookimpl


def configure(parser):
    parser.add_argument("--name", default="world")


def run(args):
    print(f"hello {args.name}")
    return 3


@hookimpl
def register_commands(register):
    register("hello", configure, run, help="say hello")
