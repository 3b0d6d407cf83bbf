"""The calibration figures on margins whose answer is known by construction (known_margins: T = 2 is the truth)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from known_margins import (
    FRAMES,
    PIXELS_PER_LEVEL,
    TRUE_T,
    expected_auroc,
    expected_ece,
    frame_layout,
    frame_levels,
    sigmoid,
    true_accuracies,
)
from streamseg.eval.calibration import (
    FrameMargins,
    alert_level,
    auroc,
    average_ranks,
    calibrate,
    expected_calibration_error,
    fit_curve,
    fit_temperature,
    measure,
    negative_log_likelihood,
    pooled,
    spearman,
)
from streamseg.image.confidence import CONFIDENCE_SCALE, UNCALIBRATED, Calibration, confidence_map, in_local_context, table_levels


def calibrated_frames(unlabelled_rows: int = 0) -> list[FrameMargins]:
    """known_margins' frames; ``unlabelled_rows`` more rows of sure pixels, all wrong, whose truth does not count."""
    frames = []
    for k in range(FRAMES):
        margin, correct = frame_layout(k)
        labelled = np.ones_like(correct)
        if unlabelled_rows:
            margin = np.vstack([margin, np.full((unlabelled_rows, margin.shape[1]), 9.0, np.float32)])
            labelled = np.vstack([labelled, np.zeros((unlabelled_rows, margin.shape[1]), bool)])
            correct = np.vstack([correct, np.zeros((unlabelled_rows, margin.shape[1]), bool)])
        frames.append(FrameMargins(margin, labelled, correct))
    return frames


def test_the_fit_finds_the_temperature_the_truth_was_drawn_with() -> None:
    margins, correct = pooled(calibrated_frames())
    temperature = fit_temperature(margins, correct)
    assert temperature == pytest.approx(TRUE_T, abs=0.02)
    # It is the NLL's minimum: a step either way costs more.
    best = negative_log_likelihood(margins, correct, temperature)
    assert best < negative_log_likelihood(margins, correct, temperature * 1.05)
    assert best < negative_log_likelihood(margins, correct, temperature / 1.05)


@pytest.mark.parametrize("true_t", [0.2, 0.7, 5.0])
def test_the_fit_finds_other_temperatures(true_t: float) -> None:
    margins = np.repeat(np.linspace(0.05, 3.0, 60) * true_t, 2000).astype(np.float32)
    right_share = 1.0 / (1.0 + np.exp(-margins / true_t))
    rank_in_level = np.tile(np.arange(2000), 60)
    correct = rank_in_level < np.round(2000 * right_share)
    assert fit_temperature(margins, correct) == pytest.approx(true_t, rel=0.02)


def test_the_fit_on_a_subsample_is_deterministic_and_close() -> None:
    margins, correct = pooled(calibrated_frames())
    first = fit_temperature(margins, correct, max_pixels=5000)
    assert first == fit_temperature(margins, correct, max_pixels=5000)
    assert first == pytest.approx(TRUE_T, rel=0.15)


def test_the_fit_stays_in_its_range_when_the_margins_say_nothing_or_everything() -> None:
    margins = np.linspace(0.1, 5, 1000).astype(np.float32)
    assert fit_temperature(margins, np.ones(1000, bool)) == pytest.approx(0.05, rel=1e-4)  # always right: as sure as allowed
    assert fit_temperature(margins, np.zeros(1000, bool)) == pytest.approx(20.0, rel=1e-4)  # always wrong: as unsure as allowed
    with pytest.raises(ValueError):
        fit_temperature(np.zeros(0, np.float32), np.zeros(0, bool))


def test_expected_calibration_error_by_hand() -> None:
    # Bins 8, 9 and 14 of 15: |1 - 0.55| / 4 + |0 - 0.65| / 4 + 2 / 4 * |0.5 - 0.95|
    p = np.array([0.55, 0.65, 0.95, 0.95])
    assert expected_calibration_error(p, np.array([True, False, True, False])) == pytest.approx(0.5)
    assert expected_calibration_error(np.array([1.0, 1.0]), np.array([True, True])) == pytest.approx(0.0)  # p = 1 in the last bin
    assert math.isnan(expected_calibration_error(np.zeros(0), np.zeros(0, bool)))


def test_average_ranks_share_ties() -> None:
    assert average_ranks(np.array([10, 20, 10, 30, 20, 20])).tolist() == [1.5, 4.0, 1.5, 6.0, 4.0, 4.0]


def test_auroc_equals_counting_every_pair() -> None:
    rng = np.random.default_rng(3)
    scores = rng.integers(0, 6, size=300).astype(np.float32)  # few values: many ties
    positive = rng.random(300) < 0.3 + 0.1 * scores
    pairs = [(a, b) for a in scores[positive] for b in scores[~positive]]
    by_pairs = sum(1.0 if a > b else 0.5 if a == b else 0.0 for a, b in pairs) / len(pairs)
    assert auroc(scores, positive) == pytest.approx(by_pairs, abs=1e-12)
    assert auroc(np.array([1.0, 2.0, 3.0]), np.array([False, True, True])) == 1.0
    assert auroc(np.array([5.0, 5.0]), np.array([False, True])) == 0.5
    assert math.isnan(auroc(np.array([1.0, 2.0]), np.array([True, True])))


def test_spearman() -> None:
    assert spearman([1, 2, 3, 4], [10, 30, 35, 90]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Ties: ranks (1.5, 1.5, 3, 4) against (1, 2, 3, 4), Pearson of those ranks.
    a, b = np.array([1.5, 1.5, 3, 4]) - 2.5, np.array([1.0, 2, 3, 4]) - 2.5
    assert spearman([7, 7, 8, 9], [1, 2, 3, 4]) == pytest.approx(float(a @ b / math.sqrt((a @ a) * (b @ b))))
    assert math.isnan(spearman([1], [2]))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_alert_level_is_the_low_percentile_of_the_frames() -> None:
    values = list(np.linspace(0.70, 0.99, 21))  # every 5 % of the way is a frame
    assert alert_level(values) == pytest.approx(values[1])
    assert alert_level([0.9]) == pytest.approx(0.9)


def test_calibration_of_the_constructed_frames() -> None:
    calibration = calibrate(calibrated_frames())
    assert calibration.temperature == pytest.approx(TRUE_T, abs=0.02)
    assert calibration.before.temperature == 1.0 and not calibration.before.curve
    assert calibration.scaled.temperature == calibration.temperature and not calibration.scaled.curve
    assert calibration.after.curve
    assert calibration.before.expected_calibration_error == pytest.approx(expected_ece(1.0), abs=1e-9)
    assert calibration.scaled.expected_calibration_error == pytest.approx(expected_ece(calibration.temperature), abs=1e-9)
    assert calibration.scaled.expected_calibration_error < 0.005
    assert calibration.before.expected_calibration_error > 0.05  # T = 1 is over-confident for margins drawn at T = 2
    # Drawn calibrated at T = 2, the frames leave the curve nothing to correct but the rounding to uint8.
    assert calibration.after.expected_calibration_error < 0.005
    assert calibration.scaled.auroc == calibration.before.auroc == pytest.approx(expected_auroc(), abs=1e-12)
    assert calibration.after.auroc == pytest.approx(expected_auroc(), abs=1e-12)  # four levels, four curve values
    # Later frames hold larger margins and more right pixels: the ranks agree exactly.
    assert calibration.after.spearman == pytest.approx(1.0)
    assert calibration.after.pixels == FRAMES * 4 * PIXELS_PER_LEVEL
    assert calibration.after.true_accuracies == pytest.approx(true_accuracies())
    assert calibration.after.mean_true_accuracy == pytest.approx(np.mean(true_accuracies()))
    # A frame's predicted accuracy is the mean of its uint8 map, as a run reports it (to 4 decimals): its margin
    # table's levels, each within one level of the sigmoid's.
    predicted = [
        np.mean(table_levels(np.asarray(frame_levels(k), np.float32), calibration.temperature)) / CONFIDENCE_SCALE
        for k in range(FRAMES)
    ]
    exact = [np.mean([sigmoid(m / calibration.temperature) for m in frame_levels(k)]) for k in range(FRAMES)]
    assert calibration.scaled.predicted_accuracies == pytest.approx(predicted, abs=6e-5)
    assert predicted == pytest.approx(exact, abs=1.5 / CONFIDENCE_SCALE)
    assert calibration.after.predicted_accuracies == pytest.approx(predicted, abs=0.005)
    assert calibration.after.mean_predicted_accuracy == pytest.approx(calibration.after.mean_true_accuracy, abs=0.005)
    assert calibration.alert_below == pytest.approx(float(np.percentile(calibration.after.predicted_accuracies, 5)))


def test_truth_that_does_not_count_changes_no_figure_but_the_frame_s_predicted_accuracy() -> None:
    plain, padded = calibrate(calibrated_frames()), calibrate(calibrated_frames(unlabelled_rows=10))
    assert padded.temperature == pytest.approx(plain.temperature, rel=1e-6)
    for name in ("expected_calibration_error", "auroc", "pixel_accuracy", "pixel_predicted_accuracy", "pixels"):
        assert getattr(padded.after, name) == pytest.approx(getattr(plain.after, name))
    assert padded.after.true_accuracies == pytest.approx(plain.after.true_accuracies)
    # A run's figure counts every pixel of the map, the unlabelled sure ones too.
    assert all(a > b for a, b in zip(padded.after.predicted_accuracies, plain.after.predicted_accuracies))


def test_frame_margins_from_scores_leave_out_the_ignore_id_and_ids_past_the_classes() -> None:
    scores = np.zeros((3, 2, 3), np.float32)
    scores[1] = 2.0  # class 1 everywhere, by 2 over the runner-up
    scores[2, 0, 0] = 1.5  # a closer runner-up at one pixel
    truth = np.array([[1, 0, 11], [1, 1, 255]], np.uint8)
    frame = FrameMargins.of(scores, truth, num_classes=3, ignore_index=0)
    assert frame.margin.tolist() == [[0.5, 2.0, 2.0], [2.0, 2.0, 2.0]]
    assert frame.labelled.tolist() == [[True, False, False], [True, True, False]]
    assert frame.correct.tolist() == [[True, False, False], [True, True, False]]
    assert frame.true_accuracy == 1.0
    figures = measure([frame], UNCALIBRATED)
    assert figures.pixels == 3


def test_fitting_on_some_frames_and_measuring_on_others() -> None:
    frames = calibrated_frames()
    calibration = calibrate(frames[:2], frames[2:])
    assert calibration.after.frames == 2
    assert calibration.after.pixels == 2 * 4 * PIXELS_PER_LEVEL
    assert calibration.temperature == pytest.approx(TRUE_T, abs=0.05)


def test_a_fit_at_a_context_share_is_a_fit_of_the_margins_in_their_local_context() -> None:
    frames, share = calibrated_frames(), 0.35
    fit = calibrate(frames, context_share=share)
    assert fit.calibration.context_share == share
    # The same as a fit of the margin alone on margins put in their local context by hand.
    by_hand = calibrate([FrameMargins(in_local_context(f.margin, share), f.labelled, f.correct) for f in frames])
    assert fit.temperature == by_hand.temperature and fit.calibration.curve == by_hand.calibration.curve
    assert fit.scaled == by_hand.scaled and fit.after == by_hand.after
    assert fit.before == calibrate(frames).before  # before: a run without a calibration, the margin alone at T = 1
    assert fit.as_dict()["context_share"] == share


def near_tie_frames() -> list[FrameMargins]:
    """A road the model has not seen: near-tied pixels right one time in three, surer ones as their two-way probability says.

    No temperature calibrates both: a two-way probability is never under 0.5.
    """
    margins, correct = [], []
    for margin, right_share in ((0.05, 1 / 3), (0.3, 1 / 3), (2.0, 0.88), (5.0, 0.99)):
        margins.append(np.full(3000, margin, np.float32))
        correct.append(np.arange(3000) < round(3000 * right_share))
    margin, right = np.concatenate(margins).reshape(60, 200), np.concatenate(correct).reshape(60, 200)
    return [FrameMargins(margin, np.ones_like(right), right)]


def test_the_curve_calibrates_what_no_temperature_can() -> None:
    fit = calibrate(near_tie_frames())
    assert fit.scaled.expected_calibration_error > 0.08
    assert fit.after.expected_calibration_error < 0.005
    assert fit.after.mean_predicted_accuracy == pytest.approx(fit.after.mean_true_accuracy, abs=0.003)
    curve = fit.calibration.curve
    levels = table_levels(np.array([0.05, 0.3, 2.0, 5.0], np.float32), fit.temperature)
    assert [curve[level] for level in levels] == pytest.approx([85, 85, 224, 252], abs=1)  # 255 x each level's right share


def test_the_curve_never_decreases_and_fills_levels_no_pixel_had() -> None:
    # Surer pixels that are right less often than the level under them are pooled with it.
    margins = np.array([0.0] * 100 + [1.0] * 100 + [2.0] * 100, np.float32)
    correct = np.array([True] * 60 + [False] * 40 + [True] * 40 + [False] * 60 + [True] * 90 + [False] * 10)
    curve = fit_curve(margins, correct, 1.0)
    assert all(b >= a for a, b in zip(curve, curve[1:]))
    low, middle, high = (int(level) for level in table_levels(np.array([0.0, 1.0, 2.0], np.float32), 1.0))
    assert curve[low] == curve[middle] == round(255 * 0.5)  # 60 % and 40 % right pool to 50 %
    assert curve[high] == round(255 * 0.9)
    assert curve[0] == curve[low] and curve[255] == curve[high]  # flat beyond the levels seen
    between = (middle + high) // 2  # no pixel had it: on the line between its neighbours
    assert curve[between] == pytest.approx(curve[middle] + (curve[high] - curve[middle]) * (between - middle) / (high - middle), abs=1)


def test_a_calibration_with_a_curve_looks_the_levels_up() -> None:
    curve = tuple(max(0, 2 * level - 255) for level in range(256))  # 0 at a tie, 255 when sure
    calibration = Calibration(1.0, curve=curve)
    margins = np.array([[0.0, 1.3], [9.0, 3.5]], np.float32)
    levels = table_levels(margins, 1.0)
    assert levels.tolist() == [[128, 200], [255, 248]]
    assert confidence_map(margins, calibration).tolist() == [[1, 145], [255, 241]]
    assert np.array_equal(confidence_map(margins, Calibration(1.0)), levels)
    for bad, why in (((1, 2), "256 values"), (tuple(range(255)) + (300,), "from 0 to 255"), (tuple(range(255, -1, -1)), "never decrease")):
        with pytest.raises(ValueError, match=why):
            Calibration(1.0, curve=bad)
