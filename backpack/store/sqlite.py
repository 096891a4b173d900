"""The built-in store: one SQLite file in WAL mode (see ``docs/store.md``).

Durability: every write is one transaction committed with ``synchronous=FULL``,
so the WAL is fsynced before the call returns and an acknowledged write
survives a crash of the process (and of the machine, as far as the disk keeps
its promises).

Threads: each thread gets its own connection. WAL lets readers run while one
writer commits, which one shared connection behind a lock would not (a
``recommend`` reading an item would wait on an fsync); writers queue on
SQLite's own lock with a busy timeout, which also orders writers in other
processes. A thread's connection is closed when the thread ends (or at
``close()``), so short-lived threads do not pile up open files. Every write starts with
``BEGIN IMMEDIATE`` so the write lock is
taken up front: a read-then-write (claiming a job) cannot be overtaken
between its read and its write, and never fails half-way with "database is
locked" when upgrading a read lock.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from backpack.errors import InvalidInputError, StoreError
from backpack.store.base import JOB_STATES, Job
from backpack.store.sql import REFUSED_ADD, SQLStore, apply_migrations

# Each step moves the schema from version i to i + 1 (PRAGMA user_version). A
# new store runs them all, so every step is exercised on every new file; an
# older file runs the ones it lacks. Steps are only ever appended.
MIGRATIONS: list[tuple[str, ...]] = [
    # 1: users, items, the interaction log, snapshots
    (
        "CREATE TABLE users (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
        "CREATE TABLE items (id TEXT PRIMARY KEY, doc TEXT NOT NULL)",
        # AUTOINCREMENT: a seq is never handed out twice, even after the last rows were deleted
        "CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
        " op TEXT NOT NULL CHECK (op IN ('add', 'remove')), user TEXT NOT NULL, item TEXT NOT NULL,"
        " weight REAL, timestamp REAL)",
        "CREATE TABLE snapshots (id INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL, algorithm TEXT,"
        " watermark INTEGER NOT NULL, created REAL NOT NULL)",
    ),
    # 2: access tokens and background jobs
    (
        "CREATE TABLE tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL,"
        " role TEXT NOT NULL CHECK (role IN ('admin', 'service', 'user')), user TEXT,"
        " label TEXT NOT NULL DEFAULT '', created REAL NOT NULL, revoked INTEGER NOT NULL DEFAULT 0)",
        "CREATE TABLE jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, kind TEXT NOT NULL, args TEXT NOT NULL,"
        " state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, max_attempts INTEGER NOT NULL,"
        " run_at REAL NOT NULL, progress REAL NOT NULL DEFAULT 0, result TEXT, error TEXT,"
        " created REAL NOT NULL, updated REAL NOT NULL)",
        # claim_job looks for the earliest runnable job of a state
        "CREATE INDEX jobs_runnable ON jobs (state, run_at)",
    ),
]
SCHEMA_VERSION = len(MIGRATIONS)


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the C class cannot), so the store's list of
    connections does not keep a finished thread's connection open."""


class SQLiteStore(SQLStore):
    """The :class:`~backpack.store.base.Store` in one SQLite file (created with mode 0600: it holds token hashes).

    ``backoff_base`` and ``backoff_cap`` (seconds) shape the wait before a failed job is retried:
    ``min(backoff_base * 2 ** (attempts - 1), backoff_cap)``. ``clock`` gives the time (seconds since
    the epoch) used for job scheduling and records; tests pass a fake one.
    """

    def __init__(
        self,
        path,
        *,
        backoff_base: float = 1.0,
        backoff_cap: float = 3600.0,
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ):
        super().__init__(backoff_base=backoff_base, backoff_cap=backoff_cap, clock=clock)
        self.path = Path(path).expanduser()
        self.busy_timeout = float(busy_timeout)
        self._local = threading.local()
        # every thread's connection, for close(); weak, so a thread's connection closes when the thread ends
        self._connections: weakref.WeakSet[_Connection] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._closed = False
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Created before SQLite opens it so it is never readable by others, not even
            # for a moment; SQLite gives the -wal and -shm files the same mode.
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise StoreError(f"cannot create the store at {self.path}: {exc}") from exc
        self._migrate()

    # -- connections and transactions -----------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._closed:
            raise StoreError(f"the store at {self.path} is closed")
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE themselves.
                # check_same_thread=False only so close() may close every thread's connection.
                conn = sqlite3.connect(
                    self.path,
                    timeout=self.busy_timeout,
                    isolation_level=None,
                    check_same_thread=False,
                    factory=_Connection,
                )
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout * 1000)}")
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = FULL")
                conn.execute("PRAGMA foreign_keys = ON")  # enforced for any REFERENCES a migration adds
            except sqlite3.Error as exc:
                raise StoreError(f"cannot open the store at {self.path}: {exc}") from exc
            with self._lock:
                self._connections.add(conn)
            self._local.conn = conn
        return conn

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding the write lock from its start; committed (durably) on exit."""
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: cannot start a write: {exc}") from exc
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException as exc:
            if conn.in_transaction:  # a failed COMMIT may already have ended it
                conn.execute("ROLLBACK")
            if isinstance(exc, sqlite3.Error):
                raise StoreError(f"store {self.path}: write failed: {exc}") from exc
            raise

    def _transaction(self, work):
        with self._write() as conn:
            return work(conn)

    def _reading(self, work):
        try:
            return work(self._connection())
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: read failed: {exc}") from exc

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if apply_migrations(conn, version, MIGRATIONS, holder=f"{self.path} has"):
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")  # in the same transaction as the steps

    def schema_version(self) -> int:
        """The schema version of the open file (``PRAGMA user_version``)."""
        return self._read("PRAGMA user_version")[0][0]

    def close(self) -> None:
        """Close every thread's connection; further calls raise :class:`StoreError`."""
        with self._lock:
            self._closed = True
            for conn in list(self._connections):
                conn.close()

    def check(self, *, full: bool = False) -> list[str]:
        """Consistency problems: SQLite's ``quick_check`` (``integrity_check`` when ``full``), then
        the rules the schema cannot express. Empty when the store is intact."""
        problems = [
            f"sqlite: {row[0]}"
            for row in self._read(f"PRAGMA {'integrity' if full else 'quick'}_check")
            if row[0] != "ok"
        ]
        if self.schema_version() != SCHEMA_VERSION:
            problems.append(f"schema version {self.schema_version()}, expected {SCHEMA_VERSION}")
        rules = [
            ("log entries with an unknown op", "SELECT count(*) FROM log WHERE op NOT IN ('add', 'remove')"),
            # quarantined rows: kept, skipped by replay (also 0 or inf as float32, or above MAX_WEIGHT)
            (
                "log adds without a finite weight, or one the engine refuses (skipped on restore)",
                f"SELECT count(*) FROM log WHERE {REFUSED_ADD}",
            ),
            ("log removals with a weight", "SELECT count(*) FROM log WHERE op = 'remove' AND weight IS NOT NULL"),
            # a seq counter behind the log would hand out an existing seq again
            (
                "log seqs at or past the seq counter",
                "SELECT count(*) FROM log WHERE seq > "
                "(SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'log')",
            ),
            (
                "snapshots past the end of the log",
                "SELECT count(*) FROM snapshots WHERE watermark > (SELECT coalesce(max(seq), 0) FROM log)",
            ),
            (
                "jobs in an unknown state",
                f"SELECT count(*) FROM jobs WHERE state NOT IN ({', '.join(repr(s) for s in JOB_STATES)})",
            ),
            ("jobs with more attempts than allowed", "SELECT count(*) FROM jobs WHERE attempts > max_attempts"),
            ("jobs with progress outside 0..1", "SELECT count(*) FROM jobs WHERE progress < 0 OR progress > 1"),
            (
                "tokens whose user does not fit their role",
                "SELECT count(*) FROM tokens WHERE (role = 'user') != (user IS NOT NULL)",
            ),
            ("users that are not JSON", "SELECT count(*) FROM users WHERE NOT json_valid(doc)"),
            ("items that are not JSON", "SELECT count(*) FROM items WHERE NOT json_valid(doc)"),
        ]
        for what, sql in rules:
            count = self._read(sql)[0][0]
            if count:
                problems.append(f"{count} {what}")
        return problems

    # -- interaction log ------------------------------------------------------------

    def _append_rows(self, conn, rows: list[tuple]) -> int:
        conn.executemany("INSERT INTO log (op, user, item, weight, timestamp) VALUES (?, ?, ?, ?, ?)", rows)
        # inside the transaction no other writer can have appended since
        return conn.execute("SELECT max(seq) FROM log").fetchone()[0]

    # -- jobs ---------------------------------------------------------------------------

    def _claim(self, kinds: Sequence[str] | None) -> Job | None:
        kinds_sql = "" if kinds is None else f" AND kind IN ({_marks(kinds)})"
        with self._write() as conn:  # BEGIN IMMEDIATE: no other claimer can read the same row in between
            now = self.clock()
            row = conn.execute(
                f"SELECT id FROM jobs WHERE state IN ('available', 'retryable') AND run_at <= ?"
                f"{kinds_sql} ORDER BY run_at, id LIMIT 1",
                (now, *(kinds or ())),
            ).fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE jobs SET state = 'executing', attempts = attempts + 1, progress = 0, updated = ? WHERE id = ?",
                (now, row[0]),
            )
            return self._job(conn, row[0])

    # -- dialect details (see backpack.store.sql) ---------------------------------------

    def _upsert_doc_sql(self, table: str) -> str:
        return f"INSERT OR REPLACE INTO {table} (id, doc) VALUES (?, ?)"

    def _insert_id(self, cur: sqlite3.Connection, sql: str, params: Sequence) -> int:
        # lastrowid rather than RETURNING, which needs SQLite 3.35
        return self._execute(cur, sql, params).lastrowid

    def _one_of(self, values: Sequence) -> tuple[str, tuple]:
        return f"IN ({_marks(values)})", tuple(values)

    def _encode_doc(self, doc: dict, what: str) -> str:
        # key order kept as given (get_user/get_item return it so); NaN is valid in a TEXT column
        return json.dumps(doc, ensure_ascii=False)

    def _encode_job_args(self, args: dict) -> str:
        # sorted keys, so equal arguments are equal strings (enqueue_job_once compares them in SQL)
        try:
            return json.dumps(args, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"job args must be JSON-serialisable: {exc}") from None

    def _encode_result(self, result: dict) -> str:
        try:
            return json.dumps(result, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"a job result must be JSON-serialisable: {exc}") from None

    def _decode_json(self, value):
        return json.loads(value)


def _marks(values: Sequence) -> str:
    return ", ".join("?" * len(values))
