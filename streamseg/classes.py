"""The CamVid label set (11 classes plus an ignored 'unlabelled' id) and its colours."""

from __future__ import annotations

import numpy as np

CLASS_NAMES: tuple[str, ...] = (
    "Sky", "Building", "Pole", "Road", "Pavement", "Tree",
    "SignSymbol", "Fence", "Car", "Pedestrian", "Bicyclist",
)
NUM_CLASSES = len(CLASS_NAMES)
IGNORE_INDEX = 11  # 'Unlabelled': excluded from the loss and from every metric

# RGB colours of the SegNet CamVid tutorial, row i for class i.
PALETTE = np.array(
    [
        (128, 128, 128), (128, 0, 0), (192, 192, 128), (128, 64, 128), (60, 40, 222), (128, 128, 0),
        (192, 128, 128), (64, 64, 128), (64, 0, 128), (64, 64, 0), (0, 128, 192),
    ],
    dtype=np.uint8,
)
