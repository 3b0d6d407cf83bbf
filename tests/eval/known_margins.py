"""Margins whose calibration is known by construction, and the figures they imply, worked out here.

No random numbers: at each margin level m, a share sigmoid(m / 2) of the level's pixels (rounded to
whole pixels) is labelled right, so T = 2 is the truth. Frame k holds four levels, 4k .. 4k + 3, of
a thousand pixels each: later frames are surer, and righter.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

TRUE_T = 2.0
LEVELS = 0.25 * np.arange(1, 17)  # margins 0.25 .. 4
PIXELS_PER_LEVEL = 1000
FRAMES = 4
LEVELS_PER_FRAME = len(LEVELS) // FRAMES
FRAME_SHAPE = (40, 100)  # a frame's labelled pixels: its four levels, a level to 10 rows


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def right_at(level: float) -> int:
    return round(PIXELS_PER_LEVEL * sigmoid(level / TRUE_T))


def frame_levels(k: int) -> np.ndarray:
    return LEVELS[LEVELS_PER_FRAME * k : LEVELS_PER_FRAME * (k + 1)]


def frame_layout(k: int) -> tuple[np.ndarray, np.ndarray]:
    """Frame k's margins (float32) and whether each pixel is labelled right (bool), shaped FRAME_SHAPE."""
    margin, right = [], []
    for level in frame_levels(k):
        margin.append(np.full(PIXELS_PER_LEVEL, level, np.float32))
        right.append(np.arange(PIXELS_PER_LEVEL) < right_at(level))
    return np.concatenate(margin).reshape(FRAME_SHAPE), np.concatenate(right).reshape(FRAME_SHAPE)


def true_accuracies() -> list[float]:
    return [sum(right_at(level) for level in frame_levels(k)) / (LEVELS_PER_FRAME * PIXELS_PER_LEVEL) for k in range(FRAMES)]


def expected_ece(temperature: float) -> float:
    """ECE at ``temperature``: every level sits wholly in one of the 15 bins."""
    bins: dict[int, list[tuple[float, float]]] = {}
    for level in LEVELS:
        p = sigmoid(level / temperature)
        bins.setdefault(min(int(p * 15), 14), []).append((p, right_at(level) / PIXELS_PER_LEVEL))
    return sum(
        len(members) / len(LEVELS) * abs(np.mean([a for _, a in members]) - np.mean([p for p, _ in members]))
        for members in bins.values()
    )


def expected_auroc() -> float:
    """Over every (right, wrong) pair of pixels: the right one's margin higher counts 1, equal 1/2."""
    wins = 0.0
    for right_level, wrong_level in itertools.product(LEVELS, LEVELS):
        pairs = right_at(right_level) * (PIXELS_PER_LEVEL - right_at(wrong_level))
        wins += pairs * (1.0 if right_level > wrong_level else 0.5 if right_level == wrong_level else 0.0)
    right = sum(right_at(level) for level in LEVELS)
    wrong = len(LEVELS) * PIXELS_PER_LEVEL - right
    return wins / (right * wrong)
