"""One snapshot of an engine on disk: a directory written once, then only read.

A data directory (:mod:`backpack.engine.data_dir`) keeps its snapshots under
``snapshots/``; the store records which one is current and up to which log
position it holds. Layout of one snapshot (format 1, the same files a data
directory of Backpack 0.1 held at its top level)::

    state.json          format, which model is active
    bags.npz            every bag: a users x items CSR, both id lists (index order), the latest times
    item_kinds.json     item id -> kind (avatar, prop, world, ...)
    items.jsonl         item descriptions (expanded JSON-LD), one per line
    users.jsonl         user (actor) descriptions (expanded JSON-LD), one per line
    content.npz         the content index of ``backpack embed``, if any
    models/LABEL.npz    a fitted model, written by its own ``save``
    models/LABEL.json   its manifest: algorithm, parameters, when and on what it was fitted

A model is tied to the item indices of the bags it was fitted on; bags only
grow (new ids are appended), so a model stays valid in every later snapshot,
which carries it on (hard links, not copies) and says in the manifest how many
interactions it has not seen.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.fitting import accepts
from backpack.core.files import atomic_file, crash_point, open_npz, save_npz
from backpack.errors import DataDirError, InvalidInputError, ModelFileError
from backpack.plugins import call_plugin

FORMAT = 1
_BAGS_VERSION = 1
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
#: the files of a snapshot besides models/ (a format-1 data directory held the same at its top level)
FILES = ("state.json", "bags.npz", "timestamps.npz", "item_kinds.json", "items.jsonl", "users.jsonl", "content.npz")


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


@dataclass
class NewModel:
    """The model in service, to be saved in a new snapshot as ``label`` (active unless told otherwise)."""

    label: str
    params: dict
    fit_seconds: float = 0.0
    activate: bool = True


class SnapshotFiles:
    """One snapshot directory. Creating the object touches nothing."""

    def __init__(self, path, *, name=None):
        self.path = Path(path)
        self.name = name or self.path  # what messages call it (the data directory it belongs to)

    def state(self) -> dict:
        """The contents of ``state.json`` (no active model if there is none)."""
        path = self.path / "state.json"
        if not path.exists():
            return {"format": FORMAT, "active_model": None}
        state = self._read_json(path)
        if state.get("format") != FORMAT:
            raise DataDirError(f"{self.path} has snapshot format {state.get('format')!r}; this Backpack reads {FORMAT}")
        return state

    @property
    def active_model(self) -> str | None:
        """The label of the active model, or None."""
        return self.state().get("active_model")

    # -- writing (into a directory nobody reads yet) --------------------------------

    def write(self, engine, *, carry_models_from: SnapshotFiles | None = None, model: NewModel | None = None) -> None:
        """Write the engine's bags, times, kinds, descriptions and content index; the models of
        ``carry_models_from`` (hard-linked) with its active one; and, with ``model``, the model
        in service under that label."""
        self.path.mkdir(parents=True, exist_ok=True)
        self._save_bags(engine)
        self._save_items(engine)
        state = {"format": FORMAT, "active_model": None}
        if carry_models_from is not None:
            state["active_model"] = carry_models_from.active_model
            self._carry_models(carry_models_from, skip=None if model is None else model.label)
        crash_point("snapshot:bags-written")
        if model is not None:
            served = engine.served_model()
            if served is None:
                raise DataDirError("the engine has no fitted model to save")
            algorithm, fitted = served
            self._save_model(fitted, model.label, algorithm, model.params, model.fit_seconds, engine)
            if model.activate:
                state["active_model"] = model.label
        self._write_json(self.path / "state.json", state)

    def _carry_models(self, previous: SnapshotFiles, skip: str | None) -> None:
        folder = previous.path / "models"
        if not folder.is_dir():
            return
        target = self.path / "models"
        target.mkdir(exist_ok=True)
        for source in folder.iterdir():
            if source.stem == skip or not source.is_file():
                continue
            try:
                os.link(source, target / source.name)  # snapshots are never written again: sharing is safe
            except OSError:  # a filesystem without hard links
                shutil.copy2(source, target / source.name)

    # -- reading ------------------------------------------------------------------------

    def load_into(self, engine, *, model: str | None = None, load_model: bool = True) -> None:
        """Fill a new ``engine`` with the saved bags, timestamps, kinds and descriptions, serving
        ``model`` (a label; default: the active model, if any)."""
        self._load_bags(engine)
        self._load_items(engine)
        if load_model:
            label = model or self.active_model
            if label is not None:
                manifest, fitted = self.load_model(label, engine.plugins, num_threads=engine.num_threads)
                engine.install_model(manifest.algorithm, fitted)

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

    def _save_model(self, model, label: str, algorithm: str, params: dict, fit_seconds: float, engine) -> None:
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
            known = [p.stem for p in sorted((self.path / "models").glob("*.json"))]
            raise DataDirError(
                f"no model {label!r} in {self.name}; saved models: {', '.join(known) or 'none'} "
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
