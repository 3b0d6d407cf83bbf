"""The context aggregation module of Yu & Koltun ("Multi-scale context aggregation by dilated convolutions", 2016).

The module of the paper's table, on C class-score maps::

    layer        1    2    3    4    5    6    7    8
    kernel      3x3  3x3  3x3  3x3  3x3  3x3  3x3  1x1
    dilation     1    1    2    4    8   16    1    1
    basic       C    C    C    C    C    C    C    C     output channels
    large       2C   2C   4C   8C  16C  32C  32C   C
    receptive   3x3  5x5  9x9 17x17 33x33 65x65 67x67 67x67

with a ReLU after layers 1-7. Initialised as the identity, it changes nothing until it is
trained, so it can be added to a trained front end and fine-tuned jointly.

:class:`WithContext` puts the module behind any front end that produces logits::

    image ─► front end ─► logits ─────────────────────────────────────────► + ─► logits
                            └─► minus per-pixel minimum ─► /4 average ─► [context − input] ─► x4 ─┘

The paper runs the module at its front end's output stride of 8. Our front ends give logits at
full resolution, where 67x67 pixels is little context and the module would cost 16 times more.
At a quarter of the resolution the field covers 268x268 pixels (most of a 480x360 frame), the
basic module costs about 0.08 GMACs, and the correction is still fine enough for thin classes;
it is added to the full-resolution logits, so their detail is kept.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from torch.nn import functional as F

from streamseg.classes import NUM_CLASSES
from streamseg.models.erfnet import erfnet

__all__ = ["ContextModule", "WithContext", "erfnet_context"]

ContextKind = Literal["basic", "large"]

_DILATIONS = (1, 1, 2, 4, 8, 16, 1)
# Output channels of layers 1-7 as multiples of C, from the paper's table; layer 8 gives C.
_WIDTH_MULTIPLES: dict[str, tuple[int, ...]] = {
    "basic": (1, 1, 1, 1, 1, 1, 1),
    "large": (2, 2, 4, 8, 16, 32, 32),
}
# The paper asks for noise with sigma much smaller than C / c_out on the large module's other
# weights; it only has to break the symmetry between copies of the same class channel.
_LARGE_INIT_NOISE = 1e-3


class ContextModule(nn.Sequential):
    """Seven dilated 3x3 convolutions (dilations 1, 1, 2, 4, 8, 16, 1) and a 1x1, on ``num_classes`` score maps.

    Freshly built, "basic" is exactly the identity and "large" nearly so, on non-negative input
    (the ReLUs clip negative scores; :class:`WithContext` feeds it non-negative ones).
    """

    def __init__(self, num_classes: int, kind: ContextKind = "basic") -> None:
        if kind not in _WIDTH_MULTIPLES:
            raise ValueError(f"unknown context module {kind!r}; expected one of {', '.join(_WIDTH_MULTIPLES)}")
        layers: list[nn.Module] = []
        in_channels = num_classes
        for dilation, multiple in zip(_DILATIONS, _WIDTH_MULTIPLES[kind]):
            out_channels = multiple * num_classes
            conv = nn.Conv2d(in_channels, out_channels, 3, padding=dilation, dilation=dilation)
            layers += [conv, nn.ReLU(inplace=True)]
            in_channels = out_channels
        layers.append(nn.Conv2d(in_channels, num_classes, 1))
        super().__init__(*layers)
        noise = 0.0 if kind == "basic" else _LARGE_INIT_NOISE
        for layer in self:
            if isinstance(layer, nn.Conv2d):
                _identity_init(layer, num_classes, noise)


@torch.no_grad()
def _identity_init(conv: nn.Conv2d, num_classes: int, noise: float) -> None:
    """The paper's identity initialisation for c_in -> c_out channels, both multiples of C.

    Input channel a and output channel b belong to class floor(a C / c_in) and floor(b C / c_out);
    the centre tap is C / c_out where the classes match and noise elsewhere. Each layer then
    hands every class's total on unchanged, so the module as a whole starts as the identity.
    """
    c_out, c_in, kernel_h, kernel_w = conv.weight.shape
    gain = num_classes / c_out
    if noise > 0:
        conv.weight.normal_(0.0, noise * gain)
    else:
        conv.weight.zero_()
    in_class = torch.arange(c_in) * num_classes // c_in
    out_class = torch.arange(c_out) * num_classes // c_out
    same_class = out_class[:, None] == in_class[None, :]
    conv.weight[:, :, kernel_h // 2, kernel_w // 2][same_class] = gain
    nn.init.zeros_(conv.bias)


class WithContext(nn.Module):
    """A front end producing logits, followed by a context module working at 1/``stride`` resolution.

    The module's output minus its input is a correction, upsampled and added to the front end's
    logits, so the result has the front end's shape and, freshly initialised, its exact values.
    The large module costs about 20 GMACs at stride 4 on a 480x360 frame; use ``stride=8`` with it.
    """

    def __init__(
        self, front_end: nn.Module, kind: ContextKind = "basic", *, num_classes: int = NUM_CLASSES, stride: int = 4
    ) -> None:
        super().__init__()
        self.front_end = front_end
        self.context = ContextModule(num_classes, kind)
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.front_end(x)
        height, width = logits.shape[-2:]
        # Softmax and argmax ignore a per-pixel constant. Taking away the smallest score makes
        # every input non-negative, the range the module's ReLUs (and its identity init) pass through.
        scores = logits - logits.amin(dim=1, keepdim=True)
        pad_bottom, pad_right = -height % self.stride, -width % self.stride
        # Edge padding, not zeros: a zero row would read as "every class equally unlikely".
        scores = F.pad(scores, (0, pad_right, 0, pad_bottom), mode="replicate")
        coarse = F.avg_pool2d(scores, self.stride)
        correction = self.context(coarse) - coarse
        correction = F.interpolate(correction, size=scores.shape[-2:], mode="bilinear", align_corners=False)
        return logits + correction[..., :height, :width]


def erfnet_context(
    *, num_classes: int = 11, width: float = 1.0, kind: ContextKind = "basic", stride: int = 4
) -> WithContext:
    """Builds the ERFNet-style front end followed by a context module (``kind`` "basic" or "large")."""
    return WithContext(erfnet(num_classes=num_classes, width=width), kind, num_classes=num_classes, stride=stride)
