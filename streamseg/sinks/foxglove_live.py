"""A live view of a run in Foxglove: a Foxglove WebSocket server with each stream's topics, as the bag sink writes them.

Per stream, under its topic T (:mod:`streamseg.sinks.ros_topics`): ``T/image`` (the camera
frame) and ``T/overlay`` as ``foxglove.CompressedImage`` (JPEG), ``T/labels`` and
``T/confidence`` as ``foxglove.RawImage`` (mono8, or mono16 beyond 255 classes), and
``T/legend``, a ``foxglove.ImageAnnotations`` naming the id and share of each class in the
frame on its class colour, to lay over the labels in an Image panel; for the run,
``/streamseg/classes`` holds the class table as JSON, sent again to each client that subscribes.

Nothing a client does slows the pipeline. A stream's ``write`` only keeps the newest frame; its
own thread encodes and sends it, at most ``max_fps`` a second and only the topics some client
subscribes to, so frames that come meanwhile are skipped (``frames_skipped``) and a view nobody
watches costs nothing. That thread runs on the cycles the pipeline leaves over (Linux's
SCHED_IDLE, as the CRF workers do): on a busy CPU the view shows fewer frames, not the run. It
draws the overlay itself when the pipeline has not (no other output shows one). The server
queues at most ``backlog`` messages for each client and drops the oldest when a client falls
behind (the foxglove-sdk server's own policy), so sending never waits for a client: one that
stops reading gets, once it reads again, what its socket still held and then the newest frames.
Nor does one hold up the run's end: closing the view waits for the server's stop only ``STOP_WAIT_S``.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable

import foxglove
import numpy as np
from foxglove.channels import CompressedImageChannel, ImageAnnotationsChannel, RawImageChannel
from foxglove.messages import Color, CompressedImage, ImageAnnotations, Point2, RawImage, TextAnnotation, Timestamp
from foxglove.websocket import ServerListener

from streamseg.errors import ConfigError, OutputError
from streamseg.frame import Frame, MessageHeader
from streamseg.image.class_counts import class_pixel_counts
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.image.render import Renderer
from streamseg.label_sets import CAMVID, LabelSet
from streamseg.sinks.base import Sink
from streamseg.sinks.ros_topics import (
    CLASSES_TOPIC,
    CONFIDENCE,
    LABELS,
    OVERLAY,
    class_table,
    encode_jpeg,
    frame_header,
    label_encoding,
    split_stamp,
    subtopic,
)

log = logging.getLogger(__name__)

IMAGE, LEGEND = "image", "legend"
# Messages queued per client before the oldest is dropped: a few frames of every topic of a few streams.
BACKLOG_MESSAGES = 32
# Frames a second sent per stream, unless told otherwise (--foxglove-fps): each costs a few ms of CPU to encode.
MAX_FPS = 5.0
# How long closing the view waits for the server to stop. The SDK's stop waits for each client's close handshake,
# which a client that stopped reading never completes (not before its own keepalive gives up, if it has one).
STOP_WAIT_S = 2.0
LEGEND_ROWS = 24  # the most classes the legend names: those with the most pixels in the frame
_LEGEND_FONT_PX, _LEGEND_ROW_PX, _LEGEND_MARGIN_PX = 14.0, 18.0, 8.0
_CLASSES_SCHEMA = {
    "type": "object",
    "properties": {
        "label_set": {"type": "string"},
        "classes": {"type": "array", "items": {"type": "object", "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "color": {"type": "array", "items": {"type": "integer"}},
        }}},
        "ignore_index": {"type": ["integer", "null"]},
    },
}


class FoxgloveLiveView:
    """The run's Foxglove WebSocket server on ``host``:``port`` (0: a free port, see ``port``), closed with the run.

    Its channels live in a context of their own, so two views in one process (two runs, two
    tests) never see each other's topics. ``stream`` adds a stream's topics, sent at most
    ``max_fps`` times a second; ``renderer`` makes the overlay drawer of each stream's view, for
    frames that come without an overlay (default: the label set's colours and legend, no stats).

    Raises:
        ConfigError: the port is out of range.
        OutputError: the address cannot be listened on (port in use, unknown host, ...).
    """

    def __init__(
        self, host: str = "127.0.0.1", port: int = 8765, *, label_set: LabelSet = CAMVID, backlog: int = BACKLOG_MESSAGES,
        max_fps: float = MAX_FPS, renderer: Callable[[], Renderer] | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ConfigError(f"cannot listen on {host}:{port}: port must be between 0 and 65535")
        if not max_fps > 0:
            raise ValueError(f"max_fps must be positive, got {max_fps}")
        self.label_set = label_set
        self.max_fps = float(max_fps)
        self.renderer = renderer or (lambda: Renderer(label_set=label_set, stats=False))
        self._table = class_table(label_set)
        self._context = foxglove.Context()
        self._classes = foxglove.Channel(CLASSES_TOPIC, schema=_CLASSES_SCHEMA, context=self._context)
        view = self

        class SendClassesOnSubscribe(ServerListener):
            def on_subscribe(self, client, channel) -> None:
                if channel.topic == CLASSES_TOPIC:
                    view._classes.log(view._table)

        try:
            self._server = foxglove.start_server(
                name="streamseg", host=host, port=port, context=self._context,
                server_listener=SendClassesOnSubscribe(), message_backlog_size=backlog,
            )
        except RuntimeError as error:  # the SDK says FoxgloveError: Failed to bind port: ...
            self._classes.close()
            raise OutputError(f"cannot listen on {host}:{port} for Foxglove: {error}") from None
        self.host = host
        self.port: int = self._server.port
        self._closed = False

    @property
    def url(self) -> str:
        """The address a Foxglove client opens, e.g. ``ws://127.0.0.1:8765``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    def stream(self, topic: str, frame_id: str) -> "FoxgloveStreamSink":
        """A sink sending one stream's frames under ``topic``; ``frame_id`` for its frames that come without one."""
        return FoxgloveStreamSink(self, topic, frame_id)

    def close(self) -> None:
        """Stops the server: every client is disconnected, one that stopped reading once it goes. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        # In a thread of its own, waited for STOP_WAIT_S: a stalled client would otherwise hold up the run's end.
        stopping = threading.Thread(target=self._server.stop, name="foxglove-stop", daemon=True)
        stopping.start()
        stopping.join(STOP_WAIT_S)
        if stopping.is_alive():
            log.warning("Foxglove view %s: a client that stopped reading is still connected; its connection closes when it goes", self.url)
        self._classes.close()

    def __enter__(self) -> "FoxgloveLiveView":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class FoxgloveStreamSink(Sink):
    """One stream's frames to the live view's clients (see the module); ``close`` removes its topics."""

    name = "foxglove"

    def __init__(self, view: FoxgloveLiveView, topic: str, frame_id: str) -> None:
        self.topic = topic
        self.frame_id = frame_id
        self.label_set = view.label_set
        self._interval_s = 1.0 / view.max_fps
        self._renderer = view.renderer()
        context = view._context
        self._channels = {
            IMAGE: CompressedImageChannel(subtopic(topic, IMAGE), context=context),
            OVERLAY: CompressedImageChannel(subtopic(topic, OVERLAY), context=context),
            LABELS: RawImageChannel(subtopic(topic, LABELS), context=context),
            CONFIDENCE: RawImageChannel(subtopic(topic, CONFIDENCE), context=context),
            LEGEND: ImageAnnotationsChannel(subtopic(topic, LEGEND), context=context),
        }
        self.frames_sent = 0
        self.frames_skipped = 0  # frames replaced by a newer one before they could be sent
        self._new_frame = threading.Condition()
        self._latest: Frame | None = None
        self._closed = False
        self._warned = False
        self._thread = threading.Thread(target=self._send_newest, name=f"foxglove{topic}", daemon=True)
        self._thread.start()

    def write(self, frame: Frame) -> None:
        """Keeps the frame for the sending thread, in place of one it has not taken yet; never waits for it."""
        with self._new_frame:
            if self._latest is not None:
                self.frames_skipped += 1
            self._latest = frame
            self._new_frame.notify()

    def close(self) -> None:
        """Stops the sending thread and closes the stream's topics (clients see them go). Safe to call twice."""
        with self._new_frame:
            if self._closed:
                return
            self._closed = True
            if self._latest is not None:
                self.frames_skipped += 1
            self._latest = None
            self._new_frame.notify()
        self._thread.join()
        for channel in self._channels.values():
            channel.close()

    def _send_newest(self) -> None:
        _run_on_idle_cycles()
        next_send = time.monotonic()
        while True:
            with self._new_frame:
                # The next frame goes no sooner than its slot; a frame written meanwhile replaces the one waiting.
                while not self._closed and (self._latest is None or time.monotonic() < next_send):
                    self._new_frame.wait(None if self._latest is None else max(0.0, next_send - time.monotonic()))
                if self._closed:
                    return
                frame, self._latest = self._latest, None
            next_send = max(next_send + self._interval_s, time.monotonic())
            try:
                self._send(frame)
            except Exception as error:  # a live view that fails must not end the run; it says so once
                if not self._warned:
                    self._warned = True
                    log.warning("Foxglove view of %s: cannot send frame %d: %s", self.topic, frame.index, error)

    def _send(self, frame: Frame) -> None:
        header = frame_header(frame, self.frame_id)
        stamp = _timestamp(header)
        channels = self._channels
        if channels[IMAGE].has_sinks():
            channels[IMAGE].log(CompressedImage(
                timestamp=stamp, frame_id=header.frame_id, format="jpeg", data=encode_jpeg(frame.image)
            ))
        if channels[OVERLAY].has_sinks():
            channels[OVERLAY].log(CompressedImage(
                timestamp=stamp, frame_id=header.frame_id, format="jpeg", data=encode_jpeg(self._overlay(frame))
            ))
        labels = frame.labels
        if labels is None:
            self.frames_sent += 1
            return
        if channels[LABELS].has_sinks():
            channels[LABELS].log(_raw_image(stamp, header.frame_id, labels, label_encoding(labels)))
        if frame.confidence is not None and channels[CONFIDENCE].has_sinks():
            confidence = confidence_at_size(frame.confidence, labels.shape)
            channels[CONFIDENCE].log(_raw_image(stamp, header.frame_id, confidence, "mono8"))
        if channels[LEGEND].has_sinks():
            channels[LEGEND].log(legend_annotations(labels, self.label_set, stamp))
        self.frames_sent += 1


    def _overlay(self, frame: Frame):
        """The frame's overlay, drawn here on a copy of the frame when the pipeline drew none: its other sinks share it."""
        if frame.overlay is not None:
            return frame.overlay
        drawn = copy.copy(frame)
        self._renderer.render(drawn)
        return drawn.overlay


def _run_on_idle_cycles() -> None:
    """Puts the calling thread in Linux's SCHED_IDLE class, which a waking pipeline thread preempts at once (see
    ``streamseg.refine.async_pool``, whose CRF workers do the same); elsewhere it keeps its priority."""
    try:
        os.sched_setscheduler(threading.get_native_id(), os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        pass


def _timestamp(header: MessageHeader) -> Timestamp:
    sec, nsec = split_stamp(header.stamp_ns)
    return Timestamp(sec=sec, nsec=nsec)


def _raw_image(stamp: Timestamp, frame_id: str, pixels: np.ndarray, encoding: str) -> RawImage:
    height, width = pixels.shape
    return RawImage(
        timestamp=stamp, frame_id=frame_id, width=width, height=height, encoding=encoding,
        step=width * pixels.itemsize, data=np.ascontiguousarray(pixels).tobytes(),
    )


def legend_annotations(labels: np.ndarray, label_set: LabelSet, stamp: Timestamp) -> ImageAnnotations:
    """A legend of the classes in ``labels``, most pixels first (at most ``LEGEND_ROWS``): one text a row at the top
    left, "ID name share%" on the class's colour, in black or white, whichever reads better on it."""
    counts = class_pixel_counts(labels, label_set.num_classes)
    present = [int(index) for index in np.argsort(-counts, kind="stable") if counts[index] > 0][:LEGEND_ROWS]
    texts = []
    for row, index in enumerate(present):
        red, green, blue = (int(channel) / 255.0 for channel in label_set.palette[index])
        ink = 0.0 if 0.299 * red + 0.587 * green + 0.114 * blue > 0.5 else 1.0
        texts.append(TextAnnotation(
            timestamp=stamp,
            position=Point2(x=_LEGEND_MARGIN_PX, y=_LEGEND_MARGIN_PX + (row + 1) * _LEGEND_ROW_PX),
            text=f"{index} {label_set.names[index]} {100.0 * counts[index] / labels.size:.0f}%",
            font_size=_LEGEND_FONT_PX,
            text_color=Color(r=ink, g=ink, b=ink, a=1.0),
            background_color=Color(r=red, g=green, b=blue, a=0.85),
        ))
    return ImageAnnotations(texts=texts)
