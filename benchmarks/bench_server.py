"""Load test of the socket server: Backpack's `backpack serve` against a plain Python + SciPy server.

    python benchmarks/bench_server.py                      # 200k x 200k synthetic, 1/16/64/256 clients, 5 s each
    python benchmarks/bench_server.py --size small --seconds 2

Both servers speak the same protocol (docs/protocol.md: 4-byte big-endian
length, one JSON object) on loopback and serve the same item-kNN model
fitted once on the same synthetic catalogue. The reference keeps bags in
Python dicts, scores a bag with one SciPy sparse product against the same
similarity matrix, masks owned items and takes the top n with NumPy; it has
no micro-batching and no durable store (so its add_interactions is cheaper
than Backpack's, which waits for SQLite to fsync). Each client is one
connection sending one request at a time and measuring its latency; all
clients run in this process (an asyncio loop) for a bounded time per level.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

# the same event loop for Backpack, the reference and the load (uvloop where installed), so the
# loop is not what the comparison measures and the clients cost the shared cores as little as it can
from backpack.serving.loop import run_on_new_loop

LEVELS = (1, 16, 64, 256)
_HEADER = struct.Struct(">I")


# -- the reference server: plain Python + SciPy ---------------------------------------------------


class ReferenceServer:
    """The same protocol served the plain way: a dict of bags and a SciPy product per request."""

    def __init__(self, similarity: sp.csr_matrix, user_ids: list[str], item_ids: list[str], user_items: sp.csr_matrix):
        self.similarity = similarity.tocsr()
        self.item_ids = item_ids
        self.item_index = {item: i for i, item in enumerate(item_ids)}
        self.bags: dict[str, dict[int, float]] = {}
        for u, user in enumerate(user_ids):
            start, stop = user_items.indptr[u], user_items.indptr[u + 1]
            self.bags[user] = dict(zip(user_items.indices[start:stop].tolist(), user_items.data[start:stop].tolist()))
        counts = np.asarray((user_items > 0).sum(axis=0)).ravel()
        self.popular = np.argsort(-counts, kind="stable")

    def recommend(self, user: str, n: int) -> list[dict]:
        bag = self.bags.get(user, {})
        if not bag:
            return [{"item": self.item_ids[i], "score": 0.0, "source": "popular"} for i in self.popular[:n]]
        cols = np.fromiter(bag.keys(), dtype=np.int64, count=len(bag))
        row = sp.csr_matrix(
            (np.fromiter(bag.values(), dtype=np.float32, count=len(bag)), (np.zeros(len(bag), dtype=np.int64), cols)),
            shape=(1, len(self.item_ids)),
        )
        scores = np.asarray((row @ self.similarity).todense()).ravel()
        scores[cols] = -np.inf
        top = np.argpartition(-scores, n)[:n]
        top = top[np.argsort(-scores[top], kind="stable")]
        return [{"item": self.item_ids[i], "score": float(scores[i]), "source": "personal"} for i in top]

    def add_interactions(self, users: list[str], items: list[str], weights=None) -> dict:
        weights = weights or [1.0] * len(users)
        for user, item, weight in zip(users, items, weights):
            i = self.item_index.setdefault(item, len(self.item_index))
            if i >= self.similarity.shape[0]:
                continue  # an item the model has never seen cannot be scored
            bag = self.bags.setdefault(user, {})
            bag[i] = bag.get(i, 0.0) + float(weight)
        return {"added": len(users)}

    def answer(self, request: dict) -> dict:
        args = request.get("args") or {}
        try:
            if request.get("op") == "recommend":
                result = {"items": self.recommend(args["user"], int(args.get("n", 10)))}
            elif request.get("op") == "add_interactions":
                result = self.add_interactions(args["users"], args["items"], args.get("weights"))
            elif request.get("op") == "hello":
                result = {"server": "reference", "protocol": 1, "codec": "json"}
            else:
                return {"id": request.get("id"), "error": {"code": "unknown_op", "message": "unknown op"}}
        except (KeyError, TypeError, ValueError) as exc:
            return {"id": request.get("id"), "error": {"code": "invalid_input", "message": str(exc)}}
        return {"id": request.get("id"), "result": result}

    async def serve_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                size = _HEADER.unpack(await reader.readexactly(4))[0]
                reply = json.dumps(self.answer(json.loads(await reader.readexactly(size)))).encode()
                writer.write(_HEADER.pack(len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def run_reference(data: Path, port: int) -> None:
    """Entry of the reference server's own process (``--reference-server``)."""
    with np.load(data / "reference.npz", allow_pickle=False) as f:
        similarity = sp.csr_matrix((f["sim_data"], f["sim_indices"], f["sim_indptr"]), shape=tuple(f["sim_shape"]))
        user_items = sp.csr_matrix((f["ui_data"], f["ui_indices"], f["ui_indptr"]), shape=tuple(f["ui_shape"]))
        user_ids, item_ids = f["user_ids"].tolist(), f["item_ids"].tolist()
    server = ReferenceServer(similarity, user_ids, item_ids, user_items)

    async def main() -> None:
        listener = await asyncio.start_server(server.serve_client, "127.0.0.1", port, limit=1 << 22)
        print("ready", flush=True)
        async with listener:
            await listener.serve_forever()

    run_on_new_loop(main())


# -- the load ---------------------------------------------------------------------------------------


async def _client(
    port: int, token: str | None, make_request, deadline: float, latencies: list[float], errors: list[str]
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
    number = 0

    async def call(request: dict) -> dict:
        body = json.dumps(request).encode()
        writer.write(_HEADER.pack(len(body)) + body)
        await writer.drain()
        size = _HEADER.unpack(await reader.readexactly(4))[0]
        return json.loads(await reader.readexactly(size))

    hello = await call({"id": 0, "op": "hello", "args": {"client": "bench_server", "token": token}})
    if "error" in hello:
        raise RuntimeError(f"hello refused: {hello['error']}")
    try:
        while time.perf_counter() < deadline:
            number += 1
            start = time.perf_counter()
            reply = await call({"id": number, **make_request(number)})
            latencies.append(time.perf_counter() - start)
            if "error" in reply:
                errors.append(reply["error"]["code"])
    finally:
        writer.close()


async def _level(port: int, token: str | None, clients: int, seconds: float, make_request) -> dict:
    latencies: list[float] = []
    errors: list[str] = []
    start = time.perf_counter()
    deadline = start + seconds
    await asyncio.gather(*(_client(port, token, make_request(c), deadline, latencies, errors) for c in range(clients)))
    elapsed = time.perf_counter() - start
    ms = np.array(latencies) * 1000
    return {
        "clients": clients,
        "requests": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "rps": len(latencies) / elapsed,
        "p50": float(np.percentile(ms, 50)),
        "p99": float(np.percentile(ms, 99)),
    }


def measure(
    port: int,
    token: str | None,
    op: str,
    users: list[str],
    items: list[str],
    seconds: float,
    levels=LEVELS,
    n: int = 10,
) -> list[dict]:
    """Run every level of concurrent clients against the server on ``port`` for ``op``."""

    def make_request(client: int):
        rng = np.random.default_rng(client)

        def request(number: int) -> dict:
            if op == "recommend":
                return {"op": "recommend", "args": {"user": users[rng.integers(len(users))], "n": n}}
            k = 4  # a small batch of events, as a game client would flush them
            return {
                "op": "add_interactions",
                "args": {
                    "users": [users[rng.integers(len(users))] for _ in range(k)],
                    "items": [items[rng.integers(len(items))] for _ in range(k)],
                },
            }

        return request

    return [run_on_new_loop(_level(port, token, clients, seconds, make_request)) for clients in levels]


# -- set-up and the run -------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 600.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with code {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout:.0f} s")


def prepare(data: Path, size: str, k: int, seed: int) -> tuple[list[str], list[str]]:
    """Fit item-kNN on the synthetic catalogue, save Backpack's data directory and the reference's arrays."""
    import backpack
    from backpack.data import synthetic

    cat = synthetic.generate_size(size, seed=seed)
    engine = backpack.Engine()
    engine.load_matrix(cat.user_items, cat.user_ids, cat.item_ids)
    start = time.perf_counter()
    model = engine.fit("itemknn", k=k)
    print(
        f"  {cat.user_items.shape[0]:,} users x {cat.user_items.shape[1]:,} items, {cat.user_items.nnz:,} "
        f"interactions; item-kNN (k={k}) fitted in {time.perf_counter() - start:.1f} s",
        flush=True,
    )
    engine.save(data / "backpack")
    sim = model.similarity.tocsr().astype(np.float32)
    ui = engine.bags.to_csr()
    user_ids = engine.bags.user_ids(np.arange(ui.shape[0]))
    item_ids = engine.bags.item_ids(np.arange(ui.shape[1]))
    np.savez(
        data / "reference.npz",
        sim_data=sim.data,
        sim_indices=sim.indices,
        sim_indptr=sim.indptr,
        sim_shape=np.array(sim.shape),
        ui_data=ui.data,
        ui_indices=ui.indices,
        ui_indptr=ui.indptr,
        ui_shape=np.array(ui.shape),
        user_ids=np.array(user_ids),
        item_ids=np.array(item_ids),
    )
    return list(user_ids), list(item_ids)


def start_backpack(data: Path, port: int) -> tuple[subprocess.Popen, str]:
    """``backpack serve`` on the data directory, with an admin token made by ``backpack token create``."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
    made = subprocess.run(
        [
            sys.executable,
            "-m",
            "backpack.cli.main",
            "token",
            "create",
            "--role",
            "admin",
            "--json",
            "--data-dir",
            str(data),
        ],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    token = json.loads(made.stdout)["secret"]
    server = subprocess.Popen(
        [sys.executable, "-m", "backpack.cli.main", "serve", "--data-dir", str(data), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
    )
    _wait_for_port(port, server)
    return server, token


def start_reference(data: Path, port: int) -> subprocess.Popen:
    server = subprocess.Popen(
        [sys.executable, __file__, "--reference-server", "--port", str(port), "--data", str(data)],
        env={**os.environ, "OPENBLAS_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
    )
    _wait_for_port(port, server)
    return server


def stop(process: subprocess.Popen) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()


def table(op: str, ours: list[dict], reference: list[dict]) -> str:
    lines = [
        f"### {op}",
        "",
        "| clients | Backpack p50 ms | p99 ms | req/s | reference p50 ms | p99 ms | req/s | throughput ratio |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for a, b in zip(ours, reference):
        lines.append(
            f"| {a['clients']} | {a['p50']:.2f} | {a['p99']:.2f} | {a['rps']:,.0f} | {b['p50']:.2f} | "
            f"{b['p99']:.2f} | {b['rps']:,.0f} | {a['rps'] / b['rps']:.1f}x |"
        )
    bad = [(r["clients"], r["errors"], r["first_error"]) for r in ours + reference if r["errors"]]
    if bad:
        lines.append(f"\nerrors (clients, count, first code): {bad}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", default="default", choices=["tiny", "small", "default"])
    parser.add_argument("--seconds", type=float, default=5.0, help="per level of concurrency and op")
    parser.add_argument("--levels", default=",".join(map(str, LEVELS)))
    parser.add_argument("--k", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reference-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.reference_server:
        run_reference(Path(args.data), args.port)
        return
    levels = tuple(int(x) for x in args.levels.split(","))
    with tempfile.TemporaryDirectory(prefix="bench_server-") as tmp:
        data = Path(tmp)
        users, items = prepare(data, args.size, args.k, args.seed)
        results = {}
        for name, start in (
            ("backpack", lambda port: start_backpack(data / "backpack", port)),
            ("reference", lambda port: (start_reference(data, port), None)),
        ):
            port = _free_port()
            server, token = start(port)
            try:
                results[name] = {
                    op: measure(port, token, op, users, items, args.seconds, levels)
                    for op in ("recommend", "add_interactions")
                }
            finally:
                stop(server)
        for op in ("recommend", "add_interactions"):
            print()
            print(table(op, results["backpack"][op], results["reference"][op]))


if __name__ == "__main__":
    main()
