"""What a model file expects and gives: the fields of its description, how each is written, and where each came from.

One table (:data:`FIELDS`) declares every field once: its flag, its place in the sidecar file and
in streamseg's embedded metadata, and the parser that turns a written value (a flag's text, YAML,
JSON) into the field's value. Parsers read data only; nothing written in a model or beside it is
ever evaluated as code.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from streamseg.errors import ConfigError
from streamseg.image.confidence import UNCALIBRATED, Calibration, check_context_share, check_curve
from streamseg.label_sets import LABEL_SETS, LabelSet, named_label_set

MAX_INPUT_SIDE = 4096  # a declared input larger than this a side is refused: no real segmentation model needs it

CHANNEL_ORDERS = ("rgb", "bgr")
LAYOUTS = ("nchw", "nhwc")
RESIZES = ("stretch", "letterbox")
OUTPUT_KINDS = ("scores", "class-ids", "binary")
SCORE_KINDS = ("logits", "probabilities")


def _choice(choices: tuple[str, ...]) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        text = str(value).strip().lower().replace("_", "-")
        if text not in choices:
            raise ValueError(f"one of {', '.join(choices)}, not {value!r}")
        return text

    return parse


def _number(value: Any) -> float:
    """A float, from a number or text such as '0.5' or '1/255'."""
    if isinstance(value, bool):
        raise ValueError(f"a number, not {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    try:
        return float(Fraction(str(value).strip()))
    except (ValueError, ZeroDivisionError):
        raise ValueError(f"a number such as 0.5 or 1/255, not {value!r}") from None


def _channel_values(value: Any) -> tuple[float, float, float]:
    """One value for every channel, or three: '0.5', '123.7,116.3,103.5', [0.485, 0.456, 0.406]."""
    if isinstance(value, str):
        value = [part for part in re.split(r"[,\s]+", value.strip()) if part]
    values = [_number(part) for part in (value if isinstance(value, (list, tuple)) else [value])]
    if len(values) == 1:
        values *= 3
    if len(values) != 3:
        raise ValueError(f"one value or three (one per channel), not {len(values)}")
    return (values[0], values[1], values[2])


def _positive_channel_values(value: Any) -> tuple[float, float, float]:
    values = _channel_values(value)
    if min(values) <= 0:
        raise ValueError(f"positive values, not {values}")
    return values


def _positive_number(value: Any) -> float:
    number = _number(value)
    if number <= 0:
        raise ValueError(f"a positive number, not {number}")
    return number


def _fraction(value: Any) -> float:
    number = _number(value)
    if not 0 <= number <= 1:
        raise ValueError(f"a number from 0 to 1, not {number}")
    return number


def _context_share(value: Any) -> float:
    return check_context_share(_number(value))


def _curve(value: Any) -> tuple[int, ...]:
    """A confidence calibration curve: a list of 256 whole numbers, its JSON text, or a .json file holding either
    the list or the record ``calibrate-confidence --out`` writes (whose ``curve`` it takes)."""
    if isinstance(value, str) and value.strip().endswith(".json"):
        try:
            value = json.loads(Path(value.strip()).read_text())
        except OSError as error:
            raise ValueError(f"a readable .json file ({error.strerror or error})") from None
        if isinstance(value, dict) and "curve" in value:
            value = value["curve"]
    elif isinstance(value, str):
        value = json.loads(value)
    if not isinstance(value, (list, tuple)):
        raise ValueError("a list of 256 whole numbers from 0 to 255")
    return check_curve(value)


def _size(value: Any) -> tuple[int, int]:
    """(height, width) from 'WIDTHxHEIGHT', [width, height], or one number for a square."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        value = [int(value), int(value)]
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", value)
        if match is None:
            raise ValueError(f"WIDTHxHEIGHT, e.g. 512x512, not {value!r}")
        value = [int(match[1]), int(match[2])]
    if not (isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(side, int) for side in value)):
        raise ValueError(f"WIDTHxHEIGHT, e.g. 512x512, not {value!r}")
    width, height = value
    check_side(height, width)
    return (height, width)


def check_side(height: int, width: int, what: str = "input") -> None:
    if min(height, width) < 1 or max(height, width) > MAX_INPUT_SIDE:
        raise ValueError(f"its {what} of {width}x{height} is outside 1 to {MAX_INPUT_SIDE} pixels a side")


def _whole(low: int, high: int) -> Callable[[Any], int]:
    def parse(value: Any) -> int:
        if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, str) and value.strip().isdigit())):
            raise ValueError(f"a whole number, not {value!r}")
        number = int(value)
        if not low <= number <= high:
            raise ValueError(f"a whole number from {low} to {high}, not {number}")
        return number

    return parse


def _names(value: Any) -> tuple[str, ...] | LabelSet:
    """A built-in set's name, names separated by commas, a list, a {id: name} mapping, or a text file of one name per line."""
    if isinstance(value, Mapping):  # Ultralytics' and HuggingFace's {id: name}
        try:
            ids = sorted((int(key), str(name)) for key, name in value.items())
        except ValueError:
            raise ValueError("a mapping of class ids to names, with whole-number ids") from None
        if [class_id for class_id, _ in ids] != list(range(len(ids))):
            raise ValueError("class ids 0, 1, 2, ... without gaps")
        return tuple(name for _, name in ids)
    if isinstance(value, (list, tuple)):
        return tuple(str(name) for name in value)
    text = str(value).strip()
    if text.lower() in LABEL_SETS:
        return named_label_set(text)
    if "," not in text and Path(text).suffix in (".txt", ".names") and Path(text).is_file():
        return tuple(line.strip() for line in Path(text).read_text(encoding="utf-8").splitlines() if line.strip())
    if "," not in text:
        raise ValueError(f"a built-in label set ({', '.join(LABEL_SETS)}), names separated by commas, or a .txt file, not {text!r}")
    return tuple(name.strip() for name in text.split(","))


def _palette(value: Any) -> np.ndarray:
    """Colours as '#80407f,#f423e8,...', a JSON list of [r, g, b], or a file holding either."""
    if isinstance(value, str) and Path(value.strip()).suffix in (".json", ".txt") and Path(value.strip()).is_file():
        value = Path(value.strip()).read_text(encoding="utf-8").strip()
    if isinstance(value, (list, tuple)) and value and all(isinstance(item, str) for item in value):
        value = ",".join(value)  # a YAML list of "#rrggbb"
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            value = json.loads(text)
        else:
            colours = []
            for part in (part.strip() for part in text.split(",") if part.strip()):
                if not re.fullmatch(r"#?[0-9a-fA-F]{6}", part):
                    raise ValueError(f"colours as #rrggbb separated by commas, or a JSON list of [r, g, b], not {part!r}")
                part = part.lstrip("#")
                colours.append([int(part[i : i + 2], 16) for i in (0, 2, 4)])
            value = colours
    palette = np.asarray(value)
    if palette.ndim != 2 or palette.shape[1] != 3 or not np.issubdtype(palette.dtype, np.integer):
        raise ValueError("a list of [r, g, b] colours")
    if palette.size and (palette.min() < 0 or palette.max() > 255):
        raise ValueError("colour values from 0 to 255")
    return palette.astype(np.uint8)


@dataclass(frozen=True)
class FieldSpec:
    """One field of a description: how it is written on the command line and in a sidecar, and its parser."""

    name: str  # the description's attribute
    flag: str  # on the command line; the RunConfig option of the same name with dashes
    sidecar: tuple[str, ...]  # its place in a sidecar or streamseg's embedded JSON: ("input", "mean")
    parse: Callable[[Any], Any]
    help: str


FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("labels", "--labels", ("labels",), _names, "class names: cityscapes, camvid, NAME,NAME,..., or a .txt file"),
    FieldSpec("palette", "--palette", ("palette",), _palette, "class colours: #rrggbb,... or a JSON list of [r, g, b]"),
    FieldSpec("channel_order", "--channel-order", ("input", "channel_order"), _choice(CHANNEL_ORDERS), "rgb or bgr"),
    FieldSpec("input_layout", "--input-layout", ("input", "layout"), _choice(LAYOUTS), "nchw or nhwc"),
    FieldSpec("scale", "--scale", ("input", "scale"), _positive_number, "pixel values 0..255 are multiplied by this first (e.g. 1/255)"),
    FieldSpec("mean", "--mean", ("input", "mean"), _channel_values, "subtracted after --scale, per channel"),
    FieldSpec("std", "--std", ("input", "std"), _positive_channel_values, "divided by after --mean, per channel"),
    FieldSpec("input_size", "--input-size", ("input", "size"), _size, "the network's input WIDTHxHEIGHT"),
    FieldSpec("size_divisor", "--size-divisor", ("input", "size_divisor"), _whole(1, 1024), "a dynamic input's sides are multiples of this"),
    FieldSpec("resize", "--resize", ("input", "resize"), _choice(RESIZES), "stretch or letterbox (keep the aspect ratio, pad)"),
    FieldSpec("pad_value", "--pad-value", ("input", "pad_value"), _whole(0, 255), "letterbox padding, a pixel value 0..255"),
    FieldSpec("output", "--output", ("output", "kind"), _choice(OUTPUT_KINDS), "scores, class-ids or binary (one channel)"),
    FieldSpec("output_layout", "--output-layout", ("output", "layout"), _choice(LAYOUTS), "nchw or nhwc"),
    FieldSpec("scores", "--scores", ("output", "scores"), _choice(SCORE_KINDS), "logits or probabilities"),
    FieldSpec("temperature", "--temperature", ("confidence", "temperature"), _positive_number,
              "the confidence temperature T (streamseg calibrate-confidence fits it)"),
    FieldSpec("confidence_curve", "--confidence-curve", ("confidence", "curve"), _curve,
              "the confidence calibration curve: 256 values 0..255 as a JSON list, or a .json file "
              "(streamseg calibrate-confidence --out writes one)"),
    FieldSpec("context_share", "--context-share", ("confidence", "context_share"), _context_share,
              "the share of each pixel's confidence margin replaced by the mean margin around it, 0 <= share < 1, "
              "as the temperature was fitted (streamseg calibrate-confidence fits at 0.5; default 0)"),
    FieldSpec("alert_below", "--alert-below", ("confidence", "alert_below"), _fraction,
              "the predicted accuracy below which a stream is degraded"),
)
# Sidecar keys that record how a value was made, for people: read and kept, never used.
NOTES: tuple[tuple[str, ...], ...] = (("confidence", "fitted_on"),)
FIELD_BY_NAME: dict[str, FieldSpec] = {spec.name: spec for spec in FIELDS}


def parse_field(name: str, value: Any, source: str) -> Any:
    """``value`` as written by ``source`` (a flag, a file) turned into field ``name``'s value; a one-line ConfigError if it cannot be."""
    spec = FIELD_BY_NAME[name]
    try:
        return spec.parse(value)
    except (ValueError, TypeError, json.JSONDecodeError, ZeroDivisionError, OverflowError) as error:
        raise ConfigError(f"{spec.flag.lstrip('-')} from {source}: expected {error}") from None


@dataclass(frozen=True)
class ModelDescription:
    """Everything streamseg assumes about a model file, each field with where it came from.

    Normalisation: a pixel value p in 0..255 reaches the network as (p * scale - mean) / std.
    ``input_size`` is the network's input (height, width); ``frame_size`` is what a frame is
    scaled to first: the same, or with ``letterbox`` the largest size of the frames' aspect that
    fits, the rest padded with ``pad_value``.
    """

    label_set: LabelSet
    input_name: str
    input_dtype: str  # "float32" or "uint8"
    input_layout: str
    channel_order: str
    scale: float
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    input_size: tuple[int, int]
    frame_size: tuple[int, int]
    dynamic_size: bool
    size_divisor: int
    free_batch: bool
    resize: str
    pad_value: int
    output_name: str
    output_dtype: str
    output: str
    output_layout: str
    scores: str
    calibration: Calibration = UNCALIBRATED
    sources: dict[str, str] = field(default_factory=dict)  # field name -> where it came from

    @property
    def letterbox_offset(self) -> tuple[int, int]:
        """(top, left) of the frame inside the network's input: centred."""
        return ((self.input_size[0] - self.frame_size[0]) // 2, (self.input_size[1] - self.frame_size[1]) // 2)

    def lines(self) -> list[str]:
        """The description as ``models inspect`` prints it: one field a line, with its source."""

        def size(value: tuple[int, int]) -> str:
            return f"{value[1]}x{value[0]}"

        names = self.label_set.names
        shown = ", ".join(names[:12]) + (f", ... ({len(names)} in all)" if len(names) > 12 else "")
        rows = [
            ("labels", f"{self.label_set.name}: {shown}"),
            ("palette", "given" if "palette" in self.sources and self.sources["palette"] != "generated" else "generated"),
            ("input", f"{self.input_name}: {self.input_dtype} {self.input_layout}, batch {'free' if self.free_batch else 1}"),
            ("channel_order", self.channel_order),
            ("scale", f"{self.scale:.6g}"),
            ("mean", ", ".join(f"{v:.6g}" for v in self.mean)),
            ("std", ", ".join(f"{v:.6g}" for v in self.std)),
            ("input_size", size(self.input_size) + (" (dynamic)" if self.dynamic_size else "")),
            ("size_divisor", str(self.size_divisor)),
            ("resize", self.resize + (f", frames at {size(self.frame_size)}" if self.resize == "letterbox" else "")),
            ("pad_value", str(self.pad_value)),
            ("output", f"{self.output_name}: {self.output}"),
            ("output_layout", self.output_layout),
            ("scores", self.scores),
            ("temperature", f"{self.calibration.temperature:.4g}"),
            ("confidence_curve", "none" if self.calibration.curve is None else "fitted (256 levels)"),
            ("context_share", f"{self.calibration.context_share:g}"),
            ("alert_below", "none" if self.calibration.alert_below is None else f"{self.calibration.alert_below:.3g}"),
        ]
        return [f"{name:<14} {value:<44} <- {self.sources.get(name, 'tensors')}" for name, value in rows]

    def digest_fields(self) -> dict[str, Any]:
        """What changes the adapted graph: part of its cache key."""
        return {
            "classes": self.label_set.num_classes, "input": [self.input_name, self.input_dtype, self.input_layout],
            "channel_order": self.channel_order, "scale": self.scale, "mean": list(self.mean), "std": list(self.std),
            "input_size": list(self.input_size), "frame_size": list(self.frame_size), "free_batch": self.free_batch,
            "resize": self.resize, "pad_value": self.pad_value,
            "output": [self.output_name, self.output_dtype, self.output, self.output_layout, self.scores],
        }
