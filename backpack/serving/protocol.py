"""The socket protocol's frames and codecs (the reference is ``docs/protocol.md``).

A frame is a 4-byte big-endian unsigned length ``N`` followed by ``N`` bytes
of body. A body is one object: UTF-8 JSON, or MessagePack once a ``hello``
with ``codec: "msgpack"`` succeeded (both directions switch from the frame
after its reply). Requests are ``{"id", "op", "args", "token"?}``; replies
``{"id", "result"}`` or ``{"id", "error": {"code", "message"}}``.

This module knows nothing of sockets beyond reading exactly ``N`` bytes: the
server (asyncio) and the clients (blocking and asyncio) share it.
"""

from __future__ import annotations

import asyncio
import os
import socket
import struct

import msgspec

from backpack.errors import FrameTooLargeError, ProtocolError, UntrustedServerError

PROTOCOL_VERSION = 1
CODECS = ("json", "msgpack")
HEADER = struct.Struct(">I")
#: largest length a 4-byte header can carry; a server's own limit is usually far lower
MAX_LENGTH = 2**32 - 1
#: deepest nesting of arrays and objects a body may have: deeper ones are refused with ``too_deep``
#: before anything recurses over them (the decoder itself, JSON-LD expansion, the reply encoder)
MAX_DEPTH = 64

#: every error code the protocol itself produces, with when (a BackpackError raised by the
#: engine travels with its own ``code`` as well, e.g. ``stale_model`` or ``unknown_context``)
ERROR_CODES = {
    "bad_frame": "the body is not one JSON (or MessagePack) object, or not valid UTF-8; the connection stays open",
    "frame_too_large": "the length header exceeds the server's max frame size; the connection is closed after it",
    "too_deep": "the body nests arrays/objects deeper than the server's max depth (64); the connection stays open",
    "bad_request": "id, op or args missing or of the wrong type (a token that is not a string, too)",
    "unknown_op": "no operation has that name",
    "unauthorized": "no token, or an invalid or revoked one",
    "forbidden": "the token's role may not do this (or a user token named another user)",
    "invalid_input": "an argument has the wrong shape, type, range or value",
    "unknown_item": "an item id the model has never seen",
    "unknown_user": "a user id the engine has never seen, where one is required",
    "not_fitted": "no model is in service yet: run fit first",
    "batch_too_large": "more entries in one request than the server's max batch size",
    "too_many_results": "users x n of one request is more than the server's max results: split it or ask for fewer",
    "rate_limited": "this connection sent requests faster than its allowed rate; retry later",
    "too_many_connections": "the server is at its connection limit; the connection is closed after it",
    "idle_timeout": "nothing was received for the idle timeout; the connection is closed after it",
    "auth_timeout": "no valid token within the auth timeout of connecting; the connection is closed after it",
    "unknown_job": "no job has that id",
    "read_only": "a write or job op sent to read-only replicas (Ray Serve); send it to the server that owns the store",
    "internal": "the server failed while handling the request (a bug); the server keeps running",
}


_json_encoder = msgspec.json.Encoder()
_msgpack_encoder = msgspec.msgpack.Encoder()
_decoders = {"json": msgspec.json.Decoder(), "msgpack": msgspec.msgpack.Decoder()}


def encode_body(message: dict, codec: str = "json") -> bytes:
    """``message`` as a body in ``codec``."""
    return (_msgpack_encoder if codec == "msgpack" else _json_encoder).encode(message)


def encode_frame(message: dict, codec: str = "json") -> bytes:
    """``message`` as a whole frame: length header plus body."""
    body = encode_body(message, codec)
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes, codec: str = "json", max_depth: int = MAX_DEPTH) -> dict:
    """The object in ``body``; :class:`ProtocolError` ``bad_frame`` if it is not one, ``too_deep``
    if it nests deeper than ``max_depth``."""
    try:
        message = _decoders[codec].decode(body)
    except (msgspec.DecodeError, UnicodeDecodeError) as exc:
        raise ProtocolError("bad_frame", f"body is not a {codec} object: {exc}") from None
    except RecursionError:  # the decoder's own recursion guard, far deeper than max_depth
        raise ProtocolError("too_deep", f"body nests deeper than {max_depth} levels") from None
    if not isinstance(message, dict):
        raise ProtocolError("bad_frame", f"body must be a {codec} object, got {type(message).__name__}")
    if nesting_depth(message, max_depth) > max_depth:
        raise ProtocolError("too_deep", f"body nests deeper than {max_depth} levels")
    return message


def nesting_depth(value, limit: int) -> int:
    """How deep ``value`` nests lists and dicts (a scalar is 0), counted without recursion and
    stopping once past ``limit``: linear in the size of ``value``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = node.values()
        elif isinstance(node, list):
            children = node
        else:
            continue
        deepest = max(deepest, depth)
        if deepest > limit:
            return deepest
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def frame_length(header: bytes, limit: int) -> int:
    """The body length a header announces; :class:`FrameTooLargeError` over ``limit``."""
    (length,) = HEADER.unpack(header)
    if length > limit:
        raise FrameTooLargeError(length, limit)
    return length


async def read_frame(reader: asyncio.StreamReader, limit: int = MAX_LENGTH) -> bytes:
    """One frame's body from ``reader`` (``asyncio.IncompleteReadError`` at end of stream)."""
    length = frame_length(await reader.readexactly(HEADER.size), limit)
    return await reader.readexactly(length)


def recv_exactly(sock: socket.socket, count: int) -> bytes:
    """``count`` bytes from a blocking socket; ConnectionError if it closes first."""
    chunks, remaining = [], count
    while remaining:
        chunk = sock.recv(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("the server closed the connection")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def recv_frame(sock: socket.socket, limit: int = MAX_LENGTH) -> bytes:
    """One frame's body from a blocking socket."""
    return recv_exactly(sock, frame_length(recv_exactly(sock, HEADER.size), limit))


def error_reply(request_id, code: str, message: str) -> dict:
    """A reply carrying an error (``request_id`` None when the request had no usable id)."""
    return {"id": request_id, "error": {"code": code, "message": message}}


def check_unix_peer(sock: socket.socket, path) -> None:
    """:class:`UntrustedServerError` unless the process at the other end of the Unix socket
    ``sock`` runs as this user or root, checked before a client sends anything (its token is in
    its first frame). Where the kernel cannot say (no ``SO_PEERCRED``), nothing is checked."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None or not hasattr(os, "getuid"):
        return
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    if uid not in (os.getuid(), 0):
        raise UntrustedServerError(
            f"the process listening on {path} runs as uid {uid}, not as you (uid {os.getuid()}) or root: "
            "not sending it the token; another user may have bound the path before the server"
        )
