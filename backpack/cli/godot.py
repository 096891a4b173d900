"""The Godot addon shipped inside the package, and installing it into a project.

``pip install .`` puts the addon's files (``godot_addon/addons/backpack``) in
``backpack/godot/addon`` and the GDExtension library built for this machine
in ``backpack/godot``; :func:`install` copies both into a Godot project, the
library into ``addons/backpack/bin/`` where ``backpack.gdextension`` looks.
"""

from __future__ import annotations

import json
import platform
import shutil
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
    overwrites the addon's own files with this version's and leaves anything
    else in the folder alone.
    """
    project = Path(project)
    if not force and not (project / "project.godot").is_file():
        raise GodotProjectError(
            f"{project} is not a Godot project (no project.godot there): pass the folder that holds "
            "project.godot, or --force to install anyway"
        )
    source, library = addon_dir(), library_path()
    target = project / "addons" / "backpack"
    written = []
    for path in sorted(source.rglob("*")):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, destination)
            written.append(destination)
    (target / "bin").mkdir(parents=True, exist_ok=True)
    written.append(Path(shutil.copy2(library, target / "bin" / library.name)))
    return written


def run_godot(args) -> int:
    """``backpack godot install PATH [--force]``."""
    written = install(args.path, force=args.force)
    if args.json:
        print(json.dumps({"installed": [str(p) for p in written]}, indent=2))
    else:
        print(f"installed the Backpack addon into {Path(args.path) / 'addons' / 'backpack'} ({len(written)} files)")
        print("enable it in Godot with Project > Project Settings > Plugins, or use BackpackEngine.new() directly")
    return 0
