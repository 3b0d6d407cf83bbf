"""A streamseg plugin registering one part of each kind; each leaves a trace a test can check.

- source ``tiny-frames:COUNT``: COUNT frames of 96x64 pixels in one colour, at 12.5 fps.
- sink ``tiny-record:PATH``: one JSON line per frame (index, size, first pixel, labels present, the run's fps).
- refiner ``tiny-constant:label=N,log=PATH``: labels every pixel N, one line in PATH per call.
- flow estimator ``tiny-still:log=PATH``: says nothing moved, one line in PATH per call.
- model ``tiny-net``: one 1x1 convolution whose bias makes class ``TINY_NET_LABEL`` win everywhere.
- backend ``tiny-torch``: the torch backend run eagerly under another name, so the run's log names it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch import nn

from streamseg.backends.torch_cpu import TorchEagerBackend
from streamseg.classes import NUM_CLASSES
from streamseg.frame import Frame
from streamseg.sinks.base import Sink
from streamseg.sources.base import Source
from streamseg.temporal.flow import FlowEstimator

COLOUR = (10, 200, 30)
WIDTH, HEIGHT = 96, 64
FPS = 12.5
TINY_NET_LABEL = 3


def _note(log: str | None, line: str) -> None:
    if log is not None:
        with open(log, "a") as handle:
            handle.write(line + "\n")


class TinyFrames(Source):
    def __init__(self, count: int) -> None:
        self.count = count

    @property
    def fps(self) -> float:
        return FPS

    def __iter__(self) -> Iterator[Frame]:
        image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
        image[...] = COLOUR
        for index in range(self.count):
            yield Frame(index=index, timestamp=index / FPS, image=image.copy())


def make_source(spec: str, context) -> TinyFrames:
    return TinyFrames(int(spec.partition(":")[2] or 3))


class TinyRecord(Sink):
    name = "tiny_record"

    def __init__(self, path: Path, fps) -> None:
        self.path = path
        self.fps = fps
        self.frames_written = 0
        self._handle = open(path, "w")

    def write(self, frame: Frame) -> None:
        record = {
            "index": frame.index,
            "size": [frame.width, frame.height],
            "pixel": frame.image[0, 0].tolist(),
            "labels": sorted(np.unique(frame.labels).tolist()),
            "fps": self.fps(),
        }
        self._handle.write(json.dumps(record) + "\n")
        self.frames_written += 1

    def close(self) -> None:
        self._handle.close()


def make_sink(target: str, context) -> TinyRecord:
    return TinyRecord(Path(target), context.fps)


class TinyConstant:
    """Module-level, holding plain values: picklable, so it could also run in the async CRF workers."""

    def __init__(self, label: int, log: str | None) -> None:
        self.label = label
        self.log = log

    def refine(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
        _note(self.log, f"refine {image.shape[1]}x{image.shape[0]} {probabilities.shape[0]} classes")
        return np.full(image.shape[:2], self.label, np.uint8)


def make_refiner(context, label: str = "0", log: str | None = None) -> TinyConstant:
    return TinyConstant(int(label), log)


class TinyStill(FlowEstimator):
    name = "tiny-still"

    def __init__(self, log: str | None = None) -> None:
        self.log = log

    def estimate(self, previous: np.ndarray, current: np.ndarray) -> np.ndarray:
        _note(self.log, f"estimate {current.shape[1]}x{current.shape[0]}")
        return np.zeros((*current.shape[:2], 2), dtype=np.float32)


def tiny_net(label: int = TINY_NET_LABEL) -> nn.Module:
    """Logits with ``label`` ahead everywhere, whatever the image: the run's labels show which model ran."""
    net = nn.Conv2d(3, NUM_CLASSES, kernel_size=1)
    with torch.no_grad():
        net.weight.zero_()
        net.bias.zero_()
        net.bias[label] = 1.0
    return net


class TinyTorchBackend(TorchEagerBackend):
    name = "tiny-torch"


def register(registry) -> None:
    registry.models.add("tiny-net", tiny_net, "one 1x1 convolution, class 3 everywhere, from the test plugin")
    registry.backends.add("tiny-torch", TinyTorchBackend, "the eager torch backend under another name, from the test plugin")
    registry.sources.add("tiny-frames", make_source, "solid frames, from the test plugin")
    registry.sinks.add("tiny-record", make_sink, "a JSON line per frame, from the test plugin")
    registry.refiners.add("tiny-constant", make_refiner, "one label everywhere, from the test plugin")
    registry.flow_estimators.add("tiny-still", TinyStill, "zero flow that logs its calls, from the test plugin")
