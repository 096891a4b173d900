"""The local socket server (``backpack serve``): an :class:`~backpack.Engine` behind the protocol of
:mod:`backpack.protocol`, with a durable :class:`~backpack.store.Store` underneath.

- Writes go to the store first (durable) and only then to the engine and the
  reply: an acknowledged write survives a crash. One lock orders them, so the
  log order is the order the engine saw.
- On start the latest snapshot recorded in the store is loaded and the log
  after its watermark replayed; stored item descriptions are put back.
- Concurrent ``recommend`` requests with the same list length and filters
  are answered by one ``engine.recommend_batch`` call in a worker thread (the
  core releases the GIL): a request goes to the core at once when it is idle,
  and all that arrive while it is busy go in its next call
  (:class:`~backpack.coalescing.Coalescer`), so a thousand clients asking at
  once cost a handful of core calls and a lone client waits for no one.
- Writes queued while the previous write is being made durable are committed
  together: one store transaction, one fsync, in arrival order (group commit).
- ``fit`` runs as a background job; the engine swaps the new model in with
  one assignment, so reads never wait for it. A snapshot follows each fit so
  the model survives a restart.
- Every request is checked against its token's role (see :data:`OP_ROLES`)
  and the limits of :class:`Limits`; a failing handler is an ``internal``
  error reply, never a dead server.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import math
import os
import shutil
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .bags import id_lists, weight_array
from .coalescing import Coalescer
from .engine import Engine, Recommendation
from .errors import BackpackError, InvalidInputError
from .jobs import JobRunner, Scheduler
from .jsonld import expand_documents
from .protocol import (
    CODECS,
    HEADER,
    PROTOCOL_VERSION,
    FrameTooLargeError,
    ProtocolError,
    decode_body,
    encode_frame,
    error_reply,
    frame_length,
)
from .store import Store, TokenRecord
from .timestamps import timestamp_array

log = logging.getLogger("backpack.server")

#: which roles may call each op ("user" tokens are further held to their own user id)
OP_ROLES = {
    "hello": ("admin", "service", "user", None),
    "add_interactions": ("admin", "service", "user"),
    "remove_interactions": ("admin", "service", "user"),
    "put_items": ("admin", "service"),
    "ingest": ("admin", "service"),
    "recommend": ("admin", "service", "user"),
    "recommend_batch": ("admin", "service", "user"),
    "recommend_bag": ("admin", "service"),
    "similar_items": ("admin", "service", "user"),
    "fit": ("admin",),
    "job_status": ("admin",),
    "jobs": ("admin",),
    "stats": ("admin", "service"),
    "snapshot": ("admin",),
}
FIT_JOB, SNAPSHOT_JOB = "fit", "snapshot"
WRITES_PER_COMMIT = 1024  # requests in one group commit (each holds at most Limits.max_batch rows)
TOKEN_TTL = 1.0  # seconds a verified token is trusted before the store is asked again (revocation delay)


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the server; each breach has its own error code.

    ``max_frame`` bytes per frame (``frame_too_large``, then the connection
    closes); ``max_batch`` entries per request (``batch_too_large``);
    ``rate`` requests per second per connection with bursts of ``burst``
    (``rate_limited``; 0 turns it off); ``idle_timeout`` seconds without a
    frame (``idle_timeout``, then close); ``read_timeout`` seconds to receive
    a frame once its header arrived (slow clients are closed); both are checked by a sweep
    every quarter of the smaller one, at most once a second, so they act that much late;
    ``max_connections`` at once (``too_many_connections``, then close);
    ``max_in_flight`` requests of one connection handled at once (more wait
    unread: back-pressure, not an error).
    """

    max_frame: int = 4 << 20
    max_batch: int = 10_000
    rate: float = 2000.0
    burst: int = 500
    idle_timeout: float = 300.0
    read_timeout: float = 10.0
    max_connections: int = 256
    max_in_flight: int = 64

    def as_dict(self) -> dict:
        """The limits as sent in the ``hello`` reply."""
        return dataclasses.asdict(self)


class TokenBucket:
    """Requests allowed per second with bursts: ``take()`` is False when the bucket is empty."""

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, max(1, burst)
        self.tokens, self.stamp = float(self.burst), time.monotonic()

    def take(self) -> bool:
        """Spend one token if there is one."""
        if self.rate <= 0:
            return True
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a role (None without a token) and, for a user token, its user."""

    role: str | None
    user: str | None = None

    def require_own(self, users) -> None:
        """A user token may only name its own user."""
        if self.role == "user" and any(u != self.user for u in users):
            raise ProtocolError("forbidden", f"a user token may only act for its own user {self.user!r}")


class _Connection:
    """One client's connection: its codec, token, rate bucket and in-flight slots."""

    def __init__(self, writer: asyncio.StreamWriter, limits: Limits):
        self.writer = writer
        self.codec = "json"
        self.secret: str | None = None
        self.bucket = TokenBucket(limits.rate, limits.burst)
        self.slots = asyncio.Semaphore(limits.max_in_flight)
        self.send_lock = asyncio.Lock()
        self.tasks: set[asyncio.Task] = set()
        # when the frame being waited for is overdue (loop time) and which limit that is:
        # checked by the server's sweeper, so a read costs no timer of its own
        self.deadline, self.waiting_for = math.inf, "frame"

    def expect(self, what: str, seconds: float) -> None:
        """Start waiting for ``what`` ("frame": the next header; "body": the rest of a frame)."""
        self.deadline, self.waiting_for = asyncio.get_running_loop().time() + seconds, what

    def expire(self, limits: Limits) -> None:
        """The deadline passed: an idle connection gets ``idle_timeout`` first; a frame stuck
        half-way (slow or truncated) is closed without a word (its stream cannot go on)."""
        self.deadline = math.inf
        if self.waiting_for == "frame":
            try:
                self.writer.write(encode_frame(error_reply(None, "idle_timeout", f"nothing received for "
                                                           f"{limits.idle_timeout:g} s; closing"), self.codec))
            except (ConnectionError, RuntimeError):
                pass
        self.writer.close()  # the read loop's pending read then ends as end-of-stream

    async def send(self, message: dict, *, switch_codec: str | None = None) -> None:
        """Write one frame; ``switch_codec`` changes the codec right after it (``hello``).
        A client that already left is not an error: its reply is dropped."""
        try:
            await self._send(message, switch_codec)
        except (ConnectionError, RuntimeError):  # RuntimeError: the transport is already closed
            pass

    async def _send(self, message: dict, switch_codec: str | None) -> None:
        async with self.send_lock:  # encode under the lock: a codec switch lands between two frames
            try:
                frame = encode_frame(message, self.codec)
            except (TypeError, ValueError, OverflowError) as exc:
                log.exception("reply could not be encoded")
                frame = encode_frame(error_reply(message.get("id"), "internal", f"reply not encodable: {exc}"),
                                     self.codec)
            self.writer.write(frame)
            if switch_codec is not None:
                self.codec = switch_codec
            await self.writer.drain()


def restore_engine(store: Store, *, plugins=None, num_threads: int = 0, base_dir=None) -> Engine:
    """An engine as the store last knew it: the latest snapshot, the stored item descriptions,
    then every log entry after the snapshot's watermark, in order.

    Without a snapshot the starting point is the data directory ``base_dir`` as the CLI left it
    (``backpack import`` / ``backpack fit``: state the log never held), or an empty engine.
    """
    from .state_dir import DataDir

    snapshot = store.latest_snapshot()
    if snapshot is not None:
        engine = DataDir(snapshot.path).open_engine(plugins=plugins, num_threads=num_threads)
        watermark = snapshot.watermark
    elif base_dir is not None and DataDir(base_dir).initialised:
        engine, watermark = DataDir(base_dir).open_engine(plugins=plugins, num_threads=num_threads), 0
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
    engine.add_interactions([e.user for e in entries], [e.item for e in entries], [e.weight for e in entries],
                            timestamps=None if all(t is None for t in times) else times)


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
    doomed = snapshots[:max(0, len(snapshots) - keep)] + list(directory.glob(".tmp-snapshot-*"))
    for path in doomed:
        shutil.rmtree(path, ignore_errors=True)
    return doomed


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def usable_id(request: dict):
    """The request's id if it is a usable one (an integer or a string), else None."""
    value = request.get("id")
    return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None


def check_request(request: dict) -> None:
    """``bad_request`` unless ``request`` has an id, an op, args and at most a string token."""
    if usable_id(request) is None:
        raise ProtocolError("bad_request", "request needs an id (integer or string)")
    if not isinstance(request.get("op"), str):
        raise ProtocolError("bad_request", "request needs an op (string)")
    if not isinstance(request.get("args"), dict):
        raise ProtocolError("bad_request", "request needs args (an object, {} for none)")
    if "token" in request and not isinstance(request["token"], str):
        raise ProtocolError("bad_request", "token must be a string")


class ReadOps:
    """The protocol's read operations over one engine: argument checks, the engine call, the result.

    :class:`Server` answers them on its socket; :class:`~backpack.ray_serving.EngineReplica` answers the
    same ops on Ray Serve replicas. Keeping them in one place is what makes both give the same results,
    the same error codes and the same messages. A subclass provides ``engine``, ``limits``,
    ``recommends`` (a :class:`~backpack.coalescing.Coalescer` over :meth:`_recommend_batch`) and ``_run``
    (a blocking call in a worker thread).
    """

    engine: Engine
    limits: Limits
    recommends: Coalescer

    async def _run(self, fn, *args, **kwargs):
        raise NotImplementedError  # each host runs blocking calls its own way

    def _check_batch(self, count: int, what: str) -> None:
        if count > self.limits.max_batch:
            raise ProtocolError("batch_too_large", f"{count} {what} in one request; the limit is "
                                                   f"{self.limits.max_batch}: split it")

    async def _op_recommend(self, caller: Caller, args: dict):
        user = _req(args, "user", str)
        caller.require_own([user])
        n, filters = self._list_args(args)
        fmt = _format(args)
        key = (n, _opt(args, "filter_owned", bool, True), None if filters["items"] is None else tuple(filters["items"]),
               None if filters["exclude"] is None else tuple(filters["exclude"]), filters["item_kind"])
        recs = await self.recommends.submit(key, user)
        if fmt == "jsonld":
            return await self._run(self._collection, recs, for_user=user)
        return {"items": _plain(recs)}

    def _recommend_batch(self, key: tuple, users: list[str]) -> list:
        """The coalesced single-user recommends of one key, answered by one core call."""
        n, filter_owned, items, exclude, item_kind = key
        return self.engine.recommend_batch(users, n, filter_owned=filter_owned,
                                           items=None if items is None else list(items),
                                           exclude=None if exclude is None else list(exclude), item_kind=item_kind)

    def _collection(self, recs, **about) -> dict:
        from .activity_output import recommendations_collection

        return recommendations_collection(recs, algorithm=self.engine.serving["algorithm"], **about)

    def _list_args(self, args: dict) -> tuple[int, dict]:
        n = _opt(args, "n", int, 10)
        self._check_batch(n, "results")
        filters = {"items": _opt_strings(args, "items"), "exclude": _opt_strings(args, "exclude"),
                   "item_kind": _opt(args, "item_kind", str, None)}
        for name in ("items", "exclude"):
            if filters[name] is not None:
                self._check_batch(len(filters[name]), name)
        return n, filters

    async def _op_recommend_batch(self, caller: Caller, args: dict) -> dict:
        users = _strings(args, "users")
        self._check_batch(len(users), "users")
        caller.require_own(users)
        n, filters = self._list_args(args)
        results = await self._run(self.engine.recommend_batch, users, n,
                                  filter_owned=_opt(args, "filter_owned", bool, True), **filters)
        return {"results": [_plain(r) for r in results]}

    async def _op_recommend_bag(self, caller: Caller, args: dict) -> dict:
        items = _strings(args, "items")
        self._check_batch(len(items), "items")
        weights = args.get("weights")
        if weights is not None and (not isinstance(weights, list) or not all(_is_number(w) for w in weights)):
            raise InvalidInputError("weights must be a list of numbers")
        n = _opt(args, "n", int, 10)
        self._check_batch(n, "results")
        recs = await self._run(self.engine.recommend_bag, items, weights, n,
                               filter_owned=_opt(args, "filter_owned", bool, True),
                               item_kind=_opt(args, "item_kind", str, None))
        return {"items": _plain(recs)}

    async def _op_similar_items(self, caller: Caller, args: dict):
        item = _req(args, "item", str)
        n, filters = self._list_args(args)
        fmt = _format(args)
        recs = await self._run(self.engine.similar_items, item, n, based_on=_opt(args, "based_on", str, "auto"),
                               **filters)
        if fmt == "jsonld":
            return await self._run(self._collection, recs, similar_to=item)
        return {"items": _plain(recs)}


class Server(ReadOps):
    """An engine served over TCP (loopback unless ``allow_remote``) and/or a Unix socket.

    ``store`` is the durable state (the server does not close it unless
    ``owns_store``); ``data_dir`` is where snapshots are written. ``port=0``
    picks a free port (see :attr:`address` once started); ``port=None``
    listens on no TCP port. ``batch_window`` is how long a ``recommend``
    arriving at an idle core waits for others to share its call (0, the
    default: none; requests arriving while the core is busy are batched
    anyway); ``snapshot_interval`` seconds
    between automatic snapshots (0: only on request and after fits); ``keep_snapshots`` how many
    snapshot directories are kept (older ones are deleted after each new one).
    """

    def __init__(self, engine: Engine, store: Store, *, data_dir, host: str = "127.0.0.1", port: int | None = 8765,
                 unix_path=None, allow_remote: bool = False, limits: Limits | None = None,
                 batch_window: float = 0.0, snapshot_interval: float = 0.0, keep_snapshots: int = 2,
                 workers: int = 8, owns_store: bool = False):
        if port is not None and not allow_remote and not is_loopback(host):
            raise InvalidInputError(f"refusing to listen on {host!r}: it is not a loopback address; "
                                    "pass allow_remote=True (--allow-remote) to serve other machines")
        if port is None and unix_path is None:
            raise InvalidInputError("give a TCP port, a Unix socket path or both")
        self.engine, self.store, self.data_dir = engine, store, Path(data_dir)
        self.host, self.port, self.unix_path = host, port, None if unix_path is None else Path(unix_path)
        self.limits = limits or Limits()
        self.snapshot_interval, self.owns_store = snapshot_interval, owns_store
        self.keep_snapshots = max(1, keep_snapshots)  # the one the store points at must stay
        self.started = time.time()
        self.requests = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backpack-server")
        self.recommends = Coalescer(self._run, self._recommend_batch, max_batch=self.limits.max_batch,
                                    linger=batch_window)
        # one group commit at a time, so the log order is the order writes arrived in
        self.writes = Coalescer(self._run, self._commit_writes, max_batch=WRITES_PER_COMMIT)
        self._write_lock = threading.Lock()  # store append + engine apply, one writer at a time
        self._tokens: dict[str, tuple[TokenRecord | None, float]] = {}
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task] = set()
        self._servers: list[asyncio.AbstractServer] = []
        self._sweeper: asyncio.Future | None = None
        scheduler = Scheduler(store)
        if snapshot_interval > 0:
            scheduler.every(snapshot_interval, SNAPSHOT_JOB, max_attempts=1, first_run=time.time() + snapshot_interval)
        self.jobs = JobRunner(store, poll_interval=0.05, scheduler=scheduler, name="backpack-server-jobs")
        self.jobs.handle(FIT_JOB, self._fit_job)
        self.jobs.handle(SNAPSHOT_JOB, self._snapshot_job)
        self.address: tuple[str, int] | None = None
        self._ops: dict[str, Callable] = {name: getattr(self, f"_op_{name}") for name in OP_ROLES if name != "hello"}

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Listen, and start the job worker (and the periodic snapshot, if any)."""
        if self.port is not None:
            server = await asyncio.start_server(self._handle, self.host, self.port, limit=2**16)
            self._servers.append(server)
            self.address = server.sockets[0].getsockname()[:2]
        if self.unix_path is not None:
            self._servers.append(await asyncio.start_unix_server(self._handle, sock=_unix_socket(self.unix_path)))
        self.store.recover_jobs()  # before the runner claims: fits a crash interrupted run again
        self.jobs.start()
        self._sweeper = asyncio.ensure_future(self._sweep_deadlines())

    async def _sweep_deadlines(self) -> None:
        """Enforce ``idle_timeout`` and ``read_timeout``: one periodic pass over the connections
        instead of a timer armed and cancelled around every read (that cost more than the read)."""
        limits = self.limits
        period = min(1.0, max(0.01, min(limits.idle_timeout, limits.read_timeout) / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for conn in list(self._connections):
                if conn.deadline <= now:
                    conn.expire(limits)

    async def close(self) -> None:
        """Stop listening, close every connection, wait for the job worker, clean up the socket file."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        for server in self._servers:
            server.close()
        for conn in list(self._connections):
            for task in conn.tasks:
                task.cancel()
            conn.writer.close()
        handlers = list(self._handlers)
        for task in handlers:  # wait for every connection's handler to finish, so none is left pending
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)
        for server in self._servers:
            await server.wait_closed()
        if self.jobs.running:
            await asyncio.get_running_loop().run_in_executor(None, self.jobs.stop)
        self._pool.shutdown(wait=True)
        if self.unix_path is not None and self.unix_path.is_socket():
            self.unix_path.unlink()
        if self.owns_store:
            self.store.close()

    async def _run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` in a worker thread (engine and store calls block)."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    # -- connections ----------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = _Connection(writer, self.limits)
        handler = asyncio.current_task()
        self._handlers.add(handler)
        try:
            if len(self._connections) >= self.limits.max_connections:
                await conn.send(error_reply(None, "too_many_connections",
                                            f"the server is at its limit of {self.limits.max_connections} "
                                            "connections; try again later"))
                return
            self._connections.add(conn)
            await self._serve(conn, reader)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the client went away: nothing to answer
        except asyncio.CancelledError:
            # close() cancels handlers; ending normally keeps asyncio's stream callback from
            # logging every open connection's cancellation as an error at shutdown
            pass
        finally:
            self._connections.discard(conn)
            try:
                if conn.tasks:  # the client left: its requests still finish (writes are acknowledged to no one)
                    await asyncio.gather(*conn.tasks, return_exceptions=True)
            finally:
                writer.close()
                self._handlers.discard(handler)

    async def _serve(self, conn: _Connection, reader: asyncio.StreamReader) -> None:
        limits = self.limits
        while True:
            conn.expect("frame", limits.idle_timeout)
            try:
                header = await reader.readexactly(HEADER.size)
            except asyncio.IncompleteReadError:
                return  # end of stream (or closed by the sweeper), possibly mid-header: a clean close
            try:
                length = frame_length(header, limits.max_frame)
            except FrameTooLargeError as exc:  # the body is not read, so the stream cannot go on
                await conn.send(error_reply(None, exc.code, str(exc)))
                return
            conn.expect("body", limits.read_timeout)
            try:
                body = await reader.readexactly(length)
            except asyncio.IncompleteReadError:
                return  # truncated frame, or too slow and closed by the sweeper
            conn.deadline = math.inf
            request = self._parse(conn, body)
            if request is None:
                continue
            if request["op"] == "hello":  # inline: a codec switch must happen before the next frame is read
                await self._respond(conn, request)
                continue
            await conn.slots.acquire()
            task = asyncio.ensure_future(self._respond(conn, request))
            conn.tasks.add(task)
            task.add_done_callback(lambda t: (conn.tasks.discard(t), conn.slots.release()))

    def _parse(self, conn: _Connection, body: bytes) -> dict | None:
        """The request in ``body``, or None after queueing an error reply for it."""
        request_id = None
        try:
            request = decode_body(body, conn.codec)
            request_id = usable_id(request)
            check_request(request)
            if not conn.bucket.take():
                raise ProtocolError("rate_limited", f"more than {self.limits.rate:g} requests/s on this "
                                                    "connection; slow down and retry")
        except ProtocolError as exc:
            # the frame boundary is intact, so the connection goes on after the error reply
            asyncio.ensure_future(conn.send(error_reply(request_id, exc.code, str(exc))))
            return None
        return request

    async def _respond(self, conn: _Connection, request: dict) -> None:
        self.requests += 1
        request_id, op, args = request["id"], request["op"], request["args"]
        switch = None
        try:
            caller = await self._caller(conn, request.get("token") or (args.get("token") if op == "hello" else None))
            if op == "hello":
                result = self._hello(conn, caller, args)
                switch = result["codec"]
            else:
                handler = self._ops.get(op)
                if handler is None:
                    raise ProtocolError("unknown_op", f"no operation {op!r}; known: {', '.join(OP_ROLES)}")
                if caller.role is None:
                    raise ProtocolError("unauthorized", "this operation needs a token (in hello or the request)")
                if caller.role not in OP_ROLES[op]:
                    raise ProtocolError("forbidden", f"a {caller.role} token may not call {op}")
                result = await handler(caller, args)
            reply = {"id": request_id, "result": result}
        except BackpackError as exc:
            reply = error_reply(request_id, exc.code, str(exc))
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a handler must not take the server down
            log.exception("op %s failed", op)
            reply = error_reply(request_id, "internal", f"{type(exc).__name__}: {exc}")
        await conn.send(reply, switch_codec=switch)

    async def _caller(self, conn: _Connection, secret: str | None) -> Caller:
        """The caller behind ``secret`` (else the connection's hello token); ``unauthorized`` if it is bad."""
        secret = secret or conn.secret
        if not secret:
            return Caller(None)
        cached = self._tokens.get(secret)
        if cached is None or cached[1] < time.monotonic():
            record = await self._run(self.store.verify_token, secret)
            if len(self._tokens) > 10_000:
                self._tokens.clear()
            cached = self._tokens[secret] = (record, time.monotonic() + TOKEN_TTL)
        record = cached[0]
        if record is None:
            raise ProtocolError("unauthorized", "the token is invalid or revoked")
        return Caller(record.role, record.user)

    def _hello(self, conn: _Connection, caller: Caller, args: dict) -> dict:
        codec = _opt(args, "codec", str, "json")
        if codec not in CODECS:
            raise InvalidInputError(f"codec must be one of {list(CODECS)}, got {codec!r}")
        _opt(args, "client", str, None)
        if args.get("token"):
            conn.secret = args["token"]
        return {"server": f"backpack {__version__}", "protocol": PROTOCOL_VERSION, "codec": codec,
                "role": caller.role, "user": caller.user, "limits": self.limits.as_dict()}

    # -- writes -------------------------------------------------------------------------

    def _pairs(self, caller: Caller, args: dict) -> tuple[list[str], list[str]]:
        users, items = _strings(args, "users"), _strings(args, "items")
        if len(users) != len(items):
            raise InvalidInputError(f"got {len(users)} users but {len(items)} items")
        self._check_batch(len(users), "interactions")
        caller.require_own(users)
        # checked here, not by the store: a bad request must fail alone, not the group commit it joins
        return id_lists(users, items)

    async def _op_add_interactions(self, caller: Caller, args: dict) -> dict:
        users, items = self._pairs(caller, args)
        weights = self._weights(args, len(users))
        raw_times = args.get("timestamps")
        times = None
        if raw_times is not None:
            if not isinstance(raw_times, list) or any(t is not None and not _is_number(t) for t in raw_times):
                raise InvalidInputError("timestamps must be a list of numbers (epoch seconds) or nulls")
            times = [None if math.isnan(t) else t for t in timestamp_array(raw_times, len(users)).tolist()]
        watermark = await self._write(("add", users, items, weights, times))
        return {"added": len(users), "watermark": watermark}

    def _weights(self, args: dict, count: int) -> list[float]:
        weights, kinds = args.get("weights"), args.get("kinds")
        if weights is not None and kinds is not None:
            raise InvalidInputError("pass weights or kinds, not both")
        if kinds is not None:
            if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                raise InvalidInputError("kinds must be a list of strings")
            unknown = sorted({k for k in kinds if k not in self.engine.kind_weights})
            if unknown:
                raise InvalidInputError(f"unknown interaction kind(s) {unknown}; known: "
                                        f"{sorted(self.engine.kind_weights)}")
            weights = [self.engine.kind_weights[k] for k in kinds]
        if weights is None:
            return [1.0] * count
        if not isinstance(weights, list) or not all(_is_number(w) for w in weights):
            raise InvalidInputError("weights must be a list of numbers")
        return weight_array(weights, count).tolist()

    async def _op_remove_interactions(self, caller: Caller, args: dict) -> dict:
        users, items = self._pairs(caller, args)
        return {"removed": await self._write(("remove", users, items, None, None))}

    async def _write(self, write: tuple) -> int:
        """Queue ``write`` for the next group commit; its result, or its run's failure raised."""
        result = await self.writes.submit(None, write)
        if isinstance(result, BaseException):
            raise result
        return result

    def _commit_writes(self, _key, writes: list[tuple]) -> list:
        """Group commit: the queued ``(op, users, items, weights, times)`` writes, each run of
        consecutive adds (or removals) stored in one transaction, then applied to the engine.
        Results in order: an add's watermark, a removal's count of pairs that were present, or
        the exception that failed its run (that run only: the runs before it are durable and
        applied, and must be answered as such)."""
        results: list = []
        with self._write_lock:
            start = 0
            while start < len(writes):
                stop = start + 1
                while stop < len(writes) and writes[stop][0] == writes[start][0]:
                    stop += 1
                commit = self._commit_adds if writes[start][0] == "add" else self._commit_removals
                try:
                    results += commit(writes[start:stop])
                except Exception as exc:  # noqa: BLE001 - handed to this run's requests
                    results += [exc] * (stop - start)
                start = stop
        return results

    def _commit_adds(self, writes: list[tuple]) -> list[int]:
        users = [u for w in writes for u in w[1]]
        if not users:
            return [self.store.watermark()] * len(writes)
        items = [i for w in writes for i in w[2]]
        weights = [x for w in writes for x in w[3]]
        times = [t for w in writes for t in (w[4] if w[4] is not None else [None] * len(w[1]))]
        last = self.store.append_interactions(users, items, weights, times)
        self.engine.add_interactions(users, items, weights,
                                     timestamps=None if all(t is None for t in times) else times)
        # one call's log positions are consecutive: a request's last row is `last` minus the rows after it
        watermarks, after = [], len(users)
        for w in writes:
            after -= len(w[1])
            watermarks.append(last - after)
        return watermarks

    def _commit_removals(self, writes: list[tuple]) -> list[int]:
        users = [u for w in writes for u in w[1]]
        items = [i for w in writes for i in w[2]]
        if users:
            self.store.append_removals(users, items)
        return [sum(self.engine.remove_interaction(u, i) for u, i in zip(w[1], w[2])) for w in writes]

    async def _op_put_items(self, caller: Caller, args: dict) -> dict:
        if "items" not in args:
            raise InvalidInputError("put_items needs items: a JSON-LD node, a list of them or a @graph document")
        return {"stored": await self._run(self._write_items, args["items"])}

    def _write_items(self, documents) -> int:
        # expanded and checked (absolute IRIs, item types), all or nothing, before anything is stored
        items = self.engine.mapper.map(expand_documents(documents), only="items").items
        self._check_batch(len(items), "items")
        with self._write_lock:
            self.store.put_items({r.id: r.node for r in items})
            return self.engine.put_items([r.node for r in items], expanded=True)

    async def _op_ingest(self, caller: Caller, args: dict) -> dict:
        if "documents" not in args:
            raise InvalidInputError("ingest needs documents: a JSON-LD document (activities, objects, actors) "
                                    "or a list of them")
        return await self._run(self._write_documents, args["documents"])

    def _write_documents(self, documents) -> dict:
        # every node expanded and mapped before anything is stored: a bad node stores nothing
        records = self.engine.mapper.map(expand_documents(documents))
        adds, removals = records.activities.interactions, records.activities.removals
        self._check_batch(len(records.items) + len(records.users) + len(adds) + len(removals), "records")
        removed = 0
        with self._write_lock:
            if records.items:
                self.store.put_items({r.id: r.node for r in records.items})
                self.engine.put_items([r.node for r in records.items], expanded=True)
            if records.users:
                self.store.put_users({u.id: u.node for u in records.users})
                self.engine.put_users([u.node for u in records.users], expanded=True)
            watermark = self.store.watermark()
            if adds:  # the log gets them in the order the engine applies them: adds, then Undo's removals
                times = [a.timestamp for a in adds]
                watermark = self.store.append_interactions([a.user for a in adds], [a.item for a in adds],
                                                           [a.weight for a in adds], times)
                self.engine.add_interactions([a.user for a in adds], [a.item for a in adds], [a.weight for a in adds],
                                             timestamps=None if all(t is None for t in times) else times)
            if removals:
                watermark = self.store.append_removals([r.user for r in removals], [r.item for r in removals])
                removed = sum(self.engine.remove_interaction(r.user, r.item) for r in removals)
        return {"interactions": len(adds), "undone": len(removals), "removed": removed,
                "items": len(records.items), "users": len(records.users), "watermark": watermark}

    # -- reads (the others are ReadOps') -----------------------------------------------------

    async def _op_stats(self, caller: Caller, args: dict) -> dict:
        bags = self.engine.bags
        return {"users": bags.n_users, "items": bags.n_items, "interactions": bags.nnz,
                "model": self.engine.serving, "uptime": time.time() - self.started,
                "connections": len(self._connections), "requests": self.requests,
                "recommend_core_calls": self.recommends.calls,
                "watermark": await self._run(self.store.watermark)}

    # -- jobs and snapshots -----------------------------------------------------------------

    async def _op_fit(self, caller: Caller, args: dict) -> dict:
        algorithm = _req(args, "algorithm", str)
        params = _opt(args, "params", dict, {})
        self.engine.plugins.algorithm(algorithm)  # an unknown name fails now, not in the job
        job = await self._run(self.store.enqueue_job, FIT_JOB, {"algorithm": algorithm, "params": params},
                              max_attempts=1)
        return {"job": job.id}

    async def _op_job_status(self, caller: Caller, args: dict) -> dict:
        job = _req(args, "job", int)
        return _job_dict(await self._run(self.store.get_job, job))

    async def _op_jobs(self, caller: Caller, args: dict) -> dict:
        state = _opt(args, "state", str, None)
        return {"jobs": [_job_dict(j) for j in await self._run(self.store.list_jobs, state)]}

    async def _op_snapshot(self, caller: Caller, args: dict) -> dict:
        return await self._run(self.snapshot)

    def snapshot(self) -> dict:
        """Save the engine as a new snapshot and record it in the store: ``{"path", "watermark"}``.

        Writes are held while the bags are saved so the watermark matches them.
        """
        folder = self.data_dir / "snapshots"
        with self._write_lock:  # recorded under the lock too, so record order is name order for pruning
            watermark = self.store.watermark()
            path = write_snapshot(self.engine, folder, watermark)
            self.store.record_snapshot(str(path), self.engine.serving["algorithm"], watermark)
            prune_snapshots(folder, self.keep_snapshots)
        return {"path": str(path), "watermark": watermark}

    def _fit_job(self, job, report_progress) -> dict:
        """A ``fit`` job: fit, then snapshot so the new model survives a restart."""
        start = time.perf_counter()
        self.engine.fit(job.args["algorithm"], **job.args.get("params", {}))
        report_progress(0.9)
        snapshot = self.snapshot()
        return {"algorithm": job.args["algorithm"], "seconds": time.perf_counter() - start,
                "snapshot": snapshot["path"]}

    def _snapshot_job(self, job, report_progress) -> dict | None:
        """A periodic ``snapshot`` job: a new snapshot only if something was written since the last."""
        latest = self.store.latest_snapshot()
        if latest is not None and latest.watermark == self.store.watermark():
            return None
        return self.snapshot()


def _unix_socket(path: Path) -> socket.socket:
    """A listening Unix socket at ``path`` with mode 0600 from the start.

    It is bound under a temporary name, restricted, and only then renamed into
    place, so no other user can connect in between (chmod after bind at the
    final path would leave a window).
    """
    if path.is_socket():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError:
            path.unlink()  # left by a server that died
        else:
            raise InvalidInputError(f"another server is listening on {path}: stop it or choose another --unix path")
        finally:
            probe.close()
    elif path.exists():
        raise InvalidInputError(f"{path} exists and is not a socket: choose another --unix path")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    if tmp.exists():
        tmp.unlink()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(tmp))
    os.chmod(tmp, 0o600)
    sock.listen(128)
    os.rename(tmp, path)
    return sock


# -- argument checks: wrong types are invalid_input, named ----------------------------------

_MISSING = object()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _typed(value, kind) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def _req(args: dict, name: str, kind):
    value = args.get(name, _MISSING)
    if value is _MISSING:
        raise InvalidInputError(f"argument {name!r} is required")
    if not _typed(value, kind):
        raise InvalidInputError(f"argument {name!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def _opt(args: dict, name: str, kind, default):
    return default if args.get(name) is None else _req(args, name, kind)


def _strings(args: dict, name: str) -> list[str]:
    value = _req(args, name, list)
    if not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"argument {name!r} must be a list of strings")
    return value


def _opt_strings(args: dict, name: str) -> list[str] | None:
    return None if args.get(name) is None else _strings(args, name)


def _format(args: dict) -> str:
    fmt = _opt(args, "format", str, "plain")
    if fmt not in ("plain", "jsonld"):
        raise InvalidInputError(f"format must be 'plain' or 'jsonld', got {fmt!r}")
    return fmt


def _plain(recs: list[Recommendation]) -> list[dict]:
    return [{"item": item, "score": score, "source": source} for item, score, source in recs]


#: the fields of a job in replies (a store's own bookkeeping, like run_at, stays inside)
JOB_FIELDS = ("id", "kind", "args", "state", "attempts", "max_attempts", "progress", "result", "error", "created",
              "updated")


def _job_dict(job) -> dict:
    return {name: getattr(job, name) for name in JOB_FIELDS}


# -- running ------------------------------------------------------------------------------

def open_server(data_dir, *, store: Store | None = None, plugins=None, num_threads: int = 0, **options) -> Server:
    """A :class:`Server` over the data directory ``data_dir``: its store (the SQLite store at
    :func:`~backpack.store.default_store_path` unless ``store`` is given) and an engine restored from it."""
    data_dir = Path(data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    owns = store is None
    if store is None:
        from .store import default_store_path, open_store

        store = open_store("sqlite", plugins, path=default_store_path(data_dir))
    engine = restore_engine(store, plugins=plugins, num_threads=num_threads, base_dir=data_dir)
    return Server(engine, store, data_dir=data_dir, owns_store=owns, **options)


EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """A fresh event loop of ``kind``: ``"uvloop"`` (libuv underneath: sockets, timers and
    callbacks cost a fraction of the standard loop's, which is most of a small request's
    cost), ``"asyncio"`` (the standard loop), or ``"auto"``: uvloop where it is installed."""
    if kind not in EVENT_LOOPS:
        raise InvalidInputError(f"event loop must be one of {list(EVENT_LOOPS)}, got {kind!r}")
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise InvalidInputError("uvloop is not installed (pip install uvloop; not on Windows)") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_on_new_loop(main, kind: str = "auto"):
    """``asyncio.run(main)`` on a loop made by :func:`new_event_loop`."""
    loop = new_event_loop(kind)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


class ServerThread:
    """A :class:`Server` running on its own event loop in a background thread (embedding, tests).

    ``with ServerThread(server) as running:`` starts it and stops it on exit. ``loop`` is the
    kind of event loop (see :func:`new_event_loop`).
    """

    def __init__(self, server: Server, *, loop: str = "auto"):
        self.server = server
        self._loop = new_event_loop(loop)
        self._thread = threading.Thread(target=self._main, name="backpack-server-loop", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that called start()
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.close())
        self._loop.close()

    def start(self) -> ServerThread:
        """Start serving; returns once listening (or raises why it could not)."""
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        """Close the server and wait for its thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

