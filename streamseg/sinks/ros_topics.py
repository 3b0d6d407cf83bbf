"""What a stream's frames become on ROS 2 topics: the names, stamps and class table the bag sink and the Foxglove view share.

Each stream's outputs go under its topic T: the topic its frames were read from (a bag source's),
else one made from the stream's name (:func:`stream_topic`):

- ``T/labels``: the class ids at the source's size, mono8 (mono16 beyond 255 classes);
- ``T/overlay``: the rendered overlay, JPEG;
- ``T/confidence``: how sure each pixel's class is, mono8 ``round(255 p)`` at the source's size,
  for frames that have a confidence map (``streamseg.image.confidence``);

and once per output, :data:`CLASSES_TOPIC` holds the class table as JSON (:func:`classes_json`),
so that a reader of the ids knows their names and colours.

A frame read from a ROS bag carries its image message's header (``Frame.header``), and its
outputs keep that stamp and frame_id, which tie them to the rest of the recording. Any other
frame is stamped with its source time (``Frame.timestamp``: a file's presentation time, from 0)
and its frame_id is the stream's name.
"""

from __future__ import annotations

import json
import re

import cv2
import numpy as np

from streamseg.frame import Frame, MessageHeader
from streamseg.label_sets import LabelSet

LABELS, OVERLAY, CONFIDENCE = "labels", "overlay", "confidence"
CLASSES_TOPIC = "/streamseg/classes"
JPEG_QUALITY = 90

# ROS 2 names hold letters, digits, '_' and '/'; stream names may also hold '-' and '.'.
_NOT_IN_ROS_NAMES = re.compile(r"[^A-Za-z0-9_/]")


def stream_topic(name: str) -> str:
    """The topic a stream's outputs go under: ``/`` and the stream's name, each character a ROS name cannot hold
    as ``_`` (``front-left`` -> ``/front_left``), with ``_`` before a leading digit, which ROS names cannot start with."""
    cleaned = _NOT_IN_ROS_NAMES.sub("_", name.strip("/")) or "stream"
    return "/" + ("_" + cleaned if cleaned[0].isdigit() else cleaned)


def subtopic(topic: str, leaf: str) -> str:
    """``topic/leaf``: ``/front`` and ``labels`` -> ``/front/labels``."""
    return f"{topic.rstrip('/')}/{leaf}"


def frame_header(frame: Frame, frame_id: str) -> MessageHeader:
    """The header of ``frame``'s outputs: its own, for a frame read from a bag; else its source time and ``frame_id``."""
    if frame.header is not None:
        return frame.header
    return MessageHeader(stamp_ns=max(0, round(frame.timestamp * 1e9)), frame_id=frame_id)


def split_stamp(stamp_ns: int) -> tuple[int, int]:
    """(sec, nanosec) of a ROS ``builtin_interfaces/Time``."""
    return divmod(int(stamp_ns), 1_000_000_000)


def label_encoding(labels: np.ndarray) -> str:
    """The image encoding of a label map: mono8 for uint8 ids, mono16 for uint16 (more than 255 classes)."""
    if labels.dtype == np.uint8:
        return "mono8"
    if labels.dtype == np.uint16:
        return "mono16"
    raise ValueError(f"class ids are uint8 or uint16, not {labels.dtype}")


def encode_jpeg(rgb: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """An RGB uint8 image as JPEG bytes."""
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError(f"OpenCV could not encode a {rgb.shape} image as JPEG")
    return encoded.tobytes()


def class_table(label_set: LabelSet) -> dict:
    """The run's classes as :data:`CLASSES_TOPIC` holds them: each id with its name and RGB colour."""
    return {
        "label_set": label_set.name,
        "classes": [
            {"id": index, "name": name, "color": [int(channel) for channel in colour]}
            for index, (name, colour) in enumerate(zip(label_set.names, label_set.palette))
        ],
        "ignore_index": label_set.ignore_index,
        "labels": "class id per pixel: mono8, or mono16 beyond 255 classes",
        "confidence": "mono8, round(255 p): p the calibrated probability of the pixel's class (255: sure)",
    }


def classes_json(label_set: LabelSet) -> str:
    """:func:`class_table` as one line of JSON."""
    return json.dumps(class_table(label_set), separators=(",", ":"))
