"""Object detection: find objects in images (thumbnails, screenshots) with a YOLO-style model.

The task wraps a single-stage detector exported to ONNX and runs it on any
backend. Everything around the model is NumPy, so the same images give the
same boxes on ONNX Runtime and on IREE:

* **Pre-processing.** Each image is letterboxed into the model's input: resized
  bilinearly (pixel centres aligned, as OpenCV's and PIL's bilinear do) by the
  largest factor that fits, keeping its aspect ratio, centred and padded with
  grey 114 (the colour YOLO models are trained with). Values are scaled to
  [0, 1], normalised with ``mean``/``std`` (given on that [0, 1] scale) and
  laid out as NCHW. Letterboxing rather than stretching matters for UGC
  thumbnails and screenshots, whose shapes vary: a stretched object is not
  the shape the model learnt.
* **Post-processing.** Boxes below ``score_threshold`` are dropped, the
  letterbox is undone (padding removed, scale divided out) so boxes are in
  the original image's pixels, boxes are clipped to the image (those left
  with no area are dropped), then greedy non-maximum suppression keeps, class
  by class, the best-scoring box of every group overlapping by more than
  ``iou_threshold``, up to ``max_detections`` per image, best first.

Model contract
--------------
* One input, float32 (or float16) ``[batch, 3, H, W]``: RGB, NCHW. ``H`` and
  ``W`` come from the model when they are fixed; a model with dynamic height
  or width needs ``input_size=``. The batch dimension may be fixed (images
  are then run in groups of that size) or dynamic.
* The first output holds the candidate boxes, in one of two layouts:

  - ``layout="yolov8"`` (YOLOv8 and later, anchor-free): ``[batch, 4 + C, boxes]``,
    each column ``cx, cy, w, h, score_0 .. score_{C-1}``;
  - ``layout="yolov5"`` (YOLOv5/v7): ``[batch, boxes, 5 + C]``, each row
    ``cx, cy, w, h, objectness, p_0 .. p_{C-1}``; a class's score is
    ``objectness * p_c``.

  Boxes are centre and size in input pixels (the letterboxed image); scores
  are already probabilities in [0, 1] (the export includes the sigmoid), as in
  Ultralytics' ONNX exports without built-in NMS. An output that does not fit
  the layout raises :class:`~backpack.errors.ModelContractError` saying what
  was expected and which layout the shape does fit.

Each box gets the class with the highest score (one label per box, as
Ultralytics does by default). Suppression is greedy in score order, ties
broken by box order, and a box is suppressed when its IoU with a kept box of
the same class is strictly above ``iou_threshold``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from backpack.errors import InvalidInputError, ModelContractError
from backpack.models.backends import ModelBackend
from backpack.models.tasks import ModelTask

#: grey the letterbox pads with (0..255), as YOLO training does
PAD_VALUE = 114
#: images per run when the model's batch dimension is dynamic (bounds the batch's memory)
DYNAMIC_BATCH = 16
LAYOUTS = ("yolov8", "yolov5")


class Detection(NamedTuple):
    """One detected object: ``box`` as ``(x1, y1, x2, y2)`` in the original image's pixels."""

    box: tuple[float, float, float, float]
    score: float
    class_id: int
    label: str


class Letterbox(NamedTuple):
    """Where an image went in the model's input: ``x_model = x * scale_x + pad_x`` (likewise y)."""

    scale_x: float
    scale_y: float
    pad_x: int
    pad_y: int
    width: int  # the original image's
    height: int

    @property
    def resized(self) -> tuple[int, int]:
        """The image's (height, width) in the model's input."""
        return round(self.scale_y * self.height), round(self.scale_x * self.width)


def fit_letterbox(height: int, width: int, model_height: int, model_width: int) -> Letterbox:
    """The letterbox of a ``height`` x ``width`` image in a ``model_height`` x ``model_width`` input:
    the largest scale that fits (at least one pixel a side), centred."""
    ratio = min(model_height / height, model_width / width)
    new_h = min(model_height, max(1, round(height * ratio)))
    new_w = min(model_width, max(1, round(width * ratio)))
    return Letterbox(
        new_w / width, new_h / height, (model_width - new_w) // 2, (model_height - new_h) // 2, width, height
    )


def _taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each output index: the two source indices and the weight of the second (pixel centres aligned)."""
    src = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    src = np.clip(src, 0.0, n_in - 1)
    lo = np.floor(src).astype(np.intp)
    hi = np.minimum(lo + 1, n_in - 1)
    return lo, hi, (src - lo).astype(np.float32)


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """``image`` (H x W x C) resized to ``height`` x ``width`` by bilinear interpolation, as float32.

    Output pixel centres map onto input pixel centres (``(i + 0.5) * in/out - 0.5``)
    and samples past the edge take the edge pixel, as OpenCV's ``INTER_LINEAR``
    does. Rows are interpolated first, then columns: two gathers and two blends
    over whole arrays.
    """
    y0, y1, fy = _taps(image.shape[0], height)
    x0, x1, fx = _taps(image.shape[1], width)
    top = image[y0].astype(np.float32)
    rows = top + (image[y1].astype(np.float32) - top) * fy[:, None, None]
    left = rows[:, x0]
    return left + (rows[:, x1] - left) * fx[None, :, None]


def letterbox(image: np.ndarray, height: int, width: int, pad_value: float = PAD_VALUE) -> tuple[np.ndarray, Letterbox]:
    """``image`` (H x W x C) fitted into ``height`` x ``width`` keeping its aspect ratio, centred and
    padded with ``pad_value``: the float32 canvas and the :class:`Letterbox` that undoes it."""
    placed = fit_letterbox(image.shape[0], image.shape[1], height, width)
    canvas = np.full((height, width, image.shape[2]), pad_value, dtype=np.float32)
    canvas[_region(placed)] = _resized(image, placed)
    return canvas, placed


def _region(placed: Letterbox) -> tuple[slice, slice]:
    new_h, new_w = placed.resized
    return slice(placed.pad_y, placed.pad_y + new_h), slice(placed.pad_x, placed.pad_x + new_w)


def _resized(image: np.ndarray, placed: Letterbox) -> np.ndarray:
    new_h, new_w = placed.resized
    return image if (new_h, new_w) == image.shape[:2] else resize_bilinear(image, new_h, new_w)


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one ``(x1, y1, x2, y2)`` box with each row of ``boxes`` (0 where the union is empty)."""
    w = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0, None)
    h = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0, None)
    inter = w * h
    union = (box[2] - box[0]) * (box[3] - box[1]) + (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def non_max_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    class_ids: np.ndarray | None = None,
    iou_threshold: float = 0.45,
    max_detections: int | None = None,
) -> np.ndarray:
    """Indices of the boxes greedy NMS keeps, best score first.

    ``boxes`` is N x 4 ``(x1, y1, x2, y2)``. Going down the scores (ties: lower
    index first), a box is kept unless its IoU with an already kept box of the
    same class is above ``iou_threshold``; each step compares the kept box with
    all remaining ones at once, so the loop runs once per kept box and stops at
    ``max_detections``. With ``class_ids``, each class's boxes are moved to
    their own region of the plane (an offset of more than the boxes' span per
    class), so boxes of different classes never overlap and one pass serves
    all classes.
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    if boxes.shape[0] != scores.shape[0]:
        raise InvalidInputError(f"{boxes.shape[0]} boxes but {scores.shape[0]} scores")
    if class_ids is not None and len(boxes):
        class_ids = np.asarray(class_ids).reshape(-1)
        span = float(boxes.max() - boxes.min()) + 1.0
        boxes = boxes + (class_ids.astype(np.float64) * span)[:, None]
    order = np.argsort(-scores, kind="stable")
    limit = len(order) if max_detections is None else max_detections
    keep: list[int] = []
    while order.size and len(keep) < limit:
        best, order = order[0], order[1:]
        keep.append(int(best))
        order = order[box_iou(boxes[best], boxes[order]) <= iou_threshold]
    return np.asarray(keep, dtype=np.intp)


def as_rgb(image, index: int) -> np.ndarray:
    """``image`` as an H x W x 3 uint8 RGB array (grey is repeated, alpha dropped), or InvalidInputError."""
    try:
        array = np.asarray(image)
    except Exception as exc:
        raise InvalidInputError(f"image {index} is not an array: {exc}") from None
    expected = "an H x W x 3 (RGB), H x W x 4 (RGBA) or H x W (grey) uint8 array"
    if array.dtype != np.uint8:
        raise InvalidInputError(f"image {index} has dtype {array.dtype} (shape {array.shape}); expected {expected}")
    if array.ndim == 3 and array.shape[2] in (3, 4):
        array = array[:, :, :3]
    elif array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 1):
        array = array.reshape(array.shape[0], array.shape[1], 1)
    else:
        raise InvalidInputError(f"image {index} has shape {array.shape}; expected {expected}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise InvalidInputError(f"image {index} has shape {array.shape}: it is empty")
    return array


def _check_unit(name: str, value, low_open: bool = False) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not (0 < value <= 1 if low_open else 0 <= value <= 1):
        raise InvalidInputError(f"{name} must be in {'(0' if low_open else '[0'}, 1], got {value}")
    return value


def _channel_triple(name: str, values, positive: bool) -> np.ndarray:
    try:
        array = np.asarray(values, dtype=np.float32).reshape(-1)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{name} must be 3 numbers (R, G, B), got {values!r}") from None
    if array.shape != (3,) or not np.isfinite(array).all() or (positive and (array <= 0).any()):
        raise InvalidInputError(
            f"{name} must be 3 finite numbers (R, G, B){' > 0' if positive else ''}, got {values!r}"
        )
    return array


class ObjectDetectionTask(ModelTask):
    """Detects objects in RGB images with a YOLO-style ONNX model (see the module docstring).

    Parameters
    ----------
    model : path, bytes or ``onnx.ModelProto`` of the detector.
    backend : ``"onnx"``, ``"iree"``, another registered backend's name, or a
        :class:`~backpack.models.backends.ModelBackend` instance.
    input_size : ``(height, width)`` or one int for a square input; needed when
        the model's height or width is dynamic, checked against them when fixed.
    layout : ``"yolov8"`` (``[batch, 4 + C, boxes]``) or ``"yolov5"`` (``[batch, boxes, 5 + C]``).
    class_names : the C class names (labels of the detections; also pins C, so
        the output's shape is checked exactly). Without them labels are the class ids.
    score_threshold : minimum class score (times objectness for yolov5) of a detection.
    iou_threshold : IoU above which a lower-scoring box of the same class is suppressed.
    max_detections : most detections returned per image.
    mean, std : per-channel normalisation of the [0, 1] input: ``(x - mean) / std``.
    plugins : the plugin manager to find ``backend`` in (default: the global one).
    backend_options : passed to the backend when it is given by name (``threads=``, ``cache_dir=``, ...).

    Attributes
    ----------
    input_height, input_width : the model's input size images are letterboxed into.
    batch_size : images per run (the model's fixed batch, else ``DYNAMIC_BATCH``).
    num_classes : C, from the output's shape (None until the first run if that axis is dynamic).
    """

    name = "object-detection"

    @classmethod
    def available(cls) -> bool:
        """Whether a backend that can run ONNX detectors (ONNX Runtime or IREE) is installed."""
        from backpack.models.iree import IreeBackend
        from backpack.models.onnx_runtime import OnnxRuntimeBackend

        return OnnxRuntimeBackend.available() or IreeBackend.available()

    @classmethod
    def unavailable_reason(cls) -> str:
        """What to install when :meth:`available` is False."""
        if cls.available():
            return ""
        return (
            "object detection runs ONNX models and needs ONNX Runtime or IREE: "
            "pip install 'backpack-engine[onnx]' (or '[iree]')"
        )

    def __init__(
        self,
        model,
        backend: str | ModelBackend = "onnx",
        *,
        input_size=None,
        layout: str = "yolov8",
        class_names: Sequence[str] | None = None,
        score_threshold: float = 0.25,
        iou_threshold: float = 0.45,
        max_detections: int = 100,
        mean=(0.0, 0.0, 0.0),
        std=(1.0, 1.0, 1.0),
        plugins=None,
        **backend_options,
    ):
        if layout not in LAYOUTS:
            raise InvalidInputError(f"layout must be one of {list(LAYOUTS)}, got {layout!r}")
        self.layout = layout
        if class_names is not None:
            if isinstance(class_names, str) or not all(isinstance(n, str) for n in class_names):
                raise InvalidInputError("class_names must be a sequence of strings, one per class")
            class_names = tuple(class_names)
            if not class_names:
                raise InvalidInputError("class_names is empty; pass None to label detections by class id")
        self.class_names = class_names
        self.score_threshold = _check_unit("score_threshold", score_threshold)
        self.iou_threshold = _check_unit("iou_threshold", iou_threshold, low_open=True)
        if (
            not isinstance(max_detections, (int, np.integer))
            or isinstance(max_detections, bool)
            or not 1 <= max_detections <= 100_000
        ):
            raise InvalidInputError(f"max_detections must be an int in [1, 100000], got {max_detections!r}")
        self.max_detections = int(max_detections)
        self.mean = _channel_triple("mean", mean, positive=False)
        self.std = _channel_triple("std", std, positive=True)
        if isinstance(backend, ModelBackend) and backend_options:
            raise InvalidInputError(
                f"backend options {sorted(backend_options)} only apply to a backend given "
                f"by name; configure the {type(backend).__name__} instance instead"
            )
        session = self._open(model, backend, backend_options, plugins)
        self._input = self._check_input(session)
        if not session.outputs:
            raise ModelContractError("the model has no outputs; a detector returns its candidate boxes")
        self._output = session.outputs[0]
        self.input_height, self.input_width = self._input_size(input_size)
        batch = self._input.shape[0]
        self.batch_size = batch if isinstance(batch, int) and batch > 0 else DYNAMIC_BATCH
        self.num_classes = self._check_output_shape(self._output.shape)

    # -- the model's contract ------------------------------------------------------

    def _check_input(self, session):
        if len(session.inputs) != 1:
            raise ModelContractError(
                f"the model takes {len(session.inputs)} inputs "
                f"{[s.describe() for s in session.inputs]}; a detector takes one image "
                f"tensor float32[batch, 3, height, width]"
            )
        spec = session.inputs[0]
        channels = spec.shape[1] if len(spec.shape) == 4 else None
        if (
            spec.dtype.kind != "f"
            or len(spec.shape) != 4
            or (isinstance(channels, int) and channels > 0 and channels != 3)
        ):
            raise ModelContractError(
                f"the model's input is {spec.describe()}; a detector takes float32[batch, 3, height, width] (RGB, NCHW)"
            )
        return spec

    def _input_size(self, input_size) -> tuple[int, int]:
        fixed = tuple(d if isinstance(d, int) and d > 0 else None for d in self._input.shape[2:])
        if input_size is None:
            if None in fixed:
                raise InvalidInputError(
                    f"the model's input {self._input.describe()} has a dynamic height or "
                    f"width; pass input_size=(height, width)"
                )
            return fixed
        size = (input_size, input_size) if isinstance(input_size, (int, np.integer)) else tuple(input_size)
        if (
            len(size) != 2
            or not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in size)
            or not all(1 <= s <= 16384 for s in size)
        ):
            raise InvalidInputError(
                f"input_size must be (height, width) or one int, each in [1, 16384], got {input_size!r}"
            )
        for axis, (given, model) in enumerate(zip(size, fixed)):
            if model is not None and given != model:
                raise InvalidInputError(
                    f"input_size={tuple(size)} but the model's input "
                    f"{self._input.describe()} has {('height', 'width')[axis]} {model}"
                )
        return int(size[0]), int(size[1])

    def _check_output_shape(self, shape) -> int | None:
        """The class count C ``shape`` implies under the layout, or ModelContractError saying what was expected.

        The model's declared shape, checked at load, may hold dynamic dimensions
        (not checked then, and C is None); every run checks the actual shape.
        """
        v8 = self.layout == "yolov8"
        extra = 4 if v8 else 5
        expected = "[batch, 4 + classes, boxes]" if v8 else "[batch, boxes, 5 + classes]"
        if self.class_names is not None:
            expected = expected.replace("classes", str(len(self.class_names)))
        shape = tuple(shape)
        if len(shape) != 3:
            raise ModelContractError(
                f"layout {self.layout!r} expects the output {expected}, but the model's "
                f"output {self._output.name!r} has rank {len(shape)}: {shape}"
            )
        known = [d if isinstance(d, int) and d > 0 else None for d in shape]
        attributes, boxes = (known[1], known[2]) if v8 else (known[2], known[1])
        if attributes is None:
            return None
        classes = attributes - extra
        wrong = None
        if self.class_names is not None:
            if classes != len(self.class_names):
                wrong = f"{len(self.class_names)} class names need {len(self.class_names) + extra} attributes"
        elif classes < 1:
            wrong = f"{attributes} attributes leave no class scores"
        elif boxes is not None and attributes > boxes:
            # Real detectors propose far more boxes than they have classes; the other way
            # round almost always means the axes are swapped (class_names= pins C and skips this).
            wrong = f"{attributes} attributes but only {boxes} boxes: the axes look swapped"
        if wrong:
            raise ModelContractError(
                f"layout {self.layout!r} expects the output {expected}, but the model's "
                f"output {self._output.name!r} is {shape} ({wrong}){self._layout_hint(known)}"
            )
        return classes

    def _layout_hint(self, known) -> str:
        other = "yolov5" if self.layout == "yolov8" else "yolov8"
        attributes = known[2] if other == "yolov5" else known[1]
        if attributes is None:
            return ""
        classes = attributes - (5 if other == "yolov5" else 4)
        if classes >= 1 and (self.class_names is None or classes == len(self.class_names)):
            return f"; it fits layout={other!r} with {classes} classes"
        return ""

    # -- detection -----------------------------------------------------------------

    def detect(self, images) -> list[list[Detection]]:
        """Objects in each image: a list per image of :class:`Detection`, best score first.

        ``images`` is a sequence of H x W x 3 RGB (H x W x 4: alpha dropped;
        H x W: grey) uint8 arrays, of any sizes, or an N x H x W x C uint8 array.
        """
        if isinstance(images, np.ndarray) and images.ndim != 4:
            raise InvalidInputError(
                f"images is one array of shape {images.shape}; pass a list of images "
                f"(e.g. [image]) or an N x H x W x C batch"
            )
        if isinstance(images, (str, bytes)) or not hasattr(images, "__len__"):
            raise InvalidInputError(f"images must be a list of image arrays, got {type(images).__name__}")
        rgb = [as_rgb(image, i) for i, image in enumerate(images)]
        results: list[list[Detection]] = []
        for start in range(0, len(rgb), self.batch_size):
            group = rgb[start : start + self.batch_size]
            batch, boxes = self.preprocess(group)
            output = self._run(batch)
            results.extend(self.postprocess(output[: len(group)], boxes))
        return results

    def preprocess(self, images: Sequence[np.ndarray]) -> tuple[np.ndarray, list[Letterbox]]:
        """The model's input for H x W x 3 (or x 1) uint8 images and the letterbox of each.

        A model with a fixed batch size gets the group padded with blank canvases.
        """
        fixed = self._input.shape[0]
        rows = fixed if isinstance(fixed, int) and fixed > 0 else len(images)
        batch = np.full((rows, 3, self.input_height, self.input_width), PAD_VALUE, dtype=np.float32)
        boxes = []
        for row, image in enumerate(images):
            placed = fit_letterbox(image.shape[0], image.shape[1], self.input_height, self.input_width)
            boxes.append(placed)
            # written straight into the batch as CHW (a grey image's one channel broadcasts to three)
            batch[(row, slice(None), *_region(placed))] = _resized(image, placed).transpose(2, 0, 1)
        # scale and normalise per channel plane: long inner loops, unlike a broadcast over HWC's last axis
        batch *= (1.0 / (255.0 * self.std))[:, None, None]
        batch -= (self.mean / self.std)[:, None, None]
        return batch.astype(self._input.dtype, copy=False), boxes

    def _run(self, batch: np.ndarray) -> np.ndarray:
        output = self.session.run({self._input.name: batch})[self._output.name]
        output = np.asarray(output)
        self.num_classes = self._check_output_shape(output.shape)
        if output.shape[0] != batch.shape[0]:
            raise ModelContractError(
                f"the model returned {output.shape[0]} results for a batch of "
                f"{batch.shape[0]} images (output {output.shape})"
            )
        return output

    def postprocess(self, output: np.ndarray, placements: Sequence[Letterbox]) -> list[list[Detection]]:
        """Detections per image from the model's raw ``output`` (see the module docstring for the steps)."""
        output = np.asarray(output, dtype=np.float32)
        if self.layout == "yolov8":
            candidates = output.transpose(0, 2, 1)
            boxes, scores = candidates[..., :4], candidates[..., 4:]
        else:
            boxes, scores = output[..., :4], output[..., 5:] * output[..., 4:5]
        return [self._detections(boxes[i], scores[i], placed) for i, placed in enumerate(placements)]

    def _detections(self, boxes: np.ndarray, scores: np.ndarray, placed: Letterbox) -> list[Detection]:
        class_ids = scores.argmax(axis=1)
        best = scores[np.arange(len(scores)), class_ids]
        keep = best >= self.score_threshold  # False for NaN
        boxes, best, class_ids = boxes[keep].astype(np.float64), best[keep], class_ids[keep]
        half_w, half_h = boxes[:, 2] / 2, boxes[:, 3] / 2
        corners = np.stack(
            [boxes[:, 0] - half_w, boxes[:, 1] - half_h, boxes[:, 0] + half_w, boxes[:, 1] + half_h], axis=1
        )
        corners[:, 0::2] = np.clip((corners[:, 0::2] - placed.pad_x) / placed.scale_x, 0, placed.width)
        corners[:, 1::2] = np.clip((corners[:, 1::2] - placed.pad_y) / placed.scale_y, 0, placed.height)
        # a box wholly in the padding (or NaN) has no area left in the image
        real = (corners[:, 2] > corners[:, 0]) & (corners[:, 3] > corners[:, 1])
        corners, best, class_ids = corners[real], best[real], class_ids[real]
        kept = non_max_suppression(corners, best, class_ids, self.iou_threshold, self.max_detections)
        names = self.class_names
        return [
            Detection(
                tuple(float(v) for v in corners[i]),
                float(best[i]),
                int(class_ids[i]),
                names[class_ids[i]] if names is not None else str(int(class_ids[i])),
            )
            for i in kept
        ]
