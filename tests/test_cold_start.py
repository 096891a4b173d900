"""Cold start from descriptions alone, the content index, and the hybrid recommender."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tokenizers", reason="the text-embedding task needs tokenizers (pip install '.[test]')")

import backpack  # noqa: E402
from backpack.algorithms.hybrid import HybridRecommender, unit_profiles  # noqa: E402
from backpack.cli.main import main  # noqa: E402
from backpack.content.index import ContentIndex  # noqa: E402
from backpack.models.export import export_factor_model  # noqa: E402
from backpack.models.tasks import task_status  # noqa: E402
from backpack.models.text_embedding import TextEmbeddingTask  # noqa: E402

if not TextEmbeddingTask.available():
    pytest.skip(TextEmbeddingTask.unavailable_reason(), allow_module_level=True)

THEMES = {
    "wizard": [
        "wizard hat with stars",
        "apprentice wizard robe",
        "magic wand of oak",
        "wizard spell book",
        "sorcerer staff with a crystal",
    ],
    "pirate": [
        "pirate captain hat",
        "pirate boots of leather",
        "wooden pirate ship",
        "treasure chest of gold",
        "pirate cutlass sword",
    ],
    "space": [
        "astronaut space helmet",
        "space station module",
        "rocket ship to the moon",
        "alien ray gun",
        "space suit with oxygen tank",
    ],
}
NEW_ITEMS = {  # described, never interacted with
    "urn:new:wizard": ("Enchanted wizard hat", "a pointed hat for wizards and sorcerers, covered in magic stars"),
    "urn:new:pirate": ("Pirate parrot", "a talking parrot for your pirate captain's shoulder"),
}


def describe(item: str, name: str, description: str = "") -> dict:
    return {"@context": "https://schema.org", "@id": item, "@type": "3DModel", "name": name, "description": description}


@pytest.fixture(scope="module")
def engine():
    rng = np.random.default_rng(0)
    e = backpack.Engine(num_threads=1)
    users, items = [], []
    for theme, names in THEMES.items():
        for u in range(12):
            for i in rng.choice(len(names), size=3, replace=False):
                users.append(f"{theme}-fan-{u}")
                items.append(f"urn:{theme}:{i}")
    e.add_interactions(users, items)
    docs = [describe(f"urn:{t}:{i}", n) for t, names in THEMES.items() for i, n in enumerate(names)]
    docs += [describe(item, name, text) for item, (name, text) in NEW_ITEMS.items()]
    assert e.put_items(docs) == len(docs)
    e.fit_content()
    return e


def test_items_described_before_any_interaction_get_an_index_and_a_kind(engine):
    for item in NEW_ITEMS:
        assert engine.bags.item_index(item) >= 0
        assert engine.item_kinds.get(item) == "3DModel"
    assert engine.bags.nnz == 3 * 12 * 3  # describing added no interaction


def test_cold_item_similar_items_come_from_its_description(engine):
    engine.fit("als", factors=8, iterations=5, random_state=0)
    for item, theme in [("urn:new:wizard", "wizard"), ("urn:new:pirate", "pirate")]:
        similar = engine.similar_items(item, n=5)
        assert all(r.source == "content" for r in similar)
        assert sum(r.item.startswith(f"urn:{theme}:") for r in similar) >= 4, similar
        assert item not in [r.item for r in similar]
        # a warm item keeps its collaborative neighbours unless content is asked for
        assert {r.source for r in engine.similar_items(f"urn:{theme}:0", n=3)} == {"personal"}
        assert {r.source for r in engine.similar_items(f"urn:{theme}:0", n=3, based_on="content")} == {"content"}


def test_content_similar_items_honour_filters(engine):
    got = engine.similar_items(
        "urn:new:wizard",
        n=3,
        exclude=["urn:wizard:0"],
        items=["urn:wizard:0", "urn:wizard:1", "urn:pirate:0", "urn:space:0"],
    )
    assert [r.item for r in got][:1] == ["urn:wizard:1"] and "urn:wizard:0" not in [r.item for r in got]
    assert len(got) == 3
    with pytest.raises(backpack.InvalidInputError, match="based_on"):
        engine.similar_items("urn:new:wizard", based_on="vibes")


def test_content_index_matches_a_numpy_cosine_ranking():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((200, 16)).astype(np.float32)
    ids = [f"i{k}" for k in range(200)]
    index = ContentIndex(ids, vectors * rng.uniform(0.5, 3, (200, 1)))  # scale must not matter
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    for row in (0, 17, 199):
        cos = unit @ unit[row]
        cos[row] = -np.inf
        denied = {f"i{k}" for k in np.argsort(-cos)[:3]}
        allowed = [f"i{k}" for k in range(0, 200, 2)]
        want = [f"i{k}" for k in np.argsort(-cos) if f"i{k}" not in denied and k % 2 == 0][:7]
        got = index.similar(f"i{row}", 7, allowed=allowed, denied=denied)
        assert [i for i, _ in got] == want
        np.testing.assert_allclose([s for _, s in got], [cos[int(i[1:])] for i in want], atol=1e-5)
    assert index.aligned(["i3", "nope"])[1].tolist() == [0.0] * 16
    with pytest.raises(backpack.UnknownItemError, match="no description"):
        index.similar("nope")


def test_hybrid_recommends_a_cold_item_to_the_fans_of_its_theme(engine):
    engine.fit("als", factors=8, iterations=5, random_state=0)
    als_lists = {u: [r.item for r in engine.recommend(u, n=3)] for u in ("wizard-fan-1", "pirate-fan-2")}
    assert not any(i.startswith("urn:new:") for lst in als_lists.values() for i in lst)  # ALS cannot know them
    engine.fit("hybrid", factors=8, iterations=5, random_state=0, content_weight=0.5)
    assert "urn:new:wizard" in [r.item for r in engine.recommend("wizard-fan-1", n=3)]
    assert "urn:new:pirate" in [r.item for r in engine.recommend("pirate-fan-2", n=3)]
    assert "urn:new:wizard" not in [r.item for r in engine.recommend("pirate-fan-2", n=3)]


def test_hybrid_scores_are_the_stated_blend(engine):
    model = engine.fit("hybrid", factors=8, iterations=5, random_state=0, content_weight=0.3)
    rows = engine.bags.rows(engine.bags.user_indices(["wizard-fan-0", "space-fan-3", "pirate-fan-5"]))
    ids, scores = model.recommend_rows(rows, 5)
    cf = model.cf.user_vectors(rows) @ model.cf.item_factors.T
    content = model.content_factors / np.maximum(np.linalg.norm(model.content_factors, axis=1, keepdims=True), 1e-12)
    want = 0.7 / model.scale * cf + 0.3 * (unit_profiles(rows, content) @ content.T)
    for r in range(3):
        np.testing.assert_allclose(scores[r], want[r, ids[r]], rtol=1e-4, atol=1e-5)
        held = set(rows[r].indices)
        best = [i for i in np.argsort(-want[r]) if i not in held][:5]
        assert ids[r].tolist() == best


def test_hybrid_exports_to_onnx_and_saves(engine, tmp_path):
    model = engine.fit("hybrid", factors=8, iterations=5, random_state=0, content_weight=0.4)
    rows = engine.bags.rows(engine.bags.user_indices([f"wizard-fan-{u}" for u in range(6)]))
    served = backpack.BackendServedModel(model, "onnx")
    want, got = model.recommend_rows(rows, 6), served.recommend_rows(rows, 6)
    assert got[0].tolist() == want[0].tolist()
    np.testing.assert_allclose(got[1], want[1], atol=1e-5)
    assert export_factor_model(model).SerializeToString() == export_factor_model(model).SerializeToString()

    engine.save(tmp_path / "data")
    reopened = backpack.Engine.open(tmp_path / "data")
    assert len(reopened.item_descriptions) == len(engine.item_descriptions)
    assert reopened.content is not None and len(reopened.content) == len(engine.content)
    assert reopened.recommend("wizard-fan-1", n=5) == engine.recommend("wizard-fan-1", n=5)
    assert reopened.similar_items("urn:new:wizard", n=4) == engine.similar_items("urn:new:wizard", n=4)


def test_errors_say_what_to_do():
    e = backpack.Engine()
    with pytest.raises(backpack.NotFittedError, match="put_items"):
        e.fit_content()
    with pytest.raises(backpack.InvalidInputError, match="has no @id"):
        e.put_items([{"@type": "3DModel", "name": "no id"}])
    with pytest.raises(backpack.InvalidInputError, match="has no @type"):
        e.put_items([{"@id": "urn:x:1", "name": "no type"}])
    with pytest.raises(backpack.InvalidInputError, match="not an absolute IRI"):
        e.put_items([{"@id": "hat", "@type": "3DModel"}])
    with pytest.raises(backpack.InvalidInputError, match="must be objects or a list"):
        e.put_items("hat")
    e.add_interactions(["a", "b"], ["x", "y"])
    with pytest.raises(backpack.NotFittedError, match="fit_content"):
        e.fit("hybrid")
    with pytest.raises(backpack.InvalidInputError, match="content_weight"):
        HybridRecommender(content_weight=1.5)


def test_cli_embeds_descriptions_and_serves_cold_items(tmp_path, capsys):
    data = tmp_path / "data"
    csv = tmp_path / "interactions.csv"
    csv.write_text(
        "user,item\n"
        + "".join(f"{t}-fan-{u},urn:{t}:{(u + k) % 5}\n" for t in THEMES for u in range(6) for k in range(2))
    )
    items = tmp_path / "items.jsonld"
    items.write_text(
        json.dumps(
            {
                "@context": "https://schema.org",
                "@graph": [
                    {"@id": f"urn:{t}:{i}", "@type": "3DModel", "name": n}
                    for t, names in THEMES.items()
                    for i, n in enumerate(names)
                ]
                + [
                    {"@id": item, "@type": "3DModel", "name": name, "description": text}
                    for item, (name, text) in NEW_ITEMS.items()
                ],
            }
        )
    )

    def run_json(*args):
        code = main([*args, "--data-dir", str(data), "--json", "--no-progress"])
        out = capsys.readouterr().out
        assert code == 0, out
        return json.loads(out)

    assert run_json("import", str(csv), str(items))["items"] == 17
    embedded = run_json("embed")
    assert embedded["items"] == 17 and embedded["dim"] == 384
    similar = run_json("similar", "urn:new:pirate", "-n", "5")
    assert sum(r["item"].startswith("urn:pirate:") for r in similar[0]["similar"]) >= 4
    run_json("fit", "hybrid", "-p", "factors=4", "-p", "content_weight=0.5")
    listing = run_json("models")
    assert listing["models"][0]["algorithm"] == "hybrid"
    status = task_status()
    assert {t["name"] for t in listing["tasks"] if t["available"]} == {n for n, s in status.items() if s["available"]}
    assert {"text-embedding", "object-detection"} <= {t["name"] for t in listing["tasks"] if t["available"]}
