"""Natural batching: many small async requests answered by few calls of a blocking function.

A :class:`Coalescer` sends a request to its blocking function at once when
the function is idle, and while it is busy collects the requests that come
in; when the call returns, everything collected goes in the next call. Under
light load a request never waits for company (no fixed window to sit out),
under heavy load each call carries all that queued meanwhile, so the number
of calls adapts to the load by itself. The server uses it twice: single-user
``recommend`` requests become ``engine.recommend_batch`` calls, and writes
become group commits (one transaction and one fsync for all queued writes).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Any


class Coalescer:
    """Answers ``submit(key, payload)`` calls by calling ``call(key, payloads)`` on batches.

    ``call`` is a blocking function run through ``run`` (a coroutine function
    that runs it in a worker thread); it gets one key and the payloads of
    that key, oldest first, and returns one result per payload. Requests
    with different keys never share a call. At most ``max_in_flight`` calls
    run at once and each carries at most ``max_batch`` payloads; the key
    waiting longest goes first. One key and ``max_in_flight=1`` (writes)
    keeps the calls in submission order.
    ``linger`` seconds (default 0) makes a request arriving at an idle
    coalescer wait that long for company before its call starts.
    ``calls`` counts the calls made.
    """

    def __init__(
        self,
        run: Callable[..., Awaitable[Any]],
        call: Callable[[Hashable, list], Sequence],
        *,
        max_batch: int,
        max_in_flight: int = 1,
        linger: float = 0.0,
    ):
        if max_batch < 1 or max_in_flight < 1 or linger < 0:
            raise ValueError("max_batch and max_in_flight must be >= 1 and linger >= 0")
        self.run, self.call = run, call
        self.max_batch, self.max_in_flight, self.linger = max_batch, max_in_flight, linger
        self.calls = 0
        self._waiting: dict[Hashable, list[tuple[Any, asyncio.Future]]] = {}  # insertion order = age
        self._in_flight = 0
        self._lingering = False

    @property
    def pending(self) -> int:
        """Requests collected and not yet in a call."""
        return sum(len(queue) for queue in self._waiting.values())

    async def submit(self, key: Hashable, payload: Any) -> Any:
        """The result for ``payload``, computed together with whatever else is queued under ``key``."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(key, []).append((payload, future))
        if self.linger and self._in_flight == 0 and not self._lingering:
            self._lingering = True
            asyncio.get_running_loop().call_later(self.linger, self._end_linger)
        elif not self._lingering:
            self._dispatch()
        return await future

    def _end_linger(self) -> None:
        self._lingering = False
        self._dispatch()

    def _dispatch(self) -> None:
        while self._waiting and self._in_flight < self.max_in_flight:
            key = next(iter(self._waiting))
            queue = self._waiting[key]
            batch, rest = queue[: self.max_batch], queue[self.max_batch :]
            if rest:
                self._waiting[key] = rest
            else:
                del self._waiting[key]
            self._in_flight += 1
            self.calls += 1
            asyncio.ensure_future(self._answer(key, batch))

    async def _answer(self, key: Hashable, batch: list[tuple[Any, asyncio.Future]]) -> None:
        try:
            results = await self.run(self.call, key, [payload for payload, _ in batch])
            if len(results) != len(batch):
                raise RuntimeError(f"batched call returned {len(results)} results for {len(batch)} requests")
        except BaseException as exc:  # noqa: BLE001 - every waiter gets the failure; none is left hanging
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
        else:
            for (_, future), result in zip(batch, results):
                if not future.done():  # its caller may have been cancelled meanwhile
                    future.set_result(result)
        finally:
            self._in_flight -= 1
            self._dispatch()
