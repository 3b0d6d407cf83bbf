"""``streamseg eval``: a model through a backend on a CamVid split, single- or multi-scale.

Multi-scale inference follows Farabet et al.: the same network sees the frame at several
scales, and the class probabilities, resized back to the frame, are averaged.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from pathlib import Path

import cv2
import numpy as np

from streamseg.config import RunConfig, config_from_values
from streamseg.data.camvid import (
    check_labels,
    list_split,
    read_labels,
    read_rgb,
    select_drive,
)
from streamseg.errors import ConfigError
from streamseg.eval.confusion import ConfusionMatrix, EvaluationResult
from streamseg.pipeline.assemble import build_backend
from streamseg.plugins import Plugins
from streamseg.image.preprocessing import to_model_input
from streamseg.observability.progress import Progress
from streamseg.refine import CrfParameters, DenseCRFRefiner
from streamseg.image.scores import class_labels, softmax

log = logging.getLogger(__name__)

MAX_SCALE = 4.0  # CamVid at 4x is 3840x2880: beyond that a scale is a typo, not an experiment


class Predictor:
    """A model on a backend at one or more scales: frame in, class probabilities or labels out.

    The project's one multi-scale inference (``eval --scales``; tools/gpu_proof.py too). Backends run at
    fixed sizes, so each scale gets its own; ``close()`` releases them all.
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
            height, width = image_size
            for scale in scales:
                size = (max(8, round(height * scale)), max(8, round(width * scale)))
                # Built as a run builds its backend, from the same options: `auto` picks, and int8 uses the
                # shipped model, as `streamseg run` would at this size.
                backend, self.origin = build_backend(dataclasses.replace(config, input_size=size), plugins)
                self.backends.append(backend)
        except BaseException:
            self.close()
            raise

    def describe(self) -> str:
        # The first backend's own description says what it runs (the shipped int8 model, say); then every scale's size.
        first = self.backends[0].describe()
        scales = ", ".join(f"{b.input_size[1]}x{b.input_size[0]}" for b in self.backends)
        crf = ", CRF" if self.refiner is not None else ""
        return f"{first}{f'; scales at {scales}' if len(self.backends) > 1 else ''}{crf} ({self.origin} weights)"

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Class probabilities (C, H, W) at the image's size, averaged over the scales."""
        height, width = image.shape[:2]
        total = None
        for runner in self.backends:
            logits = runner.infer(to_model_input(image, runner.input_size))[0]
            if logits.shape[1:] != (height, width):
                logits = cv2.resize(logits.transpose(1, 2, 0), (width, height), interpolation=cv2.INTER_LINEAR).transpose(2, 0, 1)
            probabilities = softmax(logits)
            total = probabilities if total is None else total + probabilities
        return total / len(self.backends)

    def labels(self, image: np.ndarray) -> np.ndarray:
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


def evaluate_camvid(
    data_dir: Path,
    *,
    split: str = "val",
    model: str = "erfnet",
    weights: Path | None = None,
    backend: str = "torch",
    precision: str = "fp32",
    scales: tuple[float, ...] = (1.0,),
    crf: CrfParameters | None = None,
    max_frames: int | None = None,
    hold_out_drive: str | None = None,
    calibration_data: Path | None = None,
) -> EvaluationResult:
    """mIoU, per-class IoU and pixel accuracy of a model on a CamVid split; ``crf`` refines every frame (sync).

    ``hold_out_drive`` scores that drive's frames of ``split`` instead (train+val for the cross-drive fold).
    """
    if max_frames is not None and max_frames < 1:
        raise ConfigError(f"max_frames must be at least 1, not {max_frames}")
    samples = list_split(data_dir, split)
    if hold_out_drive is not None:
        samples = select_drive(samples, hold_out_drive, keep=True)
        split = f"{split} drive {hold_out_drive}"
    samples = samples[:max_frames]
    image_size = read_labels(samples[0].label_path).shape
    refiner = DenseCRFRefiner.from_parameters(crf) if crf is not None else None
    config = config_from_values({
        "model": model, "weights": weights, "backend": backend, "precision": precision,
        "calibration_data": calibration_data,
    })
    with Predictor(config, scales, image_size, refiner) as predictor:
        log.info("evaluating %s on %d %s frames: %s", model, len(samples), split, predictor.describe())
        confusion = ConfusionMatrix()
        with Progress(len(samples), "frames") as progress:
            for index, sample in enumerate(samples):
                image = read_rgb(sample.image_path)
                truth = check_labels(read_labels(sample.label_path), image.shape, sample.label_path)
                confusion.update(truth, predictor.labels(image))
                progress.update(index + 1)
    return EvaluationResult.from_confusion(confusion, len(samples))
