"""The one interface every inference backend implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from streamseg.errors import ConfigError
from streamseg.image.preprocessing import images_to_batch
from streamseg.image.resize import resize_labels, resize_rgb
from streamseg.image.confidence import UNCALIBRATED, Calibration, confidence_map, top_two
from streamseg.image.scores import class_labels
from streamseg.label_sets import CAMVID, LabelSet

if TYPE_CHECKING:
    from torch import nn

    from streamseg.options import BackendOptions


class Backend(ABC):
    """Runs a segmentation model: ``infer(batch) -> logits``.

    ``batch`` is float32 (N, 3, H, W), RGB in [0, 1], with (H, W) equal to ``input_size``;
    the result is float32 logits (N, C, H, W). Normalisation is part of the model. Every backend
    takes N frames (from several cameras, say) in one call, and a single frame as fast as a
    backend made for single frames only; most run the N in one call of their engine (OpenVINO,
    on a CPU, runs them one by one, which is faster there: see its module). What batches need is made on first use (a
    session or compiled model with a free batch, a CUDA graph per batch size); ``warm_up`` can
    make it ahead of time.

    ``concurrent_calls`` is how many ``infer`` calls may run at once, from as many threads, each
    on its share of the cores. One call at a time gives the lowest latency per frame; on a CPU
    with few cores, two concurrent calls of one thread each give more frames per second, because
    one call's thread waiting (or preempted by the pipeline's other threads) does not stall the other's.
    """

    name: str  # short, for metrics and messages: "torch", "onnxruntime", ...
    precision: str  # "fp32", "bf16", "fp16", "int8"
    precisions: tuple[str, ...] = ("fp32",)
    max_concurrent_calls: int | None = 1  # concurrent infer() calls this backend supports; None: any number
    # True where infer_labels resizes frames on the device: the pipeline then hands it full frames.
    resizes_on_device: bool = False
    # False for a backend whose tests have never passed on hardware that can run it: ``auto`` passes
    # it over, so a machine that merely has its library installed does not run untried code by
    # default; ``--backend NAME`` still chooses it.
    proven: bool = True
    # What the model's class ids mean: CamVid's classes for the built-in networks; a model file's own set.
    label_set: LabelSet = CAMVID
    # Whether it runs a model file (streamseg.modelfile), wrapped to take and give what ``infer`` does.
    runs_model_files: bool = False
    # True when its model gives class ids only, so its scores are those ids one-hot: there is nothing for a CRF to refine.
    scores_from_class_ids: bool = False
    # The model's confidence calibration (streamseg.image.confidence): its temperature and alert level.
    calibration: Calibration = UNCALIBRATED

    @classmethod
    def unavailable_reason(cls) -> str | None:
        """None when this backend can run here, else why not."""
        return None

    @classmethod
    def auto_precision(cls, model: nn.Module, input_size: tuple[int, int], options: BackendOptions) -> str:
        """The precision ``--precision auto`` means for ``model``: the fastest that keeps parity on this machine."""
        return "fp32"

    def __init__(self, input_size: tuple[int, int], precision: str, concurrent_calls: int = 1) -> None:
        if precision not in self.precisions:
            raise ConfigError(f"{self.name} backend supports precision {', '.join(self.precisions)}, not {precision!r}")
        if concurrent_calls < 1:
            raise ConfigError(f"concurrent calls must be at least 1, not {concurrent_calls}")
        if self.max_concurrent_calls is not None and concurrent_calls > self.max_concurrent_calls:
            raise ConfigError(
                f"{self.name} backend runs at most {self.max_concurrent_calls} call(s) at once, not {concurrent_calls}"
            )
        self.input_size = input_size  # (height, width)
        self.precision = precision
        self.concurrent_calls = concurrent_calls

    @abstractmethod
    def infer(self, batch: np.ndarray) -> np.ndarray: ...

    def infer_labels(self, images: np.ndarray, out_size: tuple[int, int] | None = None) -> np.ndarray:
        """Segments RGB uint8 images (N, H, W, 3) of any size: -> class ids (N, H', W'), uint8 up to 255 classes, else uint16.

        The images are resized to ``input_size`` as the preprocess stage does, and the class
        ids back to ``out_size`` (H', W'), by default the images' own size, as the label stage
        does; ``model_labels`` runs in between. For pipelines where no stage needs the scores.
        """
        images = np.asarray(images)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise ValueError(f"expected RGB uint8 images shaped (N, H, W, 3), not {images.dtype} {images.shape}")
        out_size = tuple(out_size or images.shape[1:3])
        if images.shape[1:3] != tuple(self.input_size):  # the pipeline's preprocess stage has resized them already
            images = np.stack([resize_rgb(image, self.input_size) for image in images])
        labels = self.model_labels(images)
        if labels.shape[1:] == out_size:
            return labels
        return np.stack([resize_labels(one, out_size) for one in labels])

    def model_labels(self, images: np.ndarray) -> np.ndarray:
        """RGB uint8 images (N, h, w, 3) at ``input_size`` -> class ids (N, h, w): uint8 up to 255 classes, else uint16
        (``label_sets.label_dtype``).

        Here: scaled to float on the host, ``infer``, and the argmax on the host. A backend
        whose engine can take uint8 and give class ids overrides this, sparing both float copies.
        """
        return np.stack([class_labels(logits) for logits in self.infer(images_to_batch(images))])

    def infer_labels_with_confidence(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """RGB uint8 images (N, H, W, 3) of any size -> class ids and confidence (N, h, w) at the network's grid."""
        images = np.asarray(images)
        if images.shape[1:3] != tuple(self.input_size):
            images = np.stack([resize_rgb(image, self.input_size) for image in images])
        return self.model_labels_with_confidence(images)

    def model_labels_with_confidence(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``model_labels`` and each pixel's confidence under the model's calibration (uint8, ``streamseg.image.confidence``).

        Here from the scores on the host; OpenVINO takes the top 2 in its fused graph instead.
        """
        results = [top_two(logits) for logits in self.infer(images_to_batch(images))]
        return np.stack([labels for labels, _ in results]), np.stack([confidence_map(margin, self.calibration) for _, margin in results])

    def warm_up(self, iterations: int = 2, batch_sizes: Sequence[int] = (1,)) -> None:
        """Runs a few inferences at each of ``batch_sizes``, so that one-off costs (compiling or capturing a size) stay out of the first frames' latency."""
        height, width = self.input_size
        for batch_size in batch_sizes:
            dummy = np.random.default_rng(0).random((batch_size, 3, height, width), dtype=np.float32)
            for _ in range(iterations):
                self.infer(dummy)

    def describe(self) -> str:
        calls = f", {self.concurrent_calls} concurrent calls" if self.concurrent_calls > 1 else ""
        return f"{self.name} {self.precision} at {self.input_size[1]}x{self.input_size[0]}{calls}"

    def close(self) -> None:
        """Releases sessions and device memory."""

    def __enter__(self) -> "Backend":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def threads_per_call(threads: int, concurrent_calls: int, cores: int) -> int:
    """Each concurrent call's share of ``threads`` (0: one per physical core, ``cores``), at least one."""
    return max(1, (threads or cores) // concurrent_calls)
