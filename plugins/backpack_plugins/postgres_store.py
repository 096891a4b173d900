"""Built-in plugin: the PostgreSQL / CockroachDB store (needs ``pip install 'backpack-engine[postgres]'``)."""

from backpack.hookspecs import hookimpl
from backpack.postgres_store import PostgresStore


@hookimpl
def register_stores(register):
    register("postgres", PostgresStore,
             description="PostgreSQL or CockroachDB (dsn=...), pooled connections; every write one committed "
                         "transaction (needs backpack-engine[postgres])")
