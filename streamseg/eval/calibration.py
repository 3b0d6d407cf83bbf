"""How well confidence predicts the truth, and the temperature and curve that make it calibrated.

A pixel's confidence (streamseg.image.confidence) is its two-way level ``sigmoid(margin / T)`` (the
margin of its top logit over the runner-up, T the model's temperature) looked up in the model's
calibration curve. Fitting T is a one-parameter logistic regression of "the top class is right" on
the margin, with no intercept: the negative log-likelihood is convex in 1 / T, so it has one
minimum along log T, which golden-section search finds without derivatives. The curve is then the
share of right pixels at each of the 256 levels at that T, made non-decreasing by isotonic
regression (pool adjacent violators, each level weighted by its pixels); a level no pixel had takes
its value from the nearest levels that had some.

A calibration with a context share (streamseg.image.confidence) is fitted on each frame's margins put in their
local context at that share, as a run puts them: the frames keep their raw margins, and pooling takes the share.

The figures, over pixels whose truth counts (not the ignore id, not an id past the classes):

- expected calibration error: 15 equal-width bins of p, each bin's |accuracy - mean p| weighted by its pixels;
- pixel AUROC: the chance that a right pixel's confidence beats a wrong one's (ties count half);
- per frame, the predicted accuracy as a run reports it (the mean of the frame's uint8 confidence map,
  every pixel) against the frame's true pixel accuracy: their Spearman correlation and their means;
- the suggested alert level: a low percentile of the frames' predicted accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from streamseg.image.confidence import (
    CONFIDENCE_SCALE, DEFAULT_THRESHOLD, LEVELS, UNCALIBRATED, Calibration, Reliability, confidence_map,
    in_local_context, table_levels, top_two,
)

ECE_BINS = 15
TEMPERATURE_RANGE = (0.05, 20.0)  # searched on log T; a fit at either end says the margins carry almost no signal
MAX_FIT_PIXELS = 1_000_000  # T is one number: a million pixels fix it far more finely than frame-to-frame variation does
ALERT_PERCENTILE = 5.0  # the alert level: one frame in twenty of the calibration frames falls below it
_LOG_TOLERANCE = 1e-6  # golden-section stops when log T is known this well
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


@dataclass(frozen=True)
class FrameMargins:
    """One frame's top-two margins at the network's grid, which pixels have truth that counts, and which of those are right."""

    margin: np.ndarray  # float32 (h, w), >= 0
    labelled: np.ndarray  # bool (h, w)
    correct: np.ndarray  # bool (h, w); False where not labelled

    @classmethod
    def of(cls, scores: np.ndarray, truth: np.ndarray, num_classes: int, ignore_index: int | None) -> "FrameMargins":
        """From raw scores (C, h, w) and the truth (h, w) at the same grid; truth past the classes or the ignore id does not count."""
        labels, margin = top_two(scores)
        return cls.of_labels(labels, margin, truth, num_classes, ignore_index)

    @classmethod
    def of_labels(
        cls, labels: np.ndarray, margin: np.ndarray, truth: np.ndarray, num_classes: int, ignore_index: int | None,
    ) -> "FrameMargins":
        if truth.shape != labels.shape:
            raise ValueError(f"truth {truth.shape} and labels {labels.shape} differ in shape")
        labelled = (truth >= 0) & (truth < num_classes)
        if ignore_index is not None:
            labelled &= truth != ignore_index
        correct = labelled & (labels.astype(np.int64) == truth)
        return cls(margin.astype(np.float32, copy=False), labelled, correct)

    @property
    def true_accuracy(self) -> float:
        """The share of labelled pixels labelled right; NaN where none is labelled."""
        counted = int(np.count_nonzero(self.labelled))
        return np.count_nonzero(self.correct) / counted if counted else float("nan")


def probability(margin: np.ndarray, temperature: float) -> np.ndarray:
    """sigmoid(margin / T), float64."""
    return 0.5 * (1.0 + np.tanh(np.asarray(margin, dtype=np.float64) / (2.0 * temperature)))


def calibrated_probability(margin: np.ndarray, calibration: Calibration) -> np.ndarray:
    """The confidence of each margin (already in its local context, ``pooled``) under ``calibration``, float64: with a
    curve, the value a run's uint8 map holds."""
    if calibration.curve is None:
        return probability(margin, calibration.temperature)
    return calibration.margin_table.confidence(np.asarray(margin, dtype=np.float32)) / float(CONFIDENCE_SCALE)


def pooled(frames: Sequence[FrameMargins], context_share: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """The labelled pixels of every frame: their margins (float32), each in its local context at ``context_share``, and
    whether each is right (bool)."""
    margins = (
        np.concatenate([in_local_context(frame.margin, context_share)[frame.labelled] for frame in frames]) if frames
        else np.zeros(0, np.float32)
    )
    correct = np.concatenate([frame.correct[frame.labelled] for frame in frames]) if frames else np.zeros(0, bool)
    return margins, correct


def negative_log_likelihood(margins: np.ndarray, correct: np.ndarray, temperature: float) -> float:
    """The mean NLL of "the top class is right" under p = sigmoid(margin / T)."""
    return float(np.mean(np.logaddexp(0.0, _signed(margins, correct) / temperature)))


def _signed(margins: np.ndarray, correct: np.ndarray) -> np.ndarray:
    # -log p = softplus(-m / T) for a right pixel, -log(1 - p) = softplus(m / T) for a wrong one: softplus(signed / T).
    return np.where(correct, -margins, margins).astype(np.float64)


def fit_temperature(
    margins: np.ndarray, correct: np.ndarray, *, max_pixels: int = MAX_FIT_PIXELS, seed: int = 0,
    bounds: tuple[float, float] = TEMPERATURE_RANGE,
) -> float:
    """The T in ``bounds`` of least NLL, on at most ``max_pixels`` of the pixels (a fixed random draw: the same pixels give the same T)."""
    if margins.size == 0:
        raise ValueError("no labelled pixels to fit a temperature on")
    if margins.size > max_pixels:
        chosen = np.sort(np.random.default_rng(seed).choice(margins.size, size=max_pixels, replace=False))
        margins, correct = margins[chosen], correct[chosen]
    signed = _signed(margins, correct)  # made once: the search evaluates the NLL some thirty times

    def cost(log_t: float) -> float:
        return float(np.mean(np.logaddexp(0.0, signed * math.exp(-log_t))))

    low, high = math.log(bounds[0]), math.log(bounds[1])
    inner_low, inner_high = high - _GOLDEN * (high - low), low + _GOLDEN * (high - low)
    cost_low, cost_high = cost(inner_low), cost(inner_high)
    while high - low > _LOG_TOLERANCE:
        if cost_low <= cost_high:
            high, inner_high, cost_high = inner_high, inner_low, cost_low
            inner_low = high - _GOLDEN * (high - low)
            cost_low = cost(inner_low)
        else:
            low, inner_low, cost_low = inner_low, inner_high, cost_high
            inner_high = low + _GOLDEN * (high - low)
            cost_high = cost(inner_high)
    return math.exp((low + high) / 2.0)


def expected_calibration_error(probabilities: np.ndarray, correct: np.ndarray, bins: int = ECE_BINS) -> float:
    """sum over equal-width bins of p of (pixels in the bin / pixels) * |accuracy in the bin - mean p in the bin|."""
    if probabilities.size == 0:
        return float("nan")
    index = np.minimum((probabilities * bins).astype(np.int64), bins - 1)
    # (n_b / n) |right_b / n_b - sum p_b / n_b| = |right_b - sum p_b| / n: no division by a bin's count, empty or not.
    right = np.bincount(index, weights=correct.astype(np.float64), minlength=bins)
    confidence = np.bincount(index, weights=probabilities, minlength=bins)
    return float(np.sum(np.abs(right - confidence)) / probabilities.size)


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of ``values``, tied values sharing the mean of their ranks (float64)."""
    values = np.asarray(values).ravel()
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # the first position of each run of equal values
    ends = np.r_[starts[1:], ordered.size]  # one past the last
    run_ranks = (starts + 1 + ends) / 2.0  # the mean of ranks starts + 1 .. ends
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.repeat(run_ranks, ends - starts)
    return ranks


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """P(a positive's score > a negative's) + P(equal) / 2, exactly, by ranks (Mann-Whitney); NaN without both kinds."""
    positive = np.asarray(positive, dtype=bool).ravel()
    positives = int(np.count_nonzero(positive))
    negatives = positive.size - positives
    if positives == 0 or negatives == 0:
        return float("nan")
    rank_sum = float(np.sum(average_ranks(scores)[positive]))
    return (rank_sum - positives * (positives + 1) / 2.0) / (positives * negatives)


def spearman(first: Sequence[float], second: Sequence[float]) -> float:
    """Spearman's rank correlation (ties take their mean rank); NaN for fewer than two pairs or a constant side."""
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.size < 2:
        return float("nan")
    a, b = average_ranks(first), average_ranks(second)
    a, b = a - a.mean(), b - b.mean()
    scale = math.sqrt(float(np.sum(a * a)) * float(np.sum(b * b)))
    return float(np.sum(a * b)) / scale if scale > 0 else float("nan")


def fit_curve(margins: np.ndarray, correct: np.ndarray, temperature: float) -> tuple[int, ...]:
    """The calibration curve at ``temperature``: each level's share of right pixels, non-decreasing, as uint8 values."""
    if margins.size == 0:
        raise ValueError("no labelled pixels to fit a curve on")
    levels = table_levels(np.asarray(margins, dtype=np.float32), temperature).ravel()
    pixels = np.bincount(levels, minlength=LEVELS).astype(np.float64)
    right = np.bincount(levels, weights=np.asarray(correct, dtype=np.float64).ravel(), minlength=LEVELS)
    seen = np.flatnonzero(pixels)
    accuracy = _pool_adjacent_violators(right[seen] / pixels[seen], pixels[seen])
    curve = np.interp(np.arange(LEVELS), seen, accuracy)  # flat past the first and last levels seen
    return tuple(int(value) for value in np.rint(curve * CONFIDENCE_SCALE))


def _pool_adjacent_violators(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence nearest ``values`` in weighted least squares."""
    means: list[float] = []
    totals: list[float] = []
    lengths: list[int] = []
    for value, weight in zip(values.tolist(), weights.tolist()):
        means.append(value)
        totals.append(weight)
        lengths.append(1)
        while len(means) > 1 and means[-2] > means[-1]:  # merge a block that breaks the order into the one before
            weight = totals[-2] + totals[-1]
            means[-2] = (means[-2] * totals[-2] + means[-1] * totals[-1]) / weight
            totals[-2] = weight
            lengths[-2] += lengths[-1]
            del means[-1], totals[-1], lengths[-1]
    return np.repeat(means, lengths)


def frame_reliability(margin: np.ndarray, calibration: Calibration, threshold: float = DEFAULT_THRESHOLD) -> Reliability:
    """A frame's figures as a run reports them: of its uint8 confidence map, every pixel."""
    return Reliability.of(confidence_map(margin, calibration), threshold)


def alert_level(predicted_accuracies: Sequence[float], percentile: float = ALERT_PERCENTILE) -> float:
    """The suggested ``alert_below``: this percentile of the frames' predicted accuracy (linear between frames)."""
    if len(predicted_accuracies) == 0:
        raise ValueError("no frames to take an alert level from")
    return float(np.percentile(np.asarray(predicted_accuracies, dtype=np.float64), percentile))


@dataclass(frozen=True)
class ConfidenceFigures:
    """How well confidence under one calibration predicts the truth on some frames."""

    temperature: float
    curve: bool  # whether a calibration curve followed the temperature
    frames: int
    pixels: int  # labelled pixels
    expected_calibration_error: float
    auroc: float  # of the confidence
    spearman: float  # per frame: predicted accuracy against true accuracy
    mean_predicted_accuracy: float  # the mean over frames of a run's per-frame figure
    mean_true_accuracy: float  # the mean over frames of their pixel accuracy
    pixel_predicted_accuracy: float  # the mean p over labelled pixels
    pixel_accuracy: float  # right labelled pixels / labelled pixels
    mean_low_confidence_fraction: float
    predicted_accuracies: tuple[float, ...]  # per frame
    true_accuracies: tuple[float, ...]  # per frame

    def as_dict(self, *, per_frame: bool = True) -> dict:
        record = asdict(self)
        if not per_frame:
            del record["predicted_accuracies"], record["true_accuracies"]
        return record


def measure(
    frames: Sequence[FrameMargins], calibration: Calibration, threshold: float = DEFAULT_THRESHOLD,
    *, pixels: tuple[np.ndarray, np.ndarray] | None = None,
) -> ConfidenceFigures:
    """The figures of ``frames`` under ``calibration``; ``pixels`` (their labelled pixels pooled at the calibration's context
    share) spares pooling them again."""
    margins, correct = pixels if pixels is not None else pooled(frames, calibration.context_share)
    p = calibrated_probability(margins, calibration)
    reliabilities = [frame_reliability(frame.margin, calibration, threshold) for frame in frames]
    predicted = tuple(r.predicted_accuracy for r in reliabilities)
    true = tuple(frame.true_accuracy for frame in frames)
    scored = [i for i, value in enumerate(true) if not math.isnan(value)]  # frames with no labelled pixel have no truth
    return ConfidenceFigures(
        temperature=calibration.temperature,
        curve=calibration.curve is not None,
        frames=len(frames),
        pixels=int(margins.size),
        expected_calibration_error=expected_calibration_error(p, correct),
        auroc=auroc(p, correct),  # of the values a run gives: a curve's levels may tie pixels the margins ordered
        spearman=spearman([predicted[i] for i in scored], [true[i] for i in scored]),
        mean_predicted_accuracy=float(np.mean([predicted[i] for i in scored])) if scored else float("nan"),
        mean_true_accuracy=float(np.mean([true[i] for i in scored])) if scored else float("nan"),
        pixel_predicted_accuracy=float(np.mean(p)) if p.size else float("nan"),
        pixel_accuracy=float(np.mean(correct)) if correct.size else float("nan"),
        mean_low_confidence_fraction=float(np.mean([r.low_confidence_fraction for r in reliabilities])) if frames else float("nan"),
        predicted_accuracies=predicted,
        true_accuracies=true,
    )


@dataclass(frozen=True)
class ConfidenceFit:
    """A fitted calibration, the figures before it (T = 1), with its temperature alone and with its curve too, and the
    alert level it suggests (in ``calibration.alert_below``)."""

    calibration: Calibration
    fit_pixels: int  # the labelled pixels T was fitted on (a draw of at most MAX_FIT_PIXELS); the curve takes them all
    before: ConfidenceFigures
    scaled: ConfidenceFigures  # temperature scaling alone
    after: ConfidenceFigures

    @property
    def temperature(self) -> float:
        return self.calibration.temperature

    @property
    def alert_below(self) -> float:
        return self.calibration.alert_below

    def as_dict(self) -> dict:
        return {
            "temperature": self.temperature, "context_share": self.calibration.context_share, "alert_below": self.alert_below,
            "fit_pixels": self.fit_pixels, "curve": list(self.calibration.curve), "before": self.before.as_dict(per_frame=False),
            "scaled": self.scaled.as_dict(per_frame=False), "after": self.after.as_dict(),
        }

    def table(self) -> str:
        """The figures before, with the temperature alone and with the curve, one a line."""
        columns = (self.before, self.scaled, self.after)

        def row(name: str, value) -> tuple[str, ...]:
            return (name, *(value(figures) for figures in columns))

        rows = [
            ("", "T = 1", f"T = {self.temperature:.4f}", "and curve"),
            row("expected calibration error", lambda f: f"{100 * f.expected_calibration_error:.2f}%"),
            row("mean predicted accuracy", lambda f: f"{100 * f.mean_predicted_accuracy:.2f}%"),
            ("mean true accuracy", f"{100 * self.after.mean_true_accuracy:.2f}%", "", ""),
            row("Spearman, frames' predicted vs true", lambda f: f"{f.spearman:.3f}"),
            row("pixel AUROC, right vs wrong", lambda f: f"{f.auroc:.4f}"),
            row("low-confidence share", lambda f: f"{100 * f.mean_low_confidence_fraction:.2f}%"),
        ]
        lines = [f"{name:<36} {a:>10} {b:>12} {c:>10}".rstrip() for name, a, b, c in rows]
        lines.append(
            f"temperature {self.temperature:.4f} fitted on {self.fit_pixels:,} of {self.after.pixels:,} labelled pixels "
            f"in {self.after.frames} frames, then the curve on all of them; context share {self.calibration.context_share:g}"
        )
        lines.append(f"suggested alert level {self.alert_below:.4f} (the {ALERT_PERCENTILE:g}th percentile of the frames' predicted accuracy)")
        return "\n".join(lines)


def calibrate(
    fit_on: Sequence[FrameMargins], measure_on: Sequence[FrameMargins] | None = None,
    threshold: float = DEFAULT_THRESHOLD, *, max_pixels: int = MAX_FIT_PIXELS, source: str = "fitted",
    context_share: float = 0.0,
) -> ConfidenceFit:
    """T and the curve fitted on ``fit_on``'s labelled pixels, in their local context at ``context_share``; the figures
    and the alert level on ``measure_on`` (``fit_on`` itself by default). ``source`` says, in the calibration, what it
    was fitted on (``streamseg calibrate-confidence`` fits at ``DEFAULT_CONTEXT_SHARE``). The figures before are a run's
    without a calibration: T = 1 on the margin alone."""
    margins, correct = pooled(fit_on, context_share)
    temperature = fit_temperature(margins, correct, max_pixels=max_pixels)
    curve = fit_curve(margins, correct, temperature)
    measured = fit_on if measure_on is None else measure_on
    pixels = (margins, correct) if measure_on is None else pooled(measured, context_share)
    scaling = Calibration(temperature, source=source, context_share=context_share)
    after = measure(measured, Calibration(temperature, source=source, curve=curve, context_share=context_share), threshold, pixels=pixels)
    return ConfidenceFit(
        calibration=Calibration(temperature, alert_level(after.predicted_accuracies), source, curve, context_share),
        fit_pixels=min(int(margins.size), max_pixels),
        # Before is of the margin alone: the pooled pixels serve it only where they are the margin alone too.
        before=measure(measured, UNCALIBRATED, threshold, pixels=pixels if context_share == 0 else None),
        scaled=measure(measured, scaling, threshold, pixels=pixels),
        after=after,
    )
