"""Training losses: class-weighted cross entropy, and its online hard-example-mined variant.

Thin classes (Pole, SignSymbol, Fence) are a few pixels wide and mostly border pixels; once the
road and the sky are easy, plain cross entropy averages their errors away. OHEM keeps only the
pixels the model still gets wrong (true-class probability under ``threshold``), but never fewer
than ``min_kept`` of them, so each step is spent where the labels are still bad.
"""

from __future__ import annotations

import math

import torch
from torch.nn import functional as F

from streamseg.classes import IGNORE_INDEX
from streamseg.training.config import LOSSES


def segmentation_loss(
    name: str, logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor,
    threshold: float = 0.7, min_kept: int = 100_000,
) -> torch.Tensor:
    if name == "weighted-ce":
        return F.cross_entropy(logits, labels, weight=class_weights, ignore_index=IGNORE_INDEX)
    if name == "ohem":
        return _ohem(logits, labels, class_weights, threshold, min_kept)
    raise ValueError(f"unknown loss {name!r}; expected one of {', '.join(LOSSES)}")


def _ohem(logits: torch.Tensor, labels: torch.Tensor, class_weights: torch.Tensor, threshold: float, min_kept: int) -> torch.Tensor:
    losses = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="none").flatten()
    valid = labels.flatten() != IGNORE_INDEX
    losses, classes = losses[valid], labels.flatten()[valid]
    if losses.numel() == 0:
        return logits.sum() * 0.0
    # True-class probability under the threshold means a loss above -log(threshold).
    hard = losses > -math.log(threshold)
    kept = min(losses.numel(), max(min_kept, int(hard.sum())))
    hardest = torch.topk(losses, kept, sorted=False).indices
    weights = class_weights[classes[hardest]]
    return (losses[hardest] * weights).sum() / weights.sum()
