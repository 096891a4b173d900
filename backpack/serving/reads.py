"""The protocol's read ops (recommend, recommend_batch, recommend_bag, similar_items), host-independent."""

from __future__ import annotations

from backpack.engine.engine import Engine
from backpack.errors import InvalidInputError, ProtocolError
from backpack.serving.coalescing import Coalescer
from backpack.serving.requests import (
    Caller,
    Limits,
    is_number,
    optional,
    optional_strings,
    plain_recommendations,
    reply_format,
    required,
    strings,
)


class ReadOps:
    """The protocol's read operations over one engine: argument checks, the engine call, the result.

    :class:`Server` answers them on its socket; :class:`~backpack.ray.serve.EngineReplica` answers the
    same ops on Ray Serve replicas. Keeping them in one place is what makes both give the same results,
    the same error codes and the same messages. A subclass provides ``engine``, ``limits``,
    ``recommends`` (a :class:`~backpack.serving.coalescing.Coalescer` over :meth:`_recommend_batch`) and ``_run``
    (a blocking call in a worker thread).
    """

    engine: Engine
    limits: Limits
    recommends: Coalescer

    async def _run(self, fn, *args, **kwargs):
        raise NotImplementedError  # each host runs blocking calls its own way

    def _check_batch(self, count: int, what: str) -> None:
        if count > self.limits.max_batch:
            raise ProtocolError(
                "batch_too_large", f"{count} {what} in one request; the limit is {self.limits.max_batch}: split it"
            )

    def _check_results(self, rows: int, n: int) -> None:
        # users x n, not each alone: 2,000 x 2,000 passes max_batch twice yet builds a 349 MB reply
        if rows * n > self.limits.max_results:
            raise ProtocolError(
                "too_many_results",
                f"{rows} x n={n} is {rows * n} results; the limit is {self.limits.max_results}: split it or lower n",
            )

    async def _op_recommend(self, caller: Caller, args: dict):
        user = required(args, "user", str)
        caller.require_own([user])
        n, filters = self._list_args(args)
        fmt = reply_format(args)
        key = (
            n,
            optional(args, "filter_owned", bool, True),
            None if filters["items"] is None else tuple(filters["items"]),
            None if filters["exclude"] is None else tuple(filters["exclude"]),
            filters["item_kind"],
        )
        recs = await self.recommends.submit(key, user)
        if fmt == "jsonld":
            return await self._run(self._collection, recs, for_user=user)
        return {"items": plain_recommendations(recs)}

    def _recommend_batch(self, key: tuple, users: list[str]) -> list:
        """The coalesced single-user recommends of one key, answered by one core call."""
        n, filter_owned, items, exclude, item_kind = key
        return self.engine.recommend_batch(
            users,
            n,
            filter_owned=filter_owned,
            items=None if items is None else list(items),
            exclude=None if exclude is None else list(exclude),
            item_kind=item_kind,
        )

    def _collection(self, recs, **about) -> dict:
        from backpack.jsonld.as2_output import recommendations_collection

        return recommendations_collection(recs, algorithm=self.engine.serving["algorithm"], **about)

    def _list_args(self, args: dict) -> tuple[int, dict]:
        n = optional(args, "n", int, 10)
        self._check_batch(n, "results")
        self._check_results(1, n)
        filters = {
            "items": optional_strings(args, "items"),
            "exclude": optional_strings(args, "exclude"),
            "item_kind": optional(args, "item_kind", str, None),
        }
        for name in ("items", "exclude"):
            if filters[name] is not None:
                self._check_batch(len(filters[name]), name)
        return n, filters

    async def _op_recommend_batch(self, caller: Caller, args: dict) -> dict:
        users = strings(args, "users")
        self._check_batch(len(users), "users")
        caller.require_own(users)
        n, filters = self._list_args(args)
        self._check_results(len(users), n)
        results = await self._run(
            self.engine.recommend_batch, users, n, filter_owned=optional(args, "filter_owned", bool, True), **filters
        )
        return {"results": [plain_recommendations(r) for r in results]}

    async def _op_recommend_bag(self, caller: Caller, args: dict) -> dict:
        items = strings(args, "items")
        self._check_batch(len(items), "items")
        weights = args.get("weights")
        if weights is not None and (not isinstance(weights, list) or not all(is_number(w) for w in weights)):
            raise InvalidInputError("weights must be a list of numbers")
        n = optional(args, "n", int, 10)
        self._check_batch(n, "results")
        self._check_results(1, n)
        recs = await self._run(
            self.engine.recommend_bag,
            items,
            weights,
            n,
            filter_owned=optional(args, "filter_owned", bool, True),
            item_kind=optional(args, "item_kind", str, None),
        )
        return {"items": plain_recommendations(recs)}

    async def _op_similar_items(self, caller: Caller, args: dict):
        item = required(args, "item", str)
        n, filters = self._list_args(args)
        fmt = reply_format(args)
        recs = await self._run(
            self.engine.similar_items, item, n, based_on=optional(args, "based_on", str, "auto"), **filters
        )
        if fmt == "jsonld":
            return await self._run(self._collection, recs, similar_to=item)
        return {"items": plain_recommendations(recs)}
