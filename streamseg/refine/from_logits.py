"""A refiner that takes logits, so the softmax runs in the CRF worker instead of on the stream's hot path."""

from __future__ import annotations

import numpy as np

from streamseg.image.scores import softmax
from streamseg.refine.marginal_confidence import refine_with_confidence


class FromLogits:
    """Wraps a refiner: ``refine(image, logits)`` is ``refiner.refine(image, softmax(logits))``.

    Picklable and free of torch, like the refiners it wraps, so it can travel to worker processes.
    """

    def __init__(self, refiner) -> None:
        self.refiner = refiner

    def refine(self, image: np.ndarray, logits: np.ndarray) -> np.ndarray:
        return self.refiner.refine(image, softmax(logits))

    def refine_with_confidence(self, image: np.ndarray, logits: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """Like ``refine``, and the wrapped refiner's confidence, or None when it gives none."""
        return refine_with_confidence(self.refiner, image, softmax(logits))
