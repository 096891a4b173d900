"""The one plugin manager: built-ins and third-party plugins, loaded alike.

Plugins are found through the entry-point group ``backpack`` (Backpack's own
built-ins are registered there by its ``pyproject.toml``, exactly as a
third-party package would). Every plugin is loaded and called on its own, so
one that fails to import, fails validation or raises in a hook is reported
by name with its error and skipped; the rest keep working. That includes
``SystemExit`` (a plugin calling ``sys.exit`` must not end the host); only
``KeyboardInterrupt`` gets through, since the user asked for it.
"""

from __future__ import annotations

import importlib.metadata as metadata
import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from backpack import hookspecs
from backpack.errors import BackpackError, InvalidInputError, PluginConflictError, PluginError

log = logging.getLogger("backpack.plugins")

ENTRY_POINT_GROUP = "backpack"
# registry kind -> the hook that fills it
REGISTRATION_HOOKS = {
    "algorithms": "register_algorithms",
    "model_backends": "register_model_backends",
    "model_tasks": "register_model_tasks",
    "vocabularies": "register_vocabularies",
    "mappers": "register_mappers",
    "stores": "register_stores",
    "commands": "register_commands",
}


@dataclass
class Registration:
    """One thing a plugin registered (an algorithm, a command, a context, ...)."""

    kind: str
    name: str
    value: Any
    plugin: str
    description: str = ""
    extra: dict = field(default_factory=dict)


@dataclass
class PluginInfo:
    """What ``backpack plugins`` shows about one plugin."""

    name: str
    source: str  # "entry point" or "registered in code"
    module: str
    distribution: str | None = None
    version: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "source": self.source,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "registered": self.registered,
            "errors": self.errors,
        }


class Plugins:
    """A plugin manager with the registries its plugins filled."""

    def __init__(self, *, load_entry_points: bool = True):
        self.manager = pluggy.PluginManager("backpack")
        self.manager.add_hookspecs(hookspecs)
        self.info: dict[str, PluginInfo] = {}
        self._registries: dict[str, dict[str, Registration]] | None = None
        self._conflicts: dict[tuple[str, str], list[str]] = {}
        self._lock = threading.RLock()
        if load_entry_points:
            self.load_entry_points()

    # -- loading --------------------------------------------------------------

    def load_entry_points(self, entry_points: Iterable[metadata.EntryPoint] | None = None) -> None:
        """Load every entry point of group ``backpack`` (or the ones given)."""
        if entry_points is None:
            entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in entry_points:
            dist = getattr(ep, "dist", None)
            info = PluginInfo(
                name=ep.name,
                source="entry point",
                module=ep.value,
                distribution=dist.metadata["Name"] if dist else None,
                version=dist.version if dist else None,
            )
            try:
                plugin = ep.load()
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - any import failure (sys.exit too) is reported
                self._fail(info, f"import failed: {type(exc).__name__}: {exc}")
                continue
            self._add(plugin, info)

    def register(self, plugin, name: str | None = None) -> None:
        """Register a plugin object or module from code (tests, host applications)."""
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        self._add(
            plugin,
            PluginInfo(
                name=name, source="registered in code", module=getattr(plugin, "__name__", type(plugin).__module__)
            ),
        )

    def _add(self, plugin, info: PluginInfo) -> None:
        with self._lock:
            if info.name in self.info and not self.info[info.name].errors:
                # shown on the plugin that is listed, so the skipped one is not invisible
                self._fail(self.info[info.name], f"a second plugin named {info.name!r} ({info.module}) was skipped")
                return
            try:
                self.manager.register(plugin, name=info.name)
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - e.g. a malformed hook implementation
                self._fail(info, f"rejected: {type(exc).__name__}: {exc}")
                return
            # pluggy accepts hooks it has no specification for; a typo there
            # would silently do nothing, so such a plugin is refused by name.
            unknown = sorted(c.name for c in self.manager.get_hookcallers(plugin) or [] if c.spec is None)
            if unknown:
                self.manager.unregister(plugin)
                self._fail(info, f"rejected: implements unknown hook(s) {', '.join(unknown)}")
                return
            self.info[info.name] = info
            self._registries = None

    def report_error(self, plugin: str, message: str) -> None:
        """Record an error against ``plugin`` for ``backpack plugins``; a recurring one is listed once."""
        with self._lock:
            info = self.info[plugin]
            if message not in info.errors:
                info.errors.append(message)
                log.warning("backpack plugin %r: %s", plugin, message)

    def _fail(self, info: PluginInfo, message: str) -> None:
        # Registries are rebuilt whenever a plugin is added, so the same
        # failure can recur: it is listed (and logged) once.
        self.info.setdefault(info.name, info)
        if message not in info.errors:
            info.errors.append(message)
            log.warning("backpack plugin %r skipped: %s", info.name, message)

    # -- registries -----------------------------------------------------------

    def registry(self, kind: str) -> dict[str, Registration]:
        """Everything of one kind (``"algorithms"``, ``"commands"``, ...) by name.

        A name two plugins registered is left out: neither registration is
        used (see :meth:`lookup`), and both plugins show the conflict as an error.
        """
        if kind not in REGISTRATION_HOOKS:
            raise InvalidInputError(f"unknown registry {kind!r}; choose one of {', '.join(REGISTRATION_HOOKS)}")
        return self._collect()[kind]

    def algorithm(self, name: str) -> Registration:
        """The algorithm registered as ``name``; typed errors for unknown or contested names."""
        return self.lookup("algorithms", name)

    def create(self, kind: str, name: str, params: dict, expected: type):
        """``name`` from registry ``kind`` made with ``params`` and checked to be an ``expected``
        (see :func:`create_registered`)."""
        return create_registered(self.lookup(kind, name), params, expected)

    def lookup(self, kind: str, name: str) -> Registration:
        """The registration of ``name`` in registry ``kind``.

        Raises :class:`PluginConflictError` naming the plugins if more than one
        registered ``name``, and :class:`InvalidInputError` if none did.
        """
        found = self.registry(kind)
        if (kind, name) in self._conflicts:
            owners = self._conflicts[kind, name]
            raise PluginConflictError(
                f"{_singular(kind)} {name!r} is registered by {'both ' * (len(owners) == 2)}{_quoted(owners)}: "
                "uninstall or disable all but one of them"
            )
        if name not in found:
            raise InvalidInputError(
                f"unknown {_singular(kind)} {name!r}; available: {', '.join(sorted(found)) or 'none'}"
            )
        return found[name]

    def _collect(self) -> dict[str, dict[str, Registration]]:
        with self._lock:
            if self._registries is None:
                self._conflicts = {}
                for info in self.info.values():
                    info.registered = {}
                self._registries = {kind: self._collect_kind(kind, hook) for kind, hook in REGISTRATION_HOOKS.items()}
            return self._registries

    def _collect_kind(self, kind: str, hook_name: str) -> dict[str, Registration]:
        claims: dict[str, list[Registration]] = {}
        for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
            added: list[Registration] = []
            try:
                impl.function(_registrar(kind, impl.plugin_name, added))
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - a raising (or exiting) plugin is skipped, not fatal
                self._fail(self.info[impl.plugin_name], f"{hook_name} raised {type(exc).__name__}: {exc}")
                continue
            for reg in added:
                claimed = claims.setdefault(reg.name, [])
                if any(other.plugin == reg.plugin for other in claimed):
                    self.report_error(
                        reg.plugin,
                        f"{_singular(kind)} {reg.name!r} registered more than once: the first registration is used",
                    )
                    continue
                claimed.append(reg)
                self.info[reg.plugin].registered.setdefault(kind, []).append(reg.name)
        found: dict[str, Registration] = {}
        for name, regs in claims.items():
            owners = [reg.plugin for reg in regs]
            if len(owners) == 1:
                found[name] = regs[0]
                continue
            # Neither is used: which one would win depends on installation order.
            self._conflicts[kind, name] = owners
            for owner in owners:
                others = _quoted([o for o in owners if o != owner])
                self.report_error(owner, f"{_singular(kind)} {name!r} is also registered by {others}: neither is used")
        return found

    # -- events ---------------------------------------------------------------

    def notify(self, event: str, **kwargs) -> None:
        """Call every plugin observing ``event``; a raising observer is reported and skipped."""
        for impl in getattr(self.manager.hook, event).get_hookimpls():
            try:
                impl.function(*[kwargs[name] for name in impl.argnames])
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # noqa: BLE001 - observers never break (or end) the engine
                message = f"{event} raised {type(exc).__name__}: {exc}"
                if impl.plugin_name in self.info:
                    self.report_error(impl.plugin_name, message)
                else:
                    log.warning("backpack plugin %r: %s", impl.plugin_name, message)

    def observes(self, event: str) -> bool:
        """Whether any plugin listens to ``event`` (lets hot paths skip building arguments)."""
        return bool(getattr(self.manager.hook, event).get_hookimpls())

    # -- reporting ------------------------------------------------------------

    def describe(self) -> list[dict]:
        """Every plugin, where it came from, its version, what it registered, its errors."""
        self._collect()
        return [info.as_dict() for info in sorted(self.info.values(), key=lambda i: i.name)]


def _singular(kind: str) -> str:
    """``"model_backends"`` -> ``"model backend"``, for messages."""
    return {"vocabularies": "vocabulary"}.get(kind, kind[:-1]).replace("_", " ")


def _quoted(names: list[str]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b' and 'c'``."""
    quoted = [repr(n) for n in names]
    return quoted[0] if len(quoted) == 1 else f"{', '.join(quoted[:-1])} and {quoted[-1]}"


def _registrar(kind: str, plugin: str, added: list[Registration]) -> Callable:
    """The ``register`` callable one plugin's registration hook receives."""

    def register(name, value, *args, description: str = "", **extra):
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"{kind} names must be non-empty strings, got {name!r}")
        if args:  # register(name, configure, run) for commands
            extra["args"] = args
        added.append(Registration(kind, name, value, plugin, description, extra))

    return register


_default: Plugins | None = None
_default_lock = threading.Lock()


def get_plugins() -> Plugins:
    """The process-wide plugin manager, loaded from entry points on first use."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Plugins()
        return _default


def create_registered(registration: Registration, params: dict, expected: type):
    """``registration.value(**params)`` checked to be an ``expected``; plugin failures name the plugin.

    Parameters the factory does not declare are an InvalidInputError naming
    them, so a typo in ``-p name=value`` is not blamed on the plugin.
    """
    import inspect

    try:
        inspect.signature(registration.value).bind(**params)
    except TypeError as exc:
        raise InvalidInputError(
            f"{_singular(registration.kind)} {registration.name!r} does not take these parameters: {exc}"
        ) from None
    except ValueError:  # no signature to check (a builtin): let the call decide
        pass
    made = call_plugin(registration, "creating it", registration.value, **params)
    if not isinstance(made, expected):
        raise InvalidInputError(
            f"{_singular(registration.kind)} {registration.name!r} from plugin {registration.plugin!r} did not "
            f"return a backpack.{expected.__name__}"
        )
    return made


def call_plugin(registration: Registration, what: str, fn: Callable, *args, **kwargs):
    """Run plugin code, turning anything but Backpack's own errors into a PluginError naming the plugin."""
    try:
        return fn(*args, **kwargs)
    except BackpackError:
        raise
    except Exception as exc:
        raise PluginError(
            f"plugin {registration.plugin!r} ({_singular(registration.kind)} {registration.name!r}) failed in {what}: "
            f"{type(exc).__name__}: {exc}"
        ) from exc
