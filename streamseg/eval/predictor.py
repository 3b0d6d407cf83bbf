"""A model on a backend at one or more scales: the project's one multi-scale inference.

Multi-scale inference follows Farabet et al.: the same network sees the frame at several
scales, and the class probabilities, resized back to the frame, are averaged.
"""

from __future__ import annotations

import dataclasses
import math

import cv2
import numpy as np

from streamseg.config import RunConfig
from streamseg.errors import ConfigError
from streamseg.image.preprocessing import to_model_input
from streamseg.image.scores import class_labels, softmax
from streamseg.label_sets import LabelSet
from streamseg.modelfile import is_model_file
from streamseg.pipeline.assemble import build_backend
from streamseg.plugins import Plugins
from streamseg.refine import DenseCRFRefiner

MAX_SCALE = 4.0  # CamVid at 4x is 3840x2880: beyond that a scale is a typo, not an experiment
RESIZE_CHANNELS = 128  # OpenCV 5 resizes at most this many channels in one call (4.x: 512)


class Predictor:
    """A model on a backend at one or more scales: frame in, class probabilities or labels out.

    Used by ``eval --scales`` and tools/gpu_proof.py. Backends run at fixed sizes, so each scale
    gets its own; ``close()`` releases them all.
    """

    def __init__(
        self, config: RunConfig, scales: tuple[float, ...], image_size: tuple[int, int],
        refiner: DenseCRFRefiner | None = None, *, plugins: Plugins | None = None,
    ) -> None:
        if not scales or not all(math.isfinite(s) and 0 < s <= MAX_SCALE for s in scales):
            raise ConfigError(f"scales must be numbers in (0, {MAX_SCALE:g}], not {', '.join(f'{s:g}' for s in scales)}")
        plugins = plugins or Plugins()  # the same models and backends a run can use, plugins' included
        self.image_size = image_size
        self.refiner = refiner
        self.backends = []
        try:
            for size in input_sizes(config, scales, image_size):
                # Built as a run builds its backend, from the same options: `auto` picks, and int8 uses the
                # shipped model, as `streamseg run` would at this size.
                backend, self.origin = build_backend(dataclasses.replace(config, input_size=size), plugins)
                self.backends.append(backend)
                if refiner is not None and backend.scores_from_class_ids:
                    raise ConfigError(f"--crf refines class scores, and {config.model} gives class ids only; use --crf off")
        except BaseException:
            self.close()
            raise

    @property
    def label_set(self) -> LabelSet:
        """What the model's class ids mean (every scale runs the same model)."""
        return self.backends[0].label_set

    def describe(self) -> str:
        # The first backend's own description says what it runs (the shipped int8 model, say); then every scale's size.
        first = self.backends[0].describe()
        scales = ", ".join(f"{b.input_size[1]}x{b.input_size[0]}" for b in self.backends)
        crf = ", CRF" if self.refiner is not None else ""
        return f"{first}{f'; scales at {scales}' if len(self.backends) > 1 else ''}{crf} ({self.origin})"

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities (C, H, W) at the image's size, averaged over the scales."""
        height, width = image.shape[:2]
        total = None
        for runner in self.backends:
            logits = runner.infer(to_model_input(image, runner.input_size))[0]
            if logits.shape[1:] != (height, width):
                logits = resize_scores(logits, (height, width))
            probabilities = softmax(logits)
            total = probabilities if total is None else total + probabilities
        return total / len(self.backends)

    def labels(self, image: np.ndarray) -> np.ndarray:
        """Class ids (H, W) at the image's size: uint8, uint16 beyond 255 classes."""
        probabilities = self.probabilities(image)
        if self.refiner is not None:
            return self.refiner.refine(image, probabilities)
        return class_labels(probabilities)

    def close(self) -> None:
        for runner in self.backends:
            runner.close()

    def __enter__(self) -> "Predictor":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def input_sizes(config: RunConfig, scales: tuple[float, ...], image_size: tuple[int, int]) -> list[tuple[int, int] | None]:
    """The network's input size at each scale: ``--input-size`` (else the frames' size) times the scale.

    A model file without ``--input-size`` runs at its own size (None), so it takes one scale: its
    input is usually fixed, and a dynamic one's size is the user's to choose, as in a run.
    """
    base = config.input_size or (None if is_model_file(config.model) else image_size)
    if base is None:
        if tuple(scales) != (1.0,):
            raise ConfigError(
                f"{config.model} runs at its own input size; --scales needs --input-size WIDTHxHEIGHT (a model of dynamic size)"
            )
        return [None]
    height, width = base
    return [(max(8, round(height * scale)), max(8, round(width * scale))) for scale in scales]


def resize_scores(scores: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Scores (C, h, w) at ``size`` (H, W), bilinear, any number of classes."""
    height, width = size
    planes = scores.transpose(1, 2, 0)
    parts = [
        cv2.resize(np.ascontiguousarray(planes[:, :, first : first + RESIZE_CHANNELS]), (width, height), interpolation=cv2.INTER_LINEAR)
        for first in range(0, planes.shape[2], RESIZE_CHANNELS)
    ]
    # OpenCV drops the channel axis of a one-channel result
    parts = [part[:, :, None] if part.ndim == 2 else part for part in parts]
    resized = parts[0] if len(parts) == 1 else np.concatenate(parts, axis=2)
    return resized.transpose(2, 0, 1)
