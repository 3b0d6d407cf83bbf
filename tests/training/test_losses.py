"""OHEM keeps the hard pixels, never fewer than ``min_kept`` of the valid ones, and ignores unlabelled ones."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from streamseg.classes import IGNORE_INDEX, NUM_CLASSES
from streamseg.training.losses import segmentation_loss


def _hardest_pixels_by_gathering(logits, labels, class_weights, threshold, min_kept):
    """The definition, written the slow way: gather the valid pixels, sort, keep the hardest."""
    losses = F.cross_entropy(logits, labels, reduction="none", ignore_index=IGNORE_INDEX).flatten()
    valid = labels.flatten() != IGNORE_INDEX
    losses, classes = losses[valid], labels.flatten()[valid]
    kept = min(len(losses), max(min_kept, int((losses > -math.log(threshold)).sum())))
    order = torch.argsort(losses, descending=True)[:kept]
    weights = class_weights[classes[order]]
    return float((losses[order] * weights).sum() / weights.sum())


@pytest.mark.parametrize("min_kept", [5, 300, 10_000])
@pytest.mark.parametrize("confidence", [0.1, 4.0])  # most pixels hard; most pixels easy
def test_ohem_is_the_weighted_mean_over_the_hardest_valid_pixels(min_kept, confidence):
    generator = torch.Generator().manual_seed(min_kept)
    labels = torch.randint(0, NUM_CLASSES + 1, (2, 30, 40), generator=generator)
    labels[labels == NUM_CLASSES] = IGNORE_INDEX
    logits = confidence * torch.randn(2, NUM_CLASSES, 30, 40, generator=generator)
    logits.scatter_add_(1, labels.clamp(max=NUM_CLASSES - 1)[:, None], torch.full((2, 1, 30, 40), confidence))
    class_weights = 0.5 + torch.rand(NUM_CLASSES, generator=generator)
    loss = segmentation_loss("ohem", logits, labels, class_weights, threshold=0.7, min_kept=min_kept)
    assert float(loss) == pytest.approx(_hardest_pixels_by_gathering(logits, labels, class_weights, 0.7, min_kept), rel=1e-5)


def test_ohem_on_a_crop_with_no_labelled_pixel_is_zero_and_still_differentiable():
    logits = torch.randn(1, NUM_CLASSES, 8, 8, requires_grad=True)
    loss = segmentation_loss("ohem", logits, torch.full((1, 8, 8), IGNORE_INDEX), torch.ones(NUM_CLASSES))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(logits.grad).all()
