"""Item features from JSON-LD and content similarity through the item-kNN core."""

from __future__ import annotations

import numpy as np
import pytest

import backpack
from backpack.content.features import FeatureIndex, item_features

SCHEMA, AS2 = "http://schema.org/", "https://www.w3.org/ns/activitystreams#"


def test_features_from_schema_org_as2_and_expanded_nodes_agree():
    compact = {
        "@context": "https://schema.org",
        "@id": "urn:x:1",
        "@type": ["3DModel", "VideoGame"],
        "keywords": "Pirate, Hat",
        "creator": {"@id": "https://ex.org/ana"},
        "license": "https://creativecommons.org/licenses/by/4.0/",
        "genre": "Racing",
    }
    expanded = [
        {
            "@id": "urn:x:1",
            "@type": [SCHEMA + "3DModel", SCHEMA + "VideoGame"],
            SCHEMA + "keywords": [{"@value": "Pirate, Hat"}],
            SCHEMA + "creator": [{"@id": "https://ex.org/ana"}],
            SCHEMA + "license": [{"@value": "https://creativecommons.org/licenses/by/4.0/"}],
            SCHEMA + "genre": [{"@value": "Racing"}],
        }
    ]
    want = [
        "creator:https://ex.org/ana",
        "genre:racing",
        "keyword:hat",
        "keyword:pirate",
        "license:https://creativecommons.org/licenses/by/4.0/",
        "type:3DModel",
        "type:VideoGame",
    ]
    assert item_features(compact) == want
    assert item_features(expanded) == want
    note = {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": "https://s.example/n/1",
        "type": "Note",
        "attributedTo": "https://s.example/users/bo",
        "tag": [{"type": "Hashtag", "name": "#Cozy"}, {"type": "Mention", "name": "@ana"}],
    }
    assert item_features(note) == ["creator:https://s.example/users/bo", "keyword:cozy", "type:Note"]
    assert item_features({"@id": "urn:x:2", "features": ["node:Camera3D"]}) == ["node:Camera3D"]
    # however Backpack's own term is spelled: compacted by its context, prefixed, or expanded
    for key in ("feature", "bp:feature", "backpack:features", "https://backpack.dev/ns#feature"):
        assert item_features({"@id": "urn:x:3", key: ["meta:tags=pirate"]}) == ["meta:tags=pirate"]


def test_feature_index_matches_a_cosine_reference():
    rng = np.random.default_rng(3)
    tokens = [f"t{k}" for k in range(30)]
    features = {f"i{n}": list(rng.choice(tokens, size=rng.integers(1, 6), replace=False)) for n in range(60)}
    index = FeatureIndex(features, similarity="cosine")
    m = np.array([[t in features[i] for t in tokens] for i in index.item_ids], dtype=float)
    unit = m / np.linalg.norm(m, axis=1, keepdims=True)
    for row in (0, 9, 59):
        cos = unit @ unit[row]
        cos[row] = 0
        got = index.similar(f"i{row}", 8)
        assert all(s > 0 for _, s in got) and len(got) == min(8, int((cos > 0).sum()))
        np.testing.assert_allclose([s for _, s in got], np.sort(cos[cos > 0])[::-1][: len(got)], atol=1e-5)
        assert f"i{row}" not in [i for i, _ in got]
    with pytest.raises(backpack.UnknownItemError):
        index.similar("nope")


def test_engine_cold_start_from_features_alone():
    engine = backpack.Engine()
    engine.add_interactions(["a", "a", "b"], ["urn:hat:1", "urn:boot:1", "urn:hat:1"])
    engine.put_items(
        [
            {"@id": "urn:hat:1", "@type": "3DModel", "keywords": "hat, pirate"},
            {"@id": "urn:boot:1", "@type": "3DModel", "keywords": "boots, pirate"},
            {"@id": "urn:car:1", "@type": "Product", "keywords": "car, racing"},
            {"@id": "urn:hat:new", "@type": "3DModel", "keywords": "hat, wizard"},
        ]
    )
    assert [engine.bags.item_user_count(i) for i in ("urn:hat:1", "urn:hat:new", "unknown")] == [2, 0, 0]
    engine.fit("itemknn", k=5)
    engine.fit_features()
    got = engine.similar_items("urn:hat:new", n=3)
    assert [r.item for r in got][:1] == ["urn:hat:1"] and {r.source for r in got} == {"content"}
    assert "urn:car:1" not in [r.item for r in got]  # shares nothing
    assert [r.item for r in engine.similar_items("urn:hat:new", n=3, exclude=["urn:hat:1"])] == ["urn:boot:1"]
    assert {r.source for r in engine.similar_items("urn:hat:1", n=2)} != {"content"}  # warm: the model
    with pytest.raises(backpack.NotFittedError, match="fit_content"):
        engine.similar_items("urn:hat:new", based_on="content")


def test_cli_similar_answers_cold_items_from_features(tmp_path, capsys):
    import json

    from backpack.cli.main import main

    csv = tmp_path / "i.csv"
    csv.write_text("user,item\na,urn:hat:1\na,urn:boot:1\nb,urn:hat:1\n")
    items = tmp_path / "items.jsonld"
    items.write_text(
        json.dumps(
            [
                {"@id": "urn:hat:1", "@type": "3DModel", "keywords": "hat, pirate"},
                {"@id": "urn:hat:new", "@type": "3DModel", "keywords": "hat, wizard"},
            ]
        )
    )
    data = ["--data-dir", str(tmp_path / "d"), "--json", "--no-progress"]
    assert main(["import", str(csv), str(items), *data]) == 0
    capsys.readouterr()
    assert main(["similar", "urn:hat:new", *data]) == 0  # no model fitted: descriptions answer
    [result] = json.loads(capsys.readouterr().out)
    assert [r["item"] for r in result["similar"]] == ["urn:hat:1"]


def idf_unit_rows(index) -> np.ndarray:
    """Reference for FeatureIndex.vectors: the TF-IDF weighted item x feature rows, unit length, in NumPy."""
    m = index.matrix.T.toarray().astype(np.float64)
    df = (m > 0).sum(axis=0)
    w = m * (np.log((1 + m.shape[0]) / (1 + df)) + 1.0)
    norms = np.linalg.norm(w, axis=1, keepdims=True)
    return w / np.where(norms > 0, norms, 1.0)


@pytest.mark.parametrize("dim", [1000, 12])
def test_feature_vectors_give_the_cosine_of_weighted_features(dim):
    rng = np.random.default_rng(3)
    tokens = [f"keyword:k{t}" for t in range(40)]
    features = {f"i{i}": list(rng.choice(tokens, size=rng.integers(1, 6), replace=False)) for i in range(80)}
    index = FeatureIndex(features)
    reference = idf_unit_rows(index)
    vectors = index.vectors(dim)
    assert vectors.shape == (80, min(dim, 40)) and vectors.dtype == np.float32
    exact_gram = reference @ reference.T
    if dim >= 40:  # the exact rows
        np.testing.assert_allclose(vectors @ vectors.T, exact_gram, atol=1e-5)
    else:  # a rank-12 SVD: the best rank-12 approximation of the Gram matrix (Eckart-Young)
        s = np.linalg.svd(reference, compute_uv=False)
        err = np.linalg.norm(vectors @ vectors.T - exact_gram)
        assert err == pytest.approx(np.sqrt((s[12:] ** 4).sum()), rel=1e-3)
    aligned = index.aligned(["i5", "nope", "i0"], dim)
    np.testing.assert_array_equal(aligned[0], vectors[5])
    assert not aligned[1].any()


def test_hybrid_blends_in_the_feature_index_without_a_text_model():
    themes = {"pirate": "pirate, ship, sea", "wizard": "wizard, magic, spell", "space": "space, rocket, star"}
    engine = backpack.Engine(num_threads=1)
    rng = np.random.default_rng(0)
    users, items = [], []
    for theme in themes:
        for u in range(10):
            for i in rng.choice(6, size=3, replace=False):
                users.append(f"{theme}-fan-{u}")
                items.append(f"urn:{theme}:{i}")
    engine.add_interactions(users, items)
    engine.put_items(
        [{"@id": f"urn:{t}:{i}", "@type": "3DModel", "keywords": kw} for t, kw in themes.items() for i in range(6)]
        + [{"@id": "urn:new:pirate", "@type": "3DModel", "keywords": "pirate, sea"}]
    )
    with pytest.raises(backpack.NotFittedError, match="fit_features"):
        engine.fit("hybrid", content_source="features")
    engine.fit_features()

    def ranks(fans: str) -> list[int]:  # where the cold pirate item comes in each fan's full list
        return [[r.item for r in engine.recommend(f"{fans}-fan-{u}", n=20)].index("urn:new:pirate") for u in range(10)]

    engine.fit("als", factors=8, iterations=5, random_state=0)
    assert min(ranks("pirate")) >= 3  # ALS cannot know it: after every unowned pirate item
    engine.fit("hybrid", factors=8, iterations=5, random_state=0, content_weight=0.5, content_source="features")
    # each fan owns 3 of the 6 pirate items: the cold one comes among the other 3, before any other theme
    assert max(ranks("pirate")) <= 3 and min(ranks("wizard")) >= 3 and min(ranks("space")) >= 3
