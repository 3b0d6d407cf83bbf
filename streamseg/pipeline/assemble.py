"""Builds a ready pipeline from a RunConfig: source, model, backend, stages, sinks, metrics.

Everything opened here is registered on one ExitStack, so a failure half-way through
assembly (a bad path after the backend was built, a port in use) still closes what was opened.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from prometheus_client import CollectorRegistry

from streamseg.backends import Backend, backend_class, create_backend, pick_auto
from streamseg.backends.export import state_dict_sha256
from streamseg.config import DEFAULT_INPUT_SIZE, RunConfig, named_stream, stream_config, stream_entries
from streamseg.errors import ConfigError, OutputError
from streamseg.frame import Frame
from streamseg.label_sets import CAMVID, LabelSet
from streamseg.observability.prometheus import PipelineMetrics, StreamLabelled, class_metric_names
from streamseg.modelfile import ModelFile, is_model_file, open_model_file
from streamseg.models import load_model
from streamseg.models.weights import bundled_confidence, bundled_crf_parameters
from streamseg.modelfile.description import parse_field
from streamseg.image.confidence import Calibration, ConfidenceSettings
from streamseg.observability.monitor import MetricsMonitor
from streamseg.observability.reliability_alert import ReliabilityAlert, alert_level
from streamseg.outputs import check_run_outputs, output_root
from streamseg.pipeline.assembly import Assembly
from streamseg.pipeline.batcher import Batcher, BatchMetrics
from streamseg.pipeline.stage import Stage
from streamseg.http.stream_routes import serve_streams
from streamseg.pipeline.streams import StreamSet
from streamseg.plugins import Plugins, RefinerContext, SinkContext
from streamseg.refine import read_crf_parameters
from streamseg.image.render import Renderer
from streamseg.http.server import HttpServer, serve_health, serve_metrics
from streamseg.sinks.base import Sink
from streamseg.sinks.ros_topics import stream_topic
from streamseg.sinks.shared import SharedOutputs
from streamseg.http.preview import WebPreviewSink, serve_preview_index
from streamseg.sources import open_source
from streamseg.sources.base import Source
from streamseg.stages.inference import InferenceStage, LabelInferenceStage
from streamseg.stages.labels import LabelStage
from streamseg.stages.preprocess import PreprocessStage
from streamseg.stages.refine import build_crf_stage
from streamseg.stages.rendering import RenderStage
from streamseg.stages.temporal import (
    KEYFRAME_RESOLUTION,
    SMOOTHING_RESOLUTION,
    KeyFrameInferenceStage,
    TemporalStage,
)
from streamseg.temporal.smoothing import TemporalSmoother

if TYPE_CHECKING:
    from torch import nn

    from streamseg.sinks.foxglove_live import FoxgloveLiveView

log = logging.getLogger(__name__)


def open_model(config: RunConfig, registry) -> tuple[nn.Module | ModelFile, str]:
    """The network ``config.model`` names, from ``registry``'s models or a model file described by the run's options first;
    and where its weights came from."""
    if not is_model_file(config.model):
        return load_model(config.model, config.weights, models=registry.models)
    if config.weights is not None:
        raise ConfigError("--weights loads a state dict into a built-in model; a model file holds its own weights")
    model = open_model_file(config.model, config.model_flags())
    for line in model.description.lines():
        log.debug("model %s", line)
    return model, f"file {model.path.name}, sha256 {model.sha256[:12]}"


def build_backend(config: RunConfig, plugins: Plugins | None = None) -> tuple[Backend, str]:
    """The model and backend ``config`` names, from the run's tables (``plugins``, else all installed); and where the weights came from.

    ``config.model`` is a registered name or a model file (``streamseg.modelfile``), described by
    the run's options first; a model file runs at the size its description gives.
    """
    registry = (plugins or Plugins()).registry
    model, origin = open_model(config, registry)
    backend = create_backend(
        config.backend, model, config.input_size or DEFAULT_INPUT_SIZE, config.precision, config.backend_settings(), registry.backends
    )
    backend.calibration = model.description.calibration if isinstance(model, ModelFile) else built_in_calibration(config, model)
    return backend, origin


def built_in_calibration(config: RunConfig, model: nn.Module) -> Calibration:
    """A built-in model's confidence calibration: the one shipped for its bundled weights (none for other weights,
    ``--weights`` of one's own), with ``--temperature``, ``--confidence-curve`` and ``--context-share`` in its place when
    any is given (a shipped curve and share were fitted with the shipped temperature, so a temperature given alone runs
    without either)."""
    shipped = bundled_confidence(config.model, state_dict_sha256(model))
    if config.temperature is None and config.confidence_curve is None and config.context_share is None:
        return shipped
    temperature = shipped.temperature if config.temperature is None else parse_field("temperature", config.temperature, "--temperature")
    curve = None if config.confidence_curve is None else parse_field("confidence_curve", config.confidence_curve, "--confidence-curve")
    share = 0.0 if config.context_share is None else parse_field("context_share", config.context_share, "--context-share")
    return Calibration(temperature, shipped.alert_below, "--temperature / --confidence-curve / --context-share", curve, share)


def build_crf_stage_for(
    config: RunConfig, monitor: MetricsMonitor, plugins: Plugins | None = None, confidence: ConfidenceSettings | None = None
) -> Stage:
    """The CRF stage running the refiner ``config.refiner`` names, from the refiners table (``plugins``, else all installed);
    with ``confidence`` (the label stages' settings) refined frames carry the CRF's confidence."""
    # Explicit settings win; otherwise those tuned for this model ship beside its weights.
    path = config.crf_parameters or bundled_crf_parameters(config.model)
    context = RefinerContext(crf_parameters=read_crf_parameters(path) if path else None)
    refiner = (plugins or Plugins()).refiner(config.refiner, context)
    return build_crf_stage(
        config.crf, refiner=refiner, workers=config.crf_workers, delay_budget_s=config.crf_delay_ms / 1000.0,
        cpu_share=config.crf_cpu_share,
        registry=monitor.metrics.registry, confidence=confidence,
    )


def build_inference_stages(config: RunConfig, backend: Backend, plugins: Plugins) -> list[Stage]:
    """The network, with key-frame propagation and temporal smoothing when asked for.

    Each stage gets its own flow estimator: stages run in separate threads.
    """
    estimator_name = config.flow if config.flow != "off" else "dis"
    if config.key_every > 1:
        stages: list[Stage] = [KeyFrameInferenceStage(
            backend, every=config.key_every, estimator=plugins.flow_estimator(estimator_name),
            resolution=config.flow_resolution or KEYFRAME_RESOLUTION,
        )]
    else:
        stages = [InferenceStage(backend)]
    if config.flow != "off":
        smoother = TemporalSmoother(
            plugins.flow_estimator(config.flow), weight=config.flow_weight,
            resolution=config.flow_resolution or SMOOTHING_RESOLUTION,
        )
        stages.append(TemporalStage(smoother))
    return stages


def needs_scores(config: RunConfig) -> bool:
    """Whether a stage after the network needs its class scores, not only the class ids."""
    return config.crf != "off" or config.flow != "off" or config.key_every > 1


def reads_overlay(config: RunConfig) -> bool:
    """Whether an output of ``config`` shows the rendered overlay (a video file, RTSP out, the web preview).

    The Foxglove view draws its own, only while a client watches it (``streamseg.sinks.foxglove_live``).
    """
    # A --sink may show it too (video-file and rtsp-out do; a plugin's may), so any --sink gets it.
    return config.out is not None or config.rtsp_out is not None or config.serve is not None or bool(config.sinks)


def build_stages(
    config: RunConfig, backend: Backend, monitor: MetricsMonitor, *, keep_scores: bool = False, render: bool = True,
    plugins: Plugins | None = None,
) -> list[Stage]:
    """The stages for ``config``; ``keep_scores`` leaves the network's logits on each frame for the caller, and
    ``render`` False leaves out the overlay, which costs a full-size blend per frame that nothing might read.
    ``plugins`` is the run's registry (None: the built-ins and every installed plugin)."""
    plugins = plugins or Plugins()
    describe = f"{config.model} / {backend.describe()}"

    def stats_lines() -> list[str]:
        snapshot = monitor.snapshot()
        latency = snapshot.get("latency_s")
        return [
            f"{snapshot.get('fps', 0.0):5.1f} fps",
            f"latency {1000 * latency:.0f} ms" if latency is not None else "latency -",
            describe,
        ]

    if keep_scores or needs_scores(config):
        stages: list[Stage] = [
            PreprocessStage(backend.input_size), *build_inference_stages(config, backend, plugins), LabelStage(confidence_settings(config, backend)),
        ]
    else:
        # Labels are all the rest needs: the backend goes from pixels to class ids in one call.
        stages = [] if backend.resizes_on_device else [PreprocessStage(backend.input_size, float_input=False)]
        stages.append(LabelInferenceStage(backend, confidence_settings(config, backend)))
    if config.crf != "off":
        if backend.scores_from_class_ids:
            raise ConfigError(f"--crf refines class scores, and {config.model} gives class ids only; use --crf off")
        stages.append(build_crf_stage_for(config, monitor, plugins, confidence_settings(config, backend)))
    if render:
        renderer = Renderer(
            alpha=config.alpha, label_set=backend.label_set,
            show_uncertain=config.show_uncertain, confidence_threshold=config.confidence_threshold,
        )
        stages.append(RenderStage(renderer, stats_lines))
    return stages


def sink_specs(config: RunConfig) -> list[str]:
    """Every output of ``config`` as NAME:TARGET of the sinks table: the flags' own (--out, --stats, --masks,
    --rtsp-out), then each --sink."""
    flagged = {"video-file": config.out, "jsonl": config.stats, "masks": config.masks, "rtsp-out": config.rtsp_out}
    return [f"{name}:{target}" for name, target in flagged.items() if target is not None] + list(config.sinks)


def build_sinks(
    config: RunConfig, source: Source, plugins: Plugins | None = None, *, label_set: LabelSet = CAMVID,
    stream: str | None = None, shared: SharedOutputs | None = None,
) -> list[Sink]:
    """The outputs of ``config``, each made by the sinks table (``plugins``, else all installed), told the
    model's ``label_set`` (the stats' class names, the masks' palette), the ``stream``'s name (None: one made
    from its source) and topic, and the run's ``shared`` outputs (one bag for every stream; None: each sink its own).

    If one cannot be made, those made before it are closed: the caller never saw them.
    """
    plugins = plugins or Plugins()
    stream = stream or stream_name(config)
    # A live source knows its rate once connected.
    context = SinkContext(
        fps=lambda: source.fps, video_preset=config.out_preset, label_set=label_set, masks_confidence=config.masks_confidence,
        stream=stream, topic=output_topic(stream, source), shared=shared,
    )
    sinks: list[Sink] = []
    try:
        for spec in sink_specs(config):
            sinks.append(plugins.sink(spec, context))
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return sinks


def stream_name(config: RunConfig) -> str:
    """The name of ``config``'s stream where none was given: one made from its source (``cam.mp4`` -> ``cam``)."""
    return named_stream({"source": str(config.source)}, set())["name"]


def output_topic(stream: str, source: Source) -> str:
    """The ROS topic stream ``stream``'s outputs go under, in the bag sink and the Foxglove view alike: the topic its
    frames were read from (a bag's), else one made from its name (``streamseg.sinks.ros_topics.stream_topic``)."""
    return source.topic or stream_topic(stream)


def foxglove_view_class() -> type[FoxgloveLiveView]:
    """The Foxglove view, imported only when a run asks for one (the SDK is a native module, and the extra's)."""
    try:
        from streamseg.sinks.foxglove_live import FoxgloveLiveView
    except ImportError:
        raise ConfigError("--foxglove needs foxglove-sdk: pip install 'streamseg[ros]'") from None
    return FoxgloveLiveView


def parse_host_port(text: str, flag: str = "--serve", example: str = "127.0.0.1:8080") -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    try:
        return host.strip("[]") or "127.0.0.1", int(port)
    except ValueError:
        raise ConfigError(f"{flag} needs HOST:PORT, e.g. {example}, not {text!r}") from None


def open_run_source(config: RunConfig, given: Source | None, stack: ExitStack, plugins: Plugins) -> Source:
    """``given``, or the source ``config.source`` names, opened after the outputs are checked; closed with the stack."""
    if given is not None:
        stack.enter_context(given)  # handed over: closed with the rest, also when a check below refuses the run
    elif config.source is None:
        raise ConfigError("no source given (a video file, an image folder, or 'demo')")
    check_run_outputs(config)  # before the input opens: an output that is the input is refused untouched
    if given is not None:
        return given
    return stack.enter_context(open_source(config.source, sources=plugins.registry.sources, realtime=config.realtime))


def watch_live_source(source: Source, config: RunConfig, monitor: MetricsMonitor) -> None:
    """An rtsp:// source reports up and down to the monitor and counts its reconnections on /metrics."""
    if not source.live:
        return
    # PyAV, imported only when the source is live and so may be a stream.
    from streamseg.sources.rtsp import RtspSource, SourceReconnectsCollector

    if not isinstance(source, RtspSource):
        return
    if config.rtsp_give_up_after is not None:  # unset, a source handed in keeps its own
        source.give_up_after = config.rtsp_give_up_after
    source.on_state = monitor.source_up
    monitor.metrics.registry.register(SourceReconnectsCollector(source))


def open_backend(config: RunConfig, plugins: Plugins, stack: ExitStack, batch_sizes: tuple[int, ...] = (1,)) -> tuple[Backend, str]:
    """The run's backend, warmed up at ``batch_sizes`` and closed with ``stack``; and where its weights came from."""
    backend, origin = build_backend(config, plugins)
    stack.callback(backend.close)
    backend.warm_up(batch_sizes=batch_sizes)
    return backend, origin


def open_stream(
    config: RunConfig, source: Source, backend: Backend, stack: ExitStack, plugins: Plugins, *,
    keep_scores: bool = False, render: bool = False, name: str | None = None, shared: SharedOutputs | None = None,
) -> Assembly:
    """One stream's parts around an opened ``source`` and ``backend``: its monitor, stages and sinks, closed with ``stack``;
    ``shared``: the outputs the run's streams write together."""
    monitor = MetricsMonitor(
        PipelineMetrics(class_names=class_metric_names(backend.label_set.names, config.class_metrics)),
        reliability_alert=reliability_alert_for(config, backend, name),
    )
    watch_live_source(source, config, monitor)
    stages = build_stages(
        config, backend, monitor, keep_scores=keep_scores, render=render or reads_overlay(config), plugins=plugins
    )
    if any(isinstance(stage, PreprocessStage) for stage in stages):
        source.model_size = backend.input_size  # a decoder that can scales to it in the same pass
    for stage in stages:
        stack.callback(stage.close)  # the pipeline does not own stages: bench runs them twice
    sinks = build_sinks(config, source, plugins, label_set=backend.label_set, stream=name, shared=shared)
    for sink in sinks:
        stack.callback(sink.close)  # the pipeline closes them too; closing is idempotent
    return Assembly(config, source, backend, stages, sinks, monitor)


def reliability_alert_for(config: RunConfig, backend: Backend, name: str | None = None) -> ReliabilityAlert | None:
    """Stream ``name``'s domain-shift alert (named from its source when None): at ``--alert-below``, else at the
    model's own level (``backend.calibration.alert_below``, from its card); none when neither sets one, or confidence is off."""
    below = alert_level(config.alert_below, backend.calibration.alert_below)
    if below is None or config.confidence == "off":
        return None
    return ReliabilityAlert(name or stream_name(config), below, config.alert_window_s)


def serve_run(config: RunConfig, registry, health, stack: ExitStack) -> HttpServer | None:
    """The run's /metrics and /healthz on ``--metrics-port``, if asked for."""
    if config.metrics_port is None:
        return None
    server = stack.enter_context(HttpServer(config.metrics_host, config.metrics_port))
    serve_metrics(server, registry)
    serve_health(server, health)
    log.info("metrics on %s/metrics", server.url)
    return server


def _log_started(config: RunConfig, backend: Backend, origin: str) -> None:
    chosen = f"auto picked {backend.describe()}, the fastest present" if config.backend == "auto" else backend.describe()
    log.info("model %s (%s), backend %s", config.model, origin, chosen)
    if config.confidence == "on" and backend.scores_from_class_ids:
        log.info("confidence is unavailable: %s gives class ids only, no scores", config.model)
    elif config.confidence == "on":
        calibration = backend.calibration
        curve = "a calibration curve" if calibration.curve is not None else "no calibration curve"
        log.info(
            "confidence: temperature %.3g, %s, context share %g (%s)",
            calibration.temperature, curve, calibration.context_share, calibration.source,
        )


def confidence_settings(config: RunConfig, backend: Backend) -> ConfidenceSettings | None:
    """What the label stages need to give each frame its confidence; None when it is off or the model gives class ids only."""
    if config.confidence == "off" or backend.scores_from_class_ids:
        return None
    return ConfidenceSettings(backend.calibration, config.confidence_threshold)


def _started_info(config: RunConfig, backend: Backend) -> dict[str, str | None]:
    return {"model": config.model, "backend": backend.name, "precision": backend.precision, "source": config.source}


@contextmanager
def assemble(
    config: RunConfig, *, source: Source | None = None, backend: Backend | None = None, keep_scores: bool = False,
    render: bool = False, name: str | None = None,
) -> Iterator[Assembly]:
    """Opens the parts of one stream, for a caller that joins them itself, and closes them when the block ends.

    A run (``streamseg run``, the API) is built by :func:`assemble_run`; this is for callers that
    measure or place the parts themselves: ``streamseg bench`` joins them more than once, a Ray
    stream actor runs them against a remote backend.

    Args:
        config: the stream; ``config.source`` is opened unless ``source`` is given.
        source: an opened source to run instead; the assembly then owns it and closes it.
        backend: a backend to run instead of the one ``config`` names (inference elsewhere: a
            Ray replica); it stays its creator's to close.
        keep_scores: leave the network's logits on each frame, for a caller that reads them.
        render: draw the overlay even when no output shows it, for a caller that reads it.
        name: the stream's name in its log lines (a Ray stream actor's); None: one made from its source.
    """
    if config.serve is not None:  # the preview page is a run's: `streamseg run --serve` builds it with assemble_run
        raise ConfigError("the web preview (--serve) is served by a run: streamseg run, or the API")
    if config.foxglove is not None:
        raise ConfigError("the Foxglove view (--foxglove) is served by a run: streamseg run, or the API")
    plugins = Plugins()  # one discovery per run: a broken plugin is reported once
    with ExitStack() as stack:
        source = open_run_source(config, source, stack, plugins)
        if backend is None:
            backend, origin = open_backend(config, plugins, stack)
        else:
            origin = "the given backend's weights"
        shared = stack.enter_context(SharedOutputs())
        assembly = open_stream(
            config, source, backend, stack, plugins, keep_scores=keep_scores, render=render, name=name, shared=shared
        )
        assembly.server = serve_run(config, assembly.monitor.metrics.registry, assembly.healthy, stack)
        assembly.monitor.started(_started_info(config, backend))
        _log_started(config, backend, origin)
        yield assembly


# With several streams, two inference calls at once: while one waits for a batch or for the
# decoders, the other keeps a small CPU busy (BENCHMARKS.md, Many streams).
SEVERAL_STREAMS_CALLS = 2


def for_several_streams(config: RunConfig, plugins: Plugins) -> RunConfig:
    """``config`` with ``inference_calls`` chosen, when it was left unset, for a backend serving several streams."""
    if config.inference_calls is not None:
        return config
    table = plugins.registry.backends
    try:
        cls = backend_class(pick_auto(table) if config.backend == "auto" else config.backend, table)
    except (ConfigError, ImportError):
        return config  # building the backend will say what is wrong, as for one stream
    calls = SEVERAL_STREAMS_CALLS if cls.max_concurrent_calls is None or cls.max_concurrent_calls >= SEVERAL_STREAMS_CALLS else 1
    return dataclasses.replace(config, inference_calls=calls)


@contextmanager
def assemble_run(
    config: RunConfig, *, source: Source | None = None, on_frame: Callable[[str, Frame], None] | None = None,
    keep_scores: bool = False, render: bool = False, wait_for_streams: bool = False,
) -> Iterator[StreamSet]:
    """Opens a run: one backend behind a batcher, and each stream's own parts. One source is a run of one stream.

    Every stream's outputs are checked before the model loads, so a bad path among eight
    cameras fails in a second rather than after the engine build. The run closes with the
    block; each stream closes what it opened when it ends.

    Args:
        config: the run; its ``source`` and ``streams`` are opened (see ``stream_entries``).
        source: an opened source to run as the run's only stream; the run then owns it and closes it.
        on_frame: called with the stream's name and each finished frame, on that stream's thread
            (the API's hand-off of results).
        keep_scores: leave the network's logits on each frame, for a caller that reads them.
        render: draw the overlay even when no output shows it, for a caller that reads it.
        wait_for_streams: a run with no stream yet is allowed: its caller adds them (the API).
    """
    if config.ray is not None:
        raise ConfigError("a run on a Ray cluster is started by `streamseg run --ray ADDRESS`; this one runs here")
    if config.replicas != 1:
        raise ConfigError(f"--replicas {config.replicas} places inference replicas on a Ray cluster: give --ray ADDRESS too")
    plugins = Plugins()  # one discovery per run: a broken plugin is reported once
    entries = stream_entries(config, plugins.registry.sources.streams_of)  # a ROS bag: a stream per image topic
    if not entries and not wait_for_streams:
        raise ConfigError("no source given (a video file, an image folder, camera:N, rtsp://..., or 'demo')")
    if len(entries) > 1:
        config = for_several_streams(config, plugins)
    if source is not None and len(entries) != 1:
        source.close()  # handed over, so ours to close also when refused
        raise ConfigError("an opened source runs as the only stream of a run")
    several = len(entries) > 1
    by_name = several or bool(config.streams)  # a run of streams (not of one source) previews each under its name
    given = {entries[0]["name"]: source} if source is not None else {}
    try:
        check_outputs(config, entries, several=several)
        check_engine_dir(config)
        foxglove_address = parse_host_port(config.foxglove, "--foxglove", ":8765") if config.foxglove is not None else None
        live_view = foxglove_view_class() if config.foxglove is not None else None  # a missing SDK, before the model loads
    except BaseException:
        for opened in given.values():
            opened.close()
        raise
    with ExitStack() as stack:
        for opened in given.values():
            stack.callback(opened.close)  # until its stream takes it over; closing twice is harmless
        largest = min(config.max_batch, max(1, len(entries)))  # a call holds at most one frame of each stream
        backend, origin = open_backend(config, plugins, stack, batch_sizes=tuple(range(1, largest + 1)))
        registry = CollectorRegistry()
        labelled = StreamLabelled()
        registry.register(labelled)
        batcher = stack.enter_context(
            Batcher(backend, max_batch=config.max_batch, wait_s=config.batch_wait_ms / 1000.0, metrics=BatchMetrics(registry))
        )
        preview_server: HttpServer | None = None
        foxglove_view: FoxgloveLiveView | None = None
        # Pushed before the streams' set, so closed after it: the last stream writing a bag has finished it by then.
        shared = stack.enter_context(SharedOutputs())

        def open_one(entry: dict, stream_stack: ExitStack) -> Assembly:
            # A run's output without {name} is one stream's only while it is the only stream.
            one = stream_config(config, entry, several=several or bool(run.names()))
            check_run_outputs(one, *run.configs())  # a stream added later must not write over another's files
            opened = open_run_source(one, given.pop(entry["name"], None), stream_stack, plugins)
            client = batcher.client()
            stream_stack.callback(client.close)
            assembly = open_stream(
                one, opened, client, stream_stack, plugins, keep_scores=keep_scores, render=render, name=entry["name"],
                shared=shared,
            )
            if foxglove_view is not None:
                live = foxglove_view.stream(output_topic(entry["name"], opened), frame_id=entry["name"])
                stream_stack.callback(live.close)
                assembly.sinks.append(live)
            if on_frame is not None:
                assembly.on_frame = functools.partial(on_frame, entry["name"])
            if preview_server is not None:
                # The only stream of a one-source run is previewed at the root; streams of a run of several
                # (or added later) each under their own name.
                prefix = "/" if not by_name and not run.names() else f"/streams/{entry['name']}/"
                preview = WebPreviewSink(preview_server, assembly.monitor.snapshot, prefix=prefix, label_set=backend.label_set)
                stream_stack.callback(preview.close)
                assembly.sinks.append(preview)
            assembly.monitor.started(_started_info(one, backend))
            return assembly

        run = StreamSet(open_one, labelled, batcher, backend=backend)
        stack.callback(run.close)
        servers = [server for server in (serve_run(config, registry, run.healthy, stack),) if server is not None]
        if config.serve is not None:
            preview_server = stack.enter_context(HttpServer(*parse_host_port(config.serve)))
            serve_metrics(preview_server, registry)
            serve_health(preview_server, run.healthy)
            if by_name:
                serve_preview_index(preview_server, run.names, label_set=backend.label_set)
            log.info("web preview on %s/", preview_server.url)
            servers.append(preview_server)
        if live_view is not None:
            renderer = functools.partial(  # the run's overlay, without the stats text
                Renderer, alpha=config.alpha, label_set=backend.label_set, show_uncertain=config.show_uncertain,
                confidence_threshold=config.confidence_threshold, stats=False,
            )
            foxglove_view = stack.enter_context(live_view(
                *foxglove_address, label_set=backend.label_set, max_fps=config.foxglove_fps, renderer=renderer,
            ))
            log.info("Foxglove live view on %s (in Foxglove: Open connection, Foxglove WebSocket)", foxglove_view.url)
        run.servers = servers
        for server in servers:
            serve_streams(server, run, output_root(config))
        for entry in entries:
            run.add_stream(entry)
        _log_started(config, backend, origin)
        if several:
            for entry in entries:
                log.info("stream %s: %s", entry["name"], entry["source"])
            log.info("%d streams, batched by up to %d frames per call", len(entries), config.max_batch)
        yield run
        batching = run.batching()
        if several and batching["calls"]:
            log.info("%d inference calls, %.2f frames each on average", batching["calls"], batching["mean_batch"])


def check_outputs(config: RunConfig, entries: list[dict], *, several: bool) -> None:
    """Every stream's output paths, checked together before anything opens (see ``check_run_outputs``)."""
    check_run_outputs(*(stream_config(config, entry, several=several) for entry in entries))


def check_engine_dir(config: RunConfig) -> None:
    """``--engine-dir`` must be a folder (or not exist yet), whether or not this run's backend will use a cache."""
    engine_dir = config.engine_dir
    if engine_dir is not None and Path(engine_dir).exists() and not Path(engine_dir).is_dir():
        raise OutputError(f"--engine-dir {engine_dir} is a file, not a folder: give a folder for the engine cache")
