"""The data directory: an engine's state on disk, for the CLI and for ``Engine.save`` / ``Engine.open``.

Layout (format 1)::

    DIR/state.json          format, which model is active
    DIR/bags.npz            every bag: a users x items CSR and both id lists (index order)
    DIR/timestamps.npz      the latest time of each (user, item) pair
    DIR/item_kinds.json     item id -> kind (avatar, prop, world, ...)
    DIR/items.jsonl         item descriptions (expanded JSON-LD), one per line
    DIR/users.jsonl         user (actor) descriptions (expanded JSON-LD), one per line
    DIR/models/LABEL.npz    a fitted model, written by its own ``save``
    DIR/models/LABEL.json   its manifest: algorithm, parameters, when and on what it was fitted

Every file is replaced atomically (temporary file, fsync, rename), so a crash
leaves the previous version. Writers hold an exclusive lock on ``DIR/.lock``
so two ``backpack`` commands never interleave their writes. A model is tied
to the item indices of the bags it was fitted on; bags only grow (new ids are
appended), so a model stays valid after later imports and the manifest says
how many interactions it has not seen.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.fitting import accepts
from backpack.core.files import atomic_file, open_npz, save_npz
from backpack.errors import DataDirError, InvalidInputError, ModelFileError
from backpack.plugins import call_plugin

FORMAT = 1
# directories whose lock this process holds, with the nesting depth
_held: dict[Path, int] = {}
_held_lock = threading.Lock()
_BAGS_VERSION = 1
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def default_data_dir() -> Path:
    """``$BACKPACK_DATA_DIR``, else the platform's per-user data directory plus ``backpack``."""
    if os.environ.get("BACKPACK_DATA_DIR"):
        return Path(os.environ["BACKPACK_DATA_DIR"]).expanduser()
    home = Path.home()
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", home / "AppData" / "Local")) / "backpack"
    if sys.platform == "darwin":
        return home / "Library" / "Application Support" / "backpack"
    return Path(os.environ.get("XDG_DATA_HOME") or home / ".local" / "share") / "backpack"


def check_label(label: str) -> str:
    """A model label usable as a file name: letters, digits, ``.``, ``_``, ``-``; at most 64."""
    if not isinstance(label, str) or not _LABEL.match(label):
        raise InvalidInputError(
            f"model label {label!r} must be 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return label


@dataclass
class ModelManifest:
    """What was fitted, how, when, and on how much data."""

    label: str
    algorithm: str
    params: dict
    fitted_at: float
    fit_seconds: float
    n_users: int
    n_items: int
    n_interactions: int

    def as_dict(self) -> dict:
        return dict(self.__dict__)


class DataDir:
    """One data directory. Creating the object touches nothing; ``create=True`` makes the folder."""

    def __init__(self, path=None, *, create: bool = False):
        self.path = Path(path).expanduser() if path is not None else default_data_dir()
        if self.path.exists() and not self.path.is_dir():
            raise DataDirError(f"data directory {self.path} is a file, not a directory")
        state = self.path / "state.json"
        if state.exists():
            self._check_format(state)
        elif create:
            self.path.mkdir(parents=True, exist_ok=True)
            (self.path / "models").mkdir(exist_ok=True)
            self._write_json(state, {"format": FORMAT, "active_model": None})

    # -- state ----------------------------------------------------------------

    @property
    def initialised(self) -> bool:
        """Whether the directory holds Backpack state (``state.json``)."""
        return (self.path / "state.json").exists()

    @property
    def has_interactions(self) -> bool:
        """Whether anything was imported."""
        return (self.path / "bags.npz").exists()

    def state(self) -> dict:
        """The contents of ``state.json`` (an empty default if the directory is new)."""
        if not self.initialised:
            return {"format": FORMAT, "active_model": None}
        return self._read_json(self.path / "state.json")

    def _require(self) -> None:
        if not self.initialised:
            raise DataDirError(
                f"{self.path} holds no Backpack data: import interactions first "
                f"(backpack --data-dir {self.path} import FILE)"
            )

    def _check_format(self, state: Path) -> None:
        found = self._read_json(state).get("format")
        if found != FORMAT:
            raise DataDirError(f"{self.path} has data format {found!r}; this version of Backpack reads {FORMAT}")

    @contextmanager
    def locked(self):
        """Hold the directory's writer lock (blocks while another process writes; re-entrant
        within this process, where callers nest: an import saves bags under its own lock)."""
        self.path.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        with _held_lock:
            depth = _held.get(key, 0)
            _held[key] = depth + 1
        try:
            if depth:
                yield
                return
            with open(self.path / ".lock", "a+b") as f:
                try:
                    import fcntl
                except ImportError:  # Windows: no advisory locks; one writer at a time assumed
                    yield
                    return
                fcntl.flock(f.fileno(), fcntl.LOCK_EX)
                try:
                    yield
                finally:
                    fcntl.flock(f.fileno(), fcntl.LOCK_UN)
        finally:
            with _held_lock:
                _held[key] -= 1
                if not _held[key]:
                    del _held[key]

    # -- the engine -------------------------------------------------------------

    def save_engine(
        self, engine, *, label: str | None = None, params: dict | None = None, fit_seconds: float = 0.0
    ) -> None:
        """Write the engine's bags, timestamps and item kinds; and its model, if one is in service.

        The model is saved as ``label`` (default: its algorithm's name) and made active.
        """
        with self.locked():
            DataDir(self.path, create=True)
            self._save_bags(engine)
            self._save_items(engine)
            served = engine.served_model()
            if served is not None:
                algorithm, model = served
                self._save_model(model, label or algorithm, algorithm, params or {}, fit_seconds, engine)

    def load_into(self, engine, *, model: str | None = None, load_model: bool = True) -> None:
        """Fill a new ``engine`` with the saved bags, timestamps, kinds and descriptions, serving
        ``model`` (a label; default: the active model, if any)."""
        self._require()
        self._load_bags(engine)
        self._load_items(engine)
        if load_model:
            label = model or self.state().get("active_model")
            if label is not None:
                manifest, fitted = self.load_model(label, engine.plugins, num_threads=engine.num_threads)
                engine.install_model(manifest.algorithm, fitted)
            elif model is not None:
                raise DataDirError(f"no model {model!r} in {self.path}")

    def _save_bags(self, engine) -> None:
        state = engine.bag_state()  # one consistent copy of bags and times
        m, user_ids, item_ids, times = state.user_items, state.user_ids, state.item_ids, state.times.entries()
        save_npz(
            self.path / "bags.npz",
            "bags",
            _BAGS_VERSION,
            indptr=m.indptr,
            indices=m.indices,
            data=m.data,
            shape=np.array(m.shape, np.int64),
            user_ids=np.array(user_ids, dtype=str),
            item_ids=np.array(item_ids, dtype=str),
            time_users=times[0],
            time_items=times[1],
            times=times[2],
        )
        items, kinds = state.item_kinds
        self._write_json(self.path / "item_kinds.json", dict(zip(items, kinds)))

    def _load_bags(self, engine) -> None:
        path = self.path / "bags.npz"
        if not path.exists():
            return
        with open_npz(path, "bags", _BAGS_VERSION, "bags") as f:
            shape = tuple(int(x) for x in f["shape"])
            m = sp.csr_matrix((f["data"], f["indices"], f["indptr"]), shape=shape)
            user_ids, item_ids = f["user_ids"].tolist(), f["item_ids"].tolist()
            times = f["time_users"], f["time_items"], f["times"]
        engine.load_matrix(m, user_ids, item_ids)
        engine.timestamps.replace(*times)
        kinds_file = self.path / "item_kinds.json"
        if kinds_file.exists():
            kinds = self._read_json(kinds_file)
            if kinds:
                engine.set_item_kinds(list(kinds), list(kinds.values()))

    # -- models ---------------------------------------------------------------

    def save_model(self, engine, label: str, params: dict, fit_seconds: float, *, activate: bool = True) -> None:
        """Save the engine's model in service as ``label`` (and make it the active one)."""
        served = engine.served_model()
        if served is None:
            raise DataDirError("the engine has no fitted model to save")
        algorithm, model = served
        with self.locked():
            self._save_model(model, label, algorithm, params, fit_seconds, engine, activate=activate)

    def _save_model(
        self, model, label: str, algorithm: str, params: dict, fit_seconds: float, engine, activate: bool = True
    ) -> None:
        check_label(label)
        models = self.path / "models"
        models.mkdir(parents=True, exist_ok=True)
        model.save(models / f"{label}.npz")
        manifest = ModelManifest(
            label,
            algorithm,
            _jsonable(params),
            time.time(),
            float(fit_seconds),
            engine.bags.n_users,
            engine.bags.n_items,
            engine.bags.nnz,
        )
        self._write_json(models / f"{label}.json", manifest.as_dict())
        if activate:
            state = self.state()
            state["active_model"] = label
            self._write_json(self.path / "state.json", state)

    def models(self) -> list[ModelManifest]:
        """Every saved model's manifest, by label."""
        folder = self.path / "models"
        if not folder.is_dir():
            return []
        return [self.manifest(p.stem) for p in sorted(folder.glob("*.json"))]

    def manifest(self, label: str) -> ModelManifest:
        """The manifest of model ``label``."""
        path = self.path / "models" / f"{check_label(label)}.json"
        if not path.exists():
            known = [p.stem for p in sorted((self.path / "models").glob("*.json"))] if self.initialised else []
            raise DataDirError(
                f"no model {label!r} in {self.path}; saved models: {', '.join(known) or 'none'} "
                "(backpack fit ALGORITHM --label LABEL)"
            )
        try:
            return ModelManifest(**self._read_json(path))
        except TypeError as exc:
            raise ModelFileError(f"{path} is not a Backpack model manifest: {exc}") from exc

    def load_model(self, label: str, plugins, *, num_threads: int = 0):
        """(manifest, fitted model) of ``label``, read by its algorithm's own ``load``."""
        manifest = self.manifest(label)
        registration = plugins.algorithm(manifest.algorithm)
        factory = registration.value
        loader = getattr(factory, "load", None)
        if loader is None:
            raise ModelFileError(
                f"algorithm {manifest.algorithm!r} (plugin {registration.plugin!r}) "
                "cannot load saved models: its factory has no load()"
            )
        path = self.path / "models" / f"{label}.npz"
        # decided by the signature: a TypeError from the call is the plugin's own failure, reported as such
        options = {"num_threads": num_threads} if accepts(loader, "num_threads") else {}
        model = call_plugin(registration, "load", loader, path, **options)
        return manifest, model

    # -- item descriptions ------------------------------------------------------

    def _save_items(self, engine) -> None:
        """Item and user descriptions to ``items.jsonl`` / ``users.jsonl`` and the content index to
        ``content.npz``, atomically."""
        for name, descriptions in (
            ("items.jsonl", engine.item_descriptions),
            ("users.jsonl", engine.user_descriptions),
        ):
            docs = descriptions.snapshot()
            if docs or (self.path / name).exists():
                with atomic_file(self.path / name, "w", encoding="utf-8") as f:
                    for doc in docs.values():
                        f.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
        content = engine.content
        if content is not None:
            save_npz(
                self.path / "content.npz",
                "content",
                _BAGS_VERSION,
                vectors=content.vectors,
                item_ids=np.array(content.item_ids, dtype=str),
                task=np.array(content.task),
            )

    def _load_items(self, engine) -> None:
        for docs, put in (
            (self._read_jsonl("items.jsonl"), engine.put_items),
            (self._read_jsonl("users.jsonl"), engine.put_users),
        ):
            if docs:
                put(docs, expanded=True)  # saved expanded: no context to process again
        content = self.path / "content.npz"
        if content.exists():
            from backpack.content.index import ContentIndex

            with open_npz(content, "content", _BAGS_VERSION, "content index") as f:
                engine.content = ContentIndex(
                    f["item_ids"].tolist(), f["vectors"], task=str(f["task"]), num_threads=engine.num_threads
                )

    def _read_jsonl(self, name: str) -> list:
        path = self.path / name
        if not path.exists():
            return []
        docs = []
        with open(path, encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                try:
                    docs.append(json.loads(line))
                except ValueError:
                    raise DataDirError(f"{path} line {number} is not JSON: the file is damaged") from None
        return docs

    def n_items_described(self) -> int:
        """How many item descriptions were imported (lines of ``items.jsonl``)."""
        path = self.path / "items.jsonl"
        if not path.exists():
            return 0
        with open(path, "rb") as f:
            return sum(1 for _ in f)

    # -- files ------------------------------------------------------------------

    def _read_json(self, path: Path) -> dict:
        try:
            with open(path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError) as exc:
            raise DataDirError(f"{path} is unreadable ({exc}); restore it or start a new data directory") from exc

    def _write_json(self, path: Path, value) -> None:
        with atomic_file(path, "w", encoding="utf-8") as f:
            json.dump(value, f, indent=1, ensure_ascii=False)


def _jsonable(params: dict) -> dict:
    """Parameters as JSON can hold them (NumPy scalars become numbers, anything else its repr)."""
    out = {}
    for key, value in params.items():
        if isinstance(value, np.generic):
            value = value.item()
        out[key] = value if isinstance(value, (str, int, float, bool, type(None))) else repr(value)
    return out
