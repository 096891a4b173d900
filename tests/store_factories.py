"""The stores the shared store tests run against: ``factory(directory, **options) -> Store``.

A new store (a server database) adds its factory here and must pass
``tests/test_store.py`` and ``tests/test_jobs.py`` unchanged. ``options`` are
the ones every store takes: ``backoff_base``, ``backoff_cap`` and ``clock``.
"""

from backpack.sqlite_store import SQLiteStore


def sqlite_store(directory, **options):
    return SQLiteStore(directory / "store.sqlite3", **options)


STORE_FACTORIES = {"sqlite": sqlite_store}


class FakeClock:
    """A clock that moves only when told (``clock.now += 5``), for back-off and schedules."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
