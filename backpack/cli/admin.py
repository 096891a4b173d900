"""The CLI commands on a data directory's store: ``backpack token create|list|revoke`` and ``backpack jobs``.

They open ``<data dir>/store.sqlite3`` through the store registry (the same
``open_store`` a server uses). Listing commands never create a store: with
none yet there is nothing to list.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict

from backpack.engine.data_dir import DataDir
from backpack.errors import InvalidInputError
from backpack.plugins import Plugins
from backpack.store.base import JOB_STATES, ROLES, Store, default_store_path, open_store


def configure_token(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``token`` with its ``create``, ``list`` and ``revoke`` subcommands."""
    token = commands.add_parser("token", help="create, list and revoke access tokens of the data directory's store")
    actions = token.add_subparsers(dest="token_command", required=True)
    create = actions.add_parser("create", parents=parents, help="a new token; its secret is printed once")
    create.add_argument(
        "--role",
        required=True,
        choices=ROLES,
        help="admin: everything; service: a backend acting for any user; user: one user",
    )
    create.add_argument("--user", help="the user a --role user token acts for (required for that role only)")
    create.add_argument("--label", default="", help="a note saying who or what holds it")
    actions.add_parser("list", parents=parents, help="every token, revoked ones included (never secrets)")
    revoke = actions.add_parser("revoke", parents=parents, help="revoke a token: its secret stops working")
    revoke.add_argument("id", help="the token id (see `backpack token list`)")


def configure_jobs(commands: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]) -> None:
    """Add ``jobs``."""
    jobs = commands.add_parser("jobs", parents=parents, help="list background jobs, newest first")
    jobs.add_argument("--state", choices=JOB_STATES, help="only jobs in this state")
    jobs.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")


def _open(args, plugins: Plugins, *, create: bool) -> Store | None:
    """The data directory's store; None when it has none and ``create`` is False."""
    path = default_store_path(DataDir(args.data_dir, create=create).path)
    if not create and not path.exists():
        return None
    return open_store("sqlite", plugins=plugins, path=path)


def _print(args, value, text: str) -> None:
    # not backpack.cli.data_commands._print: importing that module loads the engine, which these never need
    print(json.dumps(value, indent=2) if args.json else text)


def _when(seconds: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def run_token(args, plugins: Plugins) -> int:
    """Create, list or revoke tokens."""
    store = _open(args, plugins, create=args.token_command == "create")
    try:
        if args.token_command == "create":
            record, secret = store.create_token(args.role, args.user, label=args.label)
            _print(
                args,
                {**asdict(record), "secret": secret},
                f"created {record.role} token {record.id}"
                + (f" for user {record.user!r}" if record.user else "")
                + f"\nsecret (shown only now; keep it safe): {secret}",
            )
        elif args.token_command == "list":
            tokens = store.list_tokens() if store else []
            lines = [
                f"{t.id}  {t.role:<7}  {t.user or '-'}  {_when(t.created)}"
                + ("  REVOKED" if t.revoked else "")
                + (f"  {t.label}" if t.label else "")
                for t in tokens
            ]
            _print(
                args, [asdict(t) for t in tokens], "\n".join(lines) or "no tokens (backpack token create --role ROLE)"
            )
        else:
            if store is None or not store.revoke_token(args.id):
                raise InvalidInputError(f"no token with id {args.id!r}: see backpack token list")
            _print(args, {"id": args.id, "revoked": True}, f"revoked token {args.id}")
    finally:
        if store is not None:
            store.close()
    return 0


def run_jobs(args, plugins: Plugins) -> int:
    """List background jobs: id, kind, state, attempts, progress, when they run next, the last error."""
    if args.limit < 1:
        raise InvalidInputError("--limit must be at least 1")
    store = _open(args, plugins, create=False)
    try:
        jobs = store.list_jobs(args.state, limit=args.limit) if store else []
    finally:
        if store is not None:
            store.close()
    rows = [
        {
            "id": j.id,
            "kind": j.kind,
            "state": j.state,
            "attempts": j.attempts,
            "max_attempts": j.max_attempts,
            "progress": j.progress,
            "run_at": j.run_at,
            "error": j.error,
            "args": j.args,
        }
        for j in jobs
    ]
    lines = [f"{'id':>6}  {'kind':<12} {'state':<10} {'tries':>5}  {'progress':>8}  {'run at':<19}  error"]
    lines += [
        f"{r['id']:>6}  {r['kind']:<12} {r['state']:<10} {r['attempts']:>2}/{r['max_attempts']:<2}  "
        f"{r['progress']:>8.0%}  {_when(r['run_at'])}  {r['error'] or ''}"
        for r in rows
    ]
    _print(args, rows, "\n".join(lines) if rows else "no jobs" + (f" in state {args.state}" if args.state else ""))
    return 0
