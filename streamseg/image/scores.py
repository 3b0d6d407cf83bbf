"""Class scores: the one softmax every stage and tool uses."""

from __future__ import annotations

import numpy as np

from streamseg.label_sets import label_dtype


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (C, h, w) float32 from logits (C, h, w), over axis 0."""
    probabilities = logits.astype(np.float32, copy=True)
    probabilities -= probabilities.max(axis=0, keepdims=True)  # exp of large logits would overflow
    np.exp(probabilities, out=probabilities)
    probabilities /= probabilities.sum(axis=0, keepdims=True)
    return probabilities


def class_labels(scores: np.ndarray) -> np.ndarray:
    """argmax over axis 0 of (C, h, w) scores, as class ids (the first class wins a tie): uint8 for up
    to 255 classes, uint16 beyond (``label_sets.label_dtype``).

    ``scores.argmax(axis=0)`` is slow because numpy walks the class axis with a stride; a
    running maximum over the C contiguous planes reads memory in order (benchmarks/history/BENCHMARKS-log.md, Micro-measurements).
    Class ids only grow in the loop, so "take c where this plane beats the best" is a maximum of id planes.
    """
    dtype = label_dtype(scores.shape[0])
    best = scores[0].copy()
    labels = np.zeros(best.shape, dtype=dtype)
    beats = np.empty(best.shape, dtype=bool)
    candidate = np.empty(best.shape, dtype=dtype)
    for class_id in range(1, scores.shape[0]):
        np.greater(scores[class_id], best, out=beats)
        np.multiply(beats.view(np.uint8), dtype.type(class_id), out=candidate)
        np.maximum(labels, candidate, out=labels)
        np.maximum(best, scores[class_id], out=best)
    return labels
