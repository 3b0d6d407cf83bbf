"""Mean-field CRF with kernels truncated to a local window, in torch (ConvCRF, Teichmann & Cipolla 2018).

The fully connected CRF lets every pixel talk to every other one, which needs the
permutohedral lattice and runs on the CPU. ConvCRF keeps the same Gaussian and bilateral
kernels but cuts them off outside a ``window`` x ``window`` neighbourhood. Each message is
then a per-pixel weighted sum over k² shifted copies of the marginals: plain tensor
arithmetic that a GPU does in a few milliseconds.

The window sum reads the k² neighbours as shifted views of one padded tensor rather than
materialising them with ``unfold``: the arithmetic is the same, but ``unfold`` copies the
marginals k² times (about 0.9 GB at 480x360 with 11 classes and an 11x11 window), which on the
CPU costs more than the arithmetic itself.

``blur`` (ConvCRF's trick for long-range bilateral kernels) computes the messages on
marginals average-pooled by that factor and upsamples them, so an 11x11 window at blur 4
reaches as far as a 44x44 one at 1/16 of the cost; the unary and the result stay at the
CRF resolution.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from streamseg.errors import ConfigError
from streamseg.refine.dense_crf import (
    CrfParameters,
    check_refine_inputs,
    crf_size,
    labels_to_image_size,
)
from streamseg.image.confidence import CONFIDENCE_SCALE
from streamseg.label_sets import label_dtype

_MIN_PROBABILITY = 1e-8


class ConvCRFRefiner:
    """Refines class probabilities into labels with a windowed mean-field CRF on CPU or CUDA.

    The settings mean what they mean for ``DenseCRFRefiner`` (distances in image pixels,
    Potts compatibilities, symmetric kernel normalisation, the pixel itself included in
    its own neighbourhood, as in pydensecrf), plus:

    Args:
        window: side of the square neighbourhood, odd, at least 3.
        blur: messages are computed on marginals pooled by this factor (1 = none).
        device: a torch device, e.g. ``"cpu"`` or ``"cuda"``.
    """

    def __init__(
        self,
        gaussian_sxy: float = 3.0,
        gaussian_compat: float = 3.0,
        bilateral_sxy: float = 80.0,
        bilateral_srgb: float = 13.0,
        bilateral_compat: float = 10.0,
        iterations: int = 5,
        scale: float = 1.0,
        *,
        window: int = 11,
        blur: int = 1,
        device: str | torch.device = "cpu",
    ) -> None:
        self.parameters = CrfParameters(
            gaussian_sxy, gaussian_compat, bilateral_sxy, bilateral_srgb, bilateral_compat, int(iterations), scale
        )
        if int(window) != window or window < 3 or window % 2 == 0:
            raise ValueError(f"window must be an odd whole number of at least 3, got {window}")
        if int(blur) != blur or blur < 1:
            raise ValueError(f"blur must be a whole number of at least 1, got {blur}")
        self.window = int(window)
        self.blur = int(blur)
        self.device = torch.device(device)
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError("ConvCRFRefiner: device 'cuda' was asked for, but torch sees no CUDA GPU")

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value}" for key, value in self.parameters.as_dict().items())
        return f"ConvCRFRefiner({settings}, window={self.window}, blur={self.blur}, device='{self.device}')"

    def refine(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        """RGB uint8 (H, W, 3) and float (C, h, w) probabilities -> class ids (H, W): uint8 up to 255 classes, else uint16."""
        marginals = self.marginals(image, probabilities)
        return labels_to_image_size(_labels_on_host(marginals), image.shape, marginals.shape[0])

    @torch.inference_mode()
    def refine_with_confidence(self, image: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Like ``refine``, and the labels' confidence: uint8 ``round(255 p1 / (p1 + p2))`` of the marginals at the
        CRF resolution, taken on the device so that only uint8 maps cross to the host (not temperature-calibrated,
        see ``streamseg.refine.marginal_confidence``)."""
        marginals = self.marginals(image, probabilities)
        classes = marginals.shape[0]
        labels = _labels_on_host(marginals)
        if classes == 1:
            # No runner-up: as top_two has it, the second best is the best itself, so p = 1/2.
            probability = torch.full(marginals.shape[1:], 0.5, device=marginals.device)
        else:
            best, second = marginals.topk(2, dim=0).values
            probability = best / (best + second).clamp_min(torch.finfo(best.dtype).tiny)
        confidence = (probability * CONFIDENCE_SCALE).round_().to(torch.uint8).cpu().numpy()
        return labels_to_image_size(labels, image.shape, classes), confidence

    @torch.inference_mode()
    def marginals(self, image: np.ndarray, probabilities: np.ndarray) -> torch.Tensor:
        """The CRF's class marginals (C, H', W') at the CRF resolution, on ``self.device``."""
        check_refine_inputs(image, probabilities)
        p = self.parameters
        size = crf_size(image.shape, p.scale)
        rgb = _image_tensor(image, size, self.device)
        probs = torch.from_numpy(np.ascontiguousarray(probabilities, dtype=np.float32)).to(self.device)[None]
        if probs.shape[-2:] != size:
            probs = F.interpolate(probs, size=size, mode="bilinear", align_corners=False)
        probs = probs.clamp_min(_MIN_PROBABILITY)
        unary_logits = torch.log(probs / probs.sum(dim=1, keepdim=True))  # = -unary energy

        if self.blur > 1:
            rgb = F.avg_pool2d(rgb, self.blur, ceil_mode=True, count_include_pad=False)
        weights = self._message_weights(rgb[0])

        q = torch.softmax(unary_logits, dim=1)
        for _ in range(p.iterations):
            pooled = F.avg_pool2d(q, self.blur, ceil_mode=True, count_include_pad=False) if self.blur > 1 else q
            message = _window_sum(pooled[0], weights, self.window)[None]
            if self.blur > 1:
                message = F.interpolate(message, size=size, mode="bilinear", align_corners=False)
            # Potts model: each kernel rewards agreeing with the neighbours' marginals.
            q = torch.softmax(unary_logits + message, dim=1)
        return q[0]

    def _message_weights(self, rgb: torch.Tensor) -> torch.Tensor:
        """(k², h, w): compat-weighted, normalised kernel value from each pixel to each neighbour."""
        p = self.parameters
        radius = self.window // 2
        height, width = rgb.shape[-2:]
        # Spatial deviations in pixels of the grid the messages live on.
        pixel = self.blur / p.scale
        gaussian_var = 2 * (p.gaussian_sxy / pixel) ** 2
        bilateral_var = 2 * (p.bilateral_sxy / pixel) ** 2
        colour_var = 2 * p.bilateral_srgb**2
        padded_rgb = F.pad(rgb, (radius,) * 4)
        valid = F.pad(torch.ones((1, height, width), device=rgb.device), (radius,) * 4)[0]
        gaussian, bilateral = [], []
        for dy, dx in _offsets(self.window):
            distance = float(dy * dy + dx * dx)
            inside = _shifted(valid, dy, dx, radius, height, width)
            colour = (_shifted(padded_rgb, dy, dx, radius, height, width) - rgb).square_().sum(dim=0)
            gaussian.append(inside * math.exp(-distance / gaussian_var))
            bilateral.append(inside * torch.exp(-(distance / bilateral_var) - colour / colour_var))
        weights = torch.zeros((len(gaussian), height, width), device=rgb.device)
        for kernels, compat in ((torch.stack(gaussian), p.gaussian_compat), (torch.stack(bilateral), p.bilateral_compat)):
            # Symmetric normalisation as in pydensecrf: k_ij / sqrt(sum_j k_ij * sum_i k_ij).
            norm = kernels.sum(dim=0).rsqrt()
            padded_norm = F.pad(norm, (radius,) * 4)
            for index, (dy, dx) in enumerate(_offsets(self.window)):
                weights[index] += compat * norm * kernels[index] * _shifted(padded_norm, dy, dx, radius, height, width)
        return weights


def _labels_on_host(marginals: torch.Tensor) -> np.ndarray:
    """The argmax of (C, H', W') marginals as class ids on the host, in the dtype the class count calls for."""
    # Ids cross to the host as uint8 when they fit; wider ones become uint16 there (torch's uint16 is a limited dtype).
    on_device = torch.uint8 if label_dtype(marginals.shape[0]) == np.uint8 else torch.int32
    return marginals.argmax(dim=0).to(on_device).cpu().numpy()


def _image_tensor(image: np.ndarray, size: tuple[int, int], device: torch.device) -> torch.Tensor:
    rgb = torch.from_numpy(np.ascontiguousarray(image)).to(device).permute(2, 0, 1)[None].float()
    if rgb.shape[-2:] != size:
        shrinking = size[0] < rgb.shape[-2] or size[1] < rgb.shape[-1]
        rgb = F.interpolate(rgb, size=size, mode="area") if shrinking else F.interpolate(rgb, size=size, mode="bilinear")
    return rgb


def _offsets(window: int) -> list[tuple[int, int]]:
    radius = window // 2
    return [(dy, dx) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def _shifted(padded: torch.Tensor, dy: int, dx: int, radius: int, height: int, width: int) -> torch.Tensor:
    """The view of ``padded`` (…, h+2r, w+2r) whose pixel (y, x) is the original's (y+dy, x+dx)."""
    return padded[..., radius + dy : radius + dy + height, radius + dx : radius + dx + width]


def _window_sum(values: torch.Tensor, weights: torch.Tensor, window: int) -> torch.Tensor:
    """(C, h, w) -> (C, h, w): sum over the window of weights[offset] * values at pixel + offset."""
    radius = window // 2
    height, width = values.shape[-2:]
    padded = F.pad(values, (radius,) * 4)
    total = torch.zeros_like(values)
    for index, (dy, dx) in enumerate(_offsets(window)):
        total.addcmul_(_shifted(padded, dy, dx, radius, height, width), weights[index])
    return total
