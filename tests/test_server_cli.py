"""`backpack token` and `backpack serve` argument handling."""

from __future__ import annotations

import json

from backpack.cli import main
from backpack.sqlite_store import SQLiteStore
from backpack.store import default_store_path


def test_token_create_list_revoke(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "token", "create", "user", "--user", "ana", "--label", "phone"]) == 0
    line = capsys.readouterr().out.strip()
    token_id, secret = line.split()[1], line.rsplit(": ", 1)[1]
    store = SQLiteStore(default_store_path(tmp_path))
    try:
        record = store.verify_token(secret)
        assert (record.id, record.role, record.user) == (token_id, "user", "ana")
    finally:
        store.close()
    assert main(["--data-dir", str(tmp_path), "token", "list"]) == 0
    listed = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(t["id"], t["label"], t["revoked"]) for t in listed] == [(token_id, "phone", False)]
    assert secret not in json.dumps(listed)
    assert main(["--data-dir", str(tmp_path), "token", "revoke", token_id]) == 0
    assert main(["--data-dir", str(tmp_path), "token", "revoke", "nope"]) == 1
    store = SQLiteStore(default_store_path(tmp_path))
    try:
        assert store.verify_token(secret) is None
    finally:
        store.close()


def test_user_token_needs_a_user(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "token", "create", "user"]) == 2
    assert "--user" in capsys.readouterr().err


def test_serve_refuses_a_remote_address_without_allow_remote(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--allow-remote" in capsys.readouterr().err
