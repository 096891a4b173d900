"""Which event loop the server runs on (uvloop where installed), and a server on a thread of its own."""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from backpack.errors import InvalidInputError

if TYPE_CHECKING:  # the server module imports this one to run itself
    from backpack.serving.server import Server

EVENT_LOOPS = ("auto", "uvloop", "asyncio")


def new_event_loop(kind: str = "auto") -> asyncio.AbstractEventLoop:
    """A fresh event loop of ``kind``: ``"uvloop"`` (libuv underneath: sockets, timers and
    callbacks cost a fraction of the standard loop's, which is most of a small request's
    cost), ``"asyncio"`` (the standard loop), or ``"auto"``: uvloop where it is installed."""
    if kind not in EVENT_LOOPS:
        raise InvalidInputError(f"event loop must be one of {list(EVENT_LOOPS)}, got {kind!r}")
    if kind != "asyncio":
        try:
            import uvloop
        except ImportError:
            if kind == "uvloop":
                raise InvalidInputError("uvloop is not installed (pip install uvloop; not on Windows)") from None
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def run_on_new_loop(main, kind: str = "auto"):
    """``asyncio.run(main)`` on a loop made by :func:`new_event_loop`."""
    loop = new_event_loop(kind)
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(main)
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


class ServerThread:
    """A :class:`Server` running on its own event loop in a background thread (embedding, tests).

    ``with ServerThread(server) as running:`` starts it and stops it on exit. ``loop`` is the
    kind of event loop (see :func:`new_event_loop`).
    """

    def __init__(self, server: Server, *, loop: str = "auto"):
        self.server = server
        self._loop = new_event_loop(loop)
        self._thread = threading.Thread(target=self._main, name="backpack-server-loop", daemon=True)
        self._ready = threading.Event()
        self._failure: BaseException | None = None

    def _main(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self.server.start())
        except BaseException as exc:  # noqa: BLE001 - handed to the thread that called start()
            self._failure = exc
            self._ready.set()
            return
        self._ready.set()
        self._loop.run_forever()
        self._loop.run_until_complete(self.server.close())
        self._loop.close()

    def start(self) -> ServerThread:
        """Start serving; returns once listening (or raises why it could not)."""
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise self._failure
        return self

    def stop(self) -> None:
        """Close the server and wait for its thread."""
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
