"""Frames of a video file, decoded with PyAV (FFmpeg)."""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Iterator

import av
import av.error
import cv2
import numpy as np
from av.container import InputContainer
from av.video.stream import VideoStream

from streamseg.errors import InputError
from streamseg.frame import Frame
from streamseg.sources.base import Source

log = logging.getLogger(__name__)

DEFAULT_FPS = 25.0  # when the container does not say; the commonest rate of the clips we meet
# swscale's area averaging, like the preprocess stage's INTER_AREA: thin lane marks and poles survive the shrink.
MODEL_SIZE_INTERPOLATION = "AREA"
# A file is called truncated only when more frames than this are missing: containers whose
# frame count or duration is off by one or two (edit lists, B-frame delay) are not damaged.
_TRUNCATION_SLACK_FRAMES = 2
# How cv2.rotate turns a picture counter-clockwise by 1, 2 or 3 quarter turns.
_COUNTER_CLOCKWISE = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}


class VideoFileSource(Source):
    """Decodes a video file's first video stream into upright RGB frames, in order.

    The file is opened here, so a missing file or one that is not a video fails at once
    with an ``InputError``. Damage found while decoding does not raise: a damaged packet
    is skipped (with the frames that depend on it) and decoding goes on with the next
    packet the decoder can use, as FFmpeg's own tools do; a file cut short or a container
    that cannot be read past some point ends the iteration. Either way the frames that
    could be decoded have been delivered and ``damage`` says, in one line, what was lost.

    A rotation in the file's display matrix (phone video is stored sideways with one) is
    applied, so frames, ``width`` and ``height`` are those of the upright picture.

    A source is read once: after the end of the file, an iteration the consumer closed
    early, or ``close()``, iterating again yields nothing. ``close()`` may be called from
    another thread at any time; a decode in progress finishes first, then the file closes.
    """

    live = False

    def __init__(self, path: str | Path, *, threaded: bool = False) -> None:
        self.path = Path(path)
        self.damage: str | None = None
        self.damaged_packets = 0  # rejected by the decoder or marked corrupt by the demuxer; counted as decoding goes
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
            # Frame and slice threads: several times the decoder's throughput, a few frames more
            # latency, and more CPU per frame. Off by default: in a pipeline the decoder has a
            # thread of its own, and FFmpeg's extra threads take the network's cores
            # (BENCHMARKS.md, Pipeline efficiency).
            self._stream.thread_type = "AUTO"
        rate = self._stream.average_rate
        self._fps = float(rate) if rate else DEFAULT_FPS
        self._quarter_turns = _upright_quarter_turns(self.path)
        width, height = int(self._stream.codec_context.width), int(self._stream.codec_context.height)
        self.width, self.height = (height, width) if self._quarter_turns % 2 else (width, height)
        self.frame_count = int(self._stream.frames or 0)  # 0 when the container does not say
        self._packets_read = 0  # video packets demuxed, damaged or not: how far into the file decoding got
        self._last_packet_time: float | None = None
        self._unreadable: str | None = None  # why the container could not be read to its end
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
            decoded = self._decoded_frames()
        index = 0
        finished = False
        try:
            while True:
                with self._lock:
                    if self._close_requested:
                        return
                    self._decoding = True
                try:
                    av_frame = next(decoded, None)
                finally:
                    with self._lock:
                        self._decoding = False
                        stop = self._close_requested
                if stop:
                    return
                if av_frame is None:
                    finished = True
                    self._record_damage(index)
                    return
                timestamp = av_frame.time if av_frame.time is not None else index / self._fps
                yield Frame(
                    index=index, timestamp=timestamp, image=self._upright_rgb(av_frame),
                    model_image=self._scaled_rgb(av_frame),
                )
                index += 1
        finally:
            with self._lock:
                decoded.close()
            self.close()
            if not finished and self.damaged_packets:
                # Stopped by the consumer or close(): what was skipped so far still deserves a word.
                skipped = _packets(self.damaged_packets)
                self.damage = f"{self.path} is damaged: skipped over {skipped} in its first {index} frames"

    def _decoded_frames(self) -> Iterator[av.VideoFrame]:
        """Decodes packet by packet, so that a damaged packet costs only itself and the frames built on it.

        The decoder resynchronises by itself at the next packet it can use (a key frame, or
        the next slice it can parse). A container that cannot be read any further ends
        the stream, after the frames still inside the decoder have come out.
        """
        packets = self._container.demux(self._stream)
        try:
            while True:
                try:
                    packet = next(packets)
                except StopIteration:
                    return  # demux's last, empty packet has flushed the decoder
                except (av.error.FFmpegError, OSError) as error:
                    self._unreadable = _reason(error)
                    yield from self._decode(None)  # what the decoder still holds is intact
                    return
                if packet.size:
                    self._note_packet(packet)
                yield from self._decode(packet)
        finally:
            packets.close()

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        """The frames ``packet`` completes; none when the decoder rejects it, which is then counted.

        A packet the demuxer marks corrupt is decoded all the same, as FFmpeg does (what
        survives in it may be enough for the frames after it), and counted as damaged.
        Damaged packets are not logged one by one (a burst of garbage spoils dozens) but
        summed up in ``damage``.
        """
        try:
            frames = self._stream.decode(packet)
        except av.error.FFmpegError:
            self.damaged_packets += 1
            return []
        if packet is not None and packet.is_corrupt:
            self.damaged_packets += 1
        return frames

    def _note_packet(self, packet: av.Packet) -> None:
        self._packets_read += 1
        stamp = packet.pts if packet.pts is not None else packet.dts
        if stamp is not None and packet.time_base is not None:
            time = float(stamp * packet.time_base)
            if self._last_packet_time is None or time > self._last_packet_time:
                self._last_packet_time = time

    def _upright_rgb(self, av_frame: av.VideoFrame) -> np.ndarray:
        image = av_frame.to_ndarray(format="rgb24")
        if self._quarter_turns:
            return cv2.rotate(image, _COUNTER_CLOCKWISE[self._quarter_turns])
        return image

    def _scaled_rgb(self, av_frame: av.VideoFrame) -> np.ndarray | None:
        """The frame at ``model_size``, scaled and converted from the decoder's YUV by swscale in one pass.

        That is cheaper than scaling the full-size RGB frame afterwards (BENCHMARKS.md, Pipeline
        efficiency). A rotated file is left to the preprocess stage, which scales the upright frame.
        """
        if self.model_size is None or self._quarter_turns:
            return None
        height, width = self.model_size
        return av_frame.reformat(width=width, height=height, format="rgb24", interpolation=MODEL_SIZE_INTERPOLATION).to_ndarray()

    def _record_damage(self, delivered: int) -> None:
        """Sets ``damage`` when packets were skipped or the file ended before the length its header promises.

        FFmpeg often stops quietly at the cut of a truncated file instead of raising, so
        the only sign is a shortfall against the frame count or the duration. The
        shortfall is measured in packets read, since skipped packets are not missing ones.
        """
        expected = self._expected_frames()
        also_skipped = f"; skipped over {_packets(self.damaged_packets)}" if self.damaged_packets else ""
        stopped = f"{self.path} is damaged: decoding stopped after {delivered} frames"
        if self._unreadable is not None:
            self.damage = f"{stopped} ({self._unreadable}{also_skipped})"
        elif expected is not None and self._packets_read < expected - _TRUNCATION_SLACK_FRAMES:
            self.damage = f"{stopped} (the file ends early, expected about {expected} frames{also_skipped})"
        elif self.damaged_packets:
            total = max(expected or 0, self._packets_read)
            skipped = _packets(self.damaged_packets)
            self.damage = f"{self.path} is damaged: skipped over {skipped}, decoded {delivered} of about {total} frames"
        elif expected is not None and delivered < expected - _TRUNCATION_SLACK_FRAMES:
            self.damage = f"{stopped} (the decoder gave only {delivered} of about {expected} frames)"

    def _expected_frames(self) -> int | None:
        if self.frame_count > 0:
            return self.frame_count
        duration = _duration_seconds(self._stream, self._container)
        if duration is None or duration <= 0:
            return None
        last_time, read = self._last_packet_time, self._packets_read
        if last_time is None or read == 0:
            return round(duration * self._fps)
        # Compare in time, since the rate of a variable-rate stream is only an average.
        start = _start_seconds(self._stream)
        missing_seconds = duration - (last_time - start + 1.0 / self._fps)
        return read + max(0, round(missing_seconds * self._fps))

    def close(self) -> None:
        """Closes the file now, or, when another thread is inside a decode, right after it."""
        with self._lock:
            self._close_requested = True
            if self._decoding or self._container is None:
                return  # the decoding thread closes it when its decode call returns
            self._container.close()  # under the lock, so a resuming iteration waits for it
            self._container = None


def _upright_quarter_turns(path: Path) -> int:
    """Counter-clockwise quarter turns that make the stored picture upright (0 to 3).

    FFmpeg attaches the stream's display matrix to decoded frames rather than exposing it
    on the stream, so the first frame is decoded, from a second handle that leaves the
    main one at the start. A file whose first frame cannot be decoded is taken as upright;
    its damage is found and reported when it is read.
    """
    try:
        with av.open(str(path)) as container:
            frames = container.decode(container.streams.video[0])
            try:
                first = next(frames, None)
            finally:
                frames.close()
    except (av.error.FFmpegError, OSError):
        return 0
    degrees = float(getattr(first, "rotation", 0) or 0)  # PyAV before 14 does not expose it
    turns = round(degrees / 90)
    if abs(degrees - 90 * turns) > 1:
        log.warning("%s asks to be shown rotated by %.0f degrees, not a quarter turn: left as stored", path, degrees)
        return 0
    return turns % 4


def _packets(count: int) -> str:
    return f"{count} damaged packet" if count == 1 else f"{count} damaged packets"


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
