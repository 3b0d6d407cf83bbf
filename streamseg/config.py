"""Run settings: one dataclass, filled from a YAML file and then from command-line flags.

A YAML key is exactly a field name (``max_frames``, ``input_size``); an unknown key is an
error that lists the known ones, so a typo never passes silently.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import yaml

from streamseg.errors import ConfigError
from streamseg.models.registry import DEFAULT_MODEL

CRF_MODES = ("off", "async", "sync")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")


@dataclass
class RunConfig:
    """Everything ``streamseg run`` and ``streamseg bench`` need; flags and YAML keys share these names."""

    source: str | None = None
    model: str = DEFAULT_MODEL
    weights: Path | None = None  # a state dict to use instead of the bundled weights
    backend: str = "auto"
    precision: str = "auto"  # auto: the backend's fastest precision that keeps parity on this CPU
    input_size: tuple[int, int] = (360, 480)  # (height, width) the network sees
    threads: int = 0  # inference threads; 0: the library's default
    streams: int = 1  # concurrent inferences sharing those threads: more frames per second, more latency each
    queue_size: int = 4
    out: Path | None = None
    stats: Path | None = None
    masks: Path | None = None
    max_frames: int | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    serve: str | None = None  # HOST:PORT of the web preview
    rtsp_out: str | None = None  # publish the overlay to this rtsp:// URL
    crf: str = "off"
    crf_parameters: Path | None = None  # YAML written by tools/tune_crf.py
    crf_workers: int = 1  # CRF processes; they run at the lowest priority
    crf_delay_ms: float = 0.0  # how long a frame may wait for its own CRF result (async)
    crf_cpu_share: float | None = None  # most of a core each CRF worker may use; None: no cap
    flow: str = "off"  # off, or a flow estimator: dis, farneback, flownet, or one a plugin registers
    flow_weight: float = 0.5  # share of the previous frame's warped scores in the blend
    flow_resolution: float | None = None  # flow grid as a fraction of the model's input; None: each mode's own default
    key_every: int = 1  # run the network every K frames, propagate labels by flow in between
    alpha: float = 0.5
    engine_dir: Path = Path("engines")
    calibration_data: Path | None = None

    def validate(self) -> "RunConfig":
        _require(self.crf in CRF_MODES, f"crf must be one of {', '.join(CRF_MODES)}, not {self.crf!r}")
        _require(0.0 <= self.flow_weight < 1.0, "flow_weight must be in [0, 1)")
        _require(
            self.flow_resolution is None or 0.0 < self.flow_resolution <= 1.0, "flow_resolution must be in (0, 1]"
        )
        _require(self.key_every >= 1, "key_every must be at least 1")
        _require(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        _require(self.queue_size >= 1, "queue_size must be at least 1")
        _require(self.streams >= 1, "streams must be at least 1")
        _require(self.crf_workers >= 1, "crf_workers must be at least 1")
        _require(self.crf_delay_ms >= 0, "crf_delay_ms must not be negative")
        _require(self.crf_cpu_share is None or 0 < self.crf_cpu_share <= 1, "crf_cpu_share must be in (0, 1]")
        _require(self.max_frames is None or self.max_frames >= 1, "max_frames must be at least 1")
        _require(0.0 <= self.alpha <= 1.0, "alpha must be between 0 and 1")
        _require(all(v >= 8 for v in self.input_size), "input_size must be at least 8x8")
        return self


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def parse_size(text: str | list | tuple) -> tuple[int, int]:
    """'480x360' (width x height, as people write it) -> (360, 480) as (height, width)."""
    if isinstance(text, (list, tuple)) and len(text) == 2:
        width, height = text
    else:
        try:
            width, height = str(text).lower().split("x")
        except ValueError:
            raise ConfigError(f"size must look like WIDTHxHEIGHT (e.g. 480x360), not {text!r}") from None
    try:
        return int(height), int(width)
    except ValueError:
        raise ConfigError(f"size must look like WIDTHxHEIGHT (e.g. 480x360), not {text!r}") from None


def size_argument(text: str) -> tuple[int, int]:
    """:func:`parse_size` as an argparse ``type=``: a bad size is a usage error, not a traceback."""
    try:
        return parse_size(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


_FIELD_TYPES = {f.name: f.type for f in fields(RunConfig)}


def _coerce(name: str, value: Any) -> Any:
    """Turns a YAML or flag value into the field's type."""
    if value is None:
        return None
    kind = _FIELD_TYPES[name]
    try:
        if name == "input_size":
            return parse_size(value)
        if "Path" in kind:
            return Path(value)
        if kind.startswith("int"):
            return int(value)
        if kind.startswith("float"):
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name}: cannot use {value!r} ({kind} expected)") from None


def load_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"no such config file: {path}") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of option: value")
    unknown = sorted(set(data) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; known keys: {', '.join(_FIELD_TYPES)}")
    return data


def build_config(config_file: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Defaults, then the YAML file, then the flags the user actually gave (None means not given)."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(load_yaml(config_file))
    values.update({k: v for k, v in overrides.items() if v is not None})
    config = dataclasses.replace(RunConfig(), **{k: _coerce(k, v) for k, v in values.items()})
    return config.validate()
