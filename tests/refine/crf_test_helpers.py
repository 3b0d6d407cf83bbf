"""Inputs and stand-in refiners shared by the CRF tests (a module, so that spawned workers can import it)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cv2
import numpy as np

from streamseg.classes import NUM_CLASSES
from streamseg.eval.confusion import ConfusionMatrix
from streamseg.sources.demo import DemoSource

SHM = Path("/dev/shm")


def demo_frames(count: int, width: int = 240, height: int = 135):
    """The first ``count`` frames of the synthetic street, each with exact ``truth``."""
    return list(DemoSource(width=width, height=height, frames=count))


def coarse_probabilities(
    truth: np.ndarray, *, shift: int = 3, factor: int = 4, noise: float = 0.3, seed: int = 0
) -> np.ndarray:
    """What a weak network would say: the truth's one-hot shifted by ``shift`` px, blurred, at 1/``factor`` size, noisy.

    Returns float32 (NUM_CLASSES, H/factor, W/factor) probabilities whose boundaries sit a
    few pixels away from the image edges.
    """
    height, width = truth.shape
    onehot = (truth[None] == np.arange(NUM_CLASSES)[:, None, None]).astype(np.float32)
    onehot = np.roll(onehot, (shift, shift), axis=(1, 2))
    hwc = np.ascontiguousarray(onehot.transpose(1, 2, 0))
    small = cv2.resize(hwc, (width // factor, height // factor), interpolation=cv2.INTER_LINEAR)
    small = cv2.GaussianBlur(small, (0, 0), 1.0)
    logits = np.log(0.8 * small + 0.2 / NUM_CLASSES) + np.random.default_rng(seed).normal(0, noise, small.shape)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=2, keepdims=True)
    return np.ascontiguousarray(probabilities.transpose(2, 0, 1), dtype=np.float32)


def upsampled_argmax(probabilities: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    height, width = size
    return cv2.resize(probabilities.argmax(axis=0).astype(np.uint8), (width, height), interpolation=cv2.INTER_NEAREST)


def mean_iou(truth: np.ndarray, labels: np.ndarray) -> float:
    confusion = ConfusionMatrix()
    confusion.update(truth, labels)
    return confusion.mean_iou()


def shm_entries() -> set[str]:
    return set(os.listdir(SHM))


class ArgmaxRefiner:
    """Stands in for a CRF: the argmax of the probabilities at image size. Fast and predictable."""

    def refine(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        return upsampled_argmax(probabilities, image.shape[:2])


class BusyRefiner(ArgmaxRefiner):
    """An argmax that first spins the CPU for ``cpu_seconds``, like a CRF does."""

    def __init__(self, cpu_seconds: float) -> None:
        self.cpu_seconds = cpu_seconds

    def refine(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        started = time.process_time()
        while time.process_time() - started < self.cpu_seconds:
            pass
        return super().refine(image, probabilities)


class GatedRefiner(ArgmaxRefiner):
    """Holds each frame until the test opens its gate, so a test decides when workers are busy.

    A frame's gate is the file ``gates / str(image[0, 0, 0])``: tests mark frames through
    their first pixel. The pool's 8x8 start-up check passes straight through. With
    ``shift_left`` every class edge moves one pixel left, so the result is easy to recognise.
    """

    def __init__(self, gates: Path, *, shift_left: bool = False, limit_s: float = 60.0) -> None:
        self.gates = gates
        self.shift_left = shift_left
        self.limit_s = limit_s

    def refine(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        if image.shape[0] > 8:
            gate = self.gates / str(int(image[0, 0, 0]))
            give_up = time.monotonic() + self.limit_s
            while not gate.exists() and time.monotonic() < give_up:
                time.sleep(0.005)
        labels = super().refine(image, probabilities)
        if self.shift_left:
            labels = np.concatenate([labels[:, 1:], labels[:, -1:]], axis=1)
        return labels


class SureGatedRefiner(GatedRefiner):
    """A ``GatedRefiner`` whose results come with a confidence: ``sure`` (uint8) at every pixel of the probabilities' grid."""

    def __init__(self, gates: Path, *, sure: int = 200, **options) -> None:
        super().__init__(gates, **options)
        self.sure = sure

    def refine_with_confidence(self, image: np.ndarray, probabilities: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.refine(image, probabilities), np.full(probabilities.shape[1:], self.sure, np.uint8)


def open_gate(gates: Path, key: int) -> None:
    (gates / str(key)).touch()


class BrokenRefiner:
    """Fails on everything, as a refiner whose library is missing would."""

    def refine(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        raise ImportError("no module named pydensecrf (simulated)")
