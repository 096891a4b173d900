"""Random and malformed frames thrown at a real server: it answers each with a protocol error (never
``internal``), keeps serving a normal client afterwards, and its store stays intact."""

from __future__ import annotations

import socket
import struct

import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from server_helpers import ITEM, RawConnection, running_server

from backpack.serving.protocol import encode_frame
from backpack.serving.requests import OP_ROLES
from backpack.store.sqlite import SQLiteStore

IDS = st.sampled_from(["user0", "user1", "nobody", ITEM.format(1), ITEM.format(2), "", "é", "https://x/"])
SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**40), 2**40), st.floats(allow_nan=False), st.text(max_size=12), IDS
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner, max_size=3)),
    max_leaves=12,
)
ARG_NAMES = st.sampled_from(
    [
        "users",
        "items",
        "user",
        "item",
        "n",
        "weights",
        "kinds",
        "timestamps",
        "format",
        "filter_owned",
        "exclude",
        "item_kind",
        "based_on",
        "job",
        "state",
        "codec",
        "client",
        "token",
    ]
)
# fit is left out: random parameters could ask an algorithm for gigabytes; its arguments are checked elsewhere
OPS = st.sampled_from(sorted(set(OP_ROLES) - {"fit"}) + ["nope", ""])


@st.composite
def requests(draw) -> dict:
    """An envelope that is well formed (so the reply must be a handled error or a result), with random args."""
    args = draw(st.dictionaries(ARG_NAMES, st.one_of(VALUES, st.lists(IDS, max_size=5)), max_size=5))
    if args.get("codec") == "msgpack":
        args["codec"] = "json"  # a codec switch would make the rest of this example unreadable here
    return {"id": draw(st.integers(0, 10**6)), "op": draw(OPS), "args": args}


def frames(admin: str):
    """A frame: a random request, a random object, random bytes, or a random length header."""
    well_formed = requests().map(lambda r: ("reply", encode_frame({**r, "token": admin})))
    objects = VALUES.map(lambda v: ("reply", encode_frame({"value": v})))
    garbage = st.binary(max_size=64).map(lambda b: ("reply", struct.pack(">I", len(b)) + b))
    raw = st.binary(min_size=1, max_size=12).map(lambda b: ("maybe", b))  # may cut the stream: no reply owed
    return st.one_of(well_formed, well_formed, objects, garbage, raw)


def test_fuzzed_frames_never_break_the_server(tmp_path):
    store = SQLiteStore(tmp_path / "store.sqlite3")
    with running_server(store=store) as r:
        admin = r.tokens["admin"]

        @settings(max_examples=300, deadline=5000, suppress_health_check=list(HealthCheck), database=None)
        @given(st.lists(frames(admin), min_size=1, max_size=8))
        def throw(batch):
            with RawConnection(r.tcp, timeout=2.0) as conn:
                owed = 0
                for kind, data in batch:
                    if kind == "maybe":
                        conn.send_raw(data)
                        break  # after raw bytes the framing is unknown: stop sending
                    conn.send_raw(data)
                    owed += 1
                conn.sock.shutdown(socket.SHUT_WR)
                for _ in range(owed):
                    try:
                        body = conn.reply_body()
                    except (TimeoutError, ConnectionError):
                        break  # e.g. closed after frame_too_large
                    reply = msgspec.json.decode(body)
                    assert reply.get("error", {}).get("code") != "internal", reply

        throw()
        with r.client() as client:
            assert client.recommend("user1", 3) == r.engine.recommend("user1", 3)
            assert client.stats()["watermark"] == store.watermark()
        assert store.check() == []
