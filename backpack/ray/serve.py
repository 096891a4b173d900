"""Serving on Ray Serve: replicas of the engine behind the socket protocol's semantics.

:func:`serve_on_ray` deploys ``num_replicas`` copies of :class:`EngineReplica`,
each an :class:`~backpack.Engine` opened from one saved data directory (what
``engine.save``, ``backpack fit`` or a server snapshot writes), and returns a
:class:`RayServeClient`: the method names of :class:`~backpack.serving.client.Client`
and of the engine, routed through the Serve ``DeploymentHandle``. Switching
is one line::

    engine = Client("127.0.0.1:8765", token=SECRET)                 # one server, over a socket
    engine = serve_on_ray("/shared/backpack/snapshot", num_replicas=4)  # replicas on a Ray cluster
    engine.recommend("ana", 10)                                       # list[Recommendation] either way

A replica answers protocol requests (``{"id", "op", "args"}``) with protocol
replies (``{"id", "result"}`` or ``{"id", "error": {"code", "message"}}``)
through the same op code as the socket server (:class:`~backpack.serving.server.ReadOps`):
same argument checks, same results, same error codes and messages. Replicas
are read-only copies of one snapshot: ``add_interactions``, ``fit`` and the
other write and job ops are refused with ``read_only``
(:class:`~backpack.errors.ReadOnlyReplicaError`), because a write applied to
one replica would make the replicas disagree and would not be durable. Writes
go to the server that owns the store; a new snapshot is rolled out by calling
:func:`serve_on_ray` again with its path (Serve replaces replicas one by one).
"""

from __future__ import annotations

import asyncio
import itertools
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from backpack._version import __version__
from backpack.errors import BackpackError, ProtocolError, RayUnavailableError, ReadOnlyReplicaError
from backpack.serving.client import READ_ONLY_OPS, EngineApi, error_from_reply
from backpack.serving.coalescing import Coalescer
from backpack.serving.protocol import PROTOCOL_VERSION, error_reply
from backpack.serving.reads import ReadOps
from backpack.serving.requests import OP_ROLES, Caller, Limits, check_request, usable_id

#: the ops a replica answers; every other op the socket server knows is refused with ``read_only``
REPLICA_OPS = ("hello", "recommend", "recommend_batch", "recommend_bag", "similar_items", "stats")
#: the role requests run with: the handle is reached only from inside the Ray cluster, whose network
#: is the boundary, so there is no token; "service" (a platform backend) may call every replica op
REPLICA_ROLE = "service"


class EngineReplica(ReadOps):
    """One Serve replica: an engine opened from ``data_dir`` answering protocol requests.

    ``limits`` are the socket server's :class:`~backpack.serving.server.Limits` (only
    ``max_batch`` applies here: Ray carries no frames or connections);
    concurrent ``recommend`` calls share core calls as on the socket server
    (``batch_window``: how long one arriving at an idle core waits for
    company, 0 by default); ``num_threads`` is the core's thread
    count per replica.
    """

    def __init__(
        self,
        data_dir: str,
        *,
        model: str | None = None,
        limits: Limits | None = None,
        batch_window: float = 0.0,
        num_threads: int = 1,
        workers: int = 4,
    ):
        from backpack.engine.engine import Engine

        self.data_dir = str(data_dir)
        self.engine = Engine.open(self.data_dir, model=model, num_threads=num_threads)
        self.limits = limits or Limits()
        self.started, self.requests = time.time(), 0
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="backpack-replica")
        self.recommends = Coalescer(
            self._run, self._recommend_batch, max_batch=self.limits.max_batch, linger=batch_window
        )
        self._caller = Caller(REPLICA_ROLE)
        self._ops = {name: getattr(self, f"_op_{name}") for name in REPLICA_OPS}

    async def _run(self, fn, *args, **kwargs):
        """``fn(*args, **kwargs)`` in a worker thread: the core releases the GIL, the replica's loop stays free."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    async def respond(self, request: dict) -> dict:
        """The protocol reply to one request; never raises (a bug is an ``internal`` error reply)."""
        self.requests += 1
        request_id = usable_id(request) if isinstance(request, dict) else None
        try:
            if not isinstance(request, dict):
                raise ProtocolError("bad_request", f"a request is an object, got {type(request).__name__}")
            check_request(request)
            op = request["op"]
            handler = self._ops.get(op)
            if handler is None:
                if op in OP_ROLES:
                    raise ReadOnlyReplicaError(
                        f"{op} is not served by Ray Serve replicas: they answer reads from read-only copies of "
                        f"the snapshot {self.data_dir}. Send writes and jobs to the server that owns the store "
                        "(backpack serve), then roll out its next snapshot with serve_on_ray(new_path)"
                    )
                raise ProtocolError("unknown_op", f"no operation {op!r}; known: {', '.join(OP_ROLES)}")
            return {"id": request_id, "result": await handler(self._caller, request["args"])}
        except BackpackError as exc:
            return error_reply(request_id, exc.code, str(exc))
        except Exception as exc:  # noqa: BLE001 - a failing handler must not kill the replica
            return error_reply(request_id, "internal", f"{type(exc).__name__}: {exc}")

    async def _op_hello(self, caller: Caller, args: dict) -> dict:
        return {
            "server": f"backpack {__version__} (ray serve replica)",
            "protocol": PROTOCOL_VERSION,
            "role": caller.role,
            "user": caller.user,
            "limits": self.limits.as_dict(),
        }

    async def _op_stats(self, caller: Caller, args: dict) -> dict:
        # the socket server's stats, less what a replica has not got (connections, the store's watermark),
        # plus which replica answered and what it serves
        bags = self.engine.bags
        return {
            "users": bags.n_users,
            "items": bags.n_items,
            "interactions": bags.nnz,
            "model": self.engine.serving,
            "uptime": time.time() - self.started,
            "requests": self.requests,
            "recommend_core_calls": self.recommends.calls,
            "replica": _replica_id(),
            "snapshot": self.data_dir,
        }


class RayServeClient(EngineApi):
    """Engine-shaped calls on a Serve application of :class:`EngineReplica` (see :func:`serve_on_ray`).

    The methods are :class:`~backpack.serving.client.Client`'s, with its results and
    its error classes. A read whose replica died mid-request is sent again
    (up to ``retries`` times): reads change nothing, and Serve routes the
    retry to a live replica. ``timeout`` seconds per request.
    """

    def __init__(self, handle, *, name: str, timeout: float = 30.0, retries: int = 2):
        self.handle, self.name, self.timeout, self.retries = handle, name, timeout, retries
        self._ids = itertools.count(1)

    def request(self, op: str, args: dict, request_id=None) -> dict:
        """The raw protocol reply to ``{"id", "op", "args"}`` (tests, tools)."""
        request = {"id": next(self._ids) if request_id is None else request_id, "op": op, "args": args}
        return self._send(request)

    def _send(self, request) -> dict:
        from ray.exceptions import RayActorError

        for attempt in range(self.retries + 1):
            try:
                return self.handle.respond.remote(request).result(timeout_s=self.timeout)
            except RayActorError:
                if attempt == self.retries or request.get("op") not in READ_ONLY_OPS:
                    raise

    def _request(self, op: str, args: dict, convert=None):
        reply = self.request(op, args)
        if "error" in reply:
            raise error_from_reply(reply["error"])
        return reply["result"] if convert is None else convert(reply["result"])

    def fit(self, algorithm: str = "itemknn", **params):
        """Refused with :class:`~backpack.errors.ReadOnlyReplicaError`: fit where the data is written."""
        return self._request("fit", {"algorithm": algorithm, "params": params})

    def close(self) -> None:
        """Delete the Serve application (its replicas stop); Ray and Serve keep running."""
        from ray import serve

        serve.delete(self.name)

    def __enter__(self) -> RayServeClient:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve_on_ray(
    data_dir,
    *,
    num_replicas: int = 2,
    name: str = "backpack",
    model: str | None = None,
    limits: Limits | None = None,
    batch_window: float = 0.0,
    num_threads: int = 1,
    cpus_per_replica: float = 1.0,
    max_ongoing_requests: int = 64,
    address: str | None = None,
    timeout: float = 30.0,
    retries: int = 2,
) -> RayServeClient:
    """Deploy ``num_replicas`` engine replicas from the data directory ``data_dir`` as the Serve
    application ``name``; a :class:`RayServeClient` on it once every replica is up.

    ``data_dir`` must be readable at the same path on every node that runs a
    replica (a shared or synced file system). Calling it again with the same
    ``name`` updates the application in place (a new snapshot, another
    replica count). ``address`` is as in :func:`backpack.ray.cluster.connect`;
    Serve is started without an HTTP proxy when it is not running yet (start
    it yourself for HTTP). Each replica reserves ``cpus_per_replica`` CPUs
    and runs the core with ``num_threads`` threads.
    """
    from backpack.engine.data_dir import DataDir
    from backpack.errors import DataDirError
    from backpack.ray.cluster import connect, positive_count

    path = Path(data_dir).expanduser().resolve()  # workers start elsewhere: relative paths would not resolve
    if not DataDir(path).initialised:
        raise DataDirError(
            f"{path} is not a saved Backpack data directory (engine.save, backpack fit or a server snapshot write one)"
        )
    num_replicas = positive_count(num_replicas, "num_replicas")
    connect(address)
    serve = _import_serve()
    _start_serve(serve)
    deployment = serve.deployment(
        EngineReplica,
        name="EngineReplica",
        num_replicas=num_replicas,
        max_ongoing_requests=max_ongoing_requests,
        ray_actor_options={"num_cpus": cpus_per_replica},
    )
    app = deployment.bind(str(path), model=model, limits=limits, batch_window=batch_window, num_threads=num_threads)
    handle = serve.run(app, name=name, route_prefix=None)
    return RayServeClient(handle, name=name, timeout=timeout, retries=retries)


def _import_serve():
    try:
        from ray import serve
    except ImportError as exc:
        raise RayUnavailableError("serving on Ray needs Ray Serve: pip install 'backpack-engine[ray]'") from exc
    return serve


def _start_serve(serve) -> None:
    """Start Serve without its HTTP proxy: the handle needs no port, and Serve's fixed one (8000) may be
    taken on a shared machine. A Serve already running (with a proxy, if its owner wanted one) is used as
    it is."""
    serve.start(proxy_location="Disabled")


def _replica_id() -> str | None:
    from ray import serve

    try:
        return str(serve.get_replica_context().replica_id.unique_id)
    except Exception:  # noqa: BLE001 - outside a replica (a replica object used directly, in tests)
        return None
