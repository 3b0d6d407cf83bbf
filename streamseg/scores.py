"""Class scores: the one softmax every stage and tool uses."""

from __future__ import annotations

import numpy as np


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities (C, h, w) float32 from logits (C, h, w), over axis 0."""
    probabilities = logits.astype(np.float32, copy=True)
    probabilities -= probabilities.max(axis=0, keepdims=True)  # exp of large logits would overflow
    np.exp(probabilities, out=probabilities)
    probabilities /= probabilities.sum(axis=0, keepdims=True)
    return probabilities
