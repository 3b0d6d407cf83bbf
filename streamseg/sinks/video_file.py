"""Writes rendered frames to an H.264 MP4 file with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from streamseg.errors import ConfigError, InputError
from streamseg.frame import Frame
from streamseg.sinks.base import Sink
from streamseg.sinks.encoding import encode_and_mux

# x264's rate-control options; other encoders (e.g. "mpeg4") do not know them.
_X264_FAMILY = {"libx264", "h264", "libx265", "hevc"}


def _frame_rate(fps: float) -> Fraction:
    """The nominal rate as an exact fraction: 29.97 -> 2997/100, 30000/1001 stays as it is.

    Containers and encoders keep rates and time bases as rationals; a float would be
    turned into one with a huge denominator.
    """
    return Fraction(fps).limit_denominator(1001)


def _pixel_format(width: int, height: int) -> str:
    """yuv420p where possible, yuv444p for odd sizes.

    4:2:0 stores one chroma sample per 2x2 block, so libx264 refuses odd widths or
    heights in it. Padding or cropping to an even size would change the output size;
    4:4:4 keeps the exact size at the cost of a larger file and the High 4:4:4 profile,
    which some players (browsers, QuickTime) cannot play.
    """
    return "yuv420p" if width % 2 == 0 and height % 2 == 0 else "yuv444p"


class VideoFileSink(Sink):
    """Encodes ``frame.overlay`` (or ``frame.image`` when there is none) as H.264 in MP4.

    The file is opened on the first frame, whose size becomes the video's size; later
    frames of another size are resized to it. Frames are stamped with a running count
    at ``fps`` (presentation time ``n / fps``), not with source timestamps, so the file
    plays at a steady rate even when live sources dropped frames.

    When no frame was ever written, ``close`` leaves no file behind: an MP4 without a
    video stream would be a file that players reject.
    """

    name = "video_file"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: float,
        codec: str = "libx264",
        crf: int = 23,
        preset: str = "veryfast",
    ) -> None:
        if not fps > 0:
            raise ValueError(f"fps must be positive, got {fps}")
        try:
            av.codec.Codec(codec, "w")
        except av.codec.codec.UnknownCodecError as error:
            raise ConfigError(f"unknown video encoder {codec!r} (this FFmpeg build lacks it)") from error
        self.path = Path(path)
        self.rate = _frame_rate(fps)
        self.time_base = 1 / self.rate  # frame n is shown at n / fps
        self.codec = codec
        self.crf = crf
        self.preset = preset  # 'veryfast' keeps 960x540 encoding well ahead of real time on 2 cores
        self.frames_written = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._size: tuple[int, int] | None = None  # (width, height) of the video
        self._closed = False
        self._check_writable()

    def _check_writable(self) -> None:
        """Creates the parent folder and fails early, before any frame, if the path cannot be written."""
        if self.path.is_dir():
            raise InputError(f"cannot write video to {self.path}: it is a folder")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise InputError(f"cannot create folder for video {self.path}: {error.strerror or error}") from error
        if not os.access(self.path.parent, os.W_OK) or (self.path.exists() and not os.access(self.path, os.W_OK)):
            raise InputError(f"cannot write video to {self.path}: permission denied")

    def _open(self, width: int, height: int) -> None:
        container = av.open(str(self.path), mode="w")
        try:
            stream = container.add_stream(self.codec, rate=self.rate)
            stream.width = width
            stream.height = height
            stream.pix_fmt = _pixel_format(width, height)
            stream.time_base = self.time_base
            if self.codec in _X264_FAMILY:
                stream.options = {"crf": str(self.crf), "preset": self.preset}
            # PyAV opens the file only when the header is written; do it now so a bad
            # path fails on this frame, not at some later mux or at close.
            container.start_encoding()
        except OSError as error:
            container.close()
            raise InputError(f"cannot write video to {self.path}: {error.strerror or error}") from error
        except Exception:
            container.close()
            raise
        self._container, self._stream, self._size = container, stream, (width, height)

    def write(self, frame: Frame) -> None:
        """Encodes one frame; the first one opens the file."""
        if self._closed:
            raise ValueError(f"{self.path}: write after close")
        image = frame.overlay if frame.overlay is not None else frame.image
        if self._container is None:
            self._open(image.shape[1], image.shape[0])
        width, height = self._size
        if (image.shape[1], image.shape[0]) != (width, height):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        # Stamp in 1/fps, not in the stream's time base: the MP4 muxer replaces that with
        # a finer one (e.g. 1/12800) when the header is written, and a running count in it
        # would put every frame at time zero.
        video_frame.pts = self.frames_written
        video_frame.time_base = self.time_base
        encode_and_mux(self._container, self._stream, video_frame)
        self.frames_written += 1

    def close(self) -> None:
        """Flushes the encoder's delayed frames and closes the file. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        container, stream = self._container, self._stream
        self._container = self._stream = None
        if container is None:
            return
        try:
            # x264 holds back frames for lookahead and B-frames; without this they are lost.
            encode_and_mux(container, stream, None)
        finally:
            container.close()
