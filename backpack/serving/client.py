"""Python clients of ``backpack serve``, with the method names and arguments of :class:`~backpack.Engine`.

Switching between in-process and socket is one line::

    engine = backpack.Engine()                       # in process
    engine = Client("127.0.0.1:8765", token=SECRET)  # over the socket
    engine.add_interactions(["ana"], ["hat"])
    engine.recommend("ana", 10)                      # list[Recommendation] either way

:class:`Client` is blocking (one socket, reused, reconnected once when it
broke); :class:`AsyncClient` is asyncio and pipelines: many awaits in flight
on one connection, matched to replies by id. Error replies are raised as the
Backpack error class of their code (``invalid_input`` ->
:class:`~backpack.errors.InvalidInputError`, ...) or, for codes with no class
(``unauthorized``, ``rate_limited``, ...), as :class:`ServerError`.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import select
import socket
import time

from backpack import errors
from backpack.core.timestamps import timestamp_array
from backpack.engine.results import Recommendation
from backpack.errors import BackpackError, ServerError
from backpack.serving.protocol import check_unix_peer, decode_body, encode_frame, read_frame, recv_frame

#: job states after which a job will not change any more
FINISHED_JOB_STATES = ("completed", "discarded")
#: ops that change nothing: safe to send again after a connection broke mid-request
READ_ONLY_OPS = frozenset(
    {"hello", "recommend", "recommend_batch", "recommend_bag", "similar_items", "job_status", "jobs", "stats"}
)


#: error classes the client raises for the codes they carry
#: the error class for each code a reply may carry (the rest become :class:`ServerError`)
ERROR_CLASSES: dict[str, type[BackpackError]] = errors.by_code()


def error_from_reply(error: dict) -> BackpackError:
    """The exception for a reply's ``error`` object."""
    code, message = str(error.get("code", "internal")), str(error.get("message", ""))
    cls = ERROR_CLASSES.get(code)
    return cls.from_message(message) if cls is not None else ServerError(code, message)


def parse_address(address) -> tuple[str, object]:
    """``("tcp", (host, port))`` or ``("unix", path)`` from ``"host:port"``, ``(host, port)`` or a path."""
    if isinstance(address, tuple):
        host, port = address
        return "tcp", (host, int(port))
    text = str(address)
    host, sep, port = text.rpartition(":")
    if sep and port.isdigit() and "/" not in text:
        return "tcp", (host.strip("[]"), int(port))
    return "unix", text


def _recommendations(items: list[dict]) -> list[Recommendation]:
    return [Recommendation(r["item"], r["score"], r["source"]) for r in items]


def _times(timestamps, count: int):
    """Timestamps (numbers, datetimes, None) as epoch seconds or None, as the protocol carries them."""
    if timestamps is None:
        return None
    return [None if math.isnan(t) else t for t in timestamp_array(timestamps, count).tolist()]


def _check_job(job: dict) -> dict:
    if job["state"] != "completed":
        raise ServerError("job_failed", f"job {job['id']} ended {job['state']}: {job.get('error')}")
    return job


class EngineApi:
    """The Engine-shaped methods, once for both clients: each builds a request and says how
    to read its result; ``_request`` (blocking or a coroutine) sends it."""

    def _request(self, op: str, args: dict, convert=None):
        raise NotImplementedError  # each client defines how a request travels

    def add_interactions(self, users, items, weights=None, *, kinds=None, timestamps=None):
        """Record many interactions (durable once this returns); ``{"added", "watermark"}``."""
        users, items = list(users), list(items)
        args = {"users": users, "items": items}
        if weights is not None:
            args["weights"] = [float(w) for w in weights]
        if kinds is not None:
            args["kinds"] = list(kinds)
        if timestamps is not None:
            args["timestamps"] = _times(timestamps, len(users))
        return self._request("add_interactions", args)

    def add_interaction(
        self, user: str, item: str, weight: float | None = None, *, kind: str | None = None, timestamp=None
    ):
        """Record one interaction."""
        return self.add_interactions(
            [user],
            [item],
            None if weight is None else [weight],
            kinds=None if kind is None else [kind],
            timestamps=None if timestamp is None else [timestamp],
        )

    def remove_interactions(self, users, items):
        """Remove (user, item) pairs; how many were there."""
        return self._request(
            "remove_interactions", {"users": list(users), "items": list(items)}, lambda r: r["removed"]
        )

    def remove_interaction(self, user: str, item: str):
        """Remove one pair; False if it was not there."""
        return self._request("remove_interactions", {"users": [user], "items": [item]}, lambda r: r["removed"] == 1)

    def put_items(self, documents):
        """Store item descriptions (JSON-LD); how many were stored."""
        return self._request("put_items", {"items": documents}, lambda r: r["stored"])

    def ingest(self, documents):
        """Take JSON-LD activities, objects and actors (see ``Engine.ingest``); the counts, with the log
        ``watermark``."""
        return self._request("ingest", {"documents": documents}, lambda r: r)

    def recommend(
        self,
        user: str,
        n: int = 10,
        *,
        filter_owned: bool = True,
        items=None,
        exclude=None,
        item_kind: str | None = None,
    ):
        """Top-``n`` for ``user`` as :class:`~backpack.engine.engine.Recommendation` tuples."""
        return self._request(
            "recommend",
            _list_args(n, items, exclude, item_kind, user=user, filter_owned=filter_owned),
            lambda r: _recommendations(r["items"]),
        )

    def recommend_collection(self, user: str, n: int = 10, **filters):
        """:meth:`recommend` as an AS2 ``OrderedCollection``."""
        return self._request(
            "recommend",
            _list_args(
                n,
                filters.pop("items", None),
                filters.pop("exclude", None),
                filters.pop("item_kind", None),
                user=user,
                format="jsonld",
                **filters,
            ),
        )

    def recommend_batch(
        self, users, n: int = 10, *, filter_owned: bool = True, items=None, exclude=None, item_kind: str | None = None
    ):
        """Top-``n`` for each user."""
        return self._request(
            "recommend_batch",
            _list_args(n, items, exclude, item_kind, users=list(users), filter_owned=filter_owned),
            lambda r: [_recommendations(row) for row in r["results"]],
        )

    def recommend_bag(
        self, items, weights=None, n: int = 10, *, filter_owned: bool = True, item_kind: str | None = None
    ):
        """Top-``n`` for an ad-hoc bag of items."""
        args = {"items": list(items), "n": n, "filter_owned": filter_owned, "item_kind": item_kind}
        if weights is not None:
            args["weights"] = [float(w) for w in weights]
        return self._request("recommend_bag", args, lambda r: _recommendations(r["items"]))

    def similar_items(
        self, item: str, n: int = 10, *, items=None, exclude=None, item_kind: str | None = None, based_on: str = "auto"
    ):
        """The ``n`` items most like ``item``."""
        return self._request(
            "similar_items",
            _list_args(n, items, exclude, item_kind, item=item, based_on=based_on),
            lambda r: _recommendations(r["items"]),
        )

    def similar_collection(self, item: str, n: int = 10, **filters):
        """:meth:`similar_items` as an AS2 ``OrderedCollection``."""
        return self._request(
            "similar_items",
            _list_args(
                n,
                filters.pop("items", None),
                filters.pop("exclude", None),
                filters.pop("item_kind", None),
                item=item,
                format="jsonld",
                **filters,
            ),
        )

    def job_status(self, job: int):
        """A background job as a dict (``state``, ``progress``, ``result``, ``error``, ...)."""
        return self._request("job_status", {"job": job})

    def jobs(self, state: str | None = None):
        """Recent jobs, optionally only those in ``state`` (admin)."""
        return self._request("jobs", {"state": state}, lambda r: r["jobs"])

    def stats(self):
        """Counts, the model in service, uptime, connections."""
        return self._request("stats", {})

    def snapshot(self):
        """Have the server write a snapshot now: ``{"path", "watermark"}`` (admin)."""
        return self._request("snapshot", {})


def _list_args(n, items, exclude, item_kind, **more) -> dict:
    args = {"n": n, **more}
    if items is not None:
        args["items"] = list(items)
    if exclude is not None:
        args["exclude"] = list(exclude)
    if item_kind is not None:
        args["item_kind"] = item_kind
    return args


class Client(EngineApi):
    """Blocking client: one connection, reused; reconnected once when it broke.

    ``address`` is ``"host:port"``, ``(host, port)`` or a Unix socket path;
    ``token`` authenticates the connection (sent in ``hello``); ``codec`` is
    ``"json"`` or ``"msgpack"``. A write whose connection broke before its
    reply is not sent again (it may have been applied): its ConnectionError
    is raised.
    """

    def __init__(self, address, token: str | None = None, timeout: float = 10.0, codec: str = "json"):
        self.address, self.token, self.timeout, self.codec = address, token, timeout, codec
        self.server_info: dict | None = None
        self._sock: socket.socket | None = None
        self._wire_codec = "json"
        self._ids = itertools.count(1)

    def connect(self) -> dict:
        """Open the connection and say hello; the ``hello`` result."""
        self.close()
        kind, where = parse_address(self.address)
        family = socket.AF_UNIX if kind == "unix" else socket.AF_INET6 if ":" in where[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(where)
            if kind == "unix":
                check_unix_peer(sock, where)
        except OSError:  # UntrustedServerError included (a ConnectionError)
            sock.close()
            raise
        self._sock, self._wire_codec = sock, "json"
        hello = {"codec": self.codec}
        if self.token:
            hello["token"] = self.token
        self.server_info = self._exchange("hello", hello)
        self._wire_codec = self.codec
        return self.server_info

    def close(self) -> None:
        """Close the connection (the next call opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Client:
        self.connect()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _exchange(self, op: str, args: dict):
        request_id = next(self._ids)
        self._sock.sendall(encode_frame({"id": request_id, "op": op, "args": args}, self._wire_codec))
        while True:
            reply = decode_body(recv_frame(self._sock), self._wire_codec)
            if reply.get("id") == request_id or reply.get("id") is None:
                break  # an id-less reply is about the connection (idle_timeout, ...): it answers this call
        if "error" in reply:
            if reply.get("id") is None:
                self.close()
            raise error_from_reply(reply["error"])
        return reply["result"]

    def _request(self, op: str, args: dict, convert=None):
        if self._sock is not None and select.select([self._sock], [], [], 0)[0]:
            # between calls nothing is due, so a readable socket was closed by the server (an
            # idle_timeout notice or end of stream): start afresh rather than fail this call
            self.close()
        if self._sock is None:
            self.connect()
        try:
            result = self._exchange(op, args)
        except (TimeoutError, ConnectionError, OSError) as exc:
            self.close()
            if op not in READ_ONLY_OPS and not isinstance(exc, BrokenPipeError):
                raise  # the write may have been applied: sending it again could apply it twice
            self.connect()
            result = self._exchange(op, args)
        return result if convert is None else convert(result)

    def fit(
        self,
        algorithm: str = "itemknn",
        *,
        wait: bool = False,
        poll: float = 0.05,
        timeout: float | None = None,
        **params,
    ):
        """Start fitting ``algorithm`` (a background job on the server); its job id.
        ``wait=True`` polls until the job finished (error if it failed) and returns the id."""
        job = self._request("fit", {"algorithm": algorithm, "params": params}, lambda r: r["job"])
        deadline = None if timeout is None else time.monotonic() + timeout
        while wait:
            status = self.job_status(job)
            if status["state"] in FINISHED_JOB_STATES:
                _check_job(status)
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job} still {status['state']} after {timeout} s")
            time.sleep(poll)
        return job


class AsyncClient(EngineApi):
    """asyncio client: every method is a coroutine; many may be in flight on one connection.

    Use ``async with AsyncClient(address, token=...) as client:`` or call
    :meth:`connect` first. Replies are matched to requests by id.
    """

    def __init__(self, address, token: str | None = None, timeout: float = 10.0, codec: str = "json"):
        self.address, self.token, self.timeout, self.codec = address, token, timeout, codec
        self.server_info: dict | None = None
        self._reader = self._writer = None
        self._wire_codec = "json"
        self._ids = itertools.count(1)
        self._waiting: dict[object, asyncio.Future] = {}
        self._reading: asyncio.Task | None = None

    async def connect(self) -> dict:
        """Open the connection and say hello; the ``hello`` result."""
        kind, where = parse_address(self.address)
        if kind == "unix":
            opened = asyncio.open_unix_connection(where)
        else:
            opened = asyncio.open_connection(*where)
        self._reader, self._writer = await asyncio.wait_for(opened, self.timeout)
        if kind == "unix":
            try:
                check_unix_peer(self._writer.get_extra_info("socket"), where)
            except OSError:
                self._writer.close()
                self._writer = None
                raise
        self._wire_codec = "json"
        self._reading = asyncio.ensure_future(self._read_replies())
        hello = {"codec": self.codec}
        if self.token:
            hello["token"] = self.token
        # the codec switches after the hello reply: nothing else may be sent before it arrived
        self.server_info = await self._send("hello", hello)
        self._wire_codec = self.codec
        return self.server_info

    async def close(self) -> None:
        """Close the connection; calls still waiting fail with ConnectionError."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._reading is not None:
            self._reading.cancel()
            self._reading = None
        self._fail_all(ConnectionError("the client was closed"))

    async def __aenter__(self) -> AsyncClient:
        await self.connect()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def _fail_all(self, exc: BaseException) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(exc)
        self._waiting.clear()

    async def _read_replies(self) -> None:
        try:
            while True:
                reply = decode_body(await read_frame(self._reader), self._wire_codec)
                future = self._waiting.pop(reply.get("id"), None)
                if future is not None and not future.done():
                    future.set_result(reply)
                elif reply.get("id") is None and "error" in reply:  # about the connection: everyone fails
                    self._fail_all(error_from_reply(reply["error"]))
        except (asyncio.IncompleteReadError, ConnectionError, BackpackError) as exc:
            self._fail_all(ConnectionError(f"the connection to the server broke: {exc}"))

    async def _send(self, op: str, args: dict):
        request_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        self._writer.write(encode_frame({"id": request_id, "op": op, "args": args}, self._wire_codec))
        await self._writer.drain()
        try:
            reply = await asyncio.wait_for(future, self.timeout)
        finally:
            self._waiting.pop(request_id, None)  # answered, timed out or cancelled: no longer awaited
        if "error" in reply:
            raise error_from_reply(reply["error"])
        return reply["result"]

    async def _request(self, op: str, args: dict, convert=None):
        if self._writer is None:
            await self.connect()
        result = await self._send(op, args)
        return result if convert is None else convert(result)

    async def fit(
        self,
        algorithm: str = "itemknn",
        *,
        wait: bool = False,
        poll: float = 0.05,
        timeout: float | None = None,
        **params,
    ):
        """Start fitting ``algorithm``; its job id (``wait=True``: once the job finished)."""
        job = await self._request("fit", {"algorithm": algorithm, "params": params}, lambda r: r["job"])
        deadline = None if timeout is None else time.monotonic() + timeout
        while wait:
            status = await self.job_status(job)
            if status["state"] in FINISHED_JOB_STATES:
                _check_job(status)
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"job {job} still {status['state']} after {timeout} s")
            await asyncio.sleep(poll)
        return job
