"""An engine restored from a store: what a server starts from (see :mod:`backpack.engine.data_dir`)."""

from __future__ import annotations

from backpack.engine.data_dir import restore_into
from backpack.engine.engine import Engine
from backpack.store.base import Store


def restore_engine(store: Store, *, plugins=None, num_threads: int = 0, base_dir=None) -> Engine:
    """An engine as the store last knew it: the latest snapshot, the stored item descriptions,
    then every log entry after the snapshot's watermark, in order (``base_dir``: the data
    directory the snapshots belong to, for recorded paths that moved with it)."""
    engine = Engine(plugins=plugins, num_threads=num_threads)
    restore_into(engine, store, base_dir=base_dir)
    return engine
