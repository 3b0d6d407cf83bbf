"""The steps that turn a user's model into streamseg's contract, independent of the graph format that carries them.

streamseg's backends run a network that takes float32 (N, 3, h, w) RGB in [0, 1] and gives float
scores (N, C, h, w) at the same size (``Backend``). A model file is wrapped to that contract:
steps before it (pad for letterbox, reverse the channels, normalise, convert, transpose) and
after it (transpose, one-hot class ids, two classes from one channel, logits from probabilities,
scale to the input smoothly, crop the letterbox padding). Being in the graph, they run in the
runtime's own kernels and fuse with the model's first and last layers. Two builders carry the
same steps: ONNX (``onnx_graph``, for every backend that reads ONNX) and OpenVINO
(``openvino_graph``, for IR, PaddlePaddle and TFLite files).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from streamseg.modelfile.description import ModelDescription

PROBABILITY_FLOOR = 1e-6  # probabilities become logits through a log; 0 would give -inf


@dataclass(frozen=True)
class Step:
    """One operation of the wrapper: ``kind`` and its constants."""

    kind: str
    values: tuple = ()


def before(description: ModelDescription) -> list[Step]:
    """From streamseg's [0, 1] RGB NCHW at ``frame_size`` to what the model's input takes."""
    steps = []
    if description.frame_size != description.input_size:
        top, left = description.letterbox_offset
        bottom = description.input_size[0] - description.frame_size[0] - top
        right = description.input_size[1] - description.frame_size[1] - left
        steps.append(Step("pad", ((top, left, bottom, right), description.pad_value / 255.0)))
    if description.channel_order == "bgr":
        steps.append(Step("reverse_channels"))
    # p = 255 x (a pixel in 0..255); the network sees (p * scale - mean) / std = x * gain + offset.
    gain = 255.0 * description.scale / np.asarray(description.std, dtype=np.float64)
    offset = -np.asarray(description.mean, dtype=np.float64) / np.asarray(description.std, dtype=np.float64)
    if not np.allclose(gain, 1.0, rtol=0, atol=1e-9):
        steps.append(Step("multiply", (gain.astype(np.float32),)))
    if not np.allclose(offset, 0.0, rtol=0, atol=1e-9):
        steps.append(Step("add", (offset.astype(np.float32),)))
    if description.input_dtype == "uint8":
        steps.append(Step("to_uint8"))  # pixels 0..255 (a uint8 input's gain is 255), rounded and clipped first
    elif description.input_dtype == "float16":
        steps.append(Step("to_float16"))
    if description.input_layout == "nhwc":
        steps.append(Step("transpose", ((0, 2, 3, 1),)))
    return steps


def after(description: ModelDescription, output_rank: int) -> list[Step]:
    """From the model's output to float scores (N, C, h, w) at ``frame_size``."""
    steps = []
    classes = description.label_set.num_classes
    if description.output == "class-ids":
        if output_rank == 4:
            steps.append(Step("squeeze", (1 if description.output_layout == "nchw" else 3,)))
        steps.append(Step("one_hot", (classes,)))
    else:
        if description.output_dtype != "float32":
            steps.append(Step("to_float32"))
        if output_rank == 3:
            steps.append(Step("unsqueeze", (1,)))
        elif description.output_layout == "nhwc":
            steps.append(Step("transpose", ((0, 3, 1, 2),)))
        if description.scores == "probabilities":
            steps.append(Step("logit" if description.output == "binary" else "log", (PROBABILITY_FLOOR,)))
        if description.output == "binary":
            steps.append(Step("two_classes"))  # [-l/2, l/2]: their softmax is the sigmoid of l
    # Class ids are spread nearest; scores smoothly. Skipped by a builder where the size already matches.
    steps.append(Step("resize", (description.input_size, "nearest" if description.output == "class-ids" else "linear")))
    if description.frame_size != description.input_size:
        top, left = description.letterbox_offset
        steps.append(Step("crop", (top, left, *description.frame_size)))
    return steps
