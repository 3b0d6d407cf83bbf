"""The one step both H.264 sinks repeat: encode a frame (or flush with None) and mux what comes out."""

from __future__ import annotations

import av


def encode_and_mux(container: av.container.OutputContainer, stream: av.VideoStream, frame: av.VideoFrame | None) -> None:
    """Encodes ``frame`` and writes the packets the encoder gives back; ``None`` flushes the frames it held."""
    for packet in stream.encode(frame):
        container.mux(packet)
