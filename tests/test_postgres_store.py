"""What only the PostgreSQL store promises: migrations, check(), typed errors, the plugin, concurrency
across pools. The contract itself runs in test_store.py and test_jobs.py (store_factories lists it)."""

import socket
import sys
import threading

import pytest
from store_factories import POSTGRES, postgres_store

from backpack.errors import InvalidInputError, StoreError
from backpack.plugins import Plugins
from backpack.store.base import open_store

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'backpack-engine[postgres]'")

from backpack.store import postgres as pg  # noqa: E402 - after the skip
from backpack.store.postgres import MIGRATIONS, SCHEMA_VERSION, PostgresStore  # noqa: E402


@pytest.fixture
def dsn():
    return POSTGRES.fresh_schema_dsn()


@pytest.fixture
def store(dsn):
    store = PostgresStore(dsn)
    yield store
    store.close()


def sql(dsn, statement, params=()):
    with psycopg.connect(dsn, autocommit=True) as conn:
        cur = conn.execute(statement, params)
        return cur.fetchall() if cur.description else None


def test_a_new_database_gets_every_migration_and_reopening_keeps_the_data(dsn):
    with PostgresStore(dsn) as store:
        assert store.schema_version() == SCHEMA_VERSION == len(MIGRATIONS)
        store.append_interactions(["u"], ["i"], [1])
        store.create_token("admin")
    with PostgresStore(dsn) as again:  # the steps are not run twice (CREATE TABLE would fail)
        assert again.counts()["log"] == 1 and again.counts()["tokens"] == 1
        assert again.append_interactions(["u"], ["j"], [1]) == 2  # the seq counter survived too


def test_an_older_database_runs_only_the_steps_it_lacks(dsn, monkeypatch):
    monkeypatch.setattr(pg, "MIGRATIONS", MIGRATIONS[:1])
    monkeypatch.setattr(pg, "SCHEMA_VERSION", 1)
    with PostgresStore(dsn) as old:
        old.append_interactions(["u"], ["i"], [1])
        assert sql(dsn, "SELECT to_regclass('jobs')")[0][0] is None
    monkeypatch.undo()
    with PostgresStore(dsn) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.watermark() == 1
        assert store.enqueue_job("fit").state == "available"


def test_a_database_from_a_newer_backpack_is_refused(dsn):
    PostgresStore(dsn).close()
    sql(dsn, "UPDATE backpack_schema SET version = %s", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this Backpack"):
        PostgresStore(dsn)


def test_check_reports_what_the_schema_cannot_prevent(store, dsn):
    store.append_interactions(["u"], ["i"], [1])
    store.put_items({"i": {}})
    store.enqueue_job("fit")
    assert store.check() == []
    sql(dsn, "INSERT INTO log (seq, op, user_id, item, weight) VALUES (5, 'add', 'u', 'i', 'NaN')")
    sql(dsn, "UPDATE jobs SET state = 'lost', attempts = 9")
    sql(dsn, "INSERT INTO tokens (id, hash, role, user_id, created) VALUES ('t', 'h', 'admin', 'bob', 0)")
    sql(dsn, "UPDATE items SET doc = '[1]'::jsonb")
    sql(dsn, "INSERT INTO snapshots (path, watermark, created) VALUES ('/x', 99, 0)")
    assert sorted(store.check()) == sorted(
        [
            "1 log adds without a finite weight, or one the engine refuses (skipped on restore)",
            "1 log seqs past the seq counter",
            "1 snapshots past the end of the log",
            "1 jobs in an unknown state",
            "1 jobs with more attempts than allowed",
            "1 tokens whose user does not fit their role",
            "1 items that are not JSON objects",
        ]
    )


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_unreachable_server_is_a_store_error_that_does_not_leak_the_password():
    with pytest.raises(StoreError, match="cannot open the PostgreSQL store") as info:
        PostgresStore(f"host=127.0.0.1 port={free_port()} dbname=bp user=bp password=hunter2", connect_timeout=2)
    assert "hunter2" not in str(info.value) and info.value.code == "store"


def test_without_psycopg_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # import psycopg now raises ImportError
    with pytest.raises(StoreError, match=r"backpack-engine\[postgres\]"):
        PostgresStore("host=127.0.0.1")


def test_bad_pool_sizes_are_refused():
    with pytest.raises(InvalidInputError):
        PostgresStore("host=127.0.0.1", min_size=3, max_size=2)


def test_an_exhausted_pool_is_a_store_error_after_the_timeout(dsn):
    with PostgresStore(dsn, max_size=1, timeout=0.5) as store:
        with store._pool.connection():  # the pool's only connection, held elsewhere
            with pytest.raises(StoreError, match="no connection"):
                store.watermark()
        assert store.watermark() == 0  # handed back: usable again


def test_open_store_creates_the_postgres_store_through_the_plugin_registry(dsn):
    plugins = Plugins()
    assert plugins.registry("stores")["postgres"].plugin == "stores"
    with open_store("postgres", plugins=plugins, dsn=dsn, backoff_base=2.0, max_size=2) as store:
        assert isinstance(store, PostgresStore) and store.backoff_base == 2.0
        assert store.watermark() == 0


def test_concurrent_appends_get_every_seq_once_in_commit_order(tmp_path):
    store = postgres_store(tmp_path)
    lasts, errors = [], []

    def appender(n):
        try:
            for _ in range(10):
                lasts.append(store.append_interactions([f"u{n}"] * 3, ["i"] * 3, [1.0] * 3))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=appender, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert errors == []
        seqs = [e.seq for batch in store.log_since(0, batch_size=7) for e in batch]
        assert seqs == list(range(1, 181))  # no gap, no repeat: a replay from any watermark misses nothing
        assert sorted(lasts) == list(range(3, 181, 3))
        assert store.check() == []
    finally:
        store.close()


def test_two_pools_on_one_database_never_claim_the_same_job(dsn):
    stores = [PostgresStore(dsn, max_size=4) for _ in range(2)]  # as two server processes would
    jobs = {stores[0].enqueue_job("work", {"n": n}).id for n in range(30)}
    claimed, errors = [], []

    def claimer(store):
        try:
            while (job := store.claim_job("work")) is not None:
                claimed.append(job.id)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=claimer, args=(stores[k % 2],)) for k in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for s in stores:
        s.close()
    assert errors == [] and sorted(claimed) == sorted(jobs)
