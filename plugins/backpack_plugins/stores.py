"""Built-in stores: SQLite, the embedded default, and PostgreSQL / CockroachDB (extra ``backpack[postgres]``)."""

from backpack.hookspecs import hookimpl
from backpack.store.postgres import PostgresStore
from backpack.store.sqlite import SQLiteStore


@hookimpl
def register_stores(register):
    register(
        "sqlite",
        SQLiteStore,
        description="one SQLite file in WAL mode (path=...); every write durable when the call returns",
    )
    register(
        "postgres",
        PostgresStore,
        description="PostgreSQL or CockroachDB (dsn=...), pooled connections; every write one committed "
        "transaction (needs backpack-engine[postgres])",
    )
