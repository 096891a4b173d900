"""A real server on loopback and a Unix socket, over an in-memory store, for the server tests."""

from __future__ import annotations

import shutil
import socket
import struct
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from memory_store import MemoryStore

from backpack.serving.client import Client
from backpack.serving.loop import ServerThread
from backpack.serving.protocol import decode_body, encode_frame, recv_frame
from backpack.serving.requests import Limits
from backpack.serving.server import Server
from backpack.serving.snapshots import restore_engine
from backpack.store.base import Store

ITEM = "https://assets.example/item/{}"
USERS = [f"user{u}" for u in range(30)]


def seed_pairs(seed: int = 3) -> tuple[list[str], list[str]]:
    """A small random catalogue of interactions: every user holds a few of 20 items."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for user in USERS:
        for item in rng.choice(20, size=5, replace=False):
            users.append(user)
            items.append(ITEM.format(int(item)))
    return users, items


class Running:
    """A started server with its store, tokens (admin, service, user ``user0``) and addresses."""

    def __init__(self, server: Server, thread: ServerThread, store: Store, tokens: dict, folder: Path):
        self.server, self.thread, self.store, self.tokens, self.folder = server, thread, store, tokens, folder

    @property
    def engine(self):
        return self.server.engine

    @property
    def tcp(self) -> str:
        host, port = self.server.address
        return f"{host}:{port}"

    @property
    def unix(self) -> str:
        return str(self.server.unix_path)

    def client(self, role: str | None = "admin", **options) -> Client:
        return Client(self.tcp, token=None if role is None else self.tokens[role], **options)


@contextmanager
def running_server(
    *, store: Store | None = None, seeded: bool = True, fitted: bool = True, user: str = "user0", **options
):
    """A server (port 0, a Unix socket in a short temporary folder) over ``store`` (a fresh one by default),
    seeded with :func:`seed_pairs` through the protocol and fitted with itemknn unless told otherwise;
    its user token acts for ``user``."""
    folder = Path(tempfile.mkdtemp(prefix="bp-", dir="/tmp"))  # short: Unix socket paths are limited
    store = store if store is not None else MemoryStore()
    options.setdefault("limits", Limits(idle_timeout=30, read_timeout=5))
    engine = restore_engine(store)
    server = Server(engine, store, data_dir=folder, port=0, unix_path=folder / "bp.sock", **options)
    tokens = {
        "admin": store.create_token("admin")[1],
        "service": store.create_token("service")[1],
        "user": store.create_token("user", user)[1],
    }
    thread = ServerThread(server).start()
    running = Running(server, thread, store, tokens, folder)
    try:
        if seeded:
            with running.client() as admin:
                admin.add_interactions(*seed_pairs())
                if fitted:
                    admin.fit("itemknn", wait=True, timeout=30)
        yield running
    finally:
        thread.stop()
        shutil.rmtree(folder, ignore_errors=True)


class RawConnection:
    """A bare socket speaking frames by hand, for malformed input."""

    def __init__(self, address: str, timeout: float = 5.0):
        host, port = address.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=timeout)

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send_body(self, body: bytes) -> None:
        self.sock.sendall(struct.pack(">I", len(body)) + body)

    def request(self, message: dict, codec: str = "json") -> None:
        self.sock.sendall(encode_frame(message, codec))

    def reply_body(self) -> bytes:
        return recv_frame(self.sock)

    def reply(self, codec: str = "json") -> dict:
        return decode_body(self.reply_body(), codec)

    def closed_by_server(self) -> bool:
        """Whether the server closed its side (end of stream, or reset)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
