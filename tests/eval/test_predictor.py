"""Scores scaled back to the frame for any number of classes: OpenCV resizes at most 128 channels in one call."""

import cv2
import numpy as np
import pytest

from streamseg.eval.predictor import resize_scores


@pytest.mark.parametrize("classes", [1, 19, 128, 300])
def test_scores_of_any_class_count_are_resized_as_each_plane_alone(classes):
    scores = np.random.default_rng(classes).standard_normal((classes, 6, 8)).astype(np.float32)
    resized = resize_scores(scores, (12, 20))
    assert resized.shape == (classes, 12, 20)
    for plane in (0, classes // 2, classes - 1):
        np.testing.assert_allclose(resized[plane], cv2.resize(scores[plane], (20, 12), interpolation=cv2.INTER_LINEAR), atol=1e-6)
