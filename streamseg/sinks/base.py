"""What every sink is: a context manager that takes finished frames."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

from streamseg.frame import Frame


class Sink(ABC):
    """Takes frames after rendering. ``close`` flushes and releases; it is safe to call twice.

    A sink that fails raises from ``write`` or ``close``; the pipeline then reports it and
    drops it. A sink that writes files keeps ``frames_written`` as the number of frames its
    output holds (so the pipeline can say what was lost) and names the finished file in
    ``completed_output``.
    """

    name: str = "sink"

    @abstractmethod
    def write(self, frame: Frame) -> None: ...

    def close(self) -> None:
        """Flushes and releases what the sink holds."""

    @property
    def completed_output(self) -> Path | None:
        """The file or folder this sink completely wrote and put in place, once closed without error; else None."""
        return None

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
