"""Model files: one ``.npz`` per model, written atomically, read with typed errors.

Every built-in model saves through here, so each gets the same guarantees: a
crash while saving leaves the previous file, and a damaged, foreign or
newer-format file is a :class:`~backpack.errors.ModelFileError` naming it.
"""

from __future__ import annotations

import os
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from backpack.errors import ModelFileError


def npz_path(path) -> Path:
    """``path`` with the ``.npz`` suffix NumPy would add."""
    path = Path(path)
    return path if path.suffix == ".npz" else path.with_name(path.name + ".npz")


@contextmanager
def atomic_file(path: Path, mode: str = "wb", **open_args):
    """Yield a temporary file beside ``path``; on success it is fsynced and renamed onto ``path``.

    A crash or an exception leaves the previous ``path`` untouched.
    """
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, **open_args) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_npz(path, kind: str, version: int, **arrays) -> None:
    """Write ``arrays`` (plus the model's kind and format version) to ``path`` atomically."""
    path = npz_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as f:
        np.savez(f, format=np.int64(version), kind=np.array(kind), **arrays)


@contextmanager
def open_npz(path, kind: str, version: int, description: str):
    """Yield the arrays of a model file of ``kind``; any failure inside is a ModelFileError."""
    path = npz_path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            if "kind" not in f or str(f["kind"]) != kind:
                raise ModelFileError(f"{path} is not a Backpack {description} model")
            if int(f["format"]) != version:
                raise ModelFileError(f"{path} has format {int(f['format'])}; this version reads {version}")
            yield f
    except ModelFileError:
        raise
    except FileNotFoundError as exc:
        raise ModelFileError(f"no model file at {path}") from exc
    except Exception as exc:  # zip, pickle-refusal, missing keys: all mean "not a model"
        raise ModelFileError(f"{path} is not a readable Backpack model: {exc}") from exc


#: the environment variable naming the point at which :func:`crash_point` kills the process
CRASH_POINT_VARIABLE = "BACKPACK_CRASH_AT"


def crash_point(name: str) -> None:
    """A test hook at a step of a durable write: when ``$BACKPACK_CRASH_AT`` is ``name``, the
    process is killed here with SIGKILL, as a power cut would stop it (no cleanup, no flush).
    The crash tests use it to land a kill between every two steps of ``import``, ``fit`` and a
    snapshot; unset, it costs one dictionary look-up."""
    if os.environ.get(CRASH_POINT_VARIABLE) == name:
        os.kill(os.getpid(), signal.SIGKILL)
