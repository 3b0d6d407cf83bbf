"""Flow smoothing and key-frame propagation with a model file's own classes: 19, and 300 (uint16 ids).

The model is :class:`ColourNet` (tests/modelfile), exported with ``torch.onnx.export`` and described
by flags; the demo scene's frames are its input size, so its scores computed here are the reference.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from modelfile.foreign_models import ColourNet, export

from streamseg.cli import main
from streamseg.frame import Frame
from streamseg.image.label_png import read_label_png
from streamseg.image.scores import class_labels
from streamseg.label_sets import label_dtype
from streamseg.sources import open_source
from streamseg.stages.labels import LabelStage
from streamseg.stages.temporal import SMOOTHING_RESOLUTION, TemporalStage
from streamseg.temporal.flow import DISFlowEstimator
from streamseg.temporal.measures import mean_iou
from streamseg.temporal.smoothing import TemporalSmoother

SIZE = (96, 128)  # (height, width): the model's input and the demo scene's frames
FRAMES = 6
SEED = 4  # with 300 classes, the scene's colours are nearest to prototypes with ids past 255


def demo_frames() -> list[np.ndarray]:
    with open_source(f"demo:{SIZE[1]}x{SIZE[0]}", demo_frames=FRAMES) as source:
        return [frame.image for frame in source]


def native_logits(net: ColourNet, frame: np.ndarray) -> np.ndarray:
    batch = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        return net(batch)[0].numpy()


@pytest.fixture(scope="module", params=[19, 300])
def model(request, tmp_path_factory) -> tuple[Path, ColourNet]:
    net = ColourNet(request.param, seed=SEED)
    path = export(net, torch.zeros((1, 3, *SIZE)), tmp_path_factory.mktemp("model") / f"colours{request.param}.onnx")
    return path, net


def run(model: Path, classes: int, masks: Path, *options: str) -> list[np.ndarray]:
    labels = ",".join(f"class{index}" for index in range(classes))
    code = main([
        "run", f"demo:{SIZE[1]}x{SIZE[0]}", "--max-frames", str(FRAMES), "--model", str(model), "--labels", labels,
        "--channel-order", "rgb", "--scale", "1/255", "--backend", "onnxruntime", "--precision", "fp32",
        "--masks", str(masks), *options,
    ])
    assert code == 0
    return [read_label_png(path) for path in sorted(masks.glob("*.png"))]


def check_masks(written: list[np.ndarray], classes: int) -> None:
    assert len(written) == FRAMES
    for masks in written:
        assert masks.dtype == label_dtype(classes) and masks.shape == SIZE
        assert masks.max() < classes
    if classes > 255:  # the run kept the ids a uint8 map cannot hold
        assert max(int(masks.max()) for masks in written) > 255


def test_flow_smoothing_writes_the_smoothed_labels_of_the_model_scores(model, tmp_path):
    path, net = model
    classes = net.scores.out_channels
    written = run(path, classes, tmp_path / "masks", "--flow", "dis")
    check_masks(written, classes)
    # What the run's stages give, on the network's scores computed here: DIS ultrafast, weight 0.5, the default grid.
    smoothing = TemporalStage(TemporalSmoother(DISFlowEstimator("ultrafast"), weight=0.5, resolution=SMOOTHING_RESOLUTION))
    for index, (image, masks) in enumerate(zip(demo_frames(), written)):
        frame = Frame(index=index, timestamp=index / 25, image=image, logits=native_logits(net, image))
        smoothing.process(frame)
        LabelStage().process(frame)
        assert frame.labels.dtype == masks.dtype
        assert np.mean(masks == frame.labels) >= 0.99


def test_key_frames_keep_the_network_labels_and_the_frames_between_move_them(model, tmp_path):
    path, net = model
    classes = net.scores.out_channels
    written = run(path, classes, tmp_path / "masks", "--key-every", "3")
    check_masks(written, classes)
    for index, (image, masks) in enumerate(zip(demo_frames(), written)):
        agreement = np.mean(masks == class_labels(native_logits(net, image)))
        # Key frames are the network's own; between them its labels moved along flow, far from chance (1 / classes).
        assert agreement >= (0.995 if index % 3 == 0 else 0.5), (index, agreement)


def test_consistency_counts_every_class_id_by_default():
    labels = np.repeat(np.array([3, 256, 299], np.uint16), 4).reshape(3, 4)
    valid = np.ones(labels.shape, bool)
    assert mean_iou(labels, labels, valid) == 1.0
    changed = labels.copy()
    changed[2] = 298  # one class of three disagrees
    assert mean_iou(changed, labels, valid) == pytest.approx(2 / 4)
