"""Torch on the CPU: eager fp32, or bf16 autocast with channels-last where the CPU has native bf16."""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from streamseg.backends.base import Backend
from streamseg.backends.options import BackendOptions
from streamseg.cpu import cpu_has_native_bf16
from streamseg.errors import InputError


class TorchBackend(Backend):
    name = "torch"
    precisions = ("fp32", "bf16")

    def __init__(self, model: nn.Module, input_size: tuple[int, int], precision: str, options: BackendOptions) -> None:
        super().__init__(input_size, precision)
        if precision == "bf16" and not cpu_has_native_bf16():
            raise InputError("bf16 needs a CPU with native bf16 (avx512_bf16 or AMX); this one would only emulate it")
        if options.threads:
            torch.set_num_threads(options.threads)
        self.model = model.eval().to(memory_format=torch.channels_last)

    @classmethod
    def auto_precision(cls) -> str:
        return "bf16" if cpu_has_native_bf16() else "fp32"

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            logits = self.model(tensor)
        return logits.float().contiguous().numpy()
