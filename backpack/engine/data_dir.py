"""The data directory: one state on disk, whoever touches it (the CLI's commands, the server,
``Engine.save`` / ``Engine.open``).

Layout (format 2)::

    DIR/store.sqlite3               the store, the one source of truth: the interaction log, item and
                                    user descriptions, tokens, jobs, and the record of snapshots
    DIR/snapshots/snapshot-W-T/     derived: the engine as of log position W (bags, times, kinds,
                                    descriptions, content index, every model and which is active;
                                    see backpack.engine.snapshot_files), named by the store's record
    DIR/serve.lock, DIR/server.json while ``backpack serve`` runs here: its lock and its pid and addresses
    DIR/.lock                       the writer lock of CLI commands

The state is the latest *recorded* snapshot, then the stored items, then the
log after the snapshot's watermark. Every change has one commit point, so a
crash at any instant leaves the old state or the new one, never a mixture:

- an import is one store transaction (its interactions, removals, items and
  users; see :meth:`~backpack.store.base.Store.write_batch`); the snapshot
  written after it only makes the next start faster;
- a fit, an embed or a server snapshot writes a new snapshot directory under
  a temporary name, fsyncs it, renames it into place and then records it in
  the store: a snapshot that was never recorded is ignored and deleted later.

While a server serves the directory it holds ``serve.lock``; the CLI's
commands that change the state refuse then (naming the server), and a second
server refuses to start. Reads (recommend, similar, models) work either way
and see what the server stored. A directory written by Backpack 0.1 (format 1:
``state.json`` and ``bags.npz`` at the top) is migrated the first time it is
opened: its files become the first snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import stat
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from backpack.core.files import crash_point
from backpack.core.weights import WEIGHT_RULE, weight_kept
from backpack.engine.snapshot_files import FILES, ModelManifest, NewModel, SnapshotFiles
from backpack.errors import DataDirError, MappingError
from backpack.store.base import Store, default_store_path, open_store

log = logging.getLogger("backpack.engine.data_dir")

FORMAT = 2
SNAPSHOTS = "snapshots"
KEEP_SNAPSHOTS = 2  # the current one and the one before it
_MIGRATED = "-migrated"  # suffix of the snapshot a format-1 directory became
# directories whose writer lock this process holds, with the nesting depth
_held: dict[Path, int] = {}
_held_lock = threading.Lock()

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer at a time is assumed
    fcntl = None


def default_data_dir() -> Path:
    """``$BACKPACK_DATA_DIR``, else the platform's per-user data directory plus ``backpack``."""
    if os.environ.get("BACKPACK_DATA_DIR"):
        return Path(os.environ["BACKPACK_DATA_DIR"]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "backpack"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "backpack"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "backpack"


class DataDir:
    """One data directory. ``create=True`` makes the folder and its store; ``store`` is another
    store to use instead of the directory's SQLite file (the caller keeps closing it)."""

    def __init__(self, path=None, *, create: bool = False, store: Store | None = None, plugins=None):
        self.path = Path(path).expanduser() if path is not None else default_data_dir()
        if self.path.exists() and not self.path.is_dir():
            raise DataDirError(f"data directory {self.path} is a file, not a directory")
        self._store, self._owns_store, self._plugins = store, store is None, plugins
        # a snapshot folder itself (what a server's snapshot reply names; Ray Serve replicas open one):
        # read as it is, never written
        self._snapshot = None
        if self.path.parent.name == SNAPSHOTS and default_store_path(self.path.parent.parent).exists():
            self._snapshot = SnapshotFiles(self.path)
            return
        if create:
            self.path.mkdir(parents=True, exist_ok=True)
            self.store  # noqa: B018 - creates the store: from now on the directory is a data directory
        if (self.path / "state.json").exists():
            self._migrate_format1()

    # -- the store -----------------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        """Whether the directory holds Backpack state (a store)."""
        return self._snapshot is not None or self._store is not None or default_store_path(self.path).exists()

    @property
    def store(self) -> Store:
        """The directory's store (opened on first use)."""
        if self._snapshot is not None:
            raise DataDirError(
                f"{self.path} is a snapshot of the data directory {self.path.parent.parent}, and is only read: "
                "use that directory"
            )
        if self._store is None:
            if not self.path.is_dir():
                self.require()
            self._store = open_store("sqlite", self._plugins, path=default_store_path(self.path))
        return self._store

    def close(self) -> None:
        """Close the store if this object opened it."""
        if self._store is not None and self._owns_store:
            self._store.close()
            self._store = None

    def __enter__(self) -> DataDir:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def require(self) -> None:
        """A :class:`~backpack.errors.DataDirError` saying what to do unless the directory holds Backpack state."""
        if not self.initialised:
            raise DataDirError(
                f"{self.path} holds no Backpack data: import interactions first "
                f"(backpack --data-dir {self.path} import FILE)"
            )

    # -- the state -------------------------------------------------------------------------

    def latest(self) -> SnapshotFiles | None:
        """The current snapshot (the latest the store recorded), or None."""
        if self._snapshot is not None or not self.initialised:
            return self._snapshot
        record = self.store.latest_snapshot()
        return None if record is None else SnapshotFiles(self._resolve(record.path), name=self.path)

    def load_into(self, engine, *, model: str | None = None, load_model: bool = True) -> None:
        """Fill a new ``engine`` with the state: the current snapshot (serving ``model``, a label,
        or the active model), the stored items, then the log after the snapshot's watermark."""
        self.require()
        if self._snapshot is not None:
            self._snapshot.load_into(engine, model=model, load_model=load_model)
            return
        restore_into(engine, self.store, base_dir=self.path, model=model, load_model=load_model)

    def commit_snapshot(
        self, engine, *, model: NewModel | None = None, watermark: int | None = None, keep: int = KEEP_SNAPSHOTS
    ) -> Path:
        """Save ``engine`` as the new current snapshot (with ``model``: the model in service under
        that label; the current snapshot's models are carried on) and record it; the older
        snapshots but one, and any a crash left unrecorded, are deleted. The caller holds the
        writes still (the CLI's writer lock, the server's write lock), so ``watermark`` (default:
        the log's) matches the bags."""
        store = self.store
        watermark = store.watermark() if watermark is None else watermark
        folder = self.path / SNAPSHOTS
        previous = self.latest()
        path = write_snapshot(engine, folder, watermark, carry_models_from=previous, model=model)
        crash_point("snapshot:renamed")
        algorithm = (engine.served_model() or (None,))[0]
        store.record_snapshot(str(path), algorithm, watermark)
        crash_point("snapshot:recorded")
        prune_snapshots(folder, keep, current=path, previous=None if previous is None else previous.path)
        return path

    # -- models --------------------------------------------------------------------------------

    def models(self) -> list[ModelManifest]:
        """Every model of the current snapshot, by label."""
        latest = self.latest()
        return [] if latest is None else latest.models()

    @property
    def active_model(self) -> str | None:
        """The label of the model recommendations use by default, or None."""
        latest = self.latest()
        return None if latest is None else latest.active_model

    def manifest(self, label: str) -> ModelManifest:
        """The manifest of model ``label``."""
        latest = self.latest()
        if latest is None:
            raise DataDirError(f"no model {label!r} in {self.path}: fit one first (backpack fit ALGORITHM)")
        return latest.manifest(label)

    # -- who may write ----------------------------------------------------------------------------

    @contextmanager
    def writing(self, command: str):
        """Hold the writer lock for a CLI ``command`` that changes the state; refused (naming the
        server) while a server serves this directory."""
        if self._snapshot is not None:
            self.store  # noqa: B018 - raises: a snapshot is never written
        with self.locked():
            server = self.running_server()
            if server is not None:
                raise DataDirError(
                    f"`backpack {command}` would change {self.path}, which a running server serves "
                    f"({describe_server(server)}): stop it first (Ctrl-C, or kill -TERM {server.get('pid')}) "
                    "and run the command again, or send the change through the server "
                    "(backpack.serving.client.Client: add_interactions, put_items, ingest, fit)"
                )
            yield

    @contextmanager
    def locked(self):
        """Hold the directory's writer lock (blocks while another process writes; re-entrant
        within this process, where callers nest)."""
        self.path.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        with _held_lock:
            depth = _held.get(key, 0)
            _held[key] = depth + 1
        try:
            if depth or fcntl is None:
                yield
                return
            with open_lock_file(self.path / ".lock") as f:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        finally:
            with _held_lock:
                _held[key] -= 1
                if not _held[key]:
                    del _held[key]

    def running_server(self) -> dict | None:
        """``{"pid", "addresses", "started"}`` of the server serving this directory, or None."""
        lock = self.path / "serve.lock"
        if fcntl is None or not lock.exists():
            return None
        with open_lock_file(lock) as f:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                pass  # held: a server is running
            else:
                fcntl.flock(f.fileno(), fcntl.LOCK_UN)
                return None
        try:
            return json.loads((self.path / "server.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"pid": None, "addresses": []}  # it is starting and has not announced itself yet

    def serve(self) -> ServeLock:
        """Claim the directory for a server (released by :meth:`ServeLock.release`); a
        :class:`~backpack.errors.DataDirError` naming the server that already has it."""
        return ServeLock(self)

    # -- paths ---------------------------------------------------------------------------------------

    def _resolve(self, recorded: str) -> Path:
        return self._resolve_in(self.path, recorded)

    @staticmethod
    def _resolve_in(base: Path, recorded: str) -> Path:
        path = Path(recorded)
        if not path.is_absolute():
            path = base / path
        moved = base / SNAPSHOTS / path.name  # the directory was moved or copied, or the path was relative
        return moved if not path.exists() and moved.exists() else path  # to a server's working directory

    # -- format 1 -------------------------------------------------------------------------------------

    def _migrate_format1(self) -> None:
        """A format-1 directory (the CLI's files at the top level) becomes format 2: its files become
        the current snapshot at log position 0, so the state is what the CLI last wrote plus every
        write a server logged (format 1's server started from the CLI's files and logged its writes,
        and its own snapshots never reached the CLI: the union is the one state both meant). Models a
        server fitted live only in its snapshots, whose item order differs; they are left out, with a
        warning to refit."""
        with self.locked():
            top = self.path / "state.json"
            if not top.exists():
                return  # another process migrated it meanwhile
            try:
                found = json.loads(top.read_text(encoding="utf-8")).get("format")
            except (OSError, ValueError) as exc:
                raise DataDirError(f"{top} is unreadable ({exc}); restore it or start a new data directory") from exc
            if found != 1:
                raise DataDirError(f"{self.path} has data format {found!r}; this version of Backpack reads 1 and 2")
            names = [n for n in (*FILES, "models") if (self.path / n).exists()]
            latest = self.store.latest_snapshot()
            if latest is None or not latest.path.endswith(_MIGRATED):  # else: a crash came after recording
                if latest is not None and latest.algorithm is not None:
                    log.warning(
                        "%s: the %r model a server fitted here is not carried into data format 2; refit it "
                        "(backpack fit %s)",
                        self.path,
                        latest.algorithm,
                        latest.algorithm,
                    )
                folder = self.path / SNAPSHOTS
                folder.mkdir(exist_ok=True)
                final = folder / f"snapshot-{0:012d}-{time.time_ns()}{_MIGRATED}"
                tmp = folder / f".tmp-{final.name}"
                tmp.mkdir()
                for name in names:
                    _link_tree(self.path / name, tmp / name)
                _fsync_tree(tmp)
                os.rename(tmp, final)
                _fsync(folder)
                migrated = SnapshotFiles(final, name=self.path)
                active = migrated.active_model
                self.store.record_snapshot(str(final), active and migrated.manifest(active).algorithm, 0)
                log.warning("migrated %s from data format 1 to 2: its files are now snapshot %s", self.path, final.name)
                crash_point("migrate:recorded")
            for name in names:  # state.json last: while it exists, the migration is not over
                if name != "state.json":
                    _remove(self.path / name)
            top.unlink()


class ServeLock:
    """A server's claim on a data directory: an exclusive lock on ``serve.lock`` held while it
    runs, and ``server.json`` saying who holds it (pid, addresses)."""

    def __init__(self, data: DataDir):
        self.data = data
        data.path.mkdir(parents=True, exist_ok=True)
        self._file = open_lock_file(data.path / "serve.lock")  # held until release()
        if fcntl is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                self._file.close()
                server = data.running_server() or {}
                raise DataDirError(
                    f"{data.path} is already served ({describe_server(server)}): stop that server first, "
                    "or serve another data directory (--data-dir)"
                ) from None
        self.announce([])

    def announce(self, addresses: list[str]) -> None:
        """Write ``server.json``: this process and where it listens."""
        info = {"pid": os.getpid(), "addresses": addresses, "started": time.time()}
        tmp = self.data.path / f".server.json.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(info), encoding="utf-8")
        os.replace(tmp, self.data.path / "server.json")

    def release(self) -> None:
        """Give the directory back (idempotent)."""
        if self._file.closed:
            return
        (self.data.path / "server.json").unlink(missing_ok=True)
        self._file.close()  # closing drops the lock


def open_lock_file(path: Path):
    """``path`` opened to be flocked: created 0600, never through a symlink, refused unless it is
    this user's own regular file. A lock file others can open is a lock others can hold (flock
    needs only a read-only descriptor), blocking every write of the directory's owner."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o600)
    except OSError as exc:
        raise DataDirError(f"cannot open the lock file {path}: {exc} (a symlink there is refused)") from exc
    info = os.fstat(fd)
    if hasattr(os, "getuid") and (info.st_uid != os.getuid() or not stat.S_ISREG(info.st_mode)):
        os.close(fd)
        raise DataDirError(
            f"the lock file {path} is not a regular file owned by you (uid {info.st_uid}): another user could hold "
            "it and block every write here; remove it"
        )
    if info.st_mode & 0o077:
        os.fchmod(fd, 0o600)  # made 0644 by an older version
    return os.fdopen(fd, "r+b")


def describe_server(server: dict) -> str:
    """``pid 1234, listening on 127.0.0.1:8765`` from a ``server.json``."""
    where = ", ".join(server.get("addresses") or []) or "address not yet announced"
    return f"pid {server.get('pid', '?')}, listening on {where}"


# -- snapshots ------------------------------------------------------------------------------------------


def restore_into(engine, store: Store, *, base_dir=None, model: str | None = None, load_model: bool = True) -> None:
    """Fill a new ``engine`` as the store last knew it: the latest snapshot (relative paths are
    under ``base_dir``), the stored item descriptions, then every log entry after the snapshot's
    watermark, in order."""
    record = store.latest_snapshot()
    watermark = 0
    if record is not None:
        path = Path(record.path)
        if base_dir is not None:
            path = DataDir._resolve_in(Path(base_dir), record.path)
        SnapshotFiles(path, name=base_dir or path).load_into(engine, model=model, load_model=load_model)
        watermark = record.watermark
    elif model is not None and load_model:
        raise DataDirError(f"no model {model!r} in {base_dir or 'the store'}: fit one first (backpack fit ALGORITHM)")
    for batch in store.iter_items():
        engine.put_items([node for _, node in batch], expanded=True)  # stored expanded
    for batch in store.iter_users():
        _put_users(engine, batch)
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


def _put_users(engine, batch: list[tuple[str, dict]]) -> None:
    """Stored user descriptions back into the engine; one the mapper refuses (a store may hold a
    bare ``{}`` for a user it knows only by id) is skipped, never a reason for a start to fail."""
    try:
        engine.put_users([node for _, node in batch], expanded=True)
    except MappingError:
        for user, node in batch:
            try:
                engine.put_users([node], expanded=True)
            except MappingError as exc:
                log.info("user %r has no description the engine can hold (%s): kept in the store only", user, exc)


def _replay_adds(engine, entries: list) -> None:
    if not entries:
        return
    kept = [e for e in entries if weight_kept(e.weight)]
    for e in entries:
        if not weight_kept(e.weight):
            # quarantined, not fatal: one stored row must never make every restart fail
            log.warning(
                "log entry %d (user %r, item %r, weight %r) skipped: the engine refuses it (%s); "
                "it stays in the log, counted by the store's check() and the server's stats",
                e.seq,
                e.user,
                e.item,
                e.weight,
                WEIGHT_RULE,
            )
    if not kept:
        return
    times = [e.timestamp for e in kept]
    engine.add_interactions(
        [e.user for e in kept],
        [e.item for e in kept],
        [e.weight for e in kept],
        timestamps=None if all(t is None for t in times) else times,
    )


def write_snapshot(
    engine,
    directory: Path,
    watermark: int,
    *,
    carry_models_from: SnapshotFiles | None = None,
    model: NewModel | None = None,
) -> Path:
    """The engine saved into a fresh snapshot directory under ``directory``, made visible by one
    rename (temporary directory, every file fsynced, rename, parent fsynced)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / f"snapshot-{watermark:012d}-{time.time_ns()}"
    tmp = directory / f".tmp-{final.name}"
    SnapshotFiles(tmp).write(engine, carry_models_from=carry_models_from, model=model)
    _fsync_tree(tmp)
    crash_point("snapshot:written")
    os.rename(tmp, final)
    _fsync(directory)
    return final


def prune_snapshots(
    directory: Path, keep: int, *, current: Path | None = None, previous: Path | None = None
) -> list[Path]:
    """Delete all but ``keep`` snapshots under ``directory`` and any ``.tmp-`` a crash left; call it
    where no snapshot is being written. Kept: ``current`` (the one just recorded) and ``previous``
    (the one recorded before it), then the newest older ones; without them, the newest ``keep``.
    Folders that are neither, newer than ``previous``, are leftovers of a crash before recording.
    Returns the paths deleted."""
    snapshots = sorted(directory.glob("snapshot-*"))  # zero-padded watermark, then nanoseconds: oldest first
    if current is None:
        kept = set(snapshots[-keep:]) if keep > 0 else set()
    else:
        recorded = [p for p in (current, previous) if p is not None][:keep]
        oldest = min(recorded)
        older = [p for p in snapshots if p < oldest][-max(0, keep - len(recorded)) :] if keep > len(recorded) else []
        kept = {*recorded, *older}
    doomed = [p for p in snapshots if p not in kept] + list(directory.glob(".tmp-snapshot-*"))
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def _link_tree(source: Path, target: Path) -> None:
    if source.is_dir():
        target.mkdir()
        for child in source.iterdir():
            _link_tree(child, target / child.name)
        return
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _fsync_tree(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            _fsync(path)
    _fsync(root)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
