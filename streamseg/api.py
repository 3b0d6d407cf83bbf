"""The Python API for embedding streamseg in a perception stack: the pipeline as an iterator of results.

    from streamseg.api import Pipeline

    with Pipeline("rtsp://camera.local/stream", model="erfnet", input_size=(360, 480)) as pipeline:
        for result in pipeline:
            road = result.labels == 3            # CamVid id 3: Road, at the frame's resolution
            planner.update(result.timestamp, road)
            if result.latency > 0.2:
                log.warning("frame %d is %.0f ms late", result.frame_id, 1000 * result.latency)

Or with a callback, from the pipeline's own thread, while this thread does something else:

    pipeline = Pipeline("camera:0", on_result=lambda result: publish(result.labels))
    pipeline.start()
    ...
    pipeline.close()

The source, stages and threads are the same as ``streamseg run`` uses. Results from a live
source (camera, RTSP) are dropped when the consumer falls behind, the newest one wins;
from a file, the pipeline waits for the consumer and nothing is lost. Leaving the ``for``
loop early, leaving the ``with`` block or calling ``close()`` stops every thread and
releases the source and the backend.

A pipeline is built by the same ``assemble()`` as ``streamseg run``, from a ``RunConfig``
whose fields the keyword arguments name: the same frames give the same labels, and with
``metrics_port`` the same /metrics (and /healthz) as the command line's ``--metrics-port``.
Every run option is a keyword, with the run's default: the keywords are derived from
``RunConfig``'s declared fields (``inspect.signature(Pipeline)`` lists them), so they are the
YAML keys and, with dashes, the flags of ``streamseg run``.
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
from streamseg.config import RunConfig, config_from_values, option_names, parse_size, stream_entry
from streamseg.errors import ConfigError
from streamseg.frame import Frame
from streamseg.observability.monitor import MetricsMonitor
from streamseg.pipeline.assemble import Assembly, assemble, assemble_streams
from streamseg.pipeline.queues import BufferPolicy, Closed, FrameQueue
from streamseg.pipeline.runner import PipelineResult, default_queue_size
from streamseg.pipeline.streams import StreamSet, StreamsResult
from streamseg.image.scores import softmax
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


@dataclass
class Result:
    """What the pipeline made of one frame.

    Attributes:
        frame_id: the source's frame index (gaps where a live source dropped frames).
        timestamp: seconds of source time.
        labels: (H, W) uint8 class ids at the frame's resolution (``streamseg.classes.CLASS_NAMES``).
        probabilities: (C, h, w) float32 class probabilities at the network's resolution,
            only when the pipeline was built with ``probabilities=True``, else ``None``.
        timings: seconds each stage spent on this frame, by stage name.
        latency: seconds from capture to this result.
        image: the RGB frame as decoded.
        overlay: the rendered RGB overlay, when the pipeline was built with ``render=True``.
    """

    frame_id: int
    timestamp: float
    labels: np.ndarray
    probabilities: np.ndarray | None
    timings: dict[str, float]
    latency: float
    image: np.ndarray = field(repr=False)
    overlay: np.ndarray | None = field(default=None, repr=False)


class Pipeline:
    """A running segmentation pipeline, iterated for results or observed through a callback.

    Building one loads the model and the backend and opens the source; the threads start
    on the first iteration or on ``start()``. A pipeline runs once.

    Args:
        source: what ``streamseg run`` takes ("demo", a file, a folder, "camera:N",
            "rtsp://...") or an opened ``Source``, which the pipeline then owns and closes.
        probabilities: also hand out softmax probabilities (costs a softmax per frame).
        on_result: called with every ``Result`` on the pipeline's thread; keep it quick,
            the next frame waits for it. An exception in it stops the pipeline.
        render: also draw the overlay (class colours, legend, stats) into ``Result.overlay``.
        **options: any run option (``streamseg.config.RunConfig``'s fields, e.g. ``model``,
            ``backend``, ``precision``, ``threads``, ``queue_size``, ``max_frames``, ``weights``,
            ``backend_options={"workspace_gib": 2}``), with the values a config file takes.
            ``input_size`` is a (height, width) tuple or list, or "WIDTHxHEIGHT" as the command
            line writes it ("480x360" is the same as (360, 480)). ``metrics_port`` serves /metrics
            and /healthz on ``metrics_host`` (127.0.0.1; 0: any free port, see ``metrics_url``), as
            ``streamseg run --metrics-port`` does. A bad value is a ``ConfigError``.
    """

    def __init__(
        self,
        source: str | Source,
        *,
        probabilities: bool = False,
        on_result: Callable[[Result], None] | None = None,
        render: bool = False,
        **options: Any,
    ) -> None:
        given = None if isinstance(source, str) else source  # an opened source, handed over
        try:
            if "streams" in options:
                raise TypeError("a Pipeline runs one source; for several streams use streamseg.api.Streams")
            unknown = sorted(set(options) - set(_KEYWORDS))
            if unknown:
                raise TypeError(f"Pipeline() got an unexpected keyword argument {unknown[0]!r}; run options: {', '.join(_KEYWORDS)}")
            if "input_size" in options:  # the API's own (height, width) order for a tuple or list
                options["input_size"] = _input_size(options["input_size"])
            self.config = config_from_values({"source": type(source).__name__ if given is not None else source, **options})
        except BaseException:
            if given is not None:
                given.close()  # handed over, so ours to close also when a setting is refused
            raise
        self.probabilities = probabilities
        self.on_result = on_result
        self.result: PipelineResult | None = None  # set when the run ends
        self._lock = threading.Lock()
        self._closed = False
        self._thread: threading.Thread | None = None
        self._iterating = False
        self._stopped_by_caller = False  # close() came before the end: a run error then is ours, not news
        with ExitStack() as stack:
            self._assembly: Assembly = stack.enter_context(
                assemble(self.config, source=given, keep_scores=probabilities, render=render)
            )
            # A live source's results are worth something only while fresh: keep the newest.
            policy = BufferPolicy.DROP_OLDEST if self.source.live else BufferPolicy.WAIT
            self._results: FrameQueue = FrameQueue(
                "results", self.config.queue_size or default_queue_size(self.source), policy,
                on_drop=lambda _result: self.monitor.frame_dropped("consumer"),
            )
            self._runner = self._assembly.pipeline(on_frame=self._deliver)
            self._opened = stack.pop_all()  # closed by close(), from now on

    @property
    def source(self) -> Source:
        return self._assembly.source

    @property
    def backend(self) -> Backend:
        return self._assembly.backend

    @property
    def monitor(self) -> MetricsMonitor:
        return self._assembly.monitor

    @property
    def metrics_url(self) -> str | None:
        """Where /metrics is served ("http://127.0.0.1:PORT/metrics"), when built with ``metrics_port``."""
        server = self._assembly.server
        return f"{server.url}/metrics" if server is not None else None

    def __enter__(self) -> "Pipeline":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def start(self) -> None:
        """Starts the pipeline's threads, for use with ``on_result`` alone. Iterating starts it too."""
        with self._lock:
            if self._closed:
                raise RuntimeError("this pipeline is closed")
            if self._thread is not None:
                return
            self._thread = threading.Thread(target=self._run, name="streamseg-pipeline", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> PipelineResult | None:
        """Blocks until the stream ends (or ``timeout`` passes); returns the run's summary, if over."""
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
        if result is not None and result.error and not self._stopped_by_caller:
            raise RuntimeError(result.error)

    def close(self) -> None:
        """Stops the pipeline, waits for its threads and releases the source and the backend. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._stopped_by_caller = self._thread is not None and self.result is None
            thread = self._thread
        self._results.close()  # a pipeline thread waiting to hand over a result wakes up
        if thread is not None and thread.is_alive():
            if self.result is None:
                # Frames still in the queues are of no use to anyone now: discard them.
                self._runner.abort("closed by the caller")
                self.source.close()  # ends a source blocked on the network or a device now
            thread.join(_JOIN_TIMEOUT_S)
        self._opened.close()  # the assembly: stages, backend, source, metrics server

    # --- pipeline thread -----------------------------------------------------------------

    def _run(self) -> None:
        try:
            self.result = self._runner.run()
        finally:
            try:
                self._results.put(_END, force=True)
            except Closed:
                pass

    def _deliver(self, frame: Frame) -> None:
        result = self._to_result(frame)
        if self.on_result is not None:
            self.on_result(result)
        if self._iterating:
            try:
                self._results.put(result)
            except Closed:
                pass  # the consumer has gone; the pipeline is being stopped

    def _to_result(self, frame: Frame) -> Result:
        probabilities = None
        if self.probabilities:
            probabilities = softmax(frame.logits)
        return Result(
            frame_id=frame.index,
            timestamp=frame.timestamp,
            labels=frame.labels,
            probabilities=probabilities,
            timings=dict(frame.timings),
            latency=max(0.0, time.perf_counter() - frame.captured_at),
            image=frame.image,
            overlay=frame.overlay,
        )


# source is Pipeline's positional argument and streams Streams': every other option is a keyword of both.
_KEYWORDS = tuple(name for name in option_names() if name not in ("source", "streams"))


class Streams:
    """Several streams in one run, sharing one batched backend; streams can be added and removed while it runs.

        with Streams([{"name": "front", "source": "rtsp://127.0.0.1:8554/front"}], out="out/{name}.mp4") as run:
            run.start()
            run.add_stream("rear", "rear.mp4")           # written to out/rear.mp4
            run.remove_stream("front")                   # its out/front.mp4 is closed, playable, on return
            result = run.wait()                          # StreamsResult: each stream's PipelineResult by name

    Built by the same ``assemble_streams`` as ``streamseg run A B``; ``options`` are the run
    options ``Pipeline`` takes, shared by every stream (``out``, ``stats`` and ``masks`` with
    ``{name}`` in them are each stream's own). A run with no stream waits for its first; it ends
    when every stream has ended, or on ``close()``.
    """

    def __init__(self, streams: list[dict | str] = (), **options: Any) -> None:
        unknown = sorted(set(options) - set(_KEYWORDS))
        if unknown:
            raise TypeError(f"Streams() got an unexpected keyword argument {unknown[0]!r}; run options: {', '.join(_KEYWORDS)}")
        if "input_size" in options:
            options["input_size"] = _input_size(options["input_size"])
        self.config = config_from_values({"streams": list(streams), **options})
        self.result: StreamsResult | None = None
        self._thread: threading.Thread | None = None
        with ExitStack() as stack:
            self._streams: StreamSet = stack.enter_context(assemble_streams(self.config))
            self._opened = stack.pop_all()

    def add_stream(self, name: str, source: str, **outputs: Any) -> None:
        """Opens stream ``name`` on ``source`` and starts it if the run is on; ``outputs``: out, stats, masks, sinks, rtsp_out."""
        self._streams.add_stream(stream_entry({"name": name, "source": source, **outputs}))

    def remove_stream(self, name: str) -> PipelineResult | None:
        """Stops stream ``name`` after the frames it has read; its outputs are closed when this returns."""
        return self._streams.remove_stream(name)

    def names(self) -> list[str]:
        return self._streams.names()

    def describe(self) -> list[dict]:
        """Each stream still in the run: name, source, state, frames done and fps (as ``GET /streams`` gives them)."""
        return self._streams.describe()

    def start(self) -> None:
        """Runs every stream in the background; ``wait()`` for the end."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="streamseg-streams", daemon=True)
            self._thread.start()

    def wait(self, timeout: float | None = None) -> StreamsResult | None:
        """Blocks until every stream has ended (or ``timeout`` passes); returns how each ended, if over."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.result

    def close(self) -> None:
        """Stops every stream (each finishes what it has read) and releases the backend. Safe to call twice."""
        self._streams.stop()
        if self._thread is not None:
            self._thread.join()
        self._opened.close()

    def __enter__(self) -> Streams:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _run(self) -> None:
        self.result = self._streams.run()


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
