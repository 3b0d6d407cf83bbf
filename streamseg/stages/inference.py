"""Runs the segmentation network through a backend: to class scores, or straight to class ids."""

from __future__ import annotations

from streamseg.backends.base import Backend
from streamseg.frame import Frame
from streamseg.image.confidence import ConfidenceSettings
from streamseg.image.resize import resize_labels
from streamseg.pipeline.stage import Stage


class InferenceStage(Stage):
    """The network through ``backend``, which stays its creator's to close (the stage may serve several runs)."""

    name = "infer"
    takes = frozenset({"model_input"})
    gives = frozenset({"logits"})

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.workers = backend.concurrent_calls  # one thread per concurrent call keeps every call busy

    def process(self, frame: Frame) -> None:
        frame.logits = self.backend.infer(frame.model_input)[0]
        frame.model_input = None  # no longer needed; keeps queued frames small


class LabelInferenceStage(InferenceStage):
    """The network straight from pixels to class ids, for pipelines where no later stage needs the scores.

    Replaces the inference and label stages: ``Backend.infer_labels`` lets a backend keep the
    scaling and the argmax inside its engine (OpenVINO) or on its device (CUDA) instead of
    passing float32 both ways. Takes the preprocess stage's ``model_image`` when there is one,
    else the whole frame (backends that resize on the device).
    """

    name = "infer"
    takes = frozenset({"image"})

    def __init__(self, backend: Backend, confidence: ConfidenceSettings | None = None) -> None:
        super().__init__(backend)
        self.confidence = confidence
        self.gives = frozenset({"labels", "confidence", "reliability"} if confidence else {"labels"})

    def process(self, frame: Frame) -> None:
        image = frame.model_image if frame.model_image is not None else frame.image
        # The class ids at the network's grid, scaled to the frame here: the overlay colours the grid's own.
        if self.confidence is None:
            model_labels = self.backend.infer_labels(image[None], tuple(self.backend.input_size))[0]
        else:
            labels, confidence = self.backend.infer_labels_with_confidence(image[None])
            model_labels = labels[0]
            self.confidence.set(frame, confidence[0])
        frame.set_labels(resize_labels(model_labels, (frame.height, frame.width)), model_labels)
