"""The confusion-matrix arithmetic on cases small enough to compute by hand."""

from pathlib import Path

import numpy as np
import pytest

from streamseg.classes import IGNORE_INDEX
from streamseg.data.camvid import check_labels
from streamseg.errors import InputError
from streamseg.eval.confusion import ConfusionMatrix, EvaluationResult
from streamseg.label_sets import CITYSCAPES


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


def test_a_label_sets_ignore_id_inside_the_class_range_counts_nowhere():
    confusion = ConfusionMatrix(num_classes=3, ignore_index=1)
    confusion.update(np.array([0, 1, 2, 7]), np.array([0, 0, 2, 2]))
    assert confusion.counts.sum() == 2 and confusion.ignored == 2
    assert confusion.mean_iou() == 1.0


def test_the_matrix_of_a_label_set_takes_its_class_count_and_ignore_id():
    cityscapes = ConfusionMatrix.for_label_set(CITYSCAPES)
    assert (cityscapes.num_classes, cityscapes.ignore_index) == (19, 255)
    cityscapes.update(np.array([18, 255], np.uint8), np.array([18, 0], np.uint8))
    assert cityscapes.counts[18, 18] == 1 and cityscapes.counts.sum() == 1


def test_a_prediction_outside_the_classes_is_an_error_not_a_wrong_cell():
    with pytest.raises(ValueError, match="class id 3 of 3 classes"):
        ConfusionMatrix(3).update(np.array([0, 1]), np.array([0, 3]))


def test_wide_label_sets_are_scored_in_uint16():
    confusion = ConfusionMatrix(num_classes=300)
    ids = np.array([0, 299, 256, 65535], np.uint16)  # 65535: no class, not scored
    confusion.update(ids, np.array([0, 299, 255, 0], np.uint16))
    assert confusion.counts[299, 299] == 1 and confusion.counts[256, 255] == 1 and confusion.ignored == 1


def test_results_carry_the_label_sets_names():
    confusion = ConfusionMatrix.for_label_set(CITYSCAPES)
    confusion.update(np.array([0, 13]), np.array([0, 13]))
    result = EvaluationResult.from_confusion(confusion, 1, CITYSCAPES.names)
    assert list(result.class_iou)[:3] == ["road", "sidewalk", "building"] and result.class_iou["car"] == 1.0
    lines = result.table().splitlines()
    assert lines[0] == "road           100.0" and lines[6] == "traffic light    nan"  # room for the longest name
    assert lines[-1].startswith("mIoU           100.0")
    with pytest.raises(ValueError, match="3 class names for a confusion matrix of 19 classes"):
        EvaluationResult.from_confusion(confusion, 1, ["a", "b", "c"])


def test_camvid_results_print_as_they_always_have():
    confusion = ConfusionMatrix()
    confusion.update(np.array([0, 3, 3, 8]), np.array([0, 3, 8, 8]))
    lines = EvaluationResult.from_confusion(confusion, 2).table().splitlines()
    assert lines[0] == "Sky         100.0" and lines[3] == "Road         50.0" and lines[8] == "Car          50.0"
    assert lines[-1] == "mIoU         66.7   pixel accuracy 75.0  (2 frames)"


def test_repeated_names_keep_one_iou_each():
    confusion = ConfusionMatrix(3)
    confusion.update(np.array([0, 1, 2]), np.array([0, 1, 1]))
    result = EvaluationResult.from_confusion(confusion, 1, ["car", "car", "road"])
    assert list(result.class_iou) == ["car (0)", "car (1)", "road"]


def test_more_than_32_classes_print_in_columns_of_the_classes_seen():
    names = [f"class number {i}" for i in range(97)] + ["a name far longer than any column has room for"] + ["x", "y"]
    confusion = ConfusionMatrix(len(names))
    seen = np.arange(0, 100, 2)  # 50 classes in truth and prediction, the other 50 in neither
    confusion.update(seen, seen)
    confusion.update(np.array([97]), np.array([97]))
    table = EvaluationResult.from_confusion(confusion, 3, names).table()
    lines = table.splitlines()
    assert len(lines) == 17 + 2  # 51 classes in 3 columns, the unseen count, the summary
    assert max(len(line) for line in lines) <= 100
    assert lines[0].startswith("class number 0         100.0   class number 34") and "class number 1 " not in table
    assert "a name far longer t... 100.0" in table
    assert lines[-2] == "(49 of the 100 classes are in neither the truth nor the predictions: not scored)"
    assert lines[-1].startswith("mIoU        100.0")
