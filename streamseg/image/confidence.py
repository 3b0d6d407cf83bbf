"""How sure the network is of each label: the calibrated probability of the top class, per pixel and per frame.

A pixel's confidence is ``sigmoid((s1 - s2) / T)``: s1 and s2 are its two highest class scores
(logits) and T the model's temperature. It is the probability of the top class against the
runner-up, which is what a top-2 in the engine gives (OpenVINO's fused graph takes a TopK of 2
where it took 1, for the same work), so both the host and the engine compute the same figure;
T is fitted so that it is calibrated (``streamseg calibrate-confidence``: on frames the model was
not trained on, among pixels of confidence p, a share p is labelled right).

Maps are uint8, ``round(255 * p)``: a quarter of a float map to carry, and finer than any
threshold needs. A frame's reliability is two figures of its map: the mean confidence (the
predicted share of correct pixels) and the share of pixels under the low-confidence threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamseg.label_sets import label_dtype

CONFIDENCE_SCALE = 255  # a confidence map's value for probability 1
# Below this a pixel is "low confidence". p is 0.5 at the least (the top class against the runner-up, tied),
# so 0.7 marks pixels the model itself would get wrong about one time in three or more.
DEFAULT_THRESHOLD = 0.7


def top_two(scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The class ids (argmax, first wins a tie) and the margin of the best score over the second, of (C, h, w) scores.

    One pass over the C planes in memory order, as ``class_labels`` does: a running best and second best.
    """
    classes = scores.shape[0]
    dtype = label_dtype(classes)
    best = scores[0].astype(np.float32, copy=True)
    second = np.full(best.shape, -np.inf, dtype=np.float32)
    labels = np.zeros(best.shape, dtype=dtype)
    beats = np.empty(best.shape, dtype=bool)
    candidate = np.empty(best.shape, dtype=dtype)
    loser = np.empty(best.shape, dtype=np.float32)
    for class_id in range(1, classes):
        plane = scores[class_id]
        np.greater(plane, best, out=beats)
        # Ids only grow in the loop, so "take c where this plane beats the best" is a maximum (see class_labels).
        np.multiply(beats, dtype.type(class_id), out=candidate)
        np.maximum(labels, candidate, out=labels)
        # The second best is the larger of the old second and whichever of (plane, old best) lost.
        np.minimum(plane, best, out=loser)
        np.maximum(second, loser, out=second)
        np.maximum(best, plane, out=best)
    if classes == 1:
        second[:] = best
    return labels, best - second


def confidence_map(margin: np.ndarray, temperature: float) -> np.ndarray:
    """uint8 confidence, ``round(255 * sigmoid(margin / T))``, of top-two margins."""
    probability = margin.astype(np.float32, copy=True)
    probability *= -1.0 / temperature
    np.exp(probability, out=probability)
    probability += 1.0
    np.divide(CONFIDENCE_SCALE, probability, out=probability)
    return np.rint(probability).astype(np.uint8)


@dataclass(frozen=True)
class Calibration:
    """A model's confidence settings: its temperature, the alert level, and where they came from."""

    temperature: float = 1.0
    alert_below: float | None = None  # a stream whose predicted accuracy falls below this is degraded; None: no alert
    source: str = "none: T = 1, uncalibrated (streamseg calibrate-confidence fits it)"


UNCALIBRATED = Calibration()


@dataclass(frozen=True)
class Reliability:
    """A frame's two figures: the predicted share of correct pixels, and the share under the threshold."""

    predicted_accuracy: float
    low_confidence_fraction: float

    @classmethod
    def of(cls, confidence: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> "Reliability":
        """The figures of a uint8 confidence map."""
        mean = float(np.mean(confidence, dtype=np.float64)) / CONFIDENCE_SCALE
        cut = int(np.ceil(threshold * CONFIDENCE_SCALE))  # a value under ``cut`` stands for a probability under the threshold
        low = float(np.count_nonzero(confidence < cut)) / confidence.size
        return cls(round(mean, 4), round(low, 4))

    def as_dict(self) -> dict[str, float]:
        return {"predicted_accuracy": self.predicted_accuracy, "low_confidence_fraction": self.low_confidence_fraction}


@dataclass(frozen=True)
class ConfidenceSettings:
    """What a stage that labels frames needs to give their confidence: the model's calibration and the threshold."""

    calibration: Calibration
    threshold: float = DEFAULT_THRESHOLD

    def set(self, frame, confidence: np.ndarray) -> None:
        """Puts ``confidence`` (uint8 at the network's grid) and its reliability on ``frame``."""
        frame.confidence = confidence
        frame.reliability = Reliability.of(confidence, self.threshold)
