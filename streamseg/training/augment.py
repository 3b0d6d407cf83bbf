"""Training-time augmentation in torch, on whatever device the model trains on.

One implementation for the CPU and the GPU trainer: the data set stays in memory as uint8 on
that device, and each batch is scaled, cropped, flipped and photometrically jittered there, so a
GPU is never left waiting on a CPU that resizes images. Random draws come from a CPU
``torch.Generator`` seeded per epoch, so a resumed run draws what the uninterrupted one would
have; they reach the device with ``non_blocking`` copies, since a blocking copy waits for every
kernel queued before it.

Geometry (scale, crop, flip) moves labels with pixels; the photometric part (brightness,
contrast, saturation, hue, blur, noise) touches only the image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch.nn import functional as F

from streamseg.classes import IGNORE_INDEX

# RGB to YIQ and back: a hue shift is a rotation of the (I, Q) chroma plane, one 3x3 matrix per image.
_RGB_TO_YIQ = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]])
_YIQ_TO_RGB = torch.linalg.inv(_RGB_TO_YIQ)


@dataclass(frozen=True)
class Augmentation:
    crop: tuple[int, int] = (360, 480)  # (height, width)
    scale_range: tuple[float, float] = (0.5, 1.5)
    jitter: float = 0.25  # brightness, contrast and saturation each drawn in 1 +- jitter
    hue: float = 0.0  # hue rotation drawn in +- hue turns
    blur: float = 0.0  # probability of a box blur of 3 or 5 px
    noise: float = 0.0  # Gaussian noise of standard deviation up to this (images in [0, 1])

    def __post_init__(self) -> None:
        low, high = self.scale_range
        if not 0.1 <= low <= high <= 4.0:
            raise ValueError(f"scale range must satisfy 0.1 <= low <= high <= 4, not {self.scale_range}")
        for name in ("jitter", "hue", "blur", "noise"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in 0..1, not {getattr(self, name)}")

    def __call__(
        self, images: list[torch.Tensor], labels: list[torch.Tensor], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """uint8 HWC images and uint8 HW label maps of one size (on one device) -> float NCHW in [0, 1] and int64 NHW."""
        images, labels = self.geometry(torch.stack(images), torch.stack(labels), generator)
        return self.photometric(images, generator), labels

    def geometry(self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """Random scale, crop (padding where the scaled frame is smaller) and horizontal flip, aligned.

        One affine resampling per batch straight to the crop: only the cropped pixels are
        interpolated, never a 2x-scaled whole frame. Images bilinear, labels nearest; outside
        the frame, images are black and labels are ``IGNORE_INDEX``.
        """
        count, height, width = labels.shape
        crop_h, crop_w = self.crop
        low, high = self.scale_range
        scales = low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)
        theta = torch.zeros(count, 2, 3, dtype=torch.float64)
        for index, scale in enumerate(scales.tolist()):
            # Crop origin in the scaled frame; where the frame is smaller than the crop, it lands anywhere inside it.
            top = _offset(height * scale, crop_h, generator)
            left = _offset(width * scale, crop_w, generator)
            flip = -1.0 if float(torch.rand(1, generator=generator)) < 0.5 else 1.0
            # Normalised output x (align_corners=False) maps to input x = a * x + b, a = crop/(scale*size).
            theta[index, 0, 0] = flip * crop_w / (scale * width)
            theta[index, 0, 2] = (2 * left + crop_w) / (scale * width) - 1
            theta[index, 1, 1] = crop_h / (scale * height)
            theta[index, 1, 2] = (2 * top + crop_h) / (scale * height) - 1
        grid = F.affine_grid(theta.float().to(images.device, non_blocking=True), [count, 1, crop_h, crop_w], align_corners=False)
        images = F.grid_sample(images.permute(0, 3, 1, 2).float() / 255.0, grid, mode="bilinear", align_corners=False)
        # Labels shifted by one so that the zeros grid_sample fills outside the frame become IGNORE_INDEX.
        shifted = F.grid_sample(labels[:, None].float() + 1, grid, mode="nearest", align_corners=False)[:, 0].long() - 1
        return images, torch.where(shifted < 0, IGNORE_INDEX, shifted)

    def photometric(self, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Per image: saturation, contrast and brightness, then hue, blur and noise; clamped to [0, 1]."""
        count = batch.shape[0]
        device = batch.device
        brightness, contrast, saturation = (1.0 + self.jitter * (2 * torch.rand(3, count, 1, 1, 1, generator=generator) - 1)).to(device, non_blocking=True)
        grey = batch.mean(dim=1, keepdim=True)
        batch = (batch - grey) * saturation + grey
        mean = batch.mean(dim=(1, 2, 3), keepdim=True)
        batch = (batch - mean) * contrast + mean * brightness
        if self.hue:
            angles = self.hue * 2 * math.pi * (2 * torch.rand(count, generator=generator) - 1)
            batch = torch.einsum("nij,njhw->nihw", _hue_rotations(angles).to(device, non_blocking=True), batch)
        if self.blur:
            # A box blur of 3 or 5 px (out of focus, a little motion): one pooling call per size, fast on a CPU too.
            blurred = torch.rand(count, generator=generator) < self.blur
            sizes = torch.where(torch.rand(count, generator=generator) < 0.5, 3, 5)
            for size in (3, 5):
                chosen = torch.nonzero(blurred & (sizes == size)).flatten().to(device, non_blocking=True)
                if len(chosen):
                    batch[chosen] = F.avg_pool2d(batch[chosen], size, stride=1, padding=size // 2, count_include_pad=False)
        if self.noise:
            strength = (self.noise * torch.rand(count, 1, 1, 1, generator=generator)).to(device, non_blocking=True)
            # Drawn where the batch lives, from a generator seeded by the epoch's: a whole batch of normal
            # samples drawn on the CPU and copied over makes training CPU-bound on a GPU, and the seed keeps
            # a resumed run's draws the same.
            seed = int(torch.randint(0, 2**62, (1,), generator=generator))
            noise = torch.randn(batch.shape, device=device, generator=torch.Generator(device=device).manual_seed(seed))
            batch = batch + strength * noise
        return batch.clamp_(0.0, 1.0)


def _offset(scaled: float, crop: int, generator: torch.Generator) -> float:
    """A crop origin drawn uniformly: inside the frame, or (frame smaller than the crop) anywhere the frame stays in the crop."""
    low, high = sorted((0.0, scaled - crop))
    return low + (high - low) * float(torch.rand(1, generator=generator, dtype=torch.float64))


def _hue_rotations(angles: torch.Tensor) -> torch.Tensor:
    """(N, 3, 3) RGB matrices that rotate chroma by ``angles`` and keep luma."""
    cos, sin = torch.cos(angles), torch.sin(angles)
    rotation = torch.zeros(len(angles), 3, 3)
    rotation[:, 0, 0] = 1.0
    rotation[:, 1, 1], rotation[:, 1, 2] = cos, -sin
    rotation[:, 2, 1], rotation[:, 2, 2] = sin, cos
    return _YIQ_TO_RGB @ rotation @ _RGB_TO_YIQ
