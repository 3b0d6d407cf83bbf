"""Torch on the CPU: fp32, or bf16 autocast where the CPU has native bf16; channels-last, traced and frozen."""

from __future__ import annotations

import warnings
from contextlib import nullcontext

import numpy as np
import torch
from torch import nn

from streamseg.backends.base import Backend, threads_per_call
from streamseg.cpu import cpu_has_native_bf16, emulated_bf16_reason, physical_core_count
from streamseg.errors import ConfigError
from streamseg.options import BackendOptions


class TorchBackend(Backend):
    name = "torch"
    precisions = ("fp32", "bf16")
    max_concurrent_calls = None  # forward() in inference mode is safe to call from several threads

    def __init__(
        self, model: nn.Module, input_size: tuple[int, int], precision: str, options: BackendOptions, *, frozen: bool = True
    ) -> None:
        super().__init__(input_size, precision, options.concurrent_calls)
        if precision == "bf16" and (reason := emulated_bf16_reason()):
            raise ConfigError(reason)
        if options.threads or self.concurrent_calls > 1:
            # Process-wide: every thread that calls the model gets this many intra-op threads.
            torch.set_num_threads(threads_per_call(options.threads, self.concurrent_calls, physical_core_count()))
        self.model = model.eval().to(memory_format=torch.channels_last)
        if frozen:
            self.model = self._trace_and_freeze(self.model)

    @classmethod
    def auto_precision(cls, model, input_size, options) -> str:
        return "bf16" if cpu_has_native_bf16() else "fp32"

    def _trace_and_freeze(self, model: nn.Module) -> torch.jit.ScriptModule:
        """The network as a frozen TorchScript graph for this input size.

        Freezing folds batch norm into the convolutions and lets oneDNN fuse them with their
        activations; the graph then runs in C++, without taking the GIL for every operator,
        so concurrent calls and the pipeline's Python threads do not queue on it (BENCHMARKS.md,
        Pipeline efficiency). TorchScript is deprecated in
        favour of torch.compile, which on a CPU needs a C++ toolchain and minutes of compiling
        at start-up; tracing takes a second.
        """
        example = torch.zeros(1, 3, *self.input_size).contiguous(memory_format=torch.channels_last)
        with warnings.catch_warnings(), torch.inference_mode(), self._autocast():
            warnings.simplefilter("ignore", DeprecationWarning)
            # Padding decisions depend on the input size, which this backend fixes: their specialisation is wanted.
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return torch.jit.freeze(torch.jit.trace(model, example, check_trace=False))

    def _autocast(self):
        return torch.autocast("cpu", dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()

    def infer(self, batch: np.ndarray) -> np.ndarray:
        tensor = torch.from_numpy(batch).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            logits = self.model(tensor)
        return logits.float().contiguous().numpy()


class TorchEagerBackend(TorchBackend):
    """The module as written, op by op: the parity reference, and any model that cannot be traced."""

    name = "torch-eager"

    def __init__(self, model: nn.Module, input_size: tuple[int, int], precision: str, options: BackendOptions) -> None:
        super().__init__(model, input_size, precision, options, frozen=False)
