"""The FlowNetS-style network as a flow estimator, with the weights this project trains for it."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import numpy as np
import torch

from streamseg.cpu import cpu_has_native_bf16
from streamseg.errors import InputError
from streamseg.models.weights import bundled_weights, load_state
from streamseg.temporal.flow import FlowEstimator, check_pair
from streamseg.temporal.flownet import FlowNetS, flownet_s

WEIGHTS_NAME = "flownet"  # streamseg/weights/flownet.pt and its model card flownet.json
DEFAULT_WIDTH = 0.25


def stack_pair(previous: np.ndarray, current: np.ndarray) -> torch.Tensor:
    """Two RGB uint8 (H, W, 3) frames -> the network's input (1, 6, H, W) float32 in [0, 1], previous first."""
    pair = np.concatenate([previous, current], axis=2).transpose(2, 0, 1)
    return torch.from_numpy(np.ascontiguousarray(pair)).unsqueeze(0).float().div_(255.0)


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
    """Runs :class:`FlowNetS` on the CPU, in fp32 or with bf16 autocast where the CPU has native bf16."""

    name = "flownet"

    def __init__(self, model: FlowNetS, precision: str = "fp32") -> None:
        if precision not in ("fp32", "bf16"):
            raise InputError(f"flownet runs in fp32 or bf16, not {precision!r}")
        if precision == "bf16" and not cpu_has_native_bf16():
            raise InputError("bf16 needs a CPU with native bf16 (avx512_bf16 or AMX); this one would only emulate it")
        self.model = model.eval()
        self.precision = precision

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()

    def estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        check_pair(previous, current)
        with torch.inference_mode(), self._autocast():
            flow = self.model(stack_pair(previous, current))
        return np.ascontiguousarray(flow[0].float().permute(1, 2, 0).numpy())
