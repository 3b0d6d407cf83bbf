"""Where a model's description can be read, each turned into the same written form: {field: value as written}.

In the order they are consulted after the command line's flags:

1. the sidecar ``MODEL.streamseg.yaml`` beside the model (``sidecar_path``; schema in README, "Your own model");
2. metadata in the file: streamseg's own JSON under the key ``streamseg``; OpenVINO Model API's
   ``model_info`` (ONNX ``metadata_props`` keys ``"model_info NAME"``, IR ``rt_info``); Ultralytics'
   ``names`` and ``imgsz``;
3. HuggingFace's ``config.json`` and ``preprocessor_config.json`` beside the model.

Everything is parsed as data: JSON, YAML's safe loader, ``ast.literal_eval`` for Ultralytics' Python literals.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from streamseg.errors import ConfigError
from streamseg.modelfile.description import FIELDS, NOTES

STREAMSEG_KEY = "streamseg"  # the metadata key of streamseg's own description (JSON, the sidecar's schema)
_BY_PLACE = {spec.sidecar: spec.name for spec in FIELDS}
# Model API's resize types that streamseg does the same way.
_MODEL_API_RESIZES = {"standard": "stretch", "fit_to_window_letterbox": "letterbox"}
ULTRALYTICS_PAD_VALUE = 114


def sidecar_path(model_path: Path) -> Path:
    """``my_model.onnx`` -> ``my_model.streamseg.yaml`` in the same folder."""
    return model_path.with_name(f"{model_path.stem}.streamseg.yaml")


def schema_fields(document: Any, source: str) -> dict[str, Any]:
    """A sidecar's (or embedded JSON's) nested mapping as {field: value}; an unknown key is refused, so a typo is not ignored."""
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise ConfigError(f"{source}: expected a mapping of keys (labels:, input:, output:, confidence:), not {type(document).__name__}")
    found: dict[str, Any] = {}
    for key, value in document.items():
        if (key,) in _BY_PLACE:
            found[_BY_PLACE[(key,)]] = value
        elif key in ("input", "output", "confidence") and isinstance(value, Mapping):
            for inner, inner_value in value.items():
                if (key, inner) in NOTES:
                    continue
                if (key, inner) not in _BY_PLACE:
                    known = sorted(place[1] for place in _BY_PLACE if place[0] == key)
                    raise ConfigError(f"{source}: unknown key {key}.{inner}; known under {key}: {', '.join(known)}")
                found[_BY_PLACE[(key, inner)]] = inner_value
        else:
            raise ConfigError(f"{source}: unknown key {key!r}; known: labels, palette, input, output, confidence")
    return found


def read_sidecar(model_path: Path) -> tuple[str, dict[str, Any]] | None:
    path = sidecar_path(model_path)
    if not path.is_file():
        return None
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid YAML ({str(error).splitlines()[0]})") from None
    source = f"sidecar {path.name}"
    return source, schema_fields(document, source)


def embedded_sources(metadata: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """The descriptions found in a file's flat metadata (ONNX ``metadata_props``; an IR's ``rt_info`` flattened alike), in order."""
    found = []
    if STREAMSEG_KEY in metadata:
        try:
            document = json.loads(metadata[STREAMSEG_KEY])
        except json.JSONDecodeError as error:
            raise ConfigError(f"metadata {STREAMSEG_KEY!r} is not valid JSON ({error})") from None
        found.append((f"metadata {STREAMSEG_KEY}", schema_fields(document, f"metadata {STREAMSEG_KEY}")))
    model_info = {key.split(None, 1)[1]: value for key, value in metadata.items() if key.startswith("model_info ")}
    if model_info:
        found.append(("metadata model_info", _model_api_fields(model_info)))
    if "names" in metadata and "imgsz" in metadata:
        found.append(("metadata ultralytics", _ultralytics_fields(metadata)))
    return found


def _model_api_fields(info: Mapping[str, str]) -> dict[str, Any]:
    """Model API's conventions: frames are BGR unless ``reverse_input_channels``; mean and scale values are in pixel units."""
    fields: dict[str, Any] = {"scale": 1.0}  # Model API normalises raw pixels: (p - mean_values) / scale_values
    reverse = str(info.get("reverse_input_channels", "False")).strip().lower() in ("true", "yes", "1")
    fields["channel_order"] = "rgb" if reverse else "bgr"
    if "labels" in info:
        fields["labels"] = str(info["labels"]).split()
    if "mean_values" in info:
        fields["mean"] = str(info["mean_values"])
    if "scale_values" in info:
        fields["std"] = str(info["scale_values"])
    if "resize_type" in info:
        resize_type = str(info["resize_type"]).strip()
        if resize_type not in _MODEL_API_RESIZES:
            raise ConfigError(
                f"metadata model_info resize_type {resize_type!r} is not supported; supported: {', '.join(_MODEL_API_RESIZES)} "
                "(give --resize stretch or letterbox to override)"
            )
        fields["resize"] = _MODEL_API_RESIZES[resize_type]
    if "pad_value" in info:
        fields["pad_value"] = str(info["pad_value"]).strip()
    return fields


def _literal(text: str, what: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        raise ConfigError(f"metadata ultralytics {what} is not a Python literal: {text[:60]!r}") from None


def _ultralytics_fields(metadata: Mapping[str, str]) -> dict[str, Any]:
    """Ultralytics exports take RGB in [0, 1], letterboxed with grey 114, at ``imgsz`` (height, width)."""
    size = _literal(metadata["imgsz"], "imgsz")
    if isinstance(size, int):
        size = [size, size]
    fields: dict[str, Any] = {
        "labels": _literal(metadata["names"], "names"), "channel_order": "rgb", "scale": "1/255",
        "mean": 0.0, "std": 1.0, "resize": "letterbox", "pad_value": ULTRALYTICS_PAD_VALUE,
    }
    if isinstance(size, (list, tuple)) and len(size) == 2:
        fields["input_size"] = [size[1], size[0]]  # written as [width, height]
    return fields


def _json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"{path}: not valid JSON ({error})") from None


def read_huggingface(model_path: Path) -> tuple[str, dict[str, Any]] | None:
    """``config.json``'s ``id2label`` and ``preprocessor_config.json``'s normalisation, beside the model (HF processors take RGB)."""
    config_path, processor_path = model_path.with_name("config.json"), model_path.with_name("preprocessor_config.json")
    fields: dict[str, Any] = {}
    names = []
    if config_path.is_file():
        config = _json_file(config_path)
        if isinstance(config, Mapping) and isinstance(config.get("id2label"), Mapping):
            fields["labels"] = config["id2label"]
            names.append(config_path.name)
    if processor_path.is_file():
        processor = _json_file(processor_path)
        if isinstance(processor, Mapping):
            names.append(processor_path.name)
            fields["channel_order"], fields["input_layout"] = "rgb", "nchw"  # HF models take pixel_values (N, 3, H, W)
            fields["scale"] = processor.get("rescale_factor", 1 / 255) if processor.get("do_rescale", True) else 1.0
            if processor.get("do_normalize", True) and "image_mean" in processor:
                fields["mean"], fields["std"] = processor["image_mean"], processor.get("image_std", 1.0)
            else:
                fields["mean"], fields["std"] = 0.0, 1.0
            size = processor.get("size")
            if isinstance(size, Mapping) and "height" in size and "width" in size:
                fields["input_size"] = [size["width"], size["height"]]
    return (f"huggingface {' + '.join(names)}", fields) if names else None
