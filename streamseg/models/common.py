"""Pieces every segmentation model shares: input normalisation and size padding."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

# Mean and spread of CamVid train frames (RGB in [0, 1]); measured by tools/camvid_stats.py.
CAMVID_MEAN = (0.4120, 0.4250, 0.4330)
CAMVID_STD = (0.3030, 0.3100, 0.3060)


class InputNormalization(nn.Module):
    """Maps RGB in [0, 1] to zero mean and unit spread, so every backend takes the same raw input."""

    def __init__(self, mean: tuple[float, ...] = CAMVID_MEAN, std: tuple[float, ...] = CAMVID_STD) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("inv_std", 1.0 / torch.tensor(std).view(1, -1, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) * self.inv_std


def pad_to_multiple(x: torch.Tensor, divisor: int) -> torch.Tensor:
    """Pads the bottom and right edges with zeros (the mean, after normalisation) to a multiple of ``divisor``."""
    height, width = x.shape[-2:]
    pad_bottom = (divisor - height % divisor) % divisor
    pad_right = (divisor - width % divisor) % divisor
    if pad_bottom == 0 and pad_right == 0:
        return x
    return F.pad(x, (0, pad_right, 0, pad_bottom))
