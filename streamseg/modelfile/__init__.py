"""A model the user brings as a file (ONNX, OpenVINO IR, PaddlePaddle, TFLite) with its own classes.

:func:`open_model_file` reads the file (checking where its data lies), resolves its description
(``resolve``) and identifies it by SHA-256. Backends that read ONNX run :meth:`ModelFile.write_onnx`'s
wrapped graph, OpenVINO runs :meth:`ModelFile.openvino_model`'s; both take and give what every
backend does, so int8, batching, CRF, flow and the overlay work on it as on a built-in network.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from streamseg.errors import ConfigError
from streamseg.label_sets import LABEL_SETS, LabelSet
from streamseg.modelfile.description import FIELDS, ModelDescription
from streamseg.modelfile.files import check_readable, file_sha256, is_model_file, load_onnx, model_format
from streamseg.modelfile.resolve import resolve
from streamseg.modelfile.sources import STREAMSEG_KEY, sidecar_path
from streamseg.modelfile.tensors import onnx_facts, openvino_facts, read_openvino_model

FLAG_FIELDS = tuple(spec.name for spec in FIELDS if spec.name != "input_size")  # run options of these names (and --input-size) describe a model file


@dataclass(frozen=True)
class ModelFile:
    """A model file, its SHA-256 (with the files it reads weights from), and its resolved description."""

    path: Path
    format: str  # "onnx", "openvino-ir", "paddle", "tflite"
    sha256: str
    description: ModelDescription

    @property
    def label_set(self) -> LabelSet:
        return self.description.label_set

    @property
    def cache_name(self) -> str:
        """The readable part of its engine-cache folders."""
        return self.path.stem

    @property
    def digest(self) -> str:
        """Identifies the wrapped network: the file's bytes and every field that shapes the wrapper."""
        fields = json.dumps(self.description.digest_fields(), sort_keys=True)
        return hashlib.sha256(f"{self.sha256}\0{fields}".encode()).hexdigest()

    def write_onnx(self, destination: Path) -> None:
        """Writes the wrapped ONNX graph (streamseg's input and output) to ``destination``; ONNX files only."""
        import onnx

        from streamseg.modelfile.onnx_graph import adapted_onnx

        if self.format != "onnx":
            raise ConfigError(f"{self.path.name} is {self.format}: only --backend openvino runs it (the others read ONNX)")
        model = adapted_onnx(load_onnx(self.path), self.description)
        large = model.ByteSize() > 1_800_000_000  # protobuf's 2 GB limit: the weights go to a file beside it
        onnx.save(model, str(destination), save_as_external_data=large, location=f"{destination.name}.data" if large else None)
        onnx.checker.check_model(str(destination))

    def openvino_model(self):
        """The wrapped network as an ``openvino.Model``, from any format OpenVINO reads."""
        from streamseg.modelfile.openvino_graph import adapted_openvino

        if self.format == "onnx":
            load_onnx(self.path)  # external data checked before OpenVINO follows it
        return adapted_openvino(read_openvino_model(self.path), self.description)


def open_model_file(name: str | Path, flags: Mapping[str, Any] | None = None) -> ModelFile:
    """Reads the model file ``name`` and resolves its description, ``flags`` (field -> written value) first."""
    path = Path(name).expanduser()
    check_readable(path)
    fmt = model_format(path)
    try:
        facts = onnx_facts(load_onnx(path)) if fmt == "onnx" else openvino_facts(read_openvino_model(path))
    except ConfigError as error:
        raise ConfigError(f"{path.name}: {error}") from None
    description = resolve(path, facts, {key: value for key, value in (flags or {}).items() if value is not None})
    return ModelFile(path=path, format=fmt, sha256=file_sha256(path), description=description)


def streamseg_metadata(label_set: LabelSet) -> str:
    """streamseg's own description of a network in its contract (RGB in [0, 1] in, logits NCHW out), for an exported file's metadata."""
    named = label_set.name in LABEL_SETS and LABEL_SETS[label_set.name].names == label_set.names
    palette = None if named and np.array_equal(LABEL_SETS[label_set.name].palette, label_set.palette) else label_set.palette.tolist()
    return json.dumps({
        "labels": label_set.name if named else list(label_set.names),
        **({"palette": palette} if palette is not None else {}),
        "input": {"channel_order": "rgb", "layout": "nchw", "scale": "1/255", "mean": [0, 0, 0], "std": [1, 1, 1], "resize": "stretch"},
        "output": {"kind": "scores", "layout": "nchw", "scores": "logits"},
    })


__all__ = ["FLAG_FIELDS", "ModelFile", "STREAMSEG_KEY", "is_model_file", "open_model_file", "sidecar_path", "streamseg_metadata"]
