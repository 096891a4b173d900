"""Importing scene files (``.gltf``, ``.glb``, ``.tscn``) and folders of them as items.

A folder import reads every scene file under the folder (recursively, in
sorted path order) and keeps going past bad files: each becomes a line in
the :class:`ScanReport` (the file and the error message, which names the
byte or line), the good ones are imported. This differs on purpose from
interaction files, where an import is all or nothing: a scene folder is a
collection of independent uploads, and one broken upload must not hold back
the others.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from backpack.errors import InvalidInputError, SceneFileError
from backpack.scenes.items import SceneDescription

SCENE_SUFFIXES = (".gltf", ".glb", ".tscn")
#: the largest scene file read (a symlink to /dev/zero, or a huge upload, must not exhaust memory)
MAX_SCENE_BYTES = 256 << 20


def is_scene_file(path) -> bool:
    """Whether ``path`` has a scene file's suffix (case-insensitive)."""
    return Path(path).suffix.lower() in SCENE_SUFFIXES


def read_scene(path) -> SceneDescription:
    """The item description of one scene file, by its suffix.

    Raises :class:`~backpack.errors.SceneFileError` for a malformed file or
    one that cannot be read, :class:`~backpack.errors.InvalidInputError` for
    a suffix that is not a scene's.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SCENE_SUFFIXES:
        raise InvalidInputError(f"{path}: not a scene file (expected {', '.join(SCENE_SUFFIXES)})")
    try:
        _check_readable(path)
        if suffix == ".tscn":
            from backpack.scenes.tscn import read_tscn

            return read_tscn(path)
        from backpack.scenes.gltf import read_gltf

        return read_gltf(path)
    except OSError as exc:
        raise SceneFileError(path, f"cannot read it ({exc.strerror or exc})") from None
    except RecursionError:
        raise SceneFileError(path, "nested too deeply to read") from None


def _check_readable(path: Path) -> None:
    """A regular file of at most :data:`MAX_SCENE_BYTES`, checked on an open descriptor (opened
    non-blocking, so a FIFO named ``*.tscn`` cannot hang the import), else SceneFileError."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(info.st_mode):
        raise SceneFileError(path, "not a regular file (a FIFO, device or socket): skipped")
    if info.st_size > MAX_SCENE_BYTES:
        raise SceneFileError(path, f"{info.st_size:,} bytes, more than the {MAX_SCENE_BYTES:,} a scene may be: skipped")


def scene_files(folder) -> list[Path]:
    """Every scene file under ``folder``, recursively, sorted; hidden folders (``.godot``, ``.git``) skipped."""
    return scan_scene_folder(folder)[0]


def scan_scene_folder(folder) -> tuple[list[Path], list[tuple[Path, str]]]:
    """The scene files under ``folder`` (as :func:`scene_files`) and those skipped with why: a
    symlink that leads out of the folder (another user's files are not an upload) or to nothing.
    Symlinked folders are not walked into."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InvalidInputError(f"{folder}: no such folder")
    inside = folder.resolve()
    found, skipped = [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(root) / name
            if not is_scene_file(name):
                continue
            if path.is_symlink():
                target = path.resolve()
                if not target.is_relative_to(inside):
                    skipped.append((path, f"{path}: a symlink leading out of the folder (to {target}): skipped"))
                    continue
            found.append(path)
    return sorted(found), sorted(skipped)


@dataclass
class ScanReport:
    """What a folder import did: the items read, and each file that failed with its message."""

    folder: Path
    items: list[SceneDescription] = field(default_factory=list)
    errors: list[tuple[Path, str]] = field(default_factory=list)
    stored: int = 0

    @property
    def imported(self) -> int:
        """How many files became items."""
        return len(self.items)

    @property
    def files(self) -> int:
        """How many scene files were found."""
        return len(self.items) + len(self.errors)

    @property
    def ok(self) -> bool:
        """Whether every scene file was imported."""
        return not self.errors

    def as_dict(self) -> dict:
        """The report as JSON-ready values."""
        return {
            "folder": str(self.folder),
            "files": self.files,
            "imported": self.imported,
            "failed": [{"file": str(path), "error": message} for path, message in self.errors],
        }


def import_scene_folder(folder, engine=None, progress: bool = True) -> ScanReport:
    """Read every scene file under ``folder`` (a bar by file count when ``progress``).

    A file that fails is reported in :attr:`ScanReport.errors` and the rest
    go on. With an ``engine``, the items read are stored by
    :meth:`~backpack.engine.engine.Engine.put_items` (``ScanReport.stored``).
    """
    folder = Path(folder)
    report = ScanReport(folder)
    paths, skipped = scan_scene_folder(folder)
    report.errors += skipped  # reported like a bad file: each one named, with why
    with tqdm(paths, desc=folder.name or str(folder), unit="file", disable=not progress) as bar:
        for path in bar:
            try:
                report.items.append(read_scene(path))
            except InvalidInputError as exc:  # SceneFileError included
                report.errors.append((path, str(exc)))
    if engine is not None and report.items:
        report.stored = engine.put_items([item.document for item in report.items])
    return report
