"""Multi-scale inference in the manner of Farabet et al. (2013): one network, several input scales.

::

    image ─┬─► x0.75 ─► model ─► resize back ─► softmax ─┐
           ├─► x1.00 ─► model ──────────────► softmax ─┼─► mean ─► log ─► scores
           └─► x1.25 ─► model ─► resize back ─► softmax ─┘

Small scales let the network see more of the scene per receptive field, large ones resolve
small objects; averaging the class probabilities keeps what each scale is sure of.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["MultiScale"]

# No side shrinks below this, so every model's stride still leaves a feature map.
_MIN_SIDE = 8


class MultiScale(nn.Module):
    """Runs ``model`` at each of ``scales`` and returns the log of the averaged class probabilities.

    Takes and returns what the wrapped model does ((N, 3, H, W) images, (N, C, H, W) scores); the
    log keeps argmax and cross entropy working as they do on logits. A scale of 1.0 runs the
    image as it is. Sizes are computed from the input's shape, so an ONNX export is for one size.
    """

    def __init__(self, model: nn.Module, scales: tuple[float, ...] = (0.75, 1.0, 1.25)) -> None:
        super().__init__()
        if not scales or any(not scale > 0 for scale in scales):
            raise ValueError(f"scales must be positive numbers, got {scales!r}")
        self.model = model
        self.scales = tuple(float(scale) for scale in scales)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Plain ints: the sizes are Python arithmetic, and in an ONNX trace they become constants.
        height, width = (int(side) for side in x.shape[-2:])
        log_probabilities = []
        for scale in self.scales:
            size = (max(_MIN_SIDE, round(height * scale)), max(_MIN_SIDE, round(width * scale)))
            if size == (height, width):
                logits = self.model(x)
            else:
                resized = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
                logits = F.interpolate(self.model(resized), size=(height, width), mode="bilinear", align_corners=False)
            log_probabilities.append(F.log_softmax(logits, dim=1))
        # log(mean(p)) computed as logsumexp(log p) - log(n): no underflow where one scale is certain.
        return torch.logsumexp(torch.stack(log_probabilities), dim=0) - math.log(len(log_probabilities))
