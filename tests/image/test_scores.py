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


@pytest.mark.parametrize(
    ("classes", "dtype"), [(2, np.uint8), (255, np.uint8), (256, np.uint16), (300, np.uint16)]
)
def test_class_labels_are_uint8_up_to_255_classes_and_uint16_beyond(classes, dtype):
    scores = np.random.default_rng(3).standard_normal((classes, 17, 23)).astype(np.float32)
    scores[classes - 1, 0, 0] = 100.0  # the last id appears, so an id that overflowed its type would show
    labels = class_labels(scores)
    assert labels.dtype == dtype
    np.testing.assert_array_equal(labels, scores.argmax(axis=0))
    assert labels[0, 0] == classes - 1


def test_class_labels_of_300_classes_keep_ties_with_the_first_class():
    scores = np.zeros((300, 2, 2), dtype=np.float32)
    scores[[256, 299], 0, 0] = 1.0  # a tie between 256 and 299
    scores[280, 1, 1] = 2.0
    labels = class_labels(scores)
    assert labels.dtype == np.uint16
    assert labels.tolist() == [[256, 0], [0, 280]]


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
