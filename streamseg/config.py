"""Run settings: every option declared once, as a field of ``RunConfig``, and everything else derived from it.

A field declared with :func:`~streamseg.options.option` carries its type, default,
help, bounds, choices and checks. From those fields come the flags of ``streamseg run`` and
``bench`` (:func:`add_run_arguments`; eval, export and train take the options they share with a
run through :func:`add_option_argument`), the YAML keys a ``--config`` file may hold (exactly the
field names; an unknown key is an error that lists the known ones, so a typo never passes
silently) and the keywords of the Python API (``streamseg.api.Pipeline``), so none of them can
drift from the others. ``backend_options`` carries the backends' own settings, declared the same
way in ``streamseg.options.BackendOptions``.

Why dataclass fields with metadata rather than pydantic or another settings library: pydantic is
not a dependency and this would be its only use; the run's values are few kinds whose strict
conversion is a page below; argparse is built from the fields in a few lines; and ``RunConfig``
stays the plain dataclass the assembler, the tools and the tests already construct.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import numbers
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from streamseg.errors import ConfigError
from streamseg.image.confidence import DEFAULT_THRESHOLD
from streamseg.modelfile import FLAG_FIELDS
from streamseg.modelfile.description import FIELD_BY_NAME, parse_field
from streamseg.options import (
    DEFAULT_CRF_WORKERS,
    DEFAULT_MODEL,
    BackendOptions,
    Bounds,
    OptionSpec,
    check_options,
    declared_default,
    declared_fields,
    default_engine_dir,
    option,
    option_spec,
)

CRF_MODES = ("off", "async", "sync")
X264_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow")
PRECISIONS = ("auto", "fp32", "bf16", "fp16", "int8")
# A config file is a few dozen lines; anything much larger is the wrong file, read whole into memory.
MAX_CONFIG_BYTES = 1 << 20
# The network's input: memory and time per frame grow with the pixel count, and a 4000x4000 input takes
# gigabytes and minutes a frame, so sizes stop at DCI 4K.
MIN_SIDE, MAX_SIDE = 8, 4096
MAX_PIXELS = 4096 * 2160
# Counts of threads and processes: beyond these a number is a typo (100000 CRF workers were 100000 processes).
MAX_THREADS, MAX_CRF_WORKERS = 1024, 64
RUN_ONLY = ("run",)
MODEL_COMMANDS = ("run", "bench", "eval", "export", "models")  # the commands that take a model file's description
DEFAULT_INPUT_SIZE = (360, 480)  # (height, width) of the built-in models' input, when --input-size is not given  # options of `streamseg run` alone: outputs and overlay that bench, which measures, does not offer

log = logging.getLogger(__name__)


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
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def size_argument(text: str) -> tuple[int, int]:
    """:func:`parse_size` as an argparse ``type=``: a bad size is a usage error, not a traceback."""
    try:
        return parse_size(text)
    except ConfigError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _input_size_value(value: Any) -> tuple[int, int]:
    """The field's own (height, width) tuple as Python code gives it, else a written size: "480x360" or YAML's [480, 360]."""
    if isinstance(value, tuple) and len(value) == 2 and all(_is_int(side) for side in value):
        return int(value[0]), int(value[1])
    return parse_size(value)


def _written_size(size: tuple[int, int]) -> str:
    return f"{size[1]}x{size[0]}"


def _check_sinks(sinks: list[str]) -> None:
    for spec in sinks:  # checked here, before a model loads; the sinks table checks the name when it makes one
        if ":" not in spec:
            raise ConfigError(f"each sink must be NAME:TARGET, e.g. jsonl:stats.jsonl, not {spec!r}")


def _backend_options_value(value: Any) -> dict[str, Any]:
    """Backend settings from YAML or the API (a mapping) or the command line (a list of "KEY=VALUE"), converted and checked."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
    elif isinstance(value, (list, tuple)) and all(isinstance(item, str) for item in value):
        pairs = [_key_value(item) for item in value]
    else:
        raise ConfigError(f"backend_options: cannot use {value!r} (a mapping of KEY: VALUE expected)")
    settings = {}
    for key, raw in pairs:
        if key not in _BACKEND_FIELDS:
            raise ConfigError(f"unknown backend option {key!r}; known backend options: {', '.join(_BACKEND_FIELDS)}")
        settings[key] = _convert(f"backend option {key}", _BACKEND_TYPES[key], option_spec(_BACKEND_FIELDS[key]), raw)
    BackendOptions(**settings)  # bounds and checks now, before a model loads
    return settings


def _key_value(text: str) -> tuple[str, Any]:
    """("workspace_gib", 2) from "workspace_gib=2": the value is read as a YAML scalar, so flag and file take the same values."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise ConfigError(f"a backend option is KEY=VALUE (e.g. workspace_gib=2), not {text!r}")
    try:
        return key.strip(), yaml.load(value, Loader=_StrictLoader)
    except yaml.YAMLError as error:
        raise ConfigError(f"backend option {key.strip()}: cannot read {value!r}: {str(error).splitlines()[0]}") from None


# What one entry of ``streams:`` may set for its own stream; every other option is the run's, shared by all.
STREAM_KEYS = ("name", "source", "out", "stats", "masks", "sinks", "rtsp_out")
_STREAM_PATHS = ("out", "stats", "masks")
# Sinks whose one target every stream of a run may write together, each under its own topics: one ROS bag of every camera.
SHARED_SINKS = ("rosbag",)


# Stream names appear in URLs, file names ({name} in an output path) and metric labels.
_STREAM_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def check_stream_name(name: object) -> str:
    if not isinstance(name, str) or not _STREAM_NAME.fullmatch(name):
        raise ConfigError(
            f"stream name {name!r} is not usable: 1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
        )
    return name


def _streams_value(value: Any) -> list[dict[str, Any]]:
    """Streams from YAML or the API (a list of mappings with a ``source``) or the command line ("NAME=SOURCE", repeatable)."""
    if _is_int(value):  # the option's name before several streams could run at once
        raise ConfigError(f"streams is the list of streams to run; concurrent inference calls are inference_calls: {value}")
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"streams: cannot use {value!r} (a list of streams, each with a source, expected)")
    return [stream_entry(item) for item in value]


def stream_entry(item: Any) -> dict[str, Any]:
    """One stream as a checked mapping, from YAML, the API, HTTP (a mapping) or the command line (NAME=SOURCE)."""
    if isinstance(item, str):
        name, equals, source = item.partition("=")
        if not equals or not name.strip() or not source.strip():
            raise ConfigError(f"a stream is NAME=SOURCE (e.g. front=rtsp://127.0.0.1:8554/front), not {item!r}")
        item = {"name": name.strip(), "source": source.strip()}
    if not isinstance(item, Mapping):
        raise ConfigError(f"each stream is a mapping with a source (and name, out, stats, masks, sinks), not {item!r}")
    unknown = sorted(str(key) for key in set(item) - set(STREAM_KEYS))
    if unknown:
        raise ConfigError(f"stream: unknown key {unknown[0]!r}; a stream may set {', '.join(STREAM_KEYS)}")
    entry = dict(item)
    if not isinstance(entry.get("source"), str) or not entry["source"].strip():
        named = f" {entry['name']}" if isinstance(entry.get("name"), str) else ""
        raise ConfigError(f"stream{named} needs a source (a video file, camera:N, rtsp://..., or 'demo')")
    for key in ("name", "rtsp_out"):
        if key in entry and not isinstance(entry[key], str):
            raise ConfigError(f"stream {key} must be text, not {entry[key]!r}")
    for key in _STREAM_PATHS:
        if key in entry:
            entry[key] = _coerce(key, entry[key])
    if "sinks" in entry:
        entry["sinks"] = _coerce("sinks", entry["sinks"])
        _check_sinks(entry["sinks"])
    return entry


def stream_entries(
    config: RunConfig, split: Callable[[str], list[tuple[str, str]] | None] | None = None,
) -> list[dict[str, Any]]:
    """The run's streams (its ``source`` first, when it has one too), each named: its own ``name``, else one made
    from its source (``cam.mp4`` -> ``cam``, then ``cam-2``).

    ``split`` (the run's ``SourceTable.streams_of``) says which sources hold several streams, as
    (name, SOURCE of one): such a source (a ROS bag of several image topics) becomes one entry per
    stream, each named as ``split`` names it, under the entry's own name when it has one.
    """
    given = config.streams
    if config.source is not None:  # one source is a run of one stream; with `--stream b=B` (or streams: in a file) A runs too
        given = [{"source": config.source}, *given]
    hinted = [part for entry in given for part in _split_entry(entry, split)]
    taken: set[str] = {entry["name"] for entry, _ in hinted if "name" in entry}
    entries = [named_stream(entry, taken, hint) for entry, hint in hinted]
    for entry in entries:
        check_stream_name(entry["name"])
    names = [entry["name"] for entry in entries]
    duplicate = next((name for name in names if names.count(name) > 1), None)
    if duplicate is not None:
        raise ConfigError(f"two streams are called {duplicate}; each stream needs its own name")
    return entries


def named_stream(entry: dict[str, Any], taken: set[str], hint: str | None = None) -> dict[str, Any]:
    """``entry`` with its own name, or one made from ``hint`` (else its source) that is not in ``taken`` (which then holds it)."""
    if "name" in entry:
        return entry
    name = _free_name(hint or _name_from_source(entry["source"]), taken)
    taken.add(name)
    return {"name": name, **entry}


def _split_entry(
    entry: dict[str, Any], split: Callable[[str], list[tuple[str, str]] | None] | None,
) -> list[tuple[dict[str, Any], str | None]]:
    """(entry, name hint) of each stream ``entry``'s source holds: itself, unless ``split`` says it holds several."""
    parts = split(entry["source"]) if split is not None else None
    if parts is None:
        return [(entry, None)]
    if "name" in entry and len(parts) > 1:  # front=bag:drive.mcap -> front.camera.image_raw, front.lidar.image
        return [({**entry, "name": f"{entry['name']}.{name}", "source": source}, None) for name, source in parts]
    return [({**entry, "source": source}, name) for name, source in parts]


def _name_from_source(source: str) -> str:
    tail = source.rstrip("/").rsplit("/", 1)[-1].split("?")[0]
    stem = tail.rsplit(".", 1)[0] if "." in tail and not source.startswith("rtsp://") else tail
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")[:48]
    return cleaned or "stream"


def _free_name(name: str, taken: set[str]) -> str:
    if name not in taken:
        return name
    number = 2
    while f"{name}-{number}" in taken:
        number += 1
    return f"{name}-{number}"


def stream_config(config: RunConfig, entry: Mapping[str, Any], *, several: bool = True) -> RunConfig:
    """One stream's options: the run's, with the entry's source and outputs, and ``{name}`` in output paths filled in.

    With ``several`` streams, an output of the run's that has no ``{name}`` would be written by
    every stream at once, so it is refused; an entry's own outputs are its own.
    """
    name = entry["name"]
    values: dict[str, Any] = {"source": entry["source"], "streams": []}
    for key in (*_STREAM_PATHS, "rtsp_out"):
        # An entry's own outputs are its own: {name} in them is filled in, never refused.
        values[key] = _per_stream(key, entry[key], name, False) if key in entry else _per_stream(key, getattr(config, key), name, several)
    sinks = entry["sinks"] if "sinks" in entry else config.sinks
    values["sinks"] = [
        _per_stream("sink", sink, name, several and "sinks" not in entry and not is_shared_sink(sink)) for sink in sinks
    ]
    return dataclasses.replace(config, **values)


def is_shared_sink(spec: str) -> bool:
    """Whether ``--sink NAME:TARGET`` names a sink that several streams write together (``SHARED_SINKS``)."""
    return spec.partition(":")[0].strip() in SHARED_SINKS


def _per_stream(key: str, value: Any, name: str, several: bool) -> Any:
    if value is None:
        return None
    text = str(value)
    if "{name}" not in text:
        if several:
            flag = "--" + key.replace("_", "-")
            raise ConfigError(
                f"{flag} {text} would be written by every stream; put {{name}} in it (e.g. out/{{name}}.mp4) "
                "or give each stream its own"
            )
        return value
    filled = text.replace("{name}", name)
    return Path(filled) if isinstance(value, Path) else filled


def _model_option(name: str) -> Any:
    """A field of a model file's description (``streamseg.modelfile.description.FIELDS``) as a run option: checked when
    given, kept as written (the description parses it, first of the sources it resolves)."""
    spec = FIELD_BY_NAME[name]

    def checked(value: Any) -> Any:
        parse_field(name, value, spec.flag)
        return value

    return option(None, parse=checked, commands=MODEL_COMMANDS, metavar=name.upper(), help=f"model file: {spec.help}")


def _backend_options_help() -> str:
    keys = ", ".join(
        declared.name if declared.default is None else f"{declared.name} ({option_spec(declared).written(declared.default)})"
        for declared in declared_fields(BackendOptions)
    )
    return f"a backend's own setting, repeatable; each backend reads those that apply to it. KEY (default): {keys}"


@dataclass
class RunConfig:
    """Everything ``streamseg run`` and ``streamseg bench`` need: each field is one option, its flag, YAML key and API keyword."""

    source: str | None = option(
        None, positional=True,
        help="video file, image folder, camera:N, rtsp://..., bag:PATH[#/TOPIC] (a ROS bag: each image topic a stream), "
        "or 'demo' (a synthetic road scene)",
    )
    model: str = option(
        DEFAULT_MODEL, help="registered model name (see `streamseg models`; default {default}), or a model file: "
        ".onnx, OpenVINO .xml, PaddlePaddle .pdmodel, .tflite (see README, Your own model)",
    )
    weights: Path | None = option(None, help="state dict to use instead of the bundled weights")
    # What a model file expects and gives, where its sidecar and metadata do not say (streamseg.modelfile).
    labels: Any | None = _model_option("labels")
    palette: Any | None = _model_option("palette")
    channel_order: str | None = _model_option("channel_order")
    input_layout: str | None = _model_option("input_layout")
    scale: Any | None = _model_option("scale")
    mean: Any | None = _model_option("mean")
    std: Any | None = _model_option("std")
    size_divisor: Any | None = _model_option("size_divisor")
    resize: str | None = _model_option("resize")
    pad_value: Any | None = _model_option("pad_value")
    output: str | None = _model_option("output")
    output_layout: str | None = _model_option("output_layout")
    scores: str | None = _model_option("scores")
    temperature: Any | None = _model_option("temperature")
    confidence_curve: Any | None = _model_option("confidence_curve")
    context_share: Any | None = _model_option("context_share")
    backend: str = option("auto", help="auto (the fastest present), torch, onnxruntime, openvino, cuda, tensorrt, ... (default {default})")
    precision: str = option(  # auto: the backend's fastest precision that keeps parity on this CPU
        "auto", choices=PRECISIONS, help="{choices}; auto: the backend's fastest that keeps parity with fp32",
    )
    input_size: tuple[int, int] | None = option(  # (height, width) the network sees; None: DEFAULT_INPUT_SIZE or the model file's
        None, parse=_input_size_value, check=check_input_size, show=_written_size, commands=MODEL_COMMANDS,
        help="network input WIDTHxHEIGHT (default: 480x360 for the built-in models, a model file's own size; "
        "with --resize letterbox, the frames' size inside it)",
    )
    threads: int = option(
        0, bounds=Bounds(0, MAX_THREADS, note="0: the library's default"), help="inference threads (default {default}: the library's)",
    )
    inference_calls: int | None = option(  # more frames per second, more latency each
        None, bounds=Bounds(1, MAX_THREADS), aliases=("inference_streams",),
        help="inference calls run at once, splitting those threads (default: 1 for one stream, the lowest latency; "
        "2 with several streams where the backend can run two at once)",
    )
    queue_size: int | None = option(  # None: runner.default_queue_size
        None, bounds=Bounds(low=1), help="frames each queue holds (default: 1 for a live source, 4 for a file)",
    )
    out: Path | None = option(None, help="write the overlay video here (H.264 MP4); bench: from its pipelined run")
    # x264's speed preset for --out: ultrafast spends the least CPU per frame, for a larger file; on a small CPU
    # a slower preset's encoder takes the network's cores (BENCHMARKS.md, Pipeline efficiency).
    out_preset: str = option(
        "ultrafast", choices=X264_PRESETS, help="x264 speed preset of the --out video (least CPU and larger file first): {choices}",
    )
    stats: Path | None = option(None, commands=RUN_ONLY, help="write per-frame statistics here (JSON lines)")
    masks: Path | None = option(None, commands=RUN_ONLY, help="write per-frame label maps (PNG) into this folder")
    max_frames: int | None = option(None, bounds=Bounds(low=1), help="stop after N frames")
    realtime: bool = option(
        False, commands=RUN_ONLY,
        help="replay a recording (a ROS bag) at the pace it was recorded, dropping the frames the run cannot keep up "
        "with, as from a camera; without it a bag is read as fast as the run goes, every frame",
    )
    metrics_port: int | None = option(None, bounds=Bounds(0, 65535), help="serve /metrics and /healthz on this port")
    metrics_host: str = option("127.0.0.1", help="address to bind (default {default})")
    # One series per class and stream: a model of hundreds of classes would swell every scrape unless asked for.
    class_metrics: str = option(
        "auto", choices=("auto", "on", "off"),
        help="per-class series on /metrics (streamseg_class_fraction{{class}}): {choices}; auto: up to 32 classes",
    )
    # How sure the labels are (streamseg.image.confidence), and the alert when a stream's fall below a level.
    confidence: str = option(
        "on", choices=("on", "off"), help="calibrated confidence per pixel and per frame: {choices}",
    )
    confidence_threshold: float = option(
        DEFAULT_THRESHOLD, bounds=Bounds(0, 1, low_open=True, high_open=True),
        help="a pixel under this confidence is low-confidence, in (0, 1) (default {default})",
    )
    alert_below: float | None = option(
        None, bounds=Bounds(0, 1),
        help="a stream whose predicted accuracy over --alert-window-s falls below this is degraded "
        "(default: the model's own level, from frames it was not trained on; none for a model without one)",
    )
    alert_window_s: float = option(
        10.0, bounds=Bounds(low=0, low_open=True), metavar="SECONDS",
        help="the alert's rolling window, in wall-clock seconds (default {default})",
    )
    show_uncertain: bool = option(False, commands=RUN_ONLY, help="grey the overlay's pixels under --confidence-threshold")
    masks_confidence: bool = option(
        False, commands=RUN_ONLY, help="with --masks, also write each frame's confidence (NNNNNN.confidence.png, 255: sure)",
    )
    serve: str | None = option(None, commands=RUN_ONLY, help="web preview on HOST:PORT (e.g. 127.0.0.1:8080)")
    foxglove: str | None = option(
        None, commands=RUN_ONLY, metavar="HOST:PORT",
        help="live view for Foxglove: a WebSocket on HOST:PORT (HOST 127.0.0.1 unless given, e.g. :8765) with each "
        "stream's image, labels, overlay, confidence and legend, as --sink rosbag writes them",
    )
    # Each frame sent costs CPU to encode while a client subscribes, whether it reads or not.
    foxglove_fps: float = option(
        5.0, bounds=Bounds(0, 60, low_open=True), commands=RUN_ONLY, metavar="FPS",
        help="most frames a second the --foxglove view sends of each stream (default {default})",
    )
    # Whoever reaches POST /streams names files the run writes: they stay under this folder (streamseg.outputs).
    output_root: Path | None = option(
        None, commands=RUN_ONLY, metavar="DIR",
        help="outputs named over HTTP (POST /streams) must lie under this folder "
        "(default: the folder of --out, --stats or --masks, else the working folder)",
    )
    rtsp_out: str | None = option(
        None, commands=RUN_ONLY, help="publish the overlay to this rtsp:// URL (a server that accepts RECORD)",
    )
    rtsp_give_up_after: float | None = option(
        None, bounds=Bounds(low=0, low_open=True), metavar="SECONDS",
        help="end the run when an rtsp:// source stays down this long, at start or later (default: keep retrying)",
    )
    crf: str = option("off", choices=CRF_MODES, help="CRF refinement of the labels: {choices}")
    crf_parameters: Path | None = option(None, help="tuned CRF settings (YAML from tools/tune_crf.py)")
    crf_workers: int = option(  # they run at the lowest priority
        DEFAULT_CRF_WORKERS, bounds=Bounds(1, MAX_CRF_WORKERS), help="CRF processes (default {default})",
    )
    crf_delay_ms: float = option(
        0.0, bounds=Bounds(low=0), help="how long a frame may wait for its own CRF result with --crf async, in ms (default {default})",
    )
    crf_cpu_share: float | None = option(
        None, bounds=Bounds(0, 1, low_open=True), help="most of one core each CRF process may use, in (0, 1] (default: no cap)",
    )
    refiner: str = option(
        "dense-crf", metavar="NAME[:K=V,...]",
        help="what --crf runs: a refiner from `streamseg plugins`, e.g. dense-crf:iterations=3 (default {default})",
    )
    flow: str = option(
        "off", help="temporal smoothing: off, dis, farneback, flownet, or a plugin's estimator (default {default})",
    )
    flow_weight: float = option(
        0.5, bounds=Bounds(0, 1, high_open=True), help="share of the warped previous frame (default {default})",
    )
    flow_resolution: float | None = option(
        None, bounds=Bounds(0, 1, low_open=True),
        help="flow grid as a fraction of the network's input (default 0.25 for --flow, 0.5 for --key-every; 1 is exact)",
    )
    key_every: int = option(1, bounds=Bounds(low=1), help="run the network every K frames, flow in between (default {default})")
    alpha: float = option(0.5, bounds=Bounds(0, 1), commands=RUN_ONLY, help="overlay opacity (default {default})")
    sinks: list[str] = option(
        default_factory=list, check=_check_sinks, flag="--sink", metavar="NAME:TARGET",
        help="one more output from the sinks table, built in or a plugin's (`streamseg plugins`), e.g. jsonl:stats.jsonl; repeatable",
    )
    engine_dir: Path = option(  # never the working directory
        default_factory=default_engine_dir,
        help="compiled engine cache (default $XDG_CACHE_HOME/streamseg, else ~/.cache/streamseg)",
    )
    calibration_data: Path | None = option(
        None, help="frames that calibrate int8: a CamVid folder, a folder of images, or a video (its first 300 frames)",
    )
    streams: list[dict] = option(
        default_factory=list, parse=_streams_value, commands=RUN_ONLY, flag="--stream", metavar="NAME=SOURCE",
        help="one more stream of the run, repeatable (or give several SOURCEs); every stream shares one batched backend",
    )
    max_batch: int = option(
        8, bounds=Bounds(1, 64), help="with several streams, most frames in one inference call (default {default})",
    )
    batch_wait_ms: float = option(  # a frame waits at most this long for frames of other streams to join its call
        2.0, bounds=Bounds(0, 1000), help="with several streams, how long a batch waits for stragglers, in ms (default {default})",
    )
    ray: str | None = option(  # streamseg.cluster: the same streams, placed by Ray
        None, commands=RUN_ONLY, metavar="ADDRESS",
        help="run the streams on the Ray cluster at ADDRESS (HOST:PORT, as `ray start --head` prints it, or auto): "
        "one actor per stream, the network on --replicas batched replicas",
    )
    replicas: int = option(
        1, bounds=Bounds(1, MAX_THREADS), commands=RUN_ONLY,
        help="with --ray, inference replicas, each on one GPU or one CPU (default {default})",
    )
    backend_options: dict[str, Any] = option(
        default_factory=dict, parse=_backend_options_value, flag="--backend-option", metavar="KEY=VALUE",
        help=_backend_options_help(),
    )

    def validate(self) -> "RunConfig":
        """This config, if every option is within its declared bounds and choices; else a ConfigError saying which is not."""
        check_options(self)
        if self.alert_below is not None and self.confidence == "off":
            raise ConfigError("--alert-below watches the labels' confidence: it needs --confidence on")
        return self

    def model_flags(self) -> dict[str, Any]:
        """The description fields of a model file given as options ({field: value as written}), ``input_size`` among them."""
        flags = {name: getattr(self, name) for name in FLAG_FIELDS}
        if self.input_size is not None:
            flags["input_size"] = f"{self.input_size[1]}x{self.input_size[0]}"
        return {name: value for name, value in flags.items() if value is not None}

    def backend_settings(self) -> BackendOptions:
        """What the backend is built with: the run's own options that backends read, and ``backend_options``."""
        return BackendOptions(
            threads=self.threads, concurrent_calls=self.inference_calls or 1, engine_dir=self.engine_dir, calibration_data=self.calibration_data,
            model_name=self.model, **self.backend_options,
        )


_FIELD_TYPES: dict[str, Any] = typing.get_type_hints(RunConfig)
_FIELDS: dict[str, dataclasses.Field] = {declared.name: declared for declared in declared_fields(RunConfig)}
_BACKEND_TYPES: dict[str, Any] = typing.get_type_hints(BackendOptions)
_BACKEND_FIELDS: dict[str, dataclasses.Field] = {declared.name: declared for declared in declared_fields(BackendOptions)}
# An option's old names: each still sets it, from a config file or a flag, with a note giving the new name.
_ALIASES: dict[str, str] = {old: name for name, declared in _FIELDS.items() for old in option_spec(declared).aliases}


def option_aliases() -> tuple[str, ...]:
    """The old names options still answer to (each sets its option, with a note giving the new name)."""
    return tuple(_ALIASES)


def option_names() -> tuple[str, ...]:
    """Every run option: the YAML keys, the API keywords, and (as --the-name-with-dashes) the flags, ``source`` first."""
    return tuple(_FIELDS)


def _without_none(hint: Any) -> tuple[Any, bool]:
    """The type without ``| None``, and whether None is allowed."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return members[0], len(members) < len(typing.get_args(hint))
    return hint, False


def _coerce(name: str, value: Any) -> Any:
    """Turns a YAML, flag or API value into the field's type, strictly: true is not 1, 12.7 is not 12, 7 is not a name."""
    return _convert(name, _FIELD_TYPES[name], option_spec(_FIELDS[name]), value)


def _convert(label: str, hint: Any, spec: OptionSpec | None, value: Any) -> Any:
    kind, optional = _without_none(hint)
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{label} needs a value")
    if spec is not None and spec.parse is not None:  # a written form of its own: a size, a batch profile, KEY=VALUE
        return spec.parse(value)
    converter = _CONVERTERS.get(kind)
    if converter is None:  # a type with no converter of its own (a container): it must already be one
        if isinstance(value, typing.get_origin(kind) or kind):
            return value
        raise ConfigError(f"{label}: cannot use {value!r} ({hint} expected)")
    converted = converter(value)
    if converted is None:
        raise ConfigError(f"{label}: cannot use {value!r} ({_TYPE_NAMES[kind]} expected)")
    return converted


def _to_int(value: Any) -> int | None:
    if _is_int(value):
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[-+]?\d+\s*", value):
        return int(value)
    return None


def _to_float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Real):
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
    data = _renamed(data, str(path))
    unknown = sorted(str(key) for key in set(data) - set(_FIELD_TYPES))
    if unknown:
        raise ConfigError(f"{path}: unknown key {unknown[0]!r}; known keys: {', '.join(_FIELD_TYPES)}")
    return data


def build_config(config_file: Path | None, overrides: dict[str, Any]) -> RunConfig:
    """Defaults, then the YAML file, then the flags the user actually gave (None means not given).

    A flag replaces the file's value, except ``--backend-option``: its keys replace the file's
    ``backend_options`` keys one by one, and the file's other keys stay.
    """
    values = load_yaml(config_file) if config_file is not None else {}
    given = {name: value for name, value in overrides.items() if value is not None}
    if "backend_options" in values and "backend_options" in given:
        given["backend_options"] = _coerce("backend_options", values["backend_options"]) | _coerce(
            "backend_options", given["backend_options"]
        )
    return config_from_values(values | given)


def sources_as_streams(sources: list[str] | None) -> dict[str, Any]:
    """The command line's SOURCE arguments as options: one is the run's ``source``, several are ``streams``
    (with any ``--stream`` flags after them)."""
    sources = list(sources or [])
    if len(sources) > 1:
        return {"source": None, "streams": [{"source": source} for source in sources]}
    return {"source": sources[0] if sources else None}


def config_from_values(values: Mapping[str, Any]) -> RunConfig:
    """A checked RunConfig from option values as YAML, flags or Python code give them; the rest keep their defaults."""
    return RunConfig(**_converted(values)).validate()


def _renamed(values: Mapping[str, Any], where: str) -> dict[str, Any]:
    """``values`` with an option given by its old name moved to its name, saying so; both names at once is an error."""
    renamed = dict(values)
    for old in [key for key in values if key in _ALIASES]:
        name = _ALIASES[old]
        if name in values:
            raise ConfigError(f"{where}: {old} is the old name of {name}; give only one of them")
        log.warning("%s: %s is now called %s (the old name still works)", where, old, name)
        renamed[name] = renamed.pop(old)
    return renamed


def _converted(values: Mapping[str, Any]) -> dict[str, Any]:
    values = _renamed(values, "options")
    unknown = [str(name) for name in values if name not in _FIELDS]
    if unknown:
        raise ConfigError(f"unknown option {unknown[0]!r}; known options: {', '.join(_FIELDS)}")
    return {name: _coerce(name, value) for name, value in values.items()}


# --- the command line, derived from the same fields ---------------------------------------------


def add_run_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    """Every option declared for ``command`` (run, bench) as an argument of ``parser``.

    Flag defaults are None, so that only the flags a user gives override the config file; the
    declared default is in each help text, and :func:`build_config` fills it in.
    """
    for declared in _FIELDS.values():
        if command in option_spec(declared).commands:
            _add(parser, declared, default=None, shown=declared_default(declared))


_DECLARED = object()


def add_option_argument(parser: argparse.ArgumentParser, name: str, *, default: Any = _DECLARED, help: str | None = None) -> None:
    """Run option ``name`` as a flag of another command (eval, export, train) that takes the same thing.

    Its default is the declared one as a user writes it ("480x360"), unless the command has a
    reason for its own; ``help`` replaces the declared help where the command narrows the option.
    """
    declared = _FIELDS[name]
    if default is _DECLARED:
        value = declared_default(declared)
        default = option_spec(declared).written(value) if value is not None and not isinstance(value, (int, float)) else value
    _add(parser, declared, default=default, shown=default, help=help)


def _add(parser: argparse.ArgumentParser, declared: dataclasses.Field, *, default: Any, shown: Any, help: str | None = None) -> None:
    spec = option_spec(declared)
    kind, _ = _without_none(_FIELD_TYPES[declared.name])
    written = shown if isinstance(shown, str) else spec.written(shown) if shown is not None else "none"  # a str is as written
    text = (help or spec.help).format(default=written, choices=_choices(spec, shown))
    if spec.positional:  # `streamseg run A B` runs two streams: see sources_as_streams
        parser.add_argument(declared.name, nargs="*", metavar=declared.name.upper(), help=text)
        return
    flags = [spec.flag or "--" + declared.name.replace("_", "-"), *("--" + old.replace("_", "-") for old in spec.aliases)]
    if kind is bool:  # a switch: --show-uncertain sets it (a config file or the API says true or false)
        parser.add_argument(*flags, dest=declared.name, default=default, help=text, action="store_const", const=True)
        return
    repeated = typing.get_origin(kind) in (list, dict)  # one item per flag: --sink a:b --sink c:d
    parser.add_argument(
        *flags, dest=declared.name, default=default, help=text, metavar=spec.metavar,
        action="append" if repeated else _StoreUnderAnyName if spec.aliases else "store",
        type=kind if kind in (int, float) else None,
    )


class _StoreUnderAnyName(argparse.Action):
    """Stores an option's value whichever of its flags gave it; an old flag gets a note naming the new one."""

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        if option_string not in (None, self.option_strings[0]):
            log.warning("%s is now called %s (the old name still works)", option_string, self.option_strings[0])
        setattr(namespace, self.dest, values)


def _choices(spec: OptionSpec, default: Any) -> str:
    return ", ".join(f"{choice} (default)" if choice == default else choice for choice in spec.choices)
