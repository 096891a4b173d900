"""The Coalescer: idle -> at once; busy -> everything queued goes in the next call."""

import asyncio
import threading

import pytest

from backpack.serving.coalescing import Coalescer


class GatedCall:
    """A blocking batched call that records its batches and waits for a gate to open."""

    def __init__(self):
        self.batches: list[tuple] = []
        self.gate = threading.Event()
        self.started = threading.Event()

    def __call__(self, key, payloads):
        self.batches.append((key, list(payloads)))
        self.started.set()
        self.gate.wait(5)
        if "boom" in payloads:
            raise ValueError("boom")
        return [f"{key}:{p}" for p in payloads]


async def run_in_thread(fn, *args):
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def _wait_started(call: GatedCall) -> None:
    await asyncio.get_running_loop().run_in_executor(None, call.started.wait, 5)
    call.started.clear()


def test_an_idle_coalescer_calls_at_once_and_a_busy_one_batches_what_queued():
    async def main():
        call = GatedCall()
        co = Coalescer(run_in_thread, call, max_batch=100)
        first = asyncio.ensure_future(co.submit("k", 0))
        await _wait_started(call)  # the lone request went alone, without waiting for company
        assert call.batches == [("k", [0])]
        rest = [asyncio.ensure_future(co.submit("k", i)) for i in range(1, 6)]
        await asyncio.sleep(0.01)
        assert co.pending == 5 and len(call.batches) == 1  # busy: they wait for the running call
        call.gate.set()
        results = await asyncio.gather(first, *rest)
        assert results == [f"k:{i}" for i in range(6)]
        assert call.batches == [("k", [0]), ("k", [1, 2, 3, 4, 5])]
        assert co.calls == 2 and co.pending == 0

    asyncio.run(main())


def test_keys_never_share_a_call_and_the_oldest_key_goes_first():
    async def main():
        call = GatedCall()
        co = Coalescer(run_in_thread, call, max_batch=100)
        blocker = asyncio.ensure_future(co.submit("a", 0))
        await _wait_started(call)
        later = [asyncio.ensure_future(co.submit(k, i)) for i, k in enumerate("bab", start=1)]
        await asyncio.sleep(0.01)
        call.gate.set()
        assert await asyncio.gather(blocker, *later) == ["a:0", "b:1", "a:2", "b:3"]
        assert call.batches == [("a", [0]), ("b", [1, 3]), ("a", [2])]

    asyncio.run(main())


def test_max_batch_splits_and_max_in_flight_bounds_concurrent_calls():
    async def main():
        call = GatedCall()
        co = Coalescer(run_in_thread, call, max_batch=2, max_in_flight=2)
        futures = [asyncio.ensure_future(co.submit("k", i)) for i in range(5)]
        await asyncio.sleep(0.05)
        assert len(call.batches) == 2  # two calls in flight, the rest waits
        call.gate.set()
        assert await asyncio.gather(*futures) == [f"k:{i}" for i in range(5)]
        assert all(len(p) <= 2 for _, p in call.batches)
        assert sorted(p for _, b in call.batches for p in b) == list(range(5))

    asyncio.run(main())


def test_a_failing_call_fails_every_request_in_it_and_the_next_call_still_runs():
    async def main():
        call = GatedCall()
        call.gate.set()
        co = Coalescer(run_in_thread, call, max_batch=100, linger=0.02)  # linger: all three share one call
        failing = [asyncio.ensure_future(co.submit("k", p)) for p in ("x", "boom", "y")]
        outcomes = await asyncio.gather(*failing, return_exceptions=True)
        assert [type(o) for o in outcomes] == [ValueError] * 3
        assert await co.submit("k", "z") == "k:z"
        assert co.calls == 2

    asyncio.run(main())


def test_a_call_returning_the_wrong_number_of_results_is_an_error_not_a_hang():
    async def main():
        co = Coalescer(run_in_thread, lambda key, payloads: payloads[:-1], max_batch=10, linger=0.01)
        outcomes = await asyncio.gather(co.submit("k", 1), co.submit("k", 2), return_exceptions=True)
        assert all(isinstance(o, RuntimeError) and "2 requests" in str(o) for o in outcomes)

    asyncio.run(main())


def test_bad_settings_are_refused():
    for bad in ({"max_batch": 0}, {"max_batch": 1, "max_in_flight": 0}, {"max_batch": 1, "linger": -1}):
        with pytest.raises(ValueError):
            Coalescer(run_in_thread, lambda k, p: p, **bad)
