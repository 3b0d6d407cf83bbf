"""Writes each stream's labels, overlay and confidence into a ROS 2 bag: one MCAP file that rosbags, ``ros2 bag`` and Foxglove read.

The messages are CDR-encoded ROS 2 messages with their definitions stored in the file (schema
encoding ``ros2msg``, profile ``ros2``), as ``ros2 bag record`` writes MCAP, so a reader needs no
ROS installation and no message packages to decode them. The topics, stamps and class table are
those of :mod:`streamseg.sinks.ros_topics`.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

import numpy as np
from mcap.writer import CompressionType, Writer
from rosbags.typesys import Stores, get_typestore

from streamseg.errors import OutputError
from streamseg.frame import Frame
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.label_sets import CAMVID, LabelSet
from streamseg.sinks.base import Sink
from streamseg.sinks.partial_file import create_partial, discard, put_in_place, real_target, warn_of_leftovers
from streamseg.sinks.ros_topics import (
    CLASSES_TOPIC,
    CONFIDENCE,
    LABELS,
    OVERLAY,
    classes_json,
    encode_jpeg,
    frame_header,
    label_encoding,
    split_stamp,
    subtopic,
)
from streamseg.sinks.shared import SharedOutputs

log = logging.getLogger(__name__)

IMAGE, COMPRESSED_IMAGE, STRING = "sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage", "std_msgs/msg/String"
# A chunk is the unit a killed run's bag can be recovered up to: 1 MiB before compression, a few frames at 480x360.
CHUNK_BYTES = 1 << 20


class RosBagWriter:
    """One ROS 2 MCAP file, written under a temporary name and renamed onto ``path`` once finished.

    Every stream's sink writes through the same writer (``streamseg.sinks.shared``), each under its
    own topic; writes from the streams' threads are serialised here. ``close`` writes the summary
    and index, syncs and renames the file onto ``path``; a bag that failed to write, or holds no
    frame, is removed instead and ``path`` is left as it was.

    A run killed mid-write leaves ``.NAME.partial-XXXXXXXX`` beside ``path``, holding every chunk
    completed before it stopped (each frame's messages are flushed to the OS as the chunk they
    close is written), but no summary. ``mcap recover .NAME.partial-XXXXXXXX -o NAME`` (the MCAP
    Go CLI) or :func:`streamseg.sinks.bag_recovery.recover_bag` writes a whole bag of what it holds.
    """

    def __init__(self, path: str | os.PathLike[str], label_set: LabelSet = CAMVID, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = Path(path)
        self.label_set = label_set
        self.messages = 0
        self.completed = False
        self._target = real_target(self.path)
        self._lock = threading.Lock()
        self._topics: set[str] = set()  # topics a sink writes now
        self._channels: dict[str, int] = {}
        self._classes_written = False
        self._failed = False
        self._closed = False
        # These three messages are the same in every ROS 2 distribution.
        self._types = get_typestore(Stores.ROS2_JAZZY)
        if self._target.is_dir():
            raise OutputError(f"cannot write a bag to {self.path}: it is a folder")
        try:
            self._target.parent.mkdir(parents=True, exist_ok=True)
            warn_of_leftovers(self._target)
            self.partial_path, descriptor = create_partial(self._target)
        except OSError as error:
            raise OutputError(f"cannot write a bag to {self.path}: {error.strerror or error}") from error
        self._file = os.fdopen(descriptor, "wb")
        try:
            self._mcap = Writer(self._file, chunk_size=chunk_bytes, compression=CompressionType.ZSTD)
            self._mcap.start(profile="ros2", library="streamseg")
            self._schemas = {typename: self._register_schema(typename) for typename in (IMAGE, COMPRESSED_IMAGE, STRING)}
        except BaseException:
            self._file.close()
            discard(self.partial_path)
            raise

    def _register_schema(self, typename: str) -> int:
        definition, _ = self._types.generate_msgdef(typename, ros_version=2)
        return self._mcap.register_schema(typename, "ros2msg", definition.encode())

    def claim(self, topic: str) -> None:
        """Marks ``topic`` as written by one sink; OutputError if another sink writes it now."""
        with self._lock:
            if topic in self._topics:
                raise OutputError(
                    f"{self.path}: topic {topic} is written by another stream already "
                    "(stream names that differ only in '-' or '.' have the same topic); rename one"
                )
            self._topics.add(topic)

    def unclaim(self, topic: str) -> None:
        """``topic``'s sink has ended; a later stream of the same name writes on under it."""
        with self._lock:
            self._topics.discard(topic)

    def write_frame(self, topic: str, frame: Frame, frame_id: str) -> bool:
        """Writes ``frame``'s labels, overlay and confidence under ``topic``; False for a frame without labels (skipped)."""
        labels = frame.labels
        if labels is None:
            return False
        header = frame_header(frame, frame_id)
        messages = [(subtopic(topic, LABELS), IMAGE, self._image(header, labels, label_encoding(labels)))]
        if frame.overlay is not None:
            overlay = self._types.types[COMPRESSED_IMAGE](
                header=self._header(header), format="jpeg", data=np.frombuffer(encode_jpeg(frame.overlay), np.uint8)
            )
            messages.append((subtopic(topic, OVERLAY), COMPRESSED_IMAGE, overlay))
        if frame.confidence is not None:
            confidence = confidence_at_size(frame.confidence, labels.shape)
            messages.append((subtopic(topic, CONFIDENCE), IMAGE, self._image(header, confidence, "mono8")))
        encoded = [(name, typename, self._types.serialize_cdr(message, typename)) for name, typename, message in messages]
        with self._lock:
            if self._failed or self._closed:
                raise OutputError(f"cannot write to bag {self.path}: it {'failed earlier' if self._failed else 'is closed'}")
            try:
                if not self._classes_written:  # stamped as the first frame: a bag of old stamps spans no years
                    classes = self._types.types[STRING](data=classes_json(self.label_set))
                    self._add(CLASSES_TOPIC, STRING, self._types.serialize_cdr(classes, STRING), header.stamp_ns)
                    self._classes_written = True
                for name, typename, data in encoded:
                    self._add(name, typename, data, header.stamp_ns)
                self._file.flush()  # a killed run keeps every chunk written so far
            except OSError as error:
                self._failed = True
                raise OutputError(f"cannot write to bag {self.path}: {error.strerror or error}") from None
            except BaseException:
                self._failed = True  # the chunk in progress may lack this frame's messages: the bag is not whole
                raise
        return True

    def _add(self, topic: str, typename: str, data: bytes, stamp_ns: int) -> None:
        channel = self._channels.get(topic)
        if channel is None:
            channel = self._channels[topic] = self._mcap.register_channel(topic, "cdr", self._schemas[typename])
        # The stamp as log time too: the outputs line up with the input bag's messages in a player.
        self._mcap.add_message(channel, log_time=stamp_ns, publish_time=stamp_ns, data=bytes(data))
        self.messages += 1

    def _header(self, header):
        sec, nanosec = split_stamp(header.stamp_ns)
        types = self._types.types
        return types["std_msgs/msg/Header"](
            stamp=types["builtin_interfaces/msg/Time"](sec=sec, nanosec=nanosec), frame_id=header.frame_id
        )

    def _image(self, header, pixels: np.ndarray, encoding: str):
        pixels = np.ascontiguousarray(pixels)
        height, width = pixels.shape
        return self._types.types[IMAGE](
            header=self._header(header), height=height, width=width, encoding=encoding,
            is_bigendian=int(pixels.dtype.byteorder == ">"), step=width * pixels.itemsize, data=pixels.view(np.uint8).reshape(-1),
        )

    def close(self) -> None:
        """Finishes the bag and renames it onto ``path`` (or removes it, see the class). Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            if self._failed or self.messages == 0:
                self._give_up()
                return
            try:
                self._mcap.finish()
                self._file.close()
                put_in_place(self.partial_path, self._target)
            except OSError as error:
                self._give_up()
                raise OutputError(f"cannot finish bag {self.path}: {error.strerror or error}") from None
            self.completed = True

    def _give_up(self) -> None:
        try:
            self._file.close()
        except OSError:
            pass  # a write already failed and was reported; the file is given up either way
        discard(self.partial_path)


class RosBagSink(Sink):
    """One stream's frames into the ROS 2 bag at ``path``, under ``topic`` (see :mod:`streamseg.sinks.ros_topics`).

    Per frame with labels: ``topic/labels`` (``sensor_msgs/msg/Image``, mono8, or mono16 beyond
    255 classes, at the source's size), ``topic/overlay`` (``sensor_msgs/msg/CompressedImage``,
    JPEG) when the frame has one, and ``topic/confidence`` (mono8 ``Image``) when it has a
    confidence map; once per bag, ``/streamseg/classes`` (``std_msgs/msg/String``, the class
    table as JSON). Each message carries the frame's header: the input message's stamp and
    frame_id for a frame read from a bag, else its source time and ``frame_id`` (the stream's
    name). Frames without labels are skipped.

    The streams of a run that name the same bag write into one file through ``shared``, the
    run's :class:`~streamseg.sinks.shared.SharedOutputs`: the bag is finished, and renamed into
    place, when the last of them ends, whose sink then names it in ``completed_output``. Without
    ``shared`` the sink has the bag to itself. See :class:`RosBagWriter` for the temporary file
    and for recovering the bag of a run that was killed.
    """

    name = "rosbag"

    def __init__(
        self, path: str | os.PathLike[str], *, topic: str, frame_id: str, label_set: LabelSet = CAMVID,
        shared: SharedOutputs | None = None,
    ) -> None:
        self.path = Path(path)
        self.topic = topic
        self.frame_id = frame_id
        self.frames_written = 0
        self._shared = shared if shared is not None else SharedOutputs()
        self._key = str(real_target(self.path))
        self._writer = self._shared.acquire(self._key, lambda: RosBagWriter(self.path, label_set))
        try:
            self._writer.claim(topic)
        except BaseException:
            self._shared.release(self._key)
            raise
        self._closed = False
        self._completed = False

    def write(self, frame: Frame) -> None:
        """Writes the frame's messages, if it has labels."""
        if self._writer.write_frame(self.topic, frame, self.frame_id):
            self.frames_written += 1

    def close(self) -> None:
        """Lets go of the bag; the last stream's sink to do so finishes it. Safe to call twice."""
        if self._closed:
            return
        self._closed = True
        self._writer.unclaim(self.topic)
        if self._shared.release(self._key):
            self._completed = self._writer.completed

    @property
    def completed_output(self) -> Path | None:
        """The bag, once this sink's release finished it whole; None while other streams still write it."""
        return self.path if self._completed else None
