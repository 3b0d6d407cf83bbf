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
    # Written without a data-dependent shape (no boolean indexing, a fixed k for topk), so that a GPU step never
    # waits for the CPU to learn how many pixels are hard: the kept pixels are a mask, not a gathered subset.
    losses = F.cross_entropy(logits, labels, ignore_index=IGNORE_INDEX, reduction="none").flatten()
    labels = labels.flatten()
    valid = labels != IGNORE_INDEX
    # True-class probability under the threshold means a loss above -log(threshold); and never fewer than
    # ``min_kept`` pixels: all those at least as hard as the min_kept-th hardest valid one.
    hard = losses > -math.log(threshold)
    kth_hardest = torch.topk(losses.masked_fill(~valid, -1.0), min(min_kept, losses.numel()), sorted=False).values.min()
    kept = valid & (hard | (losses >= kth_hardest))
    weights = class_weights[labels.masked_fill(~valid, 0)] * kept
    # No valid pixel at all: a zero loss that still has a graph (the weights' sum is then 0).
    return (losses * weights).sum() / weights.sum().clamp_min(1e-12)
