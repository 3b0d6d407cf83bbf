"""Runs a source, a chain of stages and the sinks concurrently, one thread each, joined by bounded queues.

A stage that is safe to run in parallel may ask for several threads (``Stage.workers``: the
inference stage with a multi-stream backend); its frames still leave in the order they came.

Shutdown has three doors and each leaves the outputs whole:

- end of stream: the source thread puts an end marker; each stage passes it on after
  finishing what is queued before it; the sink thread closes the sinks.
- ``stop()`` (SIGINT/SIGTERM): the source stops reading; everything already read is
  drained through the stages and written, then the sinks close.
- an error in a stage: it is recorded and reported, every queue is closed so that no
  thread waits forever, and the sinks still close (the frames written so far stay playable).
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from dataclasses import dataclass, field
from enum import Enum
from typing import Callable, Iterator

from streamseg.errors import StreamsegError
from streamseg.frame import Frame
from streamseg.observability.monitor import Monitor
from streamseg.pipeline.queues import BufferPolicy, Closed, FrameQueue
from streamseg.pipeline.stage import Stage, check_chain
from streamseg.sinks.base import Sink
from streamseg.sources.base import Source

log = logging.getLogger(__name__)


class PipelineState(Enum):
    CREATED = "created"
    RUNNING = "running"
    STOPPING = "stopping"  # draining after stop()
    FINISHED = "finished"
    FAILED = "failed"


_ALLOWED = {
    PipelineState.CREATED: {PipelineState.RUNNING},
    PipelineState.RUNNING: {PipelineState.STOPPING, PipelineState.FINISHED, PipelineState.FAILED},
    PipelineState.STOPPING: {PipelineState.FINISHED, PipelineState.FAILED},
    PipelineState.FINISHED: set(),
    PipelineState.FAILED: set(),
}

_END = object()  # end-of-stream marker passed down the queues


class Aborted(RuntimeError):
    """``abort()`` was called: the run was cut short on purpose (a second Ctrl-C), not by a fault."""


class _InOrder:
    """Lets a stage run in several threads while its frames leave in the order they came.

    A worker takes a ticket with each frame it takes from the inbox (under one lock, so ticket
    order is inbox order), and may put its result out only on its ticket's turn.
    """

    def __init__(self, workers: int) -> None:
        self.taking = threading.Lock()
        self._turn_changed = threading.Condition()
        self._next_ticket = 0
        self._turn = 0
        self._workers_left = workers
        self._aborted = False

    def ticket(self) -> int:
        """The next ticket; call with ``taking`` held."""
        self._next_ticket += 1
        return self._next_ticket - 1

    def wait_turn(self, ticket: int) -> None:
        with self._turn_changed:
            while self._turn != ticket:
                if self._aborted:
                    raise Closed("stage aborted")
                self._turn_changed.wait()

    def next_turn(self) -> None:
        with self._turn_changed:
            self._turn += 1
            self._turn_changed.notify_all()

    def abort(self) -> None:
        """Wakes every worker waiting for a turn that will not come (a sibling failed)."""
        with self._turn_changed:
            self._aborted = True
            self._turn_changed.notify_all()

    def worker_done(self) -> bool:
        """True for the last worker to finish: it passes the end marker on."""
        with self._turn_changed:
            self._workers_left -= 1
            return self._workers_left == 0


FILE_QUEUE_SIZE = 4  # a file waits for the pipeline: room to absorb one slow frame without idling the others
LIVE_QUEUE_SIZE = 1  # a live frame only ages in a queue (BENCHMARKS.md, Latency)


def default_queue_size(source: Source) -> int:
    """How many frames each queue holds when not told: as few as keep the stages busy for a live source."""
    return LIVE_QUEUE_SIZE if source.live else FILE_QUEUE_SIZE


@dataclass
class PipelineResult:
    frames: int  # frames that reached the sinks
    dropped: int  # frames a live source's queue discarded as stale
    seconds: float
    state: PipelineState
    error: str | None = None  # the first stage failure, one line
    damage: str | None = None  # the source's report of a truncated or corrupt input
    sink_errors: list[str] = field(default_factory=list)
    sink_losses: dict[str, int] = field(default_factory=dict)  # per failed sink: frames its output lacks
    stopped_early: bool = False  # stop() was called before the end of the stream
    aborted: bool = False  # abort() was called: queued frames were discarded on purpose

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Runner:
    """source → stages → sinks. ``run()`` blocks until the stream ends, ``stop()`` is called, or a stage fails.

    What ``Assembly.pipeline()`` joins the opened parts with; the embedding API's
    ``streamseg.api.Pipeline`` holds an assembly and runs one of these. The runner closes the source and the sinks (it alone knows when they are done with);
    the stages belong to whoever built them, so one set of stages can serve several runs.
    """

    def __init__(
        self,
        source: Source,
        stages: list[Stage],
        sinks: list[Sink],
        *,
        monitor: Monitor | None = None,
        queue_size: int | None = None,
        max_frames: int | None = None,
        on_frame: Callable[[Frame], None] | None = None,
    ) -> None:
        check_chain(stages)
        self.source = source
        self.stages = stages
        self.sinks = list(sinks)
        self.monitor = monitor or Monitor()
        self.max_frames = max_frames
        self.on_frame = on_frame
        self._state = PipelineState.CREATED
        self._state_lock = threading.Lock()
        self._stop_requested = threading.Event()
        self._error: str | None = None
        self._error_trace: str | None = None
        self._aborted = False
        self._sink_errors: list[str] = []
        self._failed_sinks: list[Sink] = []
        self._frames_delivered: dict[int, int] = {}  # id(sink) -> frames it took without raising
        self._frames_done = 0
        self._dropped = 0
        # A live source's first queue keeps only the newest frames; every other queue waits.
        head_policy = BufferPolicy.DROP_OLDEST if source.live else BufferPolicy.WAIT
        queue_size = queue_size or default_queue_size(source)
        self.queues: list[FrameQueue] = [FrameQueue("source", queue_size, head_policy, on_drop=self._count_drop)]
        self.queues += [FrameQueue(stage.name, queue_size, BufferPolicy.WAIT) for stage in stages]
        self._orders = [_InOrder(stage.workers) for stage in stages]

    @property
    def state(self) -> PipelineState:
        return self._state

    def _transition(self, new: PipelineState) -> bool:
        with self._state_lock:
            if new not in _ALLOWED[self._state]:
                return False
            self._state = new
            return True

    def stop(self) -> None:
        """Graceful stop: read no more frames, finish and write those already read."""
        if self._transition(PipelineState.STOPPING):
            self._stop_requested.set()
            if self.source.live:
                self.source.close()  # a live source may be waiting on a lost stream; close() ends its iteration

    def abort(self, reason: str) -> None:
        """Hard stop: queued frames are discarded, the sinks still close. The result says ``aborted``."""
        self._aborted = True
        self._fail("pipeline", Aborted(reason))

    @property
    def error_trace(self) -> str | None:
        """The traceback of the first failure, for --verbose."""
        return self._error_trace

    def _count_drop(self, _frame: object) -> None:
        self._dropped += 1
        self.monitor.frame_dropped("stale")

    def _fail(self, where: str, error: BaseException) -> None:
        with self._state_lock:
            if self._error is None:
                self._error = f"{where} failed: {type(error).__name__}: {error}"
                self._error_trace = traceback.format_exc()
        self.monitor.stage_error(where, error)
        self._transition(PipelineState.FAILED)
        self._stop_requested.set()
        for queue in self.queues:
            queue.close()
        for order in self._orders:
            order.abort()

    # --- threads -------------------------------------------------------------------------

    def _read_source(self) -> None:
        out = self.queues[0]
        frames = iter(self.source)
        count = 0
        try:
            while not self._stop_requested.is_set() and (self.max_frames is None or count < self.max_frames):
                frame = read_timed(frames)
                if frame is None:
                    break
                if count == 0:
                    self.monitor.source_up(True)  # on its first frame: a live source may take a while to connect
                out.put(frame)
                count += 1
        except Closed:
            pass
        except Exception as error:
            self._fail("source", error)
        finally:
            self.monitor.source_up(False)
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # ends a generator-based source's iteration, so it releases its file now
            self.source.close()
            self._pass_end(out)

    def _run_stage(self, stage: Stage, inbox: FrameQueue, out: FrameQueue, order: _InOrder) -> None:
        """One of the stage's ``workers`` threads."""
        try:
            while True:
                with order.taking:
                    frame = inbox.get()
                    if frame is _END:
                        inbox.put(_END, force=True)  # the stage's other workers end on it too
                        break
                    ticket = order.ticket()
                process_timed(stage, frame)
                order.wait_turn(ticket)
                try:
                    out.put(frame)
                finally:
                    order.next_turn()
        except Closed:
            pass
        except Exception as error:
            self._fail(stage.name, error)
        finally:
            if order.worker_done():
                self._pass_end(out)  # after every worker's frames

    def _write_sinks(self, inbox: FrameQueue) -> None:
        try:
            while True:
                frame = inbox.get()
                if frame is _END:
                    break
                for sink in list(self.sinks):
                    try:
                        sink.write(frame)
                    except Exception as error:  # a broken sink is reported and dropped; the stream goes on
                        self._drop_sink(sink, error)
                    else:
                        self._frames_delivered[id(sink)] = self._frames_delivered.get(id(sink), 0) + 1
                self._frames_done += 1
                self.monitor.frame_done(frame)
                for queue in self.queues:
                    self.monitor.queue_depth(queue.name, len(queue))
                if self.on_frame is not None:
                    self.on_frame(frame)
        except Closed:
            pass
        except Exception as error:
            self._fail("sinks", error)
        finally:
            for sink in self.sinks:
                try:
                    sink.close()
                except Exception as error:
                    self._sink_failed(sink, error, closing=True)

    def _drop_sink(self, sink: Sink, error: Exception) -> None:
        self._sink_failed(sink, error)
        self.monitor.frame_dropped("sink_error")
        self.sinks.remove(sink)
        try:
            sink.close()
        except Exception:
            pass  # already reported; the sink is gone either way

    def _sink_failed(self, sink: Sink, error: Exception, *, closing: bool = False) -> None:
        """Says so at once, on one line naming the sink and the cause, and keeps it for the result."""
        cause = _one_line(error)
        if closing:
            log.warning("output %s failed while closing: %s", sink.name, cause)
        else:
            log.warning("output %s failed: %s; the run goes on without it", sink.name, cause)
        self._sink_errors.append(f"{sink.name}: {'closing failed: ' if closing else ''}{cause}")
        if sink not in self._failed_sinks:
            self._failed_sinks.append(sink)
        self.monitor.stage_error(f"sink:{sink.name}", error)

    def _sink_losses(self) -> dict[str, int]:
        """Frames that reached the sinks but are not in each failed sink's output.

        A sink that keeps ``frames_written`` says what its output holds (a discarded file
        holds none); for others, the frames it took before it failed are counted as kept.
        """
        losses: dict[str, int] = {}
        for sink in self._failed_sinks:
            kept = getattr(sink, "frames_written", None)
            if not isinstance(kept, int):
                kept = self._frames_delivered.get(id(sink), 0)
            losses[sink.name] = losses.get(sink.name, 0) + max(0, self._frames_done - kept)
        return losses

    @staticmethod
    def _pass_end(out: FrameQueue) -> None:
        try:
            out.put(_END, force=True)
        except Closed:
            pass

    # --- driver --------------------------------------------------------------------------

    def run(self) -> PipelineResult:
        if not self._transition(PipelineState.RUNNING):
            raise RuntimeError(f"a pipeline runs once; this one is {self._state.value}")
        started = time.perf_counter()
        threads = [threading.Thread(target=self._read_source, name="source", daemon=True)]
        for stage, inbox, out, order in zip(self.stages, self.queues, self.queues[1:], self._orders):
            for worker in range(stage.workers):
                name = stage.name if stage.workers == 1 else f"{stage.name}-{worker}"
                threads.append(threading.Thread(target=self._run_stage, args=(stage, inbox, out, order), name=name, daemon=True))
        threads.append(threading.Thread(target=self._write_sinks, args=(self.queues[-1],), name="sinks", daemon=True))
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                while thread.is_alive():
                    thread.join(timeout=0.1)  # short joins keep the main thread free to take signals
        finally:
            self.monitor.stopped()
        stopped_early = self._state is PipelineState.STOPPING
        self._transition(PipelineState.FINISHED)
        return PipelineResult(
            frames=self._frames_done,
            dropped=self._dropped,
            seconds=time.perf_counter() - started,
            state=self._state,
            error=self._error,
            damage=self.source.damage,
            sink_errors=list(self._sink_errors),
            sink_losses=self._sink_losses(),
            stopped_early=stopped_early,
            aborted=self._aborted,
        )


def read_timed(frames: Iterator[Frame]) -> Frame | None:
    """The source's next frame, with the seconds its decoding took as ``timings["source"]``; None at the end."""
    started = time.perf_counter()
    frame = next(frames, None)
    if frame is not None:
        frame.timings["source"] = time.perf_counter() - started
    return frame


def process_timed(stage: Stage, frame: Frame) -> None:
    """``stage.process(frame)``, the seconds it took recorded in ``frame.timings`` under the stage's name."""
    started = time.perf_counter()
    stage.process(frame)
    frame.timings[stage.name] = time.perf_counter() - started


def _one_line(error: BaseException) -> str:
    """The error as one line; a user-fixable one (an ``OutputError``) by its message alone."""
    text = " ".join(str(error).split())
    return text if isinstance(error, StreamsegError) and text else f"{type(error).__name__}: {text}"
