"""Time per frame and label agreement of pydensecrf and ConvCRF at CamVid's 480x360.

    .venv/bin/python tools/bench_crf.py --frames 3 [--device cuda] [--threads 1]

Two kinds of input, on the same CamVid val frames:

- ``model``: the model's own probabilities. Without trained weights (the warning says so)
  these are a random network's and the agreement says little about real use.
- ``coarse truth``: the ground truth made into what a weak network would say (shifted 3 px,
  blurred, at 1/4 size, noisy), so the CRF has real edges to find and mIoU means something.

Each ConvCRF row gives its agreement with pydensecrf (fraction of equal labels) and the mIoU
of its labels against the truth. Not a test: numbers depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from streamseg.backends import BackendOptions, create_backend
from streamseg.classes import NUM_CLASSES
from streamseg.data.camvid import list_split, read_labels, read_rgb
from streamseg.errors import StreamsegError
from streamseg.eval.confusion import ConfusionMatrix
from streamseg.observability.logs import configure_logging
from streamseg.models import load_model
from streamseg.models.registry import MODELS
from streamseg.image.preprocessing import to_model_input
from streamseg.refine.conv_crf import ConvCRFRefiner
from streamseg.refine.dense_crf import DenseCRFRefiner
from streamseg.stages.labels import logits_to_labels
from streamseg.stages.refine import softmax

DEFAULT_CAMVID = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "camvid"
MODEL_INPUT = (360, 480)


@dataclass
class Case:
    image: np.ndarray
    truth: np.ndarray
    probabilities: np.ndarray


def coarse_truth(truth: np.ndarray, seed: int) -> np.ndarray:
    """The truth's one-hot shifted by 3 px, at 1/4 size, blurred and noisy: (C, H/4, W/4) float32."""
    height, width = truth.shape
    onehot = (truth[..., None] == np.arange(NUM_CLASSES)).astype(np.float32)  # 'unlabelled' is all zeros
    onehot = np.roll(onehot, (3, 3), axis=(0, 1))
    small = cv2.GaussianBlur(cv2.resize(onehot, (width // 4, height // 4), interpolation=cv2.INTER_LINEAR), (0, 0), 1.0)
    logits = np.log(0.8 * small + 0.2 / NUM_CLASSES) + np.random.default_rng(seed).normal(0, 0.3, small.shape)
    return softmax(np.ascontiguousarray(logits.transpose(2, 0, 1), dtype=np.float32))


def timed(refiner, cases: list[Case]) -> tuple[list[np.ndarray], float]:
    """Labels for every case and the median seconds per frame (after one untimed warm-up)."""
    refiner.refine(cases[0].image, cases[0].probabilities)
    labels, seconds = [], []
    for case in cases:
        started = time.perf_counter()
        labels.append(refiner.refine(case.image, case.probabilities))
        seconds.append(time.perf_counter() - started)
    return labels, statistics.median(seconds)


def miou(cases: list[Case], labels: list[np.ndarray]) -> float:
    confusion = ConfusionMatrix()
    for case, predicted in zip(cases, labels):
        confusion.update(case.truth, predicted)
    return confusion.mean_iou()


def report(title: str, cases: list[Case], conv_refiners: list[tuple[str, ConvCRFRefiner]]) -> None:
    raw = [logits_to_labels(case.probabilities, case.truth.shape) for case in cases]
    dense_labels, dense_seconds = timed(DenseCRFRefiner(), cases)
    print(f"\n{title} ({len(cases)} frames, {cases[0].image.shape[1]}x{cases[0].image.shape[0]})")
    print(f"{'method':<34} {'ms/frame':>9} {'agree w/ dense':>15} {'mIoU':>6}")
    print(f"{'network argmax (no CRF)':<34} {'-':>9} {_agreement(raw, dense_labels):15.3f} {100 * miou(cases, raw):6.2f}")
    print(f"{'pydensecrf, 5 iterations':<34} {1000 * dense_seconds:9.1f} {1.0:15.3f} {100 * miou(cases, dense_labels):6.2f}")
    for name, refiner in conv_refiners:
        labels, seconds = timed(refiner, cases)
        print(f"{name:<34} {1000 * seconds:9.1f} {_agreement(labels, dense_labels):15.3f} {100 * miou(cases, labels):6.2f}")


def _agreement(first: list[np.ndarray], second: list[np.ndarray]) -> float:
    return float(np.mean([np.mean(a == b) for a, b in zip(first, second)]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="erfnet", choices=MODELS.names())
    parser.add_argument("--weights", type=Path, help="a state dict instead of the bundled weights")
    parser.add_argument("--data", type=Path, default=DEFAULT_CAMVID, help="CamVid root (default ../shared/data/camvid)")
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="ConvCRF's torch device: cpu or cuda")
    parser.add_argument("--threads", type=int, default=0, help="torch threads for ConvCRF on the CPU (0: torch's default)")
    args = parser.parse_args(argv)
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    try:
        samples = list_split(args.data, "val")[: args.frames]
        model, origin = load_model(args.model, args.weights)
        images = [read_rgb(sample.image_path) for sample in samples]
        truths = [read_labels(sample.label_path) for sample in samples]
        with create_backend("torch", model, MODEL_INPUT, "fp32", BackendOptions()) as backend:
            model_cases = [
                Case(image, truth, softmax(backend.infer(to_model_input(image, MODEL_INPUT))[0]))
                for image, truth in zip(images, truths)
            ]
        coarse_cases = [Case(image, truth, coarse_truth(truth, seed)) for seed, (image, truth) in enumerate(zip(images, truths))]
        conv = [
            (f"ConvCRF {window}x{window}, blur {blur}, {args.device}",
             ConvCRFRefiner(window=window, blur=blur, device=args.device))
            for window, blur in ((7, 1), (11, 1), (11, 2), (11, 4))
        ]
    except (StreamsegError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"torch threads {torch.get_num_threads()}, model {args.model} ({origin} weights)")
    report(f"model probabilities ({origin} weights)", model_cases, conv)
    report("coarse truth", coarse_cases, conv)
    return 0


if __name__ == "__main__":
    configure_logging()  # the library's diagnostics (engine builds, warnings) as the CLI shows them
    sys.exit(main())
