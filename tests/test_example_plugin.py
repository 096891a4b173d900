"""The example third-party plugin: installed for real, then discovered, fitted and served by name."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "backpack-plugin-example"
BACKPACK = Path(sys.executable).with_name("backpack")


def pip(*args):
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def installed_example():
    result = pip("install", "--no-deps", "--quiet", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    yield
    pip("uninstall", "--yes", "--quiet", "backpack-plugin-example")


def python(code: str) -> str:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd="/")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_installed_example_is_listed_with_what_it_registered(installed_example):
    result = subprocess.run([str(BACKPACK), "plugins", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = {p["name"]: p for p in json.loads(result.stdout)}
    example = listed["example"]
    assert example["distribution"] == "backpack-plugin-example" and example["version"] == "0.1.0"
    assert example["registered"] == {"algorithms": ["most-popular"], "commands": ["top-items"]}
    assert not example["errors"] and "algorithms" in listed


def test_the_example_algorithm_is_fitted_and_served_by_name(installed_example):
    out = python(
        "import backpack\n"
        "e = backpack.Engine()\n"
        "e.add_interactions(['a', 'b', 'b', 'c', 'c', 'c'], ['hat', 'hat', 'cape', 'hat', 'cape', 'boots'])\n"
        "model = e.fit('most-popular')\n"
        "print(type(model).__module__)\n"
        "print([r.item for r in e.recommend('a', n=2)])\n"
        "print([r.item for r in e.similar_items('hat', n=5)])\n"
    )
    module, for_a, like_hat = out.splitlines()
    assert module == "backpack_plugin_example"
    assert for_a == "['cape', 'boots']"  # hat is owned; cape (2 users) before boots (1)
    assert like_hat == "['cape', 'boots']"  # never the item itself


def test_the_example_command_runs(installed_example):
    result = subprocess.run([str(BACKPACK), "top-items", "--n", "3"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 3 and all(line.endswith("users") for line in lines)
    counts = [int(line.split("\t")[1].split()[0]) for line in lines]
    assert counts == sorted(counts, reverse=True)


def test_the_example_command_checks_n_and_stops_at_the_catalogue(installed_example):
    result = subprocess.run([str(BACKPACK), "top-items", "--n", "0"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and "invalid _positive_int value" in result.stderr
    result = subprocess.run([str(BACKPACK), "top-items", "--n", "5000"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.strip().splitlines()) == 1000  # the tiny catalogue has 1,000 items


def test_the_example_model_reopens_from_the_data_dir_and_from_a_server_snapshot(installed_example, tmp_path):
    # its load(cls, path) follows the Recommender base class: no num_threads keyword
    data = tmp_path / "data"
    out = python(
        "import asyncio, backpack\n"
        "from backpack.serving.server import open_server\n"
        "from backpack.serving.snapshots import restore_engine\n"
        "from backpack.store.base import default_store_path, open_store\n"
        "e = backpack.Engine()\n"
        "e.add_interactions(['a', 'b', 'b', 'c', 'c', 'c'], ['hat', 'hat', 'cape', 'hat', 'cape', 'boots'])\n"
        "e.fit('most-popular')\n"
        f"e.save({str(data)!r})\n"
        f"reopened = backpack.Engine.open({str(data)!r})\n"
        "print(reopened.serving['algorithm'], [r.item for r in reopened.recommend('a', n=2)])\n"
        f"server = open_server({str(data)!r}, port=0)\n"
        "snapshot = server.snapshot()\n"
        "asyncio.run(server.close())\n"
        f"store = open_store('sqlite', path=default_store_path({str(data)!r}))\n"
        "assert store.latest_snapshot().path == snapshot['path']\n"
        "served = restore_engine(store)\n"
        "print(served.serving['algorithm'], [r.item for r in served.recommend('a', n=2)])\n"
    )
    from_dir, from_snapshot = out.splitlines()
    assert from_dir == "most-popular ['cape', 'boots']"
    assert from_snapshot == "most-popular ['cape', 'boots']"
