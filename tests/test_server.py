"""The socket server: round trips, pipelining, micro-batching, roles, limits, bad input, restore."""

from __future__ import annotations

import asyncio
import os
import stat
import struct
import time

import pytest
from memory_store import MemoryStore
from server_helpers import ITEM, USERS, RawConnection, running_server

import backpack
from backpack.errors import BackpackError, InvalidInputError, ServerError, StoreError
from backpack.serving.client import AsyncClient, Client
from backpack.serving.loop import ServerThread
from backpack.serving.requests import OP_ROLES, Limits
from backpack.serving.server import Server
from backpack.serving.snapshots import restore_engine


@pytest.fixture(scope="module")
def running():
    with running_server(batch_window=0.01) as r:
        yield r


# -- round trips -----------------------------------------------------------------------


def test_writes_reach_the_engine_and_the_log(running):
    with running.client() as client:
        before = running.store.watermark()
        reply = client.add_interactions(
            ["fresh-user", "fresh-user"],
            [ITEM.format(3), ITEM.format(5)],
            kinds=["like", "equip"],
            timestamps=[1_700_000_000, None],
        )
        assert reply == {"added": 2, "watermark": before + 2}
        assert running.store.log[-1].weight == 5.0 and running.store.log[-2].timestamp == 1_700_000_000
        owned = {r.item for r in client.recommend("fresh-user", 20, filter_owned=False)}
        assert {ITEM.format(3), ITEM.format(5)} <= owned
        assert client.remove_interaction("fresh-user", ITEM.format(3)) is True
        assert client.remove_interaction("fresh-user", ITEM.format(3)) is False
        assert running.store.log[-1].op == "remove"


def test_put_items_are_stored_and_kinds_usable(running):
    node = {
        "@id": "https://assets.example/item/hat",
        "@type": "https://schema.org/3DModel",
        "https://schema.org/name": "Hat",
    }
    with running.client("service") as client:
        assert client.put_items([node]) == 1
    assert running.store.items[node["@id"]]["@id"] == node["@id"]
    assert running.engine.item_descriptions.get(node["@id"]) is not None
    assert running.engine.item_kinds.indices("3DModel", running.engine.bags).size == 1


def test_ingest_takes_activitystreams_activities_objects_and_actors(running):
    ana, boat = "https://social.example/users/ana", "https://assets.example/item/boat"
    as2 = "https://www.w3.org/ns/activitystreams"
    like = {"id": "https://social.example/likes/1", "type": "Like", "actor": ana, "object": boat}
    with running.client("service") as client:
        before = running.store.watermark()
        counts = client.ingest(
            {
                "@context": as2,
                "@graph": [
                    {"id": ana, "type": "Person", "name": "Ana"},
                    {"id": boat, "type": "Image", "name": "Boat"},
                    like,
                ],
            }
        )
        assert {k: counts[k] for k in ("interactions", "items", "users")} == {"interactions": 1, "items": 1, "users": 1}
        assert counts["watermark"] == before + 1 and running.store.log[-1].item == boat
        assert running.engine.bags.bag(ana) == {boat: 3.0}
        assert running.store.items[boat]["@type"] == [as2 + "#Image"]  # stored expanded
        undo = client.ingest(
            {"@context": as2, "id": "https://social.example/undo/1", "type": "Undo", "actor": ana, "object": like}
        )
        assert undo["removed"] == 1 and running.engine.bags.bag(ana) == {} and running.store.log[-1].op == "remove"
        with pytest.raises(backpack.InvalidInputError, match="not an absolute IRI"):
            client.ingest({"@context": as2, "id": "likes/2", "type": "Like", "actor": ana, "object": boat})
        assert running.store.log[-1].op == "remove"  # the bad document stored nothing


def test_jsonld_format_gives_an_activitystreams_collection(running):
    ana = "https://social.example/users/ana"  # AS2 output names users by IRI
    with running.client() as client:
        client.add_interactions([ana, ana], [ITEM.format(1), ITEM.format(2)])
        collection = client.recommend_collection(ana, 3)
    assert collection["type"] == "OrderedCollection" and collection["recommendedFor"] == ana
    ranked = [entry["recommendedItem"] for entry in collection["orderedItems"]]
    assert ranked == [r.item for r in running.engine.recommend(ana, 3)] and len(ranked) == 3


def test_unix_socket_is_private_to_its_owner(running):
    assert stat.S_IMODE(os.stat(running.unix).st_mode) == 0o600


def test_non_loopback_bind_needs_allow_remote(tmp_path):
    engine = restore_engine(MemoryStore())
    with pytest.raises(InvalidInputError, match="allow-remote"):
        Server(engine, MemoryStore(), data_dir=tmp_path, host="0.0.0.0", port=0)
    Server(engine, MemoryStore(), data_dir=tmp_path, host="0.0.0.0", port=0, allow_remote=True)


# -- pipelining and micro-batching --------------------------------------------------------------


class SlowAppendStore(MemoryStore):
    """A store whose log appends take a while, as an fsync does, and are counted."""

    def __init__(self):
        super().__init__()
        self.appends = 0

    def append_interactions(self, users, items, weights, timestamps=None) -> int:
        self.appends += 1
        time.sleep(0.02)
        return super().append_interactions(users, items, weights, timestamps)


def test_writes_queued_during_a_commit_share_the_next_one_and_each_gets_its_own_watermark():
    store = SlowAppendStore()
    with running_server(store=store, seeded=False) as r:
        requests = [
            ([f"gc-user{c}"] * (1 + k % 3), [ITEM.format((c * 7 + k + j) % 20) for j in range(1 + k % 3)])
            for c in range(8)
            for k in range(5)
        ]

        async def main():
            clients = [AsyncClient(r.tcp, token=r.tokens["service"]) for _ in range(8)]
            for c in clients:
                await c.connect()
            try:
                return await asyncio.gather(
                    *(clients[i % 8].add_interactions(users, items) for i, (users, items) in enumerate(requests))
                )
            finally:
                for c in clients:
                    await c.close()

        appends_before = store.appends
        replies = asyncio.run(main())
        assert store.appends - appends_before < len(requests) / 2, "writes were not committed in groups"
        by_seq = {e.seq: (e.user, e.item) for e in store.log}
        for (users, items), reply in zip(requests, replies):
            w, n = reply["watermark"], reply["added"]
            assert n == len(users)
            assert [by_seq[s] for s in range(w - n + 1, w + 1)] == list(zip(users, items))
        assert len({reply["watermark"] for reply in replies}) == len(requests)
        assert store.check() == []
        for users, items in requests:
            assert set(items) <= set(r.engine.bags.bag(users[0]))


class FailingRemovalsStore(SlowAppendStore):
    """Slow appends (so writes queue into one group) and a log that refuses removals."""

    def append_removals(self, users, items) -> int:
        raise StoreError("disk full (simulated)")


def test_a_failing_run_fails_only_its_own_requests_and_the_acknowledged_adds_stay():
    store = FailingRemovalsStore()
    with running_server(store=store, seeded=False) as r:

        async def main():
            client = AsyncClient(r.tcp, token=r.tokens["service"])
            await client.connect()
            try:
                blocker = asyncio.ensure_future(client.add_interactions(["early"], [ITEM.format(0)]))
                await asyncio.sleep(0.005)  # its commit is running (and slow): the next three queue together
                return await asyncio.gather(
                    blocker,
                    client.add_interactions(["ana"], [ITEM.format(1)]),
                    client.remove_interactions(["ana"], [ITEM.format(1)]),
                    client.add_interactions(["ana"], [ITEM.format(2)]),
                    return_exceptions=True,
                )
            finally:
                await client.close()

        early, added, removal, added_after = asyncio.run(main())
        assert r.server.writes.calls <= 2, "the removal did not share a group commit with adds"
        assert isinstance(removal, BackpackError) and "disk full" in str(removal)
        assert early["added"] == added["added"] == added_after["added"] == 1
        assert set(r.engine.bags.bag("ana")) == {ITEM.format(1), ITEM.format(2)}  # the removal never applied
        assert [(e.op, e.user, e.item) for e in store.log if e.user == "ana"] == [
            ("add", "ana", ITEM.format(1)),
            ("add", "ana", ITEM.format(2)),
        ]


def test_a_bad_write_fails_alone_while_it_shares_a_commit_with_good_ones(running):
    async def main():
        client = AsyncClient(running.tcp, token=running.tokens["service"])
        await client.connect()
        try:
            return await asyncio.gather(
                client.add_interactions(["ok-user"], [ITEM.format(1)]),
                client.add_interactions([""], [ITEM.format(2)]),
                client.add_interactions(["ok-user"], [ITEM.format(2)]),
                return_exceptions=True,
            )
        finally:
            await client.close()

    good, bad, also_good = asyncio.run(main())
    assert isinstance(bad, InvalidInputError) and "non-empty" in str(bad)
    assert good["added"] == also_good["added"] == 1
    assert {ITEM.format(1), ITEM.format(2)} <= set(running.engine.bags.bag("ok-user"))


def test_concurrent_recommends_share_few_core_calls(running, monkeypatch):
    engine = running.engine
    original = engine.recommend_batch
    calls = []

    def counting(users, *args, **kwargs):
        calls.append(list(users))
        return original(users, *args, **kwargs)

    monkeypatch.setattr(engine, "recommend_batch", counting)
    users = [USERS[i % len(USERS)] for i in range(50)]

    async def main():
        clients = [AsyncClient(running.tcp, token=running.tokens["service"]) for _ in range(5)]
        for c in clients:
            await c.connect()
        try:
            return await asyncio.gather(*(clients[i % 5].recommend(u, 6) for i, u in enumerate(users)))
        finally:
            for c in clients:
                await c.close()

    results = asyncio.run(main())
    monkeypatch.undo()
    assert sum(len(c) for c in calls) == 50
    assert len(calls) <= 5, f"50 concurrent recommends took {len(calls)} core calls"
    assert results == [engine.recommend(u, 6) for u in users]


def test_different_filters_are_never_batched_together(running):
    async def main():
        async with AsyncClient(running.tcp, token=running.tokens["admin"]) as client:
            return await asyncio.gather(
                *(client.recommend(u, 3 + i % 2, exclude=[ITEM.format(i % 3)]) for i, u in enumerate(USERS))
            )

    results = asyncio.run(main())
    assert results == [
        running.engine.recommend(u, 3 + i % 2, exclude=[ITEM.format(i % 3)]) for i, u in enumerate(USERS)
    ]


# -- roles -------------------------------------------------------------------------------------------

OWN, OTHER = "user0", "user1"
# the access rules of the issue, written out independently of the server's table
ALLOWED = {
    "hello": {"admin", "service", "user", "none"},
    "add_interactions": {"admin", "service", "user"},
    "remove_interactions": {"admin", "service", "user"},
    "put_items": {"admin", "service"},
    "ingest": {"admin", "service"},
    "recommend": {"admin", "service", "user"},
    "recommend_batch": {"admin", "service", "user"},
    "recommend_bag": {"admin", "service"},
    "similar_items": {"admin", "service", "user"},
    "fit": {"admin"},
    "job_status": {"admin"},
    "jobs": {"admin"},
    "stats": {"admin", "service"},
    "snapshot": {"admin"},
}
ARGS = {
    "hello": {},
    "add_interactions": {"users": [OWN], "items": [ITEM.format(7)]},
    "remove_interactions": {"users": [OWN], "items": [ITEM.format(7)]},
    "put_items": {"items": {"@id": ITEM.format(50), "@type": "https://schema.org/Thing"}},
    "ingest": {"documents": {"@id": ITEM.format(51), "@type": "https://schema.org/Thing"}},
    "recommend": {"user": OWN, "n": 3},
    "recommend_batch": {"users": [OWN], "n": 3},
    "recommend_bag": {"items": [ITEM.format(1)], "n": 3},
    "similar_items": {"item": ITEM.format(1), "n": 3},
    "fit": {"algorithm": "popularity"},
    "job_status": {"job": 1},
    "jobs": {},
    "stats": {},
    "snapshot": {},
}


def test_every_op_is_in_the_role_matrix():
    assert set(ALLOWED) == set(OP_ROLES) == set(ARGS)


def test_op_role_matrix(running):
    revoked, secret = running.store.create_token("admin", label="revoked")
    running.store.revoke_token(revoked.id)
    secrets = {**running.tokens, "none": None, "revoked": secret}
    with RawConnection(running.tcp) as raw:
        for op, args in ARGS.items():
            for role, token in secrets.items():
                request = {"id": f"{op}/{role}", "op": op, "args": dict(args)}
                if token is not None:
                    request["token"] = token
                raw.request(request)
                reply = raw.reply()
                assert reply["id"] == request["id"]
                code = reply.get("error", {}).get("code")
                if role == "revoked":
                    assert code == "unauthorized", (op, reply)
                elif role in ALLOWED[op]:
                    assert "result" in reply, (op, role, reply)
                else:
                    assert code == ("unauthorized" if role == "none" else "forbidden"), (op, role, reply)


@pytest.mark.parametrize(
    "op,args",
    [
        ("add_interactions", {"users": [OWN, OTHER], "items": [ITEM.format(1), ITEM.format(2)]}),
        ("remove_interactions", {"users": [OTHER], "items": [ITEM.format(1)]}),
        ("recommend", {"user": OTHER}),
        ("recommend_batch", {"users": [OWN, OTHER]}),
    ],
)
def test_user_tokens_act_only_for_their_own_user(running, op, args):
    with RawConnection(running.tcp) as raw:
        raw.request({"id": 1, "op": op, "args": args, "token": running.tokens["user"]})
        assert raw.reply()["error"]["code"] == "forbidden"


def test_hello_token_authenticates_the_connection_and_a_bad_one_is_refused(running):
    with RawConnection(running.tcp) as raw:
        raw.request({"id": 1, "op": "hello", "args": {"token": "not-a-token"}})
        assert raw.reply()["error"]["code"] == "unauthorized"
        raw.request({"id": 2, "op": "hello", "args": {"token": running.tokens["user"]}})
        assert raw.reply()["result"]["user"] == OWN
        raw.request({"id": 3, "op": "recommend", "args": {"user": OWN}})
        assert "result" in raw.reply()
        raw.request({"id": 4, "op": "stats", "args": {}, "token": running.tokens["admin"]})  # request token wins
        assert "result" in raw.reply()


# -- jobs and snapshots -------------------------------------------------------------------------------


def test_fit_runs_as_a_job_and_swaps_the_model():
    with running_server(fitted=False) as r, r.client() as client:
        with pytest.raises(Exception) as caught:
            client.recommend("user1")
        assert getattr(caught.value, "code", None) == "not_fitted"
        job = client.fit("popularity", wait=True, timeout=30)
        status = client.job_status(job)
        assert status["state"] == "completed" and status["result"]["algorithm"] == "popularity"
        assert client.stats()["model"]["algorithm"] == "popularity"
        assert [j["id"] for j in client.jobs("completed")] == [job]
        assert r.store.latest_snapshot().algorithm == "popularity"  # the model survives a restart
        assert client.recommend("user1", 3) == r.engine.recommend("user1", 3)


def test_a_failing_fit_is_a_discarded_job_and_the_model_stays():
    with running_server() as r, r.client() as client:
        with pytest.raises(ServerError, match="job_failed"):
            client.fit("itemknn", wait=True, timeout=30, k=-5)
        assert client.jobs("discarded")[0]["error"]
        assert client.stats()["model"]["algorithm"] == "itemknn"


def test_restart_restores_snapshot_plus_log():
    with running_server() as r, r.client() as client:
        client.put_items({"@id": ITEM.format(60), "@type": "https://schema.org/Thing"})
        snap = client.snapshot()
        assert snap["watermark"] == r.store.watermark() and os.path.isdir(snap["path"])
        client.add_interactions(["late"], [ITEM.format(60)])  # after the snapshot: replayed from the log
        client.remove_interaction("user2", r.engine.recommend("user2", 1, filter_owned=False)[0].item)
        restored = restore_engine(r.store)
        assert restored.bags.nnz == r.engine.bags.nnz
        assert restored.serving["algorithm"] == "itemknn"
        for user in ["late", "user2", "user5"]:
            assert restored.recommend(user, 5) == r.engine.recommend(user, 5)
        assert restored.item_descriptions.get(ITEM.format(60)) is not None


# -- limits ----------------------------------------------------------------------------------------------


def test_frame_too_large_is_answered_then_closed():
    with running_server(seeded=False, limits=Limits(max_frame=1000)) as r, RawConnection(r.tcp) as raw:
        raw.send_raw(struct.pack(">I", 2000))
        assert raw.reply()["error"]["code"] == "frame_too_large"
        assert raw.closed_by_server()


def test_batch_too_large():
    with running_server(seeded=False, limits=Limits(max_batch=5)) as r, r.client() as client:
        for call in (
            lambda: client.add_interactions(["a"] * 6, ["b"] * 6),
            lambda: client.recommend_batch(USERS[:6], 3),
            lambda: client.recommend("user1", 6),
        ):
            with pytest.raises(ServerError) as caught:
                call()
            assert caught.value.code == "batch_too_large"


def test_rate_limit_per_connection():
    with running_server(seeded=False, limits=Limits(rate=1, burst=3)) as r, RawConnection(r.tcp) as raw:
        for i in range(8):
            raw.request({"id": i, "op": "hello", "args": {}})
        codes = [raw.reply().get("error", {}).get("code") for _ in range(8)]
        assert codes.count(None) == 3 and codes.count("rate_limited") == 5
        with RawConnection(r.tcp) as other:  # another connection has its own bucket
            other.request({"id": 1, "op": "hello", "args": {}})
            assert "result" in other.reply()


def test_idle_connections_get_an_idle_timeout_frame_then_close():
    with running_server(seeded=False, limits=Limits(idle_timeout=0.3)) as r:
        with RawConnection(r.tcp) as raw:
            assert raw.reply()["error"]["code"] == "idle_timeout"
            assert raw.closed_by_server()
        with r.client() as client:  # the blocking client reconnects after an idle close
            client.stats()
            time.sleep(0.5)
            assert client.stats()["users"] == 0


def test_max_connections():
    with running_server(seeded=False, limits=Limits(max_connections=2)) as r:
        with RawConnection(r.tcp) as a, RawConnection(r.tcp) as b:
            for raw in (a, b):
                raw.request({"id": 1, "op": "hello", "args": {}})
                assert "result" in raw.reply()
            with RawConnection(r.tcp) as third:
                assert third.reply()["error"]["code"] == "too_many_connections"
                assert third.closed_by_server()


def test_slow_loris_is_cut_off_and_others_are_served():
    with running_server(seeded=False, limits=Limits(read_timeout=0.3)) as r, RawConnection(r.tcp) as slow:
        slow.send_raw(struct.pack(">I", 100) + b'{"id": 1')
        with r.client() as client:
            assert client.stats()["connections"] == 2
        time.sleep(0.6)
        assert slow.closed_by_server()


# -- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body,code,reply_id",
    [
        (b'{"id": 1, "op": ', "bad_frame", None),
        (b"[1, 2, 3]", "bad_frame", None),
        (b'{"id": 1, "op": "hello", "args": {"client": "\xff"}}', "bad_frame", None),
        (b'{"op": "stats", "args": {}}', "bad_request", None),
        (b'{"id": true, "op": "stats", "args": {}}', "bad_request", None),
        (b'{"id": 7, "args": {}}', "bad_request", 7),
        (b'{"id": 7, "op": "stats", "args": []}', "bad_request", 7),
        (b'{"id": "x", "op": "dance", "args": {}}', "unknown_op", "x"),
        (b'{"id": 8, "op": "hello", "args": {"codec": "xml"}}', "invalid_input", 8),
    ],
)
def test_malformed_requests_get_an_error_and_the_connection_goes_on(running, body, code, reply_id):
    with RawConnection(running.tcp) as raw:
        raw.send_body(body)
        reply = raw.reply()
        assert reply["error"]["code"] == code and reply["id"] == reply_id
        raw.request({"id": 2, "op": "hello", "args": {}})
        assert raw.reply()["id"] == 2


@pytest.mark.parametrize(
    "args",
    [
        {"user": 5},
        {"user": "user1", "n": "ten"},
        {"user": "user1", "items": "x"},
        {"user": "user1", "format": "xml"},
        {},
    ],
)
def test_wrong_typed_arguments_are_invalid_input(running, args):
    with RawConnection(running.tcp) as raw:
        raw.request({"id": 1, "op": "recommend", "args": args, "token": running.tokens["admin"]})
        assert raw.reply()["error"]["code"] == "invalid_input"


@pytest.mark.parametrize("data", [struct.pack(">I", 100) + b"abc", b"\x00\x00", struct.pack(">I", 2**32 - 1)])
def test_truncated_or_huge_frames_close_cleanly_and_others_are_served(running, data):
    with RawConnection(running.tcp) as raw:
        raw.send_raw(data)
        raw.sock.shutdown(1)  # end of stream mid-frame
        try:
            raw.reply()  # a huge length is answered with frame_too_large before the close
        except ConnectionError:
            pass
    with running.client() as client:
        assert client.recommend("user1", 3) == running.engine.recommend("user1", 3)


def test_a_crashing_handler_is_an_internal_error_and_the_server_stays_up(running, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(running.engine, "recommend_bag", broken)
    with running.client() as client:
        with pytest.raises(ServerError) as caught:
            client.recommend_bag([ITEM.format(1)])
        assert caught.value.code == "internal" and "boom" in caught.value.message
        assert client.stats()["users"] >= len(USERS)


def test_periodic_snapshots_follow_the_writes():
    with running_server(snapshot_interval=0.2) as r, r.client() as client:
        client.add_interactions(["late"], [ITEM.format(1)])
        deadline = time.monotonic() + 10
        while r.store.latest_snapshot() is None or r.store.latest_snapshot().watermark != r.store.watermark():
            assert time.monotonic() < deadline, "no snapshot caught up with the log"
            time.sleep(0.05)
        count = len(r.store.snapshots)
        time.sleep(0.5)  # nothing written since: no new snapshots
        assert len(r.store.snapshots) == count


def test_unix_socket_never_replaces_a_file_or_a_live_server(running, tmp_path):
    engine = restore_engine(MemoryStore())
    precious = tmp_path / "notes.txt"
    precious.write_text("keep me")
    for path, reason in ((precious, "not a socket"), (running.unix, "another server")):
        server = Server(engine, MemoryStore(), data_dir=tmp_path, port=None, unix_path=path)
        with pytest.raises(InvalidInputError, match=reason):
            ServerThread(server).start()
    assert precious.read_text() == "keep me"
    with Client(running.unix, token=running.tokens["admin"]) as client:  # the live server kept its socket
        assert client.stats()["users"] > 0


def test_old_snapshots_and_crashed_temporaries_are_deleted():
    with running_server(keep_snapshots=2) as r, r.client() as client:
        leftover = r.folder / "snapshots" / ".tmp-snapshot-000000000001-1"
        leftover.mkdir(parents=True)
        paths = []
        for k in range(4):
            client.add_interaction("late", ITEM.format(k))
            paths.append(client.snapshot()["path"])
        kept = sorted(str(p) for p in (r.folder / "snapshots").iterdir())
        assert kept == paths[-2:] and r.store.latest_snapshot().path == paths[-1]
        assert restore_engine(r.store).bags.nnz == r.engine.bags.nnz
