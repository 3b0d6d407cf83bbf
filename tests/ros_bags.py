"""Reading a ROS 2 MCAP bag back with rosbags, decoding each message by the definition the bag itself holds."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rosbags.rosbag2.storage_mcap import McapReader
from rosbags.typesys import Stores, get_typestore, get_types_from_msg


@dataclass
class BagMessage:
    topic: str
    msgtype: str
    log_time: int
    message: object


def read_bag(path: Path) -> list[BagMessage]:
    """Every message of the bag at ``path`` in log-time order, decoded by a typestore that knows only the bag's own
    definitions: a bag whose schemas were missing or wrong fails here, as it would in a reader without ROS."""
    reader = McapReader(path)
    reader.open()
    try:
        store = get_typestore(Stores.EMPTY)
        for connection in reader.connections:
            assert connection.msgdef.data, f"{connection.topic} has no message definition"
            store.register(get_types_from_msg(connection.msgdef.data, connection.msgtype))
        return [
            BagMessage(connection.topic, connection.msgtype, log_time, store.deserialize_cdr(raw, connection.msgtype))
            for connection, log_time, raw in reader.messages(reader.connections)
        ]
    finally:
        reader.close()


def image_pixels(message) -> np.ndarray:
    """A ``sensor_msgs/msg/Image`` of mono8 or little-endian mono16 as its (height, width) array."""
    dtype = {"mono8": np.uint8, "mono16": np.dtype("<u2")}[message.encoding]
    assert message.step == message.width * np.dtype(dtype).itemsize
    return np.frombuffer(bytes(message.data), dtype).reshape(message.height, message.width)


def stamp_ns(message) -> int:
    return message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
