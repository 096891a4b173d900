"""Built-in model task: object detection with YOLO-style ONNX models (extra ``backpack[onnx]`` or ``[iree]``)."""

from backpack.hookspecs import hookimpl
from backpack.object_detection import ObjectDetectionTask


@hookimpl
def register_model_tasks(register):
    register("object-detection", ObjectDetectionTask,
             description="YOLOv8/YOLOv5-layout detectors: letterbox, decode, NMS (model=, layout=, class_names=)")
