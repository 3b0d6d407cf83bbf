"""Frames of an RTSP stream (an IP camera, a media server), decoded with PyAV, reconnecting on loss.

A network camera goes away for many reasons (a reboot, a switch restart, a server that
drops idle sessions), and it is often not up yet when the program starts (a camera that
boots after the vehicle's computer), so a stream that is not there is routine here, not
an error: the reader keeps trying, waiting a little longer after each failed try
(exponential back-off), forever unless told otherwise. The start and a drop are the same
outage to it. Frame indices keep increasing across reconnections, so the rest of the
pipeline sees one stream with a gap.

Nothing touches the network until iteration starts: connecting and decoding run on a
thread of their own, so building a pipeline never blocks on a camera, and ``close()``
returns at once even while a connection attempt is under way (the attempt is abandoned
and ends by itself within ``open_timeout``).
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

from streamseg.errors import ConfigError, InputError
from streamseg.frame import Frame
from streamseg.sources.base import Source

logger = logging.getLogger(__name__)

DEFAULT_FPS = 25.0  # when the stream does not announce a rate, or before it is known
TRANSPORTS = ("tcp", "udp")
# Decoded frames waiting for the consumer. The pipeline's first queue already keeps the
# newest frames and counts what it drops; this only smooths the hand-over between threads.
_HANDOVER_FRAMES = 2


class RtspSource(Source):
    """An RTSP stream as live RGB frames; connects on first iteration and reconnects with back-off.

    An outage is a failed connection attempt (at start or later) or a lost stream (end of
    stream, a network error, no data for ``read_timeout`` seconds). During one, tries are
    ``backoff_initial`` seconds apart, doubling up to ``backoff_max``; the delay starts over
    after a frame arrives. Each change of state is logged once: down (with the reason and the
    next wait), connected, reconnected after a drop. An outage that outlasts
    ``give_up_after`` seconds or ``max_reconnects`` tries ends iteration, and ``damage``
    says why.

    Args:
        url: ``rtsp://host[:port]/path`` (credentials as ``rtsp://user:pass@host/...``).
        transport: ``"tcp"`` (RTP interleaved in the RTSP connection: works through NAT and
            firewalls, no packet loss) or ``"udp"`` (lower latency on a clean network).
        open_timeout: seconds one connection attempt may take (connection and stream description).
        read_timeout: seconds without data after which the stream counts as lost.
        max_reconnects: retries in a row without a frame in between before giving up (after
            the failure that began the outage); ``None`` retries forever.
        give_up_after: seconds an outage may last before giving up; ``None`` (the default)
            retries forever.
        backoff_initial: seconds before the first retry of an outage.
        backoff_max: the longest wait between two tries.
        on_state: called with ``False`` when the stream is lost and ``True`` when frames
            flow again; runs on the decoding thread, so it must be quick and thread-safe.
            May also be set later through the ``on_state`` attribute (e.g. to a monitor's
            ``source_up``).

    Attributes:
        reconnects: connection tries after the first one, at start or after a loss, successful or not.
        dropped: decoded frames discarded because the consumer was not taking them.
        last_error: why the last try or the stream failed, one line, or ``None``.
        width, height: the stream's frame size once connected, else ``None``.
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
        give_up_after: float | None = None,
        backoff_initial: float = 0.5,
        backoff_max: float = 8.0,
        on_state: Callable[[bool], None] | None = None,
    ) -> None:
        if not url.lower().startswith(("rtsp://", "rtsps://")):
            raise InputError(f"not an RTSP address: {url} (expected rtsp://host[:port]/path)")
        if transport not in TRANSPORTS:
            raise ConfigError(f"RTSP transport must be one of {', '.join(TRANSPORTS)}, not {transport!r}")
        if not (open_timeout > 0 and read_timeout > 0):
            raise ConfigError("RTSP open and read timeouts must be positive")
        if not 0 < backoff_initial <= backoff_max:
            raise ConfigError("RTSP back-off must satisfy 0 < backoff_initial <= backoff_max")
        if max_reconnects is not None and max_reconnects < 0:
            raise ConfigError(f"max_reconnects cannot be negative, not {max_reconnects}")
        if give_up_after is not None and not give_up_after > 0:
            raise ConfigError(f"give_up_after must be positive, not {give_up_after}")
        self.url = url
        self.transport = transport
        self.open_timeout = float(open_timeout)
        self.read_timeout = float(read_timeout)
        self.max_reconnects = max_reconnects
        self.give_up_after = None if give_up_after is None else float(give_up_after)
        self.backoff_initial = float(backoff_initial)
        self.backoff_max = float(backoff_max)
        self.on_state = on_state
        self.reconnects = 0
        self.dropped = 0
        self.last_error: str | None = None
        self.damage: str | None = None
        self.width: int | None = None
        self.height: int | None = None
        self._fps: float | None = None
        self._stop = threading.Event()
        self._ready = threading.Condition()  # guards the fields below and wakes the consumer
        self._frames: deque[Frame] = deque()
        self._reader_done = False
        self._opening = False  # the reader is inside av.open, which cannot be cut short
        self._up = False
        self._reader: threading.Thread | None = None

    @property
    def fps(self) -> float:
        """The rate the stream announces once connected; ``DEFAULT_FPS`` before."""
        return self._fps or DEFAULT_FPS

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

        A decoding thread that is reading notices within ``read_timeout`` seconds (the longest
        a network read can block); this waits that long at most for it to close the
        connection. One that is connecting is not waited for: it drops the connection it
        gets, or gives up, within ``open_timeout`` seconds on its own.
        """
        with self._ready:
            self._stop.set()
            self._ready.notify_all()
            connecting = self._opening
        reader = self._reader
        if reader is not None and not connecting and reader is not threading.current_thread():
            reader.join(timeout=self.read_timeout + 1.0)

    # --- the decoding thread ---------------------------------------------------------------

    def _read(self) -> None:
        clock_start = time.monotonic()
        index = 0
        outage = _Outage(self.backoff_initial, self.backoff_max)
        container: av.container.InputContainer | None = None
        try:
            while not self._stop.is_set():
                container = self._connect(outage)
                if container is None:
                    return
                for image in self._decode(container):
                    if self._stop.is_set():
                        return
                    self._hand_over(Frame(index=index, timestamp=time.monotonic() - clock_start, image=image))
                    index += 1
                    outage.end()
                    self._set_up(True)
                container.close()
                container = None
                if self._stop.is_set():
                    return
                if outage.active:  # connected, but no frame came: one more failed try of the same outage
                    self._report_failed_try(outage, self.last_error or "no frames")
                    continue
                outage.begin(time.monotonic(), after_frames=True)
                outage.reason = self.last_error
                logger.warning(
                    "%s: stream lost (%s); reconnecting in %s", _redact(self.url), self.last_error, _seconds(outage.wait)
                )
                self._set_up(False)
        finally:
            if container is not None:
                container.close()
            self._set_up(False)
            with self._ready:
                self._reader_done = True
                self._ready.notify_all()

    def _connect(self, outage: "_Outage") -> av.container.InputContainer | None:
        """An open stream, trying until one opens; ``None`` when stopped or when the outage lasted too long.

        Outside an outage the first try is made at once; during one, after the back-off wait.
        """
        while True:
            if outage.active:
                self.damage = self._give_up_reason(outage)
                if self.damage is not None:
                    return None
                if self._stop.wait(outage.wait):
                    return None
                outage.waited()
                self.reconnects += 1
            try:
                container = self._open_unless_stopped()
            except _StreamLost as lost:
                self._report_failed_try(outage, str(lost))
                continue
            if container is None:
                return None
            self._report_connected(outage, container)
            return container

    def _give_up_reason(self, outage: "_Outage") -> str | None:
        """Why the outage ends the stream, or ``None`` while tries go on."""
        where = _redact(self.url)
        if self.max_reconnects is not None and outage.tries >= self.max_reconnects:
            if outage.after_frames:
                return (f"{where}: the stream was lost and {outage.tries} reconnection tries failed "
                        f"({self.last_error})")
            return f"{where}: could not connect in {outage.tries + 1} tries ({self.last_error})"
        if self.give_up_after is not None and time.monotonic() - outage.since >= self.give_up_after:
            what = "the stream was lost and did not come back" if outage.after_frames else "could not connect"
            return f"{where}: {what} within {_seconds(self.give_up_after)} ({self.last_error})"
        return None

    def _report_failed_try(self, outage: "_Outage", reason: str) -> None:
        """One warning when an outage begins or its cause changes; later identical failures only at debug level."""
        self.last_error = reason
        if not outage.active:
            outage.begin(time.monotonic(), after_frames=False)
        elif reason == outage.reason:
            logger.debug("%s: try %d failed (%s); next in %s", _redact(self.url), outage.tries, reason, _seconds(outage.wait))
            return
        outage.reason = reason
        logger.warning("%s is down (%s); retrying in %s", _redact(self.url), reason, _seconds(outage.wait))

    def _report_connected(self, outage: "_Outage", container: av.container.InputContainer) -> None:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        self._fps = float(rate) if rate else DEFAULT_FPS
        first_connection = self.width is None
        self.width = int(stream.codec_context.width)
        self.height = int(stream.codec_context.height)
        where = _redact(self.url)
        if outage.after_frames:
            logger.info("%s: reconnected after a drop of %s (%d tries)", where, _seconds(time.monotonic() - outage.since),
                        outage.tries)
        elif first_connection:
            logger.info("%s connected (%dx%d, %.4g fps)", where, self.width, self.height, self.fps)
        else:
            logger.info("%s: connected again", where)

    def _open_unless_stopped(self) -> av.container.InputContainer | None:
        """Opens the stream, or ``None`` when ``close()`` came first or came while opening."""
        with self._ready:
            if self._stop.is_set():
                return None
            self._opening = True
        try:
            container = self._open()
        finally:
            with self._ready:
                self._opening = False
        if self._stop.is_set():  # close() did not wait for this attempt: drop what it got
            container.close()
            return None
        return container

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


class _Outage:
    """A time without frames that began with a failure: since when, how many retries, how long until the next."""

    def __init__(self, backoff_initial: float, backoff_max: float) -> None:
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.active = False
        self.after_frames = False  # a drop of a stream that had delivered, not a start that never did
        self.since = 0.0
        self.tries = 0  # tries after the failure that began the outage
        self.wait = backoff_initial
        self.reason: str | None = None  # the failure last reported to the user

    def begin(self, now: float, *, after_frames: bool) -> None:
        self.active, self.after_frames, self.since, self.tries, self.wait = True, after_frames, now, 0, self.backoff_initial
        self.reason = None

    def waited(self) -> None:
        """A retry is made now: count it, and wait longer before the next."""
        self.tries += 1
        self.wait = min(self.wait * 2, self.backoff_max)

    def end(self) -> None:
        self.active = False


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


def _seconds(value: float) -> str:
    """'0.5 s', '2 s', '1.2 s': short enough for a log line."""
    return f"{value:.2g} s" if value < 10 else f"{value:.0f} s"


def _redact(url: str) -> str:
    """The address without a password, for messages and logs."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not at or ":" not in credentials:
        return url
    return f"{scheme}{sep}{credentials.split(':', 1)[0]}:***@{host}"
