"""What a model file's tensors say: its one input and its output, their shapes and types, and the file's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from streamseg.errors import ConfigError


@dataclass(frozen=True)
class TensorFacts:
    """The input and output a model file declares; a dimension the file leaves free is None."""

    input_name: str
    input_dims: tuple[int | None, ...]
    input_dtype: str  # numpy's name: "float32", "uint8", ...
    output_name: str
    output_dims: tuple[int | None, ...]
    output_dtype: str
    output_producer: str  # the operator that computes the output ("Softmax", "ArgMax", ...)
    outputs: int  # how many outputs the file has; the first is the segmentation
    metadata: dict[str, str] = field(default_factory=dict)  # flat: ONNX metadata_props, an IR's rt_info as "a b" keys


def onnx_facts(model) -> TensorFacts:
    """The facts of a loaded ONNX model (its constant inputs, the initializers, are not inputs)."""
    from onnx import helper

    constants = {tensor.name for tensor in model.graph.initializer}
    inputs = [value for value in model.graph.input if value.name not in constants]
    if len(inputs) != 1:
        raise ConfigError(f"the model has {len(inputs)} inputs ({', '.join(v.name for v in inputs)}); streamseg feeds one image")
    if not model.graph.output:
        raise ConfigError("the model declares no output")

    def dims(value) -> tuple[int | None, ...]:
        return tuple(dim.dim_value if dim.HasField("dim_value") and dim.dim_value > 0 else None for dim in value.type.tensor_type.shape.dim)

    def dtype(value) -> str:
        elem_type = value.type.tensor_type.elem_type
        return helper.tensor_dtype_to_np_dtype(elem_type).name if elem_type else "undefined"

    output = model.graph.output[0]
    producer = next((node.op_type for node in model.graph.node if output.name in node.output), "")
    return TensorFacts(
        input_name=inputs[0].name, input_dims=dims(inputs[0]), input_dtype=dtype(inputs[0]),
        output_name=output.name, output_dims=dims(output), output_dtype=dtype(output), output_producer=producer,
        outputs=len(model.graph.output), metadata={prop.key: prop.value for prop in model.metadata_props},
    )


def _flat_rt_info(info, prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key in info.keys() if hasattr(info, "keys") else ():
        value = info[key]
        name = f"{prefix}{key}"
        if isinstance(value, dict) or hasattr(value, "keys"):
            flat.update(_flat_rt_info(value, f"{name} "))
        else:
            flat[name] = value.astype(str) if hasattr(value, "astype") else str(value)
    return flat


def openvino_facts(model) -> TensorFacts:
    """The facts of a model OpenVINO read (an IR, PaddlePaddle, TFLite)."""
    parameters = model.get_parameters()
    if len(parameters) != 1:
        raise ConfigError(f"the model has {len(parameters)} inputs; streamseg feeds one image")
    if not model.outputs:
        raise ConfigError("the model declares no output")

    def dims(shape) -> tuple[int | None, ...]:
        if shape.rank.is_dynamic:
            raise ConfigError("the model's input or output has a dynamic rank; streamseg needs a known rank")
        return tuple(None if dim.is_dynamic else dim.get_length() for dim in shape)

    output = model.output(0)
    result_input = output.get_node().input_value(0)
    parameter = parameters[0]
    return TensorFacts(
        input_name=parameter.get_friendly_name(), input_dims=dims(parameter.get_partial_shape()),
        input_dtype=parameter.get_element_type().to_dtype().name,
        output_name=output.get_any_name() if output.get_names() else "output", output_dims=dims(output.get_partial_shape()),
        output_dtype=output.get_element_type().to_dtype().name, output_producer=result_input.get_node().get_type_name(),
        outputs=len(model.outputs), metadata=_flat_rt_info(model.get_rt_info()),
    )


def read_openvino_model(path: Path):
    """The model OpenVINO reads from ``path`` (IR, PaddlePaddle, TFLite); a ConfigError in one line when it cannot."""
    import openvino as ov

    try:
        return ov.Core().read_model(str(path))
    except RuntimeError as error:
        reason = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise ConfigError(f"OpenVINO cannot read {path.name}: {reason[:200]}") from None
