"""Several streams in one run: each its own source, stages and sinks, all sharing one batched backend.

Each stream is an ordinary :class:`~streamseg.pipeline.runner.Runner` in its own thread, opened
by the one assembler (``streamseg.pipeline.assemble``) with a :class:`BatchClient` as its
backend, so everything a single run does (live sources dropping their own stale frames, files
losing nothing, sinks closing on every path) holds per stream. What a stream does never reaches
another except through the batcher, which never waits for any one stream: a stream that fails,
stalls or reconnects only leaves its slot in the batch empty.

Streams can be added and removed while the run goes on (the API and the HTTP routes in
``assemble``); a removed stream drains what it has read and closes its outputs.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from streamseg.config import check_stream_name
from streamseg.errors import ConfigError
from streamseg.observability.reliability_alert import LABELS_UNRELIABLE
from streamseg.pipeline.runner import PipelineResult, PipelineState, Runner

if TYPE_CHECKING:
    from streamseg.backends.base import Backend
    from streamseg.config import RunConfig
    from streamseg.http.server import HttpServer
    from streamseg.observability.prometheus import StreamLabelled
    from streamseg.pipeline.assembly import Assembly
    from streamseg.pipeline.batcher import Batcher

log = logging.getLogger(__name__)

class StreamNameTaken(ConfigError):
    """A stream of that name is running: HTTP answers 409."""


class UnknownStream(ConfigError):
    """No stream of that name: HTTP answers 404."""


@dataclass
class Stream:
    """One stream of a run: its opened parts, the thread running them, and its result once it ends.

    A removed stream, once ended, lets go of its parts (``release``): the run keeps every stream's
    result for its summary, and would otherwise keep every removed stream's source, stages, sinks,
    queues and metric objects with it for as long as it runs.
    """

    class Released:
        """What stays of a released stream in place of its assembly and its runner: its options, its last
        figures and the files it finished. ``stop``, ``abort`` and the monitor do nothing, as on an ended
        runner (a result of it that the API's consumer drops later has no series left to count in)."""

        def __init__(self, config: RunConfig, figures: dict, outputs: list[Path], error_trace: str | None) -> None:
            from streamseg.observability.monitor import Monitor  # the do-nothing monitor

            self.config = config
            self.figures = figures
            self.outputs = outputs
            self.error_trace = error_trace
            self.monitor = Monitor()

        def stop(self) -> None:
            """Nothing to stop: the stream has ended."""

        def abort(self, reason: str) -> None:
            """Nothing to abort: the stream has ended."""

    name: str
    assembly: Assembly | Stream.Released  # Released once the removed stream has ended
    runner: Runner | Stream.Released
    stack: ExitStack  # closes what this stream opened, when its runner has ended
    key: str = ""  # its name in the run's result: the name, or "NAME#2", "NAME#3" for later streams of a reused name
    thread: threading.Thread | None = None
    result: PipelineResult | None = None
    removed: bool = False

    @property
    def state(self) -> str:
        """created, running, stopping, finished or failed: what /healthz and GET /streams report."""
        if self.result is not None:
            return "failed" if self.result.error or self.result.damage else "finished"
        return self.runner.state.value

    def health(self) -> str:
        """"ok", or why not: what /healthz says of this stream (``Assembly.healthy`` while it runs, see ``stream_state``)."""
        if self.result is not None:
            return "failed" if self.result.error or self.result.damage else "ok"
        return stream_state(*self.assembly.healthy())

    def outputs(self) -> list[Path]:
        """The files this stream's outputs finished (a failed output has none)."""
        if isinstance(self.assembly, Stream.Released):
            return list(self.assembly.outputs)
        return [sink.completed_output for sink in self.assembly.sinks if sink.completed_output is not None]

    def describe(self) -> dict:
        if isinstance(self.assembly, Stream.Released):
            return {**self.assembly.figures, "state": self.state}
        snapshot = self.assembly.monitor.snapshot()
        return {
            "name": self.name, "source": self.assembly.config.source, "state": self.state,
            "frames": snapshot["frames"], "fps": round(snapshot["fps"], 2), "source_up": snapshot["source_up"],
        }

    def release(self) -> None:
        """Lets go of the ended stream's parts, keeping its result, options, last figures and finished files.

        Called once its thread has ended and its stack is closed; a second call does nothing.
        """
        if isinstance(self.assembly, Stream.Released):
            return
        released = Stream.Released(self.assembly.config, self.describe(), self.outputs(), self.runner.error_trace)
        self.assembly = self.runner = released
        # glibc keeps what the stream's threads freed resident in its arenas, and the threads of streams
        # that come and go spread over all of them: without handing the free pages back, a run that adds
        # and removes streams for weeks still creeps up although nothing is held. No glibc: nothing to do.
        import ctypes

        try:
            ctypes.CDLL(None).malloc_trim(0)
        except (OSError, AttributeError, TypeError):
            pass


@dataclass
class StreamsResult:
    """How each stream ended, by name, in the order the streams were added.

    A name used again (a camera removed and added back) keeps its first stream's result under the name
    and gives the later ones ``NAME#2``, ``NAME#3``: no stream's ending, a failure above all, drops out
    of the summary or the exit status.
    """

    streams: dict[str, PipelineResult] = field(default_factory=dict)
    aborted: bool = False
    stopped_early: bool = False

    @property
    def frames(self) -> int:
        return sum(result.frames for result in self.streams.values())

    @property
    def error(self) -> str | None:
        """The first stream's failure, by the order the streams were added; None when none failed."""
        return next((result.error for result in self.streams.values() if result.error), None)


class StreamSet:
    """The streams of one run. ``run()`` blocks until every stream has ended (or ``stop()``).

    Args:
        open_stream: opens one stream's parts on the stack it is given (the assembler's); raises
            a ``StreamsegError`` for what the user can fix (a bad source, an output in use).
        labelled: where each stream's metrics are exposed with its ``stream`` label.
    """

    def __init__(
        self, open_stream: Callable[[dict, ExitStack], Assembly], labelled: StreamLabelled,
        batcher: Batcher | None = None, backend: Backend | None = None,
    ) -> None:
        self.batcher = batcher  # the shared backend's batcher, for its figures (batching); the assembler closes it
        self.backend = backend  # the shared backend itself (the assembler closes it)
        self.servers: list[HttpServer] = []  # where the run serves /metrics, /healthz and /streams
        self._open_stream = open_stream
        self._labelled = labelled
        self._streams: dict[str, Stream] = {}  # the latest stream of each name, which HTTP and the API address
        self._every: list[Stream] = []  # every stream added, in order: each one's thread is joined and its result kept
        self._lock = threading.Condition()
        self._state = PipelineState.CREATED
        self._aborted = False

    # --- what SignalGuard and the CLI use, like a Runner's --------------------------------

    @property
    def state(self) -> PipelineState:
        return self._state

    def stop(self) -> None:
        """Every stream stops reading and finishes what it has read; ``run()`` then returns."""
        with self._lock:
            if self._state is PipelineState.RUNNING:
                self._state = PipelineState.STOPPING
            streams = list(self._every)
            self._lock.notify_all()
        for stream in streams:
            stream.runner.stop()

    def abort(self, reason: str) -> None:
        """Every stream discards what it has queued and ends."""
        self._aborted = True
        with self._lock:
            streams = [stream for stream in self._every if stream.result is None]
        for stream in streams:
            stream.runner.abort(reason)
        self.stop()

    # --- streams --------------------------------------------------------------------------

    def add_stream(self, entry: dict) -> Stream:
        """Opens the stream ``entry`` describes (``name``, ``source`` and its own outputs) and starts it if the run is on."""
        name = check_stream_name(entry.get("name"))
        with self._lock:
            if self._state in (PipelineState.STOPPING, PipelineState.FINISHED, PipelineState.FAILED):
                raise ConfigError(f"cannot add stream {name}: the run is {self._state.value}")
            if self._running(name):
                raise StreamNameTaken(f"a stream called {name} is already running; remove it first or pick another name")
        stack = ExitStack()
        try:
            assembly = self._open_stream(entry, stack)
            runner = assembly.pipeline()
        except BaseException:
            stack.close()
            raise
        stream = Stream(name, assembly, runner, stack)
        with self._lock:
            taken = self._running(name)  # another add of the name won meanwhile
            replaced = None if taken else self._streams.get(name)
            if not taken:
                # A removed or ended stream of that name: the new stream's metrics replace its own.
                self._labelled.remove(name)
                self._labelled.add(name, assembly.monitor.metrics.registry)
                earlier = sum(1 for other in self._every if other.name == name)
                stream.key = name if not earlier else f"{name}#{earlier + 1}"
                self._streams[name] = stream
                self._every.append(stream)
                if self._state in (PipelineState.RUNNING, PipelineState.STOPPING):
                    self._start(stream)
        if taken:
            stack.close()
            raise StreamNameTaken(f"a stream called {name} is already running; remove it first or pick another name")
        if replaced is not None and replaced.thread is not None and not replaced.thread.is_alive():
            self._let_go(replaced)  # ended on its own and now out of reach by name: only its result is kept
        if self._state is not PipelineState.CREATED:  # the assembler names the streams a run starts with
            log.info("stream %s added: %s", name, assembly.config.source)
        return stream

    def _running(self, name: str) -> bool:
        """Whether a stream of that name is in the run and has not ended; called with the lock held."""
        current = self._streams.get(name)
        return current is not None and not current.removed and current.result is None

    def remove_stream(self, name: str, timeout: float | None = None) -> PipelineResult:
        """Stops stream ``name``: it finishes the frames it has read and closes its outputs. Returns how it ended."""
        with self._lock:
            stream = self._streams.get(name)
            if stream is None or stream.removed:
                raise UnknownStream(f"no stream called {name}; streams: {', '.join(self.names()) or 'none'}")
            stream.removed = True
        stream.runner.stop()
        if stream.thread is not None:
            stream.thread.join(timeout)
        else:  # never started: its parts are closed here
            stream.stack.close()
            stream.result = PipelineResult(0, 0, 0.0, PipelineState.FINISHED, stopped_early=True)
        if stream.thread is None or not stream.thread.is_alive():  # else its thread lets go when it ends
            self._let_go(stream)
        with self._lock:
            self._lock.notify_all()
        return stream.result

    def _let_go(self, stream: Stream) -> None:
        """An ended stream's series leave /metrics and its parts are released; once (its thread, its remover or
        its successor under the name may each get here, only after its thread has ended)."""
        if isinstance(stream.assembly, Stream.Released):
            return
        self._labelled.remove(stream.name, stream.assembly.monitor.metrics.registry)  # not a successor's series
        stream.release()

    def configs(self) -> list[RunConfig]:
        """The options of every stream not removed: a new stream's outputs are checked against theirs."""
        with self._lock:
            return [stream.assembly.config for stream in self._streams.values() if not stream.removed]

    def streams(self) -> list[Stream]:
        """Every stream not removed, in the order they were added."""
        with self._lock:
            return [stream for stream in self._streams.values() if not stream.removed]

    def stream(self, name: str) -> Stream | None:
        """The latest stream of that name, removed or not."""
        with self._lock:
            return self._streams.get(name)

    def names(self) -> list[str]:
        with self._lock:
            return [name for name, stream in self._streams.items() if not stream.removed]

    def describe(self) -> list[dict]:
        """Every stream that has not been removed: its name, source, state, frames and fps."""
        with self._lock:
            streams = [stream for stream in self._streams.values() if not stream.removed]
        return [stream.describe() for stream in streams]

    def healthy(self) -> tuple[bool, dict]:
        """For /healthz: each stream's state; unhealthy only when no stream is running well.

        One dead camera of eight is reported, not made the whole server's failure: the others
        still deliver, and a restart by an orchestrator would interrupt them all.
        """
        with self._lock:
            streams = [stream for stream in self._streams.values() if not stream.removed]
        return streams_health({stream.name: stream.health() for stream in streams})

    def batching(self) -> dict[str, float]:
        """Inference calls so far, the frames they held, and the frames per call."""
        if self.batcher is None:
            return {"calls": 0, "frames": 0, "mean_batch": 0.0}
        return {"calls": self.batcher.calls, "frames": self.batcher.frames, "mean_batch": self.batcher.mean_batch}

    # --- running --------------------------------------------------------------------------

    def run(self) -> StreamsResult:
        """Runs every stream until each has ended (files) or ``stop()`` is called; returns how each ended."""
        with self._lock:
            if self._state is not PipelineState.CREATED:
                raise RuntimeError(f"a stream set runs once; this one is {self._state.value}")
            self._state = PipelineState.RUNNING
            for stream in self._every:
                if not stream.removed:  # one removed before the run began was closed then
                    self._start(stream)
        try:
            with self._lock:
                while not self._all_ended():
                    self._lock.wait(0.1)  # short waits keep the main thread free to take signals
        finally:
            self.stop()
            self._join_every_stream()
            self._state = PipelineState.FINISHED
        ended = [stream for stream in self._every if stream.result is not None]
        return StreamsResult(
            {stream.key: stream.result for stream in ended}, aborted=self._aborted,
            stopped_early=any(stream.result.stopped_early for stream in ended if not stream.removed),
        )

    def close(self) -> None:
        """Stops and closes every stream still open (a run that never started, or was left by an error)."""
        self.stop()
        self._join_every_stream()
        with self._lock:
            unstarted = [stream for stream in self._every if stream.thread is None]
        for stream in unstarted:
            stream.stack.close()

    def _join_every_stream(self) -> None:
        """Waits for every stream's thread, a replaced one's too: its outputs close before the run returns."""
        with self._lock:
            threads = [stream.thread for stream in self._every if stream.thread is not None]
        for thread in threads:
            thread.join()

    def _start(self, stream: Stream) -> None:
        stream.thread = threading.Thread(target=self._run_stream, args=(stream,), name=f"stream-{stream.name}", daemon=True)
        stream.thread.start()

    def _run_stream(self, stream: Stream) -> None:
        try:
            stream.result = stream.runner.run()
        finally:
            stream.stack.close()
            if stream.result is None:  # run() itself raised: a bug, but the others go on
                stream.result = PipelineResult(0, 0, 0.0, PipelineState.FAILED, error="the stream's runner raised")
            report_stream(stream.key, stream.result, stream.outputs(), stream.runner.error_trace)
            if stream.removed:  # its remover may have stopped waiting: the stream lets go of its parts here
                self._let_go(stream)
            with self._lock:
                self._lock.notify_all()

    def _all_ended(self) -> bool:
        """Called with the lock held. A run with no stream yet waits for its first (the API may add it)."""
        return bool(self._every) and all(stream.result is not None or stream.thread is None for stream in self._every)


def stream_state(healthy: bool, detail: str) -> str:
    """A running stream's state for /healthz from its ``Assembly.healthy()``: "ok"; a warning that leaves it well
    (``degraded: labels unreliable (...)``, its domain-shift alert); or why it is unhealthy."""
    return detail if not healthy or detail.startswith(LABELS_UNRELIABLE) else "ok"


def is_well(state: str) -> bool:
    """Whether a stream in that state delivers what it should: "ok", or labels that are unreliable
    (the frames still come; the alert is for the operator, and a restart would not help)."""
    return state == "ok" or state.startswith(LABELS_UNRELIABLE)


def streams_health(states: dict[str, str]) -> tuple[bool, dict[str, str]]:
    """/healthz of a run of several streams, from each stream's state (``stream_state``): unhealthy only when
    no stream is well (or there is none yet)."""
    return any(is_well(state) for state in states.values()) or not states, states


def report_stream(name: str, result: PipelineResult, outputs: Iterable[Path] = (), trace: str | None = None) -> None:
    """One line per stream as it ends, naming it (the failure of one camera must be findable among many), with
    what each failed output lacks; then each output it finished. ``trace`` (a failure's traceback) is a debug line."""
    losses = "".join(f", {sink} lost {count} frame{'s' * (count != 1)}" for sink, count in result.sink_losses.items())
    line = (
        f"stream {name}: {result.frames} frames in {result.seconds:.1f} s ({result.fps:.1f} fps), "
        f"{result.dropped} dropped{losses}"
    )
    if result.aborted:  # the signal handler has said why
        log.info("%s; aborted", line)
    elif result.error:
        log.error("%s; %s", line, result.error)
        if trace:
            log.debug("%s", trace.rstrip())  # shown with --verbose
    elif result.damage:
        log.error("%s; %s", line, result.damage)
    else:
        log.info("%s", line)
    for error in result.sink_errors:
        log.warning("stream %s: output %s", name, error)
    for path in outputs:  # each failed output said why when it failed; only finished files are named here
        log.info("wrote %s", path)
