"""Pushes the rendered overlay to an RTSP server (RECORD / publish), H.264 tuned for low latency."""

from __future__ import annotations

import time
from fractions import Fraction

import av
import av.error
import cv2

from streamseg.errors import ConfigError, OutputError
from streamseg.frame import Frame
from streamseg.sinks.base import Sink
from streamseg.sinks.encoding import FrameRate, encode_and_mux, i420_frame, resolve_rate

TRANSPORTS = ("tcp", "udp")
_RTP_CLOCK = Fraction(1, 90_000)  # RTP's video clock; any finer stamp would be rounded to it anyway
# x264 settings for a live feed: no lookahead or B-frames (they hold frames back), a key
# frame every second so a viewer who joins late sees a picture within a second.
_LOW_LATENCY = {"preset": "ultrafast", "tune": "zerolatency"}


class RtspOutputSink(Sink):
    """Publishes ``frame.overlay`` (or ``frame.image``) to ``url`` on an RTSP server that accepts RECORD.

    The connection is made on the first frame, whose size (cut to even numbers, as 4:2:0
    needs) becomes the stream's; later frames of another size are resized to it. Frames are
    stamped with the host clock, so viewers see them at the pace the pipeline made them,
    gaps from dropped frames included. A failure to connect or to send raises from
    ``write`` with the reason; ``close`` flushes the encoder and tears the session down.

    Args:
        url: ``rtsp://host[:port]/path`` on a server that takes published streams
            (mediamtx, GStreamer's rtsp-server in record mode, ``ffmpeg -rtsp_flags listen``).
        fps: the nominal rate, which sets the key-frame interval and the encoder's rate control.
        codec: an FFmpeg H.264 encoder.
        transport: ``"tcp"`` or ``"udp"`` for the RTP packets.
        timeout: seconds a connect or a send may block before it counts as failed.
    """

    name = "rtsp_out"

    def __init__(
        self, url: str, *, fps: FrameRate, codec: str = "libx264", transport: str = "tcp", timeout: float = 5.0
    ) -> None:
        if not url.lower().startswith("rtsp://"):
            raise OutputError(f"not an RTSP address: {url} (expected rtsp://host[:port]/path)")
        if not callable(fps) and not fps > 0:
            raise ConfigError(f"the RTSP output frame rate must be positive, not {fps}")
        if transport not in TRANSPORTS:
            raise ConfigError(f"RTSP transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        try:
            av.codec.Codec(codec, "w")
        except av.codec.codec.UnknownCodecError:
            raise ConfigError(f"unknown video encoder {codec!r} (this FFmpeg build lacks it)") from None
        self.url = url
        self._fps = fps
        self.fps: float | None = None  # read when the first frame opens the session
        self.codec = codec
        self.transport = transport
        self.timeout = float(timeout)
        self.frames_written = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.video.stream.VideoStream | None = None
        self._size: tuple[int, int] | None = None
        self._started_at = 0.0
        self._last_pts = -1
        self._broken = False  # a send failed: the session is gone, nothing is left to flush
        self._closed = False

    def _open(self, width: int, height: int) -> None:
        self.fps = resolve_rate(self._fps)
        options = {"rtsp_transport": self.transport, "timeout": str(int(self.timeout * 1_000_000))}
        try:
            container = av.open(self.url, mode="w", format="rtsp", options=options, timeout=self.timeout)
        except (av.error.FFmpegError, OSError) as error:
            raise ConnectionError(f"cannot publish to {self.url}: {_reason(error)}") from None
        try:
            stream = container.add_stream(self.codec, rate=Fraction(self.fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            stream.time_base = _RTP_CLOCK
            stream.codec_context.time_base = _RTP_CLOCK
            stream.gop_size = max(1, round(self.fps))
            if self.codec in ("libx264", "h264"):
                stream.options = dict(_LOW_LATENCY)
            container.start_encoding()  # ANNOUNCE and SETUP happen here: a refused publish fails now
        except (av.error.FFmpegError, OSError) as error:
            container.close()
            raise ConnectionError(f"cannot publish to {self.url}: {_reason(error)}") from None
        except Exception:
            container.close()
            raise
        self._container, self._stream, self._size = container, stream, (width, height)
        self._started_at = time.perf_counter()

    def write(self, frame: Frame) -> None:
        """Encodes and sends one frame; the first one connects."""
        if self._closed:
            raise ValueError(f"{self.url}: write after close")
        image = frame.overlay if frame.overlay is not None else frame.image
        if self._container is None:
            self._open(image.shape[1] & ~1, image.shape[0] & ~1)
        width, height = self._size
        if (image.shape[1], image.shape[0]) != (width, height):
            if image.shape[1] - width <= 1 and image.shape[0] - height <= 1:
                image = image[:height, :width]  # an odd row or column is cut, not scaled
            else:
                image = cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)
        video_frame = i420_frame(image)
        pts = round((time.perf_counter() - self._started_at) / _RTP_CLOCK)
        video_frame.pts = self._last_pts = max(pts, self._last_pts + 1)
        video_frame.time_base = _RTP_CLOCK
        try:
            encode_and_mux(self._container, self._stream, video_frame)
        except (av.error.FFmpegError, OSError) as error:
            self._broken = True
            raise ConnectionError(f"sending to {self.url} failed: {_reason(error)}") from None
        self.frames_written += 1

    def close(self) -> None:
        """Sends the encoder's last frames and ends the session. Safe to call twice.

        The connection is closed even when the flush fails (the server went away); that
        failure is then raised. After a failed ``write`` there is nothing to flush, and
        closing only releases the connection.
        """
        if self._closed:
            return
        self._closed = True
        container, stream = self._container, self._stream
        self._container = self._stream = None
        if container is None:
            return
        try:
            if not self._broken:
                encode_and_mux(container, stream, None)  # with zerolatency x264 holds none back; flush anyway
        except (av.error.FFmpegError, OSError) as error:
            raise ConnectionError(f"flushing the stream to {self.url} failed: {_reason(error)}") from None
        finally:
            try:
                container.close()
            except (av.error.FFmpegError, OSError):
                pass  # the TEARDOWN of a session whose server is gone; nothing is left to save


def _reason(error: BaseException) -> str:
    message = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())
