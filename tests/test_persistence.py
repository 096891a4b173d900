"""save / load round trip and damaged files."""

import numpy as np
import pytest
from conftest import random_user_items

from backpack import ItemKNN, ModelFileError


def test_round_trip_gives_identical_results(tmp_path):
    m = random_user_items(80, 40, 0.1, seed=3)
    model = ItemKNN(k=7, similarity="bm25", K1=2.0, B=0.5).fit(m, show_progress=False)
    model.save(tmp_path / "model")  # suffix added as numpy does
    loaded = ItemKNN.load(tmp_path / "model.npz")
    assert (loaded.k, loaded.similarity_kind, loaded.K1, loaded.B) == (7, "bm25", 2.0, 0.5)
    assert (loaded.similarity != model.similarity).nnz == 0
    a = model.recommend(np.arange(80), m, N=10)
    b = loaded.recommend(np.arange(80), m, N=10)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_save_replaces_atomically_and_leaves_no_temp_files(tmp_path):
    m = random_user_items(30, 20, 0.2, seed=4)
    ItemKNN(k=3).fit(m, show_progress=False).save(tmp_path / "m.npz")
    ItemKNN(k=5).fit(m, show_progress=False).save(tmp_path / "m.npz")
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]
    assert ItemKNN.load(tmp_path / "m.npz").k == 5


def test_damaged_files_raise_model_file_error(tmp_path):
    m = random_user_items(30, 20, 0.2, seed=5)
    ItemKNN(k=3).fit(m, show_progress=False).save(tmp_path / "good.npz")
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "truncated.npz").write_bytes(data[: len(data) // 2])
    (tmp_path / "garbage.npz").write_bytes(b"not a zip at all")
    np.savez(tmp_path / "other.npz", x=np.arange(3))
    arrays = dict(np.load(tmp_path / "good.npz"))
    arrays["indices"] = arrays["indices"] + 1000  # out-of-range neighbour ids
    np.savez(tmp_path / "corrupt.npz", **arrays)
    for name in ["truncated", "garbage", "other", "corrupt", "missing"]:
        with pytest.raises(ModelFileError):
            ItemKNN.load(tmp_path / f"{name}.npz")


def test_drop_in_classes_and_rp3beta_load_as_themselves(tmp_path):
    from backpack import CosineRecommender, RP3Beta

    m = random_user_items(40, 20, 0.2, seed=6)
    CosineRecommender(K=5).fit(m, show_progress=False).save(tmp_path / "cos.npz")
    loaded = CosineRecommender.load(tmp_path / "cos.npz")
    assert type(loaded) is CosineRecommender and loaded.K == 5
    rp3 = RP3Beta(k=6, alpha=0.8, beta=0.3).fit(m, show_progress=False)
    rp3.save(tmp_path / "rp3.npz")
    again = RP3Beta.load(tmp_path / "rp3.npz")
    assert (again.alpha, again.beta, again.similarity_kind) == (0.8, 0.3, "rp3beta")
    assert (again.similarity != rp3.similarity).nnz == 0
