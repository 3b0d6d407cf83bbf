"""Resizes the decoded frame to the model's input and lays it out as a float batch of one."""

from __future__ import annotations

import cv2
import numpy as np

from streamseg.frame import Frame
from streamseg.pipeline.stage import Stage


def to_model_input(image: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (1, 3, h, w) in [0, 1] at ``input_size`` (h, w)."""
    height, width = input_size
    if image.shape[:2] != (height, width):
        # INTER_AREA averages when shrinking, which keeps thin structures (poles, lane marks) visible.
        image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
    batch = np.empty((1, 3, height, width), dtype=np.float32)
    np.multiply(image.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=batch[0])
    return batch


class PreprocessStage(Stage):
    name = "preprocess"
    takes = frozenset({"image"})
    gives = frozenset({"model_input"})

    def __init__(self, input_size: tuple[int, int]) -> None:
        self.input_size = input_size

    def process(self, frame: Frame) -> None:
        frame.model_input = to_model_input(frame.image, self.input_size)
