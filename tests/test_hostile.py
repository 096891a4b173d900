"""Regression tests for an adversarial review (issue 20): a malicious game client, a hostile
Fediverse server and another local user. One test (or a few) per finding, each of which failed
on the code the review was run against; all on loopback and bounded in time."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time

import numpy as np
import pytest
from server_helpers import ITEM, USERS, RawConnection, running_server

from backpack.core.bags import Bags
from backpack.core.weights import MAX_WEIGHT
from backpack.errors import BackpackError, InvalidInputError, ServerError
from backpack.serving.protocol import encode_body, encode_frame
from backpack.serving.requests import Limits
from backpack.serving.snapshots import restore_engine
from backpack.store.sqlite import SQLiteStore

# -- 1 and 2: a weight valid as float64 but 0 or inf as float32 -----------------------------------


@pytest.mark.parametrize("weight", [1e-50, 1e39, 3e38, float(MAX_WEIGHT) * 2])
def test_a_weight_the_engine_would_refuse_is_refused_before_it_is_stored(weight, tmp_path):
    with running_server(user="user0") as running, running.client("user") as client:
        before = running.store.watermark()
        with pytest.raises(InvalidInputError, match="float32"):
            client.add_interactions(["user0"], [ITEM.format(1)], weights=[weight])
        assert running.store.watermark() == before  # refused means not stored
    # and the store would not take it either, whoever calls it
    with pytest.raises(InvalidInputError):
        SQLiteStore(tmp_path / "s.sqlite").append_interactions(["u"], ["i"], [weight])
    with pytest.raises(InvalidInputError):
        Bags().add(["u"], ["i"], [weight])


def test_the_smallest_float32_weights_are_kept_as_stored(tmp_path):
    store = SQLiteStore(tmp_path / "s.sqlite")
    store.append_interactions(["u", "u"], ["a", "b"], [1.5e-45, 0.1])
    engine = restore_engine(store)
    assert engine.bags.bag("u") == {"a": float(np.float32(1.5e-45)), "b": float(np.float32(0.1))}


def test_a_stored_row_the_engine_refuses_is_quarantined_not_fatal(tmp_path, caplog):
    # as an older version (or a hand edit) left it: the row bypasses today's checks
    path = tmp_path / "store.sqlite"
    store = SQLiteStore(path)
    store.append_interactions(["u1", "u2"], ["a", "a"], [1.0, 2.0])
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO log (op, user, item, weight, timestamp) VALUES ('add', 'u1', 'spam', 0.0, NULL)")
        conn.execute("INSERT INTO log (op, user, item, weight, timestamp) VALUES ('add', 'u1', 'spam', 3e38, NULL)")
    store.append_interactions(["u2"], ["b"], [1.0])
    assert any("refuses" in p and p.startswith("2 ") for p in store.check())
    assert store.refused_adds() == 2
    engine = restore_engine(store)  # used to fail: "weights must be finite and > 0"
    assert engine.bags.bag("u1") == {"a": 1.0} and engine.bags.bag("u2") == {"a": 2.0, "b": 1.0}
    assert "skipped" in caplog.text
    with running_server(store=store, seeded=False) as running, running.client() as admin:
        assert admin.stats()["quarantined"] == 2
    store.close()


def test_one_clients_bad_weight_fails_alone_in_a_group_commit():
    # six clients writing valid adds and one sending weights the engine refuses, all at once
    with running_server(batch_window=0.01, user="user0") as running:
        errors: list = []
        bad_answers: list = []
        before = running.store.watermark()

        def good(k: int) -> None:
            with running.client("admin") as client:
                for r in range(40):
                    try:
                        client.add_interactions([f"writer{k}"], [ITEM.format(r % 20)])
                    except BackpackError as exc:  # pragma: no cover - the failure this test catches
                        errors.append(exc)

        def bad() -> None:
            with running.client("user") as client:
                for r in range(40):
                    try:
                        client.add_interactions(["user0"], [ITEM.format(r % 20)], weights=[(1e39, 1e-50)[r % 2]])
                    except InvalidInputError as exc:
                        bad_answers.append(exc)

        threads = [threading.Thread(target=good, args=(k,)) for k in range(6)] + [threading.Thread(target=bad)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == [] and len(bad_answers) == 40
        assert running.store.watermark() == before + 6 * 40
        assert all(e.weight == 1.0 for e in running.store.log[before:])
        for k in range(6):
            assert len(running.engine.bags.bag(f"writer{k}")) == 20


# -- 3: one small request, a huge reply -----------------------------------------------------------


def test_users_times_n_is_bounded_with_its_own_code():
    with running_server(user="user0") as running, running.client("user") as client:
        with pytest.raises(ServerError) as caught:
            client.recommend_batch(["user0"] * 2000, 2000)
        assert caught.value.code == "too_many_results"
        assert len(client.recommend_batch(["user0"] * 50, 5)) == 50  # within the limit: answered
        assert client.server_info["limits"]["max_results"] == Limits().max_results


# -- 8: connections that never authenticate, clients that never read ------------------------------


def test_idle_unauthenticated_connections_cannot_lock_out_clients():
    limits = Limits(idle_timeout=30, read_timeout=5, auth_timeout=1.0, max_connections=300)
    with running_server(limits=limits) as running:
        host, port = running.server.address
        idle = [socket.create_connection((host, port), timeout=5) for _ in range(256)]
        try:
            for _ in range(5):  # authenticated clients keep getting answers while the 256 sit there
                with running.client("admin") as client:
                    assert client.stats()["users"] > 0
            time.sleep(limits.auth_timeout + 1.0)
            # past auth_timeout every idle one was closed (after an auth_timeout or eviction notice)
            for sock in idle[-5:]:
                data = sock.recv(1 << 16)
                while data and b"" != (more := sock.recv(1 << 16)):
                    data += more
                assert b"auth_timeout" in data or b"too_many_connections" in data
            assert len(running.server._connections) == 0
        finally:
            for sock in idle:
                sock.close()


def test_a_client_that_pipelines_and_never_reads_is_closed_by_the_write_deadline():
    limits = Limits(idle_timeout=1.0, read_timeout=1.0, write_timeout=1.0, rate=0)
    with running_server(limits=limits) as running:
        raw = RawConnection(running.tcp, timeout=10)
        raw.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        request = encode_frame(
            {"id": 1, "op": "recommend_batch", "token": running.tokens["admin"], "args": {"users": USERS, "n": 20}}
        )
        started = time.monotonic()
        try:
            while time.monotonic() - started < 15:
                raw.sock.sendall(request * 50)  # never read a reply
        except OSError:
            pass  # closed by the server: what this test wants
        assert time.monotonic() - started < 15
        raw.close()


# -- 13 and 14: deep nesting, a token that is not a string ---------------------------------------


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_deep_nesting_is_too_deep_and_the_connection_stays_open(codec):
    with running_server(seeded=False) as running, RawConnection(running.tcp) as raw:
        if codec == "msgpack":
            raw.request({"id": 0, "op": "hello", "args": {"codec": "msgpack"}})
            assert raw.reply()["result"]["codec"] == "msgpack"
        body = (
            b'{"id": 1, "op": "ingest", "args": {"documents": ' + b"[" * 10_000 + b"]" * 10_000 + b"}}"
            if codec == "json"
            # documents: nil, its last byte, replaced by 10,000 one-element arrays around an empty one
            else encode_body({"id": 1, "op": "ingest", "args": {"documents": None}}, "msgpack")[:-1]
            + b"\x91" * 10_000
            + b"\x90"
        )
        raw.send_body(body)
        assert raw.reply(codec)["error"]["code"] == "too_deep"
        nested: dict = {"@id": "https://a.example/x"}
        for _ in range(500):
            nested = {"https://schema.org/about": nested}
        raw.request({"id": 2, "op": "ingest", "token": running.tokens["service"], "args": {"documents": nested}}, codec)
        assert raw.reply(codec)["error"]["code"] == "too_deep"
        raw.request({"id": 3, "op": "hello", "args": {}}, codec)
        assert "result" in raw.reply(codec)  # still open


@pytest.mark.parametrize("token", [["bp_1_x"], {"a": 1}, 7])
def test_hello_with_a_token_that_is_not_a_string_is_bad_request(token):
    with running_server(seeded=False) as running, RawConnection(running.tcp) as raw:
        raw.request({"id": 1, "op": "hello", "args": {"token": token}})
        assert raw.reply()["error"]["code"] == "bad_request"


# -- 5: one user's weight moving what everyone is served ------------------------------------------


def test_one_spamming_user_moves_popularity_by_a_bounded_amount():
    with running_server(user="user0") as running:
        with running.client("admin") as admin:
            fans = [f"fan{k}" for k in range(40)]
            admin.add_interactions(fans, ["https://assets.example/item/loved"] * len(fans))
        with running.client("user") as spammer:
            with pytest.raises(InvalidInputError):
                spammer.add_interactions(["user0"], ["https://spam.example/buy"], weights=[3e38])
            for _ in range(20):  # as heavy and as often as the rules allow: it accumulates per pair
                spammer.add_interactions(["user0"], ["https://spam.example/buy"], weights=[MAX_WEIGHT])
        with running.client("admin") as admin:
            admin.fit("popularity", wait=True, timeout=30)
            top = admin.recommend("user5", 25)
    assert top[0].item == "https://assets.example/item/loved"
    scores = {r.item: r.score for r in top}
    assert scores["https://spam.example/buy"] == pytest.approx(10.0)  # one user counts at most max_user_weight


def test_popularity_cap_against_a_plain_numpy_sum():
    rng = np.random.default_rng(5)
    dense = rng.choice([0.0, 0.5, 3.0, 40.0, 1e5], size=(50, 30), p=[0.5, 0.2, 0.2, 0.05, 0.05])
    from scipy import sparse

    from backpack.algorithms.popularity import Popularity

    model = Popularity(max_user_weight=10.0).fit(sparse.csr_matrix(dense), show_progress=False)
    np.testing.assert_allclose(model.scores, np.minimum(dense, 10.0).sum(axis=0), rtol=1e-6)
    uncapped = Popularity(max_user_weight=None).fit(sparse.csr_matrix(dense), show_progress=False)
    np.testing.assert_allclose(uncapped.scores, dense.sum(axis=0), rtol=1e-6)


# -- 11: the lock file -------------------------------------------------------------------------------


def test_the_lock_files_cannot_be_held_by_another_user(tmp_path):
    import os
    import stat as st

    from backpack.engine.data_dir import DataDir
    from backpack.errors import DataDirError

    data = DataDir(tmp_path / "d", create=True)
    with data.locked():
        pass
    assert st.S_IMODE(os.stat(data.path / ".lock").st_mode) == 0o600
    os.chmod(data.path / ".lock", 0o644)  # as the old version left it
    with data.locked():
        pass
    assert st.S_IMODE(os.stat(data.path / ".lock").st_mode) == 0o600
    os.unlink(data.path / ".lock")
    os.symlink(tmp_path / "victim", data.path / ".lock")
    with pytest.raises(DataDirError, match="symlink"):
        with data.locked():
            pass
    assert not (tmp_path / "victim").exists()
    if os.getuid() == 0:  # as root, a file owned by someone else can be made: it must be refused
        os.unlink(data.path / ".lock")
        (data.path / ".lock").touch(mode=0o600)
        os.chown(data.path / ".lock", 65534, 65534)
        with pytest.raises(DataDirError, match="owned by you"):
            with data.locked():
                pass


# -- 4: godot install through symlinks ---------------------------------------------------------------


def _godot_project(tmp_path):
    project = tmp_path / "game"
    project.mkdir()
    (project / "project.godot").write_text("config_version=5\n")
    return project


@pytest.mark.parametrize("link", ["addons", "addons/backpack", "addons/backpack/bin"])
def test_godot_install_refuses_a_symlinked_folder(tmp_path, link):
    from backpack.cli.godot import install
    from backpack.errors import GodotProjectError

    project, elsewhere = _godot_project(tmp_path), tmp_path / "elsewhere"
    elsewhere.mkdir()
    (project / link).parent.mkdir(parents=True, exist_ok=True)
    (project / link).symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(GodotProjectError, match="symlink"):
        install(project)
    assert list(elsewhere.iterdir()) == []  # nothing landed outside the project


def test_godot_install_replaces_a_symlinked_file_instead_of_writing_through_it(tmp_path):
    import os

    from backpack.cli.godot import install

    project = _godot_project(tmp_path)
    written = install(project)
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    for path in written:  # every file of the addon a symlink to the victim
        path.unlink()
        path.symlink_to(victim)
    install(project)
    assert victim.read_text() == "precious"
    assert all(p.is_file() and not p.is_symlink() for p in written)
    assert not [n for n in os.listdir(project / "addons" / "backpack") if n.endswith(".tmp")]


# -- 12: special files and symlinks in a scene folder ------------------------------------------------


def test_scene_folder_skips_special_files_and_symlinks_out_and_reports_each(tmp_path):
    import json
    import os

    from backpack.scenes.ingest import import_scene_folder

    folder, outside = tmp_path / "uploads", tmp_path / "private"
    folder.mkdir()
    outside.mkdir()
    good = {"asset": {"version": "2.0"}, "scenes": [{"nodes": [0]}], "nodes": [{"name": "Hat"}]}
    (folder / "hat.gltf").write_text(json.dumps(good))
    (outside / "secret.gltf").write_text(json.dumps(good))
    (folder / "zero.gltf").symlink_to("/dev/zero")
    (folder / "leak.gltf").symlink_to(outside / "secret.gltf")
    os.mkfifo(folder / "hang.tscn")
    started = time.monotonic()
    report = import_scene_folder(folder, progress=False)
    assert time.monotonic() - started < 10  # neither hung on the FIFO nor read /dev/zero forever
    assert report.imported == 1 and report.items[0].document["@id"]
    reasons = {path.name: message for path, message in report.errors}
    assert set(reasons) == {"zero.gltf", "leak.gltf", "hang.tscn"}
    assert "out of the folder" in reasons["leak.gltf"] and "regular file" in reasons["hang.tscn"]


# -- 10: a poisoned IREE cache -----------------------------------------------------------------------


def test_iree_cache_refuses_shared_folders_and_entries_not_ours(tmp_path):
    import os

    from backpack.models.iree import trusted_entry, untrusted_folder

    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    os.chmod(tmp_path, 0o700)
    assert untrusted_folder(cache) is None
    entry = cache / "key.vmfb"
    entry.write_bytes(b"module")
    os.chmod(entry, 0o600)
    assert trusted_entry(entry)
    os.chmod(entry, 0o666)  # planted writable: anyone could have swapped its code
    assert not trusted_entry(entry)
    entry.unlink()
    entry.symlink_to(tmp_path / "elsewhere.vmfb")
    assert not trusted_entry(entry)
    os.chmod(cache, 0o777)  # a shared BACKPACK_CACHE_DIR
    assert "writable by group or others" in untrusted_folder(cache)
    os.chmod(cache, 0o1777)  # sticky is not enough for the cache folder itself
    assert untrusted_folder(cache) is not None
    os.chmod(cache, 0o700)
    if os.getuid() == 0:  # as root, entries and folders owned by another user can be made
        entry.unlink()
        entry.write_bytes(b"module")
        os.chmod(entry, 0o600)
        os.chown(entry, 65534, 65534)
        assert not trusted_entry(entry)
        os.chown(cache, 65534, 65534)
        assert "not by you" in untrusted_folder(cache)


# -- 6: a glTF whose nodes form one chain --------------------------------------------------------


def _chain_gltf(path, count: int):
    import json

    nodes = [{"name": f"n{k}", "children": [k + 1]} for k in range(count - 1)] + [{"name": f"n{count - 1}"}]
    path.write_text(json.dumps({"asset": {"version": "2.0"}, "scenes": [{"nodes": [0]}], "nodes": nodes}))
    return path


def test_a_node_chain_costs_linear_output_and_paths_stay_right(tmp_path):
    from backpack.scenes.gltf import MAX_PATH_NAMES, _GltfReader, parse_json

    def node_paths(path):
        doc = parse_json(path.read_bytes(), path)
        return [n["path"] for n in _GltfReader(path, "urn:x", 0, doc, 0, None, False).summary().nodes]

    assert node_paths(_chain_gltf(tmp_path / "short.gltf", 4)) == ["n0", "n0/n1", "n0/n1/n2", "n0/n1/n2/n3"]
    count = 16_000
    paths = node_paths(_chain_gltf(tmp_path / "chain.gltf", count))
    assert len(paths) == count
    assert paths[-1] == "…/" + "/".join(f"n{k}" for k in range(count - MAX_PATH_NAMES, count))
    # was quadratic: 16,000 paths of up to 16,000 names (about 900 MB of text)
    assert sum(len(p) for p in paths) < count * MAX_PATH_NAMES * 8


# -- 7: inline JSON-LD contexts ------------------------------------------------------------------


def test_inline_contexts_are_bounded_with_their_own_code():
    from backpack.errors import ContextLimitError
    from backpack.jsonld.processing import MAX_INLINE_CONTEXTS, expand_documents

    def graph(count: int) -> dict:
        return {
            "@context": {"s": "https://schema.org/"},
            "@graph": [
                {"@context": {f"t{k}": f"https://schema.org/name{k}"}, "@id": f"https://a.example/{k}", f"t{k}": "x"}
                for k in range(count)
            ],
        }

    assert len(expand_documents(graph(MAX_INLINE_CONTEXTS - 1))) == MAX_INLINE_CONTEXTS - 1
    started = time.monotonic()
    with pytest.raises(ContextLimitError, match="inline @context"):
        expand_documents(graph(2000))  # the review's 74 KiB document: refused before PyLD sees it
    assert time.monotonic() - started < 5
    nested: dict = {"@id": "https://a.example/leaf"}
    for _ in range(10):
        nested = {"@context": {"s": "https://schema.org/"}, "s:about": nested}
    with pytest.raises(ContextLimitError, match="deep"):
        expand_documents(nested)
    with running_server(seeded=False) as running, running.client("service") as client:
        with pytest.raises(ContextLimitError) as caught:  # the client rebuilds the class from its code
            client.ingest(graph(2000))
        assert caught.value.code == "context_limit"


# -- 9: a process that is not the server ------------------------------------------------------------

_IMPOSTOR = """
import os, socket, sys
os.setgid(65534); os.setuid(65534)
listener = socket.socket(socket.AF_UNIX); listener.bind(sys.argv[1]); listener.listen(1)
print("ready", flush=True)
conn, _ = listener.accept(); conn.settimeout(2)
got = b""
try:
    while chunk := conn.recv(4096):
        got += chunk
except OSError:
    pass
print(len(got), flush=True)
"""


def test_the_client_never_sends_its_token_to_another_users_unix_socket(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys

    from backpack.errors import UntrustedServerError
    from backpack.serving.client import Client

    if os.getuid() == 0:  # a real other user: the impostor drops to nobody and binds first
        import shutil
        import tempfile
        from pathlib import Path

        folder = Path(tempfile.mkdtemp(prefix="bp-shared-", dir="/tmp"))  # a folder both users can reach
        try:
            os.chmod(folder, 0o777)
            path = folder / "bp.sock"
            impostor = subprocess.Popen([sys.executable, "-c", _IMPOSTOR, str(path)], stdout=subprocess.PIPE, text=True)
            assert impostor.stdout.readline().strip() == "ready"
            with pytest.raises(UntrustedServerError, match="uid 65534"):
                Client(str(path), token="bp_1_secret").connect()
            assert impostor.stdout.readline().strip() == "0"  # not one byte, so not the token
            impostor.wait(10)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
    else:  # the real server, seen by a client that believes it is someone else
        import backpack.serving.protocol as protocol

        with running_server(seeded=False) as running:
            monkeypatch.setattr(protocol.os, "getuid", lambda: os.geteuid() + 4242)
            before = running.server.requests
            with pytest.raises(UntrustedServerError):
                Client(running.unix, token=running.tokens["admin"]).connect()
            assert running.server.requests == before
