"""What both H.264 sinks share: encode a frame (or flush with None) and mux what comes out; even frame sizes for 4:2:0."""

from __future__ import annotations

from typing import Callable, Union

import av
import cv2
import numpy as np

# A rate, or how to read it when the first frame comes: a live source knows its rate only once connected.
FrameRate = Union[float, Callable[[], float]]


def resolve_rate(fps: FrameRate) -> float:
    """The frame rate ``fps`` gives now; ValueError unless positive."""
    value = float(fps() if callable(fps) else fps)
    if not value > 0:
        raise ValueError(f"fps must be positive, got {value}")
    return value


def encode_and_mux(container: av.container.OutputContainer, stream: av.VideoStream, frame: av.VideoFrame | None) -> None:
    """Encodes ``frame`` and writes the packets the encoder gives back; ``None`` flushes the frames it held."""
    for packet in stream.encode(frame):
        container.mux(packet)


def i420_frame(image: np.ndarray) -> av.VideoFrame:
    """An RGB uint8 image of even size as the yuv420p frame H.264 encoders take.

    Converted here by OpenCV's SIMD code (BT.601, limited range, as swscale's), which costs
    less CPU than handing the encoder RGB for swscale to convert (BENCHMARKS.md, Pipeline efficiency).
    """
    return av.VideoFrame.from_ndarray(cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2YUV_I420), format="yuv420p")


def even_size(width: int, height: int) -> tuple[int, int]:
    """The size a frame of ``width`` x ``height`` is encoded at: each odd side one pixel longer.

    4:2:0 (yuv420p) stores one chroma sample per 2x2 block, so H.264 encoders refuse odd
    sides in it, and 4:4:4 (which takes any size) is the High 4:4:4 profile that browsers,
    QuickTime and most hardware decoders cannot play. Padding rather than cropping keeps
    every pixel of the frame in the file: nothing the network labelled is cut away, and the
    added row or column repeats its neighbour, so it cannot be told apart when played.
    """
    return width + width % 2, height + height % 2


def pad_to_even(image: np.ndarray) -> np.ndarray:
    """``image`` with its last row and/or column repeated once where that side is odd (see ``even_size``)."""
    height, width = image.shape[:2]
    if width % 2 == 0 and height % 2 == 0:
        return image
    return cv2.copyMakeBorder(image, 0, height % 2, 0, width % 2, cv2.BORDER_REPLICATE)
