"""The console script."""

import subprocess
import sys


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "backpack.cli.main", *args], capture_output=True, text=True, timeout=300, cwd="/"
    )


def test_demo_runs_end_to_end_on_the_tiny_catalogue():
    result = run("demo", "--size", "tiny", "--no-progress")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "2,000 users x 1,000 items" in out
    assert "more like" in out and "-> " in out and "real time:" in out
    assert "fitting item-kNN (cosine, K=100)" in out


def test_bad_arguments_exit_non_zero_with_a_message():
    result = run("demo", "--size", "enormous")
    assert result.returncode == 2 and "invalid choice" in result.stderr
    result = run("demo", "--size", "tiny", "--k", "0", "--no-progress")
    assert result.returncode == 2 and "[invalid_input]" in result.stderr
