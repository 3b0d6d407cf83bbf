"""Turns logits into a class-id map at the frame's own resolution, keeping the network's own for the overlay."""

from __future__ import annotations

import numpy as np

from streamseg.frame import Frame
from streamseg.pipeline.stage import Stage
from streamseg.image.resize import resize_labels
from streamseg.image.confidence import ConfidenceSettings, confidence_map, top_two
from streamseg.image.scores import class_labels


def logits_to_labels(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """argmax over classes of (C, h, w) logits, resized with nearest neighbour to ``size`` (H, W)."""
    return resize_labels(class_labels(logits), size)


class LabelStage(Stage):
    """The class ids of the scores (smoothed or propagated ones where a stage before made them so), and with a
    ``confidence`` calibration each pixel's confidence and the frame's reliability (``streamseg.image.confidence``)."""

    name = "labels"
    takes = frozenset({"logits"})

    def __init__(self, confidence: ConfidenceSettings | None = None) -> None:
        self.confidence = confidence
        self.gives = frozenset({"labels", "confidence", "reliability"} if confidence else {"labels"})

    def process(self, frame: Frame) -> None:
        if self.confidence is None:
            model_labels = class_labels(frame.logits)
        else:
            model_labels, margin = top_two(frame.logits)
            self.confidence.set(frame, confidence_map(margin, self.confidence.calibration))
        frame.set_labels(resize_labels(model_labels, (frame.height, frame.width)), model_labels)
