"""Torch on an NVIDIA GPU: fp32 or fp16, channels-last, the whole forward replayed as one CUDA graph.

A segmentation network at video frame rates launches hundreds of small kernels per frame; from
Python, launching them costs more than running them. So after a few warm-up passes (which also
let cuDNN pick its fastest convolution algorithms for the fixed input shape) the forward is
captured once into a CUDA graph on a static input buffer, and every call afterwards copies the
frame into that buffer and replays the graph: one launch per frame. Copies between host and GPU
go through pinned (page-locked) buffers so that they run asynchronously on the backend's stream.

``infer`` keeps the common interface (float32 batch in, float32 logits out). ``infer_labels`` is
the fast path for a GPU pipeline: uint8 frames go up, resizing, scaling, argmax and label
resizing run on the GPU (``gpu_postprocess``), and class ids come back (uint8 up to 255 classes,
uint16 beyond).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from typing import Callable, Iterator

import numpy as np
import torch
from torch import nn

from streamseg.backends.base import Backend
from streamseg.backends.gpu_postprocess import (
    AreaResizer,
    labels_on_gpu,
    preprocess_on_gpu,
)
from streamseg.errors import ConfigError
from streamseg.options import BackendOptions

NO_CUDA_REASON = "no CUDA device (torch.cuda.is_available() is False)"
# Warm-up passes before capture: the first runs cuDNN's algorithm search and grows the allocator's pools.
DEFAULT_WARM_UP_PASSES = 3


def cuda_device(name: str) -> torch.device:
    """The CUDA device ``name`` means ("cuda", "cuda:1"; anything else, such as the default "cpu", means the current GPU), with its index filled in."""
    device = torch.device(name) if name.startswith("cuda") else torch.device("cuda")
    index = device.index if device.index is not None else torch.cuda.current_device()
    if index >= torch.cuda.device_count():
        raise ConfigError(f"there is no CUDA device {index}; this machine has {torch.cuda.device_count()}")
    return torch.device("cuda", index)


@contextmanager
def cudnn_autotuning() -> Iterator[None]:
    """Lets cuDNN benchmark its convolution algorithms for the shapes seen inside, then restores the caller's setting.

    The choice is cached per shape, and a captured graph keeps the kernels chosen at capture,
    so the process-wide flag only needs to be on while warming up and capturing.
    """
    previous = torch.backends.cudnn.benchmark
    torch.backends.cudnn.benchmark = True
    try:
        yield
    finally:
        torch.backends.cudnn.benchmark = previous


class StaticForward:
    """The forward at one batch size on fixed buffers: a device input, the forward's output, and pinned host copies of both.

    With ``graphed`` the forward is captured into a CUDA graph and ``run`` replays it; without,
    ``run`` calls the model eagerly on the same buffers (for comparison and debugging). Either way
    ``run`` must be called on ``stream``, and the output tensor is overwritten by the next run.
    """

    def __init__(
        self,
        forward: Callable[[torch.Tensor], torch.Tensor],
        input_shape: tuple[int, ...],
        device: torch.device,
        stream: torch.cuda.Stream,
        *,
        graphed: bool,
        warm_up_passes: int = DEFAULT_WARM_UP_PASSES,
    ) -> None:
        self._forward = forward
        self.graph: torch.cuda.CUDAGraph | None = None
        self.input = torch.zeros(input_shape, dtype=torch.float32, device=device)
        # The side stream must see the zeroed input; warm-up and capture both run on it.
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.no_grad(), cudnn_autotuning(), torch.cuda.stream(stream):
            for _ in range(max(1, warm_up_passes)):
                self.output = forward(self.input)
            if graphed:
                self.graph = torch.cuda.CUDAGraph()
                # Capture on the warm-up stream, where the cuDNN/cuBLAS handles already exist.
                # "thread_local": CUDA calls from other pipeline threads (a pinned copy, say) do not
                # invalidate this capture; only this thread must avoid unsafe calls while capturing.
                with torch.cuda.graph(self.graph, stream=stream, capture_error_mode="thread_local"):
                    self.output = forward(self.input)
        stream.synchronize()
        # Pinned after capture: allocating page-locked memory during a capture is not allowed.
        self.host_input = torch.empty(input_shape, dtype=torch.float32, pin_memory=True)
        self.host_output = torch.empty(tuple(self.output.shape), dtype=torch.float32, pin_memory=True)

    def run(self) -> torch.Tensor:
        """Computes the output for what ``input`` holds now (on the current stream) and returns the output tensor."""
        if self.graph is not None:
            self.graph.replay()
            return self.output
        with torch.no_grad(), cudnn_autotuning():
            self.output = self._forward(self.input)
        return self.output


class CudaBackend(Backend):
    """Torch on a CUDA GPU in ``fp32`` (TF32 convolutions, torch's default) or ``fp16``, replaying a CUDA graph per batch size.

    ``cuda_graphs=False`` (or ``options.cuda_graphs``) runs the same model eagerly (slower; for comparison). The model is
    copied, so the caller's module stays where it was. Not thread-safe: one caller at a time,
    as the pipeline's inference stage calls it.
    """

    name = "cuda"
    precisions = ("fp32", "fp16")
    resizes_on_device = True  # infer_labels takes whole frames and resizes them on the GPU

    def __init__(
        self,
        model: nn.Module,
        input_size: tuple[int, int],
        precision: str,
        options: BackendOptions,
        *,
        cuda_graphs: bool | None = None,
        warm_up_passes: int = DEFAULT_WARM_UP_PASSES,
    ) -> None:
        super().__init__(input_size, precision, options.concurrent_calls)
        if (reason := self.unavailable_reason()) is not None:
            raise ConfigError(f"backend cuda cannot run here: {reason}")
        self.cuda_graphs = options.cuda_graphs if cuda_graphs is None else cuda_graphs
        self.device = cuda_device(options.device)
        self._dtype = torch.float16 if precision == "fp16" else torch.float32
        self._warm_up_passes = warm_up_passes
        with torch.cuda.device(self.device):
            # Batch norm in half precision is accurate enough in eval mode (running statistics only).
            self.model = copy.deepcopy(model).eval().to(self.device, dtype=self._dtype, memory_format=torch.channels_last)
            self._stream = torch.cuda.Stream(self.device)
        self._forwards: dict[int, StaticForward] = {}
        self._pinned: dict[tuple[tuple[int, ...], torch.dtype], torch.Tensor] = {}
        self._resizer = AreaResizer(self.device)

    @classmethod
    def unavailable_reason(cls) -> str | None:
        return None if torch.cuda.is_available() else NO_CUDA_REASON

    @classmethod
    def auto_precision(cls, model, input_size, options) -> str:
        return "fp16"

    def describe(self) -> str:
        graphs = "CUDA graphs" if self.cuda_graphs else "eager"
        return f"{super().describe()} on {torch.cuda.get_device_name(self.device)} ({graphs})"

    def _forward(self, batch: torch.Tensor) -> torch.Tensor:
        """float32 (N, 3, H, W) on the GPU -> float32 logits; the casts are part of the captured graph."""
        logits = self.model(batch.to(self._dtype).contiguous(memory_format=torch.channels_last))
        return logits.float()

    def _static_forward(self, batch_size: int) -> StaticForward:
        """The captured forward for ``batch_size``, captured on first use (each batch size has its own graph and buffers).

        A capture takes the warm-up passes and cuDNN's algorithm search for that shape, so a
        batcher's sizes are best captured before the first frames: ``warm_up(batch_sizes=...)``.
        """
        if batch_size not in self._forwards:
            height, width = self.input_size
            with torch.cuda.device(self.device):
                self._forwards[batch_size] = StaticForward(
                    self._forward,
                    (batch_size, 3, height, width),
                    self.device,
                    self._stream,
                    graphed=self.cuda_graphs,
                    warm_up_passes=self._warm_up_passes,
                )
        return self._forwards[batch_size]

    def _pinned_buffer(self, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
        """A page-locked host buffer of ``shape``, kept for reuse: frames of one source all have one size."""
        key = (tuple(shape), dtype)
        if key not in self._pinned:
            self._pinned[key] = torch.empty(shape, dtype=dtype, pin_memory=True)
        return self._pinned[key]

    def _check_model_input(self, batch: np.ndarray) -> None:
        if batch.ndim != 4 or batch.shape[1] != 3 or tuple(batch.shape[2:]) != tuple(self.input_size):
            height, width = self.input_size
            raise ValueError(f"expected a batch shaped (N, 3, {height}, {width}), not {batch.shape}")

    def infer(self, batch: np.ndarray) -> np.ndarray:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        self._check_model_input(batch)
        forward = self._static_forward(len(batch))
        forward.host_input.numpy()[...] = batch
        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            forward.input.copy_(forward.host_input, non_blocking=True)
            logits = forward.run()
            forward.host_output.copy_(logits, non_blocking=True)
        self._stream.synchronize()
        # The pinned buffer is reused by the next call; the caller gets its own array.
        return forward.host_output.numpy().copy()

    def device_seconds_per_batch(self, batch_size: int, iterations: int = 50) -> float:
        """Mean GPU time of one forward at ``batch_size`` with input and output staying on the GPU (CUDA events).

        The model-only cost, without host copies or Python in the way: for benchmarks.
        """
        forward = self._static_forward(batch_size)
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            forward.run()  # untimed: the first replay after capture uploads the graph
            start.record(self._stream)
            for _ in range(iterations):
                forward.run()
            end.record(self._stream)
        end.synchronize()
        return start.elapsed_time(end) / 1000.0 / iterations

    def infer_labels(self, frames: np.ndarray, out_size: tuple[int, int] | None = None) -> np.ndarray:
        """Segments frames with pre- and post-processing on the GPU: -> class ids (N, H', W'), uint8 up to 255 classes, else uint16.

        ``frames`` is either RGB uint8 images, (H, W, 3) or (N, H, W, 3) of any size (resized on
        the GPU exactly like ``PreprocessStage``), or a float32 model input (N, 3, h, w) at
        ``input_size``. The labels are resized like ``LabelStage`` to ``out_size`` (H', W'),
        by default the images' own size (for float input: ``input_size``). Only uint8 frames and the
        class ids cross the bus; ``assemble`` makes this one call per frame (``LabelInferenceStage``) replace the
        preprocess, inference and label stages when nothing after the network reads its scores.
        """
        frames = np.asarray(frames)
        uint8_images = frames.dtype == np.uint8
        if uint8_images:
            frames = np.ascontiguousarray(frames[None] if frames.ndim == 3 else frames)
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise ValueError(f"expected RGB uint8 frames shaped (H, W, 3) or (N, H, W, 3), not {frames.shape}")
            out_size = out_size or (frames.shape[1], frames.shape[2])
        else:
            frames = np.ascontiguousarray(frames, dtype=np.float32)
            self._check_model_input(frames)
            out_size = out_size or tuple(self.input_size)
        forward = self._static_forward(len(frames))
        staging = self._pinned_buffer(frames.shape, torch.uint8 if uint8_images else torch.float32)
        staging.numpy()[...] = frames
        with torch.cuda.device(self.device), torch.cuda.stream(self._stream):
            if uint8_images:
                images = staging.to(self.device, non_blocking=True)
                forward.input.copy_(preprocess_on_gpu(images, self.input_size, self._resizer))
            else:
                forward.input.copy_(staging, non_blocking=True)
            labels = labels_on_gpu(forward.run(), out_size)
            host_labels = self._pinned_buffer(tuple(labels.shape), labels.dtype)
            host_labels.copy_(labels, non_blocking=True)
        self._stream.synchronize()
        return host_labels.numpy().copy()

    def close(self) -> None:
        """Drops the graphs, buffers and the model copy, returning their memory to torch's allocator."""
        if self._forwards or self._pinned:
            self._stream.synchronize()
        self._forwards.clear()
        self._pinned.clear()
        self._resizer = AreaResizer(self.device)
        self.model = None
