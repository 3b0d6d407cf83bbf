"""ROS bags of the demo scene, written with rosbags, for the bag source's tests and the bag sink's round trip.

:func:`write_demo_bag` writes frame ``i`` of the demo scene (``DemoSource(width, height).render(i)``,
whose ``truth`` is its exact label map) as one message on each topic asked for, in one of the
bag formats a robotics stack records:

- ``"mcap"``: a bare ``.mcap`` file (ROS 2, the MCAP storage);
- ``"mcap-folder"``: a ROS 2 bag folder (``metadata.yaml`` and one ``.mcap``);
- ``"sqlite"``: a ROS 2 bag folder with the SQLite storage (``metadata.yaml`` and one ``.db3``);
- ``"ros1"``: a ROS 1 ``.bag`` file.

A topic's encoding says what its messages are: ``rgb8``, ``bgr8`` and ``mono8`` are
``sensor_msgs/msg/Image``; ``jpeg`` and ``png`` are ``sensor_msgs/msg/CompressedImage``;
``string`` is a ``std_msgs/msg/String`` (not an image); any other name labels rgb8 bytes with that
encoding, for a bag whose encoding a reader must refuse.

Each message's header stamp is ``START_NS + i * PERIOD_NS``; it is logged ``LOG_DELAY_NS`` later, so
that a test can tell header stamps from log times. Its frame_id is the topic's (:func:`frame_id_of`).
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from pathlib import Path

import cv2
import numpy as np
from rosbags.rosbag1 import Writer as Ros1Writer
from rosbags.rosbag2 import StoragePlugin
from rosbags.rosbag2 import Writer as Ros2Writer
from rosbags.typesys import Stores, get_typestore

from streamseg.sources.demo import DemoSource

KINDS = ("mcap", "mcap-folder", "sqlite", "ros1")
RAW_ENCODINGS = ("rgb8", "bgr8", "mono8")
COMPRESSED_FORMATS = ("jpeg", "png")
LOSSLESS = ("rgb8", "bgr8", "png")  # the encodings whose pixels are the demo scene's exactly

START_NS = 1_700_000_000 * 10**9 + 123_456_789  # header stamp of the first message: a real epoch time
PERIOD_NS = 40_000_000  # 25 messages a second, the demo scene's rate
LOG_DELAY_NS = 5_000_000  # a message is logged this long after its header stamp
DEFAULT_SIZE = (160, 120)  # (width, height) of the frames: small, so a test's bag is a few MB at most

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
STRING = "std_msgs/msg/String"


def frame_id_of(topic: str) -> str:
    """The frame_id written in ``topic``'s headers: ``/cam/front/image_raw`` -> ``cam_front_image_raw_frame``."""
    return topic.strip("/").replace("/", "_") + "_frame"


def stamp_of(index: int) -> int:
    """Message ``index``'s header stamp, in nanoseconds since the epoch."""
    return START_NS + index * PERIOD_NS


FRONT, REAR = "/cam/front/image_raw", "/cam/rear/image/compressed"
# One bag of each kind with two image topics, each topic in a form the kind's runs must read: (kind, bag name, topics).
TWO_TOPIC_BAGS = (
    ("mcap", "drive.mcap", {FRONT: "rgb8", REAR: "png"}),
    ("sqlite", "drive", {FRONT: "bgr8", REAR: "jpeg"}),
    ("ros1", "drive.bag", {FRONT: "rgb8", REAR: "jpeg"}),
)


def write_demo_bag(
    path: Path, kind: str, topics: Mapping[str, str], frames: int = 6, *, size: tuple[int, int] = DEFAULT_SIZE,
) -> dict[str, list[tuple[int, str]]]:
    """Writes ``frames`` frames of the demo scene at ``size`` (width, height) on each of ``topics`` (topic -> encoding).

    ``path`` is the bag as the source names it (``bag:PATH``): a ``.mcap`` or ``.bag`` file, or a
    folder, by ``kind`` (see :data:`KINDS`); it must not exist yet. Messages go in time order,
    frame by frame, each frame's messages in the order of ``topics``.

    Returns each topic's (header stamp in ns, frame_id) per message, in order.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    scene = DemoSource(width=size[0], height=size[1])
    images = [scene.render(index).image for index in range(frames)]
    ros1 = kind == "ros1"
    typestore = get_typestore(Stores.ROS1_NOETIC if ros1 else Stores.ROS2_HUMBLE)
    serialize = typestore.serialize_ros1 if ros1 else typestore.serialize_cdr
    written: dict[str, list[tuple[int, str]]] = {topic: [] for topic in topics}
    with _open_writer(Path(path), kind) as writer:
        connections = {
            topic: writer.add_connection(topic, _msgtype(encoding), typestore=typestore) for topic, encoding in topics.items()
        }
        for index, image in enumerate(images):
            for topic, encoding in topics.items():
                message = _message(typestore, encoding, image, index, frame_id_of(topic), ros1)
                writer.write(connections[topic], stamp_of(index) + LOG_DELAY_NS, serialize(message, _msgtype(encoding)))
                written[topic].append((stamp_of(index), frame_id_of(topic)))
    if kind == "mcap":  # rosbags writes a folder: the bare file is the one inside it
        folder = Path(path).with_suffix(".folder")
        Path(path).rename(folder)
        (folder / f"{Path(path).name}.mcap").rename(path)
        shutil.rmtree(folder)
    return written


def cut_short(path: Path, keep: float) -> int:
    """Truncates the file at ``path`` to ``keep`` (0 to 1) of its bytes, as a recording killed mid-write is; the bytes kept."""
    data = path.read_bytes()
    kept = int(len(data) * keep)
    path.write_bytes(data[:kept])
    return kept


def storage_file(path: Path) -> Path:
    """The file a bag's messages are in: the bag itself, or the one storage file of a bag folder."""
    if path.is_file():
        return path
    (found,) = [child for child in path.iterdir() if child.suffix in (".mcap", ".db3")]
    return found


def _open_writer(path: Path, kind: str):
    if kind == "ros1":
        return Ros1Writer(path)
    storage = StoragePlugin.SQLITE3 if kind == "sqlite" else StoragePlugin.MCAP
    return Ros2Writer(path, version=Ros2Writer.VERSION_LATEST, storage_plugin=storage)


def _msgtype(encoding: str) -> str:
    if encoding == "string":
        return STRING
    return COMPRESSED_IMAGE if encoding in COMPRESSED_FORMATS else IMAGE


def _message(typestore, encoding: str, rgb: np.ndarray, index: int, frame_id: str, ros1: bool):
    types = typestore.types
    if encoding == "string":
        return types[STRING](data=f"not an image {index}")
    stamp = types["builtin_interfaces/msg/Time"](sec=stamp_of(index) // 10**9, nanosec=stamp_of(index) % 10**9)
    header_fields = {"seq": index} if ros1 else {}
    header = types["std_msgs/msg/Header"](**header_fields, stamp=stamp, frame_id=frame_id)
    if encoding in COMPRESSED_FORMATS:
        ok, encoded = cv2.imencode(f".{'jpg' if encoding == 'jpeg' else 'png'}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        assert ok
        return types[COMPRESSED_IMAGE](header=header, format=encoding, data=encoded.ravel())
    if encoding == "bgr8":
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    elif encoding == "mono8":
        pixels = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    else:  # rgb8, or an encoding a reader should refuse, labelling rgb8 bytes
        pixels = rgb
    height, width = pixels.shape[:2]
    return types[IMAGE](
        header=header, height=height, width=width, encoding=encoding, is_bigendian=0,
        step=pixels.strides[0], data=np.ascontiguousarray(pixels).ravel(),
    )
