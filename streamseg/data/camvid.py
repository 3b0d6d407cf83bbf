"""CamVid in the SegNet tutorial layout: ``<split>/`` frames and ``<split>annot/`` label maps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamseg.classes import IGNORE_INDEX
from streamseg.errors import InputError

SPLITS = ("train", "val", "test")


def read_rgb(path: Path) -> np.ndarray:
    """Reads an image file as RGB uint8 (H, W, 3); a clear error when it is missing or unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_labels(path: Path) -> np.ndarray:
    labels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if labels is None or labels.ndim != 2:
        raise InputError(f"cannot read label map {path} (expected a single-channel PNG)")
    return labels


def check_labels(labels: np.ndarray, image_shape: tuple[int, ...], path: Path) -> np.ndarray:
    """``labels`` if they fit their frame and hold only CamVid ids (0..10 classes, 11 unlabelled); else one line naming ``path``.

    Ids above 11 used to be ignored silently, which scored a model on part of the frame.
    """
    height, width = image_shape[:2]
    if labels.shape != (height, width):
        raise InputError(
            f"label map {path} is {labels.shape[1]}x{labels.shape[0]} but its frame is {width}x{height}"
        )
    if labels.size and int(labels.max()) > IGNORE_INDEX:
        ids = np.unique(labels[labels > IGNORE_INDEX])
        shown = ", ".join(str(i) for i in ids[:8]) + (", ..." if len(ids) > 8 else "")
        share = 100.0 * np.count_nonzero(labels > IGNORE_INDEX) / labels.size
        raise InputError(
            f"label map {path} holds ids {shown} ({share:.0f}% of its pixels); CamVid ids are 0..{IGNORE_INDEX - 1} "
            f"for classes and {IGNORE_INDEX} for unlabelled"
        )
    return labels


@dataclass(frozen=True)
class CamVidSample:
    image_path: Path
    label_path: Path


def list_split(root: Path | str, split: str) -> list[CamVidSample]:
    """Pairs of frame and label map for one split, sorted by name."""
    root = Path(root)
    if split not in SPLITS:
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    image_dir, label_dir = root / split, root / f"{split}annot"
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise InputError(f"{root} is not a CamVid folder: expected {image_dir} and {label_dir}")
    samples = [CamVidSample(p, label_dir / p.name) for p in sorted(image_dir.glob("*.png"))]
    missing = [s.label_path.name for s in samples if not s.label_path.exists()]
    if missing:
        raise InputError(f"{len(missing)} frames in {image_dir} have no label map, e.g. {missing[0]}")
    if not samples:
        raise InputError(f"no PNG frames in {image_dir}")
    return samples


@dataclass(frozen=True)
class Augmentation:
    """Training-time augmentation: random scale, crop, horizontal flip and colour jitter."""

    crop: tuple[int, int] = (360, 480)  # (height, width)
    scale_range: tuple[float, float] = (0.5, 1.5)
    jitter: float = 0.25

    def __call__(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        scale = rng.uniform(*self.scale_range)
        height, width = labels.shape
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
        labels = cv2.resize(labels, size, interpolation=cv2.INTER_NEAREST)
        image, labels = self._random_crop(image, labels, rng)
        if rng.random() < 0.5:
            image, labels = image[:, ::-1], labels[:, ::-1]
        image = image.astype(np.float32) / 255.0
        brightness, contrast, saturation = 1.0 + rng.uniform(-self.jitter, self.jitter, size=3)
        grey = image.mean(axis=2, keepdims=True)
        image = (image - grey) * saturation + grey
        image = (image - image.mean()) * contrast + image.mean() * brightness
        return np.clip(image, 0.0, 1.0).astype(np.float32), np.ascontiguousarray(labels)

    def _random_crop(self, image: np.ndarray, labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        crop_h, crop_w = self.crop
        height, width = labels.shape
        pad_h, pad_w = max(0, crop_h - height), max(0, crop_w - width)
        if pad_h or pad_w:
            image = cv2.copyMakeBorder(image, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=0)
            labels = cv2.copyMakeBorder(labels, 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=IGNORE_INDEX)
            height, width = labels.shape
        top = int(rng.integers(0, height - crop_h + 1))
        left = int(rng.integers(0, width - crop_w + 1))
        return image[top:top + crop_h, left:left + crop_w], labels[top:top + crop_h, left:left + crop_w]


class CamVid:
    """A CamVid split held in memory (the whole train split is ~190 MB as uint8), indexable like a torch data set."""

    def __init__(self, root: Path | str, split: str, augmentation: Augmentation | None = None, seed: int = 0) -> None:
        self.samples = list_split(root, split)
        self.images = [read_rgb(s.image_path) for s in self.samples]
        self.labels = [
            check_labels(read_labels(s.label_path), image.shape, s.label_path) for s, image in zip(self.samples, self.images)
        ]
        self.augmentation = augmentation
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns (image float32 CHW in [0, 1], labels int64 HW)."""
        image, labels = self.images[index], self.labels[index]
        if self.augmentation is not None:
            image, labels = self.augmentation(image, labels, self.rng)
        else:
            image = image.astype(np.float32) / 255.0
        return np.ascontiguousarray(image.transpose(2, 0, 1)), labels.astype(np.int64)
