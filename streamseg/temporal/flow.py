"""What a flow estimator is, and the two classical ones OpenCV offers: DIS and Farnebäck.

Every estimator follows the package's convention (see :mod:`streamseg.temporal`):
``estimate(previous, current)`` returns the backward flow of the current frame.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import cv2
import numpy as np

from streamseg.errors import ConfigError

DIS_PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


class FlowEstimator(ABC):
    """Estimates dense optical flow between two frames of the same size.

    An estimator may keep state between calls (buffers, a network), so one instance
    belongs to one thread.
    """

    name: str

    @abstractmethod
    def estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        """Backward flow (H, W, 2) float32 of ``current``: ``current[y, x]`` shows what ``previous`` had at
        ``(x + u, y + v)``. Both frames are RGB uint8 (H, W, 3)."""

    def close(self) -> None:
        """Releases what the estimator holds."""


def check_pair(previous: np.ndarray, current: np.ndarray) -> None:
    """Refuses frames that no estimator can compare, with a message naming the problem."""
    if previous.shape != current.shape:
        raise ValueError(f"frames of different sizes {previous.shape} and {current.shape} cannot be compared")
    if previous.ndim != 3 or previous.shape[2] != 3 or previous.dtype != np.uint8:
        raise ValueError(f"flow estimators take RGB uint8 (H, W, 3) frames, not {previous.dtype} {previous.shape}")


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)


class DISFlowEstimator(FlowEstimator):
    """Dense Inverse Search (Kroeger et al., 2016) on grayscale: a few milliseconds per VGA pair on one core.

    ``preset`` trades speed for accuracy: "ultrafast", "fast" or "medium".
    """

    name = "dis"

    def __init__(self, preset: str = "fast") -> None:
        if preset not in DIS_PRESETS:
            raise ConfigError(f"unknown DIS preset {preset!r}; expected one of {', '.join(DIS_PRESETS)}")
        self.preset = preset
        self._dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])

    def estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        check_pair(previous, current)
        # OpenCV's flow from I0 to I1 satisfies I0(p) ~ I1(p + flow): with I0 = current it is our backward flow.
        return self._dis.calc(to_gray(current), to_gray(previous), None)


class FarnebackFlowEstimator(FlowEstimator):
    """Farnebäck's polynomial-expansion flow (2003) on grayscale: slower than DIS, smoother, and independent of it.

    Its errors are unlike DIS's, which makes it the estimator for *measuring* temporal
    consistency of results smoothed with DIS.
    """

    name = "farneback"

    def __init__(self, levels: int = 5, window: int = 31, iterations: int = 3) -> None:
        # A deep pyramid and a wide window follow motions of tens of pixels between frames, which
        # OpenCV's example settings (4 levels, window 15) lose (benchmarks/history/BENCHMARKS-log.md, Micro-measurements).
        self.levels = levels
        self.window = window
        self.iterations = iterations

    def estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        check_pair(previous, current)
        # poly_n 5 with poly_sigma 1.1 is OpenCV's recommended pairing.
        return cv2.calcOpticalFlowFarneback(
            to_gray(current), to_gray(previous), None, 0.5, self.levels, self.window, self.iterations, 5, 1.1, 0
        )


class ZeroFlowEstimator(FlowEstimator):
    """Says nothing moved: the baseline every estimator must beat, and a cheap stand-in for tests of plumbing."""

    name = "zero"

    def estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        check_pair(previous, current)
        return np.zeros((*current.shape[:2], 2), dtype=np.float32)
