"""Writes each frame's label map as a PNG of class ids, for evaluation or later reuse."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from streamseg.errors import InputError
from streamseg.frame import Frame
from streamseg.sinks.base import Sink


class MaskSink(Sink):
    """Saves ``frame.labels`` as ``<folder>/<index:06d>.png``: single channel, class ids as values.

    PNG is lossless, so the file reads back to exactly the same ids (not colours: use the
    palette to view them). Frames without labels are skipped. Existing files of the same
    name are replaced.
    """

    name = "masks"

    def __init__(self, folder: str | os.PathLike[str], compression: int = 1) -> None:
        self.folder = Path(folder)
        # Level 1 is several times faster than the default 3 and label maps compress well anyway.
        self._params = [cv2.IMWRITE_PNG_COMPRESSION, int(compression)]
        self.frames_written = 0
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create mask folder {self.folder}: {error.strerror or error}") from error
        if not os.access(self.folder, os.W_OK):
            raise InputError(f"cannot write masks to {self.folder}: permission denied")

    def write(self, frame: Frame) -> None:
        """Writes the frame's label map, if it has one."""
        labels = frame.labels
        if labels is None:
            return
        if labels.ndim != 2 or labels.dtype != np.uint8:
            raise ValueError(f"labels must be a (H, W) uint8 array, got {labels.dtype} {labels.shape}")
        ok, png = cv2.imencode(".png", labels, self._params)
        if not ok:
            raise ValueError(f"frame {frame.index}: PNG encoding of the labels failed")
        path = self.folder / f"{frame.index:06d}.png"
        try:
            path.write_bytes(png.tobytes())
        except OSError as error:
            raise InputError(f"cannot write mask {path}: {error.strerror or error}") from error
        self.frames_written += 1
