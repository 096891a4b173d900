"""A command whose configure(parser) raises: it must not take the other commands down."""

from backpack import hookimpl


def configure(parser):
    parser.add_argument("--name")
    parser.add_argument("--name")  # argparse refuses the duplicate


@hookimpl
def register_commands(register):
    register("broken", configure, lambda args: 0, help="never available")
