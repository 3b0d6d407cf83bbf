"""Textured frames that move by known amounts, shared by the temporal tests (imported as a helper module)."""

import cv2
import numpy as np


def texture(height: int, width: int, seed: int = 0) -> np.ndarray:
    """Smooth random colour texture, RGB uint8: enough detail everywhere for flow to lock on."""
    rng = np.random.default_rng(seed)
    noise = cv2.GaussianBlur(rng.random((height, width, 3)).astype(np.float32), (0, 0), 2.0)
    noise = (noise - noise.mean()) / noise.std()
    return np.clip(128 + 50 * noise, 0, 255).astype(np.uint8)


def shifted(image: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``image`` moved right by ``dx`` and down by ``dy`` pixels (sub-pixel allowed)."""
    height, width = image.shape[:2]
    return cv2.warpAffine(image, np.float32([[1, 0, dx], [0, 1, dy]]), (width, height), borderMode=cv2.BORDER_REFLECT_101)
