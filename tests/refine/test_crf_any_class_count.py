"""The CRF with any class count: 19 classes give uint8 labels, 300 give uint16, sync and async, dense and conv.

The runs use a model file's own classes: :class:`ColourNet` (tests/modelfile) exported with
``torch.onnx.export`` and described by flags; the demo scene's frames are its input size, so
the CRF run here on its scores is the reference.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from modelfile.foreign_models import ColourNet, export

from streamseg.cli import main
from streamseg.image.label_png import read_label_png
from streamseg.image.scores import softmax
from streamseg.label_sets import label_dtype
from streamseg.refine.async_pool import AsyncCrfPool
from streamseg.refine.at_score_resolution import AtScoreResolution
from streamseg.refine.carry import carry_along_flow, follow_flow, identity_coordinates
from streamseg.refine.conv_crf import ConvCRFRefiner
from streamseg.refine.dense_crf import DenseCRFRefiner
from streamseg.refine.from_logits import FromLogits
from streamseg.sources import open_source

LIMIT_S = 60.0  # a bound on waits so that a broken pool fails the test instead of hanging it

# --- refiners on scores ------------------------------------------------------------------------

BANDS = (40, 60)  # (height, width) of an image of three vertical colour bands


def banded_image() -> np.ndarray:
    image = np.zeros((*BANDS, 3), np.uint8)
    image[:, :20] = (200, 30, 30)
    image[:, 20:40] = (30, 200, 30)
    image[:, 40:] = (30, 30, 200)
    return image


def band_ids(classes: int) -> tuple[int, int, int]:
    """The classes the bands belong to: the first, one in the middle and the last, past 255 for 300 classes."""
    return 0, classes // 2, classes - 1


def band_scores(classes: int, *, logits: bool = False) -> np.ndarray:
    """(classes, h, w) at half the image's size: each band's class likely, the band's edges one pixel off."""
    height, width = BANDS[0] // 2, BANDS[1] // 2
    probabilities = np.full((classes, height, width), 0.1 / classes, np.float32)
    for (left, right), class_id in zip(((0, 11), (11, 21), (21, width)), band_ids(classes)):
        probabilities[class_id, :, left:right] += 0.9
    probabilities /= probabilities.sum(axis=0, keepdims=True)
    return np.log(probabilities) if logits else probabilities


def band_labels(classes: int) -> np.ndarray:
    expected = np.empty(BANDS, label_dtype(classes))
    for (left, right), class_id in zip(((0, 20), (20, 40), (40, BANDS[1])), band_ids(classes)):
        expected[:, left:right] = class_id
    return expected


REFINERS = {
    "dense": lambda: DenseCRFRefiner(iterations=3),
    "conv": lambda: ConvCRFRefiner(iterations=3, window=7),
}


@pytest.mark.parametrize("classes", [19, 300])
@pytest.mark.parametrize("refiner", REFINERS)
def test_crf_labels_have_the_class_counts_dtype_and_ids(refiner, classes):
    labels = REFINERS[refiner]().refine(banded_image(), band_scores(classes))
    assert labels.shape == BANDS and labels.dtype == label_dtype(classes)
    # The colour edges pull the labels onto them: at most a column off.
    assert np.mean(labels == band_labels(classes)) >= 0.95
    assert set(np.unique(labels)) == set(band_ids(classes))


@pytest.mark.parametrize("classes", [19, 300])
def test_the_async_pool_returns_labels_in_the_class_counts_dtype(classes):
    refiner = AtScoreResolution(FromLogits(DenseCRFRefiner(iterations=3)))
    with AsyncCrfPool(refiner, workers=1) as pool:
        pool.submit(7, banded_image(), band_scores(classes, logits=True))
        results = []
        give_up = time.monotonic() + LIMIT_S
        while not results and time.monotonic() < give_up:
            results = pool.poll(timeout=0.5)
    [(index, labels, confidence)] = results
    assert confidence is None  # the pool was not asked for it
    assert index == 7 and labels.dtype == label_dtype(classes)
    np.testing.assert_array_equal(labels, refiner.refine(banded_image(), band_scores(classes, logits=True)))
    assert set(np.unique(labels)) == set(band_ids(classes))


def test_a_result_carried_along_flow_keeps_uint16_ids():
    height, width, shift = 8, 16, 2
    raw_then = np.full((height, width), 255, np.uint16)  # with 300 classes, 255 is a class like any other
    raw_then[:, 6:] = 298
    refined_then = raw_then.copy()
    refined_then[:, 5] = 298  # the CRF moved the edge one pixel left
    raw_now = np.roll(raw_then, shift, axis=1)  # everything moved right by two pixels
    flow = np.zeros((height, width, 2), np.float32)
    flow[..., 0] = -shift
    carried = carry_along_flow(refined_then, raw_then, raw_now, follow_flow(identity_coordinates((height, width)), flow))
    assert carried.dtype == np.uint16
    np.testing.assert_array_equal(carried[:, shift:], refined_then[:, :-shift])  # the refined edge, moved
    np.testing.assert_array_equal(carried[:, :shift], raw_now[:, :shift])  # came from outside the frame


# --- runs of a model file ----------------------------------------------------------------------

SIZE = (96, 128)  # (height, width): the model's input and the demo scene's frames
FRAMES = 4
SEED = 4  # with 300 classes, the scene's colours are nearest to prototypes with ids past 255


@pytest.fixture(scope="module", params=[19, 300])
def model(request, tmp_path_factory) -> tuple[Path, ColourNet]:
    net = ColourNet(request.param, seed=SEED)
    path = export(net, torch.zeros((1, 3, *SIZE)), tmp_path_factory.mktemp("model") / f"colours{request.param}.onnx")
    return path, net


def native_logits(net: ColourNet, frame: np.ndarray) -> np.ndarray:
    batch = torch.from_numpy(frame).permute(2, 0, 1)[None].float() / 255
    with torch.inference_mode():
        return net(batch)[0].numpy()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_crf_run_writes_the_crf_labels_of_the_model_scores(model, mode, tmp_path):
    path, net = model
    classes = net.scores.out_channels
    masks = tmp_path / "masks"
    # A long delay budget: each frame waits for its own refinement, so async writes what sync does.
    waits = ["--crf-delay-ms", str(1000 * LIMIT_S)] if mode == "async" else []
    code = main([
        "run", f"demo:{SIZE[1]}x{SIZE[0]}", "--max-frames", str(FRAMES), "--model", str(path),
        "--labels", ",".join(f"class{index}" for index in range(classes)), "--channel-order", "rgb", "--scale", "1/255",
        "--backend", "onnxruntime", "--precision", "fp32", "--crf", mode, *waits, "--masks", str(masks),
    ])
    assert code == 0
    written = [read_label_png(mask) for mask in sorted(masks.glob("*.png"))]
    assert len(written) == FRAMES
    with open_source(f"demo:{SIZE[1]}x{SIZE[0]}", demo_frames=FRAMES) as source:
        images = [frame.image for frame in source]
    for image, labels in zip(images, written):
        assert labels.dtype == label_dtype(classes) and labels.shape == SIZE
        expected = DenseCRFRefiner().refine(image, softmax(native_logits(net, image)))
        assert np.mean(labels == expected) >= 0.99
    if classes > 255:  # the run kept the ids a uint8 map cannot hold
        assert max(int(labels.max()) for labels in written) > 255
