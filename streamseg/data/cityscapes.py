"""Cityscapes as its packages unpack: ``leftImg8bit/SPLIT/CITY/*_leftImg8bit.png`` frames and
``gtFine/SPLIT/CITY/*_gtFine_labelIds.png`` label maps, scored in the 19 train ids."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from streamseg.data.samples import LabelledSample, read_single_channel
from streamseg.errors import InputError
from streamseg.label_sets import cityscapes_train_ids

SPLITS = ("train", "val", "test")
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"


def is_cityscapes(root: Path) -> bool:
    return (root / "leftImg8bit").is_dir() and (root / "gtFine").is_dir()


def list_split(root: Path | str, split: str) -> list[LabelledSample]:
    """Pairs of frame and labelIds map for one split (or several joined by +), every city, sorted by name."""
    root = Path(root)
    parts = split.split("+")
    if not split or any(part not in SPLITS for part in parts) or len(set(parts)) != len(parts):
        raise InputError(
            f"unknown Cityscapes split {split!r}; expected one of {', '.join(SPLITS)}, or several joined by + (train+val)"
        )
    samples: list[LabelledSample] = []
    for part in parts:
        samples += _list_one_split(root, part)
    return sorted(samples, key=lambda sample: sample.image_path.name)


def _list_one_split(root: Path, split: str) -> list[LabelledSample]:
    image_dir, label_dir = root / "leftImg8bit" / split, root / "gtFine" / split
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise InputError(f"{root} has no Cityscapes {split} split: expected {image_dir} and {label_dir}")
    images = sorted(image_dir.glob(f"*/*{IMAGE_SUFFIX}"))
    if not images:
        raise InputError(f"no *{IMAGE_SUFFIX} frames in the city folders of {image_dir}")
    samples = [
        LabelledSample(path, label_dir / path.parent.name / (path.name[: -len(IMAGE_SUFFIX)] + LABEL_SUFFIX))
        for path in images
    ]
    missing = [sample.label_path for sample in samples if not sample.label_path.exists()]
    if missing:
        raise InputError(f"{len(missing)} frames in {image_dir} have no gtFine labelIds map, e.g. no {missing[0]}")
    return samples


def read_train_ids(path: Path) -> np.ndarray:
    """A gtFine labelIds map as train ids 0..18, 255 where Cityscapes does not evaluate."""
    label_ids = read_single_channel(path, "labelIds map")
    if label_ids.dtype != np.uint8:
        raise InputError(f"labelIds map {path} is {label_ids.dtype}; Cityscapes' labelIds are 8-bit PNGs (ids 0..33)")
    return cityscapes_train_ids(label_ids)
