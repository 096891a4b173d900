"""The store: what the server keeps durable, behind one interface a plugin can replace.

A store holds users, items (their expanded JSON-LD), an append-only log of
interaction writes, model snapshots (their manifest: where, which algorithm,
up to which log position), access tokens and background jobs. The built-in
store is SQLite in WAL mode (``backpack.store.sqlite``); a server database
registers another through the ``register_stores`` hook, and the same store
test-suite runs against every store.

Every write method returns only once the write is durable: a server
acknowledges a client's write after the store call returned, so an
acknowledged write survives a crash of the process.

The interaction log is the source of truth for bags: each entry has a
sequence number (``seq``, increasing, never reused). A snapshot records the
highest ``seq`` it contains (its *watermark*); on start the server loads the
latest snapshot and replays the entries after it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from backpack.core.weights import weight_kept
from backpack.errors import InvalidInputError, JobStateError

if TYPE_CHECKING:
    from backpack.plugins import Plugins

ROLES = ("admin", "service", "user")
JOB_STATES = ("available", "executing", "completed", "retryable", "discarded")


#: job states that still lead to a run: a periodic job is not enqueued again while one of these exists
UNFINISHED_JOB_STATES = ("available", "executing", "retryable")


@dataclass(frozen=True)
class LogEntry:
    """One write of the interaction log. ``op`` is ``"add"`` or ``"remove"``;
    ``weight`` and ``timestamp`` are None for a removal (``timestamp`` may be
    None for an add without a time)."""

    seq: int
    op: str
    user: str
    item: str
    weight: float | None
    timestamp: float | None


@dataclass(frozen=True)
class SnapshotRecord:
    """A model snapshot on disk: ``path`` (a data directory, see ``backpack.engine.data_dir``),
    the algorithm of its active model (None: bags only), and the log watermark it contains."""

    id: int
    path: str
    algorithm: str | None
    watermark: int
    created: float


@dataclass
class WriteBatch:
    """Writes stored together by :meth:`Store.write_batch`: all of them or none.

    ``adds`` is an iterable of ``(users, items, weights, timestamps or None)`` chunks (a CSV
    import streams them, so a large file is never held at once); ``removals`` is
    ``(users, items)``; ``clear`` drops the log, items, users and snapshot records first (an
    import with ``--replace``).
    """

    items: dict[str, dict] = field(default_factory=dict)
    users: dict[str, dict] = field(default_factory=dict)
    adds: Iterable[tuple] = ()
    removals: tuple[Sequence[str], Sequence[str]] = ((), ())
    clear: bool = False


@dataclass(frozen=True)
class TokenRecord:
    """An access token as stored: never the secret, only its hash."""

    id: str
    role: str
    user: str | None
    created: float
    revoked: bool
    label: str = ""


@dataclass
class Job:
    """A background job. ``state`` is one of :data:`JOB_STATES`; ``attempts`` counts
    claims; ``run_at`` is when it may next be claimed; ``progress`` is 0..1."""

    id: int
    kind: str
    args: dict
    state: str
    attempts: int
    max_attempts: int
    run_at: float
    progress: float = 0.0
    result: dict | None = None
    error: str | None = None
    created: float = 0.0
    updated: float = 0.0
    extra: dict = field(default_factory=dict)


class Store(ABC):
    """Durable state of a Backpack server. Safe to call from several threads.
    ``with open_store(...) as store:`` closes it at the end of the block."""

    # -- lifecycle -------------------------------------------------------------

    @abstractmethod
    def close(self) -> None:
        """Release connections and files; the store is unusable afterwards (calls raise :class:`StoreError`)."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def check(self) -> list[str]:
        """Consistency problems found (empty: the store is intact)."""
        return []

    # -- interaction log ---------------------------------------------------------

    @abstractmethod
    def append_interactions(
        self,
        users: Sequence[str],
        items: Sequence[str],
        weights: Sequence[float],
        timestamps: Sequence[float | None] | None = None,
    ) -> int:
        """Append adds to the log in one transaction; returns the last ``seq`` written.

        The rows of one call get consecutive ``seq`` values in their order (the server's group
        commit tells each request its own position from the last one)."""

    @abstractmethod
    def append_removals(self, users: Sequence[str], items: Sequence[str]) -> int:
        """Append removals to the log in one transaction; returns the last ``seq`` written
        (consecutive ``seq`` values, as for :meth:`append_interactions`)."""

    @abstractmethod
    def log_since(self, watermark: int, *, batch_size: int = 100_000) -> Iterator[list[LogEntry]]:
        """Log entries with ``seq > watermark`` in ``seq`` order, in batches (streamed, not all in memory)."""

    @abstractmethod
    def watermark(self) -> int:
        """The highest ``seq`` written (0 for an empty log)."""

    def refused_adds(self) -> int:
        """How many log adds the engine would refuse (a weight outside the rule of
        :mod:`backpack.core.weights`, written by an older version or by hand): replay skips them
        (quarantined: kept in the log, counted here, in ``check`` and in the server's ``stats``).
        This default reads the whole log; the SQL stores count in SQL."""
        return sum(1 for batch in self.log_since(0) for e in batch if e.op == "add" and not weight_kept(e.weight))

    def write_batch(self, batch: WriteBatch) -> int:
        """Store every part of ``batch`` as one durable unit, in this order: (with ``batch.clear``)
        drop the log, items, users and snapshot records; put the items and users; append the
        adds, then the removals. Returns the log watermark after it.

        The SQL stores do it in one transaction: a crash or an error leaves none of it. This
        default, for stores that cannot, calls the single-part methods in turn (and refuses
        ``clear``); override it where the store has transactions.
        """
        if batch.clear:
            raise InvalidInputError(f"{type(self).__name__} cannot drop its data in one transaction")
        if batch.items:
            self.put_items(batch.items)
        if batch.users:
            self.put_users(batch.users)
        watermark = self.watermark()
        for users, items, weights, times in batch.adds:
            watermark = self.append_interactions(users, items, weights, times)
        if batch.removals[0]:
            watermark = self.append_removals(*batch.removals)
        return watermark

    # -- users and items --------------------------------------------------------

    @abstractmethod
    def put_users(self, users: dict[str, dict]) -> None:
        """Insert or replace users: id -> JSON-LD node (``{}`` when nothing is known but the id)."""

    @abstractmethod
    def get_user(self, user: str) -> dict | None:
        """A user's node, or None."""

    @abstractmethod
    def put_items(self, items: dict[str, dict]) -> None:
        """Insert or replace item descriptions: IRI -> expanded JSON-LD node."""

    @abstractmethod
    def get_item(self, item: str) -> dict | None:
        """An item's node, or None."""

    @abstractmethod
    def iter_items(self, *, batch_size: int = 10_000) -> Iterator[list[tuple[str, dict]]]:
        """Every stored item as (id, node), in batches."""

    def iter_users(self, *, batch_size: int = 10_000) -> Iterator[list[tuple[str, dict]]]:
        """Every stored user as (id, node), in batches. This default, for stores that cannot list
        them, yields nothing: users then come back on a restart only from snapshots."""
        return iter(())

    @abstractmethod
    def counts(self) -> dict[str, int]:
        """Sizes: ``users``, ``items``, ``log`` entries, ``jobs``, ``tokens``, ``snapshots``."""

    # -- snapshots ---------------------------------------------------------------

    @abstractmethod
    def record_snapshot(self, path: str, algorithm: str | None, watermark: int) -> SnapshotRecord:
        """Record a snapshot already written (atomically) at ``path``; a ``watermark`` past the
        end of the log is an :class:`~backpack.errors.InvalidInputError`."""

    @abstractmethod
    def latest_snapshot(self) -> SnapshotRecord | None:
        """The most recent snapshot, or None."""

    # -- tokens -----------------------------------------------------------------

    @abstractmethod
    def create_token(self, role: str, user: str | None = None, *, label: str = "") -> tuple[TokenRecord, str]:
        """A new token: its record and the secret (shown once; only a hash is stored).
        ``role`` is one of :data:`ROLES`; a ``user`` token must name its user."""

    @abstractmethod
    def verify_token(self, secret: str) -> TokenRecord | None:
        """The live (unrevoked) token with this secret, compared in constant time, else None."""

    @abstractmethod
    def revoke_token(self, token_id: str) -> bool:
        """Revoke a token; False if there is no such token."""

    @abstractmethod
    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones included."""

    # -- jobs ---------------------------------------------------------------------

    @abstractmethod
    def enqueue_job(
        self, kind: str, args: dict | None = None, *, max_attempts: int = 3, run_at: float | None = None
    ) -> Job:
        """Add an ``available`` job (runnable from ``run_at``, default now)."""

    def enqueue_job_once(
        self, kind: str, args: dict | None = None, *, max_attempts: int = 3, run_at: float | None = None
    ) -> Job | None:
        """Enqueue like :meth:`enqueue_job` unless a job of this ``kind`` with equal ``args`` is
        still unfinished (:data:`UNFINISHED_JOB_STATES`); None when one is.

        This default checks, then enqueues, so two processes may both enqueue; a store
        overrides it to do both in one transaction (the SQLite store does).
        """
        args = args or {}
        for state in UNFINISHED_JOB_STATES:
            if any(job.kind == kind and job.args == args for job in self.list_jobs(state, limit=1_000_000)):
                return None
        return self.enqueue_job(kind, args, max_attempts=max_attempts, run_at=run_at)

    @abstractmethod
    def claim_job(self, kinds: Sequence[str] | None = None) -> Job | None:
        """Atomically take the oldest runnable job (available or retryable, ``run_at`` passed):
        it becomes ``executing`` with one more attempt. None when there is nothing to do.
        ``kinds`` limits it to those kinds (one kind may be given as a plain string)."""

    @abstractmethod
    def set_job_progress(self, job_id: int, progress: float) -> None:
        """Record an executing job's progress (0..1)."""

    @abstractmethod
    def complete_job(self, job_id: int, result: dict | None = None) -> Job:
        """Mark an executing job ``completed``."""

    @abstractmethod
    def fail_job(self, job_id: int, error: str) -> Job:
        """Record a failed attempt: ``retryable`` with exponential back-off while attempts remain,
        else ``discarded``."""

    @abstractmethod
    def recover_jobs(self) -> int:
        """After a crash: every ``executing`` job becomes ``retryable`` (or ``discarded`` when out of
        attempts); returns how many were recovered. Called when a server starts."""

    @abstractmethod
    def get_job(self, job_id: int) -> Job:
        """A job by id (:class:`UnknownJobError` if none)."""

    @abstractmethod
    def list_jobs(self, state: str | None = None, *, limit: int = 100) -> list[Job]:
        """Jobs, newest first, optionally only those in ``state``."""


def default_store_path(data_dir) -> Path:
    """Where a data directory keeps its SQLite store: ``<data dir>/store.sqlite3``."""
    return Path(data_dir).expanduser() / "store.sqlite3"


def open_store(name: str = "sqlite", plugins: Plugins | None = None, **options) -> Store:
    """A store made by the store plugin registered as ``name`` (``register_stores`` hook) with ``options``,
    e.g. ``open_store("sqlite", path=default_store_path(data_dir))``.

    Unknown names and options are an :class:`~backpack.errors.InvalidInputError` naming what is available.
    """
    from backpack.plugins import get_plugins

    plugins = plugins if plugins is not None else get_plugins()
    return plugins.create("stores", name, options, Store)


# -- helpers every store implementation shares (no SQL dialect in them) ------------------------

#: the first part of every token secret: ``bp_<token id>_<random>``
TOKEN_PREFIX = "bp"


def check_id(what: str, value) -> str:
    """``value`` if it is a non-empty string (a user or item id), else an InvalidInputError."""
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"a {what} id must be a non-empty string, got {value!r:.80}")
    return value


def same_length(**sequences) -> int:
    """The common length of ``sequences`` (by name), else an InvalidInputError listing them."""
    lengths = {name: len(values) for name, values in sequences.items()}
    if len(set(lengths.values())) > 1:
        raise InvalidInputError(
            "these must have the same length: " + ", ".join(f"{name} ({n})" for name, n in lengths.items())
        )
    return next(iter(lengths.values()))


def new_token(role: str, user: str | None, label: str, created: float) -> tuple[TokenRecord, str, str]:
    """A checked new token: its record, its secret (shown once) and the hash to store."""
    if role not in ROLES:
        raise InvalidInputError(f"unknown token role {role!r}; choose one of {', '.join(ROLES)}")
    if role == "user" and not user:
        raise InvalidInputError("a 'user' token must name its user")
    if role != "user" and user is not None:
        raise InvalidInputError(f"an {role!r} token acts for no particular user: leave the user out")
    token_id = secrets.token_hex(8)
    secret = f"{TOKEN_PREFIX}_{token_id}_{secrets.token_urlsafe(32)}"
    return TokenRecord(token_id, role, user, created, False, str(label)), secret, hash_secret(secret)


def hash_secret(secret: str) -> str:
    """What a store keeps of a secret. A plain SHA-256 is enough: the random part has 256 bits of
    entropy, so there is nothing to brute-force and no need for a slow password hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def parse_secret(secret) -> tuple[str, str] | None:
    """``bp_<token id>_<random>`` -> (token id, random), None for anything else."""
    if not isinstance(secret, str):
        return None
    prefix, _, rest = secret.partition("_")
    token_id, _, random = rest.partition("_")  # the random part may itself contain "_"
    if prefix != TOKEN_PREFIX or not token_id or not random or not token_id.isalnum():
        return None
    return token_id, random


def secret_matches(secret: str, stored_hash: str | None) -> bool:
    """Constant-time comparison of ``secret`` with a stored hash; an unknown token (None) is
    compared against a dummy hash, so it takes as long as a wrong secret."""
    return hmac.compare_digest(hash_secret(secret), stored_hash or "0" * 64)


def retry_at(job: Job, now: float, backoff_base: float, backoff_cap: float) -> float | None:
    """When a failed ``job`` may run again (exponential back-off, capped), or None when its
    attempts are used up (it is discarded)."""
    if job.attempts >= job.max_attempts:
        return None
    return now + min(backoff_base * 2 ** max(job.attempts - 1, 0), backoff_cap)


def check_job_state(state: str | None) -> str | None:
    """``state`` if it is None or one of :data:`JOB_STATES`, else an InvalidInputError."""
    if state is not None and state not in JOB_STATES:
        raise InvalidInputError(f"unknown job state {state!r}; choose one of {', '.join(JOB_STATES)}")
    return state


def require_executing(job: Job, action: str) -> Job:
    """``job`` if it is executing (only a claimed job can be completed, failed or advanced)."""
    if job.state != "executing":
        raise JobStateError(
            f"cannot {action} job {job.id}: it is {job.state}, not executing (only a claimed job can be)"
        )
    return job
