"""What only the SQLite store promises: WAL and fsync settings, a private file, migrations, check(), the plugin."""

import gc
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading

import pytest

from backpack.errors import InvalidInputError, StoreError
from backpack.plugins import Plugins
from backpack.store.base import Store, default_store_path, open_store
from backpack.store.sqlite import MIGRATIONS, SCHEMA_VERSION, SQLiteStore


@pytest.fixture
def path(tmp_path):
    return tmp_path / "store.sqlite3"


@pytest.fixture
def store(path):
    store = SQLiteStore(path)
    yield store
    store.close()


def test_wal_mode_and_full_sync_on_every_connection(store, path):
    store.append_interactions(["u"], ["i"], [1])
    conn = store._connection()
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL: the WAL is fsynced at each commit
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA busy_timeout").fetchone()[0] > 0
    # WAL is a property of the file: another process's connection sees it too
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_the_file_is_private_to_its_owner(store, path):
    store.create_token("admin")
    for file in (path, path.with_name(path.name + "-wal")):
        assert stat.S_IMODE(file.stat().st_mode) == 0o600, file


def test_only_a_hash_of_a_secret_is_written(store, path):
    record, secret = store.create_token("admin")
    store.close()
    raw = b"".join(p.read_bytes() for p in path.parent.glob("store.sqlite3*"))
    assert record.id.encode() in raw
    assert secret.encode() not in raw and secret.rsplit("_", 1)[1].encode() not in raw


def test_a_version_1_file_is_migrated_with_its_data_kept(path):
    conn = sqlite3.connect(path, isolation_level=None)
    for sql in MIGRATIONS[0]:
        conn.execute(sql)
    conn.execute("PRAGMA user_version = 1")
    conn.execute("INSERT INTO log (op, user, item, weight, timestamp) VALUES ('add', 'u', 'i', 2.0, NULL)")
    conn.execute("INSERT INTO items (id, doc) VALUES ('i', '{\"n\": 1}')")
    conn.close()
    store = SQLiteStore(path)
    try:
        assert store.schema_version() == SCHEMA_VERSION >= 2
        assert [e.weight for batch in store.log_since(0) for e in batch] == [2.0]
        assert store.get_item("i") == {"n": 1}
        record, secret = store.create_token("admin")  # tables from migration 2
        assert store.verify_token(secret) == record
        assert store.enqueue_job("fit").state == "available"
        assert store.append_interactions(["u"], ["j"], [1]) == 2  # seqs continue after the migrated ones
        assert store.check() == []
    finally:
        store.close()


def test_a_file_from_a_newer_backpack_is_refused(path):
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(StoreError, match="newer"):
        SQLiteStore(path)


def test_reopening_keeps_everything_and_does_not_migrate_again(path):
    store = SQLiteStore(path)
    store.append_interactions(["u"], ["i"], [1])
    store.put_users({"u": {"n": "ü"}})
    store.close()
    again = SQLiteStore(path)
    try:
        assert again.watermark() == 1 and again.get_user("u") == {"n": "ü"}
    finally:
        again.close()


def test_seqs_are_never_reused_even_after_the_last_entries_are_deleted(store):
    store.append_interactions(["u", "u"], ["i", "j"], [1, 1])
    # the log is append-only through the API; a repair by hand must still not recycle seq 2
    store._connection().execute("DELETE FROM log WHERE seq = 2")
    assert store.append_interactions(["u"], ["k"], [1]) == 3


@pytest.mark.parametrize(
    "damage, problem",
    [
        ("UPDATE jobs SET state = 'lost'", "unknown state"),
        ("UPDATE jobs SET attempts = 9", "more attempts"),
        ("UPDATE log SET weight = NULL WHERE op = 'add'", "without a finite weight"),
        ("UPDATE log SET weight = 1 WHERE op = 'remove'", "removals with a weight"),
        ("UPDATE sqlite_sequence SET seq = 0 WHERE name = 'log'", "seq counter"),
        ("UPDATE items SET doc = '{broken'", "items that are not JSON"),
        ("UPDATE tokens SET user = NULL", "user does not fit"),
        ("PRAGMA user_version = 1", "schema version"),
        ("UPDATE snapshots SET watermark = 99", "snapshots past the end of the log"),
    ],
)
def test_check_reports_each_kind_of_damage(store, damage, problem):
    store.append_interactions(["u"], ["i"], [1])
    store.append_removals(["u"], ["i"])
    store.put_items({"i": {}})
    store.create_token("user", "u")
    store.enqueue_job("fit")
    store.record_snapshot("/data/snap", "als", 2)
    assert store.check() == [] and store.check(full=True) == []
    store._connection().execute(damage)
    problems = store.check()
    assert len(problems) == 1 and problem in problems[0], problems


def test_each_thread_has_its_own_connection_closed_when_the_thread_ends(store):
    store.watermark()
    seen = []
    worker = threading.Thread(target=lambda: seen.append(store._connection()) or store.watermark())
    worker.start()
    worker.join()
    assert seen[0] is not store._connection()
    seen.clear()
    gc.collect()
    assert len(store._connections) == 1  # only this thread's is still open


def test_a_closed_store_says_so(store):
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.watermark()


def test_a_store_that_cannot_be_created_is_a_store_error(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(StoreError):
        SQLiteStore(tmp_path / "file" / "store.sqlite3")


def test_jobs_are_claimed_once_across_processes(path, tmp_path):
    store = SQLiteStore(path)
    jobs = {store.enqueue_job("work", {"n": n}).id for n in range(30)}
    script = textwrap.dedent(f"""
        from backpack.store.sqlite import SQLiteStore
        store = SQLiteStore({str(path)!r})
        while (job := store.claim_job()) is not None:
            print(job.id, flush=True)
    """)
    procs = [
        subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=tmp_path)
        for _ in range(3)
    ]
    claimed = [int(line) for p in procs for line in p.communicate(timeout=60)[0].split()]
    assert all(p.returncode == 0 for p in procs)
    assert sorted(claimed) == sorted(jobs)
    store.close()


def test_open_store_creates_the_sqlite_store_through_the_plugin_registry(tmp_path):
    assert default_store_path(tmp_path) == tmp_path / "store.sqlite3"
    plugins = Plugins()
    assert plugins.registry("stores")["sqlite"].plugin == "stores"
    store = open_store("sqlite", plugins=plugins, path=default_store_path(tmp_path), backoff_base=2.0)
    try:
        assert isinstance(store, SQLiteStore) and store.backoff_base == 2.0
    finally:
        store.close()
    with pytest.raises(InvalidInputError, match="unknown store 'oracle'"):
        open_store("oracle", plugins=plugins)
    with pytest.raises(InvalidInputError, match="does not take"):
        open_store("sqlite", plugins=plugins, path=tmp_path / "x", colour="red")


def test_the_contracts_default_enqueue_job_once_also_refuses_twins(path):
    class WithoutOverride(SQLiteStore):  # what a store plugin that does not override it gets
        enqueue_job_once = Store.enqueue_job_once

    store = WithoutOverride(path)
    try:
        assert store.enqueue_job_once("fit", {"a": 1}) is not None
        assert store.enqueue_job_once("fit", {"a": 1}) is None
        store.claim_job()
        assert store.enqueue_job_once("fit", {"a": 1}) is None
        assert store.enqueue_job_once("fit", {"a": 2}) is not None
    finally:
        store.close()
