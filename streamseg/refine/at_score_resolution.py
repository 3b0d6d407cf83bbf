"""A refiner that runs at the network's output resolution, not the video's.

A 960x540 video segmented at 480x360 gives scores with 2.25x fewer pixels than the frame.
Refining on the frame's grid costs the CRF as much more and adds no information the scores
lack; the tuned CRF settings (tools/tune_crf.py) were also found on that grid, since CamVid
frames are the network's input size. So the worker shrinks the image to the scores, refines
there and scales the labels back up, all off the stream's hot path.
"""

from __future__ import annotations

import numpy as np

from streamseg.refine.dense_crf import labels_to_image_size, resize_image
from streamseg.refine.marginal_confidence import refine_with_confidence


class AtScoreResolution:
    """Wraps a refiner: ``refine(image, scores)`` refines at ``scores``' (h, w) and returns (H, W) labels,
    uint8 up to 255 classes and uint16 beyond.

    Picklable and free of torch, like the refiners it wraps, so it can travel to worker processes.
    """

    def __init__(self, refiner) -> None:
        self.refiner = refiner

    def refine(self, image: np.ndarray, scores: np.ndarray) -> np.ndarray:
        small = resize_image(image, scores.shape[1:])
        return labels_to_image_size(self.refiner.refine(small, scores), image.shape, scores.shape[0])

    def refine_with_confidence(self, image: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Like ``refine``, and the wrapped refiner's confidence at the grid it refined on (the scores' grid times its
        scale), or None when it gives none."""
        small = resize_image(image, scores.shape[1:])
        labels, confidence = refine_with_confidence(self.refiner, small, scores)
        return labels_to_image_size(labels, image.shape, scores.shape[0]), confidence
