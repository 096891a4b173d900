"""One data directory, one state: `backpack serve` and the CLI's commands on the same directory,
each in its own process, as a new user would run them.

The sequence: import and fit from the CLI; serve; a second serve; CLI writes while it serves
(refused, naming the server); writes and a fit over the socket; CLI reads (they see the server's
state); stop; a CLI import; restart (the server sees it). Nothing is silently lost or diverges.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from backpack.serving.client import Client

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="the directory lock is an flock")

ITEM = "https://props.example/item/{}"


def cli(data: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backpack.cli.main", "--data-dir", str(data), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=data.parent,  # not the source tree: the installed package has the core
    )


def cli_json(data: Path, *args: str):
    result = cli(data, *args, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


@contextmanager
def serving(data: Path):
    """``backpack serve`` on a free loopback port: the process and its address, stopped at the end."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "backpack.cli.main", "--data-dir", str(data), "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=data.parent,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"listening on (\S+:\d+)", line)
        assert match, f"the server did not start: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        yield proc, match[1]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def write_log(path: Path, users: range, seed: int) -> set:
    rng = np.random.default_rng(seed)
    rows = {(f"u{u}", ITEM.format(rng.integers(25))) for u in users for _ in range(6)}
    path.write_text("user,item\n" + "".join(f"{u},{i}\n" for u, i in sorted(rows)))
    return rows


def test_the_cli_and_a_running_server_share_one_state(tmp_path):
    data = tmp_path / "data"
    first = write_log(tmp_path / "first.csv", range(40), seed=1)
    more = write_log(tmp_path / "more.csv", range(100, 120), seed=2)
    assert cli_json(data, "import", str(tmp_path / "first.csv"))["stored_pairs"] == len(first)
    cli_json(data, "fit", "itemknn")
    admin = cli_json(data, "token", "create", "--role", "admin")["secret"]

    with serving(data) as (proc, address):
        # a second server on the same directory refuses, naming the first
        second = subprocess.run(
            [sys.executable, "-m", "backpack.cli.main", "--data-dir", str(data), "serve", "--port", "0"],
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert second.returncode == 3, second.stdout + second.stderr
        assert f"pid {proc.pid}" in second.stderr and address in second.stderr

        # the CLI's writes are refused with the server named and what to do
        for command in (["import", str(tmp_path / "more.csv")], ["fit", "ease"], ["embed"]):
            refused = cli(data, *command)
            assert refused.returncode == 3, refused.stdout + refused.stderr
            assert f"pid {proc.pid}" in refused.stderr and address in refused.stderr, refused.stderr
            assert "stop it first" in refused.stderr
        # tokens and jobs only touch the store, which the server shares: they work
        assert cli_json(data, "token", "list")

        # writes and a fit over the socket
        newcomer = [ITEM.format(i) for i in (1, 2, 3)]
        with Client(address, token=admin) as client:
            client.add_interactions(["newbie"] * 3, newcomer)
            client.fit("popularity", wait=True, timeout=60)
            client.fit("itemknn", wait=True, timeout=60, k=20)

        # the CLI's reads see the server's state: its users and its models
        models = cli_json(data, "models")["models"]
        assert {m["label"] for m in models} == {"itemknn", "popularity"}
        active = next(m for m in models if m["active"])
        assert active["label"] == "itemknn" and active["params"] == {"k": 20}
        assert active["n_interactions"] == len(first) + 3
        listing = cli_json(data, "recommend", "newbie", "-n", "5")[0]["items"]
        assert len(listing) == 5 and not {r["item"] for r in listing} & set(newcomer)  # its bag is seen
        assert any(r["source"] == "personal" and r["score"] > 0 for r in listing)

    # with the server stopped the CLI writes again, and a restarted server sees what it wrote
    summary = cli_json(data, "import", str(tmp_path / "more.csv"))
    assert summary["stored_pairs"] == len(first) + 3 + len(more)
    with serving(data) as (_, address):
        with Client(address, token=admin) as client:
            stats = client.stats()
            assert stats["interactions"] == len(first) + 3 + len(more)
            assert stats["users"] == 40 + 1 + 20 and stats["model"]["algorithm"] == "itemknn"
            assert client.recommend("u105", 3)  # a user only the CLI imported
    assert cli_json(data, "models")["models"][0]["label"] in {"itemknn", "popularity"}
