"""Built-in plugin: serve your own item embeddings as a model (``engine.fit("embeddings", item_vectors=V)``)."""

from backpack.embedding_model import EmbeddingModel
from backpack.hookspecs import hookimpl


@hookimpl
def register_algorithms(register):
    register("embeddings", EmbeddingModel,
             description="your own item vectors: a bag scores items by its mean vector (item_vectors=)")
