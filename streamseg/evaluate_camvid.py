"""``streamseg eval``: a model through a backend on a CamVid split, single- or multi-scale.

Multi-scale inference follows Farabet et al.: the same network sees the frame at several
scales, and the class probabilities, resized back to the frame, are averaged.
"""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np

from streamseg.backends import BackendOptions, create_backend
from streamseg.data.camvid import list_split, read_labels, read_rgb
from streamseg.errors import InputError
from streamseg.evaluation import ConfusionMatrix, EvaluationResult
from streamseg.models import load_model
from streamseg.stages.preprocess import to_model_input


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=0, keepdims=True))
    return shifted / shifted.sum(axis=0, keepdims=True)


def evaluate_camvid(
    data_dir: Path,
    *,
    split: str = "val",
    model: str = "erfnet",
    weights: Path | None = None,
    backend: str = "torch",
    precision: str = "fp32",
    scales: tuple[float, ...] = (1.0,),
    max_frames: int | None = None,
    log=sys.stderr,
) -> EvaluationResult:
    samples = list_split(data_dir, split)[:max_frames]
    if not scales or any(s <= 0 for s in scales):
        raise InputError("scales must be positive numbers")
    height, width = read_labels(samples[0].label_path).shape
    network, origin = load_model(model, weights)
    options = BackendOptions(calibration_data=data_dir.parent if split != "train" else data_dir, model_name=model)
    backends = []
    try:
        for scale in scales:
            size = (max(8, round(height * scale)), max(8, round(width * scale)))
            backends.append(create_backend(backend, network, size, precision, options))
        print(f"evaluating {model} ({origin} weights) on {len(samples)} {split} frames, "
              f"{backends[0].describe()}, scales {', '.join(map(str, scales))}", file=log)
        confusion = ConfusionMatrix()
        for index, sample in enumerate(samples):
            image, truth = read_rgb(sample.image_path), read_labels(sample.label_path)
            scores = None
            for runner in backends:
                logits = runner.infer(to_model_input(image, runner.input_size))[0]
                if len(backends) == 1:
                    scores = logits  # the argmax of logits is the argmax of their softmax
                    break
                resized = cv2.resize(logits.transpose(1, 2, 0), (width, height), interpolation=cv2.INTER_LINEAR)
                probabilities = softmax(resized.transpose(2, 0, 1))
                scores = probabilities if scores is None else scores + probabilities
            prediction = scores.argmax(axis=0)
            if prediction.shape != truth.shape:
                prediction = cv2.resize(prediction.astype(np.uint8), (truth.shape[1], truth.shape[0]), interpolation=cv2.INTER_NEAREST)
            confusion.update(truth, prediction)
            print(f"\r{index + 1}/{len(samples)} frames", end="", file=log, flush=True)
        print(file=log)
    finally:
        for runner in backends:
            runner.close()
    return EvaluationResult.from_confusion(confusion, len(samples))
