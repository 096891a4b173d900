"""Namespace collisions between JSON-LD contexts, and what to do about them.

JSON-LD lets a later context silently rebind a term an earlier one defined
(``name`` is ``as:name`` in ActivityStreams and ``schema:name`` in
schema.org), which turns a mapping bug into wrong data. Backpack compares
contexts term by term: a term or prefix bound to two different IRIs, or a
protected term given any other definition, is a :class:`Collision` naming
the term, both IRIs and both sources. A policy decides what happens:

- ``"error"`` (default): raise :class:`NamespaceCollisionError`;
- ``"keep_first"``: the earlier binding stays, the newcomer's is dropped;
- ``"keep_last"``: the newcomer's binding wins (JSON-LD's own rule);
- ``"namespace"``: the earlier binding stays and the newcomer's is renamed to
  ``prefix:local`` (``prefix_term`` for a prefix), with ``prefix`` derived from
  the newcomer's source, so both stay usable.

Every policy but ``"error"`` logs the collision and its action at WARNING.
Term IRIs are computed by PyLD itself (so ``as:name``, ``@vocab``-relative
and imported definitions resolve exactly as expansion will); only the
top-level terms of each context are compared, scoped contexts are left to
PyLD, whose protected-term errors :mod:`backpack.jsonld.processing` turns into the
same typed error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from pyld import jsonld

from backpack.errors import InvalidInputError, NamespaceCollisionError

log = logging.getLogger("backpack.jsonld.processing")

POLICIES = ("error", "keep_first", "keep_last", "namespace")
_GEN_DELIMS = (":", "/", "?", "#", "[", "]", "@")

#: ``load(url) -> document`` resolves context URLs while contexts are compared
Load = Callable[[str], dict]


def pyld_options(load: Load, cache=None) -> dict:
    """PyLD options resolving context URLs with ``load`` and caching processed contexts in ``cache``.

    PyLD's default cache of processed contexts is process-wide and keyed by
    URL alone, so two loaders serving different documents under one URL (a
    rewritten plugin vocabulary, a test) would see each other's: each loader
    passes its own ``cache`` (a fresh bounded one if None). The resolver is
    new on every call because PyLD keeps an unbounded per-operation cache in it.
    """
    from cachetools import LRUCache  # PyLD's own dependency
    from pyld.context_resolver import ContextResolver

    def document_loader(url, options=None):
        # "static": PyLD keeps the processed context in ``cache`` and never loads or re-processes it
        # again (the cache belongs to one loader, whose documents do not change under a URL)
        return {"contextUrl": None, "documentUrl": url, "document": load(url), "tag": "static"}

    cache = LRUCache(maxsize=256) if cache is None else cache
    return {"documentLoader": document_loader, "contextResolver": ContextResolver(cache, document_loader)}


@dataclass(frozen=True)
class ContextSource:
    """A context to compare and where it came from.

    ``label`` is what messages call it (a context URL with its plugin, or
    "inline context #2 of the document"); ``prefix`` is the prefix the
    ``"namespace"`` policy renames its terms under.
    """

    context: object  # a context URL, an inline context dict, or a list of them
    label: str
    prefix: str


@dataclass(frozen=True)
class Collision:
    """One term (or prefix) two contexts bind differently, and what was done about it."""

    term: str
    kind: str  # "term", "prefix" or "protected"
    first_iri: str
    first_source: str
    new_iri: str
    new_source: str
    action: str  # "error", "kept first", "kept last", or "renamed to <name>"

    def describe(self) -> str:
        what = {"term": "term", "prefix": "prefix", "protected": "protected term"}[self.kind]
        return (
            f"{what} {self.term!r} is bound to <{self.first_iri}> by {self.first_source} "
            f"and to <{self.new_iri}> by {self.new_source}"
        )


@dataclass
class MergedContext:
    """The effective context of several contexts under a policy, and the collisions found."""

    context: dict
    collisions: list[Collision]


def check_policy(policy: str) -> str:
    """``policy`` if it is one of :data:`POLICIES`, else an InvalidInputError listing them."""
    if policy not in POLICIES:
        raise InvalidInputError(f"unknown collision policy {policy!r}; choose one of {', '.join(POLICIES)}")
    return policy


def term_table(context, options: dict, base: dict | None = None) -> dict[str, dict]:
    """PyLD's term definitions (``@id`` absolute) after processing ``context`` on top of ``base``.

    ``base`` is a flat context (as :func:`merge_contexts` builds) that lets an
    inline context use prefixes defined before it (``"sensitive": "as:sensitive"``).
    """
    processor = jsonld.JsonLdProcessor()
    active = processor._get_initial_context(options)
    try:
        if base:
            active = processor.process_context(active, base, options)
        active = processor.process_context(active, context, options)
    except jsonld.JsonLdError as exc:
        raise _unwrap(exc) from None
    table = {term: dict(mapping) for term, mapping in active["mappings"].items()}
    for key in ("@vocab", "@language", "@base"):
        if key in active:
            table[key] = {"@id": active[key]}
    return table


def defined_terms(context, table: dict[str, dict]) -> list[str]:
    """The terms ``context`` itself defines: all of a remote context's, an inline one's own keys."""
    if isinstance(context, dict):
        inner = context.get("@context", context)
        if isinstance(inner, dict):
            return [t for t in inner if not t.startswith("@") and t in table]
    return [t for t in table if not t.startswith("@")]


def merge_contexts(
    sources: list[ContextSource], *, load: Load | None = None, options: dict | None = None, policy: str = "error"
) -> MergedContext:
    """One flat context equivalent to ``sources`` in order, with collisions resolved by ``policy``.

    The result uses absolute IRIs only, so it can replace the documents'
    ``@context`` wholesale; definitions keep their coercions, containers and
    protection. Context URLs are resolved with ``load``, or with PyLD
    ``options`` (a loader's, so its cache of processed contexts is reused).
    """
    check_policy(policy)
    if options is None:
        if load is None:
            raise InvalidInputError("merge_contexts needs load= or options= to resolve context URLs")
        options = pyld_options(load)
    merged: dict[str, dict] = {}  # term -> PyLD mapping
    owner: dict[str, str] = {}  # term -> label of the source whose binding is in `merged`
    settings: dict[str, object] = {}
    collisions: list[Collision] = []
    for source in sources:
        table = term_table(source.context, options, base=flat_context(merged, settings, protect=False))
        for key in ("@vocab", "@language", "@base"):
            if key in table:
                settings[key] = table[key]["@id"]
        for term in defined_terms(source.context, table):
            new = table[term]
            old = merged.get(term)
            if old is None or not _differs(old, new):
                if old is None or not old.get("protected"):
                    merged[term], owner[term] = new, source.label
                continue
            collision = _collision(term, old, owner[term], new, source.label)
            merged, owner, collision = _apply(policy, collision, merged, owner, new, source)
            collisions.append(collision)
    return MergedContext(flat_context(merged, settings, protect=True), collisions)


@dataclass
class VocabularyCheck:
    """What :func:`compare_vocabularies` found: per source label the document to serve instead
    (rewritten by the policy), the vocabularies refused under ``"error"``, and every collision."""

    rewritten: dict[str, dict]
    refused: dict[str, Collision]
    collisions: list[Collision]


def compare_vocabularies(
    sources: list[ContextSource],
    *,
    load: Load,
    policy: str = "error",
    same_owner: Callable[[ContextSource, ContextSource], bool] | None = None,
) -> VocabularyCheck:
    """Check separately served vocabularies against each other (at plugin load time).

    Each vocabulary is compared with every earlier one; prefixes always, terms
    only between vocabularies ``same_owner`` says come from different owners
    (one plugin's own vocabularies, such as ActivityStreams and schema.org,
    are designed to be used apart and both define ``name``). Returns, per
    source label, the rewritten context document to serve instead and the
    collisions. Under ``"error"`` nothing is raised here: the newcomer is
    listed as refused (its first collision says why) and nothing it defines
    is compared further, so one bad plugin cannot take the others down.
    """
    check_policy(policy)
    options = pyld_options(load)
    tables = [term_table(source.context, options) for source in sources]
    check = VocabularyCheck({}, {}, [])
    collisions = check.collisions
    for i, (source, table) in enumerate(zip(sources, tables)):
        changed = dict(table)
        found = False
        for term in [t for t in table if not t.startswith("@")]:
            if source.label in check.refused:
                break
            for earlier, earlier_table in zip(sources[:i], tables[:i]):
                if earlier.label in check.refused:
                    continue
                old = earlier_table.get(term)
                if old is None or not _differs(old, table[term]):
                    continue
                if not (_is_prefix(old) or _is_prefix(table[term])) and same_owner and same_owner(earlier, source):
                    continue
                collision = _collision(term, old, earlier.label, table[term], source.label)
                if policy == "error":
                    collision = _replace(collision, "error")
                    check.refused[source.label] = collision
                elif policy == "keep_last":  # nothing to rewrite: each vocabulary is served on its own
                    collision = _replace(collision, "kept last")
                    _log(collision)
                elif term in changed:
                    _, _, collision = _apply(
                        policy, collision, {term: old}, {term: earlier.label}, table[term], source, served=changed
                    )
                    found = True
                collisions.append(collision)
                break
        if found:
            check.rewritten[source.label] = {
                "@context": flat_context(
                    {t: m for t, m in changed.items() if not t.startswith("@")},
                    {k: changed[k]["@id"] for k in ("@vocab", "@language", "@base") if k in changed},
                    protect=True,
                )
            }
    return check


def flat_context(mappings: dict[str, dict], settings: dict, *, protect: bool) -> dict:
    """A context document body defining ``mappings`` with absolute IRIs (PyLD mapping -> JSON-LD)."""
    context: dict = {"@version": 1.1}
    context.update({k: v for k, v in settings.items() if v is not None})
    for term, mapping in mappings.items():
        iri = mapping["@id"]
        if isinstance(iri, str) and iri.startswith("@") and not mapping.get("reverse"):
            context[term] = iri  # a keyword alias such as "id": "@id"
            continue
        definition: dict = {"@reverse" if mapping.get("reverse") else "@id": iri}
        for key in ("@type", "@language", "@direction", "@nest", "@index", "@context"):
            if key in mapping:
                definition[key] = mapping[key]
        if "@container" in mapping:
            container = list(mapping["@container"])
            definition["@container"] = container[0] if len(container) == 1 else container
        if mapping.get("_prefix") and ":" not in term and "/" not in term:
            definition["@prefix"] = True
        if protect and mapping.get("protected"):
            definition["@protected"] = True
        context[term] = definition
    return context


# -- policies -----------------------------------------------------------------


def _apply(
    policy: str,
    collision: Collision,
    merged: dict,
    owner: dict,
    new: dict,
    source: ContextSource,
    served: dict | None = None,
):
    """Carry out ``policy`` for one collision; ``served`` is the newcomer's own table when it is rewritten."""
    term = collision.term
    if policy == "error":
        raise NamespaceCollisionError(
            f"namespace collision: {collision.describe()}. Drop or rename one of the definitions, or choose "
            "a collision policy (keep_first, keep_last, namespace)",
            _replace(collision, "error"),
        )
    if policy == "keep_first":
        collision = _replace(collision, "kept first")
        if served is not None:
            del served[term]
    elif policy == "keep_last":
        collision = _replace(collision, "kept last")
        merged, owner = dict(merged), dict(owner)
        merged[term], owner[term] = dict(new, protected=False) if served is None else new, source.label
    else:
        taken = served if served is not None else merged
        name, prefix, namespace = _namespaced_name(term, new, source.prefix, taken)
        collision = _replace(collision, f"renamed to {name!r}")
        if served is not None:
            del served[term]
        if prefix is not None:
            taken[prefix] = {"@id": namespace, "_prefix": True, "reverse": False, "protected": False}
        taken[name] = dict(new, _prefix=prefix is None and _is_prefix(new))
        if served is None:
            owner[name] = source.label
            if prefix is not None:
                owner[prefix] = source.label
    _log(collision)
    return merged, owner, collision


def _namespaced_name(term: str, new: dict, prefix: str, taken: dict) -> tuple[str, str | None, str]:
    """``prefix:local`` (and the prefix definition it needs) for the newcomer's binding of ``term``.

    A prefix itself is renamed ``prefix_term``: a compact IRI cannot serve as
    a prefix. The prefix gets a number if it is already bound elsewhere.
    """
    iri = new["@id"]
    if _is_prefix(new):
        return _free(f"{prefix}_{term}", taken), None, iri
    local = re.split(r"[#/:]", iri)[-1] or term
    namespace = iri[: len(iri) - len(local)]
    candidate, n = prefix, 1
    while candidate in taken and taken[candidate].get("@id") != namespace:
        n += 1
        candidate = f"{prefix}{n}"
    return f"{candidate}:{local}", (None if candidate in taken else candidate), namespace


def _free(name: str, taken: dict) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}{n}"
    return candidate


def _log(collision: Collision) -> None:
    log.warning(
        "JSON-LD namespace collision: %s; %s (%s)",
        collision.describe(),
        collision.action,
        "the newcomer is " + collision.new_source,
    )


# -- comparing bindings -------------------------------------------------------


def _differs(old: dict, new: dict) -> bool:
    """A collision: another IRI (or direction), or any change at all to a protected term."""
    if old["@id"] != new["@id"] or bool(old.get("reverse")) != bool(new.get("reverse")):
        return True
    if old.get("protected"):
        strip = ("protected", "_term_has_colon")
        return {k: v for k, v in old.items() if k not in strip} != {k: v for k, v in new.items() if k not in strip}
    return False


def _is_prefix(mapping: dict) -> bool:
    return bool(mapping.get("_prefix")) or (isinstance(mapping["@id"], str) and mapping["@id"].endswith(_GEN_DELIMS))


def _collision(term: str, old: dict, old_source: str, new: dict, new_source: str) -> Collision:
    kind = "protected" if old.get("protected") else "prefix" if _is_prefix(old) or _is_prefix(new) else "term"
    return Collision(term, kind, str(old["@id"]), old_source, str(new["@id"]), new_source, "")


def _replace(collision: Collision, action: str) -> Collision:
    return Collision(
        collision.term,
        collision.kind,
        collision.first_iri,
        collision.first_source,
        collision.new_iri,
        collision.new_source,
        action,
    )


def _unwrap(exc: BaseException) -> BaseException:
    """Backpack's own error inside PyLD's wrapping (an unknown context), else the PyLD error."""
    seen = exc
    while seen is not None:
        if isinstance(seen, InvalidInputError):
            return seen
        seen = seen.__cause__ or getattr(seen, "cause", None)
    return exc
