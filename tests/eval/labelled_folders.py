"""What the eval tests score: labelled folders written here, and a model whose output is known from the image.

The model is a foreign one, an ONNX graph made with ``onnx.helper`` (none of streamseg's model
code), read by path with a sidecar description: over C classes its score for class c is
``-(255 * R - 10 * c)^2``, R the red channel normalised to [0, 1], so a pixel whose red value is
``10 * c`` is class c.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

RED_STEP = 10  # red value 10 * c is class c


def write_rgb(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))


def write_ids(path: Path, ids: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), ids)


def image_of_classes(classes: np.ndarray, seed: int = 0) -> np.ndarray:
    """An RGB image the red-level model segments as ``classes`` (H, W); green and blue are noise it ignores."""
    image = np.random.default_rng(seed).integers(0, 256, size=(*classes.shape, 3), dtype=np.uint8)
    image[..., 0] = RED_STEP * classes
    return image


def write_cityscapes_frame(root: Path, split: str, city: str, number: int, image: np.ndarray, label_ids: np.ndarray) -> None:
    """One frame in Cityscapes' layout: the image and its gtFine labelIds map (Cityscapes' 34 label ids)."""
    stem = f"{city}_{number:06d}_000019"
    write_rgb(root / "leftImg8bit" / split / city / f"{stem}_leftImg8bit.png", image)
    write_ids(root / "gtFine" / split / city / f"{stem}_gtFine_labelIds.png", label_ids.astype(np.uint8))


def red_level_model(
    path: Path, classes: int, size: tuple[int, int] | None, labels: str | list[str], *, class_ids: bool = False
) -> Path:
    """The red-level model of ``classes`` classes at ``size`` (h, w), at ``path`` with its sidecar beside it.

    ``size`` None: of dynamic size. ``class_ids``: it ends in an ArgMax and gives int64 class ids (N, H, W).
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    height, width = size or ("height", "width")
    constants = {
        "starts": np.array([0], np.int64), "ends": np.array([1], np.int64), "axes": np.array([1], np.int64),
        "full_scale": np.array(255, np.float32),
        "levels": (RED_STEP * np.arange(classes, dtype=np.float32)).reshape(1, classes, 1, 1),
    }
    nodes = [
        helper.make_node("Slice", ["image", "starts", "ends", "axes"], ["red"]),
        helper.make_node("Mul", ["red", "full_scale"], ["red_value"]),
        helper.make_node("Sub", ["red_value", "levels"], ["distance"]),
        helper.make_node("Mul", ["distance", "distance"], ["squared"]),
        helper.make_node("Neg", ["squared"], ["scores"]),
    ]
    output = helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, classes, height, width])
    if class_ids:
        nodes.append(helper.make_node("ArgMax", ["scores"], ["ids"], axis=1, keepdims=0))
        output = helper.make_tensor_value_info("ids", TensorProto.INT64, [1, height, width])
    graph = helper.make_graph(
        nodes, "red_level",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, height, width])],
        [output],
        [numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # readable by every ONNX Runtime the project supports
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    written_labels = labels if isinstance(labels, str) else "[" + ", ".join(f'"{name}"' for name in labels) + "]"
    path.with_suffix(".streamseg.yaml").write_text(
        f"labels: {written_labels}\n"
        "input: {channel_order: rgb, layout: nchw, mean: [0, 0, 0], std: [1, 1, 1], scale: 0.00392156862745098, resize: stretch}\n"
        + ("output: {kind: class-ids}\n" if class_ids else "output: {kind: scores, layout: nchw, scores: logits}\n")
    )
    return path
