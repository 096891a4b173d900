"""The store contract (backpack.store.base.Store), run against every store in store_factories.STORE_FACTORIES.

Nothing here may depend on one store's internals: SQLite-only checks live in test_sqlite_store.py.
"""

import hmac
import re
import threading

import pytest
from store_factories import STORE_FACTORIES, FakeClock

from backpack.errors import InvalidInputError, JobStateError, StoreError, UnknownJobError
from backpack.store.base import LogEntry


@pytest.fixture(params=sorted(STORE_FACTORIES))
def make_store(request, tmp_path):
    """``make_store(**options)``: a fresh store of the parametrized kind, closed after the test."""
    made = []

    def make(**options):
        made.append(STORE_FACTORIES[request.param](tmp_path, **options))
        return made[-1]

    yield make
    for store in made:
        store.close()


@pytest.fixture
def store(make_store):
    return make_store()


@pytest.fixture
def clock():
    return FakeClock()


def flatten(batches):
    return [entry for batch in batches for entry in batch]


# -- interaction log -------------------------------------------------------------


def test_empty_log_has_watermark_zero_and_nothing_to_replay(store):
    assert store.watermark() == 0
    assert list(store.log_since(0)) == []


def test_appends_get_increasing_seqs_and_come_back_in_order_with_their_data(store):
    last = store.append_interactions(["u1", "u2"], ["i1", "i2"], [1.0, 2.5], [1_700_000_000.0, None])
    assert last == store.watermark() == 2
    assert store.append_interactions(["u3"], ["i1"], [3]) == 3
    assert flatten(store.log_since(0)) == [
        LogEntry(1, "add", "u1", "i1", 1.0, 1_700_000_000.0),
        LogEntry(2, "add", "u2", "i2", 2.5, None),
        LogEntry(3, "add", "u3", "i1", 3.0, None),
    ]


def test_one_calls_rows_get_consecutive_seqs_ending_at_the_returned_one(store):
    # the server's group commit relies on it to tell each request its own position
    store.append_interactions(["u0"], ["i0"], [1.0])
    for append in (
        lambda n: store.append_interactions([f"u{k}" for k in range(n)], ["i"] * n, [1.0] * n),
        lambda n: store.append_removals([f"u{k}" for k in range(n)], ["i"] * n),
    ):
        before = store.watermark()
        last = append(250)
        assert [e.seq for e in flatten(store.log_since(before))] == list(range(last - 249, last + 1))


def test_log_since_a_watermark_returns_only_later_entries(store):
    store.append_interactions(["u1", "u2"], ["i1", "i2"], [1, 1])
    mark = store.watermark()
    store.append_interactions(["u3"], ["i3"], [1])
    assert [e.user for e in flatten(store.log_since(mark))] == ["u3"]
    assert list(store.log_since(store.watermark())) == []


def test_log_since_streams_in_batches_of_the_size_asked(store):
    store.append_interactions([f"u{i}" for i in range(7)], ["i"] * 7, [1.0] * 7)
    batches = store.log_since(0, batch_size=3)
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [e.seq for e in flatten(store.log_since(2, batch_size=2))] == [3, 4, 5, 6, 7]


def test_log_since_is_lazy_and_sees_entries_appended_between_batches(store):
    store.append_interactions(["u1", "u2"], ["i", "i"], [1, 1])
    batches = store.log_since(0, batch_size=2)
    assert [e.user for e in next(batches)] == ["u1", "u2"]
    store.append_interactions(["u3"], ["i"], [1])  # a generator that had read everything up front would miss it
    assert [e.user for e in next(batches)] == ["u3"]


def test_removals_are_logged_without_weight_or_time(store):
    store.append_interactions(["u1"], ["i1"], [2.0], [5.0])
    assert store.append_removals(["u1"], ["i1"]) == 2
    assert flatten(store.log_since(1)) == [LogEntry(2, "remove", "u1", "i1", None, None)]


def test_empty_appends_write_nothing_and_return_the_watermark(store):
    store.append_interactions(["u"], ["i"], [1])
    assert store.append_interactions([], [], []) == 1
    assert store.append_removals([], []) == 1
    assert store.counts()["log"] == 1


@pytest.mark.parametrize(
    "call",
    [
        lambda s: s.append_interactions(["u1", "u2"], ["i1"], [1, 1]),
        lambda s: s.append_interactions(["u1"], ["i1"], [1], [1.0, 2.0]),
        lambda s: s.append_interactions(["u1", "u2"], ["i1", "i2"], [1, float("nan")]),
        lambda s: s.append_interactions(["u1"], [""], [1]),
        lambda s: s.append_interactions([None], ["i"], [1]),
        lambda s: s.append_removals(["u1"], []),
    ],
    ids=["lengths", "timestamps", "nan", "empty-item", "none-user", "removal-lengths"],
)
def test_a_bad_batch_is_refused_whole(store, call):
    store.append_interactions(["u0"], ["i0"], [1])
    with pytest.raises(InvalidInputError):
        call(store)
    assert store.watermark() == 1 and store.counts()["log"] == 1


# -- users and items -------------------------------------------------------------

UNICODE_ITEM = {
    "@id": "https://example.org/item/ü",
    "@type": ["http://schema.org/3DModel"],
    "http://schema.org/name": [{"@value": "Hut 🎩 «Zylinder»", "@language": "de"}],
}


def test_users_and_items_round_trip_unicode_json_ld(store):
    store.put_items({UNICODE_ITEM["@id"]: UNICODE_ITEM})
    store.put_users({"ユーザー": {"@id": "ユーザー", "name": "Ærøskøbing"}, "u2": {}})
    assert store.get_item(UNICODE_ITEM["@id"]) == UNICODE_ITEM
    assert store.get_user("ユーザー") == {"@id": "ユーザー", "name": "Ærøskøbing"}
    assert store.get_user("u2") == {}
    assert store.get_user("nobody") is None and store.get_item("nothing") is None


def test_put_replaces_a_previous_description(store):
    store.put_items({"i": {"v": 1}})
    store.put_items({"i": {"v": 2}})
    assert store.get_item("i") == {"v": 2}
    assert store.counts()["items"] == 1


def test_put_refuses_a_description_that_is_not_an_object_and_writes_none_of_the_batch(store):
    with pytest.raises(InvalidInputError):
        store.put_items({"good": {}, "bad": ["not", "a", "node"]})
    assert store.get_item("good") is None


def test_iter_items_yields_every_item_once_in_batches(store):
    items = {f"https://example.org/{i:02d}": {"n": i} for i in range(25)}
    store.put_items(items)
    batches = list(store.iter_items(batch_size=10))
    assert [len(b) for b in batches] == [10, 10, 5]
    assert dict(pair for batch in batches for pair in batch) == items


def test_counts(store):
    store.append_interactions(["u"], ["i"], [1])
    store.append_removals(["u"], ["i"])
    store.put_users({"u": {}})
    store.put_items({"i": {}, "j": {}})
    store.create_token("admin")
    store.enqueue_job("fit")
    store.record_snapshot("/tmp/snap", "als", 2)
    assert store.counts() == {"users": 1, "items": 2, "log": 2, "jobs": 1, "tokens": 1, "snapshots": 1}


# -- snapshots -------------------------------------------------------------------


def test_latest_snapshot_is_the_last_recorded(store):
    assert store.latest_snapshot() is None
    store.append_interactions([f"u{n}" for n in range(25)], ["i"] * 25, [1.0] * 25)
    first = store.record_snapshot("/data/a", "als", 10)
    second = store.record_snapshot("/data/b", None, 25)
    assert second.id != first.id
    latest = store.latest_snapshot()
    assert (latest.path, latest.algorithm, latest.watermark) == ("/data/b", None, 25)
    assert latest == second


def test_a_snapshot_cannot_claim_writes_the_log_does_not_hold(store):
    store.append_interactions(["u"], ["i"], [1])
    for watermark in (2, -1):
        with pytest.raises(InvalidInputError):
            store.record_snapshot("/data/a", "als", watermark)
    assert store.latest_snapshot() is None
    assert store.record_snapshot("/data/a", "als", 1).watermark == 1


# -- tokens --------------------------------------------------------------------------


def test_a_created_token_verifies_with_its_secret(store):
    record, secret = store.create_token("user", "alice", label="phone")
    assert re.fullmatch(rf"bp_{record.id}_[A-Za-z0-9_-]{{43}}", secret)
    assert (record.role, record.user, record.label, record.revoked) == ("user", "alice", "phone", False)
    assert store.verify_token(secret) == record
    admin, admin_secret = store.create_token("admin")
    assert store.verify_token(admin_secret).role == "admin" and admin.user is None
    assert {t.id for t in store.list_tokens()} == {record.id, admin.id}


def test_secrets_are_unique(store):
    secrets = {store.create_token("service")[1] for _ in range(5)}
    assert len(secrets) == 5


@pytest.mark.parametrize(
    "role, user", [("root", None), ("user", None), ("user", ""), ("admin", "alice"), ("service", "bob")]
)
def test_token_role_and_user_must_fit(store, role, user):
    with pytest.raises(InvalidInputError):
        store.create_token(role, user)
    assert store.list_tokens() == []


def test_a_revoked_token_no_longer_verifies_but_is_still_listed(store):
    record, secret = store.create_token("service", label="ingest")
    assert store.revoke_token(record.id) is True
    assert store.verify_token(secret) is None
    assert [(t.id, t.revoked) for t in store.list_tokens()] == [(record.id, True)]
    assert store.revoke_token("no-such-token") is False


def test_wrong_unknown_and_malformed_secrets_do_not_verify(store):
    record, secret = store.create_token("admin")
    other, _ = store.create_token("admin")
    tampered = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    borrowed_id = secret.replace(record.id, other.id)  # a valid id with another token's random part
    for bad in [
        tampered,
        borrowed_id,
        f"bp_{'f' * 16}_{secret.rsplit('_', 1)[1]}",
        "",
        "bp_",
        "bp__x",
        f"xx_{record.id}_abc",
        secret[3:],
        "bp_" + record.id,
        None,
        42,
        "bp_a b_c",
    ]:
        assert store.verify_token(bad) is None, bad
    assert store.verify_token(secret) == record


def test_secrets_are_compared_in_constant_time(store, monkeypatch):
    record, secret = store.create_token("admin")
    compared = []
    real = hmac.compare_digest

    def spy(a, b):
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert store.verify_token(secret) == record
    assert store.verify_token(secret[:-2] + "xx") is None
    assert len(compared) == 2
    # what is compared is a hash of the secret, never the secret itself
    assert all(secret not in (a, b) for a, b in compared)


# -- jobs ------------------------------------------------------------------------------


def test_job_lifecycle_available_executing_completed(make_store, clock):
    store = make_store(clock=clock)
    job = store.enqueue_job("fit", {"algorithm": "als", "factors": 64})
    assert (job.state, job.attempts, job.args, job.run_at) == (
        "available",
        0,
        {"algorithm": "als", "factors": 64},
        clock.now,
    )
    claimed = store.claim_job()
    assert (claimed.id, claimed.state, claimed.attempts) == (job.id, "executing", 1)
    assert store.claim_job() is None  # nobody else gets it
    store.set_job_progress(job.id, 0.5)
    assert store.get_job(job.id).progress == 0.5
    done = store.complete_job(job.id, {"seconds": 1.5, "model": "als"})
    assert (done.state, done.result, done.progress) == ("completed", {"seconds": 1.5, "model": "als"}, 1.0)
    assert store.claim_job() is None


def test_failed_jobs_back_off_exponentially_then_are_discarded(make_store, clock):
    store = make_store(clock=clock, backoff_base=10.0)
    job = store.enqueue_job("fit", max_attempts=3)
    for attempt, delay in [(1, 10.0), (2, 20.0)]:
        assert store.claim_job().attempts == attempt
        failed = store.fail_job(job.id, f"boom {attempt}")
        assert (failed.state, failed.error, failed.run_at) == ("retryable", f"boom {attempt}", clock.now + delay)
        clock.now += delay - 0.5
        assert store.claim_job() is None  # not before its back-off has passed
        clock.now += 0.5
    assert store.claim_job().attempts == 3
    assert store.fail_job(job.id, "boom 3").state == "discarded"
    clock.now += 1e6
    assert store.claim_job() is None
    assert store.get_job(job.id).error == "boom 3"


def test_back_off_is_capped(make_store, clock):
    store = make_store(clock=clock, backoff_base=10.0, backoff_cap=25.0)
    job = store.enqueue_job("fit", max_attempts=10)
    delays = []
    for _ in range(4):
        store.claim_job()
        delays.append(store.fail_job(job.id, "x").run_at - clock.now)
        clock.now += 100
    assert delays == [10.0, 20.0, 25.0, 25.0]


def test_claim_takes_the_oldest_runnable_job_of_the_kinds_asked(make_store, clock):
    store = make_store(clock=clock)
    later = store.enqueue_job("fit", run_at=clock.now + 60)
    first = store.enqueue_job("fit")
    embed = store.enqueue_job("embed")
    second = store.enqueue_job("fit")
    assert store.claim_job(["fit"]).id == first.id
    assert store.claim_job(["fit"]).id == second.id
    assert store.claim_job(["fit"]) is None  # `later` is not due yet
    assert store.claim_job([]) is None
    assert store.claim_job("embed").id == embed.id  # one kind may be named alone
    clock.now += 60
    assert store.claim_job(["fit"]).id == later.id


def test_only_executing_jobs_take_progress_completion_or_failure(store):
    job = store.enqueue_job("fit")
    for call in (
        lambda: store.complete_job(job.id),
        lambda: store.fail_job(job.id, "x"),
        lambda: store.set_job_progress(job.id, 0.1),
    ):
        with pytest.raises(JobStateError) as info:
            call()
        assert info.value.code == "job_state"
    store.claim_job()
    with pytest.raises(InvalidInputError):
        store.set_job_progress(job.id, 1.5)
    store.complete_job(job.id)
    with pytest.raises(JobStateError):
        store.complete_job(job.id)


def test_unknown_jobs_are_a_typed_error(store):
    for call in (lambda: store.get_job(999), lambda: store.complete_job(999), lambda: store.fail_job(999, "x")):
        with pytest.raises(UnknownJobError) as info:
            call()
        assert info.value.code == "unknown_job"


def test_bad_job_arguments_are_refused(store):
    for call in (
        lambda: store.enqueue_job(""),
        lambda: store.enqueue_job("fit", {"f": object()}),
        lambda: store.enqueue_job("fit", max_attempts=0),
        lambda: store.list_jobs("lost"),
        lambda: store.enqueue_job("fit", ["not", "a", "dict"]),
        lambda: store.enqueue_job_once("fit", {"f": object()}),
    ):
        with pytest.raises(InvalidInputError):
            call()
    assert store.counts()["jobs"] == 0


def test_recover_jobs_makes_interrupted_jobs_retryable_or_discarded(make_store, clock):
    store = make_store(clock=clock)
    retry = store.enqueue_job("fit", max_attempts=2)
    last_try = store.enqueue_job("embed", max_attempts=1)
    waiting = store.enqueue_job("fit")
    store.claim_job(["fit"])
    store.claim_job(["embed"])
    assert store.recover_jobs() == 2
    assert store.get_job(retry.id).state == "retryable"
    assert store.get_job(last_try.id).state == "discarded"
    assert store.get_job(waiting.id).state == "available"
    assert store.recover_jobs() == 0
    clock.now += 3600
    assert store.claim_job(["fit"]).id in {retry.id, waiting.id}


def test_list_jobs_newest_first_and_by_state(store):
    jobs = [store.enqueue_job("fit", {"n": n}) for n in range(4)]
    store.claim_job()
    assert [j.id for j in store.list_jobs()] == [j.id for j in reversed(jobs)]
    assert [j.id for j in store.list_jobs(limit=2)] == [jobs[3].id, jobs[2].id]
    assert [j.id for j in store.list_jobs("executing")] == [jobs[0].id]
    assert store.list_jobs("completed") == []


def test_enqueue_job_once_refuses_a_twin_of_an_unfinished_job(store):
    job = store.enqueue_job_once("fit", {"algorithm": "als", "factors": 8})
    assert job is not None
    assert store.enqueue_job_once("fit", {"factors": 8, "algorithm": "als"}) is None  # key order does not matter
    assert store.enqueue_job_once("fit", {"algorithm": "bpr"}) is not None
    assert store.enqueue_job_once("embed", {"algorithm": "als", "factors": 8}) is not None
    store.claim_job(["fit"])
    assert store.enqueue_job_once("fit", {"algorithm": "als", "factors": 8}) is None  # executing
    store.complete_job(job.id)
    assert store.enqueue_job_once("fit", {"algorithm": "als", "factors": 8}) is not None


def test_concurrent_claims_hand_each_job_to_exactly_one_thread(store):
    jobs = {store.enqueue_job("work", {"n": n}).id for n in range(40)}
    claimed: list[int] = []
    errors = []
    barrier = threading.Barrier(8)

    def claimer():
        try:
            barrier.wait()
            while (job := store.claim_job()) is not None:
                claimed.append(job.id)
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=claimer) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(claimed) == sorted(jobs)
    assert all(j.state == "executing" and j.attempts == 1 for j in store.list_jobs(limit=100))


def test_check_finds_nothing_wrong_in_a_used_store(store):
    store.append_interactions(["u"], ["i"], [1])
    store.append_removals(["u"], ["i"])
    store.put_items({"i": UNICODE_ITEM})
    store.create_token("user", "u")
    failed = store.enqueue_job("fit", max_attempts=1)
    store.claim_job()
    store.fail_job(failed.id, "boom")
    store.enqueue_job("embed")
    store.claim_job()
    assert store.check() == []


def test_a_store_is_a_context_manager_that_closes_it(make_store):
    with make_store() as store:
        store.append_interactions(["u"], ["i"], [1])
    with pytest.raises(StoreError):
        store.watermark()
