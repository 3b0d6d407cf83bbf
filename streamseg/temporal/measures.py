"""How steady segmentation is over time, and how accurate a flow estimator is.

Temporal consistency is measured on real video, where no labels exist: each frame's
labels are compared with the previous frame's labels warped onto it by optical flow.
The flow used to measure must come from a different estimator than the one used to
smooth (Farnebäck to judge DIS smoothing), or the measure would reward agreeing with
its own mistakes.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from streamseg.temporal.flow import FlowEstimator
from streamseg.temporal.synthetic_pairs import FlowPair
from streamseg.temporal.warp import inside_previous, warp


def endpoint_error(estimated: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean Euclidean distance between two flows (H, W, 2), over ``mask`` when given."""
    distance = np.linalg.norm(estimated.astype(np.float64) - truth, axis=2)
    return float(distance[mask].mean() if mask is not None else distance.mean())


def mean_iou(labels: np.ndarray, reference: np.ndarray, valid: np.ndarray, num_classes: int | None = None) -> float:
    """Intersection over union averaged over the classes present in either map, on ``valid`` pixels.

    Ids of ``num_classes`` and above are left out; ``None`` counts every id the maps hold, for a
    label set of any size.
    """
    a, b = labels[valid].astype(np.int64), reference[valid].astype(np.int64)
    if num_classes is None:
        num_classes = int(max(a.max(initial=-1), b.max(initial=-1))) + 1
    keep = (a < num_classes) & (b < num_classes)
    a, b = a[keep], b[keep]
    intersection = np.bincount(a[a == b], minlength=num_classes)
    union = np.bincount(a, minlength=num_classes) + np.bincount(b, minlength=num_classes) - intersection
    present = union > 0
    return float((intersection[present] / union[present]).mean()) if present.any() else 1.0


@dataclass(frozen=True)
class TemporalConsistency:
    """``mean_iou``: labels vs the previous labels warped onto them, averaged over frame pairs (1 is perfectly steady).
    ``flicker_rate``: fraction of pixels whose label differs from the previous frame's and returns to it in the next."""

    mean_iou: float
    flicker_rate: float
    frames: int


class TemporalConsistencyMeter:
    """Takes a video's label maps in order, with the flow between consecutive frames, and measures how steady they are.

    ``flow`` is the backward flow from each frame to the one before (None for the first),
    at the labels' size. It comes from the caller so that several meters (raw, smoothed,
    key-frame labels of the same video) share one estimate per frame. ``num_classes`` as for
    :func:`mean_iou`: ``None`` counts every class id the labels hold.
    """

    def __init__(self, num_classes: int | None = None) -> None:
        self.num_classes = num_classes
        self._previous: np.ndarray | None = None
        self._older_warped: np.ndarray | None = None  # labels of frame t-2 warped onto frame t-1
        self._older_valid: np.ndarray | None = None
        self._ious: list[float] = []
        self._flickering = 0
        self._flicker_checked = 0
        self.frames = 0

    def add(self, labels: np.ndarray, flow: np.ndarray | None) -> None:
        self.frames += 1
        if self._previous is not None:
            if flow is None:
                raise ValueError("every frame after the first needs the flow to its previous frame")
            valid = inside_previous(flow)
            previous_here = warp(self._previous, flow, nearest=True)
            self._ious.append(mean_iou(labels, previous_here, valid, self.num_classes))
            if self._older_warped is not None:
                # A flicker: frame t-1 differs from t-2, and frame t is back to t-2's label (all aligned on frame t).
                older_here = warp(self._older_warped, flow, nearest=True)
                checked = valid & warp(self._older_valid.astype(np.uint8), flow, nearest=True).astype(bool)
                flicker = (previous_here != older_here) & (labels == older_here) & checked
                self._flickering += int(flicker.sum())
                self._flicker_checked += int(checked.sum())
            self._older_warped, self._older_valid = previous_here, valid
        self._previous = labels

    def result(self) -> TemporalConsistency:
        return TemporalConsistency(
            mean_iou=float(np.mean(self._ious)) if self._ious else float("nan"),
            flicker_rate=self._flickering / self._flicker_checked if self._flicker_checked else float("nan"),
            frames=self.frames,
        )


def measure_sequence(frames: Iterable[tuple[np.ndarray, np.ndarray]], estimator: FlowEstimator) -> TemporalConsistency:
    """Temporal consistency of ``(rgb, labels)`` frames, with flow from ``estimator`` (use one you did not smooth with)."""
    meter = TemporalConsistencyMeter()
    previous_rgb = None
    for rgb, labels in frames:
        meter.add(labels, None if previous_rgb is None else estimator.estimate(previous_rgb, rgb))
        previous_rgb = rgb
    return meter.result()


@dataclass(frozen=True)
class FlowAccuracy:
    """End-point error in pixels over all pixels and over pixels visible in both frames, and the time per pair."""

    epe: float
    epe_visible: float
    seconds_per_pair: float
    pairs: int


def flow_accuracy(estimator: FlowEstimator, pairs: Iterable[FlowPair]) -> FlowAccuracy:
    """Runs ``estimator`` on generated pairs with exact flow; times only the estimator."""
    errors, visible_errors, seconds = [], [], 0.0
    for pair in pairs:
        started = time.perf_counter()
        estimated = estimator.estimate(pair.previous, pair.current)
        seconds += time.perf_counter() - started
        errors.append(endpoint_error(estimated, pair.flow))
        visible_errors.append(endpoint_error(estimated, pair.flow, ~pair.occluded))
    count = len(errors)
    if count == 0:
        raise ValueError("no pairs to measure on")
    return FlowAccuracy(float(np.mean(errors)), float(np.mean(visible_errors)), seconds / count, count)
