"""The shared scores helpers agree with numpy's definitions, ties and odd shapes included."""

import numpy as np
import pytest

from streamseg.image.scores import class_labels, softmax


@pytest.mark.parametrize("shape", [(11, 360, 480), (2, 1, 1), (12, 7, 13)])
def test_class_labels_equals_numpy_argmax(shape):
    scores = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    labels = class_labels(scores)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, scores.argmax(axis=0))


def test_class_labels_gives_a_tie_to_the_first_class_like_argmax():
    scores = np.zeros((4, 3, 3), dtype=np.float32)
    scores[2, 0, 0] = scores[3, 0, 0] = 1.0  # a tie between 2 and 3
    scores[1:, 1, 1] = 5.0  # a tie between 1, 2 and 3
    np.testing.assert_array_equal(class_labels(scores), scores.argmax(axis=0))
    assert class_labels(scores)[0, 0] == 2 and class_labels(scores)[1, 1] == 1


def test_class_labels_works_on_a_strided_view():
    scores = np.random.default_rng(1).standard_normal((5, 8, 10)).astype(np.float32)[:, ::2, 1::3]
    np.testing.assert_array_equal(class_labels(scores), scores.argmax(axis=0))


def test_softmax_sums_to_one_and_keeps_the_order():
    logits = np.random.default_rng(2).standard_normal((6, 4, 5)).astype(np.float32) * 50
    probabilities = softmax(logits)
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, rtol=1e-5)
    np.testing.assert_array_equal(class_labels(probabilities), class_labels(logits))
