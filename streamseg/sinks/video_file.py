"""Writes rendered frames to an H.264 video file (fragmented MP4, or Matroska) with PyAV."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import av
import av.error
import cv2
import numpy as np

from streamseg.errors import ConfigError, OutputError
from streamseg.frame import Frame
from streamseg.sinks.base import Sink
from streamseg.sinks.encoding import (
    FrameRate,
    encode_and_mux,
    even_size,
    i420_frame,
    pad_to_even,
    resolve_rate,
)
from streamseg.sinks.partial_file import (
    create_partial,
    discard,
    put_in_place,
    real_target,
    warn_of_leftovers,
)

# x264's rate-control options; other encoders (e.g. "mpeg4") do not know them.
_X264_FAMILY = {"libx264", "h264", "libx265", "hevc"}

# File name extension -> FFmpeg muxer. The muxer is named, not guessed from the name,
# because the file is written under a temporary name that has no such extension.
CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}

# Fragmented MP4: an empty 'moov' up front, then one self-contained fragment per key frame,
# so a file cut off anywhere (SIGKILL, power loss, full disk) plays up to its last fragment.
# A plain MP4 keeps its index ('moov') to the end and is unplayable without it.
# flush_packets hands each fragment to the OS as soon as it is complete.
_MUXER_OPTIONS = {
    "mp4": {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"},
    "mov": {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"},
    "matroska": {"flush_packets": "1"},  # Matroska is written cluster by cluster and plays when cut off anyway
}
KEYFRAME_INTERVAL_S = 1.0  # a key frame (so a fragment) every second: a killed run loses at most about a second


def container_format(path: str | os.PathLike[str]) -> str:
    """The FFmpeg muxer for ``path``'s extension; ``OutputError`` for an extension this sink does not write."""
    suffix = Path(path).suffix.lower()
    muxer = CONTAINERS.get(suffix)
    if muxer is None or muxer not in av.formats_available:
        known = ", ".join(extension for extension, name in CONTAINERS.items() if name in av.formats_available)
        problem = f"'{suffix}' is not a video format streamseg writes" if suffix else "the name has no video extension"
        raise OutputError(f"cannot write video to {path}: {problem} (use {known})")
    return muxer


def _frame_rate(fps: float) -> Fraction:
    """The nominal rate as an exact fraction: 29.97 -> 2997/100, 30000/1001 stays as it is.

    Containers and encoders keep rates and time bases as rationals; a float would be
    turned into one with a huge denominator.
    """
    return Fraction(fps).limit_denominator(1001)


def _reason(error: BaseException) -> str:
    message = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())


class VideoFileSink(Sink):
    """Encodes ``frame.overlay`` (or ``frame.image`` when there is none) as H.264 4:2:0 in fragmented MP4.

    The file is opened on the first frame, whose size becomes the video's size (an odd side
    is padded by one repeated pixel: see ``even_size``); later frames of another size are
    resized to it. Frames are stamped with a running count at ``fps`` (presentation time
    ``n / fps``), not with source timestamps, so the file plays at a steady rate even when
    live sources dropped frames.

    Nothing is ever half-written under the user's name. The video goes to a temporary file
    beside the target, ``.NAME.partial-XXXXXXXX``, which ``close`` renames onto the target
    once the encoder is flushed and the file closed without error; until then a file
    already at the target stays as it was. When a write or the close fails (a full disk),
    the temporary file is removed and the target is left alone. When the process is killed
    (SIGKILL, power loss), no clean-up runs: the ``.partial`` file is what is left, and as
    fragmented MP4 with a key frame every second it plays up to its last fragment; rename
    it to keep it. When no frame was ever written, ``close`` leaves no file behind.
    """

    name = "video_file"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        fps: FrameRate,
        codec: str = "libx264",
        crf: int = 23,
        preset: str = "ultrafast",
    ) -> None:
        if not callable(fps):
            resolve_rate(fps)  # a bad fixed rate fails here, before any frame
        try:
            av.codec.Codec(codec, "w")
        except av.codec.codec.UnknownCodecError as error:
            raise ConfigError(f"unknown video encoder {codec!r} (this FFmpeg build lacks it)") from error
        self.path = Path(path)
        self.format = container_format(self.path)
        self._fps = fps
        self.rate: Fraction | None = None  # read when the first frame opens the file
        self.time_base: Fraction | None = None  # frame n is shown at n / fps
        self.codec = codec
        self.crf = crf
        self.preset = preset  # x264 speed preset: RunConfig.out_preset says why ultrafast is the default
        self.frames_written = 0  # frames the finished file holds: back to 0 when the file is discarded
        self.partial_path: Path | None = None  # the temporary file, while it exists
        self._target = real_target(self.path)
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._size: tuple[int, int] | None = None  # (width, height) of the frames, before padding
        self._failed = False
        self._completed = False
        self._closed = False
        self._check_writable()

    @property
    def completed_output(self) -> Path | None:
        """The video file, once it was completely written and put in place."""
        return self.path if self._completed else None

    def _check_writable(self) -> None:
        """Creates the parent folder and fails early, before any frame, if the path cannot be written."""
        if self._target.is_dir():
            raise OutputError(f"cannot write video to {self.path}: it is a folder")
        try:
            self._target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"cannot create folder for video {self.path}: {error.strerror or error}") from error
        if not os.access(self._target.parent, os.W_OK | os.X_OK):
            raise OutputError(f"cannot write video to {self.path}: permission denied")

    def _open(self, width: int, height: int) -> None:
        warn_of_leftovers(self._target)
        try:
            partial, descriptor = create_partial(self._target)
        except OSError as error:
            raise OutputError(f"cannot write video to {self.path}: {_reason(error)}") from None
        os.close(descriptor)  # PyAV opens the file by name
        self.partial_path = partial
        self.rate = _frame_rate(resolve_rate(self._fps))
        self.time_base = 1 / self.rate
        try:
            container = av.open(str(partial), mode="w", format=self.format, options=dict(_MUXER_OPTIONS[self.format]))
        except (av.error.FFmpegError, OSError) as error:
            discard(partial)
            raise OutputError(f"cannot write video to {self.path}: {_reason(error)}") from None
        try:
            stream = container.add_stream(self.codec, rate=self.rate)
            stream.width, stream.height = even_size(width, height)
            stream.pix_fmt = "yuv420p"
            stream.time_base = self.time_base
            stream.gop_size = max(1, round(float(self.rate) * KEYFRAME_INTERVAL_S))
            # No B-frames: a fragmented MP4 has no edit list to hide their reordering delay, so
            # with them every frame would play two frames late (the first at 2/fps, not 0).
            stream.codec_context.max_b_frames = 0
            if self.codec in _X264_FAMILY:
                stream.options = {"crf": str(self.crf), "preset": self.preset}
            # PyAV opens the file only when the header is written; do it now so a bad
            # path fails on this frame, not at some later mux or at close.
            container.start_encoding()
        except (av.error.FFmpegError, OSError) as error:
            _close_quietly(container)
            discard(partial)
            raise OutputError(f"cannot write video to {self.path}: {_reason(error)}") from None
        except Exception:
            _close_quietly(container)
            discard(partial)
            raise
        self._container, self._stream, self._size = container, stream, (width, height)

    def write(self, frame: Frame) -> None:
        """Encodes one frame; the first one opens the file. After a failure the file will be discarded."""
        if self._closed:
            raise ValueError(f"{self.path}: write after close")
        try:
            self._encode(frame)
        except (av.error.FFmpegError, OSError) as error:
            self._failed = True
            raise OutputError(f"cannot write video to {self.path}: {_reason(error)}") from None
        except BaseException:
            self._failed = True
            raise
        self.frames_written += 1

    def _encode(self, frame: Frame) -> None:
        image = frame.overlay if frame.overlay is not None else frame.image
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(f"{self.path}: expected an RGB uint8 frame (H, W, 3), not {image.dtype} {image.shape}")
        if self._container is None:
            self._open(image.shape[1], image.shape[0])
        width, height = self._size
        if (image.shape[1], image.shape[0]) != (width, height):
            image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        video_frame = i420_frame(pad_to_even(image))
        # Stamp in 1/fps, not in the stream's time base: the MP4 muxer replaces that with
        # a finer one (e.g. 1/12800) when the header is written, and a running count in it
        # would put every frame at time zero.
        video_frame.pts = self.frames_written
        video_frame.time_base = self.time_base
        encode_and_mux(self._container, self._stream, video_frame)

    def close(self) -> None:
        """Flushes the encoder, closes the file and renames it onto the target. Safe to call twice.

        After a failed write, or when finishing fails, the temporary file is removed instead
        (and a finishing failure is raised as ``OutputError``).
        """
        if self._closed:
            return
        self._closed = True
        container, stream = self._container, self._stream
        self._container = self._stream = None
        if container is None:
            return
        if self._failed:
            self._discard(container)
            return
        try:
            # x264 holds back frames for lookahead and B-frames; without this they are lost.
            encode_and_mux(container, stream, None)
            container.close()
            put_in_place(self.partial_path, self._target)
        except (av.error.FFmpegError, OSError) as error:
            self._discard(container)
            raise OutputError(f"cannot finish video {self.path}: {_reason(error)}") from None
        except BaseException:
            self._discard(container)
            raise
        self.partial_path = None
        self._completed = True

    def _discard(self, container: av.container.OutputContainer) -> None:
        _close_quietly(container)
        if self.partial_path is not None:
            discard(self.partial_path)
        self.partial_path = None
        self.frames_written = 0


def _close_quietly(container: av.container.OutputContainer) -> None:
    """Closes a container whose file is being given up; its errors (a full disk again) change nothing."""
    try:
        container.close()
    except (av.error.FFmpegError, OSError, ValueError):
        pass
