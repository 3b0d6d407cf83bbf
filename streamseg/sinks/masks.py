"""Writes each frame's label map as a PNG of class ids, for evaluation or later reuse; and, when asked, its confidence."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from streamseg.errors import OutputError
from streamseg.frame import Frame
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.image.label_png import MAX_PALETTE, encode_label_png
from streamseg.label_sets import CAMVID, LabelSet
from streamseg.sinks.base import Sink
from streamseg.sinks.partial_file import create_partial, discard


class MaskSink(Sink):
    """Saves ``frame.labels`` as ``<folder>/<index:06d>.png``, one class id per pixel.

    With up to 256 classes the PNG is palette-indexed: the index is the id and the palette is the
    label set's colours, so an image viewer shows the classes in colour while the file reads back
    to exactly the same ids (``streamseg.image.label_png.read_label_png``, or Pillow's mode ``"P"``;
    OpenCV's ``imread`` gives the colours). Beyond 256 classes it is a 16-bit greyscale PNG of the
    ids, which ``cv2.imread(path, cv2.IMREAD_UNCHANGED)`` reads as they are.

    With ``confidence``, each frame that has a confidence map also gets ``<index:06d>.confidence.png``:
    8-bit greyscale at the mask's size, ``round(255 p)`` with p the calibrated probability of the
    pixel's class (255: sure; ``streamseg.image.confidence``), scaled bilinearly from the network's
    grid. A frame without one (confidence off, a model of class ids) gets its mask alone. The
    confidence file is written before the mask, so a mask's confidence is there once the mask is.

    Frames without labels are skipped. Existing files of the same name are replaced, each in one
    rename once its new content is complete, so the folder never holds a half-written mask: a
    failed write (a full disk) leaves the old file, or none.
    """

    name = "masks"

    def __init__(
        self, folder: str | os.PathLike[str], compression: int = 1, label_set: LabelSet = CAMVID, confidence: bool = False
    ) -> None:
        self.folder = Path(folder)
        self.confidence = confidence
        # Level 1 spends far less CPU than the default 3, and label maps compress well anyway.
        self._compression = int(compression)
        self._palette = label_set.palette if label_set.num_classes <= MAX_PALETTE else None
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
        try:
            png = encode_label_png(labels, self._palette, self._compression)
        except ValueError as error:
            raise ValueError(f"frame {frame.index}: {error}") from None
        if self.confidence and frame.confidence is not None:
            self._write_confidence(frame.index, confidence_at_size(frame.confidence, labels.shape))
        path = self.folder / f"{frame.index:06d}.png"
        try:
            _write_whole(path, png)
        except OSError as error:
            raise OutputError(f"cannot write mask {path}: {error.strerror or error}") from None
        self.frames_written += 1

    def _write_confidence(self, index: int, confidence: np.ndarray) -> None:
        ok, png = cv2.imencode(".png", confidence, [cv2.IMWRITE_PNG_COMPRESSION, self._compression])
        if not ok:
            raise ValueError(f"frame {index}: OpenCV could not encode its confidence as PNG")
        path = self.folder / f"{index:06d}.confidence.png"
        try:
            _write_whole(path, png.tobytes())
        except OSError as error:
            raise OutputError(f"cannot write confidence {path}: {error.strerror or error}") from None

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
