"""The Python clients: the Engine's methods over the socket, typed errors, pipelining, reconnection."""

from __future__ import annotations

import asyncio
import time

import pytest
from server_helpers import ITEM, USERS, running_server, seed_pairs

from backpack import Engine
from backpack.errors import InvalidInputError, NotFittedError, ServerError, UnknownItemError, UnknownJobError
from backpack.serving.client import ERROR_CLASSES, AsyncClient, Client, error_from_reply, parse_address


@pytest.fixture(scope="module")
def running():
    with running_server(batch_window=0.01) as r:
        yield r


@pytest.mark.parametrize("transport", ["tcp", "unix"])
@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_client_round_trip_matches_the_engine(running, transport, codec):
    address = running.tcp if transport == "tcp" else running.unix
    with Client(address, token=running.tokens["admin"], codec=codec) as client:
        assert client.server_info["codec"] == codec and client.server_info["role"] == "admin"
        assert client.recommend("user1", 5) == running.engine.recommend("user1", 5)
        assert client.recommend_batch(["user2", "user3"], 4) == running.engine.recommend_batch(["user2", "user3"], 4)
        assert client.similar_items(ITEM.format(1), 3) == running.engine.similar_items(ITEM.format(1), 3)
        bag = [ITEM.format(2), ITEM.format(4)]
        assert client.recommend_bag(bag, [1.0, 2.0], 3) == running.engine.recommend_bag(bag, [1.0, 2.0], 3)


def test_error_codes_come_back_as_typed_exceptions(running):
    with running.client() as client:
        with pytest.raises(UnknownItemError):
            client.recommend_bag(["https://assets.example/nothing"])
        with pytest.raises(UnknownJobError):
            client.job_status(10_000)
        with pytest.raises(InvalidInputError):
            client.recommend("user1", -1)
    with running.client("user") as client, pytest.raises(ServerError) as caught:
        client.recommend("user1")
    assert caught.value.code == "forbidden"


def test_async_client_pipelines_many_requests_on_one_connection(running):
    async def main():
        async with AsyncClient(running.tcp, token=running.tokens["admin"], codec="msgpack") as client:
            calls = [client.recommend(u, 4) for u in USERS] + [
                client.similar_items(ITEM.format(i), 3) for i in range(10)
            ]
            return await asyncio.gather(*calls)

    results = asyncio.run(main())
    assert results[: len(USERS)] == [running.engine.recommend(u, 4) for u in USERS]
    assert results[len(USERS) :] == [running.engine.similar_items(ITEM.format(i), 3) for i in range(10)]


def test_addresses():
    assert parse_address("127.0.0.1:8765") == ("tcp", ("127.0.0.1", 8765))
    assert parse_address(("localhost", "9")) == ("tcp", ("localhost", 9))
    assert parse_address("[::1]:80") == ("tcp", ("::1", 80))
    assert parse_address("/run/backpack.sock") == ("unix", "/run/backpack.sock")


def test_error_replies_map_to_backpack_error_classes():
    assert isinstance(error_from_reply({"code": "not_fitted", "message": "m"}), NotFittedError)
    assert isinstance(error_from_reply({"code": "unknown_item", "message": "m"}), UnknownItemError)
    for code, cls in ERROR_CLASSES.items():  # each class can be rebuilt from a reply and keeps its code
        error = error_from_reply({"code": code, "message": "why"})
        assert type(error) is cls and error.code == code and "why" in str(error)
    other = error_from_reply({"code": "rate_limited", "message": "slow down"})
    assert isinstance(other, ServerError) and other.code == "rate_limited" and other.message == "slow down"


def scenario(engine) -> list:
    """Engine calls a host application makes; the same code runs on an Engine and on a Client."""
    engine.add_interactions(["zed", "zed"], [ITEM.format(1), ITEM.format(2)], [1.0, 2.0])
    engine.add_interaction("zed", ITEM.format(3), kind="like", timestamp=1_700_000_000)
    removed = engine.remove_interaction("zed", ITEM.format(1))
    return [
        removed,
        engine.recommend("zed", 5),
        engine.recommend("user3", 4, exclude=[ITEM.format(0)]),
        engine.recommend_batch(["zed", "user4"], 3),
        engine.recommend_bag([ITEM.format(5)], None, 3),
        engine.similar_items(ITEM.format(2), 4),
        engine.recommend("zed", 5, filter_owned=False),
    ]


def test_switching_between_in_process_and_socket_is_one_line():
    local = Engine()
    local.add_interactions(*seed_pairs())
    local.fit("itemknn")
    with running_server() as r, Client(r.tcp, token=r.tokens["admin"]) as remote:
        assert scenario(remote) == scenario(local)


def test_blocking_client_reconnects_when_the_server_dropped_the_connection(running):
    with running.client() as client:
        client.stats()
        loop = running.thread._loop
        for conn in list(running.server._connections):  # the server side of every connection goes away
            loop.call_soon_threadsafe(conn.writer.close)
        time.sleep(0.2)
        assert client.recommend("user1", 3) == running.engine.recommend("user1", 3)
        assert client.add_interaction("user1", ITEM.format(9))["added"] == 1


def test_async_client_over_unix_socket_with_msgpack(running):
    async def main():
        async with AsyncClient(running.unix, token=running.tokens["service"], codec="msgpack") as client:
            assert client.server_info["codec"] == "msgpack"
            return await asyncio.gather(client.recommend("user2", 3), client.stats())

    recs, stats = asyncio.run(main())
    assert recs == running.engine.recommend("user2", 3) and stats["users"] >= len(USERS)


def test_async_client_timeout_leaves_nothing_waiting(running, monkeypatch):
    def slow(*args, **kwargs):
        time.sleep(0.5)
        return []

    monkeypatch.setattr(running.engine, "recommend_bag", slow)

    async def main():
        async with AsyncClient(running.tcp, token=running.tokens["admin"], timeout=0.1) as client:
            with pytest.raises(asyncio.TimeoutError):
                await client.recommend_bag([ITEM.format(1)])
            assert client._waiting == {}

    asyncio.run(main())


def test_fit_wait_returns_once_the_job_completed():
    with running_server(fitted=False) as r, r.client() as client:
        job = client.fit("itemknn", wait=True, timeout=30, k=5)
        assert client.job_status(job)["state"] == "completed"
        assert client.recommend("user1", 3) == r.engine.recommend("user1", 3)
