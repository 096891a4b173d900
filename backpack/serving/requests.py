"""What a request may be: which role may call each op, the limits, the caller, and the argument checks.

Shared by every host of the protocol's ops (the socket server, Ray Serve replicas), so all give the same
error codes and messages. Wrong types are ``invalid_input`` and name the argument.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from backpack.engine.results import Recommendation
from backpack.errors import InvalidInputError, ProtocolError

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
    unread: back-pressure, not an error). Fairness against connections that never
    authenticate: ``auth_timeout`` seconds after connect to present a valid token
    (``auth_timeout``, then close); at most ``max_unauthenticated`` connections without one
    (a new one closes the oldest of them with ``too_many_connections``, so idle sockets can
    never lock out clients that authenticate at once); ``write_timeout`` seconds for a reply
    to drain to a client that stopped reading (then close, whatever it pipelined).
    """

    max_frame: int = 4 << 20
    max_batch: int = 10_000
    max_results: int = 100_000
    rate: float = 2000.0
    burst: int = 500
    idle_timeout: float = 300.0
    read_timeout: float = 10.0
    max_connections: int = 256
    max_in_flight: int = 64
    auth_timeout: float = 10.0
    max_unauthenticated: int = 64
    write_timeout: float = 30.0

    def as_dict(self) -> dict:
        """The limits as sent in the ``hello`` reply."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a role (None without a token) and, for a user token, its user."""

    role: str | None
    user: str | None = None

    def require_own(self, users) -> None:
        """A user token may only name its own user."""
        if self.role == "user" and any(u != self.user for u in users):
            raise ProtocolError("forbidden", f"a user token may only act for its own user {self.user!r}")


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
    token = request["args"].get("token") if request["op"] == "hello" else None
    if token is not None and not isinstance(token, str):
        raise ProtocolError("bad_request", "hello's args.token must be a string")


_MISSING = object()


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_typed(value, kind) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def required(args: dict, name: str, kind):
    value = args.get(name, _MISSING)
    if value is _MISSING:
        raise InvalidInputError(f"argument {name!r} is required")
    if not is_typed(value, kind):
        raise InvalidInputError(f"argument {name!r} must be {kind.__name__}, got {type(value).__name__}")
    return value


def optional(args: dict, name: str, kind, default):
    return default if args.get(name) is None else required(args, name, kind)


def strings(args: dict, name: str) -> list[str]:
    value = required(args, name, list)
    if not all(isinstance(v, str) for v in value):
        raise InvalidInputError(f"argument {name!r} must be a list of strings")
    return value


def optional_strings(args: dict, name: str) -> list[str] | None:
    return None if args.get(name) is None else strings(args, name)


def reply_format(args: dict) -> str:
    fmt = optional(args, "format", str, "plain")
    if fmt not in ("plain", "jsonld"):
        raise InvalidInputError(f"format must be 'plain' or 'jsonld', got {fmt!r}")
    return fmt


def plain_recommendations(recs: list[Recommendation]) -> list[dict]:
    return [{"item": item, "score": score, "source": source} for item, score, source in recs]


#: the fields of a job in replies (a store's own bookkeeping, like run_at, stays inside)
JOB_FIELDS = (
    "id",
    "kind",
    "args",
    "state",
    "attempts",
    "max_attempts",
    "progress",
    "result",
    "error",
    "created",
    "updated",
)


def job_dict(job) -> dict:
    return {name: getattr(job, name) for name in JOB_FIELDS}
