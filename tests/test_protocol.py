"""Frames and codecs of the socket protocol, and the documented examples replayed against a real server."""

from __future__ import annotations

import asyncio
import json
import re
import socket
import struct
import time
from pathlib import Path

import msgspec
import pytest
from server_helpers import RawConnection, running_server

from backpack.errors import FrameTooLargeError, ProtocolError
from backpack.serving.protocol import ERROR_CODES, decode_body, encode_frame, frame_length, read_frame, recv_frame

DOC = Path(__file__).parent.parent / "docs" / "protocol.md"


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_frames_round_trip(codec):
    message = {"id": 3, "op": "recommend", "args": {"user": "ana", "n": 5, "items": ["é", "b"]}}
    frame = encode_frame(message, codec)
    assert struct.unpack(">I", frame[:4])[0] == len(frame) - 4
    assert decode_body(frame[4:], codec) == message


def test_json_frames_are_utf8_json_and_msgpack_frames_are_msgpack():
    message = {"id": 1, "result": {"item": "é"}}
    assert json.loads(encode_frame(message)[4:].decode("utf-8")) == message
    assert msgspec.msgpack.decode(encode_frame(message, "msgpack")[4:]) == message


@pytest.mark.parametrize("body", [b"", b"{", b"[1]", b'"text"', b"\xff\xfe", b'{"a": "\xc3\x28"}'])
def test_anything_but_one_object_is_a_bad_frame(body):
    with pytest.raises(ProtocolError) as caught:
        decode_body(body)
    assert caught.value.code == "bad_frame"


def test_msgpack_non_map_is_a_bad_frame():
    with pytest.raises(ProtocolError, match="object"):
        decode_body(msgspec.msgpack.encode([1, 2]), "msgpack")


def test_frame_length_limit():
    assert frame_length(struct.pack(">I", 100), 100) == 100
    with pytest.raises(FrameTooLargeError) as caught:
        frame_length(struct.pack(">I", 101), 100)
    assert caught.value.code == "frame_too_large"


def test_read_frame_from_a_stream_and_its_end():
    async def main():
        reader = asyncio.StreamReader()
        reader.feed_data(encode_frame({"id": 1}) + encode_frame({"id": 2})[:6])
        reader.feed_eof()
        first = decode_body(await read_frame(reader))
        with pytest.raises(asyncio.IncompleteReadError):
            await read_frame(reader)
        return first

    assert asyncio.run(main()) == {"id": 1}


def test_recv_frame_reassembles_a_frame_sent_in_pieces():
    a, b = socket.socketpair()
    frame = encode_frame({"id": "x", "result": list(range(1000))})
    for start in range(0, len(frame), 700):
        a.sendall(frame[start : start + 700])
    assert decode_body(recv_frame(b))["result"][-1] == 999
    a.close()
    with pytest.raises(ConnectionError):
        recv_frame(b)


def test_msgpack_is_spoken_from_the_frame_after_hello():
    with running_server(seeded=False) as r, RawConnection(r.tcp) as raw:
        raw.request({"id": 1, "op": "hello", "args": {"codec": "msgpack", "token": r.tokens["admin"]}})
        assert raw.reply("json")["result"]["codec"] == "msgpack"  # the hello reply is still JSON
        raw.request({"id": 2, "op": "stats", "args": {}}, "msgpack")
        body = recv_frame(raw.sock)
        assert msgspec.msgpack.decode(body)["id"] == 2
        with pytest.raises(ProtocolError):
            decode_body(body, "json")


# -- the documented examples -----------------------------------------------------------------------

ANY = "<any>"
EXAMPLE = re.compile(r"<!-- example: (?P<name>[\w-]+) -->\s*```json\n(?P<body>.*?)```", re.DOTALL)


def documented_examples() -> list[tuple[str, dict]]:
    """Every ``<!-- example: NAME -->`` block of docs/protocol.md: ``{"request", "reply"}``, in order."""
    return [(m["name"], json.loads(m["body"])) for m in EXAMPLE.finditer(DOC.read_text(encoding="utf-8"))]


def matches(expected, actual) -> bool:
    """``actual`` equals ``expected`` except where ``expected`` says ``"<any>"`` (volatile values)."""
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and expected.keys() == actual.keys()
            and all(matches(v, actual[k]) for k, v in expected.items())
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(expected) == len(actual)
            and all(matches(e, a) for e, a in zip(expected, actual))
        )
    return expected == actual


def test_matches_sees_differences():
    assert matches({"a": [1, ANY]}, {"a": [1, 2]})
    assert not matches({"a": [1, ANY]}, {"a": [1]})
    assert not matches({"a": 1}, {"a": 1, "b": 2})
    assert not matches({"a": "x"}, {"a": "y"})


def test_documented_examples_are_what_the_server_replies():
    examples = documented_examples()
    assert len(examples) >= 15 and len({name for name, _ in examples}) == len(examples)
    with running_server(seeded=False, user="https://social.example/users/ana") as r, RawConnection(r.tcp) as raw:
        secrets = {"$ADMIN": r.tokens["admin"], "$SERVICE": r.tokens["service"], "$USER": r.tokens["user"]}
        for name, example in examples:
            text = json.dumps(example["request"])
            for placeholder, secret in secrets.items():
                text = text.replace(placeholder, secret)
            raw.request(json.loads(text))
            reply = raw.reply()
            assert matches(example["reply"], reply), f"example {name}: the server replied {reply}"
            if example["request"]["op"] == "fit":  # later examples read the fitted model
                deadline = time.monotonic() + 30
                while r.store.list_jobs("available") + r.store.list_jobs("executing"):
                    assert time.monotonic() < deadline
                    time.sleep(0.01)


def test_every_error_code_is_documented():
    text = DOC.read_text(encoding="utf-8")
    for code in ERROR_CODES:
        assert f"`{code}`" in text, code
