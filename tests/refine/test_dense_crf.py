"""The fully connected CRF pulls coarse, misplaced labels back onto the image edges."""

import numpy as np
import pytest
from crf_test_helpers import (
    coarse_probabilities,
    demo_frames,
    mean_iou,
    upsampled_argmax,
)

from streamseg.errors import ConfigError
from streamseg.refine.dense_crf import (
    CrfParameters,
    DenseCRFRefiner,
    read_crf_parameters,
)

pytest.importorskip("pydensecrf.densecrf", reason="pydensecrf (the `crf` extra, pydensecrf2) is not installed")

FRAMES = demo_frames(3)


# At half scale thin poles fall between CRF pixels, so the gain is smaller.
@pytest.mark.parametrize("scale, gain", [(1.0, 0.05), (0.5, 0.02)])
@pytest.mark.parametrize("frame", FRAMES, ids=lambda frame: f"frame{frame.index}")
def test_refinement_moves_labels_to_the_image_edges(frame, scale, gain):
    probabilities = coarse_probabilities(frame.truth, seed=frame.index)
    before = mean_iou(frame.truth, upsampled_argmax(probabilities, frame.truth.shape))

    labels = DenseCRFRefiner(scale=scale).refine(frame.image, probabilities)

    assert labels.shape == frame.truth.shape and labels.dtype == np.uint8
    after = mean_iou(frame.truth, labels)
    assert after > before + gain, f"mIoU {before:.3f} -> {after:.3f}"


def test_probabilities_at_image_size_need_no_resizing():
    frame = FRAMES[0]
    probabilities = coarse_probabilities(frame.truth, factor=1)
    labels = DenseCRFRefiner(iterations=2).refine(frame.image, probabilities)
    assert labels.shape == frame.truth.shape


GOOD_IMAGE = np.zeros((20, 30, 3), np.uint8)
GOOD_PROBABILITIES = np.full((3, 10, 15), 1 / 3, np.float32)


@pytest.mark.parametrize(
    "image, probabilities, message",
    [
        (np.zeros((20, 30), np.uint8), GOOD_PROBABILITIES, "image must be RGB uint8"),
        (np.zeros((20, 30, 4), np.uint8), GOOD_PROBABILITIES, "image must be RGB uint8"),
        (np.zeros((20, 30, 3), np.float32), GOOD_PROBABILITIES, "image must be RGB uint8"),
        (GOOD_IMAGE, np.full((10, 15), 0.5, np.float32), "probabilities must be float"),
        (GOOD_IMAGE, np.ones((3, 10, 15), np.uint8), "probabilities must be float"),
        (GOOD_IMAGE, np.ones((0, 10, 15), np.float32), "1 to 65535 classes"),
        (GOOD_IMAGE, np.ones((3, 0, 15), np.float32), "empty"),
    ],
)
def test_bad_shapes_are_a_clear_value_error(image, probabilities, message):
    with pytest.raises(ValueError, match=message):
        DenseCRFRefiner().refine(image, probabilities)


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"gaussian_sxy": 0}, "gaussian_sxy must be positive"),
        ({"bilateral_srgb": -1}, "bilateral_srgb must be positive"),
        ({"bilateral_compat": -1}, "bilateral_compat must be zero or positive"),
        ({"iterations": 0}, "iterations"),
        ({"scale": 0}, "scale"),
    ],
)
def test_bad_settings_are_refused(settings, message):
    with pytest.raises(ValueError, match=message):
        DenseCRFRefiner(**settings)


def test_settings_round_trip_through_yaml(tmp_path):
    path = tmp_path / "crf.yaml"
    path.write_text("gaussian_sxy: 2\nbilateral_sxy: 50\nbilateral_srgb: 5\niterations: 3\n")
    parameters = read_crf_parameters(path)
    assert parameters == CrfParameters(gaussian_sxy=2, bilateral_sxy=50, bilateral_srgb=5, iterations=3)
    assert DenseCRFRefiner.from_parameters(parameters).parameters == parameters


@pytest.mark.parametrize(
    "text, message",
    [("bilateral_sigma: 3\n", "unknown CRF settings"), ("iterations: 0\n", "iterations"), ("- 1\n", "mapping")],
)
def test_bad_settings_files_are_config_errors(tmp_path, text, message):
    path = tmp_path / "crf.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_crf_parameters(path)


def test_from_logits_refines_like_the_refiner_on_their_softmax():
    from streamseg.refine.from_logits import FromLogits
    from streamseg.image.scores import softmax

    rng = np.random.default_rng(3)
    image = rng.integers(0, 255, (24, 32, 3), dtype=np.uint8)
    logits = rng.normal(size=(4, 24, 32)).astype(np.float32) * 3
    refiner = DenseCRFRefiner(iterations=3)
    np.testing.assert_array_equal(FromLogits(refiner).refine(image, logits), refiner.refine(image, softmax(logits)))
