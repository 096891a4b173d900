"""Sentence encoders built from their published weights: a BERT checkpoint becomes an ONNX graph.

A sentence-transformers model such as all-MiniLM-L6-v2 is a BERT encoder
followed by mean pooling over the real (unpadded) tokens and L2
normalisation. Its authors publish the weights as ``model.safetensors`` with
the sizes in ``config.json``, not as an ONNX file, and exporting one would
take PyTorch. The encoder is small and regular, so this module writes the
graph itself: :func:`read_safetensors` reads the weights with NumPy alone and
:func:`build_sentence_encoder` lays them out as an ONNX (opset 17) graph
that every :class:`~backpack.models.backends.ModelBackend` can load.

The graph is built for both backends in use: ONNX Runtime, and IREE, which
compiles it ahead of time and caches the result under the model's SHA-256.
So building is deterministic (the same weights give the same bytes, and the
second process hits IREE's cache instead of compiling again), and the graph
keeps to the operators IREE's ONNX importer handles with dynamic batch and
sequence dimensions: Gather, MatMul, LayerNormalization, Softmax, Erf and
element-wise arithmetic.

What the graph computes, for ``input_ids`` and ``attention_mask`` (both
int64 ``[batch, sequence]``; the mask is 1 on real tokens, 0 on padding):

- embeddings: word + position + token type 0, then LayerNorm;
- per layer: multi-head self-attention, with ``-1e9`` added to the scores of
  padded keys so they get no weight, a residual and LayerNorm; then the
  feed-forward block with the exact (erf) GELU, a residual and LayerNorm;
- the mean of the last hidden states over the real tokens, scaled to unit
  length: output ``embeddings``, float32 ``[batch, hidden_size]``.

Because padded positions never reach a real token (neither as keys nor in
the mean), a text's embedding does not depend on how much padding its batch
carries, up to float rounding.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from backpack.errors import ModelLoadError
from backpack.models.backends import require

#: safetensors dtype -> NumPy dtype (the format is little-endian); BF16 is widened by hand
_SAFETENSORS_DTYPES = {
    "F64": "<f8",
    "F32": "<f4",
    "F16": "<f2",
    "I64": "<i8",
    "I32": "<i4",
    "I16": "<i2",
    "I8": "i1",
    "U64": "<u8",
    "U32": "<u4",
    "U16": "<u2",
    "U8": "u1",
    "BOOL": "?",
    "BF16": "<u2",
}

#: a header larger than this is a corrupt length field, not a real header
_MAX_HEADER_BYTES = 100 * 2**20

#: added to the attention scores of padding: exp() of it is exactly 0 in float32
_MASKED_SCORE = -1e9

OPSET = 17


def read_safetensors(path) -> dict[str, np.ndarray]:
    """Every tensor in the safetensors file at ``path``, by name (read-only arrays over one buffer).

    The format is an 8-byte little-endian header length, a JSON header
    mapping each name to its ``dtype``, ``shape`` and ``data_offsets`` (begin
    and end within the data that follows), then the raw data. Anything that
    does not add up (a short file, a header that is not JSON, a tensor whose
    bytes do not match its shape or lie outside the data, two tensors
    sharing bytes) is a :class:`~backpack.errors.ModelLoadError` naming the file.
    BF16 tensors come back as float32.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelLoadError(f"weights file {path} does not exist") from None
    except OSError as exc:
        raise ModelLoadError(f"cannot read weights file {path}: {exc.strerror or exc}") from None

    def corrupt(why: str) -> ModelLoadError:
        return ModelLoadError(f"{path} is not a valid safetensors file (corrupt or truncated): {why}")

    if len(data) < 8:
        raise corrupt(f"{len(data)} bytes, shorter than the 8-byte header length")
    header_len = int.from_bytes(data[:8], "little")
    if header_len > min(_MAX_HEADER_BYTES, len(data) - 8):
        raise corrupt(f"the header claims {header_len:,} bytes but the file has {len(data) - 8:,} after the length")
    try:
        header = json.loads(data[8 : 8 + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise corrupt(f"the header is not JSON ({exc})") from None
    if not isinstance(header, dict):
        raise corrupt("the header is not a JSON object")
    body = memoryview(data)[8 + header_len :]
    tensors, spans = {}, []
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        tensors[name] = _tensor(name, entry, body, corrupt)
        spans.append((*entry["data_offsets"], name))
    spans.sort()
    for (_, end, first), (begin, _, second) in zip(spans, spans[1:]):
        if begin < end:
            raise corrupt(f"tensors {first!r} and {second!r} overlap")
    return tensors


def _tensor(name: str, entry, body: memoryview, corrupt) -> np.ndarray:
    """One tensor of a safetensors header, checked against the data it points into."""
    if not isinstance(entry, dict) or entry.get("dtype") not in _SAFETENSORS_DTYPES:
        raise corrupt(f"tensor {name!r} has no known dtype: {entry!r:.200}")
    shape, offsets = entry.get("shape"), entry.get("data_offsets")
    if not (isinstance(shape, list) and all(isinstance(d, int) and d >= 0 for d in shape)):
        raise corrupt(f"tensor {name!r} has shape {shape!r}, not a list of sizes")
    if not (
        isinstance(offsets, list)
        and len(offsets) == 2
        and all(isinstance(o, int) for o in offsets)
        and 0 <= offsets[0] <= offsets[1]
    ):
        raise corrupt(f"tensor {name!r} has data_offsets {offsets!r}, not [begin, end]")
    dtype = np.dtype(_SAFETENSORS_DTYPES[entry["dtype"]])
    count = math.prod(shape)
    if offsets[1] - offsets[0] != count * dtype.itemsize:
        raise corrupt(
            f"tensor {name!r} ({entry['dtype']}{shape}) needs {count * dtype.itemsize:,} bytes "
            f"but its offsets span {offsets[1] - offsets[0]:,}"
        )
    if offsets[1] > len(body):
        raise corrupt(
            f"tensor {name!r} ends at byte {offsets[1]:,} of the data but the file holds {len(body):,} (truncated?)"
        )
    array = np.frombuffer(body, dtype=dtype, count=count, offset=offsets[0]).reshape(shape)
    if entry["dtype"] == "BF16":  # the upper half of a float32
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


@dataclass(frozen=True)
class EncoderConfig:
    """The sizes of a BERT sentence encoder, from its ``config.json``."""

    vocab_size: int
    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float

    @classmethod
    def from_dir(cls, model_dir) -> EncoderConfig:
        """Read ``config.json`` (and check ``1_Pooling/config.json``, if present, asks for mean pooling).

        Only what this module builds is accepted: a BERT with absolute
        positions and the exact GELU, pooled by the mean of its tokens.
        Anything else is a ModelLoadError saying what differs.
        """
        model_dir = Path(model_dir)
        config = _read_json(model_dir / "config.json")
        activation = config.get("hidden_act", "gelu")
        if activation != "gelu":
            raise ModelLoadError(f"{model_dir}: hidden_act is {activation!r}; only the exact 'gelu' is supported")
        positions = config.get("position_embedding_type", "absolute")
        if positions != "absolute":
            raise ModelLoadError(f"{model_dir}: position_embedding_type is {positions!r}; only 'absolute' is supported")
        pooling_file = model_dir / "1_Pooling" / "config.json"
        if pooling_file.exists():
            modes = {k: v for k, v in _read_json(pooling_file).items() if k.startswith("pooling_mode_") and v}
            if list(modes) != ["pooling_mode_mean_tokens"]:
                raise ModelLoadError(
                    f"{pooling_file}: pooling {sorted(modes)}; only mean pooling "
                    f"(pooling_mode_mean_tokens) is supported"
                )
        try:
            made = cls(
                int(config["vocab_size"]),
                int(config["hidden_size"]),
                int(config["num_hidden_layers"]),
                int(config["num_attention_heads"]),
                int(config["intermediate_size"]),
                int(config["max_position_embeddings"]),
                int(config.get("type_vocab_size", 2)),
                float(config.get("layer_norm_eps", 1e-12)),
            )
        except KeyError as exc:
            raise ModelLoadError(f"{model_dir / 'config.json'} lacks {exc.args[0]!r}") from None
        except (TypeError, ValueError) as exc:
            raise ModelLoadError(f"{model_dir / 'config.json'} holds a size that is not a number: {exc}") from None
        if (
            min(
                made.vocab_size,
                made.hidden_size,
                made.num_layers,
                made.num_heads,
                made.intermediate_size,
                made.max_positions,
                made.type_vocab_size,
            )
            < 1
            or made.hidden_size % made.num_heads
        ):
            raise ModelLoadError(
                f"{model_dir / 'config.json'}: sizes {made} are not a valid BERT "
                f"(hidden_size must be a multiple of num_attention_heads)"
            )
        return made


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelLoadError(f"{path} does not exist; the model folder is incomplete") from None
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"cannot read {path}: {exc}") from None
    if not isinstance(value, dict):
        raise ModelLoadError(f"{path} is not a JSON object")
    return value


def build_sentence_encoder(model_dir):
    """The ONNX model (an ``onnx.ModelProto``) of the sentence encoder in ``model_dir``.

    ``model_dir`` holds ``config.json`` and ``model.safetensors`` (names
    ``embeddings.*`` and ``encoder.layer.N.*``, with or without a ``bert.``
    prefix, as Hugging Face's ``BertModel`` saves them). Inputs
    ``input_ids`` and ``attention_mask``, int64 ``[batch, sequence]``;
    output ``embeddings``, float32 ``[batch, hidden_size]``, unit rows.
    Missing or misshapen weights are a ModelLoadError naming the tensor.
    """
    onnx = require("onnx", "onnx", "building the sentence encoder", "onnx")
    model_dir = Path(model_dir)
    config = EncoderConfig.from_dir(model_dir)
    weights = _Weights(read_safetensors(model_dir / "model.safetensors"), model_dir / "model.safetensors")
    graph = _GraphBuilder(onnx)
    hidden = _embeddings(graph, weights, config)
    mask = graph.op("Cast", "attention_mask", to=onnx.TensorProto.FLOAT)
    # [batch, 1, 1, keys]: 0 for real tokens, _MASKED_SCORE for padding, added to every head's scores
    score_mask = graph.op(
        "Unsqueeze",
        graph.op("Mul", graph.op("Sub", graph.scalar(1.0), mask), graph.scalar(_MASKED_SCORE)),
        graph.ints([1, 2]),
    )
    for layer in range(config.num_layers):
        hidden = _layer(graph, weights, config, f"encoder.layer.{layer}.", hidden, score_mask)
    _pool(graph, hidden, mask, output="embeddings")
    return graph.model(config)


class _Weights:
    """Tensors of a checkpoint by their ``BertModel`` names, checked against the expected shapes."""

    def __init__(self, tensors: dict[str, np.ndarray], origin: Path):
        self.tensors, self.origin = tensors, origin
        self.prefix = "bert." if "bert.embeddings.word_embeddings.weight" in tensors else ""

    def get(self, name: str, shape: tuple[int, ...]) -> np.ndarray:
        key = self.prefix + name
        if key not in self.tensors:
            raise ModelLoadError(f"{self.origin} holds no tensor {key!r}; is it a BERT checkpoint?")
        array = self.tensors[key]
        if array.shape != shape:
            raise ModelLoadError(f"{self.origin}: tensor {key!r} has shape {array.shape}, config.json implies {shape}")
        if array.dtype.kind != "f":
            raise ModelLoadError(f"{self.origin}: tensor {key!r} is {array.dtype.name}, not floating point")
        return np.ascontiguousarray(array, dtype=np.float32)


class _GraphBuilder:
    """Nodes and initialisers with sequential names, so the same calls give the same bytes."""

    def __init__(self, onnx):
        self.onnx = onnx
        self.nodes, self.initializers = [], []
        self._names: dict[str, int] = {}

    def _name(self, stem: str) -> str:
        self._names[stem] = self._names.get(stem, 0) + 1
        return f"{stem}_{self._names[stem]}"

    def constant(self, stem: str, array: np.ndarray) -> str:
        name = self._name(stem)
        self.initializers.append(self.onnx.numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def scalar(self, value: float) -> str:
        return self.constant("scalar", np.array(value, dtype=np.float32))

    def ints(self, values: list[int]) -> str:
        return self.constant("ints", np.array(values, dtype=np.int64))

    def op(self, op_type: str, *inputs: str, output: str | None = None, **attributes) -> str:
        output = output or self._name(op_type.lower())
        self.nodes.append(
            self.onnx.helper.make_node(op_type, list(inputs), [output], name=f"node_{output}", **attributes)
        )
        return output

    def linear(self, x: str, weights: _Weights, name: str, inputs: int, outputs: int) -> str:
        """``x @ W.T + b`` for the PyTorch ``Linear`` called ``name`` (weight stored ``[out, in]``)."""
        w = self.constant(name + ".weight_t", weights.get(name + ".weight", (outputs, inputs)).T)
        b = self.constant(name + ".bias", weights.get(name + ".bias", (outputs,)))
        return self.op("Add", self.op("MatMul", x, w), b)

    def layer_norm(self, x: str, weights: _Weights, name: str, size: int, eps: float) -> str:
        scale = self.constant(name + ".weight", weights.get(name + ".weight", (size,)))
        bias = self.constant(name + ".bias", weights.get(name + ".bias", (size,)))
        return self.op("LayerNormalization", x, scale, bias, axis=-1, epsilon=eps)

    def model(self, config: EncoderConfig):
        helper, tensor = self.onnx.helper, self.onnx.TensorProto
        inputs = [
            helper.make_tensor_value_info(name, tensor.INT64, ["batch", "sequence"])
            for name in ("input_ids", "attention_mask")
        ]
        output = helper.make_tensor_value_info("embeddings", tensor.FLOAT, ["batch", config.hidden_size])
        graph = helper.make_graph(self.nodes, "sentence_encoder", inputs, [output], self.initializers)
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="backpack.models.sentence_encoder"
        )
        # Pinned to what opset 17 came with, not the installed onnx's newest: older runtimes load it, and
        # the bytes (so IREE's cache key) do not change when onnx is upgraded. Backends check the model.
        model.ir_version = 8
        return model


def _embeddings(graph: _GraphBuilder, weights: _Weights, config: EncoderConfig) -> str:
    h = config.hidden_size
    words = graph.constant("word_embeddings", weights.get("embeddings.word_embeddings.weight", (config.vocab_size, h)))
    # Every token has type 0, so its row is folded into the position table: one add fewer per run.
    token_types = weights.get("embeddings.token_type_embeddings.weight", (config.type_vocab_size, h))
    positions = weights.get("embeddings.position_embeddings.weight", (config.max_positions, h))
    table = graph.constant("position_embeddings", positions + token_types[0])
    length = graph.op("Slice", graph.op("Shape", "input_ids"), graph.ints([1]), graph.ints([2]))
    rows = graph.op("Slice", table, graph.ints([0]), length, graph.ints([0]))  # [sequence, hidden]
    summed = graph.op("Add", graph.op("Gather", words, "input_ids"), rows)
    return graph.layer_norm(summed, weights, "embeddings.LayerNorm", h, config.layer_norm_eps)


def _layer(graph: _GraphBuilder, weights: _Weights, config: EncoderConfig, prefix: str, x: str, score_mask: str) -> str:
    """One encoder layer: self-attention and feed-forward, each with a residual and LayerNorm."""
    h, heads = config.hidden_size, config.num_heads
    per_head = graph.ints([0, 0, heads, h // heads])  # [batch, sequence, heads, head size]; 0 keeps a dim

    def split_heads(name: str, perm: list[int]) -> str:
        projected = graph.linear(x, weights, prefix + "attention.self." + name, h, h)
        return graph.op("Transpose", graph.op("Reshape", projected, per_head), perm=perm)

    queries = split_heads("query", [0, 2, 1, 3])  # [batch, heads, sequence, head size]
    keys = split_heads("key", [0, 2, 3, 1])  # [batch, heads, head size, sequence]
    values = split_heads("value", [0, 2, 1, 3])
    scores = graph.op("Mul", graph.op("MatMul", queries, keys), graph.scalar(1.0 / math.sqrt(h // heads)))
    attention = graph.op("Softmax", graph.op("Add", scores, score_mask), axis=-1)
    context = graph.op("Transpose", graph.op("MatMul", attention, values), perm=[0, 2, 1, 3])
    context = graph.op("Reshape", context, graph.ints([0, 0, h]))
    attended = graph.linear(context, weights, prefix + "attention.output.dense", h, h)
    x = graph.layer_norm(
        graph.op("Add", attended, x), weights, prefix + "attention.output.LayerNorm", h, config.layer_norm_eps
    )
    inner = _gelu(graph, graph.linear(x, weights, prefix + "intermediate.dense", h, config.intermediate_size))
    out = graph.linear(inner, weights, prefix + "output.dense", config.intermediate_size, h)
    return graph.layer_norm(graph.op("Add", out, x), weights, prefix + "output.LayerNorm", h, config.layer_norm_eps)


def _gelu(graph: _GraphBuilder, x: str) -> str:
    """The exact GELU, ``x * (1 + erf(x / sqrt(2))) / 2`` (BERT's ``gelu``, not the tanh approximation)."""
    erf = graph.op("Erf", graph.op("Mul", x, graph.scalar(1.0 / math.sqrt(2.0))))
    return graph.op("Mul", graph.op("Mul", x, graph.scalar(0.5)), graph.op("Add", erf, graph.scalar(1.0)))


def _pool(graph: _GraphBuilder, hidden: str, mask: str, output: str) -> str:
    """Mean of ``hidden`` over the tokens ``mask`` marks, scaled to unit length."""
    weights = graph.op("Unsqueeze", mask, graph.ints([2]))  # [batch, sequence, 1]
    total = graph.op("ReduceSum", graph.op("Mul", hidden, weights), graph.ints([1]), keepdims=0)
    count = graph.op("Max", graph.op("ReduceSum", weights, graph.ints([1]), keepdims=0), graph.scalar(1e-9))
    mean = graph.op("Div", total, count)
    length = graph.op("Sqrt", graph.op("ReduceSum", graph.op("Mul", mean, mean), graph.ints([1]), keepdims=1))
    return graph.op("Div", mean, graph.op("Max", length, graph.scalar(1e-12)), output=output)
