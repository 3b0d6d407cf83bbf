"""The Foxglove live view, over a real WebSocket on 127.0.0.1: a client gets each topic, and one that stops reading holds nothing up."""

from __future__ import annotations

import functools
import socket
import threading
import time

import cv2
import numpy as np
import pytest

from foxglove_client import FoxgloveClient
from streamseg.errors import OutputError
from streamseg.frame import Frame, MessageHeader
from streamseg.label_sets import CITYSCAPES
from streamseg.sinks.foxglove_live import FoxgloveLiveView
from streamseg.sinks.ros_topics import class_table

TOPICS = ("/front/image", "/front/overlay", "/front/labels", "/front/confidence", "/front/legend")


@functools.cache
def scene(size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """A picture and its labels: sky over road, a car on the left."""
    height, width = size
    labels = np.zeros(size, np.uint8)
    labels[: height // 3] = 10  # sky
    labels[:, : width // 4] = 13  # car
    rows, columns = np.mgrid[0:height, 0:width]
    image = np.dstack([rows * 255 // height, columns * 255 // width, np.full(size, 128)]).astype(np.uint8)
    return image, labels


def frame(index: int, size=(90, 120)) -> Frame:
    """Frame ``index`` of the scene, stamped 10**9 s and ``index`` ns, as a frame read from a bag."""
    image, labels = scene(size)
    return Frame(
        index=index, timestamp=index / 30, image=image, labels=labels, overlay=255 - image,
        confidence=np.full((size[0] // 2, size[1] // 2), 200, np.uint8), header=MessageHeader(10**18 + index, "cam_front"),
    )


class FrameWriter:
    """Writes a frame every ``interval_s`` into ``sink`` on a thread of its own, as a pipeline would, until stopped:
    ``each`` every time, else frame i of the scene."""

    def __init__(self, sink, interval_s: float = 0.02, size=(90, 120), each: Frame | None = None) -> None:
        self.sink, self.written, self.each = sink, 0, each
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval_s, size), daemon=True)
        self._thread.start()

    def _run(self, interval_s: float, size) -> None:
        while not self._stop.wait(interval_s):
            self.sink.write(self.each or frame(self.written, size))
            self.written += 1

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def test_a_client_gets_every_topic_of_a_stream_and_the_class_table() -> None:
    with FoxgloveLiveView(port=0, label_set=CITYSCAPES) as view:
        sink = view.stream("/front", frame_id="front")
        with FoxgloveClient(view.url) as client:
            client.subscribe(*TOPICS, "/streamseg/classes")
            writer = FrameWriter(sink)
            try:
                first: dict = {}
                while set(first) != {*TOPICS, "/streamseg/classes"}:
                    received = client.receive()
                    first.setdefault(received.topic, received.message)
            finally:
                writer.stop()
                sink.close()

    assert first["/streamseg/classes"] == class_table(CITYSCAPES)
    labels = first["/front/labels"]
    assert labels.timestamp.seconds == 10**9 and labels.frame_id == "cam_front"  # the frame's own header, as from a bag
    assert (labels.encoding, labels.width, labels.height, labels.step) == ("mono8", 120, 90, 120)
    np.testing.assert_array_equal(np.frombuffer(labels.data, np.uint8).reshape(90, 120), frame(0).labels)
    confidence = first["/front/confidence"]
    assert (confidence.encoding, confidence.width, confidence.height) == ("mono8", 120, 90)
    assert set(np.frombuffer(confidence.data, np.uint8)) == {200}
    for topic in ("/front/image", "/front/overlay"):
        image = cv2.imdecode(np.frombuffer(first[topic].data, np.uint8), cv2.IMREAD_COLOR)
        assert first[topic].format == "jpeg" and image.shape == (90, 120, 3)
    legend = [text.text for text in first["/front/legend"].texts]
    assert legend == ["0 road 50%", "10 sky 25%", "13 car 25%"]  # most pixels first


def test_a_client_that_stops_reading_holds_nothing_up_and_then_gets_the_newest_frame() -> None:
    with FoxgloveLiveView(port=0) as view:
        sink = view.stream("/front", frame_id="front")
        with FoxgloveClient(view.url) as stalled:
            stalled.subscribe(*TOPICS)
            writer = FrameWriter(sink, interval_s=0.001, size=(1080, 1920))  # big frames, fast: the socket fills at once
            while writer.written < 300:  # a client that never reads while they are sent
                time.sleep(0.05)
            writer.stop()
            last = writer.written - 1
            while True:  # reading again: what the socket held, then the newest frames the server kept
                received = stalled.receive()
                if received.topic == "/front/labels" and received.message.timestamp.nanos == last:
                    break
        sink.close()  # the sending thread ends: it never waited on the client

    # Each frame was sent, or passed over for a newer one while the one before it was being sent; none queued up.
    assert sink.frames_sent + sink.frames_skipped == writer.written


def test_the_view_draws_the_overlay_of_a_frame_that_comes_without_one() -> None:
    with FoxgloveLiveView(port=0, label_set=CITYSCAPES) as view:
        sink = view.stream("/front", frame_id="front")
        with FoxgloveClient(view.url) as client:
            client.subscribe("/front/overlay")
            plain = frame(0)
            plain.overlay = None  # no other output wanted one: the pipeline drew none
            writer = FrameWriter(sink, each=plain)
            try:
                overlay = client.receive().message
            finally:
                writer.stop()
                sink.close()

    drawn = cv2.cvtColor(cv2.imdecode(np.frombuffer(overlay.data, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    image, labels = scene((90, 120))
    car = CITYSCAPES.palette[13].astype(int)
    # Where the car is, the picture is blended halfway with the car's colour (JPEG: near, not equal).
    blended = (image[60:, 5:25].astype(int) + car) / 2
    assert np.abs(drawn[60:, 5:25].astype(int) - blended).mean() < 12
    assert plain.overlay is None  # drawn on a copy: the frame the other sinks share is left as it was


def test_a_removed_stream_s_topics_leave_the_server() -> None:
    with FoxgloveLiveView(port=0) as view:
        sink = view.stream("/front", frame_id="front")
        with FoxgloveClient(view.url) as client:
            client.wait_for_topics(*TOPICS)
            sink.close()
            while set(TOPICS) & set(client.channels):
                client.read_one()
            assert set(client.channels) == {"/streamseg/classes"}


def test_a_port_in_use_is_an_output_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OutputError, match="cannot listen on 127.0.0.1"):
            FoxgloveLiveView(port=taken.getsockname()[1])
