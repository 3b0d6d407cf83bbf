"""Writes each frame's label map as a PNG of class ids, for evaluation or later reuse."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from streamseg.errors import OutputError
from streamseg.frame import Frame
from streamseg.sinks.base import Sink
from streamseg.sinks.partial_file import create_partial, discard


class MaskSink(Sink):
    """Saves ``frame.labels`` as ``<folder>/<index:06d>.png``: single channel, class ids as values.

    PNG is lossless, so the file reads back to exactly the same ids (not colours: use the
    palette to view them). Frames without labels are skipped. Existing files of the same
    name are replaced, each in one rename once its new content is complete, so the folder
    never holds a half-written mask: a failed write (a full disk) leaves the old file, or none.
    """

    name = "masks"

    def __init__(self, folder: str | os.PathLike[str], compression: int = 1) -> None:
        self.folder = Path(folder)
        # Level 1 spends far less CPU than the default 3, and label maps compress well anyway.
        self._params = [cv2.IMWRITE_PNG_COMPRESSION, int(compression)]
        self.frames_written = 0
        self._failed = False  # a mask could not be written: the folder lacks it, so the set is not complete
        self._closed = False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"cannot create mask folder {self.folder}: {error.strerror or error}") from error
        if not os.access(self.folder, os.W_OK):
            raise OutputError(f"cannot write masks to {self.folder}: permission denied")

    def write(self, frame: Frame) -> None:
        """Writes the frame's label map, if it has one."""
        try:
            self._write(frame)
        except BaseException:
            self._failed = True
            raise

    def _write(self, frame: Frame) -> None:
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
            _write_whole(path, png.tobytes())
        except OSError as error:
            raise OutputError(f"cannot write mask {path}: {error.strerror or error}") from None
        self.frames_written += 1

    def close(self) -> None:
        """Nothing stays open between masks; closing marks the set as finished."""
        self._closed = True

    @property
    def completed_output(self) -> Path | None:
        """The mask folder, once closed with every mask written (and at least one)."""
        return self.folder if self._closed and not self._failed and self.frames_written else None


def _write_whole(path: Path, data: bytes) -> None:
    """Writes ``data`` to a temporary file beside ``path`` and renames it onto ``path``; on failure removes it.

    No fsync per mask: that would cost a disk flush per frame, and after a power loss a
    mask is as easily made again as the frames after it.
    """
    partial, descriptor = create_partial(path)
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
        os.replace(partial, path)
    except BaseException:
        discard(partial)
        raise
