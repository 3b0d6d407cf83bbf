"""The one interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from streamseg.errors import InputError


class Backend(ABC):
    """Runs a segmentation model: ``infer(batch) -> logits``.

    ``batch`` is float32 (N, 3, H, W), RGB in [0, 1], with (H, W) equal to ``input_size``;
    the result is float32 logits (N, C, H, W). Normalisation is part of the model.
    """

    name: str  # short, for metrics and messages: "torch", "onnxruntime", ...
    precision: str  # "fp32", "bf16", "fp16", "int8"
    precisions: tuple[str, ...] = ("fp32",)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when this backend can run here, else why not."""
        return None

    @classmethod
    def auto_precision(cls) -> str:
        """The precision ``--precision auto`` means: the fastest that keeps parity on this machine."""
        return "fp32"

    def __init__(self, input_size: tuple[int, int], precision: str) -> None:
        if precision not in self.precisions:
            raise InputError(f"{self.name} backend supports precision {', '.join(self.precisions)}, not {precision!r}")
        self.input_size = input_size  # (height, width)
        self.precision = precision

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def warm_up(self, iterations: int = 2) -> None:
        """Runs a few inferences so that one-off costs stay out of the first frames' latency."""
        height, width = self.input_size
        dummy = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
        for _ in range(iterations):
            self.infer(dummy)

    def describe(self) -> str:
        return f"{self.name} {self.precision} at {self.input_size[1]}x{self.input_size[0]}"

    def close(self) -> None:
        """Releases sessions and device memory."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
