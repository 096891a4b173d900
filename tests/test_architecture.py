"""The layers of docs/design.md, checked: a wrong-way import fails the suite.

import-linter reads the contracts in pyproject.toml (layers, "never imports the built-in
plugins", "the client speaks the protocol"); the rules it cannot express are checked here
on the same import graph (grimp, import-linter's own engine) or on the source text.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "backpack"

grimp = pytest.importorskip("grimp", reason="import-linter (and grimp) come with the test extra")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("lint-imports") or str(Path(sys.executable).with_name("lint-imports"))
    return subprocess.run(
        [exe, "--config", str(root / "pyproject.toml"), "--no-cache"],
        cwd=root,
        env={"PYTHONPATH": f"{root}:{root / 'plugins'}", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_import_contracts_hold():
    result = lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_wrong_way_import_breaks_the_layers_contract(tmp_path):
    # a scratch copy with one planted upward import (core reaching into the engine)
    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE, copy / "backpack", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    shutil.copytree(ROOT / "plugins", copy / "plugins", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    planted = copy / "backpack" / "core" / "bags.py"
    planted.write_text(planted.read_text() + "\nfrom backpack.engine.engine import Engine  # planted\n")
    result = lint_imports(copy)
    assert result.returncode != 0
    assert "backpack.core is not allowed to import backpack.engine" in result.stdout


def test_nothing_inside_the_package_imports_the_package_face():
    # import-linter cannot forbid a root package to its own children, so the graph is asked directly
    sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]
    try:
        graph = grimp.build_graph("backpack", cache_dir=None)
    finally:
        del sys.path[:2]
    importers = graph.find_modules_that_directly_import("backpack")
    assert not importers, sorted(importers)


def test_only_core_and_algorithms_load_the_extension():
    # a compiled module is invisible to import-linter, so this one rule is a text check
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path.parent.name in ("core", "algorithms") or path == PACKAGE / "__init__.py":
            continue  # the face re-exports _core under its old public name
        for line in path.read_text().splitlines():
            words = line.split()
            if words[:1] in (["from"], ["import"]) and "_core" in words:
                offenders.append(f"{path.relative_to(ROOT)}: {line.strip()}")
    assert not offenders, offenders


def test_the_extension_stub_is_committed_beside_the_module():
    stub = PACKAGE / "core" / "_core.pyi"
    assert stub.exists(), (
        "regenerate with: python -m nanobind.stubgen -m backpack.core._core -o backpack/core/_core.pyi"
    )
    import ast

    from backpack.core import _core

    declared = {node.name for node in ast.parse(stub.read_text()).body if hasattr(node, "name")}
    exported = {name for name in dir(_core) if not name.startswith("_")}
    assert declared == exported, (
        f"stale stub: only in the module {exported - declared}, only in the stub {declared - exported}"
    )


def test_every_error_class_lives_in_errors():
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        if path == PACKAGE / "errors.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.startswith("class ") and line[6:].split("(")[0].split(":")[0].endswith("Error"):
                offenders.append(f"{path.relative_to(ROOT)}:{number}: {line}")
    assert not offenders, offenders


def test_ruff_lints_and_formats_the_python_code():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    dirs = ["backpack", "plugins", "tests", "benchmarks"]
    lint = subprocess.run([ruff, "check", *dirs], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = subprocess.run([ruff, "format", "--check", *dirs], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr
