"""Crash tests: a process writing to the store is SIGKILLed; nothing it acknowledged is lost.

The writer prints a line only after the store call returned, which is the
moment a server would acknowledge the write to its client.
"""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from backpack.store.sqlite import SQLiteStore

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

APPENDER = """
import sys
from backpack.store.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
k = 0
while True:
    # two adds and a removal per transaction, so a torn transaction would show
    users, items = [f"u{k}", f"u{k + 1}"], [f"i{k}", f"i{k + 1}"]
    store.append_interactions(users, items, [float(k + 1), float(k + 2)], [1e9 + k, None])  # weights > 0
    seq = store.append_removals([f"u{k}"], [f"i{k}"])
    print(seq, k, flush=True)
    k += 2
"""

CLAIMER = """
import sys, time
from backpack.store.sqlite import SQLiteStore
store = SQLiteStore(sys.argv[1])
job = store.claim_job()
store.set_job_progress(job.id, 0.25)
print(job.id, flush=True)
time.sleep(600)
"""


def start(script: str, path, tmp_path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(script), str(path)], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )


def kill(proc: subprocess.Popen) -> list[str]:
    """SIGKILL ``proc``; the complete lines it had printed (a torn last line is not an acknowledgement)."""
    os.kill(proc.pid, signal.SIGKILL)
    rest = proc.stdout.read()
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return [line for line in rest.split("\n")[:-1]]


def test_every_acknowledged_append_survives_a_sigkill(tmp_path):
    path = tmp_path / "store.sqlite3"
    proc = start(APPENDER, path, tmp_path)
    acknowledged = [proc.stdout.readline().strip() for _ in range(150)]  # killed mid-storm, after 150 acks
    acknowledged += kill(proc)
    acknowledged = [tuple(map(int, line.split())) for line in acknowledged if line]
    assert len(acknowledged) >= 150
    store = SQLiteStore(path)
    try:
        assert store.check() == []
        log = {entry.seq: entry for batch in store.log_since(0, batch_size=97) for entry in batch}
        for seq, k in acknowledged:
            add_k, add_k1, removal = log[seq - 2], log[seq - 1], log[seq]
            assert (add_k.op, add_k.user, add_k.item, add_k.weight, add_k.timestamp) == (
                "add",
                f"u{k}",
                f"i{k}",
                float(k + 1),
                1e9 + k,
            )
            assert (add_k1.user, add_k1.weight, add_k1.timestamp) == (f"u{k + 1}", float(k + 2), None)
            assert (removal.op, removal.user, removal.item, removal.weight) == ("remove", f"u{k}", f"i{k}", None)
        # whatever was written is whole: no transaction left half of its rows behind
        assert sorted(log) == list(range(1, len(log) + 1))
        assert store.watermark() >= acknowledged[-1][0]
        assert store.append_interactions(["after"], ["crash"], [1]) == store.watermark() == max(log) + 1
    finally:
        store.close()


def test_a_job_executing_in_a_killed_process_is_recovered_not_lost(tmp_path):
    path = tmp_path / "store.sqlite3"
    store = SQLiteStore(path, backoff_base=0)
    job = store.enqueue_job("fit", {"algorithm": "als"}, max_attempts=2)
    proc = start(CLAIMER, path, tmp_path)
    assert int(proc.stdout.readline()) == job.id  # claimed and executing when the process dies
    kill(proc)
    try:
        assert store.check() == []
        stranded = store.get_job(job.id)
        assert (stranded.state, stranded.attempts, stranded.progress) == ("executing", 1, 0.25)
        assert store.recover_jobs() == 1
        recovered = store.get_job(job.id)
        assert recovered.state == "retryable" and "interrupted" in recovered.error
        again = store.claim_job()
        assert (again.id, again.attempts, again.args) == (job.id, 2, {"algorithm": "als"})
        assert store.complete_job(job.id).state == "completed"
    finally:
        store.close()
