"""Sinks: where finished frames go (video file, stats lines, label masks)."""

from streamseg.sinks.base import Sink
from streamseg.sinks.jsonl import JsonLinesStatsSink
from streamseg.sinks.masks import MaskSink
from streamseg.sinks.video_file import VideoFileSink

__all__ = ["Sink", "VideoFileSink", "JsonLinesStatsSink", "MaskSink"]
