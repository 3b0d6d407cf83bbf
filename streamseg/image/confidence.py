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

Before both steps, a calibration may put each pixel's margin in its local context: a share of it (the
*context share*, 0.5 in a fit) is replaced by the mean margin around it, ``(1 - s) m + s c``. The context
c is the same for the 8x8 pixels of a block: the mean margin of the 5x5 blocks around that block (about 40x40
pixels; fewer blocks at the frame's edges, and a grid that is not a whole number of blocks is padded with its
edge values). A pixel's own margin says how sure the network is of it; the area around it says whether the
network knows that part of the road, which one pixel's margin cannot. On a drive held out from
training the context raised the AUROC on every split tried and calibrated as well or better, and on the
highway it leaves more of the hills labelled building uncertain, where the whole frame's mean, tried first,
left fewer (BENCHMARKS.md, "Confidence"). Blocks, not a sliding window: their means
come back to every pixel as one broadcast add over the margin seen as blocks, where bringing them back by
resampling would cost OpenVINO's graph another pass over the grid. A calibration without a share (0, as
older ones have) uses the margin alone.

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

import cv2
import numpy as np

from streamseg.label_sets import label_dtype

CONFIDENCE_SCALE = 255  # a confidence map's value for probability 1
LEVELS = CONFIDENCE_SCALE + 1  # the values of a uint8 map, and the entries of a calibration curve
# Below this a pixel is "low confidence": calibrated, a pixel the model gets wrong about one time in three or more.
DEFAULT_THRESHOLD = 0.7
MARGIN_STEPS = 1024  # the margin table's entries
# Past this margin / T every two-way level is 255 (255 sigmoid(6.232) = 254.5), so the table's last step holds them all.
SATURATION = 6.25
# The share of a pixel's margin that ``calibrate-confidence`` replaces by the mean margin around it (chosen on the held-out drive).
DEFAULT_CONTEXT_SHARE = 0.5
CONTEXT_BLOCK = 8  # pixels a side of the blocks whose mean margins make the context
CONTEXT_BLOCKS = 5  # blocks a side of the neighbourhood whose means are averaged (odd: centred on the pixel's block)


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


def in_local_context(margin: np.ndarray, share: float) -> np.ndarray:
    """A frame's top-two margins (h, w) with ``share`` of each replaced by the mean margin around it (see the top),
    float32; ``margin`` itself at 0."""
    if share == 0:
        return margin
    height, width = margin.shape
    rows, columns = -(-height // CONTEXT_BLOCK), -(-width // CONTEXT_BLOCK)
    padded = margin.astype(np.float32, copy=False)
    if (rows * CONTEXT_BLOCK, columns * CONTEXT_BLOCK) != (height, width):
        padded = np.pad(padded, ((0, rows * CONTEXT_BLOCK - height), (0, columns * CONTEXT_BLOCK - width)), mode="edge")
    # Area resampling by a whole factor is each block's mean: a sixth of the time of numpy's mean over the block axes.
    block_means = cv2.resize(padded, (columns, rows), interpolation=cv2.INTER_AREA)
    around = _box_mean(block_means.astype(np.float64), CONTEXT_BLOCKS)
    blocks = padded.reshape(rows, CONTEXT_BLOCK, columns, CONTEXT_BLOCK)
    mixed = np.multiply(blocks, np.float32(1.0 - share), dtype=np.float32)
    mixed += (share * around).astype(np.float32)[:, None, :, None]  # one broadcast add: each block's context to its pixels
    return mixed.reshape(padded.shape)[:height, :width]


def _box_mean(grid: np.ndarray, size: int) -> np.ndarray:
    """The mean of each cell's ``size`` x ``size`` neighbourhood (odd ``size``), over the cells inside the grid only."""

    def box_sum(values: np.ndarray) -> np.ndarray:
        # Summed-area table: a box's sum from four corners. Zero padding: cells past the edge add nothing.
        table = np.pad(np.pad(values, size // 2).cumsum(axis=0).cumsum(axis=1), ((1, 0), (1, 0)))
        return table[size:, size:] - table[:-size, size:] - table[size:, :-size] + table[:-size, :-size]

    return box_sum(grid) / box_sum(np.ones_like(grid))


def confidence_map(margin: np.ndarray, calibration: "Calibration") -> np.ndarray:
    """uint8 confidence of one frame's top-two margins (h, w) under ``calibration``: in their local context at the
    calibration's share, then both steps, by its margin table."""
    return calibration.margin_table.confidence(in_local_context(margin, calibration.context_share))


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


def check_context_share(share: float) -> float:
    """``share`` as a context share: a number from 0 up to, not including, 1 (at 1 a pixel's own margin would not count)."""
    if isinstance(share, bool) or not isinstance(share, (int, float, np.number)) or not 0 <= share < 1:
        raise ValueError(f"a context share is a number from 0 up to 1 (not included), not {share!r}")
    return float(share)


@dataclass(frozen=True)
class Calibration:
    """A model's confidence settings: its temperature and calibration curve, the alert level, and where they came from."""

    temperature: float = 1.0
    alert_below: float | None = None  # a stream whose predicted accuracy falls below this is degraded; None: no alert
    source: str = "none: T = 1, uncalibrated (streamseg calibrate-confidence fits it)"
    # The calibrated confidence of each two-way level at this temperature (see the top); None: the level itself.
    curve: tuple[int, ...] | None = None
    # The share of each margin replaced by the mean margin around it before both steps (see the top); T and the curve are fitted at it.
    context_share: float = 0.0

    def __post_init__(self) -> None:
        if self.curve is not None:
            object.__setattr__(self, "curve", check_curve(self.curve))
        object.__setattr__(self, "context_share", check_context_share(self.context_share))

    @classmethod
    def from_record(cls, record: dict, source: str) -> "Calibration":
        """From the mapping ``streamseg calibrate-confidence --out`` writes (``{temperature, curve, context_share, alert_below,
        fitted_on}``); a record without ``context_share`` (written before it existed) uses the margin alone."""
        return cls(float(record["temperature"]), record.get("alert_below"), source, record.get("curve"), record.get("context_share", 0.0))

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
