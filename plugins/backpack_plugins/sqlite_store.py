"""Built-in plugin: the SQLite store (WAL, durable writes), Backpack's embedded default."""

from backpack.hookspecs import hookimpl
from backpack.sqlite_store import SQLiteStore


@hookimpl
def register_stores(register):
    register("sqlite", SQLiteStore,
             description="one SQLite file in WAL mode (path=...); every write durable when the call returns")
