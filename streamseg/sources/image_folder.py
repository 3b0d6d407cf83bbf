"""Frames read from the image files of a folder, in name order."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from streamseg.errors import ConfigError, InputError
from streamseg.frame import Frame
from streamseg.sources.base import Source

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
_NAMES_IN_DAMAGE = 3  # how many skipped files the one-line summary names


class ImageFolderSource(Source):
    """The images of one folder (not its subfolders) as a stream of RGB frames.

    Files are taken in natural name order (``frame2`` before ``frame10``) and timed
    ``index / fps``. An image that cannot be read is skipped and listed in ``skipped``,
    ``damage`` sums them up in one line, and the stream goes on: one bad file should not
    end a long sequence. The folder holds no open handle, so the source can be iterated
    again; each iteration starts over.
    """

    live = False

    def __init__(self, folder: str | Path, *, fps: float = 10.0) -> None:
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise InputError(f"no such folder: {self.folder}")
        if not fps > 0:
            raise ConfigError(f"the frame rate of an image folder must be positive, not {fps}")
        self._fps = float(fps)
        self.files: list[Path] = sorted(
            (path for path in self.folder.iterdir() if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()),
            key=_natural_key,
        )
        if not self.files:
            raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {self.folder}")
        self.frame_count = len(self.files)  # an upper bound: unreadable files are skipped
        self.skipped: list[Path] = []
        self.damage: str | None = None

    @property
    def fps(self) -> float:
        return self._fps

    def __iter__(self) -> Iterator[Frame]:
        self.skipped = []
        self.damage = None
        index = 0
        for path in self.files:
            image = _read_rgb(path)
            if image is None:
                self.skipped.append(path)
                self.damage = self._describe_skipped()
                continue
            yield Frame(index=index, timestamp=index / self._fps, image=image)
            index += 1

    def _describe_skipped(self) -> str:
        names = ", ".join(path.name for path in self.skipped[:_NAMES_IN_DAMAGE])
        if len(self.skipped) > _NAMES_IN_DAMAGE:
            names += ", ..."
        plural = "image" if len(self.skipped) == 1 else "images"
        return f"{self.folder} is damaged: skipped {len(self.skipped)} unreadable {plural} ({names})"


def _read_rgb(path: Path) -> np.ndarray | None:
    """The image as RGB uint8 (H, W, 3), or None when the file is not a readable image."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    if data.size == 0:
        return None
    # IMREAD_COLOR turns grey, 16-bit and alpha images into 3-channel 8-bit ones.
    image = cv2.imdecode(data, cv2.IMREAD_COLOR)
    if image is None:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def _natural_key(path: Path) -> list[object]:
    """Sort key that compares runs of digits as numbers."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]
