"""Resizes the decoded frame to the model's input and lays it out as a float batch of one."""

from __future__ import annotations

from streamseg.frame import Frame
from streamseg.pipeline.stage import Stage
from streamseg.image.preprocessing import batch_of_one
from streamseg.image.resize import resize_rgb


class PreprocessStage(Stage):
    """Gives the frame at the network's input size, and (``float_input``) as the float batch ``Backend.infer`` takes."""

    name = "preprocess"
    takes = frozenset({"image"})

    def __init__(self, input_size: tuple[int, int], *, float_input: bool = True) -> None:
        self.input_size = input_size
        self.float_input = float_input
        self.gives = frozenset({"model_input", "model_image"} if float_input else {"model_image"})

    def process(self, frame: Frame) -> None:
        # The resized RGB stays on the frame: flow stages estimate motion on it. A source that
        # scales in its decoder (``Source.model_size``) has given it already.
        if frame.model_image is None or frame.model_image.shape[:2] != tuple(self.input_size):
            frame.model_image = resize_rgb(frame.image, self.input_size)
        if self.float_input:
            frame.model_input = batch_of_one(frame.model_image)
