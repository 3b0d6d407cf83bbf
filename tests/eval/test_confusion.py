"""The confusion-matrix arithmetic on cases small enough to compute by hand."""

from pathlib import Path

import numpy as np
import pytest

from streamseg.classes import IGNORE_INDEX
from streamseg.data.camvid import check_labels
from streamseg.errors import InputError
from streamseg.eval.confusion import ConfusionMatrix


def test_hand_computed_three_class_case():
    truth = np.array([[0, 0, 1], [1, 2, 2]])
    prediction = np.array([[0, 1, 1], [1, 2, 0]])
    confusion = ConfusionMatrix(num_classes=3)
    confusion.update(truth, prediction)
    # class 0: TP 1, FP 1 (a 2 called 0), FN 1 (a 0 called 1) -> 1/3
    # class 1: TP 2, FP 1, FN 0 -> 2/3;  class 2: TP 1, FP 0, FN 1 -> 1/2
    np.testing.assert_allclose(confusion.iou(), [1 / 3, 2 / 3, 1 / 2])
    assert confusion.mean_iou() == pytest.approx((1 / 3 + 2 / 3 + 1 / 2) / 3)
    assert confusion.pixel_accuracy() == pytest.approx(4 / 6)


def test_ignored_truth_pixels_count_nowhere():
    confusion = ConfusionMatrix(num_classes=2)
    confusion.update(np.array([0, 1, 11, 11]), np.array([0, 1, 0, 1]))
    assert confusion.counts.sum() == 2
    assert confusion.mean_iou() == 1.0


def test_a_class_absent_everywhere_is_left_out_of_the_mean():
    confusion = ConfusionMatrix(num_classes=3)
    confusion.update(np.array([0, 0, 1]), np.array([0, 0, 1]))
    iou = confusion.iou()
    assert np.isnan(iou[2]) and confusion.mean_iou() == 1.0


def test_accumulates_over_frames():
    confusion = ConfusionMatrix(num_classes=2)
    confusion.update(np.array([0, 0]), np.array([0, 1]))
    confusion.update(np.array([1, 1]), np.array([1, 1]))
    np.testing.assert_allclose(confusion.iou(), [1 / 2, 2 / 3])


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError):
        ConfusionMatrix(2).update(np.zeros((2, 2)), np.zeros((2, 3)))


def test_label_maps_must_fit_their_frame_and_hold_camvid_ids():
    labels = np.full((4, 6), IGNORE_INDEX, dtype=np.uint8)
    assert check_labels(labels, (4, 6, 3), Path("a.png")) is labels
    with pytest.raises(InputError, match=r"label map b\.png is 6x4 but its frame is 6x5"):
        check_labels(labels, (5, 6, 3), Path("b.png"))
    labels[0, :3] = (12, 42, 42)
    with pytest.raises(InputError, match=r"label map c\.png holds ids 12, 42 \(12% of its pixels\)"):
        check_labels(labels, (4, 6, 3), Path("c.png"))
