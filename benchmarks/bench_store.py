"""The SQLite store: durable writes, log replay, token checks and job claims per second, against plain sqlite3.

    python benchmarks/bench_store.py                 # 2,000 single writes, 200,000 batched, in a temp dir
    python benchmarks/bench_store.py --dir /ssd/tmp  # measure the disk you will deploy on

The alternative is what an application writes without a store: ``sqlite3``
with its defaults (rollback journal, ``synchronous=FULL``, so also durable),
one INSERT and COMMIT per write, and a replay that fetches the whole table.
Both write the same rows to a file in the same directory.
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from pathlib import Path

from backpack.store.sqlite import SQLiteStore


def per_second(n: int, fn) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def plain_sqlite(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path)
    conn.execute(
        "CREATE TABLE log (seq INTEGER PRIMARY KEY AUTOINCREMENT, op TEXT, user TEXT, item TEXT, "
        "weight REAL, timestamp REAL)"
    )
    conn.commit()
    return conn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--single", type=int, default=2000, help="writes of one interaction each")
    parser.add_argument("--batched", type=int, default=200_000, help="interactions written 1,000 per call")
    parser.add_argument("--dir", help="where the files go (default: a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        tmp = Path(tmp)
        store = SQLiteStore(tmp / "store.sqlite3")
        plain = plain_sqlite(tmp / "plain.sqlite3")
        rows = [(f"u{i % 5000}", f"i{i % 20000}", 1.0, 1.7e9 + i) for i in range(args.batched)]

        def plain_single():
            for user, item, weight, ts in rows[: args.single]:
                plain.execute(
                    "INSERT INTO log (op, user, item, weight, timestamp) VALUES ('add', ?, ?, ?, ?)",
                    (user, item, weight, ts),
                )
                plain.commit()

        def store_single():
            for user, item, weight, ts in rows[: args.single]:
                store.append_interactions([user], [item], [weight], [ts])

        def plain_batched():
            for start in range(0, len(rows), 1000):
                plain.executemany(
                    "INSERT INTO log (op, user, item, weight, timestamp) VALUES ('add', ?, ?, ?, ?)",
                    rows[start : start + 1000],
                )
                plain.commit()

        def store_batched():
            for start in range(0, len(rows), 1000):
                users, items, weights, times = zip(*rows[start : start + 1000])
                store.append_interactions(users, items, weights, times)

        results = [
            ("durable single writes /s", per_second(args.single, plain_single), per_second(args.single, store_single)),
            (
                "batched interactions /s (1,000 a call)",
                per_second(len(rows), plain_batched),
                per_second(len(rows), store_batched),
            ),
        ]
        total = args.single + len(rows)
        results.append(
            (
                "log replay rows /s (plain: fetchall)",
                per_second(total, lambda: plain.execute("SELECT * FROM log").fetchall()),
                per_second(total, lambda: sum(len(b) for b in store.log_since(0))),
            )
        )

        _, secret = store.create_token("service")
        store_tokens = per_second(5000, lambda: [store.verify_token(secret) for _ in range(5000)])
        for n in range(1000):
            store.enqueue_job("work", {"n": n})

        def claim_and_complete():
            while (job := store.claim_job()) is not None:
                store.complete_job(job.id, {})

        store_jobs = per_second(1000, claim_and_complete)
        store.close()
        plain.close()

    print(f"| {'operation':<40} | {'plain sqlite3':>13} | {'SQLiteStore':>11} | ratio |")
    print(f"|{'-' * 42}|{'-' * 15}|{'-' * 13}|-------|")
    for name, base, ours in results:
        print(f"| {name:<40} | {base:>13,.0f} | {ours:>11,.0f} | {ours / base:5.2f} |")
    print(f"| {'token verifications /s':<40} | {'':>13} | {store_tokens:>11,.0f} |       |")
    print(f"| {'job claim + complete /s (2 commits)':<40} | {'':>13} | {store_jobs:>11,.0f} |       |")


if __name__ == "__main__":
    main()
