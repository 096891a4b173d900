"""Model tasks: what a model does, with its pre- and post-processing, on any backend.

A task (text embedding, object detection, ...) knows how to turn the caller's
data (strings, images) into the model's input tensors and the output tensors
back into results (vectors, boxes). It holds a :class:`ModelSession` from any
backend, so the same task runs on ONNX Runtime, IREE or a plugin's backend.

Tasks are plugins (hook ``register_model_tasks``): ``register(name, cls,
description=...)`` where ``cls`` is a :class:`ModelTask` subclass. A task whose
model or packages are missing says so through ``available()``, and only the
tasks that really run here are listed as available (``backpack models``).
"""

from __future__ import annotations

from abc import ABC

from backpack.models.backends import ModelBackend, ModelSession, get_backend


class ModelTask(ABC):
    """Base of tasks. Subclasses set ``name`` and build their session with :meth:`_open`."""

    #: the registered name, e.g. "text-embedding"
    name: str = ""

    @classmethod
    def available(cls) -> bool:
        """Whether this task can run here (its default model and packages are installed)."""
        return True

    @classmethod
    def unavailable_reason(cls) -> str:
        """Why :meth:`available` is False (empty when it is True)."""
        return ""

    session: ModelSession

    def _open(self, model, backend: str | ModelBackend, backend_options: dict, plugins=None) -> ModelSession:
        """Load ``model`` on ``backend`` (a name or an instance) and keep the session."""
        if not isinstance(backend, ModelBackend):
            backend = get_backend(backend, plugins, **backend_options)
        self.backend = backend
        self.session = backend.load(model)
        return self.session


def get_task(name: str, plugins=None, **options) -> ModelTask:
    """The task registered as ``name``, made with ``options`` (``backend=``, ``model=``, ...)."""
    from backpack.plugins import get_plugins

    return (plugins if plugins is not None else get_plugins()).create("model_tasks", name, options, ModelTask)


def task_status(plugins=None) -> dict[str, dict]:
    """Every registered task: ``{"available": bool, "reason": str, "description": str}``."""
    from backpack.plugins import get_plugins

    plugins = plugins if plugins is not None else get_plugins()
    out = {}
    for name, registration in sorted(plugins.registry("model_tasks").items()):
        cls = registration.value
        try:
            ok = bool(cls.available())
            reason = "" if ok else cls.unavailable_reason()
        except Exception as exc:  # a task's probe is plugin code: it may fail, the listing must not
            ok, reason = False, f"{type(exc).__name__}: {exc}"
        out[name] = {"available": ok, "reason": reason, "description": registration.description}
    return out


def available_tasks(plugins=None) -> list[str]:
    """Names of the tasks that can run here."""
    return [name for name, status in task_status(plugins).items() if status["available"]]
