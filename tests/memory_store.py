"""An in-memory :class:`backpack.store.base.Store` for the server tests (not durable, not in the package)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time

from backpack.errors import UnknownJobError
from backpack.store.base import Job, LogEntry, SnapshotRecord, Store, TokenRecord


class MemoryStore(Store):
    """Everything in dicts and lists behind one lock; tokens hashed like a real store."""

    def __init__(self):
        self.lock = threading.RLock()
        self.log: list[LogEntry] = []
        self.users: dict[str, dict] = {}
        self.items: dict[str, dict] = {}
        self.snapshots: list[SnapshotRecord] = []
        self.tokens: dict[str, tuple[TokenRecord, bytes]] = {}
        self.job_table: dict[int, Job] = {}
        self.closed = False

    def close(self) -> None:
        self.closed = True

    def check(self) -> list[str]:
        seqs = [e.seq for e in self.log]
        return [] if seqs == sorted(set(seqs)) else ["log seq not strictly increasing"]

    def _append(self, op, users, items, weights, timestamps) -> int:
        with self.lock:
            for k, (u, i) in enumerate(zip(users, items)):
                self.log.append(
                    LogEntry(
                        len(self.log) + 1,
                        op,
                        u,
                        i,
                        None if weights is None else float(weights[k]),
                        None if timestamps is None else timestamps[k],
                    )
                )
            return len(self.log)

    def append_interactions(self, users, items, weights, timestamps=None) -> int:
        return self._append("add", users, items, weights, timestamps)

    def append_removals(self, users, items) -> int:
        return self._append("remove", users, items, None, None)

    def log_since(self, watermark, *, batch_size=100_000):
        with self.lock:
            entries = [e for e in self.log if e.seq > watermark]
        for start in range(0, len(entries), batch_size):
            yield entries[start : start + batch_size]

    def watermark(self) -> int:
        return len(self.log)

    def put_users(self, users) -> None:
        self.users.update(users)

    def get_user(self, user):
        return self.users.get(user)

    def put_items(self, items) -> None:
        with self.lock:
            self.items.update(items)

    def get_item(self, item):
        return self.items.get(item)

    def iter_items(self, *, batch_size=10_000):
        with self.lock:
            pairs = list(self.items.items())
        for start in range(0, len(pairs), batch_size):
            yield pairs[start : start + batch_size]

    def iter_users(self, *, batch_size=10_000):
        with self.lock:
            pairs = list(self.users.items())
        for start in range(0, len(pairs), batch_size):
            yield pairs[start : start + batch_size]

    def counts(self):
        return {
            "users": len(self.users),
            "items": len(self.items),
            "log": len(self.log),
            "jobs": len(self.job_table),
            "tokens": len(self.tokens),
            "snapshots": len(self.snapshots),
        }

    def record_snapshot(self, path, algorithm, watermark):
        with self.lock:
            record = SnapshotRecord(len(self.snapshots) + 1, path, algorithm, watermark, time.time())
            self.snapshots.append(record)
            return record

    def latest_snapshot(self):
        return self.snapshots[-1] if self.snapshots else None

    def create_token(self, role, user=None, *, label=""):
        secret = secrets.token_urlsafe(24)
        record = TokenRecord(secrets.token_hex(6), role, user, time.time(), False, label)
        self.tokens[record.id] = (record, hashlib.sha256(secret.encode()).digest())
        return record, secret

    def verify_token(self, secret):
        digest = hashlib.sha256(secret.encode()).digest()
        for record, stored in self.tokens.values():
            if hmac.compare_digest(stored, digest) and not record.revoked:
                return record
        return None

    def revoke_token(self, token_id):
        if token_id not in self.tokens:
            return False
        record, digest = self.tokens[token_id]
        self.tokens[token_id] = (
            TokenRecord(record.id, record.role, record.user, record.created, True, record.label),
            digest,
        )
        return True

    def list_tokens(self):
        return [record for record, _ in self.tokens.values()]

    def enqueue_job(self, kind, args=None, *, max_attempts=3, run_at=None):
        with self.lock:
            now = time.time()
            job = Job(
                len(self.job_table) + 1,
                kind,
                dict(args or {}),
                "available",
                0,
                max_attempts,
                now if run_at is None else run_at,
                created=now,
                updated=now,
            )
            self.job_table[job.id] = job
            return job

    def claim_job(self, kinds=None):
        with self.lock:
            for job in sorted(self.job_table.values(), key=lambda j: j.id):
                if (
                    job.state in ("available", "retryable")
                    and job.run_at <= time.time()
                    and (kinds is None or job.kind in kinds)
                ):
                    job.state, job.attempts = "executing", job.attempts + 1
                    return job
        return None

    def set_job_progress(self, job_id, progress):
        self.get_job(job_id).progress = progress

    def complete_job(self, job_id, result=None):
        job = self.get_job(job_id)
        job.state, job.result, job.progress = "completed", result, 1.0
        return job

    def fail_job(self, job_id, error):
        job = self.get_job(job_id)
        job.error = error
        job.state = "retryable" if job.attempts < job.max_attempts else "discarded"
        return job

    def recover_jobs(self):
        stuck = [j for j in self.job_table.values() if j.state == "executing"]
        for job in stuck:
            job.state = "retryable" if job.attempts < job.max_attempts else "discarded"
        return len(stuck)

    def get_job(self, job_id):
        try:
            return self.job_table[job_id]
        except KeyError:
            raise UnknownJobError(f"no job {job_id}") from None

    def list_jobs(self, state=None, *, limit=100):
        jobs = [j for j in self.job_table.values() if state is None or j.state == state]
        return sorted(jobs, key=lambda j: -j.id)[:limit]
