"""What every processing stage is: it declares the Frame fields it takes and gives, and processes one frame."""

from __future__ import annotations

from abc import ABC, abstractmethod

from streamseg.frame import Frame


class Stage(ABC):
    """One step between the source and the sinks, run in its own thread by the pipeline.

    ``takes`` and ``gives`` name Frame fields, so a pipeline assembled from config can be
    checked before it starts: every field a stage takes must be given by an earlier one.
    """

    name: str
    takes: frozenset[str] = frozenset()
    gives: frozenset[str] = frozenset()
    # Threads the pipeline runs this stage in. More than one only where process() is safe to
    # call concurrently; the frames still leave in the order they came.
    workers: int = 1

    @abstractmethod
    def process(self, frame: Frame) -> None:
        """Fills this stage's fields of ``frame`` in place."""

    def close(self) -> None:
        """Releases what the stage holds."""


def check_chain(stages: list[Stage], source_gives: frozenset[str] = frozenset({"image"})) -> None:
    """Raises ValueError when a stage takes a field that no earlier stage gives."""
    available = set(source_gives)
    for stage in stages:
        missing = stage.takes - available
        if missing:
            raise ValueError(f"stage {stage.name} takes {sorted(missing)}, which no earlier stage gives")
        available |= stage.gives
