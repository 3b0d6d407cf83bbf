"""Real-time dilated network in the style of ERFNet (Romera et al., 2017).

The figure of the paper, top to bottom::

    input ─► Downsampler(16) ─► Downsampler(64) ─► 5 × NonBottleneck1d(64)
          ─► Downsampler(128) ─► 2 × [NonBottleneck1d(128, dilation 2, 4, 8, 16)]
          ─► Upsampler(64) ─► 2 × NonBottleneck1d(64)
          ─► Upsampler(16) ─► 2 × NonBottleneck1d(16)
          ─► full-resolution transposed convolution to the class scores

The width multiplier scales the 16/64/128 channel counts, which is how the
model is made cheap enough for a two-core CPU.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from streamseg.models.common import InputNormalization, pad_to_multiple

__all__ = ["ERFNet", "erfnet"]

# The encoder halves the resolution three times, so inputs are padded to this.
_SIZE_DIVISOR = 8
_DILATIONS = (2, 4, 8, 16)


class DownsamplerBlock(nn.Module):
    """Strided 3x3 convolution concatenated with 2x2 max pooling (ENet's initial block)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels - in_channels, 3, stride=2, padding=1, bias=True)
        self.pool = nn.MaxPool2d(2, stride=2)
        self.bn = nn.BatchNorm2d(out_channels, eps=1e-3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(torch.cat([self.conv(x), self.pool(x)], dim=1)))


class NonBottleneck1d(nn.Module):
    """Residual block of two factorised (3x1 then 1x3) convolutions, the second pair dilated."""

    def __init__(self, channels: int, dropout: float, dilation: int) -> None:
        super().__init__()
        self.conv3x1_1 = nn.Conv2d(channels, channels, (3, 1), padding=(1, 0), bias=True)
        self.conv1x3_1 = nn.Conv2d(channels, channels, (1, 3), padding=(0, 1), bias=True)
        self.bn1 = nn.BatchNorm2d(channels, eps=1e-3)
        self.conv3x1_2 = nn.Conv2d(channels, channels, (3, 1), padding=(dilation, 0), dilation=(dilation, 1), bias=True)
        self.conv1x3_2 = nn.Conv2d(channels, channels, (1, 3), padding=(0, dilation), dilation=(1, dilation), bias=True)
        self.bn2 = nn.BatchNorm2d(channels, eps=1e-3)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.conv3x1_1(x))
        out = F.relu(self.bn1(self.conv1x3_1(out)))
        out = F.relu(self.conv3x1_2(out))
        out = self.dropout(self.bn2(self.conv1x3_2(out)))
        return F.relu(out + x)


class UpsamplerBlock(nn.Sequential):
    """Transposed 3x3 convolution doubling the resolution, then batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, 3, stride=2, padding=1, output_padding=1, bias=True),
            nn.BatchNorm2d(out_channels, eps=1e-3),
            nn.ReLU(inplace=True),
        )


class Encoder(nn.Sequential):
    def __init__(self, c1: int, c2: int, c3: int, dropout: float) -> None:
        layers: list[nn.Module] = [DownsamplerBlock(3, c1), DownsamplerBlock(c1, c2)]
        layers += [NonBottleneck1d(c2, dropout / 10, 1) for _ in range(5)]
        layers.append(DownsamplerBlock(c2, c3))
        layers += [NonBottleneck1d(c3, dropout, d) for _ in range(2) for d in _DILATIONS]
        super().__init__(*layers)


class Decoder(nn.Sequential):
    def __init__(self, c1: int, c2: int, c3: int, num_classes: int) -> None:
        super().__init__(
            UpsamplerBlock(c3, c2),
            NonBottleneck1d(c2, 0.0, 1),
            NonBottleneck1d(c2, 0.0, 1),
            UpsamplerBlock(c2, c1),
            NonBottleneck1d(c1, 0.0, 1),
            NonBottleneck1d(c1, 0.0, 1),
            nn.ConvTranspose2d(c1, num_classes, 2, stride=2, bias=True),
        )


class ERFNet(nn.Module):
    """ERFNet-style encoder-decoder. Takes RGB in [0, 1] (N, 3, H, W), any H and W; returns logits (N, C, H, W)."""

    def __init__(self, num_classes: int, width: float = 1.0, dropout: float = 0.3) -> None:
        super().__init__()
        c1, c2, c3 = (max(8, int(round(c * width))) for c in (16, 64, 128))
        self.normalize = InputNormalization()
        self.encoder = Encoder(c1, c2, c3, dropout)
        self.decoder = Decoder(c1, c2, c3, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        x = pad_to_multiple(self.normalize(x), _SIZE_DIVISOR)
        logits = self.decoder(self.encoder(x))
        return logits[..., :height, :width]


def erfnet(*, num_classes: int = 11, width: float = 1.0) -> ERFNet:
    """Builds the real-time dilated network; ``width`` scales every channel count."""
    return ERFNet(num_classes=num_classes, width=width)
