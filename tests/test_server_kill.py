"""`backpack serve` killed with SIGKILL in the middle of a write storm loses no acknowledged write."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from backpack.serving.client import Client
from backpack.store.base import default_store_path
from backpack.store.sqlite import SQLiteStore

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and Unix sockets")


def start_server(data_dir, socket_path) -> tuple[subprocess.Popen, str]:
    """``backpack serve`` on a free loopback port and a Unix socket; the process and its TCP address."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "backpack.cli.main",
            "--data-dir",
            str(data_dir),
            "serve",
            "--port",
            "0",
            "--unix",
            str(socket_path),
            "--batch-window",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data_dir,
    )  # not the source tree: the installed package has the core
    line = proc.stdout.readline()
    match = re.search(r"listening on (\S+:\d+)", line)
    if match is None:
        proc.kill()
        pytest.fail(f"the server did not start: {line!r} {proc.stderr.read()}")
    return proc, match[1]


def test_sigkill_mid_storm_loses_no_acknowledged_write(tmp_path):
    store = SQLiteStore(default_store_path(tmp_path))
    admin = store.create_token("admin")[1]
    store.close()
    sock = f"/tmp/bp-kill-{os.getpid()}.sock"
    proc, address = start_server(tmp_path, sock)
    acked: list[tuple[str, str]] = []
    lock = threading.Lock()
    stop = threading.Event()

    def storm(worker: int) -> None:
        client = Client(address if worker % 2 else sock, token=admin, timeout=5)
        for k in range(100_000):
            if stop.is_set():
                return
            user, item = f"w{worker}-u{k % 17}", f"item{k}"
            try:
                client.add_interaction(user, item, 1.0 + k % 3)
            except (OSError, ConnectionError):
                return  # the server died: this write was never acknowledged
            with lock:
                acked.append((user, item))

    threads = [threading.Thread(target=storm, args=(w,)) for w in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.6)
    with Client(address, token=admin) as client:
        client.snapshot()  # the restart loads this snapshot and replays the writes after it
    time.sleep(0.6)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stop.set()
    for t in threads:
        t.join()
    assert len(acked) > 50, "the storm wrote too little to test anything"

    proc, address = start_server(tmp_path, sock)
    try:
        with Client(address, token=admin) as client:
            stats = client.stats()
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
    store = SQLiteStore(default_store_path(tmp_path))
    try:
        assert store.check() == []
        logged = {(e.user, e.item) for batch in store.log_since(0) for e in batch}
        assert set(acked) <= logged
        assert store.latest_snapshot() is not None and store.latest_snapshot().watermark > 0
    finally:
        store.close()
    # the restarted server rebuilt every logged pair (snapshot + replay): nothing more, nothing less
    assert stats["interactions"] == len(logged) and stats["watermark"] >= len(acked)
