"""The socket server's recommend throughput against in-process calls, same engine, same run.

Many clients each asking for one user's list is the server's common case.
This script measures, for the same users:

- in process: ``engine.recommend`` in a loop (one core call per user) and
  ``engine.recommend_batch`` for all of them (the floor);
- over loopback TCP: ``--clients`` asyncio connections pipelining
  ``recommend`` requests, with the server's micro-batching window at several
  settings; it reports requests/s, core calls per request and the ratio to
  the in-process loop.

    python benchmarks/bench_batching.py                  # small synthetic catalogue
    python benchmarks/bench_batching.py --size default --requests 20000
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time

import numpy as np

from backpack import Engine
from backpack.data import synthetic
from backpack.serving.client import AsyncClient
from backpack.serving.loop import ServerThread
from backpack.serving.requests import Limits
from backpack.serving.server import Server
from backpack.store.sqlite import SQLiteStore


async def storm(address: str, token: str, users: list[str], clients: int, n: int) -> float:
    """Seconds to get ``n`` items for every user over ``clients`` pipelined connections."""
    connections = [AsyncClient(address, token=token, timeout=60) for _ in range(clients)]
    for c in connections:
        await c.connect()
    start = time.perf_counter()
    await asyncio.gather(*(connections[i % clients].recommend(u, n) for i, u in enumerate(users)))
    seconds = time.perf_counter() - start
    for c in connections:
        await c.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=["tiny", "small", "default"], default="small")
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("-n", type=int, default=10)
    parser.add_argument("--windows", default="0,1,2,5", help="batch windows to try, milliseconds")
    args = parser.parse_args()

    catalogue = synthetic.generate_size(args.size)
    engine = Engine()
    engine.load_matrix(catalogue.user_items, catalogue.user_ids, catalogue.item_ids)
    engine.fit("itemknn")
    rng = np.random.default_rng(0)
    users = [catalogue.user_ids[i] for i in rng.integers(0, len(catalogue.user_ids), args.requests)]
    print(
        f"{args.size} catalogue: {engine.bags.n_users} users x {engine.bags.n_items} items, "
        f"{engine.bags.nnz} interactions; {args.requests} requests, n={args.n}, {args.clients} connections"
    )

    start = time.perf_counter()
    for u in users:
        engine.recommend(u, args.n)
    loop_rate = args.requests / (time.perf_counter() - start)
    start = time.perf_counter()
    engine.recommend_batch(users, args.n)
    batch_rate = args.requests / (time.perf_counter() - start)
    print(f"in process, recommend loop:    {loop_rate:10.0f} req/s  (1.00x)")
    print(f"in process, one batch call:    {batch_rate:10.0f} req/s  ({batch_rate / loop_rate:.2f}x)")

    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(f"{folder}/store.sqlite3")
        token = store.create_token("service")[1]
        for window_ms in (float(w) for w in args.windows.split(",")):
            server = Server(
                engine,
                store,
                data_dir=folder,
                port=0,
                batch_window=window_ms / 1000,
                limits=Limits(rate=0, max_in_flight=1024),
            )
            with ServerThread(server):
                address = f"{server.address[0]}:{server.address[1]}"
                seconds = asyncio.run(storm(address, token, users, args.clients, args.n))
                rate = args.requests / seconds
                per_call = args.requests / max(server.recommends.calls, 1)
                print(
                    f"socket, batch window {window_ms:3g} ms: {rate:10.0f} req/s  ({rate / loop_rate:.2f}x), "
                    f"{per_call:.1f} requests per core call"
                )
        store.close()


if __name__ == "__main__":
    main()
