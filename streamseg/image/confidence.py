"""How sure the network is of each label: the calibrated probability of the top class, per pixel and per frame.

A pixel's confidence is made in two steps from s1 and s2, its two highest class scores (logits):

1. temperature scaling: the two-way probability ``sigmoid((s1 - s2) / T)`` of the top class against
   the runner-up, T the model's temperature. It is what a top-2 in the engine gives (OpenVINO's
   fused graph takes a TopK of 2 where it took 1, for the same work), so the host and the engine
   compute the same figure, as uint8 ``round(255 p)``: its *level*.
2. the calibration curve: the share of pixels labelled right among pixels of each level, measured on
   frames the model was not trained on (made non-decreasing), as a 256-entry table of levels. A
   two-way probability never goes under 0.5, while on an unseen road near-tied pixels are wrong
   more often than not; no temperature fixes that, a table does. The lookup costs one uint8 read a pixel.

``streamseg calibrate-confidence`` fits both (among pixels of confidence p, a share p is then
labelled right). A model with neither runs at T = 1 with no curve: uncalibrated, and the run says so.

A run does both steps in one lookup by the margin (``MarginTable``): the margin, times a scale, picks one
of 1024 equal steps of ``margin / T``, and a table holds each step's calibrated confidence. That is one
multiply, one comparison and one uint8 read a pixel, on the host and in OpenVINO's graph alike, where
the sigmoid, scaling and rounding took a pass each. A step is under half a level wide, so the level
looked up is within one of ``round(255 sigmoid(margin / T))``.

Maps are uint8, ``round(255 * p)``: a quarter of a float map to carry, and finer than any
threshold needs. A frame's reliability is two figures of its map: the mean confidence (the
predicted share of correct pixels) and the share of pixels under the low-confidence threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from streamseg.label_sets import label_dtype

CONFIDENCE_SCALE = 255  # a confidence map's value for probability 1
LEVELS = CONFIDENCE_SCALE + 1  # the values of a uint8 map, and the entries of a calibration curve
# Below this a pixel is "low confidence": calibrated, a pixel the model gets wrong about one time in three or more.
DEFAULT_THRESHOLD = 0.7
MARGIN_STEPS = 1024  # the margin table's entries
# Past this margin / T every two-way level is 255 (255 sigmoid(6.232) = 254.5), so the table's last step holds them all.
SATURATION = 6.25


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


def two_way_levels(margin: np.ndarray, temperature: float) -> np.ndarray:
    """uint8 ``round(255 * sigmoid(margin / T))`` of top-two margins: step 1 of a pixel's confidence."""
    probability = margin.astype(np.float32, copy=True)
    probability *= -1.0 / temperature
    np.exp(probability, out=probability)
    probability += 1.0
    np.divide(CONFIDENCE_SCALE, probability, out=probability)
    return np.rint(probability).astype(np.uint8)


def table_levels(margin: np.ndarray, temperature: float) -> np.ndarray:
    """The two-way levels a run looks up for top-two margins at ``temperature`` (its margin table, no curve), each
    within one of ``two_way_levels``: a curve is fitted on these, so that a run reads it at the levels it was fitted on."""
    return _margin_table(temperature, None).confidence(margin)


def confidence_map(margin: np.ndarray, calibration: "Calibration") -> np.ndarray:
    """uint8 confidence of top-two margins under ``calibration``: both steps, by its margin table."""
    return calibration.margin_table.confidence(margin)


@dataclass(frozen=True, eq=False)
class MarginTable:
    """A calibration as a lookup by the margin: step ``min(floor(margin * scale), MARGIN_STEPS - 1)`` of ``values``."""

    scale: float  # steps per unit of margin
    values: np.ndarray  # uint8, MARGIN_STEPS: each step's calibrated confidence, read-only

    @classmethod
    def of(cls, temperature: float, curve: tuple[int, ...] | None) -> "MarginTable":
        """The table for ``temperature`` and ``curve``: each step's two-way level taken at the step's middle, then the curve's value."""
        scale = MARGIN_STEPS / (SATURATION * temperature)
        middles = (np.arange(MARGIN_STEPS) + 0.5) / scale
        values = two_way_levels(middles, temperature)
        if curve is not None:
            values = np.asarray(curve, dtype=np.uint8)[values]
        values.flags.writeable = False
        return cls(scale, values)

    def confidence(self, margin: np.ndarray) -> np.ndarray:
        """uint8 confidence of top-two margins (float, never negative)."""
        steps = np.multiply(margin, np.float32(self.scale), dtype=np.float32)
        np.minimum(steps, np.float32(MARGIN_STEPS - 1), out=steps)
        return np.take(self.values, steps.astype(np.int32), mode="clip")  # np.take: a fifth of the time of fancy indexing


def check_curve(curve: Sequence[int]) -> tuple[int, ...]:
    """``curve`` as a calibration curve: 256 whole numbers 0..255, never decreasing; a ValueError saying what is wrong otherwise."""
    values = tuple(curve)
    if len(values) != LEVELS:
        raise ValueError(f"{LEVELS} values, one per confidence level, not {len(values)}")
    if not all(isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value <= CONFIDENCE_SCALE for value in values):
        raise ValueError(f"whole numbers from 0 to {CONFIDENCE_SCALE}")
    if any(later < earlier for earlier, later in zip(values, values[1:])):
        raise ValueError("values that never decrease (a surer level is never less accurate)")
    return tuple(int(value) for value in values)


@dataclass(frozen=True)
class Calibration:
    """A model's confidence settings: its temperature and calibration curve, the alert level, and where they came from."""

    temperature: float = 1.0
    alert_below: float | None = None  # a stream whose predicted accuracy falls below this is degraded; None: no alert
    source: str = "none: T = 1, uncalibrated (streamseg calibrate-confidence fits it)"
    # The calibrated confidence of each two-way level at this temperature (see the top); None: the level itself.
    curve: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.curve is not None:
            object.__setattr__(self, "curve", check_curve(self.curve))

    @classmethod
    def from_record(cls, record: dict, source: str) -> "Calibration":
        """From the mapping ``streamseg calibrate-confidence --out`` writes (``{temperature, curve, alert_below, fitted_on}``)."""
        return cls(float(record["temperature"]), record.get("alert_below"), source, record.get("curve"))

    @property
    def margin_table(self) -> MarginTable:
        """Both steps as one lookup by the margin, on the host and in OpenVINO's graph."""
        return _margin_table(self.temperature, self.curve)


UNCALIBRATED = Calibration()


@lru_cache(maxsize=8)
def _margin_table(temperature: float, curve: tuple[int, ...] | None) -> MarginTable:
    # One table per calibration, made once: a run looks it up every frame.
    return MarginTable.of(temperature, curve)


@dataclass(frozen=True)
class Reliability:
    """A frame's two figures: the predicted share of correct pixels, and the share under the threshold."""

    predicted_accuracy: float
    low_confidence_fraction: float

    @classmethod
    def of(cls, confidence: np.ndarray, threshold: float = DEFAULT_THRESHOLD) -> "Reliability":
        """The figures of a uint8 confidence map."""
        # Integer sums, uint32 along rows (none can overflow it), then the total: a third of a float mean's time, and exact.
        total = int(confidence.sum(axis=-1, dtype=np.uint32).sum(dtype=np.uint64))
        mean = total / (confidence.size * CONFIDENCE_SCALE)
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
