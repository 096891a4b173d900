"""A glTF whose nodes form one chain: reading cost against node count, today's paths against the
old walk up from every node (quadratic), in one run.

    python benchmarks/bench_scene_chain.py          # chains of 2,000 and 16,000 nodes

Linear reading shows as a time ratio near the node ratio (8x); the old walk's ratio is near 64x.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

from backpack.scenes.gltf import read_gltf


def chain(path: Path, count: int) -> Path:
    nodes = [{"name": f"n{k}", "children": [k + 1]} for k in range(count - 1)] + [{"name": f"n{count - 1}"}]
    path.write_text(json.dumps({"asset": {"version": "2.0"}, "scenes": [{"nodes": [0]}], "nodes": nodes}))
    return path


def old_walk(count: int) -> None:
    """The paths as the old reader built them: walking up from each node to its root."""
    parents = {k + 1: k for k in range(count - 1)}
    names = [f"n{k}" for k in range(count)]
    for number in range(count):
        parts, node = [], number
        while node is not None:
            parts.append(names[node])
            node = parents.get(node)
        "/".join(reversed(parts))


def timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        small, large = 2_000, 16_000
        now = [timed(read_gltf, chain(Path(tmp) / f"{n}.gltf", n)) for n in (small, large)]
        old = [timed(old_walk, n) for n in (small, large)]
    print(f"read_gltf, chain of {small:,}: {now[0]:.3f} s; of {large:,}: {now[1]:.3f} s; ratio {now[1] / now[0]:.1f}x")
    print(f"old path walk alone:  {old[0]:.3f} s; {old[1]:.3f} s; ratio {old[1] / old[0]:.1f}x")
    print(f"today / old at {large:,} nodes: {now[1] / old[1]:.2f}")


if __name__ == "__main__":
    main()
