"""Backpack's extension points: every hook a plugin may implement.

A plugin is a module (or object) with functions marked ``@backpack.hookimpl``
and named like the hooks below, registered through the entry-point group
``backpack``. Registration hooks receive a ``register`` callable and call it
once per thing they add; Backpack records which plugin registered what, so a
clash or a failure can be reported by plugin name. Event hooks are called
after the fact and their return value is ignored; a plugin that raises in one
is reported and the engine carries on.

Algorithms, model backends, model tasks, stores, commands and the events are
consumed by this version of the engine; the other registries (vocabularies,
mappers) are collected and listed by ``backpack plugins`` so plugins can
target them now, and the features that use them read from the same registry.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("backpack")
hookimpl = pluggy.HookimplMarker("backpack")


@hookspec
def register_algorithms(register):
    """Add recommendation algorithms.

    Call ``register(name, factory, description="")`` for each; ``factory(**params)``
    returns an unfitted :class:`backpack.Recommender`. ``Engine.fit(name, **params)``
    and ``backpack fit --algorithm name`` find it by ``name``.
    """


@hookspec
def register_model_backends(register):
    """Add model-serving backends (ONNX Runtime, IREE, ...).

    Call ``register(name, cls, description="")``; ``cls(**options)`` returns a
    :class:`backpack.ModelBackend` that loads models into sessions
    (``backpack.get_backend(name)``, ``Engine.serve_on(name)``). A static
    ``available()`` on ``cls`` says whether its packages are installed.
    """


@hookspec
def register_model_tasks(register):
    """Add model tasks (text embedding, object detection, ...).

    Call ``register(name, cls, description="")``; ``cls(**options)`` returns a
    :class:`backpack.ModelTask`, which owns its pre- and post-processing and runs
    on any backend; ``cls.available()`` decides whether it is listed as available.
    """


@hookspec
def register_vocabularies(register):
    """Add JSON-LD contexts, served offline.

    Call ``register(iri, document, description="")`` with the context's IRI and
    its JSON document (a dict with an ``@context`` entry). Optional keywords:
    ``aliases=[...]``, other URLs the real server answers with the same
    document (``http://`` as well as ``https://``, a trailing slash), and
    ``prefix="ex"``, the prefix the ``namespace`` collision policy renames
    this vocabulary's clashing terms under (default: from the plugin name).
    ``backpack.jsonld.loader.ContextLoader`` serves them offline; see
    ``docs/jsonld.md``.
    """


@hookspec
def register_mappers(register):
    """Add JSON-LD mappers that turn documents into interactions, items or users.

    Call ``register(name, factory, description="")``.
    """


@hookspec
def register_stores(register):
    """Add stores: durable users, items, the interaction log, snapshots, tokens and jobs.

    Call ``register(name, factory, description="")``; ``factory(**options)``
    returns a :class:`backpack.store.base.Store`. ``backpack.store.base.open_store(name,
    **options)`` finds it by ``name``; the built-in one is ``"sqlite"``. Run
    the shared store tests (``tests/test_store.py``) against a new store.
    """


@hookspec
def register_commands(register):
    """Add ``backpack`` subcommands.

    Call ``register(name, configure, run, help="")``: ``configure(parser)`` adds
    arguments to an ``argparse`` sub-parser, ``run(args)`` does the work and
    returns an int exit code (or None for 0; anything else is a ``PluginError``).
    """


@hookspec
def interactions_recorded(engine, users, items, weights, timestamps):
    """Called after ``engine`` stored a batch of interactions (lists of equal length).

    ``timestamps`` is None when the batch came without times, else a list of
    seconds since the epoch (None for an interaction without one). A hook may
    leave out any argument it does not need.
    """


@hookspec
def fit_finished(engine, algorithm, model, seconds):
    """Called after ``engine`` fitted ``algorithm`` and put ``model`` in service."""
