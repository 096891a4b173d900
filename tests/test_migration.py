"""Data directories written by Backpack 0.1 (format 1) open in format 2, once, losing nothing.

The fixtures in tests/fixtures/format1 were written by the code of main 05b2d93 (its own
`backpack import`, `fit`, `serve` and client): `cli` by the CLI alone; `served` by the CLI, then a
server that took writes over the socket and snapshotted, then one more CLI import the server never saw
(the divergence format 2 removes). The expected recommendations were printed by that code too.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from backpack import Engine
from backpack.core.files import CRASH_POINT_VARIABLE
from backpack.engine.data_dir import DataDir

FIXTURES = Path(__file__).parent / "fixtures" / "format1"
FORMAT1_FILES = ("state.json", "bags.npz", "item_kinds.json", "items.jsonl", "models")


def backpack(data: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "backpack.cli.main", "--data-dir", str(data), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        cwd=data.parent,
    )


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(FIXTURES / name, tmp_path / name))


def test_a_cli_written_directory_migrates_and_answers_as_before(tmp_path):
    data = copy("cli", tmp_path)
    result = backpack(data, "recommend", "u1", "-n", "5", "--json")
    assert result.returncode == 0, result.stderr
    assert "migrated" in result.stderr and "format 1 to 2" in result.stderr
    assert json.loads(result.stdout) == json.loads((FIXTURES / "cli-recommend-u1.json").read_text())
    assert not any((data / name).exists() for name in FORMAT1_FILES)  # moved into the first snapshot
    (snapshot,) = (data / "snapshots").iterdir()
    assert snapshot.name.endswith("-migrated") and (snapshot / "bags.npz").exists()
    models = json.loads(backpack(data, "models", "--json").stdout)["models"]
    assert {(m["label"], m["active"]) for m in models} == {("itemknn", True), ("pop", False)}
    again = backpack(data, "recommend", "u1", "-n", "5", "--json")  # once: the second open migrates nothing
    assert again.returncode == 0 and "migrated" not in again.stderr
    assert json.loads(again.stdout) == json.loads(result.stdout)
    with DataDir(data) as directory:
        assert directory.store.check() == []
        stored = dict(pair for batch in directory.store.iter_items() for pair in batch)
    engine = Engine.open(data)
    assert len(engine.item_descriptions) == 8 and stored == {}  # descriptions live in the snapshot


def test_a_directory_a_server_also_wrote_keeps_both_sides(tmp_path):
    data = copy("served", tmp_path)
    engine = Engine.open(data)
    # the CLI's files (its later import included) plus every write the server logged, before and after
    # its snapshot; nothing counted twice
    assert engine.bags.n_users == 36 and engine.bags.nnz == 239 + 4
    recs = engine.recommend("newbie", n=40, filter_owned=True)
    held = {f"https://props.example/item/{i}" for i in (1, 2, 3, 4)}
    assert not held & {r.item for r in recs} and len(recs) == 40 - 4
    assert sum(1 for u in engine.bags.user_ids(range(engine.bags.n_users)) if u.startswith("late")) == 5
    with DataDir(data) as directory:
        assert directory.store.check() == []
        assert directory.active_model == "itemknn"
        assert directory.store.verify_token((FIXTURES / "served-token.txt").read_text().strip()) is not None
    assert not (data / "state.json").exists()


def test_a_migration_killed_after_recording_finishes_on_the_next_open(tmp_path):
    data = copy("cli", tmp_path)
    killed = backpack(data, "models", env={CRASH_POINT_VARIABLE: "migrate:recorded"})
    assert killed.returncode == -signal.SIGKILL
    assert (data / "state.json").exists()  # not finished
    result = backpack(data, "recommend", "u1", "-n", "5", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == json.loads((FIXTURES / "cli-recommend-u1.json").read_text())
    assert [p.name.endswith("-migrated") for p in (data / "snapshots").iterdir()] == [True]
    assert not (data / "state.json").exists()


def test_a_snapshot_folder_opens_read_only(tmp_path):
    data = copy("cli", tmp_path)
    assert backpack(data, "models").returncode == 0
    (snapshot,) = (data / "snapshots").iterdir()
    engine = Engine.open(snapshot)  # what a server's snapshot reply names; Ray Serve replicas open one
    assert engine.serving["algorithm"] == "itemknn" and engine.bags.nnz == 220
    refused = backpack(snapshot, "fit", "ease")
    assert refused.returncode == 3 and "is a snapshot of the data directory" in refused.stderr
