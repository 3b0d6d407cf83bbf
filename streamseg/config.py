"""Run settings: one dataclass, filled from a YAML file and then from command-line flags.

A YAML key is exactly a field name (``max_frames``, ``input_size``); an unknown key is an
error that lists the known ones, so a typo never passes silently.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from streamseg.backends.options import default_engine_dir
from streamseg.errors import ConfigError
from streamseg.models.registry import DEFAULT_MODEL

CRF_MODES = ("off", "async", "sync")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
# A config file is a few dozen lines; anything much larger is the wrong file, read whole into memory.
MAX_CONFIG_BYTES = 1 << 20
# The network's input: 4000x4000 took 4.8 GB and 102 s a frame, so sizes stop at DCI 4K.
MIN_SIDE, MAX_SIDE = 8, 4096
MAX_PIXELS = 4096 * 2160
# Counts of threads and processes: beyond these a number is a typo (100000 CRF workers were 100000 processes).
MAX_THREADS, MAX_CRF_WORKERS = 1024, 64


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
    queue_size: int | None = None  # frames each queue holds; None: 1 for a live source, 4 for a file (runner.default_queue_size)
    out: Path | None = None
    # x264's speed preset for --out: ultrafast costs about a third of veryfast's CPU per frame for a file about
    # twice the size (BENCHMARKS.md); on a small CPU the encoder otherwise takes the network's cores.
    out_preset: str = "ultrafast"
    stats: Path | None = None
    masks: Path | None = None
    max_frames: int | None = None
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    serve: str | None = None  # HOST:PORT of the web preview
    rtsp_out: str | None = None  # publish the overlay to this rtsp:// URL
    rtsp_give_up_after: float | None = None  # seconds an rtsp:// source may stay down (at start or later); None: retry forever
    crf: str = "off"
    crf_parameters: Path | None = None  # YAML written by tools/tune_crf.py
    crf_workers: int = 1  # CRF processes; they run at the lowest priority
    crf_delay_ms: float = 0.0  # how long a frame may wait for its own CRF result (async)
    crf_cpu_share: float | None = None  # most of a core each CRF worker may use; None: no cap
    refiner: str = "dense-crf"  # what --crf runs: NAME[:key=value,...] from the refiners table (`streamseg plugins`)
    flow: str = "off"  # off, or a flow estimator: dis, farneback, flownet, or one a plugin registers
    flow_weight: float = 0.5  # share of the previous frame's warped scores in the blend
    flow_resolution: float | None = None  # flow grid as a fraction of the model's input; None: each mode's own default
    key_every: int = 1  # run the network every K frames, propagate labels by flow in between
    alpha: float = 0.5
    sinks: list[str] = field(default_factory=list)  # more outputs, each NAME:TARGET from the sinks table, after the flags' own
    engine_dir: Path = field(default_factory=default_engine_dir)  # $XDG_CACHE_HOME/streamseg, never the working directory
    calibration_data: Path | None = None

    def validate(self) -> "RunConfig":
        _require(self.out_preset in X264_PRESETS, f"out_preset must be one of {', '.join(X264_PRESETS)}, not {self.out_preset!r}")
        _require(self.crf in CRF_MODES, f"crf must be one of {', '.join(CRF_MODES)}, not {self.crf!r}")
        _require(0.0 <= self.flow_weight < 1.0, "flow_weight must be in [0, 1)")
        _require(
            self.flow_resolution is None or 0.0 < self.flow_resolution <= 1.0, "flow_resolution must be in (0, 1]"
        )
        _require(self.key_every >= 1, "key_every must be at least 1")
        for spec in self.sinks:  # checked here, before a model loads; the sinks table checks the name when it makes one
            _require(":" in spec, f"each sink must be NAME:TARGET, e.g. jsonl:stats.jsonl, not {spec!r}")
        _require(self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}, not {self.precision!r}")
        _require(self.queue_size is None or self.queue_size >= 1, "queue_size must be at least 1")
        _require(self.streams >= 1, "streams must be at least 1")
        _require(self.crf_workers >= 1, "crf_workers must be at least 1")
        _require(self.crf_delay_ms >= 0, "crf_delay_ms must not be negative")
        _require(self.crf_cpu_share is None or 0 < self.crf_cpu_share <= 1, "crf_cpu_share must be in (0, 1]")
        _require(self.max_frames is None or self.max_frames >= 1, "max_frames must be at least 1")
        _require(0.0 <= self.alpha <= 1.0, "alpha must be between 0 and 1")
        _require(self.rtsp_give_up_after is None or self.rtsp_give_up_after > 0, "rtsp_give_up_after must be positive")
        _require(
            0 <= self.threads <= MAX_THREADS, f"threads must be in 0..{MAX_THREADS} (0: the library's default), not {self.threads}"
        )
        _require(self.streams <= MAX_THREADS, f"streams must be at most {MAX_THREADS}, not {self.streams}")
        _require(self.crf_workers <= MAX_CRF_WORKERS, f"crf_workers must be at most {MAX_CRF_WORKERS}, not {self.crf_workers}")
        _require(
            self.metrics_port is None or 0 <= self.metrics_port <= 65535,
            f"metrics_port must be in 0..65535, not {self.metrics_port}",
        )
        check_input_size(self.input_size)
        return self


def check_input_size(size: tuple[int, int], name: str = "input_size") -> tuple[int, int]:
    """``size`` as (height, width) if the network can run at it; else a ConfigError saying the bounds."""
    height, width = size
    if min(height, width) < MIN_SIDE:
        raise ConfigError(f"{name} must be at least {MIN_SIDE}x{MIN_SIDE}, not {width}x{height}")
    if max(height, width) > MAX_SIDE or height * width > MAX_PIXELS:
        raise ConfigError(
            f"{name} {width}x{height} is too large: at most {MAX_SIDE} pixels a side and {MAX_PIXELS} in all "
            "(4096x2160); memory and time per frame grow with the pixel count"
        )
    return size


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


_SIZE = re.compile(r"\s*(\d+)\s*[xX]\s*(\d+)\s*")


def parse_size(text: str | list | tuple) -> tuple[int, int]:
    """'480x360' (width x height, as people write it) or [480, 360] -> (360, 480) as (height, width)."""
    if isinstance(text, (list, tuple)) and len(text) == 2 and all(_is_int(side) for side in text):
        width, height = text
        return int(height), int(width)
    match = _SIZE.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ConfigError(f"size must look like WIDTHxHEIGHT (e.g. 480x360), not {text!r}")
    return int(match[2]), int(match[1])


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def size_argument(text: str) -> tuple[int, int]:
    """:func:`parse_size` as an argparse ``type=``: a bad size is a usage error, not a traceback."""
    try:
        return parse_size(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


_FIELD_TYPES: dict[str, Any] = typing.get_type_hints(RunConfig)


def _field_type(name: str) -> tuple[Any, bool]:
    """The field's type without ``| None``, and whether None is allowed."""
    hint = _FIELD_TYPES[name]
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return members[0], len(members) < len(typing.get_args(hint))
    return hint, False


def _coerce(name: str, value: Any) -> Any:
    """Turns a YAML or flag value into the field's type, strictly: true is not 1, 12.7 is not 12, 7 is not a name."""
    kind, optional = _field_type(name)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{name} needs a value")
    if name == "input_size":
        return parse_size(value)
    converter = _CONVERTERS.get(kind)
    if converter is None:  # a type with no converter of its own (a container): it must already be one
        if isinstance(value, typing.get_origin(kind) or kind):
            return value
        raise ConfigError(f"{name}: cannot use {value!r} ({_FIELD_TYPES[name]} expected)")
    converted = converter(value)
    if converted is None:
        raise ConfigError(f"{name}: cannot use {value!r} ({_TYPE_NAMES[kind]} expected)")
    return converted


def _to_int(value: Any) -> int | None:
    if _is_int(value):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    return None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            return None
    else:
        return None
    return number if math.isfinite(number) else None


def _to_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _to_path(value: Any) -> Path | None:
    if isinstance(value, Path):
        return value
    return Path(value).expanduser() if isinstance(value, str) and value.strip() else None


def _to_bool(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _to_str_list(value: Any) -> list[str] | None:
    # A lone string is refused, not wrapped: `sinks: jsonl:x` in YAML is most likely a missing dash.
    if isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        return list(value)
    return None


_CONVERTERS = {int: _to_int, float: _to_float, str: _to_str, Path: _to_path, bool: _to_bool, list[str]: _to_str_list}
_TYPE_NAMES = {
    int: "a whole number", float: "a finite number", str: "text", Path: "a path", bool: "true or false",
    list[str]: "a list of text",
}


class _StrictLoader(yaml.SafeLoader):
    """YAML 1.2's booleans: only true/false. YAML 1.1 also reads yes/no/on/off as booleans, so ``crf: off`` would be False."""


_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _read_config_text(path: Path) -> str:
    """The file's text, refusing what cannot be a config file: a folder, a huge file, binary data."""
    if path.is_dir():
        raise ConfigError(f"config {path} is a folder; give a YAML file")
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(f"no such config file: {path}") from None
    except OSError as error:
        raise ConfigError(f"cannot read config {path}: {error.strerror or error}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise ConfigError(f"config {path} is over {MAX_CONFIG_BYTES // 1024} KiB; a config file is a short YAML mapping")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config {path} is not a text file (not UTF-8)") from None


def load_yaml(path: Path) -> dict[str, Any]:
    text = _read_config_text(path)
    try:
        data = yaml.load(text, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path} must hold a mapping of option: value")
    unknown = sorted((str(key) for key in set(data) - set(_FIELD_TYPES)))
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
