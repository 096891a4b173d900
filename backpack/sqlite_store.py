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
``close()``), so short-lived threads do not pile up open files. Every write starts with ``BEGIN IMMEDIATE`` so the write lock is
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
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Sequence

from .errors import InvalidInputError
from .importing import finite_number
from .store import (JOB_STATES, UNFINISHED_JOB_STATES, Job, LogEntry, SnapshotRecord, Store,
                    StoreError, TokenRecord, UnknownJobError, check_id, check_job_state, new_token, parse_secret,
                    require_executing, retry_at, same_length, secret_matches)

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

_JOB_COLUMNS = ("id, kind, args, state, attempts, max_attempts, run_at, progress, result, error, created, updated")


def _job_args(args: dict | None) -> str:
    """Job arguments as JSON with sorted keys, so equal arguments are equal strings
    (enqueue_job_once compares them in SQL)."""
    if args is not None and not isinstance(args, dict):
        raise InvalidInputError(f"job args must be a dict, got {type(args).__name__}")
    try:
        return json.dumps(args or {}, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"job args must be JSON-serialisable: {exc}") from None


class _Connection(sqlite3.Connection):
    """A connection that can be weakly referenced (the C class cannot), so the store's list of
    connections does not keep a finished thread's connection open."""


class SQLiteStore(Store):
    """The :class:`~backpack.store.Store` in one SQLite file (created with mode 0600: it holds token hashes).

    ``backoff_base`` and ``backoff_cap`` (seconds) shape the wait before a failed job is retried:
    ``min(backoff_base * 2 ** (attempts - 1), backoff_cap)``. ``clock`` gives the time (seconds since
    the epoch) used for job scheduling and records; tests pass a fake one.
    """

    def __init__(self, path, *, backoff_base: float = 1.0, backoff_cap: float = 3600.0,
                 busy_timeout: float = 30.0, clock: Callable[[], float] = time.time):
        if backoff_base < 0 or backoff_cap < 0:
            raise InvalidInputError("backoff_base and backoff_cap must be >= 0 seconds")
        self.path = Path(path).expanduser()
        self.backoff_base, self.backoff_cap = float(backoff_base), float(backoff_cap)
        self.busy_timeout, self.clock = float(busy_timeout), clock
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
                conn = sqlite3.connect(self.path, timeout=self.busy_timeout, isolation_level=None,
                                       check_same_thread=False, factory=_Connection)
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

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        try:
            return self._connection().execute(sql, params).fetchall()
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: read failed: {exc}") from exc

    def _migrate(self) -> None:
        with self._write() as conn:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"{self.path} has schema version {version}, newer than this Backpack "
                                 f"understands ({SCHEMA_VERSION}): upgrade Backpack")
            for steps in MIGRATIONS[version:]:
                for sql in steps:
                    conn.execute(sql)
            if version != SCHEMA_VERSION:
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
        problems = [f"sqlite: {row[0]}" for row in self._read(f"PRAGMA {'integrity' if full else 'quick'}_check")
                    if row[0] != "ok"]
        if self.schema_version() != SCHEMA_VERSION:
            problems.append(f"schema version {self.schema_version()}, expected {SCHEMA_VERSION}")
        rules = [
            ("log entries with an unknown op", "SELECT count(*) FROM log WHERE op NOT IN ('add', 'remove')"),
            ("log adds without a finite weight", "SELECT count(*) FROM log WHERE op = 'add' AND "
             "(weight IS NULL OR weight != weight OR abs(weight) > 1.7e308)"),
            ("log removals with a weight", "SELECT count(*) FROM log WHERE op = 'remove' AND weight IS NOT NULL"),
            # a seq counter behind the log would hand out an existing seq again
            ("log seqs at or past the seq counter", "SELECT count(*) FROM log WHERE seq > "
             "(SELECT coalesce(max(seq), 0) FROM sqlite_sequence WHERE name = 'log')"),
            ("snapshots past the end of the log", "SELECT count(*) FROM snapshots WHERE watermark > "
             "(SELECT coalesce(max(seq), 0) FROM log)"),
            ("jobs in an unknown state", "SELECT count(*) FROM jobs WHERE state NOT IN "
             f"({', '.join(repr(s) for s in JOB_STATES)})"),
            ("jobs with more attempts than allowed", "SELECT count(*) FROM jobs WHERE attempts > max_attempts"),
            ("jobs with progress outside 0..1", "SELECT count(*) FROM jobs WHERE progress < 0 OR progress > 1"),
            ("tokens whose user does not fit their role", "SELECT count(*) FROM tokens WHERE "
             "(role = 'user') != (user IS NOT NULL)"),
            ("users that are not JSON", "SELECT count(*) FROM users WHERE NOT json_valid(doc)"),
            ("items that are not JSON", "SELECT count(*) FROM items WHERE NOT json_valid(doc)"),
        ]
        for what, sql in rules:
            count = self._read(sql)[0][0]
            if count:
                problems.append(f"{count} {what}")
        return problems

    # -- interaction log -----------------------------------------------------------

    def append_interactions(self, users: Sequence[str], items: Sequence[str], weights: Sequence[float],
                            timestamps: Sequence[float | None] | None = None) -> int:
        n = same_length(users=users, items=items, weights=weights,
                        **({} if timestamps is None else {"timestamps": timestamps}))
        rows = [("add", check_id("user", u), check_id("item", i), finite_number(w, "weight"),
                 None if timestamps is None or timestamps[k] is None else finite_number(timestamps[k], "timestamp"))
                for k, (u, i, w) in enumerate(zip(users, items, weights))]
        return self._append(rows) if n else self.watermark()

    def append_removals(self, users: Sequence[str], items: Sequence[str]) -> int:
        n = same_length(users=users, items=items)
        rows = [("remove", check_id("user", u), check_id("item", i), None, None) for u, i in zip(users, items)]
        return self._append(rows) if n else self.watermark()

    def _append(self, rows: list[tuple]) -> int:
        with self._write() as conn:
            conn.executemany("INSERT INTO log (op, user, item, weight, timestamp) VALUES (?, ?, ?, ?, ?)", rows)
            # inside the transaction no other writer can have appended since
            return conn.execute("SELECT max(seq) FROM log").fetchone()[0]

    def log_since(self, watermark: int, *, batch_size: int = 100_000) -> Iterator[list[LogEntry]]:
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        # Keyset pages, each its own short read: no read transaction stays open while the
        # caller works on a batch, so writers and WAL checkpoints are never held up.
        last = int(watermark)
        while True:
            rows = self._read("SELECT seq, op, user, item, weight, timestamp FROM log WHERE seq > ? "
                              "ORDER BY seq LIMIT ?", (last, batch_size))
            if not rows:
                return
            yield [LogEntry(*row) for row in rows]
            last = rows[-1][0]

    def watermark(self) -> int:
        return self._read("SELECT coalesce(max(seq), 0) FROM log")[0][0]

    # -- users and items -----------------------------------------------------------

    def put_users(self, users: dict[str, dict]) -> None:
        self._put("users", "user", users)

    def get_user(self, user: str) -> dict | None:
        return self._get("users", user)

    def put_items(self, items: dict[str, dict]) -> None:
        self._put("items", "item", items)

    def get_item(self, item: str) -> dict | None:
        return self._get("items", item)

    def _put(self, table: str, what: str, docs: dict[str, dict]) -> None:
        rows = []
        for key, doc in docs.items():
            if not isinstance(doc, dict):
                raise InvalidInputError(f"{what} {key!r}: the description must be a JSON object (dict)")
            rows.append((check_id(what, key), json.dumps(doc, ensure_ascii=False)))
        with self._write() as conn:
            conn.executemany(f"INSERT OR REPLACE INTO {table} (id, doc) VALUES (?, ?)", rows)

    def _get(self, table: str, key: str) -> dict | None:
        rows = self._read(f"SELECT doc FROM {table} WHERE id = ?", (key,))
        return json.loads(rows[0][0]) if rows else None

    def iter_items(self, *, batch_size: int = 10_000) -> Iterator[list[tuple[str, dict]]]:
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        last = None
        while True:
            rows = self._read("SELECT id, doc FROM items" + (" WHERE id > ?" if last is not None else "")
                              + " ORDER BY id LIMIT ?", (() if last is None else (last,)) + (batch_size,))
            if not rows:
                return
            yield [(key, json.loads(doc)) for key, doc in rows]
            last = rows[-1][0]

    def counts(self) -> dict[str, int]:
        return {table: self._read(f"SELECT count(*) FROM {table}")[0][0]
                for table in ("users", "items", "log", "jobs", "tokens", "snapshots")}

    # -- snapshots -------------------------------------------------------------------

    def record_snapshot(self, path: str, algorithm: str | None, watermark: int) -> SnapshotRecord:
        if int(watermark) < 0:
            raise InvalidInputError(f"a snapshot watermark is a log seq (>= 0), got {watermark}")
        created = self.clock()
        with self._write() as conn:
            # a snapshot claiming seqs nobody wrote would make the replay after it skip real writes
            written = conn.execute("SELECT coalesce(max(seq), 0) FROM log").fetchone()[0]
            if int(watermark) > written:
                raise InvalidInputError(f"snapshot watermark {watermark} is past the end of the log ({written})")
            cursor = conn.execute("INSERT INTO snapshots (path, algorithm, watermark, created) VALUES (?, ?, ?, ?)",
                                  (str(path), algorithm, int(watermark), created))
        return SnapshotRecord(cursor.lastrowid, str(path), algorithm, int(watermark), created)

    def latest_snapshot(self) -> SnapshotRecord | None:
        rows = self._read("SELECT id, path, algorithm, watermark, created FROM snapshots ORDER BY id DESC LIMIT 1")
        return SnapshotRecord(*rows[0]) if rows else None

    # -- tokens ------------------------------------------------------------------------

    def create_token(self, role: str, user: str | None = None, *, label: str = "") -> tuple[TokenRecord, str]:
        record, secret, hashed = new_token(role, user, label, self.clock())
        with self._write() as conn:
            conn.execute("INSERT INTO tokens (id, hash, role, user, label, created) VALUES (?, ?, ?, ?, ?, ?)",
                         (record.id, hashed, role, user, record.label, record.created))
        return record, secret

    def verify_token(self, secret: str) -> TokenRecord | None:
        parsed = parse_secret(secret)
        if parsed is None:
            return None
        rows = self._read("SELECT hash, id, role, user, created, revoked, label FROM tokens WHERE id = ?",
                          (parsed[0],))
        if not secret_matches(secret, rows[0][0] if rows else None) or not rows:
            return None
        record = _token(rows[0][1:])
        return None if record.revoked else record

    def revoke_token(self, token_id: str) -> bool:
        with self._write() as conn:
            return conn.execute("UPDATE tokens SET revoked = 1 WHERE id = ?", (token_id,)).rowcount > 0

    def list_tokens(self) -> list[TokenRecord]:
        return [_token(row) for row in
                self._read("SELECT id, role, user, created, revoked, label FROM tokens ORDER BY created, id")]

    # -- jobs ----------------------------------------------------------------------------

    def enqueue_job(self, kind: str, args: dict | None = None, *, max_attempts: int = 3,
                    run_at: float | None = None) -> Job:
        with self._write() as conn:
            return self._insert_job(conn, kind, args, max_attempts, run_at)

    def enqueue_job_once(self, kind: str, args: dict | None = None, *, max_attempts: int = 3,
                         run_at: float | None = None) -> Job | None:
        with self._write() as conn:  # the check and the insert in one transaction: no twin from another process
            pending = conn.execute(
                f"SELECT 1 FROM jobs WHERE kind = ? AND args = ? AND state IN ({_marks(UNFINISHED_JOB_STATES)}) "
                "LIMIT 1", (kind, _job_args(args), *UNFINISHED_JOB_STATES)).fetchone()
            return None if pending else self._insert_job(conn, kind, args, max_attempts, run_at)

    def _insert_job(self, conn: sqlite3.Connection, kind: str, args: dict | None, max_attempts: int,
                    run_at: float | None) -> Job:
        check_id("job kind", kind)
        encoded = _job_args(args)
        if int(max_attempts) < 1:
            raise InvalidInputError(f"max_attempts must be at least 1, got {max_attempts}")
        now = self.clock()
        cursor = conn.execute(
            "INSERT INTO jobs (kind, args, state, max_attempts, run_at, created, updated) "
            "VALUES (?, ?, 'available', ?, ?, ?, ?)",
            (kind, encoded, int(max_attempts), now if run_at is None else float(run_at), now, now))
        return self._job(conn, cursor.lastrowid)

    def claim_job(self, kinds: Sequence[str] | None = None) -> Job | None:
        if isinstance(kinds, str):  # claim_job("fit") means that kind, not the kinds "f", "i" and "t"
            kinds = (kinds,)
        if kinds is not None and not kinds:
            return None
        kinds_sql = "" if kinds is None else f" AND kind IN ({_marks(kinds)})"
        with self._write() as conn:  # BEGIN IMMEDIATE: no other claimer can read the same row in between
            now = self.clock()
            row = conn.execute(f"SELECT id FROM jobs WHERE state IN ('available', 'retryable') AND run_at <= ?"
                               f"{kinds_sql} ORDER BY run_at, id LIMIT 1", (now, *(kinds or ()))).fetchone()
            if row is None:
                return None
            conn.execute("UPDATE jobs SET state = 'executing', attempts = attempts + 1, progress = 0, updated = ? "
                         "WHERE id = ?", (now, row[0]))
            return self._job(conn, row[0])

    def set_job_progress(self, job_id: int, progress: float) -> None:
        progress = float(progress)
        if not 0.0 <= progress <= 1.0:
            raise InvalidInputError(f"job progress is a fraction from 0 to 1, got {progress}")
        with self._write() as conn:
            self._executing(conn, job_id, "record progress of")
            conn.execute("UPDATE jobs SET progress = ?, updated = ? WHERE id = ?", (progress, self.clock(), job_id))

    def complete_job(self, job_id: int, result: dict | None = None) -> Job:
        try:
            encoded = None if result is None else json.dumps(result, ensure_ascii=False)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"a job result must be JSON-serialisable: {exc}") from None
        with self._write() as conn:
            self._executing(conn, job_id, "complete")
            conn.execute("UPDATE jobs SET state = 'completed', progress = 1, result = ?, error = NULL, updated = ? "
                         "WHERE id = ?", (encoded, self.clock(), job_id))
            return self._job(conn, job_id)

    def fail_job(self, job_id: int, error: str) -> Job:
        with self._write() as conn:
            job = self._executing(conn, job_id, "fail")
            self._record_failure(conn, job, str(error))
            return self._job(conn, job_id)

    def recover_jobs(self) -> int:
        with self._write() as conn:
            stranded = [self._job(conn, row[0]) for row in
                        conn.execute("SELECT id FROM jobs WHERE state = 'executing'").fetchall()]
            for job in stranded:
                self._record_failure(conn, job, "interrupted: the process running it stopped")
        return len(stranded)

    def _record_failure(self, conn: sqlite3.Connection, job: Job, error: str) -> None:
        now = self.clock()
        run_at = retry_at(job, now, self.backoff_base, self.backoff_cap)
        if run_at is None:
            conn.execute("UPDATE jobs SET state = 'discarded', error = ?, updated = ? WHERE id = ?",
                         (error, now, job.id))
            return
        conn.execute("UPDATE jobs SET state = 'retryable', error = ?, run_at = ?, updated = ? WHERE id = ?",
                     (error, run_at, now, job.id))

    def get_job(self, job_id: int) -> Job:
        return self._job(self._connection(), job_id)

    def list_jobs(self, state: str | None = None, *, limit: int = 100) -> list[Job]:
        check_job_state(state)
        where = "" if state is None else " WHERE state = ?"
        rows = self._read(f"SELECT {_JOB_COLUMNS} FROM jobs{where} ORDER BY id DESC LIMIT ?",
                          ((state,) if state else ()) + (int(limit),))
        return [_job_from_row(row) for row in rows]

    def _job(self, conn: sqlite3.Connection, job_id: int) -> Job:
        try:
            row = conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?", (int(job_id),)).fetchone()
        except sqlite3.Error as exc:
            raise StoreError(f"store {self.path}: read failed: {exc}") from exc
        if row is None:
            raise UnknownJobError(f"no job with id {job_id}")
        return _job_from_row(row)

    def _executing(self, conn: sqlite3.Connection, job_id: int, action: str) -> Job:
        job = self._job(conn, job_id)
        return require_executing(job, action)


def _job_from_row(row: tuple) -> Job:
    (job_id, kind, args, state, attempts, max_attempts, run_at, progress, result, error, created, updated) = row
    return Job(job_id, kind, json.loads(args), state, attempts, max_attempts, run_at, progress,
               None if result is None else json.loads(result), error, created, updated)


def _token(row: tuple) -> TokenRecord:
    token_id, role, user, created, revoked, label = row
    return TokenRecord(token_id, role, user, created, bool(revoked), label)


def _marks(values: Sequence) -> str:
    return ", ".join("?" * len(values))


