"""The adapter's steps as ONNX nodes around the user's graph: a model every ONNX runtime runs in streamseg's contract."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from streamseg.errors import ConfigError
from streamseg.modelfile.adapter import Step, after, before
from streamseg.modelfile.description import ModelDescription

INPUT_NAME, OUTPUT_NAME = "image", "logits"  # streamseg's contract (streamseg.backends.export uses the same)
BATCH_DIMENSION = "batch"
MIN_OPSET = 11  # Resize with sizes, Pad and Clip with inputs; older graphs are converted up to it
_PREFIX = "streamseg_adapter_"


class _Builder:
    """Appends nodes (and their constants) with names the graph does not use (a graph wrapped once may be wrapped again)."""

    def __init__(self, graph: onnx.GraphProto, opset: int) -> None:
        self.graph, self.opset, self.count = graph, opset, 0
        self.nodes: list[onnx.NodeProto] = []
        used = {name for node in graph.node for name in (node.name, *node.input, *node.output)}
        used |= {value.name for value in (*graph.input, *graph.output, *graph.initializer)}
        generation = 0
        while any(name.startswith(f"{_PREFIX}{generation}_") for name in used):
            generation += 1
        self.prefix = f"{_PREFIX}{generation}_"

    def name(self) -> str:
        self.count += 1
        return f"{self.prefix}{self.count}"

    def constant(self, value: np.ndarray) -> str:
        name = self.name()
        self.graph.initializer.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attributes) -> str:
        output = self.name()
        self.nodes.append(helper.make_node(op, inputs, [output], name=output, **attributes))
        return output

    def axes_op(self, op: str, value: str, axis: int) -> str:
        """Squeeze or Unsqueeze: the axes became an input at opset 13."""
        if self.opset >= 13:
            return self.node(op, [value, self.constant(np.array([axis], dtype=np.int64))])
        return self.node(op, [value], axes=[axis])

    def apply(self, step: Step, value: str, static_size: tuple[int | None, int | None]) -> str:
        kind, values = step.kind, step.values
        if kind == "pad":
            (top, left, bottom, right), fill = values
            pads = np.array([0, 0, top, left, 0, 0, bottom, right], dtype=np.int64)
            return self.node("Pad", [value, self.constant(pads), self.constant(np.array(fill, dtype=np.float32))], mode="constant")
        if kind == "reverse_channels":
            return self.node("Gather", [value, self.constant(np.array([2, 1, 0], dtype=np.int64))], axis=1)
        if kind == "multiply":
            return self.node("Mul", [value, self.constant(values[0].reshape(1, 3, 1, 1))])
        if kind == "add":
            return self.node("Add", [value, self.constant(values[0].reshape(1, 3, 1, 1))])
        if kind == "to_uint8":  # the values are pixels 0..255 by now (the gain was 255)
            value = self.node("Clip", [self.node("Round", [value]), self.constant(np.array(0.0, np.float32)), self.constant(np.array(255.0, np.float32))])
            return self.node("Cast", [value], to=TensorProto.UINT8)
        if kind == "to_float16":
            return self.node("Cast", [value], to=TensorProto.FLOAT16)
        if kind == "to_float32":
            return self.node("Cast", [value], to=TensorProto.FLOAT)
        if kind == "transpose":
            return self.node("Transpose", [value], perm=list(values[0]))
        if kind in ("squeeze", "unsqueeze"):
            return self.axes_op(kind.capitalize(), value, values[0])
        if kind == "one_hot":
            ids = self.node("Cast", [value], to=TensorProto.INT64)
            depth = self.constant(np.array([values[0]], dtype=np.int64))
            return self.node("OneHot", [ids, depth, self.constant(np.array([0.0, 1.0], dtype=np.float32))], axis=1)
        if kind == "log":
            low = self.constant(np.array(values[0], dtype=np.float32))
            return self.node("Log", [self.node("Max", [value, low])])
        if kind == "logit":  # log(p) - log(1 - p), p kept inside [floor, 1 - floor]
            clipped = self.node("Clip", [value, self.constant(np.array(values[0], np.float32)), self.constant(np.array(1 - values[0], np.float32))])
            complement = self.node("Sub", [self.constant(np.array(1.0, np.float32)), clipped])
            return self.node("Sub", [self.node("Log", [clipped]), self.node("Log", [complement])])
        if kind == "two_classes":
            half = self.node("Mul", [value, self.constant(np.array(0.5, np.float32))])
            return self.node("Concat", [self.node("Neg", [half]), half], axis=1)
        if kind == "resize":
            (height, width), mode = values
            if static_size == (height, width):
                return value
            leading = self.node("Slice", [self.node("Shape", [value]), self.constant(np.array([0], np.int64)), self.constant(np.array([2], np.int64))])
            sizes = self.node("Concat", [leading, self.constant(np.array([height, width], dtype=np.int64))], axis=0)
            empty = self.constant(np.zeros(0, dtype=np.float32))
            attributes = {"mode": mode, "coordinate_transformation_mode": "half_pixel" if mode == "linear" else "asymmetric"}
            if mode == "nearest":
                attributes["nearest_mode"] = "floor"
            return self.node("Resize", [value, empty, empty, sizes], **attributes)
        if kind == "crop":
            top, left, height, width = values
            starts, ends = np.array([top, left], np.int64), np.array([top + height, left + width], np.int64)
            return self.node("Slice", [value, self.constant(starts), self.constant(ends), self.constant(np.array([2, 3], np.int64))])
        raise AssertionError(f"unknown adapter step {kind}")


def _opset(model: onnx.ModelProto) -> int:
    return next((entry.version for entry in model.opset_import if entry.domain in ("", "ai.onnx")), 0)


def _at_least_min_opset(model: onnx.ModelProto) -> onnx.ModelProto:
    if _opset(model) >= MIN_OPSET:
        return model
    from onnx import version_converter

    try:
        return version_converter.convert_version(model, MIN_OPSET)
    except Exception as error:  # the converter raises its own C++ errors
        raise ConfigError(f"its ONNX opset {_opset(model)} is older than {MIN_OPSET} and could not be converted ({error}); re-export it") from None


def _fix_input_shape(value: onnx.ValueInfoProto, description: ModelDescription) -> None:
    """The user's input fixed to the chosen size (a dynamic model), the batch left free or one as the file has it."""
    height, width = description.input_size
    shape = [None, 3, height, width] if description.input_layout == "nchw" else [None, height, width, 3]
    dims = value.type.tensor_type.shape.dim
    for dim, size in zip(dims, shape):
        if size is None:
            if description.free_batch:
                dim.dim_param = BATCH_DIMENSION
            else:
                dim.dim_value = 1
        else:
            dim.dim_value = size


def _static_spatial_size(model: onnx.ModelProto, name: str) -> tuple[int | None, int | None]:
    """The scores' (height, width) after the steps so far, where shape inference can tell; else None for either."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception:  # noqa: BLE001 - shape inference gives up on some graphs; then the size is not known
        return (None, None)
    for value in (*inferred.graph.value_info, *inferred.graph.output):
        if value.name == name:
            dims = [dim.dim_value if dim.HasField("dim_value") else None for dim in value.type.tensor_type.shape.dim]
            return (dims[2], dims[3]) if len(dims) == 4 else (None, None)
    return (None, None)


def adapted_onnx(model: onnx.ModelProto, description: ModelDescription) -> onnx.ModelProto:
    """``model`` (loaded, with its external data) wrapped in the adapter's steps: streamseg's input and output contract."""
    model = _at_least_min_opset(model)
    graph = model.graph
    user_input = next(value for value in graph.input if value.name == description.input_name)
    _fix_input_shape(user_input, description)
    first_output = graph.output[0]
    output_rank = len(first_output.type.tensor_type.shape.dim)
    builder = _Builder(graph, _opset(model))
    batch = BATCH_DIMENSION if description.free_batch else 1
    image = helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, [batch, 3, *description.frame_size])
    # The user's own names for its input and output are freed for streamseg's (its export uses the same).
    user_input_name, user_output_name = builder.name(), builder.name()
    _rename(graph, description.input_name, user_input_name)
    _rename(graph, first_output.name, user_output_name)
    first_output.name = user_output_name
    value = INPUT_NAME
    for step in before(description):
        value = builder.apply(step, value, (None, None))
    # The user's graph now reads its input from the last step.
    builder.nodes.append(helper.make_node("Identity", [value], [user_input_name], name=builder.name()))
    pre_nodes, builder.nodes = builder.nodes, []
    graph.input.remove(user_input)
    graph.input.insert(0, image)
    nodes = [*pre_nodes, *graph.node]
    del graph.node[:]
    graph.node.extend(nodes)
    del graph.output[1:]  # only the segmentation is used; the rest of the graph is dropped with what only fed it
    value = first_output.name
    for step in after(description, output_rank):
        static = _static_spatial_size(model, value) if step.kind == "resize" else (None, None)
        value = builder.apply(step, value, static)
        graph.node.extend(builder.nodes)  # in the graph at once: shape inference of a later resize sees them
        builder.nodes = []
    graph.node.append(helper.make_node("Identity", [value], [OUTPUT_NAME], name=builder.name()))
    del graph.output[:]
    classes = description.label_set.num_classes
    graph.output.append(helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, [batch, classes, *description.frame_size]))
    drop_unused(graph)  # the dropped outputs' branches
    return model


def _rename(graph: onnx.GraphProto, old: str, new: str) -> None:
    """Every use of the tensor name ``old`` in ``graph``'s nodes (subgraphs included) becomes ``new``."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
        for attribute in node.attribute:
            for subgraph in [attribute.g] * attribute.HasField("g") + list(attribute.graphs):
                _rename(subgraph, old, new)


def drop_unused(graph: onnx.GraphProto) -> None:
    """Removes the nodes and initializers no output of ``graph`` depends on (a subgraph's reads of outer names count)."""
    needed = {output.name for output in graph.output}
    kept = []
    for node in reversed(graph.node):
        if any(name in needed for name in node.output):
            kept.append(node)
            needed.update(name for name in node.input if name)
            for attribute in node.attribute:  # a subgraph (If, Loop) reads names of the outer graph
                for subgraph in [attribute.g] * attribute.HasField("g") + list(attribute.graphs):
                    needed.update(name for inner in subgraph.node for name in inner.input)
    del graph.node[:]
    graph.node.extend(reversed(kept))
    for tensor in [tensor for tensor in graph.initializer if tensor.name not in needed]:
        graph.initializer.remove(tensor)
