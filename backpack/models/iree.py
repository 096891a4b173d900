"""The ``iree`` model backend: ONNX models compiled ahead of time by IREE for this CPU.

Loading a model imports the ONNX graph to MLIR (``iree-import-onnx``),
compiles it for the ``llvm-cpu`` target and keeps the compiled module in a
cache folder, keyed by the model's SHA-256, the compiler's version, the flags
and this CPU, so a second load (in this process or the next) skips the
compiler. Sessions run with the IREE runtime on one shared CPU device; a VM
context is not safe to share between threads, so each calling thread gets its
own context over the same memory-mapped module.
"""

from __future__ import annotations

import hashlib
import os
import platform
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from backpack.core.files import atomic_file
from backpack.errors import InvalidInputError, ModelLoadError
from backpack.models.backends import (
    ModelBackend,
    ModelSession,
    ModelSource,
    PerThread,
    default_threads,
    importable,
    onnx_specs,
    parse_onnx,
    require,
)

#: raise the compiler's flags' version when they change, so old cache entries are not reused
_FLAGS_VERSION = 1


def untrusted_folder(folder: Path) -> str | None:
    """Why ``folder`` (or a folder above it) could be changed by another user, or None: each must be
    owned by this user or root and not group/world-writable (sticky folders such as /tmp excepted
    above the cache folder itself, as ssh does)."""
    if not hasattr(os, "getuid"):
        return None  # Windows: no owners or modes of this kind
    folder = folder.resolve()
    for depth, current in enumerate([folder, *folder.parents]):
        info = os.stat(current)
        if info.st_uid not in (os.getuid(), 0):
            return f"{current} is owned by uid {info.st_uid}, not by you"
        if info.st_mode & 0o022 and not (depth and info.st_mode & stat.S_ISVTX):
            return f"{current} is writable by group or others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def trusted_entry(path: Path) -> bool:
    """Whether ``path`` is a cache entry this process may load: a regular file (not a symlink)
    owned by this user and writable by no one else. False when it does not exist."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISREG(info.st_mode) or info.st_mode & 0o022:
        return False
    return not hasattr(os, "getuid") or info.st_uid == os.getuid()


def default_cache_dir() -> Path:
    """``$BACKPACK_CACHE_DIR/iree``, else ``$XDG_CACHE_HOME/backpack/iree``, else ``~/.cache/backpack/iree``."""
    base = os.environ.get("BACKPACK_CACHE_DIR")
    if base:
        return Path(base) / "iree"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "backpack" / "iree"


def _cpu_identity() -> str:
    """What makes code compiled for ``host`` valid here: the machine and its CPU model and flags."""
    text = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith(("model name", "flags")):
                    text += line
                if line.strip() == "":
                    break  # the first CPU says it for all
    except OSError:
        pass
    return f"{platform.machine()}|{platform.system()}|{text}"


class IreeBackend(ModelBackend):
    """Compiles ONNX models with IREE for this CPU and runs them with the IREE runtime.

    Parameters
    ----------
    threads : worker threads of the runtime's task executor (0: all cores).
    cache_dir : where compiled modules are kept (default :func:`default_cache_dir`).
    target_cpu : ``"host"`` (this CPU's features, the fastest) or an LLVM CPU name
        such as ``"generic"`` for modules that must run on other machines.
    compile_args : extra ``iree-compile`` flags (part of the cache key).
    """

    name = "iree"
    # IREE 3.13 lowers ONNX TopK to a full sort (iree-org/iree#20772): 1.3 s for 20,000 scores.
    fast_topk = False

    @staticmethod
    def available() -> bool:
        """Whether the IREE compiler, its ONNX importer and the runtime are importable."""
        return importable("iree.compiler", "iree.compiler.tools.import_onnx", "iree.runtime", "onnx")

    def __init__(self, threads: int = 0, cache_dir=None, target_cpu: str = "host", compile_args=()):
        self._compiler = require("iree.compiler", "iree-base-compiler", "the iree model backend", "iree")
        self._runtime = require("iree.runtime", "iree-base-runtime", "the iree model backend", "iree")
        require("onnx", "onnx", "the iree model backend (it imports ONNX models)", "iree")
        self.threads = default_threads(threads)
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        if not isinstance(target_cpu, str) or not target_cpu:
            raise InvalidInputError(f"target_cpu must be a CPU name such as 'host' or 'generic', got {target_cpu!r}")
        self.target_cpu = target_cpu
        self.compile_args = tuple(str(a) for a in compile_args)
        self._device = None

    @property
    def compiler_version(self) -> str:
        from iree.compiler import version

        return f"{version.VERSION} {sorted(version.REVISIONS.items())}"

    def cache_key(self, source: ModelSource) -> str:
        """The file name (without suffix) a compiled ``source`` is cached under."""
        parts = [source.sha256, self.compiler_version, repr(self._flags()), str(_FLAGS_VERSION)]
        if self.target_cpu == "host":
            parts.append(_cpu_identity())
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()

    def compiled_path(self, source: ModelSource) -> Path:
        """The cached module for ``source``, compiled now if it is not cached yet.

        A ``.vmfb`` is native code that is loaded and run, so the cache is trusted as ssh trusts
        its keys: the folder must be this user's (or root's) and writable by no one else, and an
        entry this user does not own (or a symlink) is deleted and compiled again, never loaded."""
        try:
            self.cache_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise ModelLoadError(f"cannot create the IREE cache folder {self.cache_dir}: {exc}") from None
        problem = untrusted_folder(self.cache_dir)
        if problem:
            raise ModelLoadError(
                f"the IREE cache folder {problem}: another user could plant a module there that this process "
                "would run; make it private (chmod 700) or point BACKPACK_CACHE_DIR at a private folder"
            )
        path = self.cache_dir / f"{self.cache_key(source)}.vmfb"
        if not trusted_entry(path):
            path.unlink(missing_ok=True)
            self._compile(source, path)
        return path

    def _flags(self) -> list[str]:
        return [f"--iree-llvmcpu-target-cpu={self.target_cpu}", *self.compile_args]

    def _compile(self, source: ModelSource, target: Path) -> None:
        with tempfile.TemporaryDirectory(prefix="backpack-iree-") as tmp:
            onnx_path, mlir_path = Path(tmp) / "model.onnx", Path(tmp) / "model.mlir"
            onnx_path.write_bytes(source.data)
            # The importer runs in a child process: it may print or abort on a model it cannot
            # convert, and neither must reach the host application.
            imported = subprocess.run(
                [sys.executable, "-m", "iree.compiler.tools.import_onnx", str(onnx_path), "-o", str(mlir_path)],
                capture_output=True,
                text=True,
            )
            if imported.returncode != 0:
                raise ModelLoadError(f"IREE cannot import {source.origin}: {_tail(imported.stderr)}")
            try:
                vmfb = self._compiler.compile_file(
                    str(mlir_path), target_backends=["llvm-cpu"], extra_args=self._flags()
                )
            except Exception as exc:
                raise ModelLoadError(f"IREE cannot compile {source.origin} for llvm-cpu: {_tail(str(exc))}") from None
        with atomic_file(target) as f:
            f.write(vmfb)

    def _load(self, source: ModelSource) -> IreeSession:
        proto = parse_onnx(source)
        path = self.compiled_path(source)
        config = self._config()
        try:
            module = self._runtime.VmModule.mmap(config.vm_instance, str(path))
        except Exception:
            # A damaged cache entry (a disk error, a hand edit) is only a cache miss: compile again.
            path.unlink(missing_ok=True)
            path = self.compiled_path(source)
            try:
                module = self._runtime.VmModule.mmap(config.vm_instance, str(path))
            except Exception as exc:
                raise ModelLoadError(
                    f"IREE cannot load the module it compiled for {source.origin} ({path}): {exc}"
                ) from None
        names = [n for n in module.function_names if not n.endswith("$async") and not n.startswith("__")]
        if len(names) != 1:
            raise ModelLoadError(f"{path} exports functions {names}; expected the model's one entry point")
        return IreeSession(config, module, names[0], *onnx_specs(proto))

    def _config(self):
        if self._device is None:
            rt = self._runtime
            # The task executor's worker count is a process-wide runtime flag, read when a device is made.
            rt.flags.parse_flags(f"--task_topology_max_group_count={self.threads}")
            self._device = rt.Config("local-task")
        return self._device


class IreeSession(ModelSession):
    """A compiled model on the IREE runtime; one VM context per calling thread."""

    backend = "iree"

    def __init__(self, config, module, function: str, inputs, outputs):
        super().__init__(inputs, outputs)
        import iree.runtime as rt

        self._function = function
        self._contexts = PerThread(lambda: rt.SystemContext(vm_modules=[module], config=config))

    def _run(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        context = self._contexts.get()
        result = context.modules.module[self._function](*arrays)
        results = result if isinstance(result, (tuple, list)) else [result]
        # to_host() copies out of device memory, so the arrays outlive the call's buffers
        return [np.asarray(r.to_host() if hasattr(r, "to_host") else r) for r in results]


def _tail(text: str, lines: int = 12) -> str:
    """The last lines of a tool's output: where compilers say what went wrong."""
    kept = [line for line in (text or "").strip().splitlines() if line.strip()]
    return "\n".join(kept[-lines:]) or "(no output)"
