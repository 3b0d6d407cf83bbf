"""CamVid in the SegNet tutorial layout: ``<split>/`` frames and ``<split>annot/`` label maps."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamseg.classes import IGNORE_INDEX
from streamseg.data.samples import LabelledSample, read_rgb  # read_rgb: read from here by the trainer and tools
from streamseg.errors import InputError

SPLITS = ("train", "val", "test")


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
class CamVidSample(LabelledSample):
    @property
    def drive(self) -> str:
        """The drive (video sequence) a frame comes from: the name's prefix, e.g. ``0006R0`` of ``0006R0_f02340.png``."""
        return self.image_path.stem.split("_")[0]


IMAGE_SUFFIXES = (".png", ".jpg")  # .jpg: the packed copy a GPU machine gets (tools/pack_camvid.py)


def list_split(root: Path | str, split: str) -> list[CamVidSample]:
    """Pairs of frame and label map for one split (or ``train+val``), sorted by name."""
    root = Path(root)
    parts = split.split("+")
    if not split or any(part not in SPLITS for part in parts) or len(set(parts)) != len(parts):
        raise InputError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}, or several joined by + (train+val)")
    samples: list[CamVidSample] = []
    for part in parts:
        samples += _list_one_split(root, part)
    return sorted(samples, key=lambda sample: sample.image_path.name)


def _list_one_split(root: Path, split: str) -> list[CamVidSample]:
    image_dir, label_dir = root / split, root / f"{split}annot"
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise InputError(f"{root} is not a CamVid folder: expected {image_dir} and {label_dir}")
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    samples = [CamVidSample(p, label_dir / f"{p.stem}.png") for p in images]
    missing = [s.label_path.name for s in samples if not s.label_path.exists()]
    if missing:
        raise InputError(f"{len(missing)} frames in {image_dir} have no label map, e.g. {missing[0]}")
    if not samples:
        raise InputError(f"no PNG or JPEG frames in {image_dir}")
    return samples


def select_drive(samples: list[CamVidSample], drive: str, *, keep: bool) -> list[CamVidSample]:
    """The frames of ``drive`` (``keep=True``) or all the others; an unknown drive is refused with the known ones.

    Cross-drive validation holds out a whole drive: its frames are never trained on, so its
    score behaves like an unseen road (val shares its drive with 204 training frames).
    """
    drives = sorted({sample.drive for sample in samples})
    if drive not in drives:
        raise InputError(f"no frames of drive {drive!r} here; the drives are {', '.join(drives)}")
    return [sample for sample in samples if (sample.drive == drive) == keep]


class CamVid:
    """CamVid frames held in memory as uint8 (all 468 labelled frames are ~240 MB), indexable like a torch data set.

    ``drive`` keeps only that drive's frames; ``exclude_drive`` drops them.
    """

    def __init__(
        self, root: Path | str, split: str, *, drive: str | None = None, exclude_drive: str | None = None
    ) -> None:
        samples = list_split(root, split)
        if drive is not None:
            samples = select_drive(samples, drive, keep=True)
        if exclude_drive is not None:
            samples = select_drive(samples, exclude_drive, keep=False)
        self.samples = samples
        self.images = [read_rgb(s.image_path) for s in self.samples]
        self.labels = [
            check_labels(read_labels(s.label_path), image.shape, s.label_path) for s, image in zip(self.samples, self.images)
        ]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Returns (image float32 CHW in [0, 1], labels int64 HW), as evaluation reads them."""
        image = self.images[index].astype(np.float32) / 255.0
        return np.ascontiguousarray(image.transpose(2, 0, 1)), self.labels[index].astype(np.int64)


def write_packed_copy(root: Path | str, into: Path | str, split: str, quality: int = 90) -> int:
    """Copies ``split`` of ``root`` into ``into`` in the same layout, frames as JPEG: what travels to a GPU machine.

    All 468 labelled frames are about 27 MB this way (230 MB as PNG); labels stay PNG, since
    JPEG would blur one class id into the next. Returns the number of frames written.
    """
    samples = list_split(root, split)
    for sample in samples:
        split_name = sample.image_path.parent.name
        (Path(into) / split_name).mkdir(parents=True, exist_ok=True)
        (Path(into) / f"{split_name}annot").mkdir(parents=True, exist_ok=True)
        target = Path(into) / split_name / f"{sample.image_path.stem}.jpg"
        if not cv2.imwrite(str(target), cv2.imread(str(sample.image_path)), [cv2.IMWRITE_JPEG_QUALITY, quality]):
            raise OSError(f"cannot write {target}")
        label_target = Path(into) / f"{split_name}annot" / sample.label_path.name
        label_target.write_bytes(sample.label_path.read_bytes())
    return len(samples)
