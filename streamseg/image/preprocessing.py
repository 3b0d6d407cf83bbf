"""The one way a frame becomes the network's input, shared by inference, int8 calibration and evaluation.

It lives below both the backends and the stages, so that neither imports the other, and int8
calibration sees exactly the tensors inference will: a calibration that preprocessed on its own
would match inference only by coincidence.
"""

from __future__ import annotations

import numpy as np

from streamseg.image.resize import resize_rgb


def images_to_batch(images: np.ndarray) -> np.ndarray:
    """RGB uint8 (N, h, w, 3) -> float32 (N, 3, h, w) in [0, 1]."""
    batch = np.empty((len(images), 3, *images.shape[1:3]), dtype=np.float32)
    np.multiply(images.transpose(0, 3, 1, 2), np.float32(1.0 / 255.0), out=batch)
    return batch


def batch_of_one(image: np.ndarray) -> np.ndarray:
    """RGB uint8 (h, w, 3) -> float32 (1, 3, h, w) in [0, 1]."""
    return images_to_batch(image[None])


def to_model_input(image: np.ndarray, input_size: tuple[int, int]) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> float32 (1, 3, h, w) in [0, 1] at ``input_size`` (h, w)."""
    return batch_of_one(resize_rgb(image, input_size))
