"""Writes per-frame statistics as JSON lines: one object per frame, easy to tail and to load."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from streamseg.classes import CLASS_NAMES
from streamseg.errors import InputError
from streamseg.frame import Frame
from streamseg.sinks.base import Sink


def frame_stats(frame: Frame, class_names: Sequence[str] = CLASS_NAMES, now: float | None = None) -> dict[str, Any]:
    """The record written for ``frame``.

    ``latency_ms`` is host time from capture to ``now`` (default: this call).
    ``class_fraction`` (present only when the frame has labels) is the share of all the
    frame's pixels per class; pixels with ids outside ``class_names`` (e.g. 'unlabelled')
    are counted in no class, so the shares may sum to less than 1.
    """
    now = time.perf_counter() if now is None else now
    record: dict[str, Any] = {
        "index": frame.index,
        "timestamp": frame.timestamp,
        "latency_ms": round((now - frame.captured_at) * 1000.0, 2),
        "timings_ms": {stage: round(seconds * 1000.0, 2) for stage, seconds in frame.timings.items()},
    }
    if frame.labels is not None and frame.labels.size:
        counts = np.bincount(frame.labels.ravel(), minlength=len(class_names))[: len(class_names)]
        total = frame.labels.size
        record["class_fraction"] = {name: round(int(n) / total, 6) for name, n in zip(class_names, counts)}
    return record


class JsonLinesStatsSink(Sink):
    """Appends one JSON object per frame to a file (see ``frame_stats`` for the fields).

    The file is line-buffered, so each record reaches the OS when it is written and a
    crash leaves only complete lines. An existing file is replaced.
    """

    name = "jsonl_stats"

    def __init__(self, path: str | os.PathLike[str], class_names: Sequence[str] = CLASS_NAMES) -> None:
        self.path = Path(path)
        self.class_names = tuple(class_names)
        self.frames_written = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "w", buffering=1, encoding="utf-8")
        except OSError as error:
            raise InputError(f"cannot write stats to {self.path}: {error.strerror or error}") from error

    def write(self, frame: Frame) -> None:
        """Writes the frame's record as one line."""
        if self._file.closed:
            raise ValueError(f"{self.path}: write after close")
        record = frame_stats(frame, self.class_names)
        # allow_nan=False: NaN is not JSON; a bad timestamp should fail here, not in the reader.
        self._file.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
        self.frames_written += 1

    def close(self) -> None:
        """Closes the file. Safe to call twice."""
        self._file.close()
