"""A plain labelled folder: ``images/`` and ``masks/``, each image's mask a PNG of the same stem.

A mask holds class ids of the model's own label set, one per pixel (8- or 16-bit greyscale,
or palette-indexed: the index is the id). Ids at or above the class count, and the label
set's ignore id, mark pixels that are not scored.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from streamseg.data.samples import LabelledSample
from streamseg.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def is_masks_folder(root: Path) -> bool:
    return (root / "images").is_dir() and (root / "masks").is_dir()


def list_masks_folder(root: Path | str) -> list[LabelledSample]:
    """Each image of ``root/images`` with ``root/masks/STEM.png``, sorted by name."""
    root = Path(root)
    image_dir, mask_dir = root / "images", root / "masks"
    images = sorted(p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not images:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {image_dir}")
    repeated = [stem for stem, count in Counter(p.stem for p in images).items() if count > 1]
    if repeated:
        raise InputError(f"{image_dir} has several images named {repeated[0]} (their masks would be one file)")
    samples = [LabelledSample(path, mask_dir / f"{path.stem}.png") for path in images]
    missing = [sample.label_path.name for sample in samples if not sample.label_path.is_file()]
    if missing:
        raise InputError(f"{len(missing)} of the {len(samples)} images in {image_dir} have no mask in {mask_dir}, e.g. {missing[0]}")
    return samples
