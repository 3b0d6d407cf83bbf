"""The adapter's steps as OpenVINO operations around a model OpenVINO read (IR, PaddlePaddle, TFLite)."""

from __future__ import annotations

import numpy as np

from streamseg.modelfile.adapter import Step, after, before
from streamseg.modelfile.description import ModelDescription


def _apply(step: Step, value):
    import openvino as ov
    from openvino import opset13 as ops

    kind, values = step.kind, step.values
    if kind == "pad":
        (top, left, bottom, right), fill = values
        begin, end = np.array([0, 0, top, left], np.int64), np.array([0, 0, bottom, right], np.int64)
        return ops.pad(value, begin, end, "constant", np.float32(fill)).output(0)
    if kind == "reverse_channels":
        return ops.gather(value, np.array([2, 1, 0], np.int64), np.int64(1)).output(0)
    if kind == "multiply":
        return ops.multiply(value, values[0].reshape(1, 3, 1, 1)).output(0)
    if kind == "add":
        return ops.add(value, values[0].reshape(1, 3, 1, 1)).output(0)
    if kind == "to_uint8":
        pixels = ops.round(value, "half_to_even")  # the values are pixels 0..255 by now (the gain was 255)
        return ops.convert(ops.clamp(pixels, 0.0, 255.0), ov.Type.u8).output(0)
    if kind == "to_float16":
        return ops.convert(value, ov.Type.f16).output(0)
    if kind == "to_float32":
        return ops.convert(value, ov.Type.f32).output(0)
    if kind == "transpose":
        return ops.transpose(value, np.array(values[0], np.int64)).output(0)
    if kind == "squeeze":
        return ops.squeeze(value, np.array([values[0]], np.int64)).output(0)
    if kind == "unsqueeze":
        return ops.unsqueeze(value, np.array([values[0]], np.int64)).output(0)
    if kind == "one_hot":
        ids = ops.convert(value, ov.Type.i64)
        return ops.one_hot(ids, np.int64(values[0]), np.float32(1.0), np.float32(0.0), 1).output(0)
    if kind == "log":
        return ops.log(ops.maximum(value, np.float32(values[0]))).output(0)
    if kind == "logit":
        clipped = ops.clamp(value, float(values[0]), float(1 - values[0]))
        return ops.subtract(ops.log(clipped), ops.log(ops.subtract(np.float32(1.0), clipped))).output(0)
    if kind == "two_classes":
        half = ops.multiply(value, np.float32(0.5))
        return ops.concat([ops.negative(half), half], 1).output(0)
    if kind == "resize":
        (height, width), mode = values
        shape = value.get_partial_shape()
        if shape.rank.get_length() == 4 and shape[2].is_static and shape[3].is_static and (shape[2].get_length(), shape[3].get_length()) == (height, width):
            return value
        attributes = {"mode": mode, "coordinate_transformation_mode": "half_pixel" if mode == "linear" else "asymmetric"}
        if mode == "nearest":
            attributes["nearest_mode"] = "floor"
        sizes = np.array([height, width], np.int64)
        return ops.interpolate(value, sizes, shape_calculation_mode="sizes", axes=np.array([2, 3], np.int64), **attributes).output(0)
    if kind == "crop":
        top, left, height, width = values
        return ops.slice(value, np.array([top, left], np.int64), np.array([top + height, left + width], np.int64),
                         np.array([1, 1], np.int64), np.array([2, 3], np.int64)).output(0)
    raise AssertionError(f"unknown adapter step {kind}")


def adapted_openvino(model, description: ModelDescription):
    """``model`` (an ``openvino.Model``) wrapped in the adapter's steps: streamseg's input and output contract, as a new model."""
    import openvino as ov
    from openvino import opset13 as ops

    height, width = description.input_size
    model_shape = [-1 if description.free_batch else 1, 3, height, width]
    if description.input_layout == "nhwc":
        model_shape = [model_shape[0], height, width, 3]
    model.reshape({model.input(0): ov.PartialShape(model_shape)})
    output_rank = model.output(0).get_partial_shape().rank.get_length()
    user_input = model.get_parameters()[0]
    image = ops.parameter([-1 if description.free_batch else 1, 3, *description.frame_size], ov.Type.f32, name="image")
    image.output(0).set_names({"image"})
    value = image.output(0)
    for step in before(description):
        value = _apply(step, value)
    for target in list(user_input.output(0).get_target_inputs()):
        target.replace_source_output(value)
    value = model.output(0).get_node().input_value(0)
    for step in after(description, output_rank):
        value = _apply(step, value)
    result = ops.result(value)
    result.output(0).set_names({"logits"})
    return ov.Model([result], [image], "streamseg_adapted")
