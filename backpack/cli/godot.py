"""The Godot addon shipped inside the package, and installing it into a project.

``pip install .`` puts the addon's files (``godot_addon/addons/backpack``) in
``backpack/godot/addon`` and the GDExtension library built for this machine
in ``backpack/godot``; :func:`install` copies both into a Godot project, the
library into ``addons/backpack/bin/`` where ``backpack.gdextension`` looks.
"""

from __future__ import annotations

import json
import os
import platform
import secrets
import sys
from pathlib import Path

from backpack.errors import GodotProjectError

PACKAGED = Path(__file__).resolve().parents[1] / "godot"  # installed beside the subpackages by CMake


def godot_platform() -> str:
    """This machine as Godot's feature tags name it in a .gdextension file (``linux.x86_64``, ``macos``)."""
    machine = platform.machine().lower()
    arch = {"amd64": "x86_64", "x86_64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(machine, machine)
    if sys.platform == "darwin":
        return "macos"
    return f"{'windows' if sys.platform == 'win32' else 'linux'}.{arch}"


def library_path() -> Path:
    """The GDExtension library built for this platform by ``pip install .``."""
    tag = godot_platform()
    suffix = {"macos": ".dylib"}.get(tag, ".dll" if tag.startswith("windows") else ".so")
    for name in (f"libbackpack_gdextension.{tag}{suffix}", f"backpack_gdextension.{tag}{suffix}"):
        if (PACKAGED / name).is_file():
            return PACKAGED / name
    raise GodotProjectError(
        f"no Backpack GDExtension library for {tag} in {PACKAGED}: reinstall with `pip install .` on this "
        "machine (CMake option BACKPACK_GDEXTENSION=ON)"
    )


def addon_dir() -> Path:
    """The addon's own files (``backpack.gdextension``, scripts) as installed with the package."""
    if not (PACKAGED / "addon" / "backpack.gdextension").is_file():
        raise GodotProjectError(f"the Godot addon files are missing from {PACKAGED / 'addon'}: reinstall Backpack")
    return PACKAGED / "addon"


def install(project, *, force: bool = False) -> list[Path]:
    """Copy the addon and this platform's library into ``project/addons/backpack``; returns the files written.

    ``project`` must hold ``project.godot`` unless ``force``. Running it again
    replaces the addon's own files with this version's (each in one rename, never writing
    through a symlink; a symlinked folder anywhere below ``project`` is refused) and leaves
    anything else in the folder alone.
    """
    project = Path(project)
    if not force and not (project / "project.godot").is_file():
        raise GodotProjectError(
            f"{project} is not a Godot project (no project.godot there): pass the folder that holds "
            "project.godot, or --force to install anyway"
        )
    source, library = addon_dir(), library_path()
    target = project / "addons" / "backpack"
    files = [(path.relative_to(source), path) for path in sorted(source.rglob("*")) if path.is_file()]
    files.append((Path("bin") / library.name, library))
    project.mkdir(parents=True, exist_ok=True)  # PATH itself is the user's to name (--force may create it)
    root = os.open(project, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for relative, path in files:
            folder = _folder_below(root, ("addons", "backpack", *relative.parent.parts), project)
            try:
                _replace_file(folder, relative.name, path.read_bytes(), path.stat().st_mode & 0o755)
            finally:
                os.close(folder)
    finally:
        os.close(root)
    return [target / relative for relative, _ in files]


def _folder_below(root: int, parts: tuple[str, ...], project: Path) -> int:
    """A descriptor of ``project/parts...``, made as needed, each step opened relative to the one
    before and never through a symlink: a symlinked ``addons/`` (or anything below it) would
    send the files outside the project, into a folder another user chose."""
    fd = os.dup(root)
    for depth, name in enumerate(parts):
        try:
            os.mkdir(name, 0o755, dir_fd=fd)
        except FileExistsError:
            pass
        try:
            child = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
        except OSError as exc:
            os.close(fd)
            where = project.joinpath(*parts[: depth + 1])
            raise GodotProjectError(
                f"{where} is a symlink or not a folder: refusing to install through it (remove it, then install again)"
            ) from exc
        os.close(fd)
        fd = child
    return fd


def _replace_file(folder: int, name: str, data: bytes, mode: int) -> None:
    """``name`` in ``folder`` replaced by a new file holding ``data`` in one rename: a symlink (or
    a hard link) there is replaced, never written through, and no one sees a half-written file."""
    tmp = f".{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode, dir_fd=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, name, src_dir_fd=folder, dst_dir_fd=folder)
    except BaseException:
        os.unlink(tmp, dir_fd=folder)
        raise


def run_godot(args) -> int:
    """``backpack godot install PATH [--force]``."""
    written = install(args.path, force=args.force)
    if args.json:
        print(json.dumps({"installed": [str(p) for p in written]}, indent=2))
    else:
        print(f"installed the Backpack addon into {Path(args.path) / 'addons' / 'backpack'} ({len(written)} files)")
        print("enable it in Godot with Project > Project Settings > Plugins, or use BackpackEngine.new() directly")
    return 0
