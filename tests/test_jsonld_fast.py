"""The msgspec fast path gives exactly PyLD's expansion wherever it applies, and falls back elsewhere."""

from __future__ import annotations

import json

from test_jsonld_corpus import corpus

from backpack.jsonld.fast_path import expand_many, fast_expand
from backpack.jsonld.processing import expand

AS2 = "https://www.w3.org/ns/activitystreams"


def flat(n: int, **extra) -> dict:
    doc = {
        "@context": AS2,
        "id": f"https://s.example/a/{n}",
        "type": ["Like", "View", "Announce", "Add", "Follow", "Create", "Undo"][n % 7],
        "actor": f"https://s.example/u/{n % 5}",
        "object": f"https://a.example/i/{n}",
    }
    if n % 2:
        doc["published"] = "2026-11-23T12:00:00Z"
    return {**doc, **extra}


def test_fast_expansion_equals_pyld_on_the_corpus_and_flat_activities(capsys):
    docs = corpus() + [flat(n) for n in range(200)]
    taken = 0
    for doc in docs:
        raw = json.dumps(doc)
        fast = fast_expand(raw)
        if fast is not None:
            taken += 1
            assert fast == expand(doc), doc
    with capsys.disabled():
        print(f"\nfast path: {taken} of {len(docs)} documents taken, all equal to PyLD's expansion")
    assert taken >= 200


def test_anything_else_falls_back_to_pyld():
    others = [
        flat(1, **{"@context": [AS2]}),
        flat(2, extra="x"),
        flat(3, actor="users/1"),
        flat(4, object={"id": "https://a.example/x", "type": "Note"}),
        flat(5, type="Wave"),
        flat(6, actor="as:Public"),
        flat(7, published=5),
    ]
    for doc in others:
        assert fast_expand(json.dumps(doc)) is None
    stats = {}
    nodes = expand_many([json.dumps(d) for d in others[:4]] + [json.dumps(flat(9))], stats=stats)
    assert stats == {"fast": 1, "pyld": 4}
    assert nodes == [n for d in others[:4] + [flat(9)] for n in expand(d)]
