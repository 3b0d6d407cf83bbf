"""Turns logits into a class-id map at the frame's own resolution, keeping the network's own for the overlay."""

from __future__ import annotations

import numpy as np

from streamseg.frame import Frame
from streamseg.pipeline.stage import Stage
from streamseg.image.resize import resize_labels
from streamseg.image.scores import class_labels


def logits_to_labels(logits: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """argmax over classes of (C, h, w) logits, resized with nearest neighbour to ``size`` (H, W)."""
    return resize_labels(class_labels(logits), size)


class LabelStage(Stage):
    name = "labels"
    takes = frozenset({"logits"})
    gives = frozenset({"labels"})

    def process(self, frame: Frame) -> None:
        model_labels = class_labels(frame.logits)
        frame.set_labels(resize_labels(model_labels, (frame.height, frame.width)), model_labels)
