"""The OpenVINO graph's fused argmax gives class ids in the label set's type: uint8 up to 255 classes, uint16 beyond."""

from __future__ import annotations

import numpy as np
import pytest

ov = pytest.importorskip("openvino", reason="openvino is not installed (pip install 'streamseg[openvino]')")

from streamseg.backends.openvino_backend import uint8_to_class_ids  # noqa: E402

SIZE = (6, 9)


def one_by_one_network(classes: int, seed: int, size: tuple[int, int] = SIZE) -> tuple[object, np.ndarray]:
    """An IR network that maps float NCHW pixels to ``classes`` logits by a 1x1 convolution; and its weights."""
    from openvino import opset13 as ops

    weights = np.random.default_rng(seed).standard_normal((classes, 3, 1, 1)).astype(np.float32)
    pixels = ops.parameter([1, 3, *size], ov.Type.f32)
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


@pytest.mark.parametrize(("context_share", "size"), [(0.0, SIZE), (0.5, SIZE), (0.5, (40, 56)), (0.3, (45, 50))])
@pytest.mark.parametrize("curved", [False, True])
def test_the_fused_confidence_is_the_host_s_under_the_calibration(curved: bool, context_share: float, size: tuple) -> None:
    from streamseg.image.confidence import Calibration, confidence_map, top_two

    network, weights = one_by_one_network(11, seed=3, size=size)
    # Two frames of a batch, the second darker, each with its own context; sizes smaller than a block, whole blocks
    # (40x56 at 8 a side) and neither (the host and the graph pad the same way).
    frames = np.random.default_rng(2).integers(0, 256, (2, *size, 3), dtype=np.uint8)
    frames[1] //= 4
    curve = tuple(max(0, 2 * level - 255) for level in range(256)) if curved else None  # under 0.5 near a tie
    calibration = Calibration(0.3, curve=curve, context_share=context_share)

    network.reshape([2, 3, *size])
    # f32: on a CPU with bf16 the plugin would run the convolution in bf16, and its logits' rounding is not under test.
    compiled = ov.Core().compile_model(uint8_to_class_ids(network, calibration), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    labels, confidence = compiled(frames).values()

    assert confidence.dtype == np.uint8 and confidence.shape == (2, *size)
    for index, frame in enumerate(frames):
        logits = np.einsum("chw,kc->khw", frame.transpose(2, 0, 1).astype(np.float32) / 255.0, weights[:, :, 0, 0])
        host_labels, margin = top_two(logits)
        clear = margin > 1e-5  # a near tie may go either way in the engine's float order
        assert clear.mean() > 0.99
        np.testing.assert_array_equal(labels[index][clear], host_labels[clear])
        # The same figure up to float rounding in the engine: a level apart at most (two with the curve's slope of 2).
        assert np.abs(confidence[index].astype(int) - confidence_map(margin, calibration)).max() <= (2 if curved else 1)
    if curved:
        assert confidence.min() < 128  # the curve's values, not the two-way levels
