"""CRF refinement in worker processes, fed through shared memory, that never makes the caller wait.

pydensecrf holds the GIL for the whole inference, so threads would stall the pipeline;
worker processes do not. Each worker owns one shared-memory segment, created once and
reused for every frame (image and probabilities in, labels out, and the labels' confidence
when asked for), so a frame costs two copies and a few bytes of pipe traffic, not a new segment.

At most one frame per worker is in flight. When all are busy, the newest frame waits in a
single "next" slot, and a frame already waiting there is dropped (counted as skipped): a
live stream wants the freshest refinement, not a growing backlog.

Workers run at the lowest scheduling priority, but on a CPU the stream already fills that
is not enough: their caches and memory traffic still slow inference. ``cpu_share`` caps
each worker's average CPU use (a fraction of one core): after a frame that took c CPU
seconds, a worker rests until c / cpu_share seconds have passed since it started it.

Workers are started with the "spawn" method (or "forkserver"), never "fork": the parent
has threads and torch, and a forked child would inherit their locks in whatever state
they were. A worker that dies (killed, out of memory) is noticed at the next ``submit``
or ``poll``, replaced, and its frame counted as lost; the stream goes on. Workers ignore
SIGINT, so Ctrl-C reaches only the parent, which shuts them down in order.

One thread drives a pool (the CRF stage's); it is not thread-safe.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from multiprocessing import shared_memory
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as wait_for_ready
from typing import TYPE_CHECKING, NamedTuple, Protocol, runtime_checkable

import numpy as np

from streamseg.image.confidence_resize import confidence_at_size
from streamseg.label_sets import label_dtype
from streamseg.options import DEFAULT_CRF_WORKERS
from streamseg.refine.dense_crf import check_refine_inputs
from streamseg.refine.marginal_confidence import refine_with_confidence

if TYPE_CHECKING:  # workers import this module; they need no prometheus
    from streamseg.refine.prometheus import CrfMetrics

log = logging.getLogger(__name__)

START_METHODS = ("spawn", "forkserver")
_ALIGN = 64  # byte alignment of each array inside a segment
_STOP = None  # sent to a worker to make it exit


@runtime_checkable  # the refiners table checks that a plugin's factory made one
class Refiner(Protocol):
    """What a worker runs: ``DenseCRFRefiner`` or anything picklable with the same method.

    A refiner may also have ``refine_with_confidence(image, probabilities) -> (labels, confidence)``
    (``streamseg.refine.marginal_confidence``); one without it gives labels only.
    """

    def refine(self, image: np.ndarray, probabilities: np.ndarray) -> np.ndarray: ...


class CrfWorkerError(RuntimeError):
    """A worker's refiner raised on a frame; inputs are checked before they are sent, so this is a bug."""


@dataclass(frozen=True)
class _Layout:
    """Where the image, the probabilities, the labels and their confidence of one frame lie in a segment.

    The labels are uint8 up to 255 classes and uint16 beyond, as the class count calls for. The
    confidence, there when asked for, is uint8 at the probabilities' grid.
    """

    image_shape: tuple[int, int, int]
    probabilities_shape: tuple[int, int, int]
    confidence: bool = False  # the worker gives the labels' confidence too

    @property
    def labels_dtype(self) -> np.dtype:
        return label_dtype(self.probabilities_shape[0])

    @property
    def probabilities_offset(self) -> int:
        return _aligned(int(np.prod(self.image_shape)))

    @property
    def labels_offset(self) -> int:
        return _aligned(self.probabilities_offset + 4 * int(np.prod(self.probabilities_shape)))

    @property
    def confidence_offset(self) -> int:
        return _aligned(self.labels_offset + self.image_shape[0] * self.image_shape[1] * self.labels_dtype.itemsize)

    @property
    def nbytes(self) -> int:
        if not self.confidence:
            return self.labels_offset + self.image_shape[0] * self.image_shape[1] * self.labels_dtype.itemsize
        return self.confidence_offset + self.probabilities_shape[1] * self.probabilities_shape[2]

    def image(self, buffer: memoryview) -> np.ndarray:
        return np.ndarray(self.image_shape, np.uint8, buffer=buffer, offset=0)

    def probabilities(self, buffer: memoryview) -> np.ndarray:
        return np.ndarray(self.probabilities_shape, np.float32, buffer=buffer, offset=self.probabilities_offset)

    def labels(self, buffer: memoryview) -> np.ndarray:
        return np.ndarray(self.image_shape[:2], self.labels_dtype, buffer=buffer, offset=self.labels_offset)

    def confidence_map(self, buffer: memoryview) -> np.ndarray:
        return np.ndarray(self.probabilities_shape[1:], np.uint8, buffer=buffer, offset=self.confidence_offset)


@dataclass
class _Task:
    frame_index: int
    image: np.ndarray | None = None  # held only while the frame waits in the "next" slot
    probabilities: np.ndarray | None = None
    layout: _Layout | None = None


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    connection: Connection
    segment: shared_memory.SharedMemory | None = None  # created for its first frame, then reused
    task: _Task | None = None  # the frame it is refining, None while idle
    rest_until: float = 0.0  # time.monotonic() before which it gets no frame (the CPU share cap)
    ready: bool = False  # it has started and refined a test frame


class PoolResult(NamedTuple):
    """A refined frame: its index, its labels (H, W), and their confidence (uint8 at the probabilities' grid) or None."""

    frame_index: int
    labels: np.ndarray
    confidence: np.ndarray | None


@dataclass(frozen=True)
class PoolCounts:
    """What a pool has done so far (frames, except ``workers_replaced``)."""

    submitted: int
    refined: int  # results returned by poll()
    skipped: int  # dropped from the "next" slot by a newer frame
    lost: int  # in flight on a worker that died
    workers_replaced: int


class AsyncCrfPool:
    """Refines frames in ``workers`` processes without ever blocking the caller.

    Args:
        refiner: run in every worker; pickled once per worker start.
        workers: processes, and frames in flight at most.
        start_method: ``"spawn"`` (default) or ``"forkserver"``; ``"fork"`` is refused.
        metrics: where to count refined, skipped and lost frames, busy and replaced
            workers, and CRF time per frame; ``None`` records nothing.
        cpu_share: the most of one core each worker may use on average, in (0, 1];
            ``None`` (default) sets no cap.
        confidence: each result also carries its labels' confidence, uint8 at the probabilities'
            grid, where the refiner gives one (``refine_with_confidence``).
        ready_timeout: how long to wait for the workers to start. A new Python process takes
            a second or more of CPU to import its libraries; waiting here keeps that out of
            the stream's first seconds and reports a worker that cannot start before any frame.

    ``close()`` (or leaving a ``with`` block) stops the workers and unlinks every segment.
    """

    def __init__(
        self,
        refiner: Refiner,
        workers: int = DEFAULT_CRF_WORKERS,
        *,
        start_method: str = "spawn",
        metrics: CrfMetrics | None = None,
        cpu_share: float | None = None,
        confidence: bool = False,
        ready_timeout: float = 60.0,
    ) -> None:
        if start_method not in START_METHODS:
            raise ValueError(
                f"start_method must be one of {', '.join(START_METHODS)}, not {start_method!r} "
                "(fork would copy the parent's threads' locks into the workers)"
            )
        if int(workers) != workers or workers < 1:
            raise ValueError(f"workers must be a whole number of at least 1, got {workers}")
        if cpu_share is not None and not 0 < cpu_share <= 1:
            raise ValueError(f"cpu_share must be in (0, 1] or None, got {cpu_share}")
        self.cpu_share = cpu_share
        self.confidence = confidence
        self.refiner = refiner
        self.metrics = metrics
        self._context = multiprocessing.get_context(start_method)
        self._workers: list[_Worker] = []
        self._next: _Task | None = None
        self._undelivered: list[PoolResult] = []  # collected during submit(), handed out by poll()
        self._closed = False
        self._submitted = self._refined = self._skipped = self._lost = self._replaced = 0
        try:
            for _ in range(int(workers)):
                self._workers.append(self._start_worker())
            self._wait_until_ready(ready_timeout)
        except BaseException:
            self.close()
            raise

    # --- public -----------------------------------------------------------------------

    @property
    def workers(self) -> int:
        return len(self._workers)

    @property
    def busy(self) -> int:
        """Workers refining a frame now."""
        return sum(worker.task is not None for worker in self._workers)

    @property
    def segment_names(self) -> list[str]:
        """Names of the shared-memory segments the pool owns: one per worker that has had a frame."""
        return [worker.segment.name for worker in self._workers if worker.segment is not None]

    def counts(self) -> PoolCounts:
        return PoolCounts(self._submitted, self._refined, self._skipped, self._lost, self._replaced)

    def in_flight(self) -> set[int]:
        """Indices of the frames the pool holds: being refined or waiting in the "next" slot."""
        indices = {worker.task.frame_index for worker in self._workers if worker.task is not None}
        if self._next is not None:
            indices.add(self._next.frame_index)
        return indices

    def submit(self, frame_index: int, image: np.ndarray, probabilities: np.ndarray) -> bool:
        """Hands a frame to an idle worker (True), or parks it as the next frame to refine (False).

        A frame already waiting is skipped for good: the new one takes its place, even when a
        worker frees up during this call.
        The pool keeps references to a parked frame's arrays until it starts: do not modify
        them in place. Raises ValueError on malformed inputs, before anything is sent.
        """
        self._check_open()
        check_refine_inputs(image, probabilities)
        self._submitted += 1
        if self._next is not None:
            # The new frame supersedes the waiting one before a worker that frees up below can take it.
            self._next = None
            self._skipped += 1
            if self.metrics is not None:
                self.metrics.frames_skipped.inc()
        self._undelivered.extend(self._collect(0.0))
        task = _Task(frame_index, image, probabilities)
        idle = self._idle_worker()
        if idle is not None:
            self._dispatch(idle, task)
            return True
        self._next = task
        return False

    def poll(self, timeout: float = 0.0) -> list[PoolResult]:
        """Finished frames as (frame_index, labels (H, W), confidence), oldest first; waits at most ``timeout`` s.

        Labels are uint8 for up to 255 classes and uint16 beyond (``label_sets.label_dtype``). The
        confidence is uint8 at the probabilities' grid, or None: the pool was not asked for it, or
        its refiner gives none.

        Returns as soon as anything has finished, or after ``timeout`` with an empty list;
        ``timeout=0`` never waits. Dead workers are replaced here.
        """
        self._check_open()
        results, self._undelivered = self._undelivered, []
        deadline = time.monotonic() + timeout
        results.extend(self._collect(0.0))
        # A wait can end on something that is not a result (a worker's ready note, a death).
        while not results and self.busy and (remaining := deadline - time.monotonic()) > 0:
            results.extend(self._collect(remaining))
        return results

    def close(self) -> None:
        """Stops the workers (a frame being refined is abandoned) and unlinks every segment. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._next = None
        workers, self._workers = self._workers, []
        try:
            for worker in workers:
                try:
                    worker.connection.send(_STOP)
                except (OSError, ValueError):
                    pass  # already dead; it is reaped below
            deadline = time.monotonic() + 2.0
            for worker in workers:
                _stop_process(worker.process, max(0.0, deadline - time.monotonic()))
        finally:
            for worker in workers:
                worker.connection.close()
                if worker.segment is not None:
                    _release(worker.segment)
            if self.metrics is not None:
                self.metrics.workers_busy.set(0)

    def __enter__(self) -> "AsyncCrfPool":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- inside -----------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("the CRF pool is closed")

    def _start_worker(self) -> _Worker:
        parent_end, child_end = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=_worker_main, args=(child_end, self.refiner), name="streamseg-crf", daemon=True
        )
        try:
            process.start()
        except BaseException:
            parent_end.close()
            raise
        finally:
            child_end.close()  # the child has its own copy; ours would hide the child's death from recv()
        return _Worker(process, parent_end)

    def _wait_until_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(worker.ready for worker in self._workers):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise CrfWorkerError(f"the CRF workers did not start within {timeout:.0f} s")
            waiting = [worker for worker in self._workers if not worker.ready]
            wait_for_ready([w.connection for w in waiting] + [w.process.sentinel for w in waiting], remaining)
            for worker in waiting:
                self._receive(worker)
                if not worker.process.is_alive() and not worker.ready:
                    raise CrfWorkerError(
                        f"a CRF worker exited with code {worker.process.exitcode} before it was ready "
                        "(its traceback is on stderr)"
                    )

    def _idle_worker(self) -> _Worker | None:
        now = time.monotonic()
        return next((worker for worker in self._workers if worker.task is None and worker.rest_until <= now), None)

    def _dispatch(self, worker: _Worker, task: _Task) -> None:
        layout = _Layout(tuple(task.image.shape), tuple(task.probabilities.shape), self.confidence)
        if worker.segment is None or worker.segment.size < layout.nbytes:
            # The first frame sets the size; a stream keeps its size, so growing again is rare.
            replacement = shared_memory.SharedMemory(create=True, size=layout.nbytes)
            if worker.segment is not None:
                _release(worker.segment)
            worker.segment = replacement
        layout.image(worker.segment.buf)[...] = task.image
        layout.probabilities(worker.segment.buf)[...] = task.probabilities
        worker.task = _Task(task.frame_index, layout=layout)
        try:
            worker.connection.send((task.frame_index, worker.segment.name, layout))
        except (OSError, ValueError):
            pass  # the worker is dead; the next collect finds it, replaces it and counts the frame lost
        self._update_busy()

    def _collect(self, timeout: float) -> list[PoolResult]:
        """Gathers finished frames, replaces dead workers and starts the waiting frame."""
        if timeout > 0 and self.busy:
            waitables = [worker.connection for worker in self._workers]
            waitables += [worker.process.sentinel for worker in self._workers]
            wait_for_ready(waitables, timeout)
        results = []
        for worker in self._workers:
            result = self._receive(worker)
            if result is not None:
                results.append(result)
            if not worker.process.is_alive():
                # What it sent between the read above and its death: a result, or why it could not start.
                result = self._receive(worker)
                if result is not None:
                    results.append(result)
                if not worker.ready and worker.process.exitcode > 0:
                    # Not killed but failed on its own before its first frame (an import, a bad
                    # refiner): a replacement would fail the same way, over and over.
                    raise CrfWorkerError(
                        f"a CRF worker exited with code {worker.process.exitcode} before it was ready "
                        "(its traceback is on stderr)"
                    )
                self._replace(worker)
        if self._next is not None:
            idle = self._idle_worker()
            if idle is not None:
                task, self._next = self._next, None
                self._dispatch(idle, task)
        self._update_busy()
        results.sort(key=lambda result: result[0])
        return results

    def _receive(self, worker: _Worker) -> PoolResult | None:
        """Reads what ``worker`` has sent: the ready note, a startup failure or a finished frame."""
        try:
            while worker.connection.poll():
                message = worker.connection.recv()
                if message[0] == "ready":
                    worker.ready = True
                elif message[0] == "failed":
                    raise CrfWorkerError(f"a CRF worker could not start: {message[1]}")
                else:
                    return self._finish(worker, *message[1:])
        except (EOFError, OSError):
            pass  # it died; _collect replaces it
        return None

    def _finish(
        self, worker: _Worker, frame_index: int, seconds: float, cpu_seconds: float, error: str | None,
        has_confidence: bool = False,
    ) -> PoolResult:
        task, worker.task = worker.task, None
        if self.cpu_share is not None:
            worker.rest_until = time.monotonic() + max(0.0, cpu_seconds / self.cpu_share - seconds)
        if error is not None:
            raise CrfWorkerError(f"CRF worker failed on frame {frame_index}: {error}")
        labels = np.array(task.layout.labels(worker.segment.buf))  # a copy: the segment is reused
        confidence = np.array(task.layout.confidence_map(worker.segment.buf)) if has_confidence else None
        self._refined += 1
        if self.metrics is not None:
            self.metrics.frames_refined.inc()
            self.metrics.latency.observe(seconds)
        return PoolResult(frame_index, labels, confidence)

    def _replace(self, worker: _Worker) -> None:
        log.warning(
            "a CRF worker (pid %s) %s; starting a replacement%s", worker.process.pid, _how_it_ended(worker.process.exitcode),
            f", frame {worker.task.frame_index} is lost" if worker.task is not None else "",
        )
        if worker.task is not None:
            self._lost += 1
            if self.metrics is not None:
                self.metrics.frames_lost.inc()
            worker.task = None
        _stop_process(worker.process, 1.0)
        worker.connection.close()
        fresh = self._start_worker()  # it inherits the dead one's segment
        worker.process, worker.connection, worker.ready = fresh.process, fresh.connection, False
        self._replaced += 1
        if self.metrics is not None:
            self.metrics.workers_replaced.inc()

    def _update_busy(self) -> None:
        if self.metrics is not None:
            self.metrics.workers_busy.set(self.busy)


def _how_it_ended(exitcode: int | None) -> str:
    """'was killed by SIGKILL', 'exited with code 3': how a worker process ended, for a log line."""
    if exitcode is not None and exitcode < 0:
        try:
            return f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"was killed by signal {-exitcode}"
    return f"exited with code {exitcode}"


def _worker_main(connection: Connection, refiner: Refiner) -> None:
    """A worker's loop: refine the frame in the named segment, reply, until told to stop or orphaned."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    _yield_to_the_stream()
    segment: shared_memory.SharedMemory | None = None
    try:
        try:
            _prepare_worker(refiner)
        except Exception as exc:
            connection.send(("failed", f"{type(exc).__name__}: {exc}"))
            return
        connection.send(("ready",))
        while True:
            try:
                message = connection.recv()
            except EOFError:
                return  # the parent is gone
            if message is _STOP:
                return
            frame_index, name, layout = message
            if segment is None or segment.name != name:
                if segment is not None:
                    segment.close()
                segment = shared_memory.SharedMemory(name=name)
            started, cpu_started = time.perf_counter(), time.process_time()
            error, has_confidence = None, False
            try:
                has_confidence = _refine_into(refiner, layout, segment.buf)
            except Exception as exc:  # reported to the parent, which decides
                error = f"{type(exc).__name__}: {exc}"
            seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
            connection.send(("done", frame_index, seconds, cpu_seconds, error, has_confidence))
    finally:
        if segment is not None:
            segment.close()  # the parent owns and unlinks it
        connection.close()


def _refine_into(refiner: Refiner, layout: _Layout, buffer: memoryview) -> bool:
    """Refines the frame in ``buffer`` and writes its labels, and its confidence when ``layout`` asks for it and the
    refiner gives one (then True), scaled to the probabilities' grid if the refiner ran on another."""
    image, probabilities = layout.image(buffer), layout.probabilities(buffer)
    if not layout.confidence:
        layout.labels(buffer)[...] = refiner.refine(image, probabilities)
        return False
    labels, confidence = refine_with_confidence(refiner, image, probabilities)
    layout.labels(buffer)[...] = labels
    if confidence is None:
        return False
    layout.confidence_map(buffer)[...] = confidence_at_size(confidence, probabilities.shape[1:])
    return True


def _yield_to_the_stream() -> None:
    """Makes this process run only on cycles the stream leaves over.

    "Never slows the stream" is the contract, and on a small CPU an equal-priority worker takes
    a core from inference. SCHED_IDLE is Linux's lowest class: a waking stream thread preempts
    it at once, where a nice-19 task still gets time slices that stall inference's threads at
    their barriers. Elsewhere, nice 19 is the best there is.
    """
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):
        os.nice(19)


def _prepare_worker(refiner: Refiner) -> None:
    """Limits the worker to one thread and refines a tiny frame, so a missing library shows at once."""
    import cv2

    cv2.setNumThreads(1)  # one frame per process; the workers share the cores between them
    refiner.refine(np.zeros((8, 8, 3), np.uint8), np.full((2, 8, 8), 0.5, np.float32))


def _stop_process(process: multiprocessing.process.BaseProcess, timeout: float) -> None:
    """Waits ``timeout`` seconds for ``process`` to exit, then terminates it, then kills it."""
    process.join(timeout)
    if process.is_alive():
        process.terminate()
        process.join(1.0)
    if process.is_alive():
        process.kill()
        process.join(1.0)
    if not process.is_alive():
        process.close()


def _release(segment: shared_memory.SharedMemory) -> None:
    """Closes and unlinks a segment this process created; one already gone is fine."""
    try:
        segment.close()
    finally:
        try:
            segment.unlink()
        except FileNotFoundError:
            pass


def _aligned(offset: int) -> int:
    return (offset + _ALIGN - 1) // _ALIGN * _ALIGN
