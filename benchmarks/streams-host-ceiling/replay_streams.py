"""Diagnostic (2026-11-28): what bounds N streams in one process when the network costs nothing.

Two measurements, run from the repo root (``.venv/bin/python benchmarks/streams-host-ceiling/replay_streams.py``):

- N streams through ``assemble_streams`` (as ``streamseg run A B …``) with frames replayed from memory (40 frames
  of the road video, decoded once, with their 480x360 copies made in advance as the decoder would) and a
  near-free network (erfnet-half at 64x48, torch): the streams path's own host cost, decoding left out;
- N demo sources (960x540) drawn by N threads at once, nothing else: the bound a run of N demo streams, as
  the GPU proof's streams step runs them, cannot pass.

The replay source is registered by wrapping ``streamseg.sources.register_sources``: a diagnostic, not an API.
"""

from __future__ import annotations

import threading
import time

import av
import cv2

import streamseg.sources as sources
from streamseg.config import config_from_values
from streamseg.frame import Frame
from streamseg.pipeline.assemble import assemble_streams
from streamseg.sources.base import Source
from streamseg.sources.demo import DemoSource

with av.open("../shared/data/video/solidWhiteRight.mp4") as container:
    FRAMES = [frame.to_ndarray(format="rgb24") for _, frame in zip(range(40), container.decode(video=0))]
SCALED: dict[tuple[int, int], list] = {}


class Replay(Source):
    def __init__(self, count: int) -> None:
        self.count = count

    @property
    def fps(self) -> float:
        return 25.0

    def __iter__(self):
        size = self.model_size
        if size is not None and size not in SCALED:
            SCALED[size] = [cv2.resize(frame, size[::-1], interpolation=cv2.INTER_AREA) for frame in FRAMES]
        for index in range(self.count):
            scaled = SCALED[size][index % len(FRAMES)] if size else None
            yield Frame(index=index, timestamp=index / 25, image=FRAMES[index % len(FRAMES)], model_image=scaled)


_register_built_ins = sources.register_sources


def _register_with_replay(table) -> None:
    _register_built_ins(table)
    table.add("replay", lambda spec, context: Replay(int(spec.split(":")[1])), "frames from memory",
              accepts=lambda spec: spec.startswith("replay:"))


sources.register_sources = _register_with_replay


def replayed_streams(count: int, frames: int = 300) -> None:
    config = config_from_values({
        "streams": [{"name": f"s{number}", "source": f"replay:{frames}"} for number in range(count)],
        "model": "erfnet-half", "backend": "torch", "input_size": (48, 64), "max_batch": 16,
    })
    with assemble_streams(config) as streams:
        started = time.perf_counter()
        result = streams.run()
        wall = time.perf_counter() - started
        batching = streams.batching()
    print(f"{count} streams: {result.frames} frames, {result.frames / wall:.1f} fps aggregate, "
          f"mean batch {batching['mean_batch']:.2f}", flush=True)


def demo_only(count: int, frames: int = 100) -> None:
    def draw() -> None:
        for _ in DemoSource(width=960, height=540, frames=frames):
            pass

    threads = [threading.Thread(target=draw) for _ in range(count)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(f"{count} demo sources drawn alone: {count * frames / (time.perf_counter() - started):.1f} fps aggregate", flush=True)


if __name__ == "__main__":
    for count in (1, 2, 4, 8):
        replayed_streams(count)
    for count in (1, 2, 4, 8):
        demo_only(count)
