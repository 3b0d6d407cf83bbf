"""The Python API for embedding streamseg in a perception stack: the run as an iterator of results.

    from streamseg.api import Pipeline

    with Pipeline("rtsp://camera.local/stream", model="erfnet", input_size=(360, 480)) as pipeline:
        for result in pipeline:
            road = result.labels == 3            # CamVid id 3: Road, at the frame's resolution
            planner.update(result.timestamp, road)
            if result.latency > 0.2:
                log.warning("frame %d is %.0f ms late", result.frame_id, 1000 * result.latency)

Several cameras are one pipeline too, sharing one batched backend; streams can be added and
removed while it runs, and each result names its stream:

    with Pipeline([{"name": "front", "source": "rtsp://127.0.0.1:8554/front"}], out="out/{name}.mp4") as pipeline:
        pipeline.start()
        pipeline.add_stream("rear", "rear.mp4")      # written to out/rear.mp4
        pipeline.remove_stream("front")              # its out/front.mp4 is closed, playable, on return
        result = pipeline.wait()                     # RunResult: each stream's StreamResult by name

Or with a callback, from the stream's own thread, while this thread does something else:

    pipeline = Pipeline("camera:0", on_result=lambda result: publish(result.labels))
    pipeline.start()
    ...
    pipeline.close()

A pipeline is built by the same ``assemble_run()`` as ``streamseg run``, into the same run,
from a ``RunConfig`` whose fields the keyword arguments name: the same frames give the same
labels, and with ``metrics_port`` the same /metrics and /healthz (and /streams) as the
command line's ``--metrics-port``. Results from a live source (camera, RTSP) are dropped when
the consumer falls behind, the newest one wins; from files, the pipeline waits for the
consumer and nothing is lost. Leaving the ``for`` loop early, leaving the ``with`` block or
calling ``close()`` stops every thread and releases the sources and the backend. Every run
option is a keyword, with the run's default: the keywords are derived from ``RunConfig``'s
declared fields (``inspect.signature(Pipeline)`` lists them), so they are the YAML keys and,
with dashes, the flags of ``streamseg run``.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
import threading
import time
import typing
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from streamseg.backends import Backend
from streamseg.config import RunConfig, config_from_values, option_aliases, option_names, parse_size, stream_entry
from streamseg.errors import ConfigError
from streamseg.frame import Frame
from streamseg.image.confidence_resize import confidence_at_size
from streamseg.image.scores import softmax
from streamseg.label_sets import LabelSet
from streamseg.observability.monitor import MetricsMonitor
from streamseg.pipeline.assemble import assemble_run
from streamseg.pipeline.queues import BufferPolicy, Closed, FrameQueue
from streamseg.pipeline.runner import PipelineResult, default_queue_size
from streamseg.pipeline.streams import Stream, StreamSet, StreamsResult
from streamseg.sources.base import Source


def _input_size(value: tuple[int, int] | str) -> tuple[int, int]:
    """(height, width) from a tuple in that order or from a "WIDTHxHEIGHT" string (the CLI's form)."""
    if isinstance(value, str):
        return parse_size(value)
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value):
        return int(value[0]), int(value[1])
    raise ConfigError(f'input_size must be (height, width) or "WIDTHxHEIGHT" (e.g. "480x360"), not {value!r}')


_END = object()  # marks the end of the results in the hand-off queue
_JOIN_TIMEOUT_S = 30.0  # the longest close() waits for the pipeline's threads (a stage mid-frame)


_END = object()  # marks the end of the results in the hand-off queue
_JOIN_TIMEOUT_S = 30.0  # the longest close() waits for the run's threads (a stage mid-frame)


@dataclass
class Result:
    """What the pipeline made of one frame.

    Attributes:
        stream: the name of the stream the frame came from (one source: its name, e.g. "demo").
        frame_id: the source's frame index (gaps where a live source dropped frames).
        timestamp: seconds of source time.
        labels: (H, W) class ids at the frame's resolution, in the model's label set
            (``Pipeline.label_set``: CamVid's for the built-in networks): uint8, and uint16
            for a model of more than 255 classes.
        probabilities: (C, h, w) float32 class probabilities at the network's resolution,
            only when the pipeline was built with ``probabilities=True``, else ``None``.
        timings: seconds each stage spent on this frame, by stage name.
        latency: seconds from capture to this result.
        image: the RGB frame as decoded.
        overlay: the rendered RGB overlay, when the pipeline was built with ``render=True``.
        confidence: the frame's reliability, ``{"predicted_accuracy": …, "low_confidence_fraction": …}``:
            the mean calibrated confidence of its pixels (the share of its labels predicted right) and the
            share of pixels under ``confidence_threshold`` (``streamseg.image.confidence``); ``None`` where
            the frame has none (``confidence="off"``, or a model that gives class ids only).
        confidence_map: (H, W) uint8 confidence of each label at the frame's resolution, ``round(255 p)``
            with p the calibrated probability of the pixel's class (255: sure), scaled bilinearly from the
            network's grid; ``None`` where ``confidence`` is.
    """

    frame_id: int
    timestamp: float
    labels: np.ndarray
    probabilities: np.ndarray | None
    timings: dict[str, float]
    latency: float
    image: np.ndarray = field(repr=False)
    overlay: np.ndarray | None = field(default=None, repr=False)
    stream: str = ""
    confidence: dict[str, float] | None = None
    confidence_map: np.ndarray | None = field(default=None, repr=False)


class Pipeline:
    """A running segmentation run of one source or many, iterated for results or observed through a callback.

    Building one loads the model and the backend and opens the sources; the threads start
    on the first iteration or on ``start()``. A pipeline runs once. It ends when every stream
    has ended (a file's last frame), or on ``close()``.

    Args:
        source: what ``streamseg run`` takes ("demo", a file, a folder, "camera:N",
            "rtsp://...") or an opened ``Source``, which the pipeline then owns and closes; or a
            list of streams (each a mapping with ``source`` and optionally ``name``, ``out``,
            ``stats``, ``masks``, ``sinks``, ``rtsp_out``, or "NAME=SOURCE"), possibly empty: a
            run with no stream waits for ``add_stream``.
        probabilities: also hand out softmax probabilities (costs a softmax per frame).
        on_result: called with every ``Result`` on its stream's thread; keep it quick, that
            stream's next frame waits for it. An exception in it stops that stream.
        render: also draw the overlay (class colours, legend, stats) into ``Result.overlay``.
        **options: any run option (``streamseg.config.RunConfig``'s fields, e.g. ``model``,
            ``backend``, ``precision``, ``threads``, ``queue_size``, ``max_frames``, ``weights``,
            ``backend_options={"workspace_gib": 2}``), with the values a config file takes; ``out``,
            ``stats`` and ``masks`` with ``{name}`` in them are each stream's own.
            ``input_size`` is a (height, width) tuple or list, or "WIDTHxHEIGHT" as the command
            line writes it ("480x360" is the same as (360, 480)). ``metrics_port`` serves /metrics
            and /healthz on ``metrics_host`` (127.0.0.1; 0: any free port, see ``metrics_url``), as
            ``streamseg run --metrics-port`` does. A bad value is a ``ConfigError``.
    """

    def __init__(
        self,
        source: str | Source | list[dict | str] | tuple = (),
        *,
        probabilities: bool = False,
        on_result: Callable[[Result], None] | None = None,
        render: bool = False,
        **options: Any,
    ) -> None:
        given = source if isinstance(source, Source) else None  # an opened source, handed over
        try:
            if "streams" in options:
                raise TypeError("Pipeline() takes its streams as its first argument: Pipeline([{'name': ..., 'source': ...}, ...])")
            unknown = sorted(set(options) - set(_KEYWORDS) - set(option_aliases()))
            if unknown:
                raise TypeError(f"Pipeline() got an unexpected keyword argument {unknown[0]!r}; run options: {', '.join(_KEYWORDS)}")
            if "input_size" in options:  # the API's own (height, width) order for a tuple or list
                options["input_size"] = _input_size(options["input_size"])
            if isinstance(source, (list, tuple)):
                values = {"streams": list(source), **options}
            else:
                values = {"source": type(source).__name__ if given is not None else source, **options}
            self.config = config_from_values(values)
        except BaseException:
            if given is not None:
                given.close()  # handed over, so ours to close also when a setting is refused
            raise
        self.probabilities = probabilities
        self.on_result = on_result
        self.result: StreamsResult | None = None  # set when the run ends
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._iterating = False
        self._stopped_by_caller = False  # close() came before the end: a run error then is ours, not news
        self._results: FrameQueue | None = None  # made once the first stream says whether it is live
        with ExitStack() as stack:
            self._run: StreamSet = stack.enter_context(assemble_run(
                self.config, source=given, on_frame=self._deliver, keep_scores=probabilities, render=render,
                wait_for_streams=isinstance(source, (list, tuple)),
            ))
            self._opened = stack.pop_all()  # closed by close(), from now on
        streams = self._run.streams()
        live = any(stream.assembly.source.live for stream in streams)
        # A live source's results are worth something only while fresh: keep the newest.
        self._results = FrameQueue(
            "results", self.config.queue_size or (default_queue_size(streams[0].assembly.source) if streams else 4),
            BufferPolicy.DROP_OLDEST if live else BufferPolicy.WAIT, on_drop=self._dropped,
        )

    # --- the run's parts ---------------------------------------------------------------

    @property
    def source(self) -> Source:
        """The source of a one-source pipeline."""
        return self._only().assembly.source

    @property
    def backend(self) -> Backend:
        """The backend every stream shares."""
        return self._run.backend

    @property
    def monitor(self) -> MetricsMonitor:
        """The monitor of a one-source pipeline's stream (its fps, latency and counts)."""
        return self._only().assembly.monitor

    @property
    def label_set(self) -> LabelSet:
        """What the class ids of ``Result.labels`` mean: the model's class names (``label_set.names[id]``) and colours."""
        return self._run.backend.label_set

    @property
    def metrics_url(self) -> str | None:
        """Where /metrics is served ("http://127.0.0.1:PORT/metrics"), when built with ``metrics_port``."""
        servers = self._run.servers
        return f"{servers[0].url}/metrics" if servers else None

    def _only(self) -> Stream:
        streams = self._run.streams()
        if len(streams) != 1:
            raise RuntimeError(f"this pipeline runs {len(streams)} streams; ask describe() for each")
        return streams[0]

    # --- streams -----------------------------------------------------------------------

    def add_stream(self, name: str, source: str, **outputs: Any) -> None:
        """Opens stream ``name`` on ``source`` and starts it if the run is on; ``outputs``: out, stats, masks, sinks, rtsp_out.

        The embedding program's own call: its output paths are checked like the command line's,
        not confined to an output root as those named over HTTP are."""
        self._run.add_stream(stream_entry({"name": name, "source": source, **outputs}))

    def remove_stream(self, name: str) -> PipelineResult | None:
        """Stops stream ``name`` after the frames it has read; its outputs are closed when this returns."""
        return self._run.remove_stream(name)

    def names(self) -> list[str]:
        return self._run.names()

    def describe(self) -> list[dict]:
        """Each stream still in the run: name, source, state, frames done and fps (as ``GET /streams`` gives them)."""
        return self._run.describe()

    # --- running -----------------------------------------------------------------------

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Starts the run's threads, for use with ``on_result`` alone. Iterating starts it too."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this pipeline is closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run_all, name="streamseg-pipeline", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> StreamsResult | None:
        """Blocks until every stream has ended (or ``timeout`` passes); returns how each ended, if over."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return self.result

    def __iter__(self) -> Iterator[Result]:
        with self._lock:
            if self._iterating:
                raise RuntimeError("a pipeline is iterated once, by one consumer")
            self._iterating = True
        self.start()
        return self._results_until_end()

    def _results_until_end(self) -> Iterator[Result]:
        try:
            while True:
                try:
                    item = self._results.get()
                except Closed:
                    return
                if item is _END:
                    break
                yield item
        finally:
            self.close()  # also when the consumer leaves the loop early
        result = self.result
        failed = [ended.error for ended in (result.streams.values() if result is not None else ()) if ended.error]
        if failed and not self._stopped_by_caller:
            raise RuntimeError(failed[0])

    def close(self) -> None:
        """Stops every stream (each finishes what it has read and closes its outputs), waits for their threads and
        releases the sources and the backend. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopped_by_caller = self._thread is not None and self.result is None
            thread = self._thread
        self._results.close()  # a stream thread waiting to hand over a result wakes up
        if thread is not None and thread.is_alive() and self.result is None:
            # Each stream stops reading and finishes the frames it has read, so its outputs close whole;
            # a live source is closed at once, which ends a read blocked on the network or a device.
            self._run.stop()
            thread.join(_JOIN_TIMEOUT_S)
        self._opened.close()  # the run: streams, backend, metrics server

    # --- the streams' threads ----------------------------------------------------------

    def _run_all(self) -> None:
        try:
            self.result = self._run.run()
        finally:
            try:
                self._results.put(_END, force=True)
            except Closed:
                pass

    def _dropped(self, result: Result) -> None:
        stream = self._run.stream(result.stream)
        if stream is not None:
            stream.assembly.monitor.frame_dropped("consumer")

    def _deliver(self, stream: str, frame: Frame) -> None:
        result = self._to_result(stream, frame)
        if self.on_result is not None:
            self.on_result(result)
        if self._iterating:
            try:
                self._results.put(result)
            except Closed:
                pass  # the consumer has gone; the run is being stopped

    def _to_result(self, stream: str, frame: Frame) -> Result:
        probabilities = None
        if self.probabilities:
            probabilities = softmax(frame.logits)
        confidence_map = None
        if frame.confidence is not None:
            confidence_map = confidence_at_size(frame.confidence, frame.image.shape[:2])
        return Result(
            frame_id=frame.index,
            timestamp=frame.timestamp,
            labels=frame.labels,
            probabilities=probabilities,
            timings=dict(frame.timings),
            latency=max(0.0, time.perf_counter() - frame.captured_at),
            image=frame.image,
            overlay=frame.overlay,
            stream=stream,
            confidence=frame.reliability.as_dict() if frame.reliability is not None else None,
            confidence_map=confidence_map,
        )


# source is Pipeline's positional argument (one source, or the list of streams): every other option is a keyword.
_KEYWORDS = tuple(name for name in option_names() if name not in ("source", "streams"))

Streams = Pipeline  # the name the many-streams API had: a Pipeline given a list of streams is the same run


class _Computed:
    """A default computed when a pipeline is built (``default_engine_dir()``, a new list): shown as that call, and callable."""

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory

    def __call__(self) -> Any:
        return self.factory()

    def __repr__(self) -> str:
        return f"{self.factory.__name__}()"


def _signature() -> inspect.Signature:
    """``Pipeline``'s own parameters, then every run option as a keyword with its declared type and default."""
    own = inspect.signature(Pipeline.__init__)
    hints = typing.get_type_hints(RunConfig)
    declared = {field_.name: field_ for field_ in dataclasses.fields(RunConfig)}

    def default(name: str) -> Any:
        factory = declared[name].default_factory
        return declared[name].default if factory is dataclasses.MISSING else _Computed(factory)

    options = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default(name), annotation=hints[name])
        for name in _KEYWORDS
    ]
    fixed = [parameter for parameter in own.parameters.values() if parameter.kind is not inspect.Parameter.VAR_KEYWORD]
    return own.replace(parameters=fixed + options)


Pipeline.__init__.__signature__ = _signature()  # what help(), IDEs and inspect show: the keywords a Pipeline takes
