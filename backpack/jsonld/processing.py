"""JSON-LD for Backpack: PyLD with offline contexts and collision checks.

Mapping and ingestion code calls these instead of ``pyld.jsonld`` directly:

- :func:`expand`, :func:`compact` and :func:`normalize` run PyLD with a
  :class:`~backpack.jsonld.loader.ContextLoader` (the process-wide one unless
  given), so only registered contexts are ever used and nothing is fetched;
- :func:`expand` first merges the document's top-level contexts under the
  collision policy (:func:`effective_context`), so a clash is a typed
  :class:`~backpack.errors.NamespaceCollisionError` naming the term, both IRIs
  and both sources, or is resolved and logged as the policy says;
- PyLD's own errors come out as Backpack's: an unknown context as
  :class:`~backpack.errors.UnknownContextError`, a protected term PyLD caught
  (in a scoped context) as NamespaceCollisionError, anything else as an
  :class:`~backpack.errors.InvalidInputError` with PyLD's code.
"""

from __future__ import annotations

import json

from pyld import jsonld as _pyld

from backpack.errors import BackpackError, ContextLimitError, InvalidInputError, NamespaceCollisionError
from backpack.jsonld.collisions import Collision, ContextSource, MergedContext, check_policy, merge_contexts
from backpack.jsonld.contexts import BACKPACK_CONTEXT, SCHEMA_CONTEXT
from backpack.jsonld.loader import ContextLoader, default_loader
from backpack.plugins import Plugins


def effective_context(document, *, loader: ContextLoader | None = None, policy: str = "error") -> MergedContext:
    """The context ``document``'s top-level ``@context`` amounts to under ``policy``, and its collisions.

    ``document`` may also be a context value itself (a URL, an inline context,
    or a list of them). The merged context has absolute IRIs only.
    """
    loader = loader or default_loader()
    check_policy(policy)
    value = document.get("@context") if isinstance(document, dict) and "@context" in document else document
    entries = value if isinstance(value, list) else [value]
    if all(entry is None or isinstance(entry, str) for entry in entries):
        # context URLs only (the common case): served documents do not change, so neither does the merge
        return loader.remembered(("merged", tuple(entries), policy), lambda: _merged(entries, loader, policy))
    return _merged(entries, loader, policy)


def _merged(entries: list, loader: ContextLoader, policy: str) -> MergedContext:
    sources: list[ContextSource] = []
    for i, entry in enumerate(entries, 1):
        if entry is None:  # a null context clears everything before it
            sources = []
        elif isinstance(entry, str):
            served = loader.context(entry)
            sources.append(ContextSource(entry, served.label, served.prefix))
        elif isinstance(entry, dict):
            sources.append(ContextSource(entry, f"inline context #{i} of the document", f"doc{i}"))
        else:
            raise InvalidInputError(f"@context entry #{i} must be a URL, an object or null, got {entry!r}")
    return _translated(merge_contexts, sources, options=loader.options(), policy=policy)


def expand(document, *, loader: ContextLoader | None = None, policy: str = "error", base: str | None = None) -> list:
    """``document`` expanded to absolute IRIs (PyLD), after its contexts were checked under ``policy``."""
    loader = loader or default_loader()
    if isinstance(document, dict) and "@context" in document:
        merged = effective_context(document, loader=loader, policy=policy)
        if merged.collisions:  # resolved by the policy: expand with the merged context
            document = {**document, "@context": merged.context}
    # PyLD resolves relative IRIs against http://example.org/base/ unless told otherwise: that would
    # silently turn "activities/1" into someone else's absolute IRI. No base (None) keeps them relative.
    options = loader.options(base=base or None)
    return _translated(_pyld.expand, document, options)


#: what the inline ``@context`` objects of one document may add up to: PyLD's expansion costs
#: grow faster than their number (2,000 in one 74 KiB document took 21-60 s of CPU)
MAX_INLINE_CONTEXTS = 32
MAX_INLINE_CONTEXT_BYTES = 64 << 10
MAX_CONTEXT_NESTING = 4


def check_inline_contexts(document, where: str = "the document") -> None:
    """:class:`ContextLimitError` if ``document``'s inline contexts exceed the limits above; one
    pass without recursion, linear in the document's size."""
    count = size = 0
    stack = [(document, 0)]
    while stack:
        node, nesting = stack.pop()
        if isinstance(node, list):
            stack.extend((child, nesting) for child in node)
            continue
        if not isinstance(node, dict):
            continue
        inner = nesting
        if "@context" in node:
            value = node["@context"]
            inline = [v for v in (value if isinstance(value, list) else [value]) if isinstance(v, dict)]
            if inline:
                inner = nesting + 1
                count += len(inline)
                size += sum(len(json.dumps(v)) for v in inline)
                if count > MAX_INLINE_CONTEXTS:
                    raise ContextLimitError(f"{where} has more than {MAX_INLINE_CONTEXTS} inline @context objects")
                if size > MAX_INLINE_CONTEXT_BYTES:
                    raise ContextLimitError(
                        f"{where}'s inline @context objects exceed {MAX_INLINE_CONTEXT_BYTES} bytes"
                    )
                if inner > MAX_CONTEXT_NESTING:
                    raise ContextLimitError(
                        f"{where} nests inline @context objects more than {MAX_CONTEXT_NESTING} deep"
                    )
        stack.extend((child, inner) for key, child in node.items() if key != "@context")


#: how a node that names no ``@context`` is read: schema.org terms, and Backpack's for the rest
DEFAULT_CONTEXT = [SCHEMA_CONTEXT, BACKPACK_CONTEXT]


def expand_documents(
    documents, *, loader: ContextLoader | None = None, policy: str = "error", default_context=DEFAULT_CONTEXT
) -> list:
    """The expanded nodes of ``documents``: one JSON-LD document (a node, or a ``@graph`` document) or a
    list of them, each with its own ``@context``; a document without one is read with
    ``default_context`` (None: none, so only absolute IRIs survive). Errors name the document."""
    if isinstance(documents, dict):
        documents = [documents]
    elif not isinstance(documents, list):
        raise InvalidInputError(f"JSON-LD documents must be objects or a list of them, not {type(documents).__name__}")
    out = []
    for number, document in enumerate(documents):
        where = f"document {number}" if len(documents) > 1 else "the document"
        if not isinstance(document, dict):
            raise InvalidInputError(f"{where} is {type(document).__name__}, not a JSON-LD object")
        check_inline_contexts(document, where)
        if "@context" not in document and default_context is not None:
            document = {"@context": default_context, **document}
        try:
            out.extend(expand(document, loader=loader, policy=policy))
        except BackpackError as exc:
            if exc.args and isinstance(exc.args[0], str):  # say which document, keep the error's type
                exc.args = (f"{where}: {exc.args[0]}", *exc.args[1:])
            raise
    return out


def compact(document, context, *, loader: ContextLoader | None = None, policy: str = "error") -> dict:
    """``document`` compacted with ``context`` (a URL, an inline context or a list of them).

    ``context`` is checked for collisions like a document's; under a policy
    other than ``"error"`` a colliding one is replaced by the merged context.
    """
    loader = loader or default_loader()
    merged = effective_context(context, loader=loader, policy=policy)
    if merged.collisions:
        context = merged.context
    return _translated(_pyld.compact, document, context, loader.options())


def normalize(document, *, loader: ContextLoader | None = None) -> str:
    """``document``'s RDF dataset canonicalised with URDNA2015, as N-Quads (equal graphs give equal text)."""
    loader = loader or default_loader()
    options = loader.options(algorithm="URDNA2015", format="application/n-quads")
    return _translated(_pyld.normalize, document, options)


def check_vocabularies(plugins: Plugins | None = None, *, policy: str = "error") -> list[Collision]:
    """Check every registered vocabulary against the others; the collisions found.

    Under ``"error"`` the first vocabulary refused for a collision raises its
    :class:`NamespaceCollisionError`; the other policies log and return them.
    """
    loader = ContextLoader(plugins, policy=policy)
    refused = loader.refused()
    if refused:
        raise refused[0]
    return loader.collisions


def _translated(fn, *args, **kwargs):
    """Call ``fn``, turning PyLD's errors into Backpack's typed ones."""
    try:
        return fn(*args, **kwargs)
    except BackpackError:
        raise
    except _pyld.JsonLdError as exc:
        cause = exc
        while cause is not None:
            if isinstance(cause, BackpackError):
                raise cause from None
            if getattr(cause, "code", None) == "protected term redefinition":
                raise NamespaceCollisionError(
                    "namespace collision: a context redefines a protected term inside "
                    f"{_describe_context((cause.details or {}).get('context'))}; protected terms "
                    "(Backpack's own, for one) cannot be rebound: rename the term in that context"
                ) from None
            cause = cause.__cause__ or getattr(cause, "cause", None)
        raise InvalidInputError(f"invalid JSON-LD ({exc.code or exc.type}): {exc.args[0]}") from exc


def _describe_context(context) -> str:
    if isinstance(context, dict):
        return "the context defining " + ", ".join(repr(k) for k in list(context)[:8])
    return "a scoped context"
