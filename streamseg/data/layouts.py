"""The labelled folders ``streamseg eval`` reads, told apart by what the folder holds.

- CamVid (the SegNet tutorial layout): ``val/`` and ``valannot/`` (and train, test), ids 0..10, 11 unlabelled;
- Cityscapes: ``leftImg8bit/SPLIT/CITY/`` and ``gtFine/SPLIT/CITY/*_gtFine_labelIds.png``, scored in the 19 train ids;
- images and masks: ``images/`` and ``masks/``, masks in the model's own label set (streamseg.data.masks).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streamseg.data import camvid, cityscapes, masks
from streamseg.data.samples import LabelledSample, check_shape, read_single_channel
from streamseg.errors import ConfigError, InputError
from streamseg.label_sets import CAMVID, CITYSCAPES, LabelSet

DEFAULT_SPLIT = "val"


@dataclass(frozen=True)
class LabelledFolder:
    """The frames of one labelled folder (one split of it) and how to read their ground truth."""

    layout: str  # "CamVid", "Cityscapes" or "images and masks"
    description: str  # what is scored, for messages: "CamVid val drive 0006R0", "Cityscapes val"
    samples: list[LabelledSample]
    # The classes its ground truth is in; None where the truth is in the model's own label set.
    label_set: LabelSet | None
    _read: Callable[[Path], np.ndarray]
    _check: Callable[[np.ndarray, tuple[int, ...], Path], np.ndarray] = check_shape

    def truth(self, sample: LabelledSample, image_shape: tuple[int, ...]) -> np.ndarray:
        """The ground truth of ``sample``, checked against its frame (``image_shape``): class ids, other values not scored."""
        return self._check(self._read(sample.label_path), image_shape, sample.label_path)

    def check_model_classes(self, label_set: LabelSet) -> None:
        """A model can be scored here only if its classes are the ones this folder's truth counts; else one line."""
        if self.label_set is not None and label_set.num_classes != self.label_set.num_classes:
            raise ConfigError(
                f"the model has {label_set.num_classes} classes ({label_set.name}) but a {self.layout} folder is scored "
                f"in {self.label_set.num_classes} ({self.label_set.name}): give a model of those "
                f"{self.label_set.num_classes} classes, or an images/ and masks/ folder in the model's own"
            )


def detect_layout(root: Path) -> str:
    """Which layout ``root`` holds: "CamVid", "Cityscapes" or "images and masks"; one line naming all three when none."""
    if not root.is_dir():
        raise InputError(f"{root} is not a folder")
    if any((root / split).is_dir() and (root / f"{split}annot").is_dir() for split in camvid.SPLITS):
        return "CamVid"
    if cityscapes.is_cityscapes(root):
        return "Cityscapes"
    if masks.is_masks_folder(root):
        return "images and masks"
    raise InputError(
        f"{root} is not a labelled folder eval reads: expected CamVid's val/ and valannot/ (or train, test), "
        "Cityscapes' leftImg8bit/ and gtFine/, or images/ and masks/"
    )


def open_labelled_folder(root: Path | str, split: str | None = None, hold_out_drive: str | None = None) -> LabelledFolder:
    """The frames of ``root`` to score: ``split`` (val by default) where the layout has splits, one CamVid drive if asked."""
    root = Path(root)
    layout = detect_layout(root)
    if hold_out_drive is not None and layout != "CamVid":
        raise ConfigError(f"--hold-out-drive picks one of CamVid's drives; {root} is a {layout} folder")
    if layout == "CamVid":
        split = DEFAULT_SPLIT if split is None else split
        samples: list[LabelledSample] = camvid.list_split(root, split)
        description = f"CamVid {split}"
        if hold_out_drive is not None:
            samples = camvid.select_drive(samples, hold_out_drive, keep=True)
            description += f" drive {hold_out_drive}"
        # CamVid's label maps are checked as ever: ids above 11 are refused, not silently left out.
        return LabelledFolder(layout, description, samples, CAMVID, camvid.read_labels, camvid.check_labels)
    if layout == "Cityscapes":
        split = DEFAULT_SPLIT if split is None else split
        samples = cityscapes.list_split(root, split)
        return LabelledFolder(layout, f"Cityscapes {split}", samples, CITYSCAPES, cityscapes.read_train_ids)
    if split is not None:
        raise ConfigError(f"{root} is an images/ and masks/ folder, which has no splits: leave out --split")
    return LabelledFolder(layout, f"{root.name}/images", masks.list_masks_folder(root), None, read_single_channel)

