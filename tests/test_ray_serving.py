"""Ray Serve replicas (backpack.ray.serve) answer as the socket server and the in-process engine do."""

import asyncio
import os
import shutil
import tempfile
import time
from pathlib import Path

import pytest
from memory_store import MemoryStore
from server_helpers import RawConnection

from backpack import Engine
from backpack.data import synthetic
from backpack.errors import DataDirError, RayUnavailableError, ReadOnlyReplicaError, ServerError, UnknownItemError
from backpack.ray.serve import EngineReplica, serve_on_ray
from backpack.serving.loop import ServerThread
from backpack.serving.requests import Limits
from backpack.serving.server import Server

LIMITS = Limits(max_batch=50, idle_timeout=30, read_timeout=5)

#: requests whose replies must be the same from a replica and from the socket server: good ones,
#: bad arguments, unknown ids, limits, unknown and write ops
REQUESTS = [
    ("recommend", {"user": "u0", "n": 7}),
    ("recommend", {"user": "u3", "n": 5, "filter_owned": False, "exclude": ["i1", "i2"]}),
    ("recommend_batch", {"users": ["u1", "u2", "u5"], "n": 4}),
    ("recommend_bag", {"items": ["i3", "i4"], "weights": [1.0, 2.0], "n": 6}),
    ("similar_items", {"item": "i10", "n": 8}),
    ("recommend", {"user": "nobody", "n": 3}),  # not an error: a new user gets the cold-start list
    ("similar_items", {"item": "no-such-item"}),
    ("recommend", {"user": 5}),
    ("recommend", {"n": 3}),
    ("recommend", {"user": "u0", "n": "ten"}),
    ("recommend", {"user": "u0", "format": "xml"}),
    ("recommend_batch", {"users": ["u0", 1]}),
    ("recommend_bag", {"items": ["i3"], "weights": "heavy"}),
    ("recommend", {"user": "u0", "n": 51}),
    ("recommend_batch", {"users": [f"u{i}" for i in range(51)]}),
    ("teleport", {}),
]
WRITES = [
    ("add_interactions", {"users": ["u0"], "items": ["i1"]}),
    ("remove_interactions", {"users": ["u0"], "items": ["i1"]}),
    ("put_items", {"items": []}),
    ("fit", {"algorithm": "itemknn"}),
    ("snapshot", {}),
]


@pytest.fixture(scope="module")
def data_dir():
    """A tiny synthetic catalogue with a fitted item-kNN, saved as replicas load it."""
    folder = Path(tempfile.mkdtemp(prefix="bp-serve-"))
    cat = synthetic.generate_size("tiny")
    engine = Engine(num_threads=1)
    engine.load_matrix(
        cat.user_items, [f"u{i}" for i in range(len(cat.user_ids))], [f"i{j}" for j in range(len(cat.item_ids))]
    )
    engine.fit("itemknn", k=20)
    engine.save(folder / "snapshot")
    yield folder / "snapshot"
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def engine(data_dir):
    """The in-process engine every answer is checked against."""
    return Engine.open(data_dir, num_threads=1)


@pytest.fixture(scope="module")
def socket_replies(data_dir):
    """What the socket server answers to REQUESTS and WRITES (a service token), by request."""
    folder = Path(tempfile.mkdtemp(prefix="bp-", dir="/tmp"))
    store = MemoryStore()
    token = store.create_token("service")[1]
    server = Server(Engine.open(data_dir, num_threads=1), store, data_dir=folder, port=0, limits=LIMITS)
    replies = {}
    with ServerThread(server):
        with RawConnection("{}:{}".format(*server.address)) as raw:
            for number, (op, args) in enumerate(REQUESTS + WRITES):
                raw.request({"id": number, "op": op, "args": args, "token": token})
                replies[number] = raw.reply()
    shutil.rmtree(folder, ignore_errors=True)
    return replies


def _same_reply(replica: dict, server: dict):
    if "error" in server:
        assert replica == server  # same id, code and message
    else:
        assert replica["id"] == server["id"] and replica["result"] == server["result"]


# -- the replica's op code, without Ray ----------------------------------------------------------


@pytest.fixture(scope="module")
def replica(data_dir):
    return EngineReplica(str(data_dir), limits=LIMITS)


def _ask(replica, request):
    return asyncio.run(replica.respond(request))


@pytest.mark.parametrize("number", range(len(REQUESTS)))
def test_a_replica_answers_as_the_socket_server_does(replica, socket_replies, number):
    op, args = REQUESTS[number]
    _same_reply(_ask(replica, {"id": number, "op": op, "args": args}), socket_replies[number])


@pytest.mark.parametrize("number", range(len(WRITES)))
def test_writes_are_refused_as_read_only(replica, number):
    op, args = WRITES[number]
    reply = _ask(replica, {"id": number, "op": op, "args": args})
    assert reply["id"] == number and reply["error"]["code"] == "read_only"
    assert "backpack serve" in reply["error"]["message"] and "serve_on_ray" in reply["error"]["message"]
    assert replica.engine.bags.nnz == Engine.open(replica.data_dir).bags.nnz  # nothing changed


@pytest.mark.parametrize(
    ("request_", "request_id"),
    [
        (None, None),
        ([], None),
        ({"op": "stats", "args": {}}, None),
        ({"id": 1, "args": {}}, 1),
        ({"id": "a", "op": "stats"}, "a"),
        ({"id": True, "op": "stats", "args": {}}, None),
    ],
)
def test_malformed_requests_are_bad_request(replica, request_, request_id):
    reply = _ask(replica, request_)
    assert reply["error"]["code"] == "bad_request"
    assert reply["id"] == request_id and type(reply["id"]) is type(request_id)  # True is not the id 1


def test_a_failing_handler_is_an_internal_error_not_a_dead_replica(replica, monkeypatch):
    monkeypatch.setattr(replica.engine, "similar_items", lambda *a, **k: 1 / 0)
    assert _ask(replica, {"id": 1, "op": "similar_items", "args": {"item": "i1"}})["error"]["code"] == "internal"
    monkeypatch.undo()
    assert "result" in _ask(replica, {"id": 2, "op": "similar_items", "args": {"item": "i1"}})


def test_hello_says_it_is_a_replica_with_the_servers_limits(replica):
    result = _ask(replica, {"id": "h", "op": "hello", "args": {}})["result"]
    assert "ray serve replica" in result["server"] and result["protocol"] == 1
    assert result["role"] == "service" and result["limits"] == LIMITS.as_dict()


def test_without_ray_the_error_names_the_extra(data_dir, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    with pytest.raises(RayUnavailableError, match="backpack-engine\\[ray\\]"):
        serve_on_ray(data_dir)


def test_a_directory_that_is_not_a_snapshot_is_refused_before_deploying(tmp_path):
    with pytest.raises(DataDirError, match="not a saved Backpack data directory"):
        serve_on_ray(tmp_path)


# -- on a local Ray with Serve --------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(data_dir, tmp_path_factory):
    """Two replicas on a local Ray with this machine's cores, through the client handle."""
    ray = pytest.importorskip("ray", reason="the ray extra is not installed: pip install 'backpack-engine[ray]'")
    serve = pytest.importorskip("ray.serve", reason="Ray Serve is not installed: pip install 'ray[serve]'")
    with pytest.MonkeyPatch.context() as patch:
        # Local Ray workers start in the driver's directory, where the source
        # tree's backpack (without the built core) would shadow the installed one.
        patch.chdir(tmp_path_factory.mktemp("ray"))
        if ray.is_initialized():
            ray.shutdown()
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        try:
            client = serve_on_ray(
                data_dir, num_replicas=2, name="backpack-test", limits=LIMITS, cpus_per_replica=0.5, timeout=30
            )
            yield client
        finally:
            serve.shutdown()
            ray.shutdown()


def test_answers_equal_the_in_process_engine_exactly(served, engine):
    users = [f"u{i}" for i in range(0, 40, 3)]
    for user in users:
        assert served.recommend(user, 10) == engine.recommend(user, 10)
    assert served.recommend_batch(users, 6, exclude=["i1"]) == engine.recommend_batch(users, 6, exclude=["i1"])
    for item in ("i0", "i7", "i42"):
        assert served.similar_items(item, 9) == engine.similar_items(item, 9)
    assert served.recommend_bag(["i3", "i4"], [1.0, 2.0], 5) == engine.recommend_bag(["i3", "i4"], [1.0, 2.0], 5)


def test_errors_through_ray_are_the_socket_servers(served, socket_replies):
    for number, (op, args) in enumerate(REQUESTS):
        _same_reply(served.request(op, args, request_id=number), socket_replies[number])
    with pytest.raises(UnknownItemError):
        served.similar_items("no-such-item")
    with pytest.raises(ServerError) as info:
        served.recommend("u0", 51)
    assert info.value.code == "batch_too_large"
    with pytest.raises(ReadOnlyReplicaError) as refused:
        served.add_interactions(["u0"], ["i1"])
    assert refused.value.code == "read_only"
    with pytest.raises(ReadOnlyReplicaError):
        served.fit("itemknn")


def test_both_replicas_answer(served):
    seen = {served.stats()["replica"] for _ in range(40)}
    assert len(seen) == 2


def test_a_dead_replica_does_not_take_the_service_down(served, engine):
    import ray

    replicas = [
        a
        for a in ray.util.list_named_actors(all_namespaces=True)
        if "SERVE_REPLICA" in a["name"] and "backpack-test" in a["name"]
    ]
    assert len(replicas) == 2
    ray.kill(ray.get_actor(replicas[0]["name"], namespace=replicas[0]["namespace"]), no_restart=True)
    deadline = time.monotonic() + 20
    for _ in range(30):  # every read is answered: in-flight ones are retried on the live replica
        assert served.recommend("u1", 5) == engine.recommend("u1", 5)
        assert time.monotonic() < deadline
