"""Segmentation quality: confusion matrix, IoU per class, mIoU and pixel accuracy."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamseg.classes import CLASS_NAMES, IGNORE_INDEX, NUM_CLASSES


class ConfusionMatrix:
    """Accumulates counts[truth, prediction] over frames; pixels whose truth is out of range are ignored."""

    def __init__(self, num_classes: int = NUM_CLASSES) -> None:
        self.num_classes = num_classes
        self.counts = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, truth: np.ndarray, prediction: np.ndarray) -> None:
        if truth.shape != prediction.shape:
            raise ValueError(f"truth {truth.shape} and prediction {prediction.shape} differ in shape")
        valid = (truth >= 0) & (truth < self.num_classes)
        index = truth[valid].astype(np.int64) * self.num_classes + prediction[valid].astype(np.int64)
        self.counts += np.bincount(index, minlength=self.num_classes**2).reshape(self.num_classes, self.num_classes)

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
    def from_confusion(cls, confusion: ConfusionMatrix, frames: int) -> "EvaluationResult":
        return cls(
            mean_iou=confusion.mean_iou(),
            pixel_accuracy=confusion.pixel_accuracy(),
            class_iou={name: float(v) for name, v in zip(CLASS_NAMES, confusion.iou())},
            frames=frames,
        )

    def as_dict(self) -> dict:
        return {"miou": self.mean_iou, "pixel_accuracy": self.pixel_accuracy, "class_iou": self.class_iou, "frames": self.frames}

    def table(self) -> str:
        lines = [f"{name:<11} {100 * iou:5.1f}" for name, iou in self.class_iou.items()]
        lines.append(f"{'mIoU':<11} {100 * self.mean_iou:5.1f}   pixel accuracy {100 * self.pixel_accuracy:.1f}  ({self.frames} frames)")
        return "\n".join(lines)


__all__ = ["ConfusionMatrix", "EvaluationResult", "IGNORE_INDEX"]
