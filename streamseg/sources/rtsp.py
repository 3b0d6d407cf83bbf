"""Frames of an RTSP stream (an IP camera, a media server), decoded with PyAV, reconnecting on loss.

A network camera goes away for many reasons (a reboot, a switch restart, a server that
drops idle sessions), so losing the stream is routine here, not an error: the reader
closes the connection and opens a new one, waiting a little longer after each failed try
(exponential back-off), forever unless told otherwise. Frame indices keep increasing
across reconnections, so the rest of the pipeline sees one stream with a gap.

Decoding runs on a thread of its own, so the pipeline's source thread only ever waits for
the next decoded frame; every network wait is bounded by ``read_timeout``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Callable, Iterable, Iterator

import av
import av.error
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from streamseg.errors import InputError
from streamseg.frame import Frame
from streamseg.sources.base import Source

logger = logging.getLogger(__name__)

DEFAULT_FPS = 25.0  # when the stream does not announce a rate
TRANSPORTS = ("tcp", "udp")
# Decoded frames waiting for the consumer. The pipeline's first queue already keeps the
# newest frames and counts what it drops; this only smooths the hand-over between threads.
_HANDOVER_FRAMES = 2


class RtspSource(Source):
    """An RTSP stream as live RGB frames; reconnects with back-off when the stream is lost.

    The first connection is made here, so a wrong address or a server that is not there
    fails at once with ``InputError``. Later losses (end of stream, a network error, no
    data for ``read_timeout`` seconds) are retried after ``backoff_initial`` seconds,
    doubling up to ``backoff_max``; the delay starts over after a frame arrives.

    Args:
        url: ``rtsp://host[:port]/path`` (credentials as ``rtsp://user:pass@host/...``).
        transport: ``"tcp"`` (RTP interleaved in the RTSP connection: works through NAT and
            firewalls, no packet loss) or ``"udp"`` (lower latency on a clean network).
        open_timeout: seconds to wait for a connection and the stream description.
        read_timeout: seconds without data after which the stream counts as lost.
        max_reconnects: tries in a row without a frame in between before giving up
            (iteration then ends and ``damage`` says why); ``None`` retries forever.
        backoff_initial: seconds before the first try after a loss.
        backoff_max: the longest wait between two tries.
        on_state: called with ``False`` when the stream is lost and ``True`` when frames
            flow again; runs on the decoding thread, so it must be quick and thread-safe.
            May also be set later through the ``on_state`` attribute (e.g. to a monitor's
            ``source_up``).

    Attributes:
        reconnects: tries to reopen the stream after a loss, successful or not.
        dropped: decoded frames discarded because the consumer was not taking them.
        last_error: why the stream was last lost, one line, or ``None``.
    """

    live = True

    def __init__(
        self,
        url: str,
        *,
        transport: str = "tcp",
        open_timeout: float = 5.0,
        read_timeout: float = 5.0,
        max_reconnects: int | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        if not url.lower().startswith(("rtsp://", "rtsps://")):
            raise InputError(f"not an RTSP address: {url} (expected rtsp://host[:port]/path)")
        if transport not in TRANSPORTS:
            raise InputError(f"RTSP transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        if not (open_timeout > 0 and read_timeout > 0):
            raise InputError("RTSP open and read timeouts must be positive")
        if not 0 < backoff_initial <= backoff_max:
            raise InputError("RTSP back-off must satisfy 0 < backoff_initial <= backoff_max")
        if max_reconnects is not None and max_reconnects < 0:
            raise InputError(f"max_reconnects cannot be negative, not {max_reconnects}")
        self.url = url
        self.transport = transport
        self.open_timeout = float(open_timeout)
        self.read_timeout = float(read_timeout)
        self.max_reconnects = max_reconnects
        self.backoff_initial = float(backoff_initial)
        self.backoff_max = float(backoff_max)
        self.on_state = on_state
        self.reconnects = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.damage: str | None = None
        self._stop = threading.Event()
        self._ready = threading.Condition()  # guards the fields below and wakes the consumer
        self._frames: deque[Frame] = deque()
        self._reader_done = False
        self._up = False
        self._reader: threading.Thread | None = None
        try:
            self._container: av.container.InputContainer | None = self._open()
        except _StreamLost as lost:
            raise InputError(f"cannot open {_redact(url)}: {lost}") from None
        stream = self._container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else DEFAULT_FPS
        self.width = int(stream.codec_context.width)
        self.height = int(stream.codec_context.height)

    @property
    def fps(self) -> float:
        return self._fps

    def __iter__(self) -> Iterator[Frame]:
        with self._ready:
            if not self._claim_the_only_iteration(self._stop.is_set()):
                return iter(())
        self._reader = threading.Thread(target=self._read, name="rtsp-reader", daemon=True)
        self._reader.start()
        return self._deliver()

    def _deliver(self) -> Iterator[Frame]:
        try:
            while True:
                with self._ready:
                    while not self._frames and not self._reader_done and not self._stop.is_set():
                        self._ready.wait()
                    if not self._frames or self._stop.is_set():
                        return
                    frame = self._frames.popleft()
                yield frame
        finally:
            self.close()

    def close(self) -> None:
        """Ends iteration at once and releases the connection. Safe to call twice, from any thread.

        The decoding thread notices within ``read_timeout`` seconds (the longest a network
        read can block); this waits that long at most for it to close the connection.
        """
        self._stop.set()
        with self._ready:
            self._ready.notify_all()
            container = None
            if self._reader is None:  # never iterated: nobody else holds the connection
                container, self._container = self._container, None
        if container is not None:
            container.close()
        reader = self._reader
        if reader is not None and reader is not threading.current_thread():
            reader.join(timeout=self.read_timeout + 1.0)

    # --- the decoding thread ---------------------------------------------------------------

    def _read(self) -> None:
        container, self._container = self._container, None
        index = 0
        started = time.monotonic()
        failures_in_row = 0
        backoff = self.backoff_initial
        try:
            while not self._stop.is_set():
                if container is None:
                    if self.max_reconnects is not None and failures_in_row >= self.max_reconnects:
                        self.damage = (
                            f"{_redact(self.url)}: the stream was lost and {failures_in_row} reconnection "
                            f"tries failed ({self.last_error})"
                        )
                        return
                    if self._stop.wait(backoff):
                        return
                    backoff = min(backoff * 2, self.backoff_max)
                    self.reconnects += 1
                    failures_in_row += 1
                    try:
                        container = self._open()
                    except _StreamLost as lost:
                        self.last_error = str(lost)
                        logger.warning("%s: reconnection %d failed: %s", _redact(self.url), self.reconnects, lost)
                        continue
                for image in self._decode(container):
                    if self._stop.is_set():
                        return
                    self._hand_over(Frame(index=index, timestamp=time.monotonic() - started, image=image))
                    index += 1
                    failures_in_row = 0
                    backoff = self.backoff_initial
                    self._set_up(True)
                if self._stop.is_set():
                    return
                logger.warning("%s: stream lost (%s); reconnecting", _redact(self.url), self.last_error)
                self._set_up(False)
                container.close()
                container = None
        finally:
            if container is not None:
                container.close()
            self._set_up(False)
            with self._ready:
                self._reader_done = True
                self._ready.notify_all()

    def _decode(self, container: av.container.InputContainer) -> Iterable:
        """RGB arrays until the stream ends or fails; records why in ``last_error``."""
        try:
            for av_frame in container.decode(video=0):
                yield av_frame.to_ndarray(format="rgb24")
                if self._stop.is_set():
                    return
            self.last_error = "the server ended the stream"
        except (av.error.FFmpegError, OSError) as error:
            self.last_error = _reason(error)

    def _open(self) -> av.container.InputContainer:
        options = {
            "rtsp_transport": self.transport,
            # FFmpeg's own socket timeout, in microseconds; PyAV's timeout below also covers
            # the time between packets that arrive but never make a frame.
            "timeout": str(int(self.read_timeout * 1_000_000)),
            "fflags": "nobuffer",
        }
        try:
            container = av.open(self.url, options=options, timeout=(self.open_timeout, self.read_timeout))
        except (av.error.FFmpegError, OSError) as error:
            raise _StreamLost(_reason(error)) from None
        if not container.streams.video:
            container.close()
            raise _StreamLost("the stream has no video track")
        return container

    def _hand_over(self, frame: Frame) -> None:
        with self._ready:
            if len(self._frames) >= _HANDOVER_FRAMES:
                self._frames.popleft()
                self.dropped += 1
            self._frames.append(frame)
            self._ready.notify_all()

    def _set_up(self, up: bool) -> None:
        if up == self._up:
            return
        self._up = up
        callback = self.on_state
        if callback is not None:
            try:
                callback(up)
            except Exception:  # a broken observer must not end the stream
                logger.exception("on_state callback failed")


class _StreamLost(Exception):
    """Opening or reading the stream failed; the message is one line for the user."""


class SourceReconnectsCollector(Collector):
    """Exposes a source's ``reconnects`` count as ``streamseg_source_reconnects_total``.

    The count is read when Prometheus scrapes, so the source needs no reference to any
    metrics object:

        registry.register(SourceReconnectsCollector(source))
    """

    def __init__(self, source: RtspSource) -> None:
        self.source = source

    def collect(self) -> Iterable[CounterMetricFamily]:
        family = CounterMetricFamily(
            "streamseg_source_reconnects", "Tries to reopen a live source after the stream was lost."
        )
        family.add_metric([], self.source.reconnects)
        yield family


def _reason(error: BaseException) -> str:
    """FFmpeg's message, one line, without the errno PyAV puts in front of it."""
    message = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return " ".join(str(message).split())


def _redact(url: str) -> str:
    """The address without a password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
