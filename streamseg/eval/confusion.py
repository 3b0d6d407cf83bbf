"""Segmentation quality: confusion matrix, IoU per class, mIoU and pixel accuracy."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from streamseg.classes import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES
from streamseg.label_sets import LabelSet

ONE_CLASS_A_LINE = 32  # up to this many classes the table has a line each; beyond, columns of the classes seen
TABLE_COLUMNS = 3
COLUMN_NAME_WIDTH = 22


class ConfusionMatrix:
    """Accumulates counts[truth, prediction] over frames.

    Pixels whose truth is out of range (an id at or above ``num_classes``, or ``ignore_index``) are not
    scored; ``ignored`` counts them, so that a caller can say how much of the truth was left out.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, ignore_index: int | None = None) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.counts = np.zeros((num_classes, num_classes), dtype=np.int64)
        self.ignored = 0

    @classmethod
    def for_label_set(cls, label_set: LabelSet) -> "ConfusionMatrix":
        return cls(label_set.num_classes, label_set.ignore_index)

    def update(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        if truth.shape != prediction.shape:
            raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} differ in shape")
        valid = (truth >= 0) & (truth < self.num_classes)
        if self.ignore_index is not None and self.ignore_index < self.num_classes:
            valid &= truth != self.ignore_index
        predicted = prediction[valid].astype(np.int64)
        if predicted.size and (int(predicted.max()) >= self.num_classes or int(predicted.min()) < 0):
            raise ValueError(f"a prediction holds class id {int(predicted.max())} of {self.num_classes} classes")
        index = truth[valid].astype(np.int64) * self.num_classes + predicted
        self.counts += np.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)
        self.ignored += int(truth.size - predicted.size)

    def iou(self) -> np.ndarray:
        """IoU per class; NaN for a class absent from both truth and prediction."""
        true_positive = np.diag(self.counts).astype(np.float64)
        union = self.counts.sum(axis=0) + self.counts.sum(axis=1) - true_positive
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, true_positive / union, np.nan)

    def mean_iou(self) -> float:
        return float(np.nanmean(self.iou()))

    def pixel_accuracy(self) -> float:
        total = self.counts.sum()
        return float(np.diag(self.counts).sum() / total) if total else float("nan")


@dataclass(frozen=True)
class EvaluationResult:
    mean_iou: float
    pixel_accuracy: float
    class_iou: dict[str, float]
    frames: int

    @classmethod
    def from_confusion(
        cls, confusion: ConfusionMatrix, frames: int, names: Sequence[str] | None = None
    ) -> "EvaluationResult":
        """The scores of ``confusion`` under the class ``names`` (a label set's; CamVid's by default)."""
        if names is None:
            names = CLASS_NAMES if confusion.num_classes == NUM_CLASSES else [f"class {i}" for i in range(confusion.num_classes)]
        if len(names) != confusion.num_classes:
            raise ValueError(f"{len(names)} class names for a confusion matrix of {confusion.num_classes} classes")
        return cls(
            mean_iou=confusion.mean_iou(),
            pixel_accuracy=confusion.pixel_accuracy(),
            class_iou={name: float(v) for name, v in zip(_unique_names(names), confusion.iou())},
            frames=frames,
        )

    def as_dict(self) -> dict:
        return {"miou": self.mean_iou, "pixel_accuracy": self.pixel_accuracy, "class_iou": self.class_iou, "frames": self.frames}

    def table(self) -> str:
        """IoU per class and the summary: a line each up to 32 classes, else columns of the classes that were seen."""
        if len(self.class_iou) <= ONE_CLASS_A_LINE:
            width = max(11, max(len(name) for name in self.class_iou) + 1)
            lines = [f"{name:<{width}} {100 * iou:5.1f}" for name, iou in self.class_iou.items()]
        else:
            width = 11
            lines = _columns(self.class_iou)
        lines.append(
            f"{'mIoU':<{width}} {100 * self.mean_iou:5.1f}   pixel accuracy {100 * self.pixel_accuracy:.1f}  ({self.frames} frames)"
        )
        return "\n".join(lines)


def _columns(class_iou: dict[str, float]) -> list[str]:
    """Classes seen in truth or prediction in columns, read down; the unseen counted on one line (the JSON lists all)."""
    seen = [(name, iou) for name, iou in class_iou.items() if not math.isnan(iou)]
    cells = [f"{_shortened(name):<{COLUMN_NAME_WIDTH}} {100 * iou:5.1f}" for name, iou in seen]
    rows = math.ceil(len(cells) / TABLE_COLUMNS)
    lines = ["   ".join(cells[row::rows]).rstrip() for row in range(rows)]
    unseen = len(class_iou) - len(seen)
    if unseen:
        lines.append(f"({unseen} of the {len(class_iou)} classes are in neither the truth nor the predictions: not scored)")
    return lines


def _shortened(name: str) -> str:
    return name if len(name) <= COLUMN_NAME_WIDTH else name[: COLUMN_NAME_WIDTH - 3] + "..."


def _unique_names(names: Sequence[str]) -> list[str]:
    """``names``, with a repeated one followed by its class id, so that each keeps its own IoU."""
    repeated = {name for name, count in Counter(names).items() if count > 1}
    return [f"{name} ({index})" if name in repeated else name for index, name in enumerate(names)]


__all__ = ["ConfusionMatrix", "EvaluationResult", "IGNORE_INDEX"]
