"""The local socket server (``backpack serve``): an :class:`~backpack.Engine` behind the protocol of
:mod:`backpack.serving.protocol`, with a durable :class:`~backpack.store.base.Store` underneath.

- Writes go to the store first (durable) and only then to the engine and the
  reply: an acknowledged write survives a crash. One lock orders them, so the
  log order is the order the engine saw.
- On start the latest snapshot recorded in the store is loaded and the log
  after its watermark replayed; stored item descriptions are put back.
- Concurrent ``recommend`` requests with the same list length and filters
  are answered by one ``engine.recommend_batch`` call in a worker thread (the
  core releases the GIL): a request goes to the core at once when it is idle,
  and all that arrive while it is busy go in its next call
  (:class:`~backpack.serving.coalescing.Coalescer`), so a thousand clients asking at
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
import ipaddress
import logging
import math
import os
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from backpack._version import __version__
from backpack.engine.data_dir import DataDir, ServeLock
from backpack.engine.engine import Engine
from backpack.engine.snapshot_files import NewModel
from backpack.errors import BackpackError, FrameTooLargeError, InvalidInputError, ProtocolError
from backpack.serving.coalescing import Coalescer
from backpack.serving.protocol import (
    CODECS,
    HEADER,
    PROTOCOL_VERSION,
    decode_body,
    encode_frame,
    error_reply,
    frame_length,
)
from backpack.serving.reads import ReadOps
from backpack.serving.requests import OP_ROLES, Caller, Limits, check_request, job_dict, optional, required, usable_id
from backpack.serving.writes import WRITES_PER_COMMIT, WriteOps
from backpack.store.base import Store, TokenRecord
from backpack.store.jobs import JobRunner, Scheduler

log = logging.getLogger("backpack.serving.server")

FIT_JOB, SNAPSHOT_JOB = "fit", "snapshot"
TOKEN_TTL = 1.0  # seconds a verified token is trusted before the store is asked again (revocation delay)


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
        # until a valid token is seen: when the connection must have authenticated by (loop time)
        self.opened = asyncio.get_running_loop().time()
        self.auth_deadline = self.opened + limits.auth_timeout
        self.write_timeout = limits.write_timeout

    def expect(self, what: str, seconds: float) -> None:
        """Start waiting for ``what`` ("frame": the next header; "body": the rest of a frame)."""
        self.deadline, self.waiting_for = asyncio.get_running_loop().time() + seconds, what

    @property
    def authenticated(self) -> bool:
        return self.auth_deadline == math.inf

    def drop(self, code: str, message: str) -> None:
        """Close with one last error reply (best effort: it may never be read)."""
        self.deadline = self.auth_deadline = math.inf
        try:
            self.writer.write(encode_frame(error_reply(None, code, message), self.codec))
        except (ConnectionError, RuntimeError):
            pass
        self.writer.close()

    def expire(self, limits: Limits) -> None:
        """The deadline passed: an idle connection gets ``idle_timeout`` first; a frame stuck
        half-way (slow or truncated) is closed without a word (its stream cannot go on)."""
        self.deadline = math.inf
        if self.waiting_for == "frame":
            try:
                self.writer.write(
                    encode_frame(
                        error_reply(None, "idle_timeout", f"nothing received for {limits.idle_timeout:g} s; closing"),
                        self.codec,
                    )
                )
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
                frame = encode_frame(
                    error_reply(message.get("id"), "internal", f"reply not encodable: {exc}"), self.codec
                )
            self.writer.write(frame)
            if switch_codec is not None:
                self.codec = switch_codec
            try:
                # under back-pressure (a client that pipelines and never reads) no read deadline
                # runs: this one does, so such a client cannot hold its connection forever
                await asyncio.wait_for(self.writer.drain(), self.write_timeout)
            except asyncio.TimeoutError:
                self.writer.transport.abort()
                raise ConnectionError("the client did not read its replies within write_timeout") from None


def is_loopback(host: str) -> bool:
    """Whether ``host`` names this machine only (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Server(ReadOps, WriteOps):
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

    def __init__(
        self,
        engine: Engine,
        store: Store,
        *,
        data_dir,
        host: str = "127.0.0.1",
        port: int | None = 8765,
        unix_path=None,
        allow_remote: bool = False,
        limits: Limits | None = None,
        batch_window: float = 0.0,
        snapshot_interval: float = 0.0,
        keep_snapshots: int = 2,
        workers: int = 8,
        owns_store: bool = False,
        serve_lock: ServeLock | None = None,
    ):
        if port is not None and not allow_remote and not is_loopback(host):
            raise InvalidInputError(
                f"refusing to listen on {host!r}: it is not a loopback address; "
                "pass allow_remote=True (--allow-remote) to serve other machines"
            )
        if port is None and unix_path is None:
            raise InvalidInputError("give a TCP port, a Unix socket path or both")
        self.engine, self.store, self.data_dir = engine, store, Path(data_dir)
        self.data = DataDir(self.data_dir, store=store)  # where snapshots go; the store is the caller's
        self.serve_lock = serve_lock  # the claim on the data directory (open_server takes it), released on close
        self.host, self.port, self.unix_path = host, port, None if unix_path is None else Path(unix_path)
        self.limits = limits or Limits()
        self.snapshot_interval, self.owns_store = snapshot_interval, owns_store
        self.keep_snapshots = max(1, keep_snapshots)  # the one the store points at must stay
        self.started = time.time()
        self.requests = 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backpack-server")
        self.recommends = Coalescer(
            self._run, self._recommend_batch, max_batch=self.limits.max_batch, linger=batch_window
        )
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
        if self.serve_lock is not None:  # so a refused CLI command can say where to send its data
            self.serve_lock.announce(
                ([f"{self.address[0]}:{self.address[1]}"] if self.address else [])
                + ([str(self.unix_path)] if self.unix_path else [])
            )
        self.store.recover_jobs()  # before the runner claims: fits a crash interrupted run again
        self.jobs.start()
        self._sweeper = asyncio.ensure_future(self._sweep_deadlines())

    async def _sweep_deadlines(self) -> None:
        """Enforce ``idle_timeout`` and ``read_timeout``: one periodic pass over the connections
        instead of a timer armed and cancelled around every read (that cost more than the read)."""
        limits = self.limits
        period = min(1.0, max(0.01, min(limits.idle_timeout, limits.read_timeout, limits.auth_timeout) / 4))
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(period)
            now = loop.time()
            for conn in list(self._connections):
                if conn.deadline <= now:
                    conn.expire(limits)
                elif conn.auth_deadline <= now:
                    conn.drop("auth_timeout", f"no valid token within {limits.auth_timeout:g} s of connecting; closing")

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
        if self.serve_lock is not None:
            self.serve_lock.release()

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
                await conn.send(
                    error_reply(
                        None,
                        "too_many_connections",
                        f"the server is at its limit of {self.limits.max_connections} connections; try again later",
                    )
                )
                return
            unauthenticated = [c for c in self._connections if not c.authenticated]
            if len(unauthenticated) >= self.limits.max_unauthenticated:
                # the oldest yields: a client that sends its token at once is never the one closed
                min(unauthenticated, key=lambda c: c.opened).drop(
                    "too_many_connections", "too many connections without a token; closing the oldest"
                )
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
                raise ProtocolError(
                    "rate_limited", f"more than {self.limits.rate:g} requests/s on this connection; slow down and retry"
                )
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
        conn.auth_deadline = math.inf
        return Caller(record.role, record.user)

    def _hello(self, conn: _Connection, caller: Caller, args: dict) -> dict:
        codec = optional(args, "codec", str, "json")
        if codec not in CODECS:
            raise InvalidInputError(f"codec must be one of {list(CODECS)}, got {codec!r}")
        optional(args, "client", str, None)
        if args.get("token"):
            conn.secret = args["token"]
        return {
            "server": f"backpack {__version__}",
            "protocol": PROTOCOL_VERSION,
            "codec": codec,
            "role": caller.role,
            "user": caller.user,
            "limits": self.limits.as_dict(),
        }

    # -- writes -------------------------------------------------------------------------

    # -- reads (the others are ReadOps') -----------------------------------------------------

    async def _op_stats(self, caller: Caller, args: dict) -> dict:
        bags = self.engine.bags
        return {
            "users": bags.n_users,
            "items": bags.n_items,
            "interactions": bags.nnz,
            "model": self.engine.serving,
            "uptime": time.time() - self.started,
            "connections": len(self._connections),
            "requests": self.requests,
            "recommend_core_calls": self.recommends.calls,
            "watermark": await self._run(self.store.watermark),
            # log adds replay skips (quarantined); non-zero means an older version stored what the engine refuses
            "quarantined": await self._run(self.store.refused_adds),
        }

    # -- jobs and snapshots -----------------------------------------------------------------

    async def _op_fit(self, caller: Caller, args: dict) -> dict:
        algorithm = required(args, "algorithm", str)
        params = optional(args, "params", dict, {})
        self.engine.plugins.algorithm(algorithm)  # an unknown name fails now, not in the job
        job = await self._run(
            self.store.enqueue_job, FIT_JOB, {"algorithm": algorithm, "params": params}, max_attempts=1
        )
        return {"job": job.id}

    async def _op_job_status(self, caller: Caller, args: dict) -> dict:
        job = required(args, "job", int)
        return job_dict(await self._run(self.store.get_job, job))

    async def _op_jobs(self, caller: Caller, args: dict) -> dict:
        state = optional(args, "state", str, None)
        return {"jobs": [job_dict(j) for j in await self._run(self.store.list_jobs, state)]}

    async def _op_snapshot(self, caller: Caller, args: dict) -> dict:
        return await self._run(self.snapshot)

    def snapshot(self, model: NewModel | None = None) -> dict:
        """Save the engine as a new snapshot of the data directory and record it in the store
        (with ``model``: the model in service under that label): ``{"path", "watermark"}``.

        Writes are held while the bags are saved so the watermark matches them.
        """
        with self._write_lock:  # recorded under the lock too, so record order is name order for pruning
            watermark = self.store.watermark()
            path = self.data.commit_snapshot(self.engine, model=model, watermark=watermark, keep=self.keep_snapshots)
        return {"path": str(path), "watermark": watermark}

    def _fit_job(self, job, report_progress) -> dict:
        """A ``fit`` job: fit, then snapshot with the model (under the algorithm's name, made
        active: ``backpack models`` lists it), so it survives a restart."""
        start = time.perf_counter()
        algorithm, params = job.args["algorithm"], job.args.get("params", {})
        self.engine.fit(algorithm, **params)
        seconds = time.perf_counter() - start
        report_progress(0.9)
        snapshot = self.snapshot(NewModel(algorithm, params, seconds))
        return {
            "algorithm": job.args["algorithm"],
            "seconds": time.perf_counter() - start,
            "snapshot": snapshot["path"],
        }

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


# -- running ------------------------------------------------------------------------------


def open_server(data_dir, *, store: Store | None = None, plugins=None, num_threads: int = 0, **options) -> Server:
    """A :class:`Server` over the data directory ``data_dir``: its store (the SQLite store at
    :func:`~backpack.store.base.default_store_path` unless ``store`` is given) and an engine restored
    from it. The directory is claimed for this server until it closes: a second one is refused,
    naming the first (see :meth:`~backpack.engine.data_dir.DataDir.serve`)."""
    data = DataDir(data_dir, create=True, store=store, plugins=plugins)
    claim = data.serve()
    try:
        engine = Engine(plugins=plugins, num_threads=num_threads)
        data.load_into(engine)
        return Server(engine, data.store, data_dir=data.path, owns_store=store is None, serve_lock=claim, **options)
    except BaseException:
        claim.release()
        data.close()
        raise
