"""Runs the segmentation network through a backend."""

from __future__ import annotations

from streamseg.backends.base import Backend
from streamseg.frame import Frame
from streamseg.pipeline.stage import Stage


class InferenceStage(Stage):
    name = "infer"
    takes = frozenset({"model_input"})
    gives = frozenset({"logits"})

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.workers = backend.streams  # one thread per stream keeps every stream busy

    def process(self, frame: Frame) -> None:
        frame.logits = self.backend.infer(frame.model_input)[0]
        frame.model_input = None  # no longer needed; keeps queued frames small

    def close(self) -> None:
        self.backend.close()
