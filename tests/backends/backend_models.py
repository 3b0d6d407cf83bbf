"""Models and torch references shared by the backend tests."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from streamseg.models.registry import MODELS


def random_model(name: str = "erfnet-half", seed: int = 0) -> nn.Module:
    """A random-init model in eval mode whose class scores depend on the image.

    The last layer's random bias otherwise decides the argmax almost everywhere, which would
    make argmax agreement a test of nothing.
    """
    torch.manual_seed(seed)
    model = MODELS.get(name).build().eval()
    classifier = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))][-1]
    nn.init.zeros_(classifier.bias)
    return model


def torch_logits(model: nn.Module, batch: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return model(torch.from_numpy(batch)).numpy()
