"""A frame whose scores are known gives the expected confidence map and figures."""

from __future__ import annotations

import numpy as np
import pytest

from streamseg.image.confidence import Calibration, ConfidenceSettings, Reliability, confidence_map, in_local_context, top_two
from streamseg.image.scores import class_labels
from streamseg.frame import Frame


def known_scores() -> np.ndarray:
    """Three classes over a 2x4 frame; the margins of the top class over the runner-up are 0, 1, 2, 4 by column."""
    scores = np.zeros((3, 2, 4), dtype=np.float32)
    scores[1, :, :] = [[0, 1, 2, 4], [0, 1, 2, 4]]  # class 1 leads by its margin over classes 0 and 2 (at 0)
    scores[2, 1, :] = [-5, -5, -5, -5]
    return scores


def test_top_two_gives_the_argmax_and_the_margin_over_the_runner_up():
    labels, margin = top_two(known_scores())
    # A tie (margin 0) goes to the first class, as class_labels does.
    assert labels.tolist() == [[0, 1, 1, 1], [0, 1, 1, 1]]
    assert margin.tolist() == [[0, 1, 2, 4], [0, 1, 2, 4]]
    scores = np.random.default_rng(0).standard_normal((19, 30, 40)).astype(np.float32)
    labels, margin = top_two(scores)
    ranked = np.sort(scores, axis=0)
    assert np.array_equal(labels, class_labels(scores)) and np.allclose(margin, ranked[-1] - ranked[-2])


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_the_confidence_is_the_sigmoid_of_the_margin_over_the_temperature(temperature):
    _, margin = top_two(known_scores())
    confidence = confidence_map(margin, Calibration(temperature))
    expected = np.rint(255 / (1 + np.exp(-margin / temperature)))
    assert confidence.dtype == np.uint8 and np.array_equal(confidence, expected)


def blocks_of(values: list[float], rows: int = 1) -> np.ndarray:
    """A margin map of 8x8 blocks, each of one value: ``values`` along a row of blocks, ``rows`` such rows."""
    return np.kron(np.tile(np.asarray(values, np.float32), (rows, 1)), np.ones((8, 8), np.float32))


def test_in_its_local_context_a_share_of_each_margin_is_the_mean_margin_of_the_blocks_around_it():
    margin = blocks_of([0, 6, 0, 0, 0, 12])
    # Each block's context: the mean of the blocks at most two away, those inside the frame only.
    context = blocks_of([6 / 3, 6 / 4, 6 / 5, 18 / 5, 12 / 4, 12 / 3])
    assert np.allclose(in_local_context(margin, 0.5), 0.5 * margin + 0.5 * context)
    assert in_local_context(margin, 0.0) is margin  # no share, no pass over the frame
    confidence = confidence_map(margin, Calibration(1.0, context_share=0.5))
    expected = np.rint(255 / (1 + np.exp(-(0.5 * margin + 0.5 * context))))
    assert np.abs(confidence.astype(int) - expected).max() <= 1  # the margin table's step, as for the margin alone


def test_a_frame_not_made_of_whole_blocks_is_padded_with_its_edge_values():
    margin = np.zeros((5, 10), np.float32)
    margin[:, 9] = 8.0  # padded to 8x16: columns 10..15 repeat it, so 7 of the second block's 8 columns hold 8: its mean is 7
    assert np.allclose(in_local_context(margin, 0.5), 0.5 * margin + 0.5 * (0 + 7) / 2)


def test_a_near_tie_among_sure_pixels_is_surer_than_among_near_ties_and_only_nearby():
    calibration, alone = Calibration(1.0, context_share=0.5), Calibration(1.0)
    among_sure = blocks_of([4.0] * 5, rows=5)
    among_sure[20, 20] = 0.2
    among_ties = np.full((40, 40), 0.2, np.float32)
    assert confidence_map(among_sure, calibration)[20, 20] > confidence_map(among_ties, calibration)[20, 20]
    assert confidence_map(among_sure, alone)[20, 20] == confidence_map(among_ties, alone)[20, 20]
    # Sure blocks more than two blocks away change nothing: the context is local, not the frame's.
    half_sure = blocks_of([4.0] * 6 + [0.2] * 6)
    assert confidence_map(half_sure, calibration)[0, -1] == confidence_map(blocks_of([0.2] * 12), calibration)[0, -1]


@pytest.mark.parametrize("share", [-0.1, 1.0, 1.5, True, "0.3"])
def test_a_context_share_outside_0_to_1_is_refused(share):
    with pytest.raises(ValueError, match="context share"):
        Calibration(1.0, context_share=share)


def test_a_curve_maps_each_level_after_the_temperature():
    _, margin = top_two(known_scores())
    curve = tuple(max(0, 2 * level - 255) for level in range(256))  # 0 at a tie, 255 when sure
    confidence = confidence_map(margin, Calibration(1.0, curve=curve))
    levels = np.rint(255 / (1 + np.exp(-margin)))
    assert np.array_equal(confidence, np.maximum(0, 2 * levels - 255))
    assert confidence[0, 0] == 1  # a tie (level 128) is now nearly sure to be wrong: under 0.5, as no temperature gives


def test_a_frame_s_figures_are_the_mean_confidence_and_the_share_under_the_threshold():
    _, margin = top_two(known_scores())
    confidence = confidence_map(margin, Calibration(1.0))  # columns: 0.5, 0.731, 0.881, 0.982
    frame = Frame(index=0, timestamp=0.0, image=np.zeros((2, 4, 3), np.uint8))
    ConfidenceSettings(Calibration(1.0), threshold=0.7).set(frame, confidence)
    assert frame.reliability == Reliability(
        predicted_accuracy=round(float(np.mean(confidence)) / 255, 4), low_confidence_fraction=0.25,
    )
    assert frame.reliability.predicted_accuracy == pytest.approx((0.5 + 0.731 + 0.881 + 0.982) / 4, abs=0.003)
    assert Reliability.of(confidence, threshold=0.9).low_confidence_fraction == 0.75


@pytest.mark.parametrize("temperature", [0.3, 1.0, 2.5])
def test_the_margin_table_is_within_one_level_of_the_sigmoid_and_saturates(temperature):
    margins = np.concatenate([np.linspace(0, 8 * temperature, 20001), [1e6, np.inf]]).astype(np.float32)
    confidence = confidence_map(margins, Calibration(temperature)).astype(int)
    exact = np.rint(255 / (1 + np.exp(-margins.astype(np.float64) / temperature)))
    assert np.abs(confidence - exact).max() <= 1
    assert confidence[0] == 128 and confidence[-2:].tolist() == [255, 255]
    assert np.all(np.diff(confidence) >= 0)  # a wider margin is never less sure


def test_a_curve_s_table_is_the_curve_at_each_step_s_level():
    curve = tuple(max(0, 2 * level - 255) for level in range(256))
    margins = np.linspace(0, 10, 5001).astype(np.float32)
    plain = confidence_map(margins, Calibration(1.5)).astype(int)
    curved = confidence_map(margins, Calibration(1.5, curve=curve)).astype(int)
    assert np.array_equal(curved, np.maximum(0, 2 * plain - 255))
