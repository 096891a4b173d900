"""Built-in model task: text embedding with all-MiniLM-L6-v2 (extra ``backpack[text]`` and the model package)."""

from backpack.hookspecs import hookimpl
from backpack.text_embedding import TextEmbeddingTask


@hookimpl
def register_model_tasks(register):
    register("text-embedding", TextEmbeddingTask,
             description="sentence vectors (384-d, unit length) from all-MiniLM-L6-v2 on any backend (backend=)")
