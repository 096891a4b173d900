"""The protocol's write ops, group-committed.

Every write (``add_interactions``, ``remove_interactions``, ``put_items``, ``ingest``) is checked
where it arrives, so a bad request fails alone, then queued; everything queued while the
previous commit is being made durable is committed together in arrival order: stored first,
then applied to the engine, then acknowledged (group commit).
"""

from __future__ import annotations

import math
from collections.abc import Callable

from backpack.core.bags import id_lists, weight_array
from backpack.core.files import crash_point
from backpack.core.timestamps import timestamp_array
from backpack.errors import InvalidInputError
from backpack.jsonld.processing import expand_documents
from backpack.serving.requests import Caller, is_number, strings
from backpack.store.base import WriteBatch

WRITES_PER_COMMIT = 1024  # requests in one group commit (each holds at most Limits.max_batch rows)


class WriteOps:
    """The write ops over one engine and its store, for :class:`~backpack.serving.server.Server`.

    A subclass provides ``engine``, ``store``, ``writes`` (a
    :class:`~backpack.serving.coalescing.Coalescer` over :meth:`_commit_writes`), ``_write_lock``
    and ``_run``, as it does for :class:`~backpack.serving.reads.ReadOps`.
    """

    def _pairs(self, caller: Caller, args: dict) -> tuple[list[str], list[str]]:
        users, items = strings(args, "users"), strings(args, "items")
        if len(users) != len(items):
            raise InvalidInputError(f"got {len(users)} users but {len(items)} items")
        self._check_batch(len(users), "interactions")
        caller.require_own(users)
        # checked here, not by the store: a bad request must fail alone, not the group commit it joins
        return id_lists(users, items)

    async def _op_add_interactions(self, caller: Caller, args: dict) -> dict:
        users, items = self._pairs(caller, args)
        weights = self._weights(args, len(users))
        raw_times = args.get("timestamps")
        times = None
        if raw_times is not None:
            if not isinstance(raw_times, list) or any(t is not None and not is_number(t) for t in raw_times):
                raise InvalidInputError("timestamps must be a list of numbers (epoch seconds) or nulls")
            times = [None if math.isnan(t) else t for t in timestamp_array(raw_times, len(users)).tolist()]
        watermark = await self._write(("add", users, items, weights, times))
        return {"added": len(users), "watermark": watermark}

    def _weights(self, args: dict, count: int) -> list[float]:
        weights, kinds = args.get("weights"), args.get("kinds")
        if weights is not None and kinds is not None:
            raise InvalidInputError("pass weights or kinds, not both")
        if kinds is not None:
            if not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                raise InvalidInputError("kinds must be a list of strings")
            unknown = sorted({k for k in kinds if k not in self.engine.kind_weights})
            if unknown:
                raise InvalidInputError(
                    f"unknown interaction kind(s) {unknown}; known: {sorted(self.engine.kind_weights)}"
                )
            weights = [self.engine.kind_weights[k] for k in kinds]
        if weights is None:
            return [1.0] * count
        if not isinstance(weights, list) or not all(is_number(w) for w in weights):
            raise InvalidInputError("weights must be a list of numbers")
        return weight_array(weights, count).tolist()

    async def _op_remove_interactions(self, caller: Caller, args: dict) -> dict:
        users, items = self._pairs(caller, args)
        return {"removed": await self._write(("remove", users, items, None, None))}

    async def _write(self, write: tuple) -> int:
        """Queue ``write`` for the next group commit; its result, or its run's failure raised."""
        result = await self.writes.submit(None, write)
        if isinstance(result, BaseException):
            raise result
        return result

    def _commit_writes(self, _key, writes: list[tuple]) -> list:
        """Group commit: the queued writes (``(op, users, items, weights, times)`` for adds and
        removals, ``(op, records)`` for ``put_items`` and ``ingest``), each run of consecutive adds
        (or removals) stored in one transaction, documents one request at a time, then applied to
        the engine. Results in order: an add's watermark, a removal's count of pairs that were
        present, a document write's reply, or
        the exception that failed its run (that run only: the runs before it are durable and
        applied, and must be answered as such)."""
        results: list = []
        with self._write_lock:
            start = 0
            while start < len(writes):
                stop = start + 1
                while stop < len(writes) and writes[stop][0] == writes[start][0]:
                    stop += 1
                commit = self._commits[writes[start][0]]
                try:
                    results += commit(writes[start:stop])
                except Exception as exc:  # noqa: BLE001 - handed to this run's requests
                    results += [exc] * (stop - start)
                start = stop
        return results

    @property
    def _commits(self) -> dict[str, Callable[[list[tuple]], list]]:
        """How each kind of queued write is committed, a run of them at a time."""
        return {
            "add": self._commit_adds,
            "remove": self._commit_removals,
            "items": self._commit_documents,
            "documents": self._commit_documents,
        }

    def _commit_adds(self, writes: list[tuple]) -> list:
        # Each request checked again on its own (the rule the store and the engine apply): one that
        # slipped past its arrival check fails alone instead of failing, or half-storing, the run.
        results: list = [None] * len(writes)
        good = []
        for k, w in enumerate(writes):
            try:
                weight_array(w[3], len(w[1]))
                id_lists(w[1], w[2])
                good.append(k)
            except InvalidInputError as exc:
                results[k] = exc
        runs = [writes[k] for k in good]
        users = [u for w in runs for u in w[1]]
        if not users:
            watermark = self.store.watermark()
            return [watermark if r is None else r for r in results]
        items = [i for w in runs for i in w[2]]
        weights = [x for w in runs for x in w[3]]
        times = [t for w in runs for t in (w[4] if w[4] is not None else [None] * len(w[1]))]
        last = self.store.append_interactions(users, items, weights, times)
        self.engine.add_interactions(users, items, weights, timestamps=None if all(t is None for t in times) else times)
        # one call's log positions are consecutive: a request's last row is `last` minus the rows after it
        after = len(users)
        for k in good:
            after -= len(writes[k][1])
            results[k] = last - after
        return results

    def _commit_removals(self, writes: list[tuple]) -> list[int]:
        users = [u for w in writes for u in w[1]]
        items = [i for w in writes for i in w[2]]
        if users:
            self.store.append_removals(users, items)
        return [sum(self.engine.remove_interaction(u, i) for u, i in zip(w[1], w[2])) for w in writes]

    async def _op_put_items(self, caller: Caller, args: dict) -> dict:
        if "items" not in args:
            raise InvalidInputError("put_items needs items: a JSON-LD node, a list of them or a @graph document")
        items = await self._run(self._map_items, args["items"])
        return {"stored": await self._write(("items", items))}

    def _map_items(self, documents) -> list:
        # expanded and checked (absolute IRIs, item types), all or nothing, before anything is queued
        items = self.engine.mapper.map(expand_documents(documents), only="items").items
        self._check_batch(len(items), "items")
        return items

    async def _op_ingest(self, caller: Caller, args: dict) -> dict:
        if "documents" not in args:
            raise InvalidInputError(
                "ingest needs documents: a JSON-LD document (activities, objects, actors) or a list of them"
            )
        records = await self._run(self._map_documents, args["documents"])
        return await self._write(("documents", records))

    def _map_documents(self, documents):
        # every node expanded and mapped before anything is queued: a bad node stores nothing
        records = self.engine.mapper.map(expand_documents(documents))
        activities = records.activities
        self._check_batch(
            len(records.items) + len(records.users) + len(activities.interactions) + len(activities.removals),
            "records",
        )
        return records

    def _commit_documents(self, writes: list[tuple]) -> list:
        """Each queued ``put_items`` / ``ingest`` in turn: stored, then applied; a failure is its own."""
        results: list = []
        for op, records in writes:
            try:
                results.append(self._store_items(records) if op == "items" else self._store_documents(records))
            except Exception as exc:  # noqa: BLE001 - handed to this request only
                results.append(exc)
        return results

    def _store_items(self, items: list) -> int:
        self.store.put_items({r.id: r.node for r in items})
        return self.engine.put_items([r.node for r in items], expanded=True)

    def _store_documents(self, records) -> dict:
        adds, removals = records.activities.interactions, records.activities.removals
        users, items, weights = [a.user for a in adds], [a.item for a in adds], [a.weight for a in adds]
        times = [a.timestamp for a in adds]
        # one durable unit: the log gets the adds, then Undo's removals, in the order the engine applies them
        batch = WriteBatch(
            items={r.id: r.node for r in records.items},
            users={u.id: u.node for u in records.users},
            adds=[(users, items, weights, times)] if adds else [],
            removals=([r.user for r in removals], [r.item for r in removals]),
        )
        watermark = self.store.write_batch(batch)
        crash_point("ingest:stored")
        if records.items:
            self.engine.put_items([r.node for r in records.items], expanded=True)
        if records.users:
            self.engine.put_users([u.node for u in records.users], expanded=True)
        if adds:
            self.engine.add_interactions(
                users, items, weights, timestamps=None if all(t is None for t in times) else times
            )
        removed = sum(self.engine.remove_interaction(r.user, r.item) for r in removals)
        crash_point("ingest:applied")
        return {
            "interactions": len(adds),
            "undone": len(removals),
            "removed": removed,
            "items": len(records.items),
            "users": len(records.users),
            "watermark": watermark,
        }
