"""Run implicit's own CPU test suite against ``backpack.implicit`` (a script, not collected by pytest).

implicit's tests are read from its source distribution and copied to a temporary directory with
only their imports rewritten (``import implicit`` -> ``import backpack.implicit as implicit``,
``from implicit.x import`` -> ``from backpack.implicit.x import``); nothing of implicit is kept.

    pip download --no-deps --no-binary :all: --no-build-isolation implicit==0.7.3 -d /tmp/implicit-sdist
    python tests/implicit_suite.py /tmp/implicit-sdist/implicit-0.7.3.tar.gz     # or an unpacked folder
    python tests/implicit_suite.py SDIST --against implicit   # the same files against implicit itself

Inapplicable modules are left out: ``gpu_test.py`` (CUDA), ``lmf_test.py`` (no LMF model here),
``approximate_als_test.py`` (annoy / nmslib / faiss wrappers). ``evaluation_test.py`` skips itself
without h5py (``pip install h5py``); its ``test_evaluate_movielens_100k`` reads MovieLens 100k from
the RecBole package (``pip install --no-deps recbole==1.2.1``) and is deselected when that is not
installed (nothing is downloaded at run time). Against Backpack, a package named ``implicit`` that
refuses to import shadows the real one, so a test that still reached implicit would fail.
Prints pytest's summary and a line ``implicit suite: P passed, F failed, S skipped``; exits 1 on a failure.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

MODULES = ["als_test.py", "bpr_test.py", "knn_test.py", "recommender_base_test.py", "evaluation_test.py"]
MOVIELENS_TEST = "evaluation_test.py::test_evaluate_movielens_100k"


def deselected() -> list[str]:
    """Tests that cannot run here: the MovieLens one when no package ships ml-100k."""
    from backpack.data import datasets

    return [] if "ml-100k" in datasets.available() else [MOVIELENS_TEST]


def rewrite_imports(source: str) -> str:
    """implicit's test source with every import of ``implicit`` pointed at ``backpack.implicit``."""
    source = re.sub(
        r"^(\s*)import implicit(\.[\w.]+)?\s*$", r"\1import backpack.implicit\2 as implicit", source, flags=re.M
    )
    return re.sub(r"^(\s*)from implicit([\w.]*) import", r"\1from backpack.implicit\2 import", source, flags=re.M)


def tests_dir(sdist: Path, scratch: Path) -> Path:
    """The ``tests/`` folder of an unpacked sdist, unpacking a ``.tar.gz`` into ``scratch`` first."""
    if sdist.is_file():
        with tarfile.open(sdist) as tar:
            members = [m for m in tar.getmembers() if "/tests/" in m.name and m.name.endswith(".py")]
            tar.extractall(scratch / "sdist", members=members, filter="data")
        sdist = next((scratch / "sdist").iterdir())
    found = sdist / "tests"
    if not found.is_dir():
        raise SystemExit(f"no tests/ folder in {sdist}")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdist", type=Path, help="implicit's .tar.gz or its unpacked folder")
    parser.add_argument("--against", choices=["backpack", "implicit"], default="backpack")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp)
        source = tests_dir(args.sdist, scratch)
        run_dir = scratch / "run"
        run_dir.mkdir()
        for name in MODULES:
            text = (source / name).read_text()
            (run_dir / name).write_text(rewrite_imports(text) if args.against == "backpack" else text)
        if args.against == "backpack":
            shadow = run_dir / "implicit"
            shadow.mkdir()
            (shadow / "__init__.py").write_text('raise ImportError("the suite must not reach the real implicit")\n')
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfEs", "--rootdir", str(run_dir)]
        command += [arg for d in deselected() for arg in ("--deselect", d)] + MODULES + args.pytest_args
        result = subprocess.run(command, cwd=run_dir, capture_output=True, text=True)
        print(result.stdout[-20000:], result.stderr[-4000:], sep="\n")
        counts = {k: 0 for k in ("passed", "failed", "skipped", "error")}
        tail = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
        for number, word in re.findall(r"(\d+) (passed|failed|skipped|errors?)", tail):
            counts[word.rstrip("s") if word.startswith("error") else word] += int(number)
        print(
            f"implicit suite against {args.against}: {counts['passed']} passed, "
            f"{counts['failed'] + counts['error']} failed, {counts['skipped']} skipped"
        )
        return 0 if result.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
