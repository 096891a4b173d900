"""The model backend interface: same results on every backend, typed errors, threads, IREE's cache."""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="the model backends need onnx (pip install '.[test]')")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import backpack  # noqa: E402
from backpack.models.backends import available_backends, get_backend  # noqa: E402

BACKENDS = ["onnx", "iree"]
RNG = np.random.default_rng(7)
W = RNG.standard_normal((6, 4)).astype(np.float32)
B = RNG.standard_normal(4).astype(np.float32)


def dense_relu_model(name: str = "dense") -> bytes:
    """y = relu(x @ W + b) for x float32 [batch, 6]; also returns the argmax per row as int64."""
    nodes = [
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["pre"]),
        helper.make_node("Relu", ["pre"], ["y"]),
        helper.make_node("ArgMax", ["pre"], ["best"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 6])],
        [
            helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("best", TensorProto.INT64, ["batch"]),
        ],
        initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def reference(x: np.ndarray):
    pre = x.astype(np.float64) @ W + B
    return np.maximum(pre, 0), pre.argmax(axis=1)


@pytest.fixture(scope="module")
def iree_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("iree-cache")


def make_backend(name: str, iree_cache, **options):
    if name == "iree":
        options.setdefault("cache_dir", iree_cache)
    return get_backend(name, **options)


@pytest.fixture(scope="module", params=BACKENDS)
def session(request, iree_cache):
    return make_backend(request.param, iree_cache).load(dense_relu_model())


def test_both_backends_are_installed_and_listed():
    assert set(BACKENDS) <= set(available_backends())


def test_session_declares_named_typed_inputs_and_outputs(session):
    assert [(s.name, s.dtype, s.shape) for s in session.inputs] == [("x", np.dtype(np.float32), ("batch", 6))]
    assert [(s.name, s.dtype) for s in session.outputs] == [("y", np.dtype(np.float32)), ("best", np.dtype(np.int64))]
    assert session.describe()["inputs"] == ["x: float32[batch, 6]"]


@pytest.mark.parametrize("rows", [1, 3, 64])
def test_results_match_numpy(session, rows):
    x = RNG.standard_normal((rows, 6)).astype(np.float32)
    out = session.run({"x": x})
    want_y, want_best = reference(x)
    np.testing.assert_allclose(out["y"], want_y, atol=1e-5)
    assert out["best"].tolist() == want_best.tolist()


def test_lossless_dtypes_are_converted_and_lossy_ones_refused(session):
    x16 = RNG.standard_normal((2, 6)).astype(np.float16)
    np.testing.assert_allclose(session.run({"x": x16})["y"], reference(x16.astype(np.float32))[0], atol=1e-5)
    with pytest.raises(backpack.ModelInputError, match="float64 but the model takes float32"):
        session.run({"x": np.zeros((2, 6))})


@pytest.mark.parametrize(
    "inputs, message",
    [
        ({}, "missing input"),
        ({"x": np.zeros((1, 6), np.float32), "extra": np.zeros(1)}, "unknown input"),
        ({"x": np.zeros(6, np.float32)}, "rank 1"),
        ({"x": np.zeros((2, 5), np.float32)}, "axis 1 must be 6"),
        ({"x": np.full((1, 6), np.nan, np.float32)}, "NaN"),
        ({"x": "not an array"}, "is str384 but the model takes float32"),
    ],
)
def test_bad_inputs_get_typed_errors_and_the_session_keeps_working(session, inputs, message):
    with pytest.raises(backpack.ModelInputError, match=message):
        session.run(inputs)
    assert session.run({"x": np.ones((1, 6), np.float32)})["y"].shape == (1, 4)


def test_named_dynamic_dimensions_must_agree(iree_cache):
    graph = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "add",
        [
            helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n"]),
        ],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, ["n"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = make_backend("onnx", iree_cache).load(model)
    with pytest.raises(backpack.ModelInputError, match="dimension 'n' is 3 in input 'a' but 4 in input 'b'"):
        session.run({"a": np.zeros(3, np.float32), "b": np.zeros(4, np.float32)})


def test_a_run_failure_inside_the_backend_is_a_model_run_error(iree_cache):
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "i"], ["out"], axis=0)],
        "lookup",
        [helper.make_tensor_value_info("i", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["n"])],
        initializer=[numpy_helper.from_array(np.arange(3, dtype=np.float32), "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    session = make_backend("onnx", iree_cache).load(model)
    with pytest.raises(backpack.ModelRunError, match="onnx: running the model failed"):
        session.run({"i": np.array([5])})
    assert session.run({"i": np.array([2])})["out"].tolist() == [2.0]


@pytest.mark.parametrize("name", BACKENDS)
def test_corrupt_missing_and_wrong_models_get_typed_errors(name, iree_cache, tmp_path):
    backend = make_backend(name, iree_cache)
    data = dense_relu_model()
    truncated = tmp_path / "truncated.onnx"
    truncated.write_bytes(data[: len(data) // 2])
    for model, message in [
        (truncated, "corrupt or truncated"),
        (b"\x00garbage" * 10, "not an ONNX model"),
        (tmp_path / "missing.onnx", "does not exist"),
        (tmp_path, "is a directory"),
        (b"", "empty"),
    ]:
        with pytest.raises(backpack.ModelLoadError, match=message):
            backend.load(model)
    with pytest.raises(backpack.InvalidInputError, match="path, bytes or an onnx.ModelProto"):
        backend.load(42)


def test_unknown_backend_and_bad_options_are_input_errors():
    with pytest.raises(backpack.InvalidInputError, match="unknown model backend 'tensorrt'; available: .*iree.*onnx"):
        get_backend("tensorrt")
    with pytest.raises(backpack.InvalidInputError, match="does not take these parameters"):
        get_backend("onnx", gpu=True)
    with pytest.raises(backpack.InvalidInputError, match="threads must be an int >= 0"):
        get_backend("onnx", threads=-1)


@pytest.mark.parametrize("name, module, extra", [("onnx", "onnxruntime", "onnx"), ("iree", "iree.runtime", "iree")])
def test_a_missing_optional_backend_says_what_to_install(monkeypatch, name, module, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    with pytest.raises(backpack.BackendUnavailableError, match=rf"pip install 'backpack-engine\[{extra}\]'"):
        get_backend(name)
    assert name not in available_backends()


def test_onnx_thread_settings_are_applied():
    backend = get_backend("onnx", threads=1, sequential=False, inter_op_threads=2, optimization="basic")
    assert (backend.threads, backend.inter_op_threads, backend.sequential) == (1, 2, False)
    x = np.ones((2, 6), np.float32)
    np.testing.assert_allclose(backend.load(dense_relu_model()).run({"x": x})["y"], reference(x)[0], atol=1e-5)
    with pytest.raises(backpack.InvalidInputError, match="optimization must be one of"):
        get_backend("onnx", optimization="max")


def test_sessions_are_safe_to_call_from_many_threads(session):
    inputs = [RNG.standard_normal((1 + i % 5, 6)).astype(np.float32) for i in range(16)]
    failures = []

    def worker(x):
        want = reference(x)[0]
        for _ in range(25):
            got = session.run({"x": x})["y"]
            if got.shape != want.shape or not np.allclose(got, want, atol=1e-5):
                failures.append(x.shape)

    threads = [threading.Thread(target=worker, args=(x,)) for x in inputs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert failures == []


def test_iree_caches_compiled_modules_by_model_hash(tmp_path, monkeypatch):
    backend = get_backend("iree", cache_dir=tmp_path)
    backend.load(dense_relu_model())
    cached = list(tmp_path.glob("*.vmfb"))
    assert len(cached) == 1

    # a second backend on the same folder never calls the compiler for the same model ...
    again = get_backend("iree", cache_dir=tmp_path)
    monkeypatch.setattr(
        again._compiler, "compile_file", lambda *a, **k: pytest.fail("compiled a model that was cached")
    )
    x = np.ones((1, 6), np.float32)
    np.testing.assert_allclose(again.load(dense_relu_model()).run({"x": x})["y"], reference(x)[0], atol=1e-5)
    monkeypatch.undo()

    # ... a different model (same graph, other name) or other flags get their own entries
    backend.load(dense_relu_model("other"))
    get_backend("iree", cache_dir=tmp_path, target_cpu="generic").load(dense_relu_model())
    assert len(list(tmp_path.glob("*.vmfb"))) == 3

    # a damaged entry is recompiled, not fatal
    cached[0].write_bytes(b"not a module")
    np.testing.assert_allclose(backend.load(dense_relu_model()).run({"x": x})["y"], reference(x)[0], atol=1e-5)


def test_iree_reports_a_model_it_cannot_compile(tmp_path):
    graph = helper.make_graph(
        [helper.make_node("Unique", ["x"], ["y"])],
        "unique",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m"])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(backpack.ModelLoadError, match="IREE cannot"):
        get_backend("iree", cache_dir=tmp_path).load(model)
    assert list(tmp_path.glob("*.vmfb")) == []
