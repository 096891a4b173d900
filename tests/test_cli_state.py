"""The data-directory commands: import, fit, models, recommend, similar, evaluate, bench; Engine.save/open."""

import json

import numpy as np
import pytest

from backpack import Engine
from backpack.cli import main as cli
from backpack.core.timestamps import parse_timestamp
from backpack.data.readers import read_interactions, read_json
from backpack.engine.data_dir import DataDir, default_data_dir
from backpack.errors import DataDirError, InvalidInputError

USERS = [f"u{i}" for i in range(60)]
ITEMS = [f"https://example.org/item/{i}" for i in range(40)]


def interactions(seed=0, n=900):
    """A small log with clustered tastes (so models have something to learn) and distinct times."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, len(USERS), n)
    items = (users % 4) * 10 + rng.integers(0, 10, n)  # four taste groups of ten items
    noise = rng.random(n) < 0.15
    items[noise] = rng.integers(0, len(ITEMS), noise.sum())
    times = 1_700_000_000 + np.arange(n) * 60
    weights = rng.integers(1, 4, n)
    return [(USERS[u], ITEMS[i], float(w), float(t)) for u, i, w, t in zip(users, items, weights, times)]


def write_csv(path, rows):
    with open(path, "w") as f:
        f.write("user,item,weight,timestamp\n")
        for u, i, w, t in rows:
            f.write(f"{u},{i},{w},{t}\n")
    return path


def run(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


@pytest.fixture
def data(tmp_path, capsys):
    """A data directory holding the CSV log and three item descriptions."""
    rows = interactions()
    write_csv(tmp_path / "log.csv", rows)
    (tmp_path / "items.jsonld").write_text(
        json.dumps(
            {
                "@context": "https://www.w3.org/ns/activitystreams",
                "@graph": [
                    {"id": ITEMS[0], "type": "http://schema.org/3DModel", "name": "hat"},
                    {"@id": ITEMS[1], "@type": ["http://schema.org/3DModel", "Note"]},
                    {"@id": ITEMS[2], "@type": "Place"},
                ],
            }
        )
    )
    directory = tmp_path / "state"
    summary = run_json(
        capsys, "import", str(tmp_path / "log.csv"), str(tmp_path / "items.jsonld"), "--data-dir", str(directory)
    )
    assert summary["interactions"] == len(rows) and summary["items"] == 3
    return directory, rows


def reference_engine(rows):
    engine = Engine()
    users, items, weights, times = zip(*rows)
    engine.add_interactions(list(users), list(items), list(weights), timestamps=list(times))
    return engine


def test_import_stores_what_the_python_api_would(data):
    directory, rows = data
    engine = Engine.open(directory)
    expected = reference_engine(rows)
    assert engine.bags.user_ids(np.arange(engine.bags.n_users)) == expected.bags.user_ids(
        np.arange(expected.bags.n_users)
    )
    assert (engine.bags.to_csr() != expected.bags.to_csr()).nnz == 0
    got = engine.timestamps.snapshot().entries()
    want = expected.timestamps.snapshot().entries()
    for a, b in zip(got, want):
        np.testing.assert_array_equal(a, b)
    assert engine.item_kinds.get(ITEMS[0]) == "3DModel" and engine.item_kinds.get(ITEMS[1]) == "3DModel"
    assert engine.item_kinds.get(ITEMS[2]) == "Place"
    with DataDir(directory) as data:  # the store holds them: the truth every command reads
        stored = dict(pair for batch in data.store.iter_items() for pair in batch)
    hat = stored[ITEMS[0]]  # kept expanded: absolute IRIs, no context needed to read it
    assert len(stored) == 3 and hat["@id"] == ITEMS[0] and hat["@type"] == ["http://schema.org/3DModel"]
    assert hat["https://www.w3.org/ns/activitystreams#name"] == [{"@value": "hat"}]


def test_a_second_import_adds_to_the_first(data, tmp_path, capsys):
    directory, rows = data
    (tmp_path / "more.jsonl").write_text(
        "\n".join(json.dumps({"user_id": "new-user", "item_id": ITEMS[5], "kind": "like"}) for _ in range(2)) + "\n"
    )
    summary = run_json(capsys, "import", str(tmp_path / "more.jsonl"), "--data-dir", str(directory))
    assert summary["new_users"] == 1 and summary["new_pairs"] == 1
    engine = Engine.open(directory)
    assert engine.bags.bag("new-user") == {ITEMS[5]: 2 * engine.kind_weights["like"]}


def test_fit_recommend_and_similar_equal_the_python_api(data, capsys):
    directory, rows = data
    manifest = run_json(capsys, "fit", "itemknn", "-p", "k=20", "-p", "similarity=bm25", "--data-dir", str(directory))
    assert manifest["algorithm"] == "itemknn" and manifest["params"] == {"k": 20, "similarity": "bm25"}
    assert manifest["active"] and manifest["n_interactions"] == reference_engine(rows).bags.nnz
    expected = reference_engine(rows)
    expected.fit("itemknn", k=20, similarity="bm25")
    got = run_json(capsys, "recommend", "u1", "u2", "nobody", "-n", "5", "--data-dir", str(directory))
    for entry in got:
        want = expected.recommend(entry["user"], n=5)
        assert [r["item"] for r in entry["items"]] == [r.item for r in want]
        np.testing.assert_allclose([r["score"] for r in entry["items"]], [r.score for r in want], rtol=1e-6)
    assert {r["source"] for r in got[2]["items"]} == {"popular"}
    similar = run_json(capsys, "similar", ITEMS[3], "-n", "4", "--data-dir", str(directory))
    assert [r["item"] for r in similar[0]["similar"]] == [r.item for r in expected.similar_items(ITEMS[3], n=4)]
    code, out, _ = run(
        capsys, "recommend", "u1", "--data-dir", str(directory), "--item-kind", "3DModel", "--keep-owned"
    )
    assert code == 0 and out.count("https://") == 2  # only the two 3D models are of that kind


def test_models_are_labelled_and_chosen(data, capsys):
    directory, _ = data
    run_json(capsys, "fit", "itemknn", "--data-dir", str(directory))
    run_json(
        capsys,
        "fit",
        "als",
        "-p",
        "factors=8",
        "-p",
        "iterations=3",
        "--label",
        "als-small",
        "--no-activate",
        "--data-dir",
        str(directory),
    )
    listed = run_json(capsys, "models", "--data-dir", str(directory))["models"]
    assert [(m["label"], m["active"]) for m in listed] == [("als-small", False), ("itemknn", True)]
    engine = Engine.open(directory, model="als-small")
    via_cli = run_json(capsys, "recommend", "u3", "--model", "als-small", "--data-dir", str(directory))
    assert [r["item"] for r in via_cli[0]["items"]] == [r.item for r in engine.recommend("u3")]
    # the same model served on ONNX Runtime gives the same list
    on_onnx = run_json(
        capsys, "recommend", "u3", "--model", "als-small", "--backend", "onnx", "--data-dir", str(directory)
    )
    assert [r["item"] for r in on_onnx[0]["items"]] == [r.item for r in engine.recommend("u3")]
    listing = run_json(capsys, "models", "--data-dir", str(directory))
    assert {"onnx", "iree"} <= {b["name"] for b in listing["backends"]}
    code, _, err = run(capsys, "recommend", "u3", "--model", "nope", "--data-dir", str(directory))
    assert code == 3 and "no model 'nope'" in err and "als-small, itemknn" in err


def test_import_replace_drops_models(data, tmp_path, capsys):
    directory, rows = data
    run_json(capsys, "fit", "itemknn", "--data-dir", str(directory))
    write_csv(tmp_path / "other.csv", rows[:10])
    run_json(capsys, "import", str(tmp_path / "other.csv"), "--replace", "--data-dir", str(directory))
    assert run_json(capsys, "models", "--data-dir", str(directory))["models"] == []
    assert Engine.open(directory).bags.nnz == len({(u, i) for u, i, _, _ in rows[:10]})
    code, _, err = run(capsys, "recommend", "u1", "--data-dir", str(directory))
    assert code == 3 and "backpack fit" in err


def test_a_bad_row_stores_nothing_and_names_file_and_line(data, tmp_path, capsys):
    directory, _ = data
    before = stored_state(directory)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,weight\nu1,i1,1\nu2,i2,heavy\n")
    code, _, err = run(capsys, "import", str(tmp_path / "log.csv"), str(bad), "--data-dir", str(directory))
    assert code == 2 and "bad.csv:3" in err and "'heavy'" in err
    assert stored_state(directory) == before


def stored_state(directory) -> tuple:
    """What a data directory holds, as every command reads it: the store's contents and the snapshots."""
    with DataDir(directory) as data:
        log = [(e.seq, e.op, e.user, e.item, e.weight, e.timestamp) for batch in data.store.log_since(0) for e in batch]
        items = sorted(key for batch in data.store.iter_items() for key, _ in batch)
        latest = data.store.latest_snapshot()
        return (
            log,
            items,
            data.store.counts(),
            None if latest is None else latest.path,
            sorted(p.name for p in (directory / "snapshots").iterdir()),
        )


@pytest.mark.parametrize(
    "content, message",
    [
        ("item,weight\ni1,1\n", "no user column"),
        ("user,item\nu1,i1,extra\n", ":2: expected 2 fields"),
        ("user,item\nu1,\n", "item must be a non-empty string"),
        ("user,item,timestamp\nu1,i1,yesterday\n", "neither seconds since the epoch nor an ISO 8601"),
        ("user,item,timestamp\nu1,i1,nan\n", "not finite"),
    ],
)
def test_malformed_csv_rows_are_typed_errors(tmp_path, content, message):
    path = tmp_path / "x.csv"
    path.write_text(content)
    with pytest.raises(InvalidInputError, match=message):
        list(read_interactions(path))


def test_malformed_json_lines_and_json_ld(tmp_path):
    lines = tmp_path / "x.jsonl"
    lines.write_text('{"user": "a", "item": "b"}\n[1, 2]\n')
    with pytest.raises(InvalidInputError, match=r"x.jsonl:2: each line must be a JSON object"):
        list(read_interactions(lines))
    lines.write_text('{"user": "a", "item": "b", "weight": 2}\n{"user": "a", "item": "c"}\n')
    with pytest.raises(InvalidInputError, match=r"x.jsonl:2: missing 'weight'"):
        list(read_interactions(lines))
    lines.write_text('{"user": "a", "item": "b"}\n{"user": "a", "item": \n')
    with pytest.raises(InvalidInputError, match=r"x.jsonl:2: not JSON"):
        list(read_interactions(lines))
    items = tmp_path / "x.jsonld"
    engine = Engine()
    with pytest.raises(InvalidInputError, match="node 1 .a 3DModel. has no @id"):
        engine.put_items([{"@id": "https://e.org/1", "@type": "3DModel"}, {"@type": "3DModel", "name": "no id"}])
    with pytest.raises(InvalidInputError, match="@type"):
        engine.put_items({"@graph": [{"@id": "https://e.org/1", "@type": 7}]})
    assert len(engine.item_descriptions) == 0  # all or nothing
    items.write_bytes(b'{"@id": "\xff"}')
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        read_json(items)


def test_chunks_stream_and_timestamps_parse(tmp_path):
    path = write_csv(tmp_path / "log.csv", interactions(n=250))
    chunks = list(read_interactions(path, chunk_size=100))
    assert [len(c) for c in chunks] == [100, 100, 50]
    assert parse_timestamp("2026-01-02T03:04:05Z", "t") == 1767323045.0
    assert parse_timestamp("2026-01-02T03:04:05", "t") == 1767323045.0  # naive is UTC
    assert parse_timestamp("2026-01-02T05:04:05+02:00", "t") == 1767323045.0
    assert parse_timestamp(12, "t") == 12.0


def test_csv_chunks_match_a_row_by_row_reading(tmp_path):
    # The reader checks whole chunks at once; what it yields must be what
    # csv.DictReader row by row gives, blank lines, quoted newlines, repeated
    # columns and ISO dates included, and errors must still name their line.
    import csv

    path = tmp_path / "mixed.csv"
    path.write_text(
        "user,item,weight,kind,timestamp,item\n"
        "u1,x,2,view,12,i1\n\n"
        '"u\n2",x,1.5,like,2026-01-02T03:04:05Z,i2\n'
        'u3,x, 3 ,equip,13.5,"i,3"\n'
    )
    chunks = list(read_interactions(path, chunk_size=2))
    with open(path, newline="") as f:
        rows = [r for r in csv.reader(f)][1:]
    rows = [r for r in rows if r]
    assert [u for c in chunks for u in c.users] == [r[0] for r in rows]
    assert [i for c in chunks for i in c.items] == ["i1", "i2", "i,3"]  # the last "item" column wins
    assert [w for c in chunks for w in c.weights] == [2.0, 1.5, 3.0]
    assert [k for c in chunks for k in c.kinds] == ["view", "like", "equip"]
    assert [t for c in chunks for t in c.timestamps] == [12.0, 1767323045.0, 13.5]

    path.write_text('user,item\n"a\nb",i1\nu2,i2\nu3,\n')
    with pytest.raises(InvalidInputError, match=r"mixed.csv:5: item must be a non-empty string"):
        list(read_interactions(path, chunk_size=10))
    path.write_text("user,item,weight\n" + "u,i,1\n" * 150 + "u,i,inf\n")
    with pytest.raises(InvalidInputError, match=r"mixed.csv:152: weight 'inf' is not finite"):
        list(read_interactions(path, chunk_size=100))


def test_commands_without_data_say_what_to_do(tmp_path, capsys):
    empty = tmp_path / "empty"
    code, _, err = run(capsys, "recommend", "u1", "--data-dir", str(empty))
    assert code == 3 and "import interactions first" in err
    code, _, err = run(capsys, "fit", "itemknn", "--data-dir", str(empty))
    assert code == 3
    code, _, err = run(capsys, "fit", "no-such-algorithm", "--data-dir", str(empty))
    assert code == 2 and "unknown algorithm 'no-such-algorithm'" in err
    code, _, err = run(capsys, "import", str(tmp_path / "missing.csv"), "--data-dir", str(empty))
    assert code == 2 and "no such file" in err
    code, _, err = run(capsys, "evaluate", "--data-dir", str(empty))
    assert code == 3 and "--size" in err


def test_data_dir_defaults_and_global_position(tmp_path, monkeypatch, capsys, data):
    directory, _ = data
    monkeypatch.setenv("BACKPACK_DATA_DIR", str(directory))
    assert default_data_dir() == directory
    assert len(run_json(capsys, "models")["models"]) == 0
    monkeypatch.delenv("BACKPACK_DATA_DIR")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert default_data_dir() == tmp_path / "xdg" / "backpack"
    code, out, err = run(capsys, "--data-dir", str(directory), "fit", "itemknn", "--no-progress")
    assert code == 0 and "saved as model 'itemknn'" in out, err


def test_evaluate_on_the_data_dir_with_time_splits_and_labels(data, capsys):
    directory, _ = data
    for split in ("holdout", "last", "time"):
        result = run_json(
            capsys,
            "evaluate",
            "--data-dir",
            str(directory),
            "--split",
            split,
            "--algorithms",
            "itemknn,knn-bm25=itemknn",
            "-p",
            "knn-bm25.similarity=bm25",
        )
        labels = [(r["label"], r["algorithm"], r["params"]) for r in result["results"]]
        assert labels == [("itemknn", "itemknn", {}), ("knn-bm25", "itemknn", {"similarity": "bm25"})]
        assert all(0 <= r["ndcg"] <= 1 for r in result["results"])
    code, _, err = run(capsys, "evaluate", "--size", "tiny", "--split", "last")
    assert code == 2 and "needs a timestamp" in err
    code, _, err = run(capsys, "evaluate", "--size", "tiny", "--algorithms", "a=itemknn,a=als")
    assert code == 2 and "appears twice" in err


def test_bench_reports_latencies(capsys):
    result = run_json(capsys, "bench", "--size", "tiny", "--algorithms", "itemknn", "--queries", "30")
    (row,) = result["results"]
    assert row["fit_seconds"] > 0 and 0 < row["recommend_ms"]["p50"] <= row["recommend_ms"]["p99"]
    assert row["batch_users_per_second"] > 0 and row["similar_ms"]["p50"] > 0


def test_engine_save_and_open_round_trip(tmp_path):
    engine = reference_engine(interactions())
    engine.set_item_kinds(ITEMS[:3], ["avatar", "avatar", "world"])
    engine.fit("als", factors=8, iterations=3, random_state=1)
    engine.save(tmp_path / "saved")
    again = Engine.open(tmp_path / "saved")
    for user in ("u0", "u7", "stranger"):
        assert again.recommend(user, n=7) == engine.recommend(user, n=7)
    assert again.item_kinds.table() == engine.item_kinds.table()
    assert again.recommend("u0", n=5, item_kind="avatar") == engine.recommend("u0", n=5, item_kind="avatar")


def test_a_data_dir_of_another_format_is_refused(tmp_path):
    (tmp_path / "state.json").write_text('{"format": 99}')
    with pytest.raises(DataDirError, match="format 99"):
        DataDir(tmp_path)
    (tmp_path / "state.json").write_text("not json")
    with pytest.raises(DataDirError, match="unreadable"):
        DataDir(tmp_path)
