"""Smoothing along flow steadies noisy labels of a moving scene, and the stage wires it into frames."""

import cv2
import numpy as np
import pytest
from temporal_frames import texture

from streamseg.errors import ConfigError
from streamseg.frame import Frame
from streamseg.pipeline.stage import check_chain
from streamseg.image.scores import softmax
from streamseg.stages.labels import LabelStage
from streamseg.stages.temporal import TemporalStage
from streamseg.temporal.flow import DISFlowEstimator, ZeroFlowEstimator
from streamseg.temporal.measures import TemporalConsistencyMeter
from streamseg.temporal.smoothing import TemporalSmoother

HEIGHT, WIDTH, CLASSES = 120, 160, 4
STEP = (2, 1)  # the camera pans: content moves 2 px left and 1 px up per frame


def panning_sequence(frames: int, noise: float, seed: int = 0, blob: float = 0.0):
    """Yields (rgb, true labels, noisy logits, true backward flow) of a textured, labelled scene panning by STEP.

    With ``blob`` > 0 the noise is spatially correlated over about ``blob`` pixels, as a
    network's mistakes are (a patch of road called pavement), rather than independent per pixel.
    """
    rng = np.random.default_rng(seed)
    margin = 2 * frames + 10
    scene = texture(HEIGHT + margin, WIDTH + margin, seed)
    blocks = rng.integers(0, CLASSES, (6, 8)).astype(np.uint8)
    scene_labels = cv2.resize(blocks, (WIDTH + margin, HEIGHT + margin), interpolation=cv2.INTER_NEAREST)
    flow = np.broadcast_to(np.float32(STEP), (HEIGHT, WIDTH, 2)).copy()  # content now at x was at x + 2 before
    for t in range(frames):
        x, y = STEP[0] * t, STEP[1] * t
        labels = scene_labels[y:y + HEIGHT, x:x + WIDTH]
        logits = 2.0 * np.eye(CLASSES, dtype=np.float32)[labels].transpose(2, 0, 1)
        errors = rng.normal(0.0, 1.0, logits.shape).astype(np.float32)
        if blob:
            errors = np.stack([cv2.GaussianBlur(plane, (0, 0), blob) for plane in errors])
            errors /= errors.std()
        logits += noise * errors
        yield scene[y:y + HEIGHT, x:x + WIDTH].copy(), labels, np.ascontiguousarray(logits), None if t == 0 else flow


@pytest.mark.parametrize(
    "scores, resolution, blob",
    [(softmax, 1.0, 0.0), (lambda logits: logits, 1.0, 0.0), (softmax, 1.0, 4.0), (lambda logits: logits, 0.5, 4.0)],
    ids=["probabilities", "logits", "probabilities-blobs", "logits-half-grid-blobs"],
)
def test_smoothing_reduces_flicker_and_errors_on_a_noisy_moving_scene(scores, resolution, blob):
    # A half grid steadies what is coarser than its cells: blobs of error, not single pixels.
    smoother = TemporalSmoother(DISFlowEstimator("fast"), weight=0.6, resolution=resolution)
    raw, smoothed = TemporalConsistencyMeter(CLASSES), TemporalConsistencyMeter(CLASSES)
    raw_errors, smoothed_errors = [], []
    for rgb, truth, logits, flow in panning_sequence(16, noise=1.2, blob=blob):
        result = smoother.smooth(rgb, scores(logits))
        raw_labels, smoothed_labels = logits.argmax(axis=0), result.scores.argmax(axis=0)
        raw.add(raw_labels.astype(np.uint8), flow)  # measured with the true flow, not the smoother's
        smoothed.add(smoothed_labels.astype(np.uint8), flow)
        raw_errors.append((raw_labels != truth).mean())
        smoothed_errors.append((smoothed_labels != truth).mean())
    assert smoothed.result().flicker_rate < 0.5 * raw.result().flicker_rate
    assert smoothed.result().mean_iou > raw.result().mean_iou + 0.1
    assert np.mean(smoothed_errors[4:]) < 0.5 * np.mean(raw_errors[4:])


def test_the_first_frame_passes_unchanged_and_later_ones_stay_distributions():
    smoother = TemporalSmoother(DISFlowEstimator("ultrafast"))
    sequence = panning_sequence(3, noise=0.5)
    rgb, _, logits, _ = next(sequence)
    probabilities = softmax(logits)
    first = smoother.smooth(rgb, probabilities)
    assert first.scores is probabilities and first.flow is None and first.blended is None
    for rgb, _, logits, _ in sequence:
        result = smoother.smooth(rgb, softmax(logits))
        assert result.flow.shape == (HEIGHT, WIDTH, 2) and result.blended.dtype == bool
        assert np.allclose(result.scores.sum(axis=0), 1.0, atol=1e-5)


@pytest.mark.parametrize("check", ["forward-backward", "photometric", "none"])
def test_each_occlusion_check_blends_the_seen_part_of_a_pan(check):
    smoother = TemporalSmoother(DISFlowEstimator("fast"), occlusion_check=check)
    results = [smoother.smooth(rgb, softmax(logits)) for rgb, _, logits, _ in panning_sequence(2, noise=0.5)]
    blended = results[1].blended
    assert blended[10:-10, 10:-10].mean() > 0.95
    assert not blended[:, -1].any()  # the column that entered the picture had no previous


def test_weight_zero_changes_nothing():
    smoother = TemporalSmoother(ZeroFlowEstimator(), weight=0.0)
    outputs = [smoother.smooth(rgb, softmax(logits)) for rgb, _, logits, _ in panning_sequence(3, noise=1.0)]
    for output, (_, _, logits, _) in zip(outputs, panning_sequence(3, noise=1.0)):
        assert np.allclose(output.scores, softmax(logits), atol=1e-6)


@pytest.mark.parametrize(
    "options, message",
    [
        ({"weight": 1.0}, "weight must be in"),
        ({"weight": -0.1}, "weight must be in"),
        ({"occlusion_check": "psychic"}, "occlusion check must be one of"),
        ({"consistency_threshold": 0.0}, "thresholds must be positive"),
        ({"resolution": 0.0}, "resolution must be in"),
        ({"resolution": 1.5}, "resolution must be in"),
    ],
)
def test_bad_settings_are_config_errors(options, message):
    with pytest.raises(ConfigError, match=message):
        TemporalSmoother(ZeroFlowEstimator(), **options)


@pytest.mark.parametrize("resolution", [1.0, 0.5])
def test_the_stage_smooths_logits_and_gives_flow_at_model_resolution(resolution):
    stage = TemporalStage(TemporalSmoother(DISFlowEstimator("ultrafast"), resolution=resolution))
    frames, raw = [], []
    for index, (rgb, _, logits, _) in enumerate(panning_sequence(3, noise=1.0)):
        image = cv2.resize(rgb, (2 * WIDTH, 2 * HEIGHT))  # the decoded frame is larger than the model's input
        frame = Frame(index, index / 25, image, logits=logits.copy())
        stage.process(frame)
        frames.append(frame)
        raw.append(logits)
    assert frames[0].flow is None
    np.testing.assert_array_equal(frames[0].logits, raw[0])
    for frame, logits in zip(frames[1:], raw[1:]):
        assert frame.logits.shape == (CLASSES, HEIGHT, WIDTH)
        assert not np.allclose(frame.logits, logits)  # blended with the past
    assert frames[2].flow.shape == (HEIGHT, WIDTH, 2)
    assert np.allclose(np.median(frames[2].flow.reshape(-1, 2), axis=0), STEP, atol=0.3)
    stage.close()


def test_the_stage_fits_after_inference_and_before_labels():
    stage = TemporalStage(TemporalSmoother(ZeroFlowEstimator()))
    check_chain([stage, LabelStage()], frozenset({"image", "logits"}))  # what the source and inference give
    with pytest.raises(ValueError, match=r"stage temporal takes \['logits'\]"):
        check_chain([stage, LabelStage()], frozenset({"image"}))
