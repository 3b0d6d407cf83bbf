"""Writes per-frame statistics as JSON lines: one object per frame, easy to tail and to load."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from streamseg.classes import CLASS_NAMES
from streamseg.errors import OutputError
from streamseg.frame import Frame
from streamseg.image.class_counts import class_pixel_counts
from streamseg.sinks.base import Sink
from streamseg.sinks.partial_file import (
    create_partial,
    discard,
    put_in_place,
    real_target,
    warn_of_leftovers,
)


def frame_stats(frame: Frame, class_names: Sequence[str] = CLASS_NAMES, now: float | None = None) -> dict[str, Any]:
    """The record written for ``frame``.

    ``latency_ms`` is host time from capture to ``now`` (default: this call); ``time`` is the
    wall clock (Unix seconds) when the record was made, to line it up with other logs and runs.
    ``class_fraction`` (present only when the frame has labels) is the share of all the
    frame's pixels per class, keyed by the run's label-set names; pixels with ids outside
    ``class_names`` (e.g. 'unlabelled') are counted in no class, so the shares may sum to less than 1.
    ``confidence`` is on every record: the frame's reliability (``predicted_accuracy``, the mean
    calibrated confidence of its pixels, and ``low_confidence_fraction``, the share under the run's
    threshold; see ``streamseg.image.confidence``), or null where the frame has none (confidence off,
    or a model that gives class ids only), so a reader finds the key on every line either way.
    """
    now = time.perf_counter() if now is None else now
    record: dict[str, Any] = {
        "index": frame.index,
        "timestamp": frame.timestamp,
        "latency_ms": round((now - frame.captured_at) * 1000.0, 2),
        "time": round(time.time(), 3),
        "timings_ms": {stage: round(seconds * 1000.0, 2) for stage, seconds in frame.timings.items()},
        "confidence": frame.reliability.as_dict() if frame.reliability is not None else None,
    }
    if frame.labels is not None and frame.labels.size:
        counts = class_pixel_counts(frame.labels, len(class_names))
        total = frame.labels.size
        record["class_fraction"] = {name: round(int(n) / total, 6) for name, n in zip(class_names, counts)}
    return record


class JsonLinesStatsSink(Sink):
    """Writes one JSON object per frame to a file (see ``frame_stats`` for the fields).

    The lines go to a temporary file beside the target, ``.NAME.partial-XXXXXXXX``, which
    ``close`` renames onto the target once every line is written and synced; until then a
    file already at the target stays as it was (tail the ``.partial`` file to follow a run).
    The temporary file is line-buffered, so each record reaches the OS when it is written
    and a killed process leaves only complete lines in it. When a write fails (a full disk,
    a record that is not JSON) or no frame was written, ``close`` removes the temporary file
    and leaves the target alone.
    """

    name = "jsonl_stats"

    def __init__(self, path: str | os.PathLike[str], class_names: Sequence[str] = CLASS_NAMES) -> None:
        self.path = Path(path)
        self.class_names = tuple(class_names)
        self.frames_written = 0  # lines the finished file holds: back to 0 when the file is discarded
        self._target = real_target(self.path)
        self._failed = False
        self._completed = False
        if self._target.is_dir():
            raise OutputError(f"cannot write stats to {self.path}: it is a folder")
        try:
            self._target.parent.mkdir(parents=True, exist_ok=True)
            warn_of_leftovers(self._target)
            self.partial_path, descriptor = create_partial(self._target)
        except OSError as error:
            raise OutputError(f"cannot write stats to {self.path}: {error.strerror or error}") from error
        self._file = os.fdopen(descriptor, "w", buffering=1, encoding="utf-8")

    @property
    def completed_output(self) -> Path | None:
        """The stats file, once it was completely written and put in place."""
        return self.path if self._completed else None

    def write(self, frame: Frame) -> None:
        """Writes the frame's record as one line."""
        if self._file.closed:
            raise ValueError(f"{self.path}: write after close")
        try:
            record = frame_stats(frame, self.class_names)
            # allow_nan=False: NaN is not JSON; a bad timestamp should fail here, not in the reader.
            self._file.write(json.dumps(record, allow_nan=False, separators=(",", ":")) + "\n")
        except OSError as error:
            self._failed = True
            raise OutputError(f"cannot write stats to {self.path}: {error.strerror or error}") from None
        except BaseException:
            self._failed = True  # the file would lack this frame's line: it is not complete
            raise
        self.frames_written += 1

    def close(self) -> None:
        """Closes the file and renames it onto the target (or removes it, see the class). Safe to call twice."""
        if self._file.closed:
            return
        if self._failed or self.frames_written == 0:
            try:
                self._file.close()
            except OSError:
                pass  # a write already failed and was reported; the file is given up either way
            self._discard()
            return
        try:
            self._file.close()  # flushes the last line: a full disk may fail here
            put_in_place(self.partial_path, self._target)
        except OSError as error:
            self._discard()
            raise OutputError(f"cannot finish stats {self.path}: {error.strerror or error}") from None
        self._completed = True

    def _discard(self) -> None:
        discard(self.partial_path)
        self.frames_written = 0
