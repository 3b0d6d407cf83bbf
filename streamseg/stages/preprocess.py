"""Resizes the decoded frame to the model's input and lays it out as a float batch of one."""

from __future__ import annotations

import numpy as np

from streamseg.frame import Frame
from streamseg.pipeline.stage import Stage
from streamseg.resize import resize_rgb


def batch_of_one(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (h, w, 3) -> float32 (1, 3, h, w) in [0, 1]."""
    batch = np.empty((1, 3, *image.shape[:2]), dtype=np.float32)
    np.multiply(image.transpose(2, 0, 1), np.float32(1.0 / 255.0), out=batch[0])
    return batch


def to_model_input(image: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (1, 3, h, w) in [0, 1] at ``input_size`` (h, w)."""
    return batch_of_one(resize_rgb(image, input_size))


class PreprocessStage(Stage):
    name = "preprocess"
    takes = frozenset({"image"})
    gives = frozenset({"model_input", "model_image"})

    def __init__(self, input_size: tuple[int, int]) -> None:
        self.input_size = input_size

    def process(self, frame: Frame) -> None:
        # The resized RGB stays on the frame: flow stages estimate motion on it.
        frame.model_image = resize_rgb(frame.image, self.input_size)
        frame.model_input = batch_of_one(frame.model_image)
