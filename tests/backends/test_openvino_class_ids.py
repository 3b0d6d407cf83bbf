"""The OpenVINO graph's fused argmax gives class ids in the label set's type: uint8 up to 255 classes, uint16 beyond."""

from __future__ import annotations

import numpy as np
import pytest

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install 'streamseg[openvino]')")

from streamseg.backends.openvino_backend import uint8_to_class_ids  # noqa: E402

SIZE = (6, 9)


def one_by_one_network(classes: int, seed: int) -> tuple[object, np.ndarray]:
    """An IR network that maps float NCHW pixels to ``classes`` logits by a 1x1 convolution; and its weights."""
    from openvino import opset13 as ops

    weights = np.random.default_rng(seed).standard_normal((classes, 3, 1, 1)).astype(np.float32)
    pixels = ops.parameter([1, 3, *SIZE], ov.Type.f32)
    logits = ops.convolution(pixels, ops.constant(weights), [1, 1], [0, 0], [0, 0], [1, 1])
    return ov.Model([logits.output(0)], [pixels], "logits"), weights


@pytest.mark.parametrize(("classes", "dtype"), [(11, np.uint8), (255, np.uint8), (300, np.uint16)])
def test_the_fused_class_ids_match_the_argmax_in_the_label_set_s_type(classes: int, dtype: type) -> None:
    network, weights = one_by_one_network(classes, seed=classes)
    frames = np.random.default_rng(1).integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)

    compiled = ov.Core().compile_model(uint8_to_class_ids(network), "CPU")
    labels = compiled(frames)[0]

    logits = np.einsum("chw,kc->khw", frames[0].transpose(2, 0, 1).astype(np.float32) / 255.0, weights[:, :, 0, 0])
    assert labels.dtype == dtype and labels.shape == (1, *SIZE)
    np.testing.assert_array_equal(labels[0], logits.argmax(axis=0))


@pytest.mark.parametrize("curved", [False, True])
def test_the_fused_confidence_is_the_host_s_under_the_calibration(curved: bool) -> None:
    from streamseg.image.confidence import Calibration, confidence_map, top_two

    network, weights = one_by_one_network(11, seed=3)
    frames = np.random.default_rng(2).integers(0, 256, (1, *SIZE, 3), dtype=np.uint8)
    curve = tuple(max(0, 2 * level - 255) for level in range(256)) if curved else None  # under 0.5 near a tie
    calibration = Calibration(0.3, curve=curve)

    labels, confidence = ov.Core().compile_model(uint8_to_class_ids(network, calibration), "CPU")(frames).values()

    logits = np.einsum("chw,kc->khw", frames[0].transpose(2, 0, 1).astype(np.float32) / 255.0, weights[:, :, 0, 0])
    host_labels, margin = top_two(logits)
    assert confidence.dtype == np.uint8 and confidence.shape == (1, *SIZE)
    np.testing.assert_array_equal(labels[0], host_labels)
    # The same figure up to float rounding in the engine: a level apart at most (two with the curve's slope of 2).
    assert np.abs(confidence[0].astype(int) - confidence_map(margin, calibration)).max() <= (2 if curved else 1)
    if curved:
        assert confidence.min() < 128  # the curve's values, not the two-way levels
