"""The record one video frame travels in, from the source to the sinks."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from streamseg.image.confidence import Reliability


@dataclass(frozen=True)
class MessageHeader:
    """Where a frame came from in a robotics stack: the ROS header of the image message it was read from."""

    stamp_ns: int  # header.stamp as nanoseconds since the epoch (sec * 10**9 + nanosec)
    frame_id: str  # the camera's coordinate frame, as the message named it


@dataclass
class Frame:
    """One frame and everything the stages add to it.

    ``image`` is RGB uint8 (H, W, 3) as decoded. Each stage fills its own field and
    adds its time in seconds to ``timings`` under its name.
    """

    index: int
    timestamp: float  # seconds of source time (presentation time for files)
    image: np.ndarray
    captured_at: float = field(default_factory=time.perf_counter)  # host clock, for end-to-end latency
    truth: np.ndarray | None = None  # ground-truth label map (H, W) uint8, when the source knows it
    model_input: np.ndarray | None = None  # (1, 3, h, w) float32 RGB in [0, 1]
    model_image: np.ndarray | None = None  # (h, w, 3) RGB uint8: the image at the network's input size
    logits: np.ndarray | None = None  # (C, h, w) float32 at model resolution
    flow: np.ndarray | None = None  # (h, w, 2) float32 backward flow at model resolution: pixel x came from x + flow(x) in the previous frame
    labels: np.ndarray | None = None  # (H, W) class ids at image resolution, uint8 (uint16 beyond 255 classes); later stages may replace it
    header: MessageHeader | None = None  # the image message's header, for frames read from a ROS bag; None otherwise
    refined_from: int | None = None  # index of the frame whose CRF result the labels carry, if any
    # How sure the labels shown are (streamseg.image.confidence): uint8 round(255 p), p the calibrated probability of the
    # top class, at the network's grid (or the CRF's, where the frame shows the CRF's result: readers scale it to the
    # frame themselves); and the frame's figures of it. None where confidence is off or unavailable.
    confidence: np.ndarray | None = None
    reliability: Reliability | None = None
    overlay: np.ndarray | None = None  # rendered RGB uint8 (H, W, 3)
    timings: dict[str, float] = field(default_factory=dict)
    # The network's own class ids and the ``labels`` array scaled up from them, set together by set_labels.
    _grid_labels: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)
    _scaled_labels: np.ndarray | None = field(default=None, init=False, repr=False, compare=False)

    def set_labels(self, labels: np.ndarray, model_labels: np.ndarray) -> None:
        """Sets ``labels`` (at the frame's size) with the network's ``model_labels`` (at its own grid) they were scaled from."""
        self.labels = labels
        self._grid_labels, self._scaled_labels = model_labels, labels

    @property
    def model_labels(self) -> np.ndarray | None:
        """The network's class ids (h, w) at its own grid, covering the whole frame, while ``labels`` is still the
        map scaled up from them; None once a stage has put other labels in its place (the CRF's, at the frame's size).

        The overlay colours these and scales the colours smoothly, so the network's grid never shows as steps.
        """
        if self.labels is None or self.labels is not self._scaled_labels:
            return None
        return self._grid_labels

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])
