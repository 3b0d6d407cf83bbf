"""The one way frames are shrunk for a network, a flow estimator or the CRF, and class ids scaled back to the frame."""

from __future__ import annotations

import cv2
import numpy as np


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 (H, W, 3) at ``size`` (h, w); ``image`` itself when it already has that size."""
    height, width = size
    if image.shape[:2] == (height, width):
        return image
    # INTER_AREA averages when shrinking, which keeps thin structures (poles, lane marks) visible.
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


def resize_labels(labels: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Class ids (h, w) uint8 at ``size`` (H, W), by nearest neighbour so ids are never mixed; ``labels`` itself when already that size."""
    height, width = size
    if labels.shape == (height, width):
        return labels
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)
