"""DeepLab-style atrous network: DeepLabv3 (Chen et al., 2017) with the DeepLabv3+ decoder (Chen et al., 2018).

The figure, top to bottom (channel counts at width 1.0), with the ``resnet`` backbone::

    input ─► stem: 3x3 conv /2 (16) ─► 3x3 conv (16) ─► 3x3 conv /2 (32)             stride 4
          ─► stage 1: 2 x BasicBlock(32)                                         stride 4 ───┐
          ─► stage 2: 2 x BasicBlock(64), the first one strided                  stride 8    │
          ─► stage 3: 2 x BasicBlock(128), dilation 2 instead of stride          stride 8    │
          ─► stage 4: 1 x BasicBlock(256), dilation 4 instead of stride          stride 8    │
          ─► ASPP(128): [1x1 │ 3x3 rate 6 │ 3x3 rate 12 │ 3x3 rate 18 │ image pooling]       │
                 ─► concat ─► 1x1 projection ─► dropout                                      │
          ─► decoder: x2 bilinear ─► concat with 1x1 conv (24) of the stride-4 features ◄────┘
                 ─► 2 x 3x3 conv (64) ─► 1x1 class scores ─► x4 bilinear to the input size

and with the ``erfnet`` backbone, ERFNet's encoder (factorised residual blocks) in place of the
ResNet, cut at the same two strides::

    input ─► Downsampler(16) ─► Downsampler(64) ─► 5 x NonBottleneck1d(64)      stride 4 ───┐
          ─► Downsampler(128) ─► 2 x NonBottleneck1d(128, dilation 2, 4, 8, 16)  stride 8    │
          ─► ASPP(128) ─► decoder, as above ◄────────────────────────────────────────────────┘

The atrous 3x3 convolutions of ASPP and the decoder's 3x3 convolutions are depthwise separable,
as in DeepLabv3+. At width 1.0 and 480x360 the ``resnet`` network takes 1.9 M parameters and
5.6 GMACs (`tools/model_stats.py` gives both for either backbone).

Both backbones keep the features at 1/8 of the input (60x45 for a 480x360 frame) by dilating
instead of striding, so the receptive field still grows as if they were at 1/32. The decoder
brings back the stride-4 features because CamVid's thin classes (poles, signs, pedestrians)
are a few pixels wide. The ``erfnet`` backbone's parameters carry ERFNet's names
(``encoder.*``), so a trained ERFNet can start it (``streamseg train --init-encoder-from``):
with 367 training frames and no ImageNet, that is the only pre-training there is.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from streamseg.models.common import InputNormalization, pad_to_multiple
from streamseg.models.erfnet import Encoder as ERFNetEncoder

__all__ = ["BACKBONES", "DeepLab", "deeplab"]

# Two stride-2 convolutions in the stem and one strided stage: inputs are padded to this.
_SIZE_DIVISOR = 8
_STAGE_WIDTHS = (32, 64, 128, 256)
# ResNet-18 has two blocks per stage; at stride 8 a block of the last stage costs 16 times what it
# costs at ResNet's stride 32, so stage 4 keeps one block: 2.5 GMACs at 480x360 instead of 5.7,
# and 5.6 GMACs for the whole network instead of 8.8 (ERFNet's cost).
_STAGE_BLOCKS = (2, 2, 2, 1)
_STAGE_DILATIONS = (1, 1, 2, 4)
_ASPP_WIDTH = 128
_LOW_LEVEL_WIDTH = 24  # DeepLabv3+ reduces the low-level features to 48 of 256, the same 3/16 share
_DECODER_WIDTH = 64
# On 320x320 training crops the stage-4 map is 40x40, on 480x360 frames 60x45. Rates 6, 12 and 18
# reach 15-45 % of that map, the share DeepLabv3 used (6, 12, 18 on its 33x33 maps at stride 16);
# (3, 6, 9) would see at most +-72 pixels, less than a nearby car, and the backbone's own
# dilated stages already cover that range.
DEFAULT_ASPP_RATES = (6, 12, 18)


class ConvBNReLU(nn.Sequential):
    """Convolution without bias, batch norm, ReLU: the unit every block is made of."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        *,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation, groups, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class SeparableConv(nn.Sequential):
    """Depthwise (atrous) 3x3 then pointwise 1x1, DeepLabv3+'s "atrous separable convolution".

    On 256 channels it costs about an eighth of a full 3x3 convolution, which is what makes
    three atrous branches and a stride-4 decoder affordable on a CPU.
    """

    def __init__(self, in_channels: int, out_channels: int, dilation: int = 1) -> None:
        super().__init__(
            ConvBNReLU(in_channels, in_channels, 3, dilation=dilation, groups=in_channels),
            ConvBNReLU(in_channels, out_channels, 1),
        )


class BasicBlock(nn.Module):
    """ResNet's two 3x3 convolutions with a shortcut; ``dilation`` replaces stride in the late stages."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int = 1, dilation: int = 1) -> None:
        super().__init__()
        self.conv1 = ConvBNReLU(in_channels, out_channels, stride=stride, dilation=dilation)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        # Starting each residual branch at zero makes every block the identity at first, which
        # lets a network trained from scratch behave like a shallow one early on (Goyal et al., 2017).
        nn.init.zeros_(self.bn2.weight)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(self.conv1(x))) + self.shortcut(x))


class Stage(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int, blocks: int, *, stride: int, dilation: int) -> None:
        layers = [BasicBlock(in_channels, out_channels, stride=stride, dilation=dilation)]
        layers += [BasicBlock(out_channels, out_channels, dilation=dilation) for _ in range(blocks - 1)]
        super().__init__(*layers)


class ASPPPooling(nn.Module):
    """Image-level features: the global mean, a 1x1 convolution, spread back over the map.

    The mean and ``expand`` export to ONNX at any map size, where adaptive pooling plus a
    resize to a size read from the tensor does not always. No batch norm: over a 1x1 map it
    has one value per channel and image, and training with a batch of one would fail.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.relu(self.conv(x.mean((2, 3), keepdim=True)))
        return pooled.expand(-1, -1, x.shape[-2], x.shape[-1])


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: parallel 1x1, atrous 3x3 and image-pooling branches, fused by a 1x1."""

    def __init__(self, in_channels: int, out_channels: int, rates: tuple[int, ...], dropout: float = 0.1) -> None:
        super().__init__()
        branches: list[nn.Module] = [ConvBNReLU(in_channels, out_channels, 1)]
        branches += [SeparableConv(in_channels, out_channels, dilation=rate) for rate in rates]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = nn.Sequential(ConvBNReLU(len(branches) * out_channels, out_channels, 1), nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class Decoder(nn.Module):
    """DeepLabv3+'s decoder: stride-8 context upsampled onto reduced stride-4 detail, then two 3x3 convolutions."""

    def __init__(
        self, low_level_channels: int, context_channels: int, reduced: int, width: int, num_classes: int
    ) -> None:
        super().__init__()
        self.reduce = ConvBNReLU(low_level_channels, reduced, 1)
        self.fuse = nn.Sequential(SeparableConv(context_channels + reduced, width), SeparableConv(width, width))
        self.classifier = nn.Conv2d(width, num_classes, 1)

    def forward(self, low_level: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        context = F.interpolate(context, size=low_level.shape[-2:], mode="bilinear", align_corners=False)
        return self.classifier(self.fuse(torch.cat([context, self.reduce(low_level)], dim=1)))


class ResNetBackbone(nn.Module):
    """A narrow ResNet-18 with dilated late stages: stride-4 and stride-8 features."""

    def __init__(self, width: float) -> None:
        super().__init__()
        widths = [_scaled(c, width) for c in _STAGE_WIDTHS]
        self.stem = nn.Sequential(
            ConvBNReLU(3, widths[0] // 2, stride=2),
            ConvBNReLU(widths[0] // 2, widths[0] // 2),
            ConvBNReLU(widths[0] // 2, widths[0], stride=2),
        )
        stages, in_channels = [], widths[0]
        for index, (channels, blocks, dilation) in enumerate(zip(widths, _STAGE_BLOCKS, _STAGE_DILATIONS)):
            stride = 2 if index == 1 else 1  # the only stride left after the stem; later stages dilate instead
            stages.append(Stage(in_channels, channels, blocks, stride=stride, dilation=dilation))
            in_channels = channels
        self.low_level = stages[0]
        self.high_level = nn.Sequential(*stages[1:])
        self.channels = (widths[0], widths[-1])

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low_level = self.low_level(self.stem(x))
        return low_level, self.high_level(low_level)


class ERFNetBackbone(ERFNetEncoder):
    """ERFNet's encoder, read out after its stride-4 blocks and at its end (stride 8)."""

    _STRIDE_4_END = 7  # two downsamplers and five blocks

    def __init__(self, width: float) -> None:
        c1, c2, c3 = (_scaled(c, width) for c in (16, 64, 128))
        super().__init__(c1, c2, c3, dropout=0.3)
        self.channels = (c2, c3)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        low_level = x
        for index, layer in enumerate(self):
            x = layer(x)
            if index + 1 == self._STRIDE_4_END:
                low_level = x
        return low_level, x


BACKBONES = {"resnet": ResNetBackbone, "erfnet": ERFNetBackbone}


def _scaled(channels: int, width: float) -> int:
    return max(8, int(round(channels * width)))


class DeepLab(nn.Module):
    """DeepLabv3+-style network. Takes RGB in [0, 1] (N, 3, H, W), any H and W; returns logits (N, C, H, W)."""

    def __init__(
        self,
        num_classes: int,
        width: float = 1.0,
        aspp_rates: tuple[int, ...] = DEFAULT_ASPP_RATES,
        backbone: str = "resnet",
    ) -> None:
        super().__init__()
        if backbone not in BACKBONES:
            raise ValueError(f"unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
        self.normalize = InputNormalization()
        # Named "encoder" whatever the backbone, so an ERFNet's encoder.* weights load into it as they are.
        self.encoder = BACKBONES[backbone](width)
        low_level_channels, high_level_channels = self.encoder.channels
        self.aspp = ASPP(high_level_channels, _scaled(_ASPP_WIDTH, width), tuple(aspp_rates))
        self.decoder = Decoder(
            low_level_channels, _scaled(_ASPP_WIDTH, width), _scaled(_LOW_LEVEL_WIDTH, width),
            _scaled(_DECODER_WIDTH, width), num_classes,
        )
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = pad_to_multiple(self.normalize(x), _SIZE_DIVISOR)
        low_level, high_level = self.encoder.features(x)
        logits = self.decoder(low_level, self.aspp(high_level))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return logits[..., :height, :width]


def _init_weights(model: DeepLab) -> None:
    # He initialisation for ReLU networks trained from scratch; batch norm starts as the identity
    # except where BasicBlock zeroed it on purpose (so only the bias is touched here).
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.zeros_(module.bias)
    # Near-zero class scores start the loss at ln(C) instead of at whatever He init happens to give.
    nn.init.normal_(model.decoder.classifier.weight, std=0.01)


def deeplab(
    *, num_classes: int = 11, width: float = 1.0, aspp_rates: tuple[int, ...] = DEFAULT_ASPP_RATES,
    backbone: str = "resnet",
) -> DeepLab:
    """Builds the DeepLab-style atrous network.

    ``width`` scales every channel count; ``aspp_rates`` are the dilations of ASPP's atrous
    branches; ``backbone`` is ``resnet`` or ``erfnet`` (see the module's figure).
    """
    return DeepLab(num_classes=num_classes, width=width, aspp_rates=aspp_rates, backbone=backbone)
