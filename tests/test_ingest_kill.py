"""An ingest is all or nothing, even when the server is killed in the middle of it.

`backpack serve` is killed with SIGKILL at each stage of the ingest write path, one stage per run
(the BACKPACK_CRASH_AT hook, backpack.core.files.crash_point): inside the store transaction, after
it was stored but before the engine applied it, and after it was applied but before the reply.
After a restart the request's item, its actor and its Like are all present or all absent; a request
that was acknowledged before the kill is always present.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backpack.core.files import CRASH_POINT_VARIABLE
from backpack.serving.client import Client
from backpack.store.base import default_store_path
from backpack.store.sqlite import SQLiteStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

STAGES = {  # stage -> what a restart must find of the request the kill interrupted
    "store:batch-written": "absent",  # the transaction never committed
    "ingest:stored": "present",  # durable before the kill, applied on the restart's replay
    "ingest:applied": "present",
}
AS2 = "https://www.w3.org/ns/activitystreams"


def serve(data: Path, crash_at: str | None = None) -> tuple[subprocess.Popen, str]:
    env = {k: v for k, v in os.environ.items() if k != CRASH_POINT_VARIABLE}
    if crash_at:
        env[CRASH_POINT_VARIABLE] = crash_at
    proc = subprocess.Popen(
        [sys.executable, "-m", "backpack.cli.main", "--data-dir", str(data), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=data.parent,
    )
    match = re.search(r"listening on (\S+:\d+)", proc.stdout.readline())
    if match is None:
        proc.kill()
        pytest.fail(f"the server did not start: {proc.stderr.read()}")
    return proc, match[1]


def document(n: int) -> dict:
    """One item, one actor and one Like of that item by that actor: one request, one durable unit."""
    return {
        "@context": AS2,
        "@graph": [
            {"id": f"https://assets.example/prop/{n}", "type": "Image", "name": f"prop {n}"},
            {"id": f"https://social.example/users/u{n}", "type": "Person", "name": f"user {n}"},
            {
                "id": f"https://social.example/activities/{n}",
                "type": "Like",
                "actor": f"https://social.example/users/u{n}",
                "object": f"https://assets.example/prop/{n}",
            },
        ],
    }


@pytest.mark.parametrize("stage", list(STAGES))
def test_an_ingest_killed_at_each_stage_is_wholly_present_or_wholly_absent(tmp_path, stage):
    data = tmp_path / "data"
    data.mkdir()
    store = SQLiteStore(default_store_path(data))
    secret = store.create_token("admin")[1]
    store.close()
    proc, address = serve(data, crash_at=stage)
    try:
        with Client(address, token=secret, timeout=30) as client:
            # put_items is acknowledged before the kill: the hook is on the ingest path only
            acked = client.put_items({**document(0)["@graph"][0], "@context": AS2})
            assert acked == 1
            with pytest.raises((ConnectionError, OSError, TimeoutError)):  # the server dies: no reply
                client.ingest(document(1))
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
    proc, address = serve(data)
    try:
        with Client(address, token=secret, timeout=30) as client:
            stats = client.stats()
        store = SQLiteStore(default_store_path(data))
        try:
            assert store.check() == []
            item = store.get_item("https://assets.example/prop/1") is not None
            user = store.get_user("https://social.example/users/u1") is not None
            like = [(e.user, e.item) for batch in store.log_since(0) for e in batch]
            assert store.get_item("https://assets.example/prop/0") is not None  # the acknowledged write
        finally:
            store.close()
        liked = ("https://social.example/users/u1", "https://assets.example/prop/1") in like
        assert item == user == liked, f"{stage}: half applied (item {item}, user {user}, like {liked})"
        assert liked == (STAGES[stage] == "present")
        assert stats["interactions"] == (1 if liked else 0)  # the restarted engine agrees with the store
    finally:
        proc.terminate()
        proc.wait(timeout=30)
