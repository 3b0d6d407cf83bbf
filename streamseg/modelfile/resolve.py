"""Resolves a model file's description: the first source that gives a field wins, in a documented order.

1. the command line's flags (``--labels``, ``--mean``, ...; the same keys in a run's YAML and the API);
2. the sidecar ``MODEL.streamseg.yaml``;
3. metadata in the file: streamseg's JSON, Model API's ``model_info``, Ultralytics' ``names``/``imgsz``;
4. HuggingFace's ``config.json`` and ``preprocessor_config.json`` beside the model;
5. what the tensors' shapes and types say.

A field nothing determines and that would change the labels if guessed (the channel order, the
normalisation of a float input, the classes) is refused in one line naming the flag to give.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from streamseg.errors import ConfigError
from streamseg.image.confidence import UNCALIBRATED, Calibration
from streamseg.label_sets import LabelSet, custom_label_set
from streamseg.modelfile.description import FIELD_BY_NAME, ModelDescription, check_side, parse_field
from streamseg.modelfile.sources import embedded_sources, read_huggingface, read_sidecar, sidecar_path
from streamseg.modelfile.tensors import TensorFacts

INPUT_DTYPES = ("float32", "float16", "uint8")
CLASS_ID_DTYPES = ("int64", "int32", "int16", "int8", "uint8", "uint16", "uint32")
# Operators whose output is a probability. LogSoftmax is not one: log-probabilities are logits already.
PROBABILITY_PRODUCERS = ("Softmax", "Sigmoid")
VIDEO_ASPECT = (16, 9)  # a letterboxed model's frames, unless --input-size says otherwise


class _Layers:
    """The sources in order, each {field: value as written}, and the first value of a field with where it came from."""

    def __init__(self, layers: list[tuple[str, dict[str, Any]]]) -> None:
        self.layers = layers

    def pick(self, name: str) -> tuple[Any, str] | None:
        for source, fields in self.layers:
            if name in fields and fields[name] is not None:
                label = FIELD_BY_NAME[name].flag if source == "flags" else source
                return parse_field(name, fields[name], label), label
        return None


def resolve(path: Path, facts: TensorFacts, flags: Mapping[str, Any]) -> ModelDescription:
    """The description of the model at ``path`` whose tensors are ``facts``, with ``flags`` (field -> written value) first."""
    layers = [("flags", dict(flags))]
    if (sidecar := read_sidecar(path)) is not None:
        layers.append(sidecar)
    layers += embedded_sources(facts.metadata)
    if (huggingface := read_huggingface(path)) is not None:
        layers.append(huggingface)
    try:
        return _Resolution(path, facts, _Layers(layers)).description()
    except ConfigError as error:
        raise ConfigError(f"{path.name}: {error}") from None


class _Resolution:
    def __init__(self, path: Path, facts: TensorFacts, layers: _Layers) -> None:
        self.path, self.facts, self.layers = path, facts, layers
        self.sources: dict[str, str] = {}
        self.where = f"or write it in {sidecar_path(path).name}"

    def take(self, name: str, default: Any = None, default_source: str = "default") -> Any:
        picked = self.layers.pick(name)
        value, source = picked if picked is not None else (default, default_source)
        self.sources[name] = source
        return value

    def given(self, name: str) -> bool:
        return self.layers.pick(name) is not None

    def description(self) -> ModelDescription:
        facts = self.facts
        input_layout = self.input_layout()
        input_dtype = facts.input_dtype
        if input_dtype not in INPUT_DTYPES:
            raise ConfigError(f"its input {facts.input_name} is {input_dtype}; streamseg feeds {', '.join(INPUT_DTYPES)}")
        channel_order = self.take("channel_order")
        if channel_order is None:
            raise ConfigError(f"nothing says whether it takes RGB or BGR; give --channel-order rgb|bgr {self.where}")
        scale, mean, std = self.normalisation(input_dtype)
        batch = facts.input_dims[0]
        if batch not in (None, 1):
            raise ConfigError(f"its input fixes a batch of {batch}; streamseg feeds a batch of 1 or a free batch")
        input_size, dynamic = self.input_size(input_layout)
        size_divisor = self.take("size_divisor", 1)
        if dynamic and (input_size[0] % size_divisor or input_size[1] % size_divisor):
            raise ConfigError(
                f"its input size {input_size[1]}x{input_size[0]} is not a multiple of its size divisor {size_divisor}; "
                "give another --input-size"
            )
        resize = self.take("resize", "stretch")
        pad_value = self.take("pad_value", 0)
        frame_size = self.frame_size(input_size, resize, dynamic)
        output, output_layout, scores = self.output()
        if len(facts.output_dims) == 3:  # no channel axis to place first: a detector's (N, 116, 8400) is told apart here
            self.check_output_is_a_map(output_layout, input_size)
        label_set = self.label_set(output)
        output_layout = self.check_channels(output, output_layout, label_set)
        if len(facts.output_dims) == 4:  # where its channel axis lies is known only now
            self.check_output_is_a_map(output_layout, input_size)
        return ModelDescription(
            label_set=label_set, input_name=facts.input_name, input_dtype=input_dtype, input_layout=input_layout,
            channel_order=channel_order, scale=scale, mean=mean, std=std, input_size=input_size, frame_size=frame_size,
            dynamic_size=dynamic, size_divisor=size_divisor, free_batch=batch is None, resize=resize, pad_value=pad_value,
            calibration=self.calibration(),
            output_name=facts.output_name, output_dtype=facts.output_dtype, output=output, output_layout=output_layout, scores=scores, sources=self.sources,
        )

    def calibration(self) -> Calibration:
        """The confidence temperature, curve, context share and alert level, where a source gives them; T = 1, no curve,
        share 0 and no alert otherwise. A curve and a share are fitted with one temperature: they are taken only from
        where the temperature came."""
        temperature = self.take("temperature", None, UNCALIBRATED.source)
        curve = self.take("confidence_curve", None, "none")
        context_share = self.take("context_share", None, "none")
        alert_below = self.take("alert_below", None, "none")
        for name, value, what in (("confidence_curve", curve, "confidence curve"), ("context_share", context_share, "context share")):
            if value is not None and self.sources[name] != self.sources["temperature"]:
                raise ConfigError(
                    f"the {what} (from {self.sources[name]}) was fitted with another temperature than "
                    f"the one from {self.sources['temperature']}: give both from one place"
                )
        if temperature is None:
            return Calibration(alert_below=alert_below)
        return Calibration(temperature, alert_below, self.sources["temperature"], curve, context_share or 0.0)

    def input_layout(self) -> str:
        dims = self.facts.input_dims
        if len(dims) != 4:
            raise ConfigError(
                f"its input {self.facts.input_name} has rank {len(dims)}; streamseg feeds images as rank 4 (N,C,H,W or N,H,W,C)"
            )
        inferred = "nchw" if dims[1] == 3 and dims[3] != 3 else "nhwc" if dims[3] == 3 and dims[1] != 3 else None
        layout = self.take("input_layout", inferred, "tensors")
        self.sources["input"] = self.sources["input_layout"]
        if layout is None:
            raise ConfigError(f"its input shape {_shape(dims)} does not say where the channels are; give --input-layout nchw|nhwc")
        channels = dims[1] if layout == "nchw" else dims[3]
        if channels not in (None, 3):
            raise ConfigError(f"its input has {channels} channels at the {layout} channel axis; streamseg feeds 3 (a colour image)")
        return layout

    def normalisation(self, input_dtype: str) -> tuple[float, tuple[float, ...], tuple[float, ...]]:
        if input_dtype == "uint8":
            scale = self.take("scale", 1.0, "tensors (uint8 input: raw pixels)")
            mean = self.take("mean", (0.0, 0.0, 0.0), "tensors (uint8 input: raw pixels)")
            std = self.take("std", (1.0, 1.0, 1.0), "tensors (uint8 input: raw pixels)")
            if scale != 1.0 or any(mean) or any(value != 1.0 for value in std):
                raise ConfigError("its input is uint8 (raw pixels), so --scale, --mean and --std cannot apply to it")
            return scale, mean, std
        if not any(self.given(name) for name in ("scale", "mean", "std")):
            raise ConfigError(
                f"nothing says how to normalise its {input_dtype} input; give --scale (e.g. 1/255) and --mean/--std, {self.where}"
            )
        # Whatever the source left out of the three is the identity: mean 0, std 1, pixel units.
        return self.take("scale", 1.0), self.take("mean", (0.0, 0.0, 0.0)), self.take("std", (1.0, 1.0, 1.0))

    def input_size(self, layout: str) -> tuple[tuple[int, int], bool]:
        dims = self.facts.input_dims
        height, width = (dims[2], dims[3]) if layout == "nchw" else (dims[1], dims[2])
        if height is not None and width is not None:
            try:
                check_side(height, width, "declared input")
            except ValueError as error:
                raise ConfigError(str(error)) from None
            self.sources["input_size"] = "tensors"
            return (height, width), False
        picked = self.layers.pick("input_size")
        if picked is None:
            raise ConfigError(f"its input size is dynamic ({_shape(dims)}); give --input-size WIDTHxHEIGHT {self.where}")
        size, source = picked
        if (height is not None and size[0] != height) or (width is not None and size[1] != width):
            raise ConfigError(f"--input-size {size[1]}x{size[0]} does not match its input shape {_shape(dims)}")
        self.sources["input_size"] = source
        return size, True

    def frame_size(self, input_size: tuple[int, int], resize: str, dynamic: bool) -> tuple[int, int]:
        """What a frame is scaled to: the input itself, or with letterbox the frames' shape fitted inside it."""
        wanted = self.layers.pick("input_size")
        if resize == "stretch":
            if wanted is not None and wanted[0] != input_size:
                raise ConfigError(
                    f"its input is fixed at {input_size[1]}x{input_size[0]}; --input-size {wanted[0][1]}x{wanted[0][0]} cannot change it "
                    "(with --resize letterbox it sets the frames' size inside the input)"
                )
            return input_size
        if wanted is not None and not dynamic:  # letterbox: --input-size is the frames' size inside the fixed input
            (height, width), source = wanted
            if height > input_size[0] or width > input_size[1]:
                raise ConfigError(f"--input-size {width}x{height} does not fit inside its input of {input_size[1]}x{input_size[0]}")
            self.sources["frame_size"] = source
            return (height, width)
        across, down = VIDEO_ASPECT
        fit = min(input_size[1] / across, input_size[0] / down)
        self.sources["frame_size"] = "16:9 video fitted in (--input-size sets it)"
        return (min(input_size[0], round(down * fit)), min(input_size[1], round(across * fit)))

    def output(self) -> tuple[str, str, str]:
        facts = self.facts
        dims, dtype = facts.output_dims, facts.output_dtype
        if len(dims) not in (3, 4):
            raise ConfigError(
                f"its output {facts.output_name} has rank {len(dims)} ({_shape(dims)}); supported: N,C,H,W, N,H,W,C or N,H,W"
            )
        integer = dtype in CLASS_ID_DTYPES
        if integer:
            inferred, why = "class-ids", f"tensors ({dtype} output)"
        elif dtype not in ("float32", "float16"):
            raise ConfigError(f"its output {facts.output_name} is {dtype}; supported: float scores or integer class ids")
        elif len(dims) == 3 or 1 in (dims[1], dims[3]) and dims[1] != dims[3]:
            inferred, why = "binary", "tensors (one channel)"
        else:
            inferred, why = "scores", f"tensors ({dtype} output)"
        output = self.take("output", inferred, why)
        if integer != (output == "class-ids"):
            raise ConfigError(f"--output {output} does not match its {dtype} output {facts.output_name}")
        # For scores the class count decides between the two (check_channels); one channel sits where the 1 is.
        inferred_layout = "nhwc" if len(dims) == 4 and output != "scores" and dims[3] == 1 and dims[1] != 1 else "nchw"
        output_layout = self.take("output_layout", inferred_layout, "tensors")
        producer_says = facts.output_producer in PROBABILITY_PRODUCERS
        scores = self.take(
            "scores", "probabilities" if producer_says else "logits",
            f"tensors (made by {facts.output_producer})" if facts.output_producer else "tensors",
        )
        return output, output_layout, scores

    def label_set(self, output: str) -> LabelSet:
        picked = self.take("labels")
        if picked is None and output == "binary":
            picked = ("background", "foreground")
            self.sources["labels"] = "tensors (one channel: two classes)"
        if picked is None:
            raise ConfigError(
                f"nothing names its classes; give --labels (cityscapes, camvid, NAME,NAME,... or a .txt file) {self.where}"
            )
        palette = self.take("palette", None, "generated")
        if isinstance(picked, LabelSet):
            if palette is None:
                self.sources["palette"] = f"{picked.name}'s own"
                return picked
            return LabelSet(picked.name, picked.names, palette, picked.ignore_index)
        if palette is not None and len(palette) != len(picked):
            raise ConfigError(f"the palette has {len(palette)} colours for {len(picked)} classes; give one colour per class")
        return custom_label_set(picked, palette)

    def check_channels(self, output: str, output_layout: str, label_set: LabelSet) -> str:
        """The output's layout, checked against the class count: the channel axis must hold one score per class."""
        dims, classes = self.facts.output_dims, label_set.num_classes
        if output == "binary" and classes != 2:
            raise ConfigError(f"its output has one channel, which gives two classes, but the labels name {classes}")
        if output != "scores":
            return output_layout
        if len(dims) != 4:
            raise ConfigError(f"its scores output has rank {len(dims)}; scores are N,C,H,W or N,H,W,C")
        if self.sources["output_layout"] == "tensors" and dims[1] != classes and dims[3] == classes:
            output_layout = "nhwc"
            self.sources["output_layout"] = "tensors (one score per class on the last axis)"
        channels = dims[1] if output_layout == "nchw" else dims[3]
        if channels is not None and channels != classes:
            raise ConfigError(
                f"its output {self.facts.output_name} has {channels} channels ({output_layout}), but the labels name {classes} classes"
            )
        return output_layout


    def check_output_is_a_map(self, output_layout: str, input_size: tuple[int, int]) -> None:
        """Refuses an output whose sides do not follow the input's at one stride: not a map of the image (detections, instances)."""
        dims = self.facts.output_dims
        sides = dims[1:3] if len(dims) == 3 or output_layout == "nhwc" else dims[2:4]
        if None in sides:
            return
        strides = (input_size[0] / sides[0], input_size[1] / sides[1])
        if not 0.5 <= strides[0] / strides[1] <= 2 or min(strides) < 0.5:
            raise ConfigError(
                f"its output {self.facts.output_name} {_shape(dims)} is not a map of its {input_size[1]}x{input_size[0]} input "
                "(its sides do not follow the input's); detection and instance-segmentation outputs are not supported"
            )


def _shape(dims: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if dim is None else str(dim) for dim in dims) + ")"


__all__ = ["resolve"]
