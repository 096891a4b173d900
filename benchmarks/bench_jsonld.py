"""JSON-LD ingestion: activities per second through the msgspec fast path against PyLD alone.

    python benchmarks/bench_jsonld.py              # 50,000 flat AS2 activities (PyLD on the first 2,000)

Both paths turn JSON text into interactions (expansion, then ActivityMapper)
on the same documents; the fast path's expansion equals PyLD's
(tests/test_jsonld_fast.py).
"""

from __future__ import annotations

import argparse
import json
import time

from backpack.jsonld.activities import ActivityMapper
from backpack.jsonld.fast_path import expand_many
from backpack.jsonld.processing import expand

KINDS = ["Like", "View", "Announce", "Add", "Follow", "Create"]


def documents(n: int) -> list[bytes]:
    return [
        json.dumps(
            {
                "@context": "https://www.w3.org/ns/activitystreams",
                "id": f"https://social.example/activities/{i}",
                "type": KINDS[i % len(KINDS)],
                "actor": f"https://social.example/users/{i % 5000}",
                "object": f"https://assets.example/items/{i % 20000}",
                "published": "2026-11-23T12:00:00Z",
            }
        ).encode()
        for i in range(n)
    ]


def rate(fn, docs) -> float:
    start = time.perf_counter()
    mapped = fn(docs)
    seconds = time.perf_counter() - start
    assert len(mapped.interactions) == len(docs)
    return len(docs) / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--activities", type=int, default=50_000)
    parser.add_argument("--pyld-activities", type=int, default=2_000)
    args = parser.parse_args()
    docs = documents(args.activities)
    fast = rate(lambda d: ActivityMapper().map(expand_many(d)), docs)
    slow = rate(
        lambda d: ActivityMapper().map([n for raw in d for n in expand(json.loads(raw))]), docs[: args.pyld_activities]
    )
    print("| path | activities | activities/s | ratio |")
    print("|---|---:|---:|---:|")
    print(f"| fast path (msgspec) | {args.activities:,} | {fast:,.0f} | {fast / slow:.1f}x |")
    print(f"| PyLD only | {args.pyld_activities:,} | {slow:,.0f} | 1.0x |")


if __name__ == "__main__":
    main()
