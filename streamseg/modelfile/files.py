"""A model file on disk: its format, the files it consists of, their SHA-256, and loading it safely.

Loading reads data only: an ONNX graph, an OpenVINO IR, a PaddlePaddle or TFLite file hold
operators and tensors, and no custom-operator library is ever registered, so nothing in a model
runs as code. An ONNX file's external data must lie in the model's own folder: a location that
climbs out of it (``../``) or is absolute is refused before anything is read from it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

from streamseg.errors import InputError

# Suffix -> format. OpenVINO reads the last three directly (PaddlePaddle and TFLite where it supports their operators).
FORMATS = {".onnx": "onnx", ".xml": "openvino-ir", ".pdmodel": "paddle", ".tflite": "tflite"}
_CHUNK = 1 << 20


def is_model_file(name: str) -> bool:
    """Whether ``--model NAME`` names a file (by its suffix) rather than a registered model."""
    return Path(name).suffix.lower() in FORMATS


def model_format(path: Path) -> str:
    return FORMATS[path.suffix.lower()]


def companion_files(path: Path) -> list[Path]:
    """The files besides ``path`` that a format keeps its weights in (an IR's .bin, Paddle's .pdiparams)."""
    fmt = model_format(path)
    if fmt == "openvino-ir":
        return [path.with_suffix(".bin")]
    if fmt == "paddle" and path.with_suffix(".pdiparams").exists():
        return [path.with_suffix(".pdiparams")]
    return []


def check_readable(path: Path) -> None:
    """InputError naming what is missing, for the model file and the files it needs beside it."""
    for needed in (path, *companion_files(path)):
        if not needed.is_file():
            what = "model file" if needed == path else f"weights of {path.name}"
            raise InputError(f"{what} {needed} does not exist or is not a file")


def _onnx_tensors(graph) -> Iterator:
    """Every tensor of an ONNX graph that may hold data: initializers and constant attributes, in subgraphs too."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _onnx_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _onnx_tensors(subgraph)


def external_data_files(path: Path, model) -> list[Path]:
    """The external-data files ``model`` (loaded without them) names, each checked to lie in ``path``'s folder."""
    folder = path.parent.resolve()
    found: dict[str, Path] = {}
    for tensor in _onnx_tensors(model.graph):
        if tensor.data_location != tensor.EXTERNAL:
            continue
        location = next((entry.value for entry in tensor.external_data if entry.key == "location"), "")
        relative = Path(location)
        if not location or relative.is_absolute() or ".." in relative.parts:
            raise InputError(
                f"{path.name}: tensor {tensor.name!r} keeps its data at {location!r}, outside the model's folder; "
                "external data must lie beside the model"
            )
        target = (folder / relative).resolve()
        if not target.is_relative_to(folder):  # a link out of the folder
            raise InputError(f"{path.name}: external data {location!r} leads outside the model's folder")
        if not target.is_file():
            raise InputError(f"{path.name}: its external data file {location!r} is missing")
        found[location] = target
    return [found[name] for name in sorted(found)]


def load_onnx(path: Path):
    """The ONNX model at ``path`` with its external data, after checking where that data lies; InputError for a bad file."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, OSError) as error:
        raise InputError(f"{path} is not a readable ONNX file ({type(error).__name__})") from None
    if external_data_files(path, model):
        onnx.load_external_data_for_model(model, str(path.parent))
    return model


def file_sha256(path: Path, model=None) -> str:
    """SHA-256 of the model file and every file it reads its weights from (external data, an IR's .bin), names included."""
    parts = [path, *companion_files(path)]
    if model_format(path) == "onnx":
        import onnx

        parts += external_data_files(path, model if model is not None else onnx.load(str(path), load_external_data=False))
    digest = hashlib.sha256()
    for part in parts:
        digest.update(f"{part.name}\0".encode())
        with part.open("rb") as file:
            while chunk := file.read(_CHUNK):
                digest.update(chunk)
    return digest.hexdigest()
