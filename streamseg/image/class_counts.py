"""How many pixels of a label map each class has: the one count the stats file and the metrics share."""

from __future__ import annotations

import cv2
import numpy as np


def class_pixel_counts(labels: np.ndarray, classes: int) -> np.ndarray:
    """Pixels of each id 0 .. ``classes`` - 1 in ``labels`` (uint8 or uint16 ids), as int64; other ids are in no count.

    A histogram by OpenCV: np.bincount first widens every pixel to int64, a copy four to eight
    times the label map's size for every frame of every stream. Its float32 bins count exactly
    up to 2**24 pixels of one class, more than a 4K frame has.
    """
    bins = max(1, classes)
    counts = cv2.calcHist([labels], [0], None, [bins], [0, bins]).ravel()
    return counts[:classes].astype(np.int64)
