"""The engine: string ids in, recommendations out, updated in real time.

``Engine`` owns the users' bags and the fitted model. Recommendations are
scored from the *live* bag, so an interaction recorded after a fit changes the
user's next list without a refit. A fit works on a snapshot and swaps the new
model in with one assignment: readers never wait for it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from itertools import repeat
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from backpack.algorithms.base import Recommender
from backpack.algorithms.fitting import accepts, create_algorithm, fit_model, wants, wants_timestamps
from backpack.core.arrays import check_count
from backpack.core.bags import Bags, id_lists, weight_array
from backpack.core.descriptions import Descriptions
from backpack.core.item_kinds import ItemKinds
from backpack.core.timestamps import TimedPairs, TimestampLog, timestamp_array
from backpack.engine.data_dir import DataDir
from backpack.engine.results import Recommendation
from backpack.engine.snapshot_files import NewModel
from backpack.errors import InvalidInputError, NotFittedError, StaleModelError, UnknownItemError
from backpack.jsonld.activities import ActivityMapper
from backpack.jsonld.records import RecordMapper
from backpack.plugins import Plugins, Registration, call_plugin, get_plugins

log = logging.getLogger("backpack.engine.engine")

DEFAULT_KIND_WEIGHTS = {"view": 1.0, "visit": 2.0, "like": 3.0, "equip": 5.0, "purchase": 8.0}


class BagState(NamedTuple):
    """A consistent copy of an engine's bags (see :meth:`Engine.bag_state`)."""

    user_items: sp.csr_matrix
    user_ids: list
    item_ids: list
    times: TimedPairs
    item_kinds: tuple[list, list]


class _Served(NamedTuple):
    """The model in service with what serving needs to know about it, swapped in as one reference."""

    model: Recommender
    registration: Registration  # whose plugin to blame when the model raises
    n_items: int  # asked once at install: the model's own property is plugin code too


class Engine:
    """Recommendation engine over string ids; safe to share between threads.

    ``kind_weights`` maps interaction kinds (view, like, ...) to weights for
    calls that pass ``kind=`` instead of a weight. Algorithms come from
    ``plugins`` (by default every installed plugin, see ``backpack plugins``).
    ``timestamps`` holds when each pair last happened (for recency-aware
    algorithms and time splits); ``item_kinds`` what each item is (for
    ``item_kind=`` on every recommendation call). ``activity_weights``
    overrides the weight of ActivityStreams activity types and schema.org
    actions (``{"Like": 5}``, see :data:`backpack.jsonld.activities.DEFAULT_WEIGHTS`).
    """

    def __init__(
        self,
        *,
        kind_weights: dict[str, float] | None = None,
        num_threads: int = 0,
        plugins: Plugins | None = None,
        activity_weights: dict[str, float] | None = None,
    ):
        self.bags = Bags()
        self.timestamps = TimestampLog()
        self.item_kinds = ItemKinds()
        self.item_descriptions = Descriptions()  # item IRI -> expanded JSON-LD node
        self.user_descriptions = Descriptions()  # user (actor) IRI -> expanded JSON-LD node
        self.mapper = RecordMapper(activities=ActivityMapper(activity_weights))  # JSON-LD in: see ingest()
        self.content = None  # the ContentIndex of fit_content (None until then)
        self.features = None  # the FeatureIndex of fit_features (None until then)
        self.kind_weights = dict(DEFAULT_KIND_WEIGHTS if kind_weights is None else kind_weights)
        self.num_threads = num_threads
        self.plugins = plugins if plugins is not None else get_plugins()
        self._served: _Served | None = None
        self._backend = None  # the ModelBackend factor models are served on (None: the native core)
        # Writers (and a fit's snapshot) take _write_lock so a snapshot sees one
        # consistent state; readers never take it. _model_lock is the small lock
        # around the model swap: load_matrix bumps _generation under it, and a
        # fit whose snapshot predates the bump is refused there.
        self._write_lock = threading.Lock()
        self._model_lock = threading.Lock()
        self._generation = 0

    # -- interactions ---------------------------------------------------------

    def add_interactions(
        self, users: Sequence[str], items: Sequence[str], weights=None, *, kinds=None, timestamps=None
    ) -> None:
        """Record many interactions at once (weights default to 1, or come from ``kinds``).

        ``timestamps`` (seconds since the epoch, ``datetime`` or None, one
        per interaction or one for all) say when they happened; a pair keeps
        its latest time.
        """
        users, items = id_lists(users, items)
        # checked and shaped before anything is written, so a bad batch stores nothing
        w = weight_array(self._weights(len(users), weights, kinds), len(users))
        t = None if timestamps is None else timestamp_array(timestamps, len(users))
        with self._write_lock:
            self.bags.add(users, items, w)
            if t is not None:
                self.timestamps.record(self.bags.user_indices(users), self.bags.item_indices(items), t)
        if self.plugins.observes("interactions_recorded"):
            times = None if t is None else [None if x != x else x for x in t.tolist()]  # NaN -> None
            self.plugins.notify(
                "interactions_recorded", engine=self, users=users, items=items, weights=w.tolist(), timestamps=times
            )

    def add_interaction(
        self, user: str, item: str, weight: float | None = None, *, kind: str | None = None, timestamp=None
    ) -> None:
        """Record one interaction; it counts in ``user``'s next recommendation."""
        self.add_interactions(
            [user],
            [item],
            None if weight is None else [weight],
            kinds=None if kind is None else [kind],
            timestamps=None if timestamp is None else [timestamp],
        )

    def remove_interaction(self, user: str, item: str) -> bool:
        """Remove a (user, item) pair from the bag (and its time); False if it was not there."""
        with self._write_lock:
            removed = self.bags.remove([user], [item]) == 1
            if removed:
                self.timestamps.forget(self.bags.user_indices([user]), self.bags.item_indices([item]))
            return removed

    def apply_activities(self, mapped) -> dict:
        """Apply mapped activities (:class:`~backpack.jsonld.activities.Mapped`): interactions are
        added with their weights and times, Undo removals taken out. Returns the counts."""
        adds = mapped.interactions
        if adds:
            timed = [a.timestamp for a in adds]
            self.add_interactions(
                [a.user for a in adds],
                [a.item for a in adds],
                [a.weight for a in adds],
                timestamps=None if all(t is None for t in timed) else timed,
            )
        removed = sum(self.remove_interaction(r.user, r.item) for r in mapped.removals)
        return {"interactions": len(adds), "undone": len(mapped.removals), "removed": removed}

    def load_matrix(self, user_items, user_ids: Sequence[str], item_ids: Sequence[str], *, timestamps=None) -> None:
        """Replace all bags with a users x items matrix (bulk import).

        ``timestamps``, if given, holds one time per stored entry of
        ``user_items`` in its stored order (a CSR, CSC or COO matrix), or is
        a matrix of times with the same structure. Item indices change
        meaning, so the fitted model is dropped: call ``fit`` again before
        asking for recommendations. A fit already running on the old bags is
        refused when it finishes (:class:`StaleModelError`).
        """
        timed = None if timestamps is None else _timed_entries(user_items, timestamps)
        with self._write_lock:
            self.bags.load(user_items, user_ids, item_ids)
            if timed is None:
                self.timestamps.clear()
            else:
                self.timestamps.replace(*timed)
            with self._model_lock:
                self._generation += 1
                self._served = None

    def ingest(self, documents, *, policy: str = "error") -> dict:
        """Take JSON-LD in any mixture: activities become interactions (``Undo`` removes), objects
        become item descriptions, actors become users (see :mod:`backpack.jsonld.records`).

        ``documents`` is a document (dict), raw JSON (str or bytes: flat AS2
        activities take the fast path), or a list of them. All or nothing: a
        document that cannot be mapped raises before anything is stored.
        Returns the counts.
        """
        from backpack.jsonld.fast_path import expand_many
        from backpack.jsonld.processing import expand_documents

        batch = documents if isinstance(documents, list) else [documents]
        raw = [d for d in batch if isinstance(d, (str, bytes))]
        parsed = [d for d in batch if not isinstance(d, (str, bytes))]
        nodes = (expand_many(raw) if raw else []) + (expand_documents(parsed, policy=policy) if parsed else [])
        records = self.mapper.map(nodes)
        self._store_items(records.items)
        self.user_descriptions.put({u.id: u.node for u in records.users})
        counts = self.apply_activities(records.activities)
        return {**counts, "items": len(records.items), "users": len(records.users)}

    def put_items(self, documents, *, expanded: bool = False, policy: str = "error") -> int:
        """Store item descriptions (JSON-LD: a node, a list of nodes or a ``@graph`` document).

        Nodes are expanded (a node without ``@context`` is read with
        schema.org's and Backpack's, :data:`backpack.jsonld.processing.DEFAULT_CONTEXT`;
        ``expanded=True`` says they already are) and kept expanded. Each
        needs an absolute IRI as ``@id`` and an item type (schema.org
        ``3DModel``, AS2 ``Image``, ...): otherwise a
        :class:`~backpack.jsonld.activities.MappingError` names the node and
        nothing is stored. Each item gets an index even if nobody has
        interacted with it, so after the next fit a hybrid model can
        recommend it; its type becomes its kind (``item_kind=``). Returns
        how many were stored. Call :meth:`fit_content` or
        :meth:`fit_features` to (re)build the content indexes.
        """
        records = self.mapper.map(self._expanded(documents, expanded, policy), only="items")
        self._store_items(records.items)
        return len(records.items)

    def put_users(self, documents, *, expanded: bool = False, policy: str = "error") -> int:
        """Store user descriptions: actors (AS2 ``Person``, ``Service``, ...; schema.org ``Person``), as
        :meth:`put_items` stores items. Returns how many were stored."""
        records = self.mapper.map(self._expanded(documents, expanded, policy), only="users")
        self.user_descriptions.put({u.id: u.node for u in records.users})
        return len(records.users)

    @staticmethod
    def _expanded(documents, expanded: bool, policy: str) -> list:
        from backpack.jsonld.processing import expand_documents

        if not expanded:
            return expand_documents(documents, policy=policy)
        if isinstance(documents, dict):
            return [documents]
        if not isinstance(documents, list):
            raise InvalidInputError(
                f"expanded JSON-LD must be a node or a list of nodes, not {type(documents).__name__}"
            )
        return documents

    def _store_items(self, items) -> None:
        if not items:
            return
        self.item_descriptions.put({record.id: record.node for record in items})
        with self._write_lock:
            self.bags.add_items([record.id for record in items])
        self.set_item_kinds([record.id for record in items], [record.kind for record in items])

    def fit_content(self, task: str = "text-embedding", *, show_progress: bool = False, **task_options):
        """Embed every item description (name, description, keywords, tags) and swap in a content index.

        ``task`` is a model task that has ``embed(texts)`` (default: the
        text-embedding task); ``task_options`` go to it (``backend="iree"``,
        ``batch_size=``). Returns the :class:`~backpack.content.index.ContentIndex`.
        """
        from backpack.content.index import ContentIndex
        from backpack.content.text import item_text
        from backpack.models.tasks import get_task

        docs = self.item_descriptions.snapshot()
        if not docs:
            raise NotFittedError("no item descriptions to embed: call engine.put_items(...) first")
        embedder = get_task(task, self.plugins, **task_options)
        if not callable(getattr(embedder, "embed", None)):
            raise InvalidInputError(f"model task {task!r} has no embed(texts): it cannot build a content index")
        ids = list(docs)
        vectors = call_plugin(
            self.plugins.lookup("model_tasks", task),
            "embed",
            embedder.embed,
            [item_text(docs[i]) for i in ids],
            show_progress=show_progress,
        )
        self.content = ContentIndex(ids, vectors, task=task, num_threads=self.num_threads)
        return self.content

    def fit_features(self, *, similarity: str = "cosine", k: int = 100):
        """Index every item description's features (types, keywords, tags, creator, licence, genre,
        scene features) for content similarity without a neural model; returns the FeatureIndex."""
        from backpack.content.features import FeatureIndex, item_features

        docs = self.item_descriptions.snapshot()
        if not docs:
            raise NotFittedError("no item descriptions to index: call engine.put_items(...) first")
        self.features = FeatureIndex(
            {item: item_features(doc) for item, doc in docs.items()},
            similarity=similarity,
            k=k,
            num_threads=self.num_threads,
        )
        return self.features

    def _content_matrix(self, n_items: int, source: str = "auto") -> np.ndarray | None:
        """Content vectors aligned to item indices 0..n_items-1 (zero rows: no description), or None.

        ``source``: ``"text"`` the text-embedding index (:meth:`fit_content`),
        ``"features"`` the feature index's vectors (:meth:`fit_features`),
        ``"auto"`` the text index if there is one, else the features.
        """
        if source not in ("auto", "text", "features"):
            raise InvalidInputError(f"the content source must be 'auto', 'text' or 'features', got {source!r}")
        index = (
            self.content
            if source == "text"
            else self.features
            if source == "features"
            else (self.content if self.content is not None else self.features)
        )
        return None if index is None else index.aligned(self.bags.item_ids(np.arange(n_items)))

    def set_item_kinds(self, items: Sequence[str], kinds: Sequence[str] | str) -> None:
        """Say what ``items`` are (avatar, prop, world, ...), for ``item_kind=`` on recommendation calls."""
        self.item_kinds.set(items, kinds)

    # -- fitting --------------------------------------------------------------

    def fit(self, algorithm: str = "itemknn", *, show_progress: bool = False, **params) -> Recommender:
        """Fit ``algorithm`` (a name registered by a plugin) on a snapshot of the bags and swap it in.

        If the fit fails the model in service stays; a plugin's own failure is
        a :class:`~backpack.plugins.PluginError` naming the plugin. If
        :meth:`load_matrix` replaced the bags while the fit ran, the new model
        is refused with :class:`~backpack.errors.StaleModelError` (its item
        indices would name other items).
        """
        registration = self.plugins.algorithm(algorithm)
        if accepts(registration.value, "num_threads"):
            params.setdefault("num_threads", self.num_threads)
        model = create_algorithm(registration, params)
        with self._write_lock:
            generation = self._generation
            user_items = self.bags.to_csr()
            times = self.timestamps.as_csr(user_items) if wants_timestamps(model) else None
        embeddings = (
            self._content_matrix(user_items.shape[1], getattr(model, "content_source", "auto"))
            if wants(model, "item_embeddings")
            else None
        )
        start = time.perf_counter()
        fit_model(
            registration, model, user_items, timestamps=times, item_embeddings=embeddings, show_progress=show_progress
        )
        served = _Served(
            self._on_backend(model), registration, int(call_plugin(registration, "n_items", lambda: model.n_items))
        )
        with self._model_lock:
            if generation != self._generation:
                raise StaleModelError(
                    f"the bags were replaced (load_matrix) while {algorithm!r} was fitting: "
                    "that model was fitted on the old items and was not put in service; fit again"
                )
            self._served = served  # one reference swap: concurrent readers see old or new
        self.plugins.notify(
            "fit_finished", engine=self, algorithm=algorithm, model=model, seconds=time.perf_counter() - start
        )
        return model

    @property
    def model(self) -> Recommender:
        """The model in service."""
        return self._serving().model

    def install_model(self, algorithm: str, model: Recommender) -> None:
        """Serve an already fitted ``model`` of ``algorithm`` (e.g. one read from disk).

        The model must have been fitted on these bags' item indices (a model
        fitted before later interactions were added is fine: ids only append).
        """
        registration = self.plugins.algorithm(algorithm)
        if not isinstance(model, Recommender):
            raise InvalidInputError(f"install_model needs a backpack.Recommender, got {type(model).__name__}")
        n_items = int(call_plugin(registration, "n_items", lambda: model.n_items))
        if n_items > self.bags.n_items:
            raise StaleModelError(
                f"the {algorithm!r} model knows {n_items} items but the bags hold "
                f"{self.bags.n_items}: it was fitted on other data"
            )
        served = _Served(self._on_backend(model), registration, n_items)
        with self._model_lock:
            self._served = served

    def serve_on(self, backend=None, **options) -> None:
        """Serve factor models (ALS, BPR, embeddings) through a model backend, or the native core again.

        ``backend`` is a registered backend name (``"onnx"``, ``"iree"``), a
        :class:`~backpack.models.backends.ModelBackend`, or None for the native
        core; ``options`` go to the backend (``threads=``, ``cache_dir=``).
        The model in service is exported and loaded now (IREE compiles it, or
        takes it from its cache) and swapped in; later fits are served the
        same way. Other models keep being served by the native core.
        """
        from backpack.models.backends import ModelBackend, get_backend

        if backend is not None and not isinstance(backend, ModelBackend):
            backend = get_backend(backend, self.plugins, **options)
        self._backend = backend
        served = self._served
        if served is not None:
            moved = _Served(self._on_backend(served.model), served.registration, served.n_items)
            with self._model_lock:
                if self._served is served:  # a fit that finished meanwhile already used the new backend
                    self._served = moved

    @property
    def serving(self) -> dict:
        """What answers recommendations: ``{"algorithm": name or None, "backend": "native" or a backend name}``."""
        from backpack.models.served import BackendServedModel

        served = self._served
        if served is None:
            return {"algorithm": None, "backend": None}
        backend = served.model.backend.name if isinstance(served.model, BackendServedModel) else "native"
        return {"algorithm": served.registration.name, "backend": backend}

    def _on_backend(self, model: Recommender) -> Recommender:
        """``model`` as it should be served: wrapped for the chosen backend when it is a factor model."""
        from backpack.algorithms.factor_model import FactorModel
        from backpack.models.served import BackendServedModel

        native = model.native if isinstance(model, BackendServedModel) else model
        if self._backend is None:
            return native
        if not isinstance(native, FactorModel):
            log.warning(
                "%s models are served by the native core: only factor models (als, bpr, embeddings) "
                "run on model backends",
                type(native).__name__,
            )
            return native
        return BackendServedModel(native, self._backend)

    def bag_state(self) -> BagState:
        """One consistent copy of the bags, their ids, the latest times and the item kinds, taken
        while no write is applied (what a snapshot or an evaluation split needs)."""
        with self._write_lock:
            m = self.bags.to_csr()
            return BagState(
                m,
                self.bags.user_ids(np.arange(m.shape[0])),
                self.bags.item_ids(np.arange(m.shape[1])),
                self.timestamps.snapshot(),
                self.item_kinds.table(),
            )

    def served_model(self) -> tuple[str, Recommender] | None:
        """``(algorithm, model)`` of the model in service (the native one when served on a backend), or None."""
        from backpack.models.served import BackendServedModel

        served = self._served
        if served is None:
            return None
        model = served.model.native if isinstance(served.model, BackendServedModel) else served.model
        return served.registration.name, model

    def save(self, path) -> None:
        """Make this engine the state of the data directory ``path`` (created if need be): a new
        snapshot of its bags, timestamps, kinds and descriptions, with the model in service saved
        under its algorithm's name and made active (see :mod:`backpack.engine.data_dir`)."""
        with DataDir(path, create=True, plugins=self.plugins) as data, data.writing("Engine.save"):
            served = self.served_model()
            data.commit_snapshot(self, model=None if served is None else NewModel(served[0], {}))

    @classmethod
    def open(cls, path, *, model: str | None = None, load_model: bool = True, **engine_args) -> Engine:
        """An engine with the state of the data directory ``path`` (see :meth:`save`), serving the
        model labelled ``model`` (default: the active one; none with ``load_model=False``)."""
        engine = cls(**engine_args)
        with DataDir(path, plugins=engine.plugins) as data:
            data.load_into(engine, model=model, load_model=load_model)
        return engine

    def _serving(self) -> _Served:
        served = self._served
        if served is None:
            raise NotFittedError("the engine has no model yet: call engine.fit() first")
        return served

    # -- recommendations ------------------------------------------------------

    # Every call takes ``items`` (only these may come back), ``exclude`` (these
    # never do) and ``item_kind`` (only items of this kind, see set_item_kinds).

    def recommend(
        self,
        user: str,
        n: int = 10,
        *,
        filter_owned: bool = True,
        items: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        item_kind: str | None = None,
    ) -> list[Recommendation]:
        """Top-``n`` items for ``user`` from the live bag; an unknown user gets popular items."""
        return self.recommend_batch(
            [user], n, filter_owned=filter_owned, items=items, exclude=exclude, item_kind=item_kind
        )[0]

    def recommend_batch(
        self,
        users: Sequence[str],
        n: int = 10,
        *,
        filter_owned: bool = True,
        items: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        item_kind: str | None = None,
    ) -> list[list[Recommendation]]:
        """Top-``n`` for each user, in one multi-threaded call."""
        served = self._serving()
        rows = self.bags.rows(self.bags.user_indices(users))
        return self._recommend_rows(served, rows, n, filter_owned, items, exclude, item_kind)

    def recommend_bag(
        self,
        items: Sequence[str],
        weights=None,
        n: int = 10,
        *,
        filter_owned: bool = True,
        item_kind: str | None = None,
    ) -> list[Recommendation]:
        """Top-``n`` for an ad-hoc bag of item ids that belongs to no stored user."""
        served = self._serving()
        idx = self._known_items(served, items)
        w = np.ones(idx.size, dtype=np.float32) if weights is None else weight_array(weights, idx.size)
        # one ad-hoc row (a repeated item adds up), scored like a stored user's bag
        row = sp.csr_matrix((w, (np.zeros(idx.size, np.int32), idx)), shape=(1, served.n_items), dtype=np.float32)
        return self._recommend_rows(served, row, n, filter_owned, None, None, item_kind)[0]

    def similar_items(
        self,
        item: str,
        n: int = 10,
        *,
        items: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        item_kind: str | None = None,
        based_on: str = "auto",
    ) -> list[Recommendation]:
        """The ``n`` items most like ``item`` (never ``item`` itself).

        ``based_on``: ``"interactions"`` asks the fitted model, ``"content"``
        the text-embedding index (:meth:`fit_content`), ``"features"`` the
        feature index (:meth:`fit_features`; both give source
        ``"content"``), ``"auto"`` (default) the model unless nobody has
        interacted with ``item`` yet and it is indexed (cold start; text
        embeddings first, then features).
        """
        if based_on not in ("auto", "interactions", "content", "features"):
            raise InvalidInputError(
                f"based_on must be 'auto', 'interactions', 'content' or 'features', got {based_on!r}"
            )
        if based_on == "auto" and self._is_cold(item):
            based_on = "content" if self.content is not None and item in self.content else "features"
        if based_on == "features":
            return self._similar_by_features(item, n, items, exclude, item_kind)
        if based_on == "content":
            return self._similar_by_content(item, n, items, exclude, item_kind)
        served = self._serving()
        idx = self._known_items(served, [item])
        ids, scores = call_plugin(
            served.registration,
            "similar_items",
            served.model.similar_items,
            idx,
            n,
            items=self._allowed(served, items, item_kind),
            filter_items=self._item_filter(served, exclude),
        )
        return self._named(ids, scores, served)[0]

    def _is_cold(self, item: str) -> bool:
        """Whether ``item`` is content-indexed but has nothing the model could know it by."""
        served = self._served
        if not any(index is not None and item in index for index in (self.content, self.features)):
            return False
        idx = self.bags.item_index(item)
        if served is None or idx < 0 or idx >= served.n_items:
            return True
        return self.bags.item_user_count(item) == 0

    def _similar_by_content(self, item, n, items, exclude, item_kind) -> list[Recommendation]:
        if self.content is None:
            raise NotFittedError("no content index: call engine.fit_content() after put_items()")
        allowed = self._allowed_ids(items, item_kind)
        found = self.content.similar(item, check_count(n, "n"), allowed=allowed, denied=exclude or ())
        return [Recommendation(i, s, "content") for i, s in found]

    def _similar_by_features(self, item, n, items, exclude, item_kind) -> list[Recommendation]:
        if self.features is None:
            raise NotFittedError("no feature index: call engine.fit_features() after put_items()")
        allowed, denied = self._allowed_ids(items, item_kind), set(exclude or ())
        n = check_count(n, "n")
        found = self.features.similar(item, len(self.features))
        keep = [(i, s) for i, s in found if i not in denied and (allowed is None or i in allowed)]
        return [Recommendation(i, s, "content") for i, s in keep[:n]]

    def _allowed_ids(self, items, item_kind) -> set[str] | None:
        """Item ids a content result may hold: ``items`` and the items of ``item_kind`` (None: any)."""
        allowed = None if items is None else set(items)
        if item_kind is not None:
            of_kind = set(self.bags.item_ids(self.item_kinds.indices(item_kind, self.bags)))
            allowed = of_kind if allowed is None else allowed & of_kind
        return allowed

    # -- ActivityStreams out ----------------------------------------------------

    def recommend_collection(self, user: str, n: int = 10, **filters) -> dict:
        """:meth:`recommend` as a compacted AS2 ``OrderedCollection`` (see backpack.jsonld.as2_output)."""
        from backpack.jsonld.as2_output import recommendations_collection

        served = self._served
        return recommendations_collection(
            self.recommend(user, n, **filters), for_user=user, algorithm=served.registration.name if served else None
        )

    def similar_collection(self, item: str, n: int = 10, **filters) -> dict:
        """:meth:`similar_items` as a compacted AS2 ``OrderedCollection``."""
        from backpack.jsonld.as2_output import recommendations_collection

        return recommendations_collection(self.similar_items(item, n, **filters), similar_to=item)

    # -- internals ------------------------------------------------------------

    def _recommend_rows(self, served: _Served, rows, n, filter_owned, items, exclude, item_kind):
        allowed, denied = self._allowed(served, items, item_kind), self._item_filter(served, exclude)
        ids, scores = call_plugin(
            served.registration, "recommend_rows", served.model.recommend_rows, rows, n, filter_owned, allowed, denied
        )
        return self._named(ids, scores, served)

    def _allowed(self, served: _Served, items, item_kind: str | None) -> np.ndarray | None:
        """Indices a result may hold: ``items`` and the items of ``item_kind`` (None: any)."""
        allowed = self._item_filter(served, items)
        if item_kind is None:
            return allowed
        of_kind = self.item_kinds.indices(item_kind, self.bags)
        of_kind = of_kind[of_kind < served.n_items]
        return of_kind if allowed is None else np.intersect1d(allowed, of_kind)

    def interaction_weights(self, count: int, weights=None, kinds=None) -> np.ndarray:
        """The float32 weights ``add_interactions`` would record for ``count`` interactions given
        ``weights`` or ``kinds`` (checked the same way): what a durable log must store."""
        return weight_array(self._weights(count, weights, kinds), count)

    def _weights(self, count: int, weights, kinds) -> np.ndarray | float:
        if kinds is None:
            return 1.0 if weights is None else weights
        if weights is not None:
            raise InvalidInputError("pass weights or kinds, not both")
        kinds = [kinds] if isinstance(kinds, str) else list(kinds)
        unknown = sorted({k for k in kinds if k not in self.kind_weights})
        if unknown:
            raise InvalidInputError(f"unknown interaction kind(s) {unknown}; known: {sorted(self.kind_weights)}")
        if len(kinds) != count:
            raise InvalidInputError(f"got {count} interactions but {len(kinds)} kinds")
        return np.array([self.kind_weights[k] for k in kinds], dtype=np.float32)

    def _known_items(self, served: _Served, items: Sequence[str]) -> np.ndarray:
        idx = self.bags.item_indices(items)
        unknown = [it for it, i in zip(items, idx.tolist()) if i < 0 or i >= served.n_items]
        if unknown:
            raise UnknownItemError(
                f"unknown item(s) {unknown[:5]}: not seen before the last fit (refit to include new items)"
            )
        return idx

    def _item_filter(self, served: _Served, items: Sequence[str] | None) -> np.ndarray | None:
        if items is None:
            return None
        idx = self.bags.item_indices(items)
        # Items unknown to the model can never be recommended, so they filter nothing.
        return idx[(idx >= 0) & (idx < served.n_items)]

    def _named(self, ids: np.ndarray, scores: np.ndarray, served: _Served) -> list[list[Recommendation]]:
        # Whole-array steps, then one map over the flat lists: this runs for every served list,
        # and per-row Python loops cost more than the core's scoring did.
        valid = ids >= 0  # -1 pads a row the catalogue could not fill
        fills = np.asarray(call_plugin(served.registration, "is_fill", served.model.is_fill, scores), dtype=bool)
        sources = np.where(fills[valid], "popular", "personal").tolist()
        # tuple.__new__ straight from C: the named tuple's own __new__ is a Python call per item
        flat = list(
            map(
                tuple.__new__,
                repeat(Recommendation),
                zip(self.bags.item_ids(ids[valid]), scores[valid].tolist(), sources),
            )
        )
        out, start = [], 0
        for count in valid.sum(axis=1).tolist():
            out.append(flat[start : start + count])
            start += count
        return out


def _timed_entries(user_items, timestamps):
    """(users, items, times) of the stored entries of ``user_items`` with their times."""
    if not sp.issparse(user_items) or user_items.format not in ("csr", "csc", "coo"):
        raise InvalidInputError("timestamps need user_items as a CSR, CSC or COO matrix (their entry order)")
    entries = sp.coo_matrix(user_items)
    t = timestamps.data if sp.issparse(timestamps) else timestamps
    t = timestamp_array(t, entries.nnz)
    held = entries.data != 0
    return entries.row[held], entries.col[held], t[held]
