"""Background jobs over a :class:`~backpack.store.base.Store`: a runner thread and a scheduler of periodic jobs.

The store keeps jobs durable and hands each one to exactly one claimer; the
:class:`JobRunner` claims jobs of the kinds it has handlers for and runs them
one at a time on its own thread. A handler that raises fails its job (it is
retried with back-off, or discarded when out of attempts) and the runner
carries on with the next one.

The :class:`Scheduler` has no thread of its own: a runner given one calls
:meth:`Scheduler.tick` before every claim (so a periodic job is enqueued and
picked up by the same loop, and there is one thread less to stop), and a host
without a runner may call ``tick()`` itself. Schedules live in memory: after
a restart each one is due at once, and the duplicate check keeps that from
piling up jobs.

Jobs left ``executing`` by a crash are not the runner's business: the server
calls ``store.recover_jobs()`` once at start, before any runner claims (a
runner cannot tell a crashed peer's job from a live one in another process).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from backpack.errors import InvalidInputError
from backpack.store.base import Job, Store

log = logging.getLogger("backpack.store.jobs")

#: ``handler(job, report_progress)``: does the work, calls ``report_progress(fraction)`` as it
#: goes, returns a JSON-serialisable result dict (or None)
Handler = Callable[[Job, Callable[[float], None]], "dict | None"]


@dataclass
class Schedule:
    """One periodic job: ``kind`` with ``args`` every ``interval`` seconds; ``next_run`` is when it is due."""

    interval: float
    kind: str
    args: dict
    max_attempts: int
    next_run: float


class Scheduler:
    """Periodic jobs, e.g. ``scheduler.every(3600, "fit", {"algorithm": "als"})``.

    Each :meth:`tick` enqueues the schedules that are due, unless a job of the
    same kind and args is still available, executing or retryable (then it is
    tried again on the next tick, so a slow fit never queues up behind itself).
    """

    def __init__(self, store: Store, *, clock: Callable[[], float] = time.time):
        self.store, self.clock = store, clock
        self.schedules: list[Schedule] = []
        self._lock = threading.Lock()

    def every(
        self,
        seconds: float,
        kind: str,
        args: dict | None = None,
        *,
        max_attempts: int = 3,
        first_run: float | None = None,
    ) -> Schedule:
        """Enqueue ``kind`` with ``args`` every ``seconds``, first at ``first_run`` (default: the next tick)."""
        if not seconds > 0:
            raise InvalidInputError(f"a schedule's interval must be positive seconds, got {seconds}")
        schedule = Schedule(
            float(seconds),
            kind,
            dict(args or {}),
            max_attempts,
            self.clock() if first_run is None else float(first_run),
        )
        with self._lock:
            self.schedules.append(schedule)
        return schedule

    def tick(self) -> list[Job]:
        """Enqueue every due schedule that has no unfinished twin; the jobs enqueued."""
        enqueued = []
        with self._lock:
            now = self.clock()
            for schedule in self.schedules:
                if now < schedule.next_run:
                    continue
                job = self.store.enqueue_job_once(schedule.kind, schedule.args, max_attempts=schedule.max_attempts)
                if job is not None:
                    enqueued.append(job)
                    schedule.next_run = now + schedule.interval
        return enqueued


class JobRunner:
    """Runs jobs from ``store`` on a background thread with the handlers registered by kind.

    ``poll_interval`` is how long the thread sleeps when there is nothing to do;
    ``scheduler`` (optional) is ticked on the same thread before every claim.
    Use ``with JobRunner(store) as runner:`` or :meth:`start` / :meth:`stop`.
    """

    def __init__(
        self,
        store: Store,
        *,
        poll_interval: float = 0.5,
        scheduler: Scheduler | None = None,
        name: str = "backpack-jobs",
    ):
        self.store, self.poll_interval, self.scheduler, self.name = store, poll_interval, scheduler, name
        self.handlers: dict[str, Handler] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def handle(self, kind: str, handler: Handler) -> None:
        """Run jobs of ``kind`` with ``handler(job, report_progress)``, which returns a result dict or None."""
        if not isinstance(kind, str) or not kind:
            raise InvalidInputError("a job kind must be a non-empty string")
        if not callable(handler):
            raise InvalidInputError(f"the handler for job kind {kind!r} must be callable")
        self.handlers[kind] = handler

    def run_once(self) -> Job | None:
        """Claim one job of a kind this runner handles and run it on the calling thread;
        the job as it ended, None if there was none."""
        job = self.store.claim_job(list(self.handlers))
        if job is None:
            return None
        handler = self.handlers[job.kind]
        try:
            result = handler(job, lambda fraction: self.store.set_job_progress(job.id, fraction))
        except Exception as exc:  # noqa: BLE001 - a failing handler fails its job, never the runner
            log.warning(
                "job %s (%s) failed on attempt %s: %s: %s", job.id, job.kind, job.attempts, type(exc).__name__, exc
            )
            return self.store.fail_job(job.id, f"{type(exc).__name__}: {exc}")
        if result is not None and not isinstance(result, dict):
            return self.store.fail_job(
                job.id, f"the {job.kind!r} handler returned {type(result).__name__}, not a dict or None"
            )
        try:
            return self.store.complete_job(job.id, result)
        except InvalidInputError as exc:  # e.g. a result JSON cannot hold: the job must not stay executing
            return self.store.fail_job(job.id, f"the {job.kind!r} handler's result cannot be stored: {exc}")

    def start(self) -> JobRunner:
        """Start the background thread (once)."""
        if self._thread is not None:
            raise InvalidInputError("this job runner was already started")
        self._thread = threading.Thread(target=self._loop, name=self.name, daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Ask the thread to stop after the job it is running, and wait for it (at most ``timeout`` seconds)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """Whether the background thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> JobRunner:
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                if self.scheduler is not None:
                    self.scheduler.tick()
                if self.run_once() is not None:
                    continue  # there may be more waiting: no sleep
            except Exception:  # noqa: BLE001 - e.g. the store briefly unreachable: log, wait, try again
                log.exception("job runner %s: error while claiming or recording a job", self.name)
            self._stop.wait(self.poll_interval)
