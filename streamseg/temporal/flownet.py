"""FlowNetS-style network (Dosovitskiy et al., 2015), narrowed to run in real time on a two-core CPU.

The figure of the paper, contracting part then expanding part::

    previous ┐                 (1/2)          (1/4)          (1/8)            (1/16)           (1/32)           (1/64)
             ├─ stack (6) ─► conv1 7x7 ─► conv2 5x5 ─► conv3 5x5, conv3_1 ─► conv4, conv4_1 ─► conv5, conv5_1 ─► conv6, conv6_1
    current  ┘

    conv6_1 ────────────────────────────────────────────────► flow6
    deconv5(conv6_1)  ⊕ conv5_1 ⊕ up(flow6) ──────────────► flow5
    deconv4(·)        ⊕ conv4_1 ⊕ up(flow5) ──────────────► flow4
    deconv3(·)        ⊕ conv3_1 ⊕ up(flow4) ──────────────► flow3
    deconv2(·)        ⊕ conv2   ⊕ up(flow3) ──────────────► flow2 (1/4) ─► bilinear x4 ─► flow

Every strided convolution halves the resolution; each expanding level concatenates the
upsampled features, the contracting features of its scale and the upsampled coarser flow,
and predicts flow at its scale. The loss is the end-point error at every scale, weighted
as in the paper (:func:`multiscale_epe`).

Departures from the paper, all for a CPU budget: channel counts scaled by ``width``
(0.25 by default, i.e. 16..256 instead of 64..1024), batch norm after each encoder
convolution (FlowNetS-BN; it trains from scratch more easily and can be folded into the
convolutions for inference), and no padding: odd sizes are handled by cropping each upsampled map to its skip connection.

The output is the backward flow of the second frame, in pixels, as everywhere in
:mod:`streamseg.temporal`. The input is the two frames stacked: ``(N, 6, H, W)``, previous
frame's RGB then current frame's RGB, in [0, 1].
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from streamseg.models.common import CAMVID_MEAN, CAMVID_STD, InputNormalization

__all__ = ["FlowNetS", "flownet_s", "multiscale_epe", "DIV_FLOW", "SCALE_WEIGHTS"]

# Flow is predicted divided by 20 at every scale (in full-resolution pixels, not rescaled per
# level), which keeps targets near unit size, as the paper's Caffe models did.
DIV_FLOW = 20.0
# Loss weight of each predicted scale, finest (flow2, 1/4) to coarsest (flow6, 1/64), from the paper.
SCALE_WEIGHTS = (0.005, 0.01, 0.02, 0.08, 0.32)
_ENCODER_CHANNELS = (64, 128, 256, 512, 512, 1024)  # conv1 .. conv6 in the paper
_DECODER_CHANNELS = (512, 256, 128, 64)  # deconv5 .. deconv2


class ConvBlock(nn.Sequential):
    """Convolution, batch norm, leaky ReLU; ``stride`` 2 halves the resolution."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.LeakyReLU(0.1, inplace=True),
        )


class Deconv(nn.Sequential):
    """Transposed 4x4 convolution that doubles the resolution (the paper's "upconv")."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False),
            nn.LeakyReLU(0.1, inplace=True),
        )


def predict_flow(in_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, 2, 3, padding=1, bias=False)


def crop_like(x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cuts an upsampled map to the size of its skip connection (odd sizes upsample one pixel too far)."""
    return x[..., : target.shape[-2], : target.shape[-1]]


class Encoder(nn.Module):
    """The contracting part; returns the features of every scale from 1/4 to 1/64 for the skip connections."""

    def __init__(self, channels: tuple[int, ...]) -> None:
        super().__init__()
        c1, c2, c3, c4, c5, c6 = channels
        self.conv1 = ConvBlock(6, c1, 7, stride=2)
        self.conv2 = ConvBlock(c1, c2, 5, stride=2)
        self.conv3 = nn.Sequential(ConvBlock(c2, c3, 5, stride=2), ConvBlock(c3, c3, 3))
        self.conv4 = nn.Sequential(ConvBlock(c3, c4, 3, stride=2), ConvBlock(c4, c4, 3))
        self.conv5 = nn.Sequential(ConvBlock(c4, c5, 3, stride=2), ConvBlock(c5, c5, 3))
        self.conv6 = nn.Sequential(ConvBlock(c5, c6, 3, stride=2), ConvBlock(c6, c6, 3))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        conv2 = self.conv2(self.conv1(x))
        conv3 = self.conv3(conv2)
        conv4 = self.conv4(conv3)
        conv5 = self.conv5(conv4)
        conv6 = self.conv6(conv5)
        return [conv2, conv3, conv4, conv5, conv6]


class RefinementLevel(nn.Module):
    """One expanding level: upsample features and coarser flow, join the skip connection, predict flow here."""

    def __init__(self, in_channels: int, out_channels: int, skip_channels: int) -> None:
        super().__init__()
        self.deconv = Deconv(in_channels, out_channels)
        self.upsample_flow = nn.ConvTranspose2d(2, 2, 4, stride=2, padding=1, bias=False)
        self.joined_channels = out_channels + skip_channels + 2
        self.predict = predict_flow(self.joined_channels)

    def forward(self, features: torch.Tensor, coarse_flow: torch.Tensor, skip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        joined = torch.cat(
            [skip, crop_like(self.deconv(features), skip), crop_like(self.upsample_flow(coarse_flow), skip)], dim=1
        )
        return joined, self.predict(joined)


class FlowNetS(nn.Module):
    """Two RGB frames stacked (N, 6, H, W) in [0, 1], any H and W -> backward flow (N, 2, H, W) in pixels."""

    def __init__(self, width: float = 0.25) -> None:
        super().__init__()
        encoder = tuple(max(8, int(round(c * width))) for c in _ENCODER_CHANNELS)
        decoder = tuple(max(4, int(round(c * width))) for c in _DECODER_CHANNELS)
        self.width = width
        self.normalize = InputNormalization(CAMVID_MEAN * 2, CAMVID_STD * 2)
        self.encoder = Encoder(encoder)
        self.predict_flow6 = predict_flow(encoder[5])
        levels = []
        features = encoder[5]
        # Skip connections from conv5_1 down to conv2, i.e. encoder[4] .. encoder[1].
        for out_channels, skip_channels in zip(decoder, encoder[4:0:-1]):
            level = RefinementLevel(features, out_channels, skip_channels)
            levels.append(level)
            features = level.joined_channels
        self.levels = nn.ModuleList(levels)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                nn.init.kaiming_normal_(module.weight, a=0.1)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)

    def forward_pyramid(self, pair: torch.Tensor) -> list[torch.Tensor]:
        """Flow at every scale divided by :data:`DIV_FLOW`, finest (1/4) first: what the loss compares."""
        conv2, conv3, conv4, conv5, conv6 = self.encoder(self.normalize(pair))
        flow = self.predict_flow6(conv6)
        features = conv6
        pyramid = [flow]
        for level, skip in zip(self.levels, (conv5, conv4, conv3, conv2)):
            features, flow = level(features, flow, skip)
            pyramid.append(flow)
        return pyramid[::-1]

    def forward(self, pair: torch.Tensor) -> torch.Tensor:
        finest = self.forward_pyramid(pair)[0]
        return F.interpolate(finest * DIV_FLOW, size=pair.shape[-2:], mode="bilinear", align_corners=False)


def multiscale_epe(pyramid: list[torch.Tensor], truth: torch.Tensor, weights: tuple[float, ...] = SCALE_WEIGHTS) -> torch.Tensor:
    """The paper's training loss: at each scale, the end-point error against the area-averaged true flow.

    ``truth`` is (N, 2, H, W) in pixels. As in the paper the error is summed over the pixels
    of a scale (averaged over the batch), which is why coarse scales carry larger weights.
    """
    scaled_truth = truth / DIV_FLOW
    total = truth.new_zeros(())
    for prediction, weight in zip(pyramid, weights):
        target = F.adaptive_avg_pool2d(scaled_truth, prediction.shape[-2:])
        error = torch.linalg.vector_norm(prediction.float() - target, dim=1)
        total = total + weight * error.sum() / truth.shape[0]
    return total


def flownet_s(*, width: float = 0.25) -> FlowNetS:
    """Builds the FlowNetS-style network; ``width`` scales every channel count of the paper's."""
    return FlowNetS(width=width)
