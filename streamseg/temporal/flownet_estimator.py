"""The FlowNetS-style network as a flow estimator, with the weights this project trains for it."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from streamseg.cpu import emulated_bf16_reason
from streamseg.errors import ConfigError, InputError
from streamseg.models.weights import bundled_weights, load_state
from streamseg.temporal.flow import FlowEstimator, check_pair
from streamseg.temporal.flownet import FlowNetS, flownet_s

WEIGHTS_NAME = "flownet"  # streamseg/weights/flownet.pt and its model card flownet.json
DEFAULT_WIDTH = 0.25
# Six stride-2 convolutions and no padding inside: other sizes lose pixels at each level's
# crop, which raises the held-out error (BENCHMARKS.md, Temporal smoothing).
_SIZE_DIVISOR = 64


def stack_pair(previous: np.ndarray, current: np.ndarray) -> torch.Tensor:
    """Two RGB uint8 (H, W, 3) frames -> the network's input (1, 6, H, W) float32 in [0, 1], previous first."""
    pair = np.concatenate([previous, current], axis=2).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(pair)).unsqueeze(0).float().div_(255.0)


def bundled_training_height() -> int | None:
    """The height of the pairs the bundled weights were trained on, from their model card."""
    bundled = bundled_weights(WEIGHTS_NAME)
    size = bundled.card.get("training", {}).get("size") if bundled is not None else None
    return int(size[0]) if size else None


def load_flownet(weights: Path | None = None) -> FlowNetS:
    """The network with ``weights`` (a file) or the bundled ones; a clear error when neither exists.

    The bundled model card's ``width`` says which size of the network the weights are for.
    """
    card: dict = {}
    if weights is None:
        bundled = bundled_weights(WEIGHTS_NAME)
        if bundled is None:
            raise InputError(
                "the flownet flow estimator has no trained weights in this build "
                "(train them with tools/train_flownet.py); use --flow dis instead"
            )
        weights, card = bundled.path, bundled.card
    model = flownet_s(width=float(card.get("width", DEFAULT_WIDTH)))
    load_state(model, weights)
    return model.eval()


class FlowNetEstimator(FlowEstimator):
    """Runs :class:`FlowNetS` on the CPU, in fp32 or with bf16 autocast where the CPU has native bf16.

    ``working_height`` is the height the network sees (the width follows the aspect ratio):
    a network learns motions and textures at the scale of its training pairs, so the bundled
    one, trained on 256x192 pairs, runs best there: on 480x360 frames it is both more accurate
    and faster than at full size (BENCHMARKS.md, Temporal smoothing).
    Flow is scaled back to the frames' size. None runs at the frames' own size.
    """

    name = "flownet"

    def __init__(self, model: FlowNetS, precision: str = "fp32", working_height: int | None = None) -> None:
        if precision not in ("fp32", "bf16"):
            raise ConfigError(f"flownet runs in fp32 or bf16, not {precision!r}")
        if precision == "bf16" and (reason := emulated_bf16_reason()):
            raise ConfigError(reason)
        if working_height is not None and working_height < _SIZE_DIVISOR:
            raise ConfigError(f"flownet's working height must be at least {_SIZE_DIVISOR}, not {working_height}")
        self.model = model.eval()
        self.precision = precision
        self.working_height = working_height

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()

    def estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        check_pair(previous, current)
        height, width = current.shape[:2]
        scale = 1.0 if self.working_height is None else self.working_height / height
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        if size != (width, height):
            previous = cv2.resize(previous, size, interpolation=cv2.INTER_AREA)
            current = cv2.resize(current, size, interpolation=cv2.INTER_AREA)
        pair = stack_pair(previous, current)
        pad_bottom, pad_right = -size[1] % _SIZE_DIVISOR, -size[0] % _SIZE_DIVISOR
        pair = F.pad(pair, (0, pad_right, 0, pad_bottom), mode="replicate")
        with torch.inference_mode(), self._autocast():
            flow = self.model(pair)[0, :, : size[1], : size[0]]
        flow = np.ascontiguousarray(flow.float().permute(1, 2, 0).numpy())
        if size == (width, height):
            return flow
        # Vectors scale with the picture: (u, v) at the working size are (u, v) / scale here.
        return cv2.resize(flow, (width, height), interpolation=cv2.INTER_LINEAR) * np.float32(1.0 / scale)
