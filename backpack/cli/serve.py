"""The ``backpack serve`` command: the socket server over a data directory (tokens: ``backpack token``)."""

from __future__ import annotations

import argparse
import asyncio
import signal
from pathlib import Path

from backpack.engine.data_dir import default_data_dir
from backpack.plugins import Plugins
from backpack.serving.loop import EVENT_LOOPS, run_on_new_loop
from backpack.serving.requests import Limits
from backpack.serving.server import open_server

_LIMIT_FLAGS = {  # flag -> (Limits field, type, help)
    "--max-frame": ("max_frame", int, "largest frame in bytes"),
    "--max-batch": ("max_batch", int, "most entries (interactions, users, items, n) in one request"),
    "--rate": ("rate", float, "requests per second per connection (0: unlimited)"),
    "--burst": ("burst", int, "requests a connection may send at once above --rate"),
    "--idle-timeout": ("idle_timeout", float, "seconds without a frame before a connection is closed"),
    "--read-timeout": ("read_timeout", float, "seconds to receive a frame once its header arrived"),
    "--max-connections": ("max_connections", int, "connections served at once"),
    "--max-in-flight": ("max_in_flight", int, "requests of one connection handled at once"),
    "--max-results": ("max_results", int, "most result cells (users x n) in one request"),
    "--auth-timeout": ("auth_timeout", float, "seconds after connecting to present a valid token"),
    "--max-unauthenticated": ("max_unauthenticated", int, "connections without a valid token at once"),
    "--write-timeout": ("write_timeout", float, "seconds for a reply to drain to a client that stopped reading"),
}


def add_serve_parser(commands, state: argparse.ArgumentParser) -> None:
    """The ``serve`` sub-command."""
    defaults = Limits()
    serve = commands.add_parser(
        "serve",
        parents=[state],
        help="serve the engine on a local socket",
        description="Serve the data directory's engine over the Backpack protocol "
        "(docs/protocol.md) on loopback TCP and/or a Unix socket. Create "
        "tokens with `backpack token create --role ROLE`.",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="TCP address (default 127.0.0.1; others need --allow-remote)"
    )
    serve.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    serve.add_argument("--no-tcp", action="store_true", help="listen on the Unix socket only")
    serve.add_argument("--unix", metavar="PATH", help="also listen on this Unix socket (mode 0600)")
    serve.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    for flag, (field, kind, text) in _LIMIT_FLAGS.items():
        serve.add_argument(
            flag, type=kind, default=getattr(defaults, field), help=f"{text} (default {getattr(defaults, field)})"
        )
    serve.add_argument(
        "--batch-window",
        type=float,
        default=0.0,
        help="milliseconds a recommend arriving at an idle core waits for others to share its call "
        "(default 0: none; requests arriving while the core is busy are batched anyway)",
    )
    serve.add_argument(
        "--snapshot-interval",
        type=float,
        default=0.0,
        help="seconds between automatic snapshots (default 0: on request and after fits)",
    )
    serve.add_argument(
        "--keep-snapshots", type=int, default=2, help="snapshot directories kept; older ones are deleted (default 2)"
    )
    serve.add_argument("--threads", type=int, default=0, help="core threads, 0 = all cores")
    serve.add_argument(
        "--loop",
        choices=EVENT_LOOPS,
        default="auto",
        help="event loop: uvloop (faster), asyncio, or auto = uvloop where installed (default)",
    )


def _data_dir(args) -> Path:
    return Path(args.data_dir) if getattr(args, "data_dir", None) else default_data_dir()


def run_serve(args, plugins: Plugins) -> int:
    """Serve until SIGINT or SIGTERM; prints where it listens (one line each) as soon as it does."""
    limits = Limits(
        **{field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, _, _) in _LIMIT_FLAGS.items()}
    )
    server = open_server(
        _data_dir(args),
        plugins=plugins,
        num_threads=args.threads,
        host=args.host,
        port=None if args.no_tcp else args.port,
        unix_path=args.unix,
        allow_remote=args.allow_remote,
        limits=limits,
        batch_window=args.batch_window / 1000,
        snapshot_interval=args.snapshot_interval,
        keep_snapshots=args.keep_snapshots,
    )
    run_on_new_loop(_serve(server), args.loop)
    return 0


async def _serve(server) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await server.start()
    try:
        if server.address is not None:
            print(f"backpack: listening on {server.address[0]}:{server.address[1]}", flush=True)
        if server.unix_path is not None:
            print(f"backpack: listening on {server.unix_path}", flush=True)
        await stop.wait()
    finally:
        await server.close()
