"""JobRunner and Scheduler (backpack.store.jobs) over every store in store_factories."""

import threading
import time

import pytest
from store_factories import STORE_FACTORIES, FakeClock

from backpack.errors import InvalidInputError
from backpack.store.jobs import JobRunner, Scheduler


@pytest.fixture(params=sorted(STORE_FACTORIES))
def store(request, tmp_path):
    store = STORE_FACTORIES[request.param](tmp_path, backoff_base=0.0)  # retries due at once
    yield store
    store.close()


def wait_for(condition, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_run_once_completes_a_job_with_its_result_and_progress(store):
    seen = []

    def fit(job, report_progress):
        report_progress(0.5)
        seen.append(store.get_job(job.id).progress)
        return {"algorithm": job.args["algorithm"]}

    runner = JobRunner(store)
    runner.handle("fit", fit)
    job = store.enqueue_job("fit", {"algorithm": "als"})
    done = runner.run_once()
    assert (done.id, done.state, done.result) == (job.id, "completed", {"algorithm": "als"})
    assert seen == [0.5]
    assert runner.run_once() is None


def test_a_raising_handler_makes_the_job_retryable_and_the_retry_can_complete(store):
    calls = []

    def flaky(job, report_progress):
        calls.append(job.attempts)
        if job.attempts == 1:
            raise RuntimeError("model server away")
        return {"ok": True}

    runner = JobRunner(store)
    runner.handle("fit", flaky)
    job = store.enqueue_job("fit")
    failed = runner.run_once()
    assert (failed.state, failed.error) == ("retryable", "RuntimeError: model server away")
    assert runner.run_once().state == "completed"
    assert calls == [1, 2] and store.get_job(job.id).result == {"ok": True}


def test_a_result_that_is_not_a_dict_fails_the_job(store):
    runner = JobRunner(store)
    runner.handle("fit", lambda job, progress: ["not", "a", "dict"])
    store.enqueue_job("fit", max_attempts=1)
    ended = runner.run_once()
    assert ended.state == "discarded" and "not a dict" in ended.error


def test_the_runner_only_claims_kinds_it_has_handlers_for(store):
    runner = JobRunner(store)
    runner.handle("fit", lambda job, progress: None)
    other = store.enqueue_job("embed")
    assert runner.run_once() is None
    assert store.get_job(other.id).state == "available"
    with pytest.raises(InvalidInputError):
        runner.handle("", lambda job, progress: None)


def test_the_background_thread_keeps_going_after_a_failure_and_stops_cleanly(store):
    ran = []

    def work(job, report_progress):
        ran.append(job.args["n"])
        if job.args["n"] == 1 and job.attempts == 1:
            raise ValueError("first try of job 1 fails")
        report_progress(1.0)
        return {"n": job.args["n"]}

    ids = [store.enqueue_job("work", {"n": n}).id for n in range(3)]
    runner = JobRunner(store, poll_interval=0.01)
    runner.handle("work", work)
    with runner:
        assert runner.running
        wait_for(lambda: all(store.get_job(i).state == "completed" for i in ids))
    assert not runner.running
    assert sorted(ran) == [0, 1, 1, 2]
    assert store.get_job(ids[1]).attempts == 2


def test_stop_waits_for_the_running_job(store):
    started, release = threading.Event(), threading.Event()

    def slow(job, report_progress):
        started.set()
        release.wait(5)
        return {}

    runner = JobRunner(store, poll_interval=0.01)
    runner.handle("slow", slow)
    job = store.enqueue_job("slow")
    runner.start()
    assert started.wait(5)
    threading.Timer(0.1, release.set).start()
    runner.stop()
    assert store.get_job(job.id).state == "completed"  # finished, not left executing
    with pytest.raises(InvalidInputError):
        runner.start()


def test_the_scheduler_enqueues_when_due_and_never_a_duplicate(store):
    clock = FakeClock()
    scheduler = Scheduler(store, clock=clock)
    scheduler.every(3600, "fit", {"algorithm": "als"})
    scheduler.every(60, "embed")
    first = scheduler.tick()
    assert sorted(j.kind for j in first) == ["embed", "fit"]
    assert scheduler.tick() == []  # not due
    clock.now += 60
    assert scheduler.tick() == []  # embed is due but the first one is still available
    embed = next(j for j in first if j.kind == "embed")
    store.claim_job(["embed"])
    assert scheduler.tick() == []  # executing: still no twin
    store.complete_job(embed.id)
    assert [j.kind for j in scheduler.tick()] == ["embed"]
    clock.now += 3600
    assert scheduler.tick() == []  # both due, but neither's previous job has run yet
    assert len(store.list_jobs("available")) == 2
    with pytest.raises(InvalidInputError):
        scheduler.every(0, "fit")


def test_a_runner_drives_its_scheduler(store):
    scheduler = Scheduler(store)
    scheduler.every(3600, "fit", {"algorithm": "als"})
    runner = JobRunner(store, poll_interval=0.01, scheduler=scheduler)
    done = threading.Event()
    runner.handle("fit", lambda job, progress: done.set() or {"fitted": job.args["algorithm"]})
    with runner:
        assert done.wait(10)
        wait_for(lambda: store.list_jobs("completed"))
        time.sleep(0.1)  # a few more ticks: the hourly job must not come back
    assert [(j.kind, j.state) for j in store.list_jobs()] == [("fit", "completed")]
