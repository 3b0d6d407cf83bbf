"""What every sink is: a context manager that takes finished frames."""

from __future__ import annotations

from abc import ABC, abstractmethod

from streamseg.frame import Frame


class Sink(ABC):
    """Takes frames after rendering. ``close`` flushes and releases; it is safe to call twice."""

    name: str = "sink"

    @abstractmethod
    def write(self, frame: Frame) -> None: ...

    def close(self) -> None:
        """Flushes and releases what the sink holds."""

    def __enter__(self) -> "Sink":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
