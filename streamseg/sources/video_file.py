"""Frames of a video file, decoded with PyAV (FFmpeg)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

import av
import av.error
from av.container import InputContainer
from av.video.stream import VideoStream

from streamseg.errors import InputError
from streamseg.frame import Frame
from streamseg.sources.base import Source

DEFAULT_FPS = 25.0  # when the container does not say; the commonest rate of the clips we meet
# A file is called truncated only when more frames than this are missing: containers whose
# frame count or duration is off by one or two (edit lists, B-frame delay) are not damaged.
_TRUNCATION_SLACK_FRAMES = 2


class VideoFileSource(Source):
    """Decodes a video file's first video stream into RGB frames, in order, dropping none.

    The file is opened here, so a missing file or one that is not a video fails at once
    with an ``InputError``. Damage found while decoding (corrupt packets, a file cut
    short) does not raise: iteration stops, the frames before it have been delivered and
    ``damage`` says what happened.

    A source is read once: after the end of the file, an iteration the consumer closed
    early, or ``close()``, iterating again yields nothing. ``close()`` may be called from
    another thread at any time; a decode in progress finishes first, then the file closes.
    """

    live = False

    def __init__(self, path: str | Path, *, threaded: bool = True) -> None:
        self.path = Path(path)
        self.damage: str | None = None
        if not self.path.exists():
            raise InputError(f"no such file: {self.path}")
        try:
            container = av.open(str(self.path))
        except (av.error.FFmpegError, OSError) as error:
            raise InputError(f"cannot open {self.path} as video: {_reason(error)}") from None
        if not container.streams.video:
            container.close()
            raise InputError(f"cannot open {self.path} as video: it has no video stream")
        self._container = container
        self._stream = container.streams.video[0]
        if threaded:
            # Frame and slice threads: several times the throughput, a few frames more latency.
            self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate
        self._fps = float(rate) if rate else DEFAULT_FPS
        self.width = int(self._stream.codec_context.width)
        self.height = int(self._stream.codec_context.height)
        self.frame_count = int(self._stream.frames or 0)  # 0 when the container does not say
        self._lock = threading.Lock()
        self._close_requested = False
        self._decoding = False  # a decode call is running; closing now would free its buffers under it

    @property
    def fps(self) -> float:
        return self._fps

    def __iter__(self) -> Iterator[Frame]:
        with self._lock:
            if not self._claim_the_only_iteration(self._close_requested):
                return iter(())
        return self._frames()

    def _frames(self) -> Iterator[Frame]:
        with self._lock:
            if self._container is None:
                return  # closed between iter() and the first next()
            decoded = self._container.decode(self._stream)
        index = 0
        last_time: float | None = None
        try:
            while True:
                with self._lock:
                    if self._close_requested:
                        return
                    self._decoding = True
                av_frame = None
                failure: str | None = None
                try:
                    av_frame = next(decoded, None)
                except (av.error.FFmpegError, OSError) as error:
                    failure = _reason(error)
                finally:
                    with self._lock:
                        self._decoding = False
                        stop = self._close_requested
                if stop:
                    return
                if failure is not None:
                    self._record_damage(index, failure)
                    return
                if av_frame is None:
                    self._check_complete(index, last_time)
                    return
                timestamp = av_frame.time if av_frame.time is not None else index / self._fps
                last_time = timestamp
                yield Frame(index=index, timestamp=timestamp, image=av_frame.to_ndarray(format="rgb24"))
                index += 1
        finally:
            with self._lock:
                decoded.close()
            self.close()

    def _check_complete(self, delivered: int, last_time: float | None) -> None:
        """Sets ``damage`` when the file ended well before the length its header promises.

        FFmpeg often stops quietly at the cut of a truncated file instead of raising, so
        the only sign is a shortfall against the frame count or the duration.
        """
        expected = self._expected_frames(last_time, delivered)
        if expected is not None and delivered < expected - _TRUNCATION_SLACK_FRAMES:
            self._record_damage(delivered, f"the file ends early, expected about {expected} frames")

    def _expected_frames(self, last_time: float | None, delivered: int) -> int | None:
        if self.frame_count > 0:
            return self.frame_count
        duration = _duration_seconds(self._stream, self._container)
        if duration is None or duration <= 0:
            return None
        if last_time is None or delivered == 0:
            return round(duration * self._fps)
        # Compare in time, since the rate of a variable-rate stream is only an average.
        start = _start_seconds(self._stream)
        missing_seconds = duration - (last_time - start + 1.0 / self._fps)
        return delivered + max(0, round(missing_seconds * self._fps))

    def _record_damage(self, delivered: int, reason: str) -> None:
        self.damage = f"{self.path} is damaged: decoding stopped after {delivered} frames ({reason})"

    def close(self) -> None:
        """Closes the file now, or, when another thread is inside a decode, right after it."""
        with self._lock:
            self._close_requested = True
            if self._decoding or self._container is None:
                return  # the decoding thread closes it when its decode call returns
            self._container.close()  # under the lock, so a resuming iteration waits for it
            self._container = None


def _reason(error: BaseException) -> str:
    """FFmpeg's message without the errno and file name PyAV wraps around it."""
    message = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())  # one line, whatever the library put in it


def _duration_seconds(stream: VideoStream, container: InputContainer) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _start_seconds(stream: VideoStream) -> float:
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)
