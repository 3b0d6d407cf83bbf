"""Plugins: extra models, backends, flow estimators, refiners, sources and sinks from other installed packages.

A plugin is an installed distribution that declares an entry point in the group
``streamseg.plugins``, naming a callable ``register(registry)``::

    # the plugin's pyproject.toml
    [project.entry-points."streamseg.plugins"]
    my-flow = "my_package.streamseg_plugin:register"

    # my_package/streamseg_plugin.py
    def register(registry):
        registry.flow_estimators.add("my-flow", MyFlowEstimator, "what it is, in a few words")

The built-in parts sit in the same tables as the plugins' and are made the same way, so a
plugin's part is chosen by name exactly as a built-in one is. Every kind of part comes through
this one entry-point group and one ``register``; what each table's factories take:

- ``models`` (``--model NAME``): ``factory(**kwargs)`` with the fixed ``kwargs`` given to
  ``registry.models.add(name, factory, description, kwargs={...})``, returning an ``nn.Module``
  that maps float (N, 3, H, W) RGB in [0, 1] to (N, classes, H, W) logits. A plugin's model
  ships no bundled weights: give ``--weights``.
- ``backends`` (``--backend NAME``): a :class:`~streamseg.backends.base.Backend` subclass,
  called as ``cls(model, input_size, precision, options)``; its ``precisions``,
  ``unavailable_reason`` and ``auto_precision`` are asked as for a built-in one. ``auto``
  chooses among the built-ins only.
- ``flow_estimators`` (``--flow NAME:key=value,...``): ``factory(**options)``, the options as
  text, returning a :class:`~streamseg.temporal.flow.FlowEstimator`.
- ``refiners`` (``--refiner NAME:key=value,...``, run by ``--crf sync|async``):
  ``factory(context, **options)`` with a :class:`RefinerContext`, returning an object with
  ``refine(image, probabilities) -> labels`` (see :class:`~streamseg.refine.async_pool.Refiner`).
  For ``--crf async`` it is pickled into worker processes, so it must be an instance of a
  module-level class of an importable module, and must refine a tiny test frame at start-up.
- ``sources`` (the SOURCE argument): ``factory(spec, context)`` with the whole SOURCE text and
  a :class:`SourceContext`, returning a :class:`~streamseg.sources.base.Source`. Which SOURCE
  texts a source opens is its ``accepts(spec) -> bool`` predicate, by default "the name, or
  the name then ``:``" (``my-source:camera-7``). See :meth:`SourceTable.find` for the order.
  A SOURCE that holds several streams (a recording of several cameras) also gives
  ``streams=``: a function from the SOURCE text to the (name, SOURCE) of each stream, which a
  run opens as streams of their own (the built-in ``bag`` source, one per image topic).
- ``sinks`` (``--sink NAME:TARGET``): ``factory(target, context)`` with the text after the
  first colon and a :class:`SinkContext`, returning a :class:`~streamseg.sinks.base.Sink`.

Sources and sinks open something the user named, so they take that name and a context object
holding what the run knows (the source's frame rate, the encoder preset, the model's label
set). A context is an object rather than keywords so that adding a field later breaks no
plugin's factory.

Nothing registers itself on import: :func:`register_builtins` lists this package's own parts,
and :class:`Plugins` discovers installed plugins the first time a table is used. A plugin
that fails to import or to register (or that reuses a taken name) is skipped as a whole,
reported once with its name and error, and never stops the program.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

from streamseg.errors import ConfigError, OutputError
from streamseg.label_sets import CAMVID, LabelSet
from streamseg.registry import FactoryTable
# The source table lives with the sources (the lower layer); named here too, beside the other kinds' contexts.
from streamseg.sources.table import SourceContext, SourceRegistration, SourceTable

if TYPE_CHECKING:
    from streamseg.refine.async_pool import Refiner
    from streamseg.refine.dense_crf import CrfParameters
    from streamseg.sinks.base import Sink
    from streamseg.sinks.shared import SharedOutputs
    from streamseg.sources.base import Source
    from streamseg.temporal.flow import FlowEstimator

ENTRY_POINT_GROUP = "streamseg.plugins"

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(frozen=True)
class SinkContext:
    """What a sink factory is told besides its target."""

    fps: Callable[[], float]  # the source's frame rate; call it at the first frame: a live source knows it once connected
    video_preset: str = "ultrafast"  # x264 speed preset for an encoded video (RunConfig.out_preset)
    label_set: LabelSet = CAMVID  # what the run's class ids mean: the model's names and colours
    masks_confidence: bool = False  # a masks sink also writes each frame's confidence (RunConfig.masks_confidence)
    stream: str = "stream"  # the stream's name: the frame id of its frames that come without one (not from a bag)
    topic: str = "/stream"  # the ROS topic the stream's outputs go under (streamseg.sinks.ros_topics)
    # Files the streams of one run write together (one ROS bag for every camera); None: the sink keeps its own.
    shared: SharedOutputs | None = None


@dataclass(frozen=True)
class RefinerContext:
    """What a refiner factory is told besides its options."""

    crf_parameters: CrfParameters | None = None  # --crf-parameters, else the model's tuned settings; None: neither


class PluginRegistry:
    """The tables a plugin's ``register(registry)`` fills: models, backends, flow estimators, refiners, sources and sinks."""

    def __init__(self) -> None:
        # Imported here, not at the top: importing them lazily keeps `import streamseg.plugins`
        # (and `streamseg --help`) free of torch and of the sources' and sinks' own dependencies.
        from streamseg.backends import BackendTable
        from streamseg.models.registry import ModelTable
        from streamseg.refine.async_pool import Refiner
        from streamseg.sinks.base import Sink
        from streamseg.sources.base import Source
        from streamseg.temporal.flow import FlowEstimator

        self.models: ModelTable = ModelTable()
        self.backends: BackendTable = BackendTable()
        self.flow_estimators: FactoryTable[FlowEstimator] = FactoryTable("flow estimator", FlowEstimator)
        self.refiners: FactoryTable[Refiner] = FactoryTable("refiner", Refiner)
        self.sources: SourceTable[Source] = SourceTable("source", Source)
        self.sinks: FactoryTable[Sink] = FactoryTable("sink", Sink)

    def tables(self) -> dict[str, FactoryTable]:
        return {
            "models": self.models, "backends": self.backends, "flow_estimators": self.flow_estimators,
            "refiners": self.refiners, "sources": self.sources, "sinks": self.sinks,
        }

    def merge(self, other: "PluginRegistry", origin: str) -> None:
        """Adds everything ``other`` holds, under ``origin``; all or nothing, so a clash leaves no half-plugin behind."""
        for kind, table in other.tables().items():
            mine = self.tables()[kind]
            for registration in table:
                if registration.name in mine:
                    raise ConfigError(f"{mine.kind} {registration.name!r} is already registered ({mine.get(registration.name).origin})")
        for kind, table in other.tables().items():
            for registration in table:
                self.tables()[kind].add_registration(replace(registration, origin=origin))


# Ultrafast by default: in the pipeline flow runs on small grids, where the finer presets add time and
# little agreement (BENCHMARKS.md, Temporal smoothing). "dis:preset=fast" is there for offline work.
def _dis(preset: str = "ultrafast"):
    from streamseg.temporal.flow import DISFlowEstimator

    return DISFlowEstimator(preset=preset)


def _farneback():
    from streamseg.temporal.flow import FarnebackFlowEstimator

    return FarnebackFlowEstimator()


def _flownet(precision: str = "fp32", weights=None, height=None):
    from streamseg.temporal.flownet_estimator import (
        FlowNetEstimator,
        bundled_training_height,
        load_flownet,
    )

    if height is not None:
        working_height = None if height == "native" else int(height)
    else:  # the bundled weights' training size; other weights run at the frames' own size
        working_height = bundled_training_height() if weights is None else None
    return FlowNetEstimator(load_flownet(weights), precision=precision, working_height=working_height)


def _dense_crf(context: RefinerContext, **settings: str):
    """The tuned settings of the run (or the defaults), each option given replacing one of them."""
    from streamseg.refine.dense_crf import (
        CrfParameters,
        DenseCRFRefiner,
        crf_parameters_from_mapping,
    )

    base = (context.crf_parameters or CrfParameters()).as_dict()
    given = {key: _number(key, value) for key, value in settings.items()}
    return DenseCRFRefiner.from_parameters(crf_parameters_from_mapping({**base, **given}, where="refiner dense-crf"))


def _number(key: str, text: str) -> int | float:
    """A refiner option's text as a number: whole numbers stay whole, so ``iterations=3`` is an int."""
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"refiner option {key}={text!r} is not a number") from None


def _video_file_sink(target: str, context: SinkContext):
    from streamseg.sinks.video_file import VideoFileSink

    return VideoFileSink(_path(target), fps=context.fps, preset=context.video_preset)


def _jsonl_sink(target: str, context: SinkContext):
    from streamseg.sinks.jsonl import JsonLinesStatsSink

    return JsonLinesStatsSink(_path(target), class_names=context.label_set.names)


def _mask_sink(target: str, context: SinkContext):
    from streamseg.sinks.masks import MaskSink

    return MaskSink(_path(target), label_set=context.label_set, confidence=context.masks_confidence)


def _rtsp_out_sink(target: str, context: SinkContext):
    from streamseg.sinks.rtsp_out import RtspOutputSink

    return RtspOutputSink(target, fps=context.fps)


def _rosbag_sink(target: str, context: SinkContext):
    try:
        from streamseg.sinks.ros_bag import RosBagSink
    except ImportError as error:  # mcap and rosbags are the extra's, not the package's
        missing = (error.name or "mcap and rosbags").partition(".")[0]
        raise ConfigError(f"writing ROS bags needs {missing}: pip install 'streamseg[ros]'") from None

    return RosBagSink(
        _path(target), topic=context.topic, frame_id=context.stream, label_set=context.label_set, shared=context.shared
    )


def _path(target: str) -> Path:
    """A sink's target as a path; an empty one is refused rather than read as the working directory."""
    if not target.strip():
        raise OutputError("a sink needs a target: give --sink NAME:TARGET, e.g. jsonl:stats.jsonl")
    return Path(target).expanduser()


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``"dis:preset=fast,x=1"`` -> ``("dis", {"preset": "fast", "x": "1"})``; values stay strings."""
    name, _, rest = spec.partition(":")
    options: dict[str, str] = {}
    for item in filter(None, rest.split(",")):
        key, equals, value = item.partition("=")
        if not equals or not key.strip():
            raise ConfigError(f"option {item!r} of {spec!r} is not key=value")
        options[key.strip()] = value.strip()
    return name.strip(), options


def register_builtins(registry: PluginRegistry) -> None:
    """This package's own parts; factories import their modules only when called.

    The models and backends are the tables of their own packages (``MODELS``, ``BACKENDS``),
    copied so that a run sees them and its plugins' side by side.
    """
    from streamseg.backends import BACKENDS
    from streamseg.models.registry import MODELS
    from streamseg.sources import register_sources

    for model in MODELS:
        registry.models.add_registration(model)
    for backend in BACKENDS:
        registry.backends.add_registration(backend)

    registry.flow_estimators.add("dis", _dis, "OpenCV Dense Inverse Search (dis:preset=ultrafast|fast|medium; default ultrafast)")
    registry.flow_estimators.add("farneback", _farneback, "OpenCV Farnebäck polynomial expansion; slower, used to measure")
    registry.flow_estimators.add("flownet", _flownet, "FlowNetS-style network trained by this project (flownet:precision=fp32|bf16,height=192|native)")
    registry.refiners.add(
        "dense-crf", _dense_crf, "fully connected CRF, pydensecrf (dense-crf:iterations=5,scale=1,...: the CrfParameters)"
    )
    register_sources(registry.sources)
    registry.sinks.add("video-file", _video_file_sink, "the overlay, encoded to a video file (as --out)")
    registry.sinks.add("jsonl", _jsonl_sink, "one line of JSON statistics per frame (as --stats)")
    registry.sinks.add("masks", _mask_sink, "label maps as PNG files in a folder (as --masks)")
    registry.sinks.add("rtsp-out", _rtsp_out_sink, "the overlay, published to an rtsp:// server (as --rtsp-out)")
    registry.sinks.add(
        "rosbag", _rosbag_sink, "labels, overlay and confidence as ROS 2 messages in one MCAP bag, shared by the run's streams"
    )


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that was skipped, and why."""

    entry_point: str
    target: str  # "module:attribute" the entry point names
    distribution: str
    error: str

    def message(self) -> str:
        return f"plugin {self.entry_point!r} ({self.target}, from {self.distribution}) was not loaded: {self.error}"


@dataclass(frozen=True)
class PluginListing:
    """What ``streamseg plugins`` shows: every registered part, and the plugins that failed."""

    parts: list[tuple[str, str, str, str]]  # (table, name, origin, description)
    failures: list[PluginFailure]


def _describe(error: BaseException) -> str:
    text = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _distribution(entry_point: metadata.EntryPoint) -> str:
    dist = getattr(entry_point, "dist", None)
    return f"{dist.name} {dist.version}" if dist is not None else "unknown distribution"


class Plugins:
    """The built-in parts plus installed plugins, discovered the first time the registry is used.

    ``warn`` logs one warning per plugin that failed (False: keep quiet, the failures stay
    in :attr:`failures`). ``discover`` False gives the built-ins only.
    """

    def __init__(self, *, discover: bool = True, warn: bool = True) -> None:
        self._registry = PluginRegistry()
        register_builtins(self._registry)
        self._pending = discover
        self._warn = warn
        self.failures: list[PluginFailure] = []

    @property
    def registry(self) -> PluginRegistry:
        if self._pending:
            self._pending = False
            self._load(metadata.entry_points(group=ENTRY_POINT_GROUP))
        return self._registry

    def _load(self, entry_points: Iterable[metadata.EntryPoint]) -> None:
        for entry_point in sorted(entry_points, key=lambda ep: ep.name):
            origin = f"plugin {entry_point.name} ({_distribution(entry_point)})"
            try:
                register = entry_point.load()
                if not callable(register):
                    raise TypeError(f"{entry_point.value} is not callable")
                staged = PluginRegistry()
                register(staged)
                self._registry.merge(staged, origin)
            except (Exception, SystemExit) as error:  # a plugin's bug must not take the program down with it
                failure = PluginFailure(entry_point.name, entry_point.value, _distribution(entry_point), _describe(error))
                self.failures.append(failure)
                if self._warn:
                    log.warning("%s", failure.message())

    def flow_estimator(self, spec: str, **options: Any) -> FlowEstimator:
        """Makes the flow estimator ``spec`` names (built-in or from a plugin): ``NAME`` or
        ``NAME:key=value,...``, e.g. ``dis:preset=fast``."""
        name, spec_options = parse_spec(spec)
        return self.registry.flow_estimators.create(name, **spec_options, **options)

    def refiner(self, spec: str, context: RefinerContext) -> Refiner:
        """Makes the refiner ``spec`` names: ``NAME`` or ``NAME:key=value,...``, e.g. ``dense-crf:iterations=3``."""
        name, options = parse_spec(spec)
        return self.registry.refiners.create(name, context, **options)

    def sink(self, spec: str, context: SinkContext) -> Sink:
        """Makes the sink ``spec`` names: ``NAME:TARGET``, e.g. ``jsonl:stats.jsonl``; the target is the rest, colons and all."""
        name, colon, target = spec.partition(":")
        if not colon:
            raise ConfigError(f"--sink needs NAME:TARGET, e.g. jsonl:stats.jsonl, not {spec!r}")
        return self.registry.sinks.create(name.strip(), target, context)

    def listing(self) -> PluginListing:
        parts = [
            (kind, registration.name, registration.origin, registration.description)
            for kind, table in self.registry.tables().items()
            for registration in table
        ]
        return PluginListing(parts, list(self.failures))


def list_plugins(*, warn: bool = False) -> PluginListing:
    """Everything registered, built-in and from plugins, and the plugins that failed to load."""
    return Plugins(warn=warn).listing()
