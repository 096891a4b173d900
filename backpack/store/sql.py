"""What the SQL stores share: every query whose shape does not depend on the database.

:class:`SQLStore` writes each such query once, in qmark style (``?``), and leaves to a
subclass (``backpack.store.sqlite``, ``backpack.store.postgres``) only what truly differs:
how a connection is had and a transaction run (and retried), migrations and checks, how
log seqs are handed out, how a job is claimed, and a few dialect details (the placeholder,
the upsert, how an inserted row's id comes back, how JSON is stored, row locks).

Writes go through :meth:`SQLStore._transaction` with a function of a cursor rather than
a ``with`` block: PostgreSQL retries a transaction that hit a serialization failure, which
needs the whole unit of work as something it can call again.
"""

from __future__ import annotations

import time
from abc import abstractmethod
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

from backpack.core.arrays import finite_number
from backpack.core.files import crash_point
from backpack.core.weights import MAX_WEIGHT, ROUNDS_TO_ZERO, stored_weight
from backpack.errors import InvalidInputError, StoreError, UnknownJobError
from backpack.store.base import (
    UNFINISHED_JOB_STATES,
    Job,
    LogEntry,
    SnapshotRecord,
    Store,
    TokenRecord,
    WriteBatch,
    check_id,
    check_job_state,
    new_token,
    parse_secret,
    require_executing,
    retry_at,
    same_length,
    secret_matches,
)

T = TypeVar("T")

#: log adds the engine refuses (the rule of backpack.core.weights, in SQL; NaN in PostgreSQL sorts
#: above every number, so it fails ``<= MAX_WEIGHT``; SQLite stores NaN as NULL)
REFUSED_ADD = f"op = 'add' AND (weight IS NULL OR NOT (weight > {ROUNDS_TO_ZERO!r} AND weight <= {MAX_WEIGHT!r}))"

#: every column of ``jobs``, in the order :class:`~backpack.store.base.Job` takes them
JOB_COLUMNS = "id, kind, args, state, attempts, max_attempts, run_at, progress, result, error, created, updated"
#: the tables :meth:`SQLStore.counts` reports on
COUNTED_TABLES = ("users", "items", "log", "jobs", "tokens", "snapshots")


class SQLStore(Store):
    """A :class:`~backpack.store.base.Store` on a SQL database, less the dialect.

    A subclass sets the class attributes below and implements the abstract hooks. A cursor
    here is whatever the subclass hands to a unit of work: it needs ``execute`` (returning
    something with ``fetchone``, ``fetchall`` and ``rowcount``) and ``executemany``.
    """

    #: the driver's parameter marker; shared queries are written with ``?`` and translated
    placeholder = "?"
    #: the column holding a user id in ``log`` and ``tokens`` (``user`` is reserved in PostgreSQL)
    user_column = "user"
    #: how a JSON parameter is written in SQL (PostgreSQL casts the text to JSONB)
    json_parameter = "?"
    #: appended to a SELECT of a job that the transaction is about to change ("" where the
    #: transaction already holds the write lock)
    row_lock = ""

    def __init__(self, *, backoff_base: float, backoff_cap: float, clock: Callable[[], float] = time.time):
        if backoff_base < 0 or backoff_cap < 0:
            raise InvalidInputError("backoff_base and backoff_cap must be >= 0 seconds")
        self.backoff_base, self.backoff_cap, self.clock = float(backoff_base), float(backoff_cap), clock

    # -- hooks a dialect supplies ------------------------------------------------------

    @abstractmethod
    def _transaction(self, work: Callable[..., T]) -> T:
        """``work(cursor)`` in one write transaction, committed (durably) before this returns;
        driver errors become :class:`~backpack.store.base.StoreError`, the store's own errors pass through."""

    @abstractmethod
    def _reading(self, work: Callable[..., T]) -> T:
        """``work(cursor)`` as a read (no transaction kept open afterwards); driver errors become
        :class:`~backpack.store.base.StoreError`."""

    @abstractmethod
    def _append_rows(self, cur, rows: list[tuple]) -> int:
        """Append ``(op, user, item, weight, timestamp)`` rows to the log inside the transaction of
        ``cur``; the last seq written. How seqs are handed out is the dialect's."""

    def _append(self, rows: list[tuple]) -> int:
        return self._transaction(lambda cur: self._append_rows(cur, rows))

    def _transaction_once(self, work: Callable[..., T]) -> T:
        """As :meth:`_transaction`, for ``work`` that cannot run twice (it consumes a stream): a
        dialect that retries transactions on conflicts overrides this to try once."""
        return self._transaction(work)

    @abstractmethod
    def _claim(self, kinds: Sequence[str] | None) -> Job | None:
        """Take the oldest runnable job (of ``kinds``, a non-empty sequence, or any kind: None)."""

    @abstractmethod
    def _upsert_doc_sql(self, table: str) -> str:
        """An INSERT of ``(id, doc)`` into ``table`` that replaces the doc of an existing id."""

    @abstractmethod
    def _insert_id(self, cur, sql: str, params: Sequence) -> int:
        """Run the INSERT ``sql`` (qmark style) and return the id the database gave the new row."""

    @abstractmethod
    def _one_of(self, values: Sequence) -> tuple[str, tuple]:
        """A condition on a column that it is one of ``values``: (SQL after the column, its parameters)."""

    @abstractmethod
    def _encode_doc(self, doc: dict, what: str) -> str:
        """A user's or item's node as the JSON text to store."""

    @abstractmethod
    def _encode_job_args(self, args: dict) -> str:
        """Job arguments as JSON in one canonical form, so equal arguments compare equal in SQL."""

    @abstractmethod
    def _encode_result(self, result: dict) -> str:
        """A job's result as JSON text (an :class:`~backpack.errors.InvalidInputError` if it cannot be)."""

    @abstractmethod
    def _decode_json(self, value):
        """A stored JSON column as Python (the driver may have decoded it already)."""

    def _lock_enqueue_once(self, cur) -> None:
        """Make concurrent :meth:`enqueue_job_once` transactions take turns; nothing by default,
        for a dialect whose write transactions already exclude each other."""

    # -- SQL helpers ---------------------------------------------------------------------

    def _sql(self, sql: str) -> str:
        """Qmark ``sql`` in the driver's placeholder style (shared SQL has no literal ``?``)."""
        return sql if self.placeholder == "?" else sql.replace("?", self.placeholder)

    def _execute(self, cur, sql: str, params: Sequence = ()):
        """``cur.execute`` of qmark ``sql``; the cursor, to fetch from."""
        return cur.execute(self._sql(sql), params)

    def _read(self, sql: str, params: Sequence = ()) -> list[tuple]:
        """Every row of the qmark query ``sql``."""
        return self._reading(lambda cur: self._execute(cur, sql, params).fetchall())

    # -- interaction log -----------------------------------------------------------

    def append_interactions(
        self,
        users: Sequence[str],
        items: Sequence[str],
        weights: Sequence[float],
        timestamps: Sequence[float | None] | None = None,
    ) -> int:
        rows = self._add_rows(users, items, weights, timestamps)
        return self._append(rows) if rows else self.watermark()

    def _add_rows(self, users, items, weights, timestamps) -> list[tuple]:
        same_length(
            users=users, items=items, weights=weights, **({} if timestamps is None else {"timestamps": timestamps})
        )
        return [
            (
                "add",
                check_id("user", u),
                check_id("item", i),
                stored_weight(w, "weight"),
                None if timestamps is None or timestamps[k] is None else finite_number(timestamps[k], "timestamp"),
            )
            for k, (u, i, w) in enumerate(zip(users, items, weights))
        ]

    def append_removals(self, users: Sequence[str], items: Sequence[str]) -> int:
        return self._append(self._removal_rows(users, items)) if len(users) or len(items) else self.watermark()

    def write_batch(self, batch: WriteBatch) -> int:
        docs = [("items", self._doc_rows("item", batch.items)), ("users", self._doc_rows("user", batch.users))]
        removals = self._removal_rows(*batch.removals)

        def work(cur) -> int:
            if batch.clear:
                for table in ("log", "items", "users", "snapshots"):
                    self._execute(cur, f"DELETE FROM {table}")
            for table, rows in docs:
                if rows:
                    cur.executemany(self._sql(self._upsert_doc_sql(table)), rows)
            for users, items, weights, times in batch.adds:
                rows = self._add_rows(users, items, weights, times)
                if rows:
                    self._append_rows(cur, rows)
            if removals:
                self._append_rows(cur, removals)
            crash_point("store:batch-written")
            return self._execute(cur, "SELECT coalesce(max(seq), 0) FROM log").fetchone()[0]

        return self._transaction_once(work)

    def _removal_rows(self, users: Sequence[str], items: Sequence[str]) -> list[tuple]:
        same_length(users=users, items=items)
        return [("remove", check_id("user", u), check_id("item", i), None, None) for u, i in zip(users, items)]

    def log_since(self, watermark: int, *, batch_size: int = 100_000) -> Iterator[list[LogEntry]]:
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        # Keyset pages, each its own short read: no transaction (nor, in PostgreSQL, a named
        # cursor pinning a pooled connection) stays open while the caller works on a batch,
        # so writers and SQLite's WAL checkpoints are never held up.
        last = int(watermark)
        while True:
            rows = self._read(
                f"SELECT seq, op, {self.user_column}, item, weight, timestamp FROM log WHERE seq > ? "
                "ORDER BY seq LIMIT ?",
                (last, batch_size),
            )
            if not rows:
                return
            yield [LogEntry(*row) for row in rows]
            last = rows[-1][0]

    def watermark(self) -> int:
        return self._read("SELECT coalesce(max(seq), 0) FROM log")[0][0]

    def refused_adds(self) -> int:
        return self._read(f"SELECT count(*) FROM log WHERE {REFUSED_ADD}")[0][0]

    # -- users and items -----------------------------------------------------------

    def put_users(self, users: dict[str, dict]) -> None:
        self._put("users", "user", users)

    def get_user(self, user: str) -> dict | None:
        return self._get("users", user)

    def put_items(self, items: dict[str, dict]) -> None:
        self._put("items", "item", items)

    def get_item(self, item: str) -> dict | None:
        return self._get("items", item)

    def _doc_rows(self, what: str, docs: dict[str, dict]) -> list[tuple]:
        rows = []
        for key, doc in docs.items():
            if not isinstance(doc, dict):
                raise InvalidInputError(f"{what} {key!r}: the description must be a JSON object (dict)")
            rows.append((check_id(what, key), self._encode_doc(doc, f"{what} {key!r}")))
        return rows

    def _put(self, table: str, what: str, docs: dict[str, dict]) -> None:
        rows = self._doc_rows(what, docs)
        if rows:
            sql = self._sql(self._upsert_doc_sql(table))
            self._transaction(lambda cur: cur.executemany(sql, rows))

    def _get(self, table: str, key: str) -> dict | None:
        rows = self._read(f"SELECT doc FROM {table} WHERE id = ?", (key,))
        return self._decode_json(rows[0][0]) if rows else None

    def iter_items(self, *, batch_size: int = 10_000) -> Iterator[list[tuple[str, dict]]]:
        return self._iter_docs("items", batch_size)

    def iter_users(self, *, batch_size: int = 10_000) -> Iterator[list[tuple[str, dict]]]:
        return self._iter_docs("users", batch_size)

    def _iter_docs(self, table: str, batch_size: int) -> Iterator[list[tuple[str, dict]]]:
        if batch_size < 1:
            raise InvalidInputError("batch_size must be at least 1")
        last = None
        while True:
            # ">" and ORDER BY use the same (the column's) collation, so the keyset is exact whatever the
            # database's locale, and the primary key index serves both (an explicit COLLATE would not)
            rows = self._read(
                f"SELECT id, doc FROM {table}" + (" WHERE id > ?" if last is not None else "") + " ORDER BY id LIMIT ?",
                (() if last is None else (last,)) + (batch_size,),
            )
            if not rows:
                return
            yield [(key, self._decode_json(doc)) for key, doc in rows]
            last = rows[-1][0]

    def counts(self) -> dict[str, int]:
        # one statement, so the sizes are of one moment
        row = self._read("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in COUNTED_TABLES))[0]
        return dict(zip(COUNTED_TABLES, row))

    # -- snapshots -------------------------------------------------------------------

    def record_snapshot(self, path: str, algorithm: str | None, watermark: int) -> SnapshotRecord:
        if int(watermark) < 0:
            raise InvalidInputError(f"a snapshot watermark is a log seq (>= 0), got {watermark}")
        created = self.clock()

        def work(cur) -> int:
            # a snapshot claiming seqs nobody wrote would make the replay after it skip real writes
            written = self._execute(cur, "SELECT coalesce(max(seq), 0) FROM log").fetchone()[0]
            if int(watermark) > written:
                raise InvalidInputError(f"snapshot watermark {watermark} is past the end of the log ({written})")
            return self._insert_id(
                cur,
                "INSERT INTO snapshots (path, algorithm, watermark, created) VALUES (?, ?, ?, ?)",
                (str(path), algorithm, int(watermark), created),
            )

        return SnapshotRecord(self._transaction(work), str(path), algorithm, int(watermark), created)

    def latest_snapshot(self) -> SnapshotRecord | None:
        rows = self._read("SELECT id, path, algorithm, watermark, created FROM snapshots ORDER BY id DESC LIMIT 1")
        return SnapshotRecord(*rows[0]) if rows else None

    # -- tokens ------------------------------------------------------------------------

    def create_token(self, role: str, user: str | None = None, *, label: str = "") -> tuple[TokenRecord, str]:
        record, secret, hashed = new_token(role, user, label, self.clock())
        self._transaction(
            lambda cur: self._execute(
                cur,
                f"INSERT INTO tokens (id, hash, role, {self.user_column}, label, created) VALUES (?, ?, ?, ?, ?, ?)",
                (record.id, hashed, role, user, record.label, record.created),
            )
        )
        return record, secret

    def verify_token(self, secret: str) -> TokenRecord | None:
        parsed = parse_secret(secret)
        if parsed is None:
            return None
        rows = self._read(
            f"SELECT hash, id, role, {self.user_column}, created, revoked, label FROM tokens WHERE id = ?", (parsed[0],)
        )
        if not secret_matches(secret, rows[0][0] if rows else None) or not rows:
            return None
        record = _token(rows[0][1:])
        return None if record.revoked else record

    def revoke_token(self, token_id: str) -> bool:
        # revoked as a parameter: SQLite keeps the 1 of a Python True, PostgreSQL a BOOLEAN
        return self._transaction(
            lambda cur: (
                self._execute(cur, "UPDATE tokens SET revoked = ? WHERE id = ?", (True, str(token_id))).rowcount > 0
            )
        )

    def list_tokens(self) -> list[TokenRecord]:
        return [
            _token(row)
            for row in self._read(
                f"SELECT id, role, {self.user_column}, created, revoked, label FROM tokens ORDER BY created, id"
            )
        ]

    # -- jobs ----------------------------------------------------------------------------

    def enqueue_job(
        self, kind: str, args: dict | None = None, *, max_attempts: int = 3, run_at: float | None = None
    ) -> Job:
        encoded = self._check_job(kind, args, max_attempts)
        return self._transaction(lambda cur: self._insert_job(cur, kind, encoded, max_attempts, run_at))

    def enqueue_job_once(
        self, kind: str, args: dict | None = None, *, max_attempts: int = 3, run_at: float | None = None
    ) -> Job | None:
        encoded = self._check_job(kind, args, max_attempts)
        states_sql, states = self._one_of(UNFINISHED_JOB_STATES)

        def work(cur) -> Job | None:
            # the check and the insert in one transaction, taking turns: no twin from another process
            self._lock_enqueue_once(cur)
            pending = self._execute(
                cur,
                f"SELECT 1 FROM jobs WHERE kind = ? AND args = {self.json_parameter} AND state {states_sql} LIMIT 1",
                (kind, encoded, *states),
            ).fetchone()
            return None if pending else self._insert_job(cur, kind, encoded, max_attempts, run_at)

        return self._transaction(work)

    def _check_job(self, kind: str, args: dict | None, max_attempts: int) -> str:
        """The encoded ``args`` of a job that may be enqueued, else an InvalidInputError."""
        check_id("job kind", kind)
        if args is not None and not isinstance(args, dict):
            raise InvalidInputError(f"job args must be a dict, got {type(args).__name__}")
        encoded = self._encode_job_args(args or {})
        if int(max_attempts) < 1:
            raise InvalidInputError(f"max_attempts must be at least 1, got {max_attempts}")
        return encoded

    def _insert_job(self, cur, kind: str, encoded: str, max_attempts: int, run_at: float | None) -> Job:
        now = self.clock()
        job_id = self._insert_id(
            cur,
            "INSERT INTO jobs (kind, args, state, max_attempts, run_at, created, updated) "
            f"VALUES (?, {self.json_parameter}, 'available', ?, ?, ?, ?)",
            (kind, encoded, int(max_attempts), now if run_at is None else float(run_at), now, now),
        )
        return self._job(cur, job_id)

    def claim_job(self, kinds: Sequence[str] | None = None) -> Job | None:
        if isinstance(kinds, str):  # claim_job("fit") means that kind, not the kinds "f", "i" and "t"
            kinds = (kinds,)
        if kinds is not None and not kinds:
            return None
        return self._claim(kinds)

    def set_job_progress(self, job_id: int, progress: float) -> None:
        progress = float(progress)
        if not 0.0 <= progress <= 1.0:
            raise InvalidInputError(f"job progress is a fraction from 0 to 1, got {progress}")

        def work(cur) -> None:
            self._executing(cur, job_id, "record progress of")
            self._execute(
                cur, "UPDATE jobs SET progress = ?, updated = ? WHERE id = ?", (progress, self.clock(), job_id)
            )

        self._transaction(work)

    def complete_job(self, job_id: int, result: dict | None = None) -> Job:
        encoded = None if result is None else self._encode_result(result)

        def work(cur) -> Job:
            self._executing(cur, job_id, "complete")
            self._execute(
                cur,
                f"UPDATE jobs SET state = 'completed', progress = 1, result = {self.json_parameter}, "
                "error = NULL, updated = ? WHERE id = ?",
                (encoded, self.clock(), job_id),
            )
            return self._job(cur, job_id)

        return self._transaction(work)

    def fail_job(self, job_id: int, error: str) -> Job:
        def work(cur) -> Job:
            job = self._executing(cur, job_id, "fail")
            self._record_failure(cur, job, str(error))
            return self._job(cur, job_id)

        return self._transaction(work)

    def recover_jobs(self) -> int:
        def work(cur) -> int:
            # row_lock: a job completing at the same moment is either done first or waits for us
            rows = self._execute(
                cur, f"SELECT {JOB_COLUMNS} FROM jobs WHERE state = 'executing'{self.row_lock}"
            ).fetchall()
            for row in rows:
                self._record_failure(cur, self._job_from_row(row), "interrupted: the process running it stopped")
            return len(rows)

        return self._transaction(work)

    def _record_failure(self, cur, job: Job, error: str) -> None:
        now = self.clock()
        run_at = retry_at(job, now, self.backoff_base, self.backoff_cap)
        if run_at is None:
            self._execute(
                cur, "UPDATE jobs SET state = 'discarded', error = ?, updated = ? WHERE id = ?", (error, now, job.id)
            )
            return
        self._execute(
            cur,
            "UPDATE jobs SET state = 'retryable', error = ?, run_at = ?, updated = ? WHERE id = ?",
            (error, run_at, now, job.id),
        )

    def get_job(self, job_id: int) -> Job:
        return self._reading(lambda cur: self._job(cur, job_id))

    def list_jobs(self, state: str | None = None, *, limit: int = 100) -> list[Job]:
        check_job_state(state)
        where = "" if state is None else " WHERE state = ?"
        rows = self._read(
            f"SELECT {JOB_COLUMNS} FROM jobs{where} ORDER BY id DESC LIMIT ?",
            ((state,) if state else ()) + (int(limit),),
        )
        return [self._job_from_row(row) for row in rows]

    def _job(self, cur, job_id: int, *, lock: bool = False) -> Job:
        row = self._execute(
            cur, f"SELECT {JOB_COLUMNS} FROM jobs WHERE id = ?{self.row_lock if lock else ''}", (int(job_id),)
        ).fetchone()
        if row is None:
            raise UnknownJobError(f"no job with id {job_id}")
        return self._job_from_row(row)

    def _executing(self, cur, job_id: int, action: str) -> Job:
        # locked: the state read here cannot change before this transaction's update
        return require_executing(self._job(cur, job_id, lock=True), action)

    def _job_from_row(self, row: Sequence) -> Job:
        """A :class:`~backpack.store.base.Job` from a row of :data:`JOB_COLUMNS`."""
        (job_id, kind, args, state, attempts, max_attempts, run_at, progress, result, error, created, updated) = row
        return Job(
            job_id,
            kind,
            self._decode_json(args),
            state,
            attempts,
            max_attempts,
            run_at,
            progress,
            None if result is None else self._decode_json(result),
            error,
            created,
            updated,
        )


def apply_migrations(conn, version: int, migrations: Sequence[Sequence[str]], *, holder: str) -> bool:
    """Run on ``conn`` the steps of ``migrations`` (step i moves the schema from version i to i + 1)
    that a schema at ``version`` lacks, inside the caller's transaction; True when the caller must
    record the new version (in that same transaction, so a crash leaves either all or nothing).

    A schema newer than ``migrations`` is a StoreError: an older Backpack must not write to it.
    ``holder`` begins that message, e.g. ``"store.sqlite3 has"``.
    """
    if version > len(migrations):
        raise StoreError(
            f"{holder} schema version {version}, newer than this Backpack "
            f"understands ({len(migrations)}): upgrade Backpack"
        )
    for steps in migrations[version:]:
        for sql in steps:
            conn.execute(sql)
    return version != len(migrations)


def _token(row: Sequence) -> TokenRecord:
    """A token record from ``id, role, user, created, revoked, label`` (SQLite keeps ``revoked`` as 0/1)."""
    token_id, role, user, created, revoked, label = row
    return TokenRecord(token_id, role, user, created, bool(revoked), label)
