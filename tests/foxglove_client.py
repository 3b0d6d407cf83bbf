"""A Foxglove WebSocket client for the tests and benchmarks: ``websockets`` speaking the protocol the Foxglove SDK serves.

It connects with the SDK's subprotocol, reads the server's channel advertisements, subscribes
to topics by name and decodes each message by the schema the server advertised (protobuf for
the ``foxglove.*`` messages, JSON for a JSON channel), as the Foxglove app does.
"""

from __future__ import annotations

import base64
import json
import struct
import time
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from websockets.exceptions import InvalidHandshake
from websockets.sync.client import ClientConnection, connect

SUBPROTOCOL = "foxglove.sdk.v1"
MESSAGE_DATA = 0x01  # opcode of a binary frame holding one message: u8 op, u32 subscription id, u64 log time, payload


@dataclass
class Received:
    topic: str
    log_time: int
    message: Any  # a protobuf message, or the decoded JSON


class FoxgloveClient:
    """Connects to ``url`` (``ws://HOST:PORT``), retrying until the server answers or ``wait_s`` has passed.

    ``stalling``: a client meant to stop reading, as a hung viewer would. It sends no keepalive
    pings, whose unanswered timeout would end the connection by itself, and closing it waits for no
    closing handshake, which would come behind everything its socket still holds.
    """

    def __init__(self, url: str, wait_s: float = 60.0, *, stalling: bool = False) -> None:
        deadline = time.monotonic() + wait_s
        self._stack = ExitStack()
        while True:
            try:
                options = {"ping_interval": None, "close_timeout": 0} if stalling else {}
                self.socket: ClientConnection = self._stack.enter_context(
                    connect(url, subprotocols=[SUBPROTOCOL], open_timeout=5, max_size=None, **options)
                )
                break
            except (OSError, InvalidHandshake):
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        self.channels: dict[str, dict] = {}  # topic -> the advertised channel
        self._subscriptions: dict[int, str] = {}
        self._decoders: dict[str, Any] = {}

    def wait_for_topics(self, *topics: str, timeout_s: float = 60.0) -> None:
        """Reads the server's advertisements until every one of ``topics`` is advertised."""
        deadline = time.monotonic() + timeout_s
        while not set(topics) <= set(self.channels):
            self._take(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))

    def subscribe(self, *topics: str) -> None:
        self.wait_for_topics(*topics)
        subscriptions = []
        for topic in topics:
            identifier = len(self._subscriptions) + 1
            self._subscriptions[identifier] = topic
            subscriptions.append({"id": identifier, "channelId": self.channels[topic]["id"]})
        self.socket.send(json.dumps({"op": "subscribe", "subscriptions": subscriptions}))

    def read_one(self, timeout_s: float = 60.0) -> Received | None:
        """Reads one frame from the server: a subscribed topic's message, or None for a control message (kept in ``channels``)."""
        return self._take(self.socket.recv(timeout=timeout_s))

    def receive(self, timeout_s: float = 60.0) -> Received:
        """The next message of a subscribed topic, decoded."""
        deadline = time.monotonic() + timeout_s
        while True:
            received = self._take(self.socket.recv(timeout=max(0.1, deadline - time.monotonic())))
            if received is not None:
                return received

    def close(self) -> None:
        self._stack.close()

    def __enter__(self) -> "FoxgloveClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _take(self, frame: str | bytes) -> Received | None:
        if isinstance(frame, str):
            message = json.loads(frame)
            if message["op"] == "advertise":
                self.channels.update({channel["topic"]: channel for channel in message["channels"]})
            elif message["op"] == "unadvertise":
                gone = set(message["channelIds"])
                self.channels = {topic: channel for topic, channel in self.channels.items() if channel["id"] not in gone}
            return None
        if frame[0] != MESSAGE_DATA:
            return None
        subscription, log_time = struct.unpack_from("<IQ", frame, 1)
        topic = self._subscriptions[subscription]
        return Received(topic, log_time, self._decode(topic, frame[13:]))

    def _decode(self, topic: str, payload: bytes) -> Any:
        channel = self.channels[topic]
        if channel["encoding"] == "json":
            return json.loads(payload)
        decoder = self._decoders.get(topic)
        if decoder is None:
            files = descriptor_pb2.FileDescriptorSet.FromString(base64.b64decode(channel["schema"]))
            pool = descriptor_pool.DescriptorPool()
            for file in files.file:
                pool.Add(file)
            decoder = self._decoders[topic] = message_factory.GetMessageClass(pool.FindMessageTypeByName(channel["schemaName"]))
        return decoder.FromString(payload)
