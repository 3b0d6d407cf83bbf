"""A labelled frame (an image and its label map) and the readers every layout shares."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from streamseg.errors import InputError
from streamseg.image.label_png import read_label_png


@dataclass(frozen=True)
class LabelledSample:
    image_path: Path
    label_path: Path


def read_rgb(path: Path) -> np.ndarray:
    """Reads an image file as RGB uint8 (H, W, 3); a clear error when it is missing or unreadable."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise InputError(f"cannot read image {path}")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_single_channel(path: Path, what: str = "label map") -> np.ndarray:
    """A PNG of class ids as uint8 or uint16 (H, W); a palette-indexed PNG (the masks sink's) gives its indices, not its colours."""
    try:
        return read_label_png(path)
    except OSError as error:
        raise InputError(f"cannot read {what} {path}: {error.strerror or error}") from None
    except ValueError as error:
        raise InputError(f"{what} {path} is not a PNG of class ids: {error}") from None


def check_shape(labels: np.ndarray, image_shape: tuple[int, ...], path: Path) -> np.ndarray:
    """``labels`` if they are the size of their frame; else one line naming ``path`` and both sizes."""
    height, width = image_shape[:2]
    if labels.shape != (height, width):
        raise InputError(f"label map {path} is {labels.shape[1]}x{labels.shape[0]} but its frame is {width}x{height}")
    return labels

