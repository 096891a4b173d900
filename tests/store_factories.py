"""The stores the shared store tests run against: ``factory(directory, **options) -> Store``.

A new store (a server database) adds its factory here and must pass
``tests/test_store.py`` and ``tests/test_jobs.py`` unchanged. ``options`` are
the ones every store takes: ``backoff_base``, ``backoff_cap`` and ``clock``.

PostgreSQL: ``BACKPACK_TEST_POSTGRES_DSN`` names a server to use; otherwise a
throwaway cluster is started (once per test session, on loopback, stopped at
exit) from the PostgreSQL binaries found (``pg_config --bindir``,
``/usr/lib/postgresql/*/bin`` or ``PATH``). Each store gets a schema of its
own. With neither, the PostgreSQL tests skip, unless
``BACKPACK_TEST_POSTGRES=required`` (CI), where they fail.
"""

from __future__ import annotations

import atexit
import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import uuid

import pytest

from backpack.store.sqlite import SQLiteStore


def sqlite_store(directory, **options):
    return SQLiteStore(directory / "store.sqlite3", **options)


class _PostgresServer:
    """A DSN for the tests: the one in ``BACKPACK_TEST_POSTGRES_DSN`` or a throwaway cluster's."""

    def __init__(self):
        self.dsn: str | None = None
        self.problem: str | None = None  # why there is no server
        self._started = False
        self._stop: list[str] | None = None
        self._run_as: list[str] = []
        self._schemas = itertools.count()
        self._schemas_made: list[str] = []

    def get(self) -> str:
        if not self._started:
            self._started = True
            try:
                self.dsn = os.environ.get("BACKPACK_TEST_POSTGRES_DSN") or self._start()
            except Exception as exc:  # noqa: BLE001 - reported as the reason for skipping/failing
                self.problem = f"{type(exc).__name__}: {exc}"
        if self.dsn is None:
            message = f"no PostgreSQL server for the store tests ({self.problem})"
            if os.environ.get("BACKPACK_TEST_POSTGRES") == "required":
                pytest.fail(message + "; BACKPACK_TEST_POSTGRES=required", pytrace=False)
            pytest.skip(message + ": install PostgreSQL or set BACKPACK_TEST_POSTGRES_DSN")
        return self.dsn

    @staticmethod
    def _bindir() -> str:
        candidates = []
        if shutil.which("pg_config"):
            candidates.append(subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
        candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)  # Debian, newest first
        if shutil.which("initdb"):
            candidates.append(os.path.dirname(shutil.which("initdb")))
        for bindir in candidates:
            if os.path.exists(os.path.join(bindir, "initdb")) and os.path.exists(os.path.join(bindir, "pg_ctl")):
                return bindir
        raise FileNotFoundError("no PostgreSQL binaries (initdb, pg_ctl) found")

    def _start(self) -> str:
        bindir = self._bindir()
        root = tempfile.mkdtemp(prefix="backpack-pg-")
        if os.geteuid() == 0:
            # PostgreSQL refuses to run as root: run the cluster as 'nobody', who must own its files
            import pwd

            nobody = pwd.getpwnam("nobody")
            os.chown(root, nobody.pw_uid, nobody.pw_gid)
            self._run_as = (
                ["runuser", "-u", "nobody", "--"]
                if shutil.which("runuser")
                else ["su", "nobody", "-s", "/bin/sh", "-c"]
            )
        with socket.socket() as probe:  # a free port; the tiny race with another process is acceptable
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        data = os.path.join(root, "data")
        self._command(
            [
                os.path.join(bindir, "initdb"),
                "-D",
                data,
                "-U",
                "backpack",
                "--auth=trust",
                "-N",
                "-E",
                "UTF8",
                "--locale=C",
            ]
        )
        # fsync=off: a throwaway cluster; crash durability is the server's business, not these tests'
        options = f"-k {root} -c listen_addresses=127.0.0.1 -p {port} -c fsync=off -c max_connections=200"
        self._command(
            [os.path.join(bindir, "pg_ctl"), "-D", data, "-o", options, "-l", os.path.join(root, "log"), "-w", "start"]
        )
        self._stop = [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "-w", "stop"]
        atexit.register(self._shutdown, root)
        return f"host=127.0.0.1 port={port} user=backpack dbname=postgres"

    def _command(self, argv: list[str]) -> None:
        if self._run_as and self._run_as[0] == "su":
            argv = self._run_as + [" ".join(argv)]
        else:
            argv = self._run_as + argv
        done = subprocess.run(argv, capture_output=True, text=True, cwd="/")
        if done.returncode:
            raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.stdout.strip()}")

    def _shutdown(self, root: str) -> None:
        if self._stop:
            subprocess.run(self._run_as + self._stop, capture_output=True, cwd="/")
        shutil.rmtree(root, ignore_errors=True)

    def _drop_schemas(self) -> None:
        import psycopg

        try:
            with psycopg.connect(self.dsn, autocommit=True, connect_timeout=5) as conn:
                for schema in self._schemas_made:
                    conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        except psycopg.Error:
            pass  # the server is gone already (a throwaway cluster stopped first): nothing to clean

    def fresh_schema_dsn(self) -> str:
        """The server's DSN with ``search_path`` set to a new, empty schema: a fresh store each time."""
        import psycopg

        dsn = self.get()
        schema = f"bp_test_{os.getpid()}_{next(self._schemas)}_{uuid.uuid4().hex[:6]}"
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {schema}")
        if not self._schemas_made:  # a server we did not start keeps running: leave it as it was
            atexit.register(self._drop_schemas)
        self._schemas_made.append(schema)
        return psycopg.conninfo.make_conninfo(dsn, options=f"-c search_path={schema}")


POSTGRES = _PostgresServer()


def postgres_store(directory, **options):
    try:
        import psycopg  # noqa: F401

        from backpack.store.postgres import PostgresStore
    except ImportError as exc:
        if os.environ.get("BACKPACK_TEST_POSTGRES") == "required":
            pytest.fail(f"psycopg is not installed ({exc}); BACKPACK_TEST_POSTGRES=required", pytrace=False)
        pytest.skip(f"psycopg is not installed ({exc}): pip install 'backpack-engine[postgres]'")
    return PostgresStore(POSTGRES.fresh_schema_dsn(), max_size=10, **options)


STORE_FACTORIES = {"sqlite": sqlite_store, "postgres": postgres_store}


class FakeClock:
    """A clock that moves only when told (``clock.now += 5``), for back-off and schedules."""

    def __init__(self, now: float = 1_700_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now
