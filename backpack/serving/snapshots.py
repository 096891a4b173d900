"""Snapshots: an engine saved atomically under the data directory, recorded in the store, and an
engine restored from the latest one plus the log after its watermark."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from backpack.engine.engine import Engine
from backpack.store.base import Store


def restore_engine(store: Store, *, plugins=None, num_threads: int = 0, base_dir=None) -> Engine:
    """An engine as the store last knew it: the latest snapshot, the stored item descriptions,
    then every log entry after the snapshot's watermark, in order.

    Without a snapshot the starting point is the data directory ``base_dir`` as the CLI left it
    (``backpack import`` / ``backpack fit``: state the log never held), or an empty engine.
    """
    from backpack.engine.data_dir import DataDir

    snapshot = store.latest_snapshot()
    if snapshot is not None:
        engine = Engine.open(snapshot.path, plugins=plugins, num_threads=num_threads)
        watermark = snapshot.watermark
    elif base_dir is not None and DataDir(base_dir).initialised:
        engine, watermark = Engine.open(base_dir, plugins=plugins, num_threads=num_threads), 0
    else:
        engine, watermark = Engine(plugins=plugins, num_threads=num_threads), 0
    for batch in store.iter_items():
        engine.put_items([node for _, node in batch], expanded=True)  # stored expanded
    for batch in store.log_since(watermark):
        adds: list = []
        for entry in batch:
            if entry.op == "add":
                adds.append(entry)
                continue
            _replay_adds(engine, adds)
            adds = []
            engine.remove_interaction(entry.user, entry.item)
        _replay_adds(engine, adds)
    return engine


def _replay_adds(engine: Engine, entries: list) -> None:
    if not entries:
        return
    times = [e.timestamp for e in entries]
    engine.add_interactions(
        [e.user for e in entries],
        [e.item for e in entries],
        [e.weight for e in entries],
        timestamps=None if all(t is None for t in times) else times,
    )


def write_snapshot(engine: Engine, directory: Path, watermark: int) -> Path:
    """``engine.save`` into a fresh directory under ``directory``, made visible by one rename
    (temporary directory, every file fsynced, rename, parent fsynced)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"snapshot-{watermark:012d}-{time.time_ns()}"
    tmp = directory / f".tmp-{final.name}"
    engine.save(tmp)
    for path in tmp.rglob("*"):
        if path.is_file():
            _fsync(path)
    _fsync(tmp)
    os.rename(tmp, final)
    _fsync(directory)
    return final


def prune_snapshots(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` snapshots under ``directory`` and any ``.tmp-`` left by a
    crash mid-snapshot (call it where no snapshot is being written); the paths deleted."""
    snapshots = sorted(directory.glob("snapshot-*"))  # zero-padded watermark, then nanoseconds: oldest first
    doomed = snapshots[: max(0, len(snapshots) - keep)] + list(directory.glob(".tmp-snapshot-*"))
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
