"""What every source is: an iterator of frames that is also a context manager."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

from streamseg.frame import Frame


class Source(ABC):
    """A stream of frames.

    ``live`` sources (cameras, network streams) produce frames at their own pace, so the
    pipeline drops stale ones; file-like sources wait for the pipeline (back-pressure).
    After iteration ends, ``damage`` holds a one-line description when the input was cut
    short by corrupt or truncated data (the frames before the damage were delivered).
    """

    live: bool = False
    damage: str | None = None
    # The ROS topic the frames were read from (a bag's source, whose frames also carry their message's
    # header in ``Frame.header``); None for every other source. Outputs to ROS go under it.
    topic: str | None = None
    # The network's input size (height, width), set by whoever builds the run before iterating.
    # A source that decodes with FFmpeg then also gives each frame ``model_image`` at that size,
    # scaled by swscale straight from the decoder's YUV; others leave it to the preprocess stage.
    model_size: tuple[int, int] | None = None
    _iterated: bool = False  # set per instance by _claim_the_only_iteration

    @property
    @abstractmethod
    def fps(self) -> float:
        """Nominal frame rate, used for timestamps of outputs."""

    @abstractmethod
    def __iter__(self) -> Iterator[Frame]:
        """Yields frames with increasing ``index`` from 0."""

    def _claim_the_only_iteration(self, closing: bool) -> bool:
        """For sources read once: True on the first ``iter()``, False after it or while ``closing``.

        Call it holding the lock that guards ``closing``, so that a ``close()`` from another
        thread cannot slip between the check and the claim.
        """
        if self._iterated or closing:
            return False
        self._iterated = True
        return True

    def close(self) -> None:
        """Releases the device, stream or file. Safe to call twice."""

    def __enter__(self) -> "Source":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
