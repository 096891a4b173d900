"""backpack token create|list|revoke and backpack jobs, on a data directory's store."""

import json

import pytest

from backpack.cli import main as cli
from backpack.store.base import default_store_path
from backpack.store.sqlite import SQLiteStore


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_token_create_prints_a_secret_that_verifies(tmp_path, capsys):
    code, out, _ = run(
        capsys,
        "token",
        "create",
        "--role",
        "user",
        "--user",
        "alice",
        "--label",
        "phone",
        "--data-dir",
        str(tmp_path / "data"),
        "--json",
    )
    assert code == 0
    created = json.loads(out)
    store = SQLiteStore(default_store_path(tmp_path / "data"))
    try:
        record = store.verify_token(created["secret"])
        assert (record.id, record.role, record.user, record.label) == (created["id"], "user", "alice", "phone")
    finally:
        store.close()
    code, out, _ = run(capsys, "--data-dir", str(tmp_path / "data"), "token", "create", "--role", "admin")
    assert code == 0 and "created admin token" in out and "secret (shown only now" in out


def test_token_list_and_revoke(tmp_path, capsys):
    data = str(tmp_path)
    assert run(capsys, "token", "list", "--data-dir", data)[1].startswith("no tokens")
    assert not default_store_path(tmp_path).exists()  # listing creates nothing
    token = json.loads(run(capsys, "token", "create", "--role", "service", "--data-dir", data, "--json")[1])
    code, out, _ = run(capsys, "token", "list", "--data-dir", data)
    assert code == 0 and token["id"] in out and "service" in out and token["secret"] not in out
    assert run(capsys, "token", "revoke", token["id"], "--data-dir", data)[0] == 0
    listed = json.loads(run(capsys, "token", "list", "--data-dir", data, "--json")[1])
    assert [(t["id"], t["revoked"]) for t in listed] == [(token["id"], True)]
    assert "secret" not in listed[0] and "hash" not in listed[0]
    code, _, err = run(capsys, "token", "revoke", "nope", "--data-dir", data)
    assert code == 2 and "no token with id 'nope'" in err


def test_token_create_refuses_a_user_token_without_its_user(tmp_path, capsys):
    code, _, err = run(capsys, "token", "create", "--role", "user", "--data-dir", str(tmp_path))
    assert code == 2 and "[invalid_input]" in err and "must name its user" in err
    with pytest.raises(SystemExit) as info:  # an unknown role is a usage error argparse reports
        cli.main(["token", "create", "--role", "root", "--data-dir", str(tmp_path)])
    assert info.value.code == 2 and "invalid choice: 'root'" in capsys.readouterr().err


def test_jobs_lists_jobs_with_their_state_progress_and_error(tmp_path, capsys):
    assert run(capsys, "jobs", "--data-dir", str(tmp_path))[1].strip() == "no jobs"
    store = SQLiteStore(default_store_path(tmp_path), backoff_base=60)
    fit = store.enqueue_job("fit", {"algorithm": "als"})
    embed = store.enqueue_job("embed")
    store.claim_job(["fit"])
    store.set_job_progress(fit.id, 0.4)
    store.fail_job(fit.id, "out of memory")
    store.close()
    rows = json.loads(run(capsys, "jobs", "--data-dir", str(tmp_path), "--json")[1])
    assert [(r["id"], r["kind"], r["state"], r["attempts"]) for r in rows] == [
        (embed.id, "embed", "available", 0),
        (fit.id, "fit", "retryable", 1),
    ]
    assert rows[1]["error"] == "out of memory" and rows[1]["progress"] == 0.4
    assert rows[1]["run_at"] >= fit.run_at + 60
    code, out, _ = run(capsys, "jobs", "--state", "retryable", "--data-dir", str(tmp_path))
    assert code == 0 and "out of memory" in out and "40%" in out and "embed" not in out
    assert (
        run(capsys, "jobs", "--state", "completed", "--data-dir", str(tmp_path))[1].strip()
        == "no jobs in state completed"
    )
