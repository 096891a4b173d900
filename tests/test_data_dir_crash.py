"""A crash at any instant of `backpack import` or `backpack fit` leaves the old state or the new one.

The process is killed with SIGKILL (as a power cut would stop it) at every step of the write path,
one step per run, through the BACKPACK_CRASH_AT hook (backpack.core.files.crash_point): inside the
store transaction, after it, and at each step of writing, renaming and recording the snapshot. After
each kill the directory is read as every command reads it and must equal the state before the command
or the state a run without the kill produces, exactly: never a mixture. Steps after the commit point
must give the new state, steps before it the old one; and the directory keeps working afterwards.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backpack import Engine
from backpack.core.files import CRASH_POINT_VARIABLE
from backpack.engine.data_dir import DataDir

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

ITEM = "https://props.example/item/{}"

IMPORT_STEPS = {  # step -> the state it must leave: the commit point is the store transaction
    "import:chunk-written": "old",
    "store:batch-written": "old",
    "import:committed": "new",
    "snapshot:bags-written": "new",
    "snapshot:written": "new",
    "snapshot:renamed": "new",
    "snapshot:recorded": "new",
}
FIT_STEPS = {  # the commit point is recording the snapshot that holds the model
    "fit:fitted": "old",
    "snapshot:bags-written": "old",
    "snapshot:written": "old",
    "snapshot:renamed": "old",
    "snapshot:recorded": "new",
}


def backpack(data: Path, *args: str, crash_at: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != CRASH_POINT_VARIABLE}
    if crash_at:
        env[CRASH_POINT_VARIABLE] = crash_at
    return subprocess.run(
        [sys.executable, "-m", "backpack.cli.main", "--data-dir", str(data), "--no-progress", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=data.parent,  # not the source tree: the installed package has the core
    )


def state(data: Path) -> dict:
    """Everything a command sees in the directory (and that its store is intact)."""
    engine = Engine.open(data)
    m = engine.bag_state()
    rows, cols = m.user_items.nonzero()
    with DataDir(data) as directory:
        assert directory.store.check() == []
        models = sorted((x.label, x.algorithm, x.n_interactions) for x in directory.models())
        active = directory.active_model
    pairs = sorted((m.user_ids[r], m.item_ids[c], float(w)) for r, c, w in zip(rows, cols, m.user_items[rows, cols].A1))
    return {
        "pairs": pairs,
        "items": sorted(engine.item_descriptions.snapshot()),
        "models": models,
        "active": active,
        "recommend": engine.recommend("u1", 5) if active else None,
    }


@pytest.fixture(scope="module")
def before(tmp_path_factory):
    """A data directory with one import and one fit, and the files of the next import."""
    root = tmp_path_factory.mktemp("crash")
    rng = np.random.default_rng(7)
    first = root / "first.csv"
    first.write_text(
        "user,item\n" + "".join(f"u{rng.integers(30)},{ITEM.format(rng.integers(40))}\n" for _ in range(300))
    )
    second = root / "second.csv"  # several chunks at --chunk-size 50, so a kill can land between two of them
    second.write_text(
        "user,item,kind\n" + "".join(f"v{rng.integers(30)},{ITEM.format(rng.integers(60))},like\n" for _ in range(200))
    )
    items = root / "items.jsonld"
    items.write_text(
        '{"@context": "https://schema.org", "@graph": ['
        + ",".join(f'{{"@id": "{ITEM.format(i)}", "@type": "3DModel", "name": "prop {i}"}}' for i in range(55, 62))
        + "]}"
    )
    data = root / "data"
    assert backpack(data, "import", str(first)).returncode == 0
    assert backpack(data, "fit", "itemknn", "-p", "k=20").returncode == 0
    return root, data


def fresh_copy(before_dir: Path, into: Path) -> Path:
    shutil.copytree(before_dir, into, ignore=shutil.ignore_patterns(".lock"))
    return into


def check_every_step(before, tmp_path, command: list[str], steps: dict[str, str]):
    root, data = before
    command = [str(root / a) if (root / a).exists() else a for a in command]
    old = state(data)
    expected = fresh_copy(data, tmp_path / "expected")
    done = backpack(expected, *command)
    assert done.returncode == 0, done.stderr
    new = state(expected)
    assert new != old
    for step, outcome in steps.items():
        target = fresh_copy(data, tmp_path / step.replace(":", "-"))
        killed = backpack(target, *command, crash_at=step)
        assert killed.returncode == -signal.SIGKILL, (
            f"{step}: the kill did not land ({killed.returncode}) {killed.stderr}"
        )
        assert state(target) == (new if outcome == "new" else old), f"killed at {step}: neither old nor new"
        again = backpack(target, "recommend", "u1", "--json")  # the directory keeps working
        assert again.returncode == 0, again.stderr


def test_import_killed_at_every_step_leaves_the_old_or_the_new_state(before, tmp_path):
    check_every_step(before, tmp_path, ["import", "second.csv", "items.jsonld", "--chunk-size", "50"], IMPORT_STEPS)


def test_fit_killed_at_every_step_leaves_the_old_or_the_new_state(before, tmp_path):
    check_every_step(before, tmp_path, ["fit", "ease", "--label", "second"], FIT_STEPS)


def test_a_snapshot_a_crash_left_unrecorded_is_ignored_and_then_deleted(before, tmp_path):
    _, data = before
    target = fresh_copy(data, tmp_path / "target")
    assert backpack(target, "fit", "popularity", crash_at="snapshot:renamed").returncode == -signal.SIGKILL
    with DataDir(target) as directory:
        recorded = Path(directory.store.latest_snapshot().path).name
    on_disk = sorted(p.name for p in (target / "snapshots").iterdir())
    assert recorded != on_disk[-1]  # the newest folder on disk is the one nobody recorded
    assert backpack(target, "fit", "popularity").returncode == 0
    with DataDir(target) as directory:
        latest = Path(directory.store.latest_snapshot().path).name
    assert on_disk[-1] not in {p.name for p in (target / "snapshots").iterdir()}
    assert latest in {p.name for p in (target / "snapshots").iterdir()}
