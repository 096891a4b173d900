"""A plugin whose registration hook and event observer call sys.exit."""

import sys

from backpack import hookimpl


@hookimpl
def register_algorithms(register):
    sys.exit(4)


@hookimpl
def interactions_recorded(users):
    sys.exit("observer quits")
