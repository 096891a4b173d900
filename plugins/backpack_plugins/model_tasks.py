"""Built-in model tasks: text embedding (all-MiniLM-L6-v2) and object detection (YOLO-style)."""

from backpack.hookspecs import hookimpl
from backpack.models.object_detection import ObjectDetectionTask
from backpack.models.text_embedding import TextEmbeddingTask


@hookimpl
def register_model_tasks(register):
    register(
        "text-embedding",
        TextEmbeddingTask,
        description="sentence vectors (384-d, unit length) from all-MiniLM-L6-v2 on any backend (backend=)",
    )
    register(
        "object-detection",
        ObjectDetectionTask,
        description="YOLOv8/YOLOv5-layout detectors: letterbox, decode, NMS (model=, layout=, class_names=)",
    )
