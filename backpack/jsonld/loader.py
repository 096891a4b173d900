"""The offline JSON-LD document loader: registered contexts by IRI, nothing else.

:class:`ContextLoader` is a PyLD document loader (pass it as
``options["documentLoader"]`` or to ``pyld.jsonld.set_document_loader``). It
serves the contexts vocabulary plugins registered (Backpack's bundled ones
come from its built-in ``vocabularies`` plugin, registered the same way) and
any given as ``contexts=``, each parsed once and cached, and refuses every
other URL with an :class:`UnknownContextError` that says how to register
it. It never opens a connection.

URLs are matched exactly, less their fragment (which never reaches a server),
plus the aliases a registration lists (``register(iri, document,
aliases=[...])``), which are the spellings the real server answers to: there
is no guessing between http and https or trailing slashes.

At construction every registered vocabulary is checked against the others
(:func:`backpack.jsonld.collisions.compare_vocabularies`): prefixes across all
of them, terms between different plugins. Under the default ``"error"``
policy a vocabulary that collides with an earlier one is not served: asking
for it raises the :class:`NamespaceCollisionError`, and the collision is
listed against its plugin (``backpack plugins``); the other policies rewrite
the newcomer's document as :mod:`backpack.jsonld.collisions` describes.
Bundled vocabularies come first, then the others by plugin name, then
``contexts=`` in the order given.
"""

from __future__ import annotations

import copy
import json
import re
import threading
from dataclasses import dataclass
from urllib.parse import urldefrag

from backpack.errors import InvalidInputError, NamespaceCollisionError, UnknownContextError
from backpack.jsonld.collisions import Collision, ContextSource, check_policy, compare_vocabularies, pyld_options
from backpack.plugins import Plugins, get_plugins

#: the built-in plugin whose vocabularies come first when vocabularies are compared
BUILTIN_VOCABULARIES = "vocabularies"
_REGISTER_HINT = (
    "Backpack fetches no contexts at run time: register this context from a plugin's "
    "register_vocabularies hook (register(iri, document)), or pass it as "
    "ContextLoader(contexts={iri: document})"
)


@dataclass(frozen=True)
class ServedContext:
    """One context the loader serves: its IRI, document, where it came from and its aliases."""

    iri: str
    document: dict
    source: str  # "plugin 'name'" or "the contexts= argument"
    plugin: str | None
    prefix: str
    aliases: tuple[str, ...] = ()
    description: str = ""

    @property
    def label(self) -> str:
        """How collision messages name it: its IRI and its source."""
        return f"<{self.iri}> ({self.source})"


class ContextLoader:
    """A PyLD-compatible document loader serving registered contexts only.

    ``plugins`` defaults to :func:`backpack.plugins.get_plugins`; ``contexts``
    maps further IRIs to documents (a dict, or a JSON string); ``policy`` is
    the collision policy applied when the vocabularies are compared.
    """

    def __init__(self, plugins: Plugins | None = None, *, contexts: dict | None = None, policy: str = "error"):
        self.policy = check_policy(policy)
        self._plugins = plugins if plugins is not None else get_plugins()
        self._served: dict[str, ServedContext] = {}  # every accepted IRI (aliases too) -> its context
        self._refused: dict[str, NamespaceCollisionError] = {}
        self.collisions: list[Collision] = []
        self._lock = threading.Lock()
        contexts_in_order = self._registered() + [self._given(iri, doc) for iri, doc in (contexts or {}).items()]
        for served in contexts_in_order:
            self._claim(served)
        self._compare([s for s in contexts_in_order if self._served.get(_key(s.iri)) is s])
        self._cache = _LockedCache(256)  # processed contexts, this loader's documents only

    # -- the PyLD interface ---------------------------------------------------

    def __call__(self, url: str, options: dict | None = None) -> dict:
        """PyLD's document-loader call: the remote document for ``url``."""
        return {"contextUrl": None, "documentUrl": url, "document": self.document(url)}

    def options(self, **extra) -> dict:
        """Options for ``pyld.jsonld`` calls: this loader and a context cache of its own."""
        return {**pyld_options(self.document, self._cache), **extra}

    def remembered(self, key, compute):
        """``compute()``, kept under ``key`` with this loader's processed contexts (it depends only on them)."""
        value = self._cache.get(key)
        if value is None:
            value = compute()
            self._cache[key] = value
        return value

    # -- lookups --------------------------------------------------------------

    def document(self, url: str) -> dict:
        """The parsed context document served at ``url`` (a copy: callers may change it).

        Raises :class:`UnknownContextError` for a URL nothing registered and
        :class:`NamespaceCollisionError` for a vocabulary refused for a collision.
        """
        return copy.deepcopy(self.context(url).document)

    def context(self, url: str) -> ServedContext:
        """The registration serving ``url`` (see :meth:`document` for the errors)."""
        if not isinstance(url, str):
            raise InvalidInputError(f"a context URL must be a string, got {type(url).__name__}")
        key = _key(url)
        if key in self._refused:
            raise self._refused[key]
        try:
            return self._served[key]
        except KeyError:
            raise UnknownContextError(f"unknown JSON-LD context <{url}>. {_REGISTER_HINT}") from None

    def serves(self, url: str) -> bool:
        """Whether ``url`` is served (refused vocabularies are not)."""
        return isinstance(url, str) and _key(url) in self._served

    def source(self, url: str) -> str:
        """How messages name the context at ``url``: ``<iri> (plugin 'name')``."""
        return self.context(url).label

    def refused(self) -> list[NamespaceCollisionError]:
        """The errors of the vocabularies not served because of a collision (policy ``"error"``)."""
        unique: dict[int, NamespaceCollisionError] = {}
        for error in self._refused.values():
            unique.setdefault(id(error), error)
        return list(unique.values())

    def contexts(self) -> list[ServedContext]:
        """Every served context once (not once per alias), in comparison order."""
        seen: dict[int, ServedContext] = {}
        for served in self._served.values():
            seen.setdefault(id(served), served)
        return list(seen.values())

    # -- building -------------------------------------------------------------

    def _registered(self) -> list[ServedContext]:
        found = []
        for iri, reg in self._plugins.registry("vocabularies").items():
            try:
                document = _parsed(reg.value, iri, f"plugin {reg.plugin!r}")
            except InvalidInputError as exc:  # a broken plugin is reported and skipped
                self._plugins.report_error(reg.plugin, str(exc))
                continue
            aliases = tuple(reg.extra.get("aliases", ()))
            prefix = reg.extra.get("prefix") or _prefix_from(reg.plugin)
            found.append(
                ServedContext(iri, document, f"plugin {reg.plugin!r}", reg.plugin, prefix, aliases, reg.description)
            )
        found.sort(key=lambda s: (s.plugin != BUILTIN_VOCABULARIES, s.plugin or "", s.iri))
        return found

    def _given(self, iri: str, document) -> ServedContext:
        if not isinstance(iri, str) or not iri:
            raise InvalidInputError(f"contexts= keys must be context IRIs, got {iri!r}")
        return ServedContext(
            iri, _parsed(document, iri, "the contexts= argument"), "the contexts= argument", None, _prefix_from(iri)
        )

    def _claim(self, served: ServedContext) -> None:
        """Serve ``served`` under its IRI and aliases; an alias another plugin holds stays with it."""
        for i, url in enumerate((served.iri, *served.aliases)):
            key = _key(url)
            holder = self._served.get(key)
            # contexts= is the caller's explicit choice and overrides a plugin's registration
            if holder is not None and served.plugin is not None and holder.plugin != served.plugin:
                if served.plugin in self._plugins.info:
                    self._plugins.report_error(
                        served.plugin,
                        f"vocabulary <{url}> is already served by "
                        f"{holder.source}: this registration is not used for it",
                    )
                if i == 0:
                    return
                continue
            self._served[key] = served

    def _compare(self, contexts: list[ServedContext]) -> None:
        sources = [ContextSource(s.iri, s.label, s.prefix) for s in contexts]
        by_label = {s.label: s for s in contexts}
        check = compare_vocabularies(
            sources,
            load=self._raw_document,
            policy=self.policy,
            same_owner=lambda a, b: by_label[a.label].plugin == by_label[b.label].plugin,
        )
        self.collisions = check.collisions
        for label, collision in check.refused.items():
            served = by_label[label]
            error = NamespaceCollisionError(
                f"JSON-LD vocabulary {label} is not served: {collision.describe()}. Remove or rename the term "
                "in one of them, or load vocabularies with another collision policy (keep_first, keep_last, "
                "namespace)",
                collision,
            )
            for url in (served.iri, *served.aliases):
                if self._served.get(_key(url)) is served:
                    del self._served[_key(url)]
                    self._refused[_key(url)] = error
            if served.plugin in self._plugins.info:
                self._plugins.report_error(served.plugin, str(error))
        for label, document in check.rewritten.items():
            old = by_label[label]
            new = ServedContext(old.iri, document, old.source, old.plugin, old.prefix, old.aliases, old.description)
            for key, served in list(self._served.items()):
                if served is old:
                    self._served[key] = new

    def _raw_document(self, url: str) -> dict:
        # while comparing, refusals are not decided yet: every registration is visible
        return self.context(url).document


class _LockedCache:
    """A bounded cache of processed contexts that threads may share (PyLD uses ``get`` and ``[]=``)."""

    def __init__(self, maxsize: int):
        from cachetools import LRUCache  # PyLD's own dependency

        self._cache = LRUCache(maxsize=maxsize)
        self._lock = threading.Lock()

    def get(self, key, default=None):
        with self._lock:
            return self._cache.get(key, default)

    def __setitem__(self, key, value) -> None:
        with self._lock:
            self._cache[key] = value


def _key(url: str) -> str:
    """The lookup key of a context URL: the URL without its fragment."""
    return urldefrag(url)[0]


def _parsed(document, iri: str, source: str) -> dict:
    """A context document as a dict (JSON text is parsed once, here); bad ones are InvalidInputErrors."""
    if isinstance(document, (str, bytes)):
        try:
            document = json.loads(document)
        except ValueError as exc:
            raise InvalidInputError(f"context <{iri}> from {source} is not JSON: {exc}") from None
    if not isinstance(document, dict) or "@context" not in document:
        raise InvalidInputError(f'context <{iri}> from {source} must be a JSON object with an "@context" entry')
    return document


def _prefix_from(name: str) -> str:
    """A JSON-LD prefix from a plugin name or IRI: letters, digits and underscores, starting with a letter."""
    words = [w for w in re.split(r"[^A-Za-z0-9]+", name.split("://")[-1]) if w and w not in ("www", "ns", "https")]
    prefix = "_".join(words[:2]).lower() or "ctx"
    return prefix if prefix[0].isalpha() else "ctx_" + prefix


_default: tuple[dict, ContextLoader] | None = None
_default_lock = threading.Lock()


def default_loader() -> ContextLoader:
    """The loader over the process-wide plugins, rebuilt when their vocabularies change
    (a plugin registered since, or another plugin manager)."""
    global _default
    registry = get_plugins().registry("vocabularies")  # the same dict until a plugin is added
    with _default_lock:
        if _default is None or _default[0] is not registry:
            _default = (registry, ContextLoader(get_plugins()))
        return _default[1]
