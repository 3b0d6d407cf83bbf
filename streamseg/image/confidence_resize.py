"""A confidence map at a frame's size, for the outputs that show it there (the overlay, the masks' PNG, the API).

``frame.confidence`` is at the network's grid, as ``frame.model_labels`` is. Confidence varies
smoothly where the labels change (it is lowest on the boundaries between classes), so it is
scaled like the overlay's colours: bilinearly, which draws no steps of the grid, and by area
averaging when the frame is smaller than the grid on both sides.
"""

from __future__ import annotations

import cv2
import numpy as np


def confidence_at_size(confidence: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``confidence`` ((h, w) uint8) at ``size`` (height, width): the array itself when it is that size already."""
    if confidence.ndim != 2 or confidence.dtype != np.uint8:
        raise ValueError(f"a confidence map is a (H, W) uint8 array, got {confidence.dtype} {confidence.shape}")
    height, width = size
    if confidence.shape == (height, width):
        return confidence
    shrinking = height < confidence.shape[0] and width < confidence.shape[1]
    return cv2.resize(confidence, (width, height), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
