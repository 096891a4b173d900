"""The ``backpack serve`` and ``backpack token`` commands: the socket server and its access tokens."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from pathlib import Path

from .plugins import Plugins
from .server import Limits, open_server
from .state_dir import default_data_dir

_LIMIT_FLAGS = {  # flag -> (Limits field, type, help)
    "--max-frame": ("max_frame", int, "largest frame in bytes"),
    "--max-batch": ("max_batch", int, "most entries (interactions, users, items, n) in one request"),
    "--rate": ("rate", float, "requests per second per connection (0: unlimited)"),
    "--burst": ("burst", int, "requests a connection may send at once above --rate"),
    "--idle-timeout": ("idle_timeout", float, "seconds without a frame before a connection is closed"),
    "--read-timeout": ("read_timeout", float, "seconds to receive a frame once its header arrived"),
    "--max-connections": ("max_connections", int, "connections served at once"),
    "--max-in-flight": ("max_in_flight", int, "requests of one connection handled at once"),
}


def add_serve_parser(commands, state: argparse.ArgumentParser) -> None:
    """The ``serve`` and ``token`` sub-commands."""
    defaults = Limits()
    serve = commands.add_parser("serve", parents=[state], help="serve the engine on a local socket",
                                description="Serve the data directory's engine over the Backpack protocol "
                                            "(docs/protocol.md) on loopback TCP and/or a Unix socket. Create "
                                            "tokens with `backpack token create`.")
    serve.add_argument("--host", default="127.0.0.1", help="TCP address (default 127.0.0.1; others need "
                                                          "--allow-remote)")
    serve.add_argument("--port", type=int, default=8765, help="TCP port (default 8765; 0 picks a free one)")
    serve.add_argument("--no-tcp", action="store_true", help="listen on the Unix socket only")
    serve.add_argument("--unix", metavar="PATH", help="also listen on this Unix socket (mode 0600)")
    serve.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --host")
    for flag, (field, kind, text) in _LIMIT_FLAGS.items():
        serve.add_argument(flag, type=kind, default=getattr(defaults, field),
                           help=f"{text} (default {getattr(defaults, field)})")
    serve.add_argument("--batch-window", type=float, default=2.0,
                       help="milliseconds a recommend waits to share a core call with others (default 2)")
    serve.add_argument("--snapshot-interval", type=float, default=0.0,
                       help="seconds between automatic snapshots (default 0: on request and after fits)")
    serve.add_argument("--threads", type=int, default=0, help="core threads, 0 = all cores")

    token = commands.add_parser("token", parents=[state], help="create, list and revoke access tokens")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", help="create a token and print its secret (shown once)")
    create.add_argument("role", choices=["admin", "service", "user"])
    create.add_argument("--user", help="the user a user token acts for (required for role user)")
    create.add_argument("--label", default="", help="a note to recognise the token by")
    actions.add_parser("list", help="list tokens (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a token by id")
    revoke.add_argument("id")


def _data_dir(args) -> Path:
    return Path(args.data_dir) if getattr(args, "data_dir", None) else default_data_dir()


def run_serve(args, plugins: Plugins) -> int:
    """Serve until SIGINT or SIGTERM; prints where it listens (one line each) as soon as it does."""
    limits = Limits(**{field: getattr(args, flag[2:].replace("-", "_")) for flag, (field, _, _) in _LIMIT_FLAGS.items()})
    server = open_server(_data_dir(args), plugins=plugins, num_threads=args.threads, host=args.host,
                         port=None if args.no_tcp else args.port, unix_path=args.unix,
                         allow_remote=args.allow_remote, limits=limits, batch_window=args.batch_window / 1000,
                         snapshot_interval=args.snapshot_interval)
    asyncio.run(_serve(server))
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


def run_token(args, plugins: Plugins) -> int:
    """``token create`` prints the secret; ``list`` the records as JSON lines; ``revoke`` says if it did."""
    from .errors import InvalidInputError
    from .store import default_store_path, open_store

    data_dir = _data_dir(args)
    data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store("sqlite", plugins, path=default_store_path(data_dir))
    try:
        if args.token_command == "create":
            if args.role == "user" and not args.user:
                raise InvalidInputError("a user token needs --user USER")
            record, secret = store.create_token(args.role, args.user, label=args.label)
            print(f"token {record.id} ({record.role}{' for ' + record.user if record.user else ''}): {secret}")
        elif args.token_command == "list":
            for record in store.list_tokens():
                print(json.dumps({"id": record.id, "role": record.role, "user": record.user,
                                  "label": record.label, "revoked": record.revoked, "created": record.created}))
        elif not store.revoke_token(args.id):
            print(f"backpack: no token {args.id!r}", file=sys.stderr)
            return 1
    finally:
        store.close()
    return 0
