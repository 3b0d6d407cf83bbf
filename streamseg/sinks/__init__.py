"""Sinks: where finished frames go (video file, stats lines, label masks)."""

from streamseg.sinks.base import Sink
from streamseg.sinks.jsonl import JsonLinesStatsSink
from streamseg.sinks.masks import MaskSink

__all__ = ["Sink", "VideoFileSink", "JsonLinesStatsSink", "MaskSink"]


def __getattr__(name: str):
    # PyAV is imported with the video sink only, when one is used: see streamseg.sources.
    if name == "VideoFileSink":
        from streamseg.sinks.video_file import VideoFileSink

        return VideoFileSink
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
